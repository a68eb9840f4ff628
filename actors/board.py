"""The instance board: what every project's instances look like now, kept up to date by their Projects and
read by anyone without asking an actor.

    board = InstanceBoard()
    ProjectsConfig(..., board=board)                  # each Project posts its rows here
    rows = board.rows("app")                          # None until the Project has brought its instances back
    if rows is None and board.wait_ready("app", 5.0): rows = board.rows("app")

Why a board rather than asking. A list used to ask the Project for its entries and then every Instance for
its info: with fifty agents at work each ask waits behind that agent's screen captures, and the Project's
answer waits behind whatever it is doing (starting an agent makes a worktree and waits for the runtime). A
dashboard polls the list several times a second, so the list is a read model instead: every Instance tells
its Project at each change (`StatusNotice`, carrying the Instance's info without metrics), the Project already
keeps those notices, and after every message it handles it posts its rows here. The Project is the only
writer of its rows, so rows of one project never interleave two writers' views; readers take a snapshot
under a lock and build the views on their own thread.

Readiness. A Project that starts (the daemon's first start, or after its crash) clears its rows and posts
them only after it has brought its recorded instances back, so that a list made during recovery waits for
it, as a list asked of the Project did, instead of showing an empty project; a Project that stops marks
its rows gone (`down`), so a list then goes the slow way and says why.
"""

from __future__ import annotations

import threading
from typing import Any

import msgspec

__all__ = ["BoardRow", "InstanceBoard"]


class BoardRow(msgspec.Struct, frozen=True, kw_only=True):
    """One instance as its Project last posted it: its entry (actors.project_inbox.InstanceEntry) and what
    its Instance last said (actors.instance.InstanceInfo, without metrics; None: nothing yet, ask it)."""

    entry: Any
    info: Any = None
    pid: int | None = None  # the agent's process, for its metrics (None: not running)
    started_at: float | None = None  # when the agent's process started (time.monotonic), for its uptime


class InstanceBoard:
    """Every project's rows, posted whole by its Project. Thread-safe; no method blocks on an actor."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[BoardRow, ...]] = {}
        self._ready: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def _event(self, project: str) -> threading.Event:
        with self._lock:
            return self._ready.setdefault(project, threading.Event())

    def reset(self, project: str) -> None:
        """The project's Project is starting: its rows are unknown until it posts them."""
        self._event(project).clear()
        with self._lock:
            self._rows.pop(project, None)

    def down(self, project: str) -> None:
        """The project's Project stopped: nobody keeps its rows up to date any more."""
        self.reset(project)

    def post(self, project: str, rows: tuple[BoardRow, ...]) -> None:
        """The project's rows now, in start order (the Project calls this on its own thread)."""
        with self._lock:
            self._rows[project] = rows
        self._event(project).set()

    def rows(self, project: str) -> tuple[BoardRow, ...] | None:
        """The project's rows as last posted; None while its Project is not running or still recovering."""
        with self._lock:
            return self._rows.get(project)

    def wait_ready(self, project: str, timeout: float) -> bool:
        """Wait until the project's rows are posted; False when `timeout` passed first."""
        return self._event(project).wait(timeout)
