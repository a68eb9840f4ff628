"""The dashboard's link to the daemon: a pykka actor that reads the control API and the event stream and
hands the blessed loop a whole `Fleet` (and the selected instance's `Pane`) through queues of one.

    fleets: queue.Queue[Fleet] = queue.Queue(maxsize=1)
    panes: queue.Queue[Pane] = queue.Queue(maxsize=1)
    notices: queue.Queue[Notice] = queue.Queue()
    bridge = Bridge.start(client, "my-repo", fleets, panes, notices)
    bridge.tell(Focus(title="fix-login", tab="agent"))     # what the loop shows now
    ...
    stop_bridge(bridge)

**Why a queue of one, latest wins.** The loop draws whatever the daemon said last; a Fleet it has not drawn
yet is worthless once a newer one exists. `offer()` replaces the waiting item, so the bridge never blocks on
a loop that is busy (attached to an agent, say) and the loop never draws a stale snapshot after a new one.

**Threads.** The actor's own thread does every API request (the loop's thread never does: a daemon that
hangs freezes nothing on screen). Two helper threads only tell the actor things: the event reader (blocked
on `/v1/events`; an event is fetched at once, or marks the fleet dirty when a fetch was just made) and the
ticker (a `Tick` every `TICK_S`, which paces the polls and fetches what is dirty: a burst of 50 events
costs two fetches, not 50). Both are daemon threads: a blocking read cannot be interrupted, and quitting
the dashboard must not wait for one.

**A lost daemon** makes a fetch fail: the Fleet keeps its last rows with `connected=False` and `problem`
saying why and what is being done (the banner). The event reader retries its connection every
`RETRY_S`; once it is subscribed again the actor fetches everything (events were missed meanwhile) and the
banner goes. The bridge never starts a daemon itself: one that died is restarted by its heart, and one a
person stopped on purpose stays stopped (the banner says how to start it).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import msgspec
import pykka

from frontends.daemon.client import DaemonClient
from frontends.daemon.errors import DaemonError, DaemonNotRunning
from frontends.dashboard.model import AuditLine, Fleet, Orphan, Pane, WaveProgress
from protocols.instances import InstanceView
from protocols.observer import SupervisionNode
from protocols.records import TaskSummary

__all__ = [
    "FLEET_POLL_S",
    "PANE_POLL_S",
    "RETRY_S",
    "TICK_S",
    "Bridge",
    "Focus",
    "Notice",
    "Refresh",
    "diff_text",
    "notice_of",
    "offer",
    "stop_bridge",
    "task_notices",
]

TICK_S = 0.25
"""How often the ticker wakes the actor (pacing the polls below, and the tail of a burst of events)."""
EVENT_GAP_S = 0.1
"""An event is fetched at once unless the last fetch is more recent than this; then at the next tick, so a
burst of 50 events costs two fetches, not 50."""
FLEET_POLL_S = 5.0
"""Without events, the fleet is fetched this often anyway (cpu, memory and ages move without events)."""
PANE_POLL_S = 0.5
"""The selected instance's screen is fetched this often (an agent's output makes no event)."""
DIFF_POLL_S = 2.0
"""…and its diff this often while the Diff tab is open (a `git diff` in the daemon each time)."""
INTERACTIVE_POLL_S = 0.1
"""…and this often while the person types to it (interactive mode): their keys should show at once."""
RETRY_S = 0.5
"""Between two attempts to reach a lost daemon."""
REQUEST_TIMEOUT_S = 5.0
CAPTURE_LINES = 200
AUDIT_LINES = 50

_T = TypeVar("_T")


def offer(box: queue.Queue[_T], item: _T) -> None:
    """Put `item` in a queue of one, replacing what waits there (latest wins). Never blocks."""
    while True:
        try:
            box.put_nowait(item)
            return
        except queue.Full:
            with contextlib.suppress(queue.Empty):
                box.get_nowait()


# -- the actor's inbox (frontend-local: nothing outside the dashboard sends these) -------------------------


class Focus(msgspec.Struct, frozen=True, kw_only=True):
    """What the loop shows, so the bridge fetches what it needs and nothing else."""

    title: str = ""  # the selected instance ("" none)
    tab: str = "agent"
    interactive: bool = False
    audit: bool = False  # the audit pane is open
    orphans: bool = False  # the tmux browser is open
    tree: bool = False  # the supervision view is open


class Refresh(msgspec.Struct, frozen=True):
    """Fetch the fleet now (an action just changed something; its event may still be on its way)."""


class Notice(msgspec.Struct, frozen=True):
    """Something a person wants to know even when looking elsewhere: a desktop notification."""

    text: str
    level: str = "info"


class _Tick(msgspec.Struct, frozen=True):
    pass


class _Event(msgspec.Struct, frozen=True):
    event: dict[str, Any]


class _StreamUp(msgspec.Struct, frozen=True):
    pass


class _StreamDown(msgspec.Struct, frozen=True):
    why: str


def notice_of(event: dict[str, Any], project: str) -> Notice | None:
    """The desktop notification an event deserves, if any: an agent starts waiting for a person, an agent
    fails, a task is done. Pure."""
    if event.get("project") != project:
        return None
    kind = event.get("type")
    if kind == "instance_status_changed" and event.get("status") != event.get("previous"):
        title, reason = event.get("instance", ""), event.get("reason", "")
        if event.get("status") == "waiting":
            return Notice(f"{title} waits for you: {reason}".rstrip(": "), "warn")
        if event.get("status") == "failed":
            return Notice(f"{title} failed: {reason}".rstrip(": "), "error")
    if kind == "task_transitioned" and event.get("to_status") == "done":
        return Notice(f"task {event.get('task', '')} is done")
    return None


def task_notices(before: tuple[TaskSummary, ...], after: tuple[TaskSummary, ...]) -> list[Notice]:
    """The notifications a new task list deserves: a task that began waiting for a person (a wave decision,
    a review limit…). Those have no event of their own, so they are found by comparing two lists. A task
    waiting because its agent waits is left out: the agent's own notice says it. Pure."""
    waits = {t.name: (t.waiting.kind, t.waiting.since) for t in before if t.waiting is not None}
    return [
        Notice(f"task {t.name} waits for you: {t.waiting.reason}", "warn")
        for t in after
        if t.waiting is not None
        and t.waiting.kind != "agent_waiting"
        and waits.get(t.name) != (t.waiting.kind, t.waiting.since)
    ]


class Bridge(pykka.ThreadingActor):
    """Reads the daemon for one project on its own thread and offers the loop whole snapshots."""

    use_daemon_thread = True  # quitting never waits for a request under way (the daemon finishes it alone)

    def __init__(
        self,
        client: DaemonClient,
        project: str,
        fleets: queue.Queue[Fleet],
        panes: queue.Queue[Pane],
        notices: queue.Queue[Notice],
        *,
        clock: Callable[[], float] = time.monotonic,
        fleet_poll_s: float = FLEET_POLL_S,
    ) -> None:
        super().__init__()
        self.client = client
        self.project = project
        self._base = f"/v1/repos/{quote(project, safe='')}"
        self._fleets, self._panes, self._notices = fleets, panes, notices
        self._clock = clock
        self._fleet_poll_s = fleet_poll_s
        self._focus = Focus()
        self._fleet = Fleet(project=project, problem="connecting to the corral daemon…")
        self._pane = Pane()
        self._dirty = True
        self._fetched_at = -1e9
        self._pane_at = -1e9
        self._stream_up = False
        self._halt = threading.Event()

    # -- lifecycle (the actor's thread) ---------------------------------------------------------------------

    def on_start(self) -> None:
        me = self.actor_ref
        for name, target in (("events", self._read_events), ("ticker", self._tick)):
            threading.Thread(target=target, args=(me,), name=f"corral-dashboard-{name}", daemon=True).start()
        offer(self._fleets, self._fleet)

    def on_stop(self) -> None:
        self._halt.set()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Tick):
            self._on_tick()
        elif isinstance(message, _Event):
            self._on_event(message.event)
        elif isinstance(message, Focus):
            changed = message.title != self._focus.title or message.tab != self._focus.tab
            self._focus = message
            if changed:
                self._pane_at = -1e9
                if message.title != self._pane.title:
                    self._pane = Pane(title=message.title)
                    offer(self._panes, self._pane)
            self._dirty = True
            self._on_tick()
        elif isinstance(message, Refresh):
            self._dirty = True
            self._pane_at = -1e9
            self._on_tick()
        elif isinstance(message, _StreamUp):
            self._stream_up = True
            self._dirty = True
            self._on_tick()
        elif isinstance(message, _StreamDown):
            self._stream_up = False
            if self._fleet.connected:  # else the banner already says why (the daemon said it was stopping)
                self._lost(message.why)

    def _on_tick(self) -> None:
        now = self._clock()
        connected = self._fleet.connected
        if not connected and not self._stream_up:
            return  # the event reader is retrying; its _StreamUp brings a fetch
        since = now - self._fetched_at
        if (self._dirty and connected) or since >= (self._fleet_poll_s if connected else RETRY_S):
            self._fetch_fleet(now)
        if self._fleet.connected and self._focus.title and self._focus.tab != "info":  # info: the fleet's
            every = INTERACTIVE_POLL_S if self._focus.interactive else PANE_POLL_S
            every = DIFF_POLL_S if self._focus.tab == "diff" else every
            if now - self._pane_at >= every:
                self._fetch_pane(now)

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "daemon_stopping":
            self._lost(f"the corral daemon stopped ({event.get('reason') or 'asked to'})")
            return
        if kind != "lagged" and event.get("project") not in (None, self.project):
            return  # another project's: nothing of ours changed
        self._dirty = True
        if (notice := notice_of(event, self.project)) is not None:
            self._notices.put(notice)
        if self._fleet.connected and self._clock() - self._fetched_at >= EVENT_GAP_S:
            self._fetch_fleet(self._clock())

    # -- fetching (the actor's thread) --------------------------------------------------------------------

    def _get(self, path: str, method: str = "GET", json: Any = None) -> Any:
        return self.client.call(method, path, json=json, timeout=REQUEST_TIMEOUT_S)

    def _fetch_fleet(self, now: float) -> None:
        self._dirty = False
        self._fetched_at = now
        last = self._fleet
        try:
            instances = msgspec.convert(self._get(f"{self._base}/instances"), tuple[InstanceView, ...])
            rows = self._get(f"{self._base}/tasks")
            tasks = msgspec.convert(rows, tuple[TaskSummary, ...])
            waves = {
                row["name"]: msgspec.convert(row["wave"], WaveProgress)
                for row in rows
                if isinstance(row, dict) and row.get("wave")
            }
            audit = self._audit() if self._focus.audit else last.audit
            orphans = self._orphans() if self._focus.orphans else last.orphans
            tree = self._tree() if self._focus.tree else last.tree
        except DaemonNotRunning:
            self._lost("the corral daemon is not running")
            return
        except DaemonError as exc:
            self._lost(str(exc))
            return
        except (msgspec.ValidationError, KeyError, TypeError) as exc:
            self._lost(f"the corral daemon's answer is not what this dashboard reads ({exc}); is it older?")
            return
        if last.revision and last.connected:  # not on the first list: what waits then is on screen already
            for notice in task_notices(last.tasks, tasks):
                self._notices.put(notice)
        fleet = msgspec.structs.replace(
            last,
            instances=instances,
            tasks=tasks,
            waves=waves,
            audit=audit,
            orphans=orphans,
            tree=tree,
            connected=True,
            problem="",
        )
        self._publish(fleet)

    def _audit(self) -> tuple[AuditLine, ...]:
        rows = self._get(f"{self._base}/audit?limit={AUDIT_LINES}")
        lines = [
            AuditLine(
                ts=row.get("ts", ""),
                kind=row.get("kind", ""),
                message=row.get("message", ""),
                task=row.get("task") or "",
                instance=row.get("instance") or "",
                level=row.get("level") or "info",
            )
            for row in rows
        ]
        return tuple(reversed(lines))  # the API answers newest first; the pane shows the newest last

    def _orphans(self) -> tuple[Orphan, ...]:
        rows = self._get("/v1/orphans")
        return tuple(
            Orphan(session=r["session"], command=r.get("command", ""), created=float(r.get("created_at", 0)))
            for r in rows
        )

    def _tree(self) -> SupervisionNode | None:
        """The supervision view, decoded; None from a daemon without the route."""
        body = self._optional("/v1/tree")
        return None if body is None else msgspec.convert(body, SupervisionNode)

    def _optional(self, path: str) -> Any:
        """A route a daemon may not have yet: its answer, or None."""
        status, body = self.client.request("GET", path, timeout=REQUEST_TIMEOUT_S)
        return body if status == 200 else None

    def _fetch_pane(self, now: float) -> None:
        self._pane_at = now
        focus = self._focus
        path = f"{self._base}/instances/{quote(focus.title, safe='')}"
        screen, diff = self._pane.screen, self._pane.diff
        try:
            if focus.tab == "diff":
                status, body = self.client.request("GET", f"{path}/diff", timeout=REQUEST_TIMEOUT_S)
                diff = (
                    diff_text(body) if status == 200 and isinstance(body, dict) else _error_text(status, body)
                )
            else:
                captured = self._get(f"{path}/capture", "POST", {"lines": CAPTURE_LINES, "ansi": True})
                screen = str(captured.get("text", ""))
        except DaemonNotRunning:
            self._lost("the corral daemon is not running")
            return
        except DaemonError as exc:
            screen = f"(cannot read the screen of {focus.title}: {exc})"
        if focus.title != self._pane.title or screen != self._pane.screen or diff != self._pane.diff:
            self._pane = Pane(title=focus.title, screen=screen, diff=diff, fetched_at=now)
            offer(self._panes, self._pane)

    def _publish(self, fleet: Fleet) -> None:
        if fleet == self._fleet:
            return
        self._fleet = msgspec.structs.replace(fleet, revision=self._fleet.revision + 1)
        offer(self._fleets, self._fleet)

    def _lost(self, why: str) -> None:
        problem = (
            f"{why} — reconnecting by itself (the agents keep running); "
            "if it was stopped on purpose: corral daemon start"
        )
        self._publish(msgspec.structs.replace(self._fleet, connected=False, problem=problem))

    # -- helper threads: they only tell the actor ------------------------------------------------------------

    def _tick(self, me: pykka.ActorRef[Any]) -> None:
        while not self._halt.wait(INTERACTIVE_POLL_S if self._focus.interactive else TICK_S):
            try:
                me.tell(_Tick())
            except pykka.ActorDeadError:
                return

    def _read_events(self, me: pykka.ActorRef[Any]) -> None:
        """Stay subscribed to the event stream, reconnecting every RETRY_S while the daemon is away."""
        down_told = False
        while not self._halt.is_set():
            why = "the connection to the corral daemon was lost"
            try:
                with self.client.events(timeout=60.0) as stream:
                    me.tell(_StreamUp())
                    down_told = False
                    for event in stream:
                        if self._halt.is_set():
                            return
                        me.tell(_Event(event))
            except DaemonNotRunning:
                why = "the corral daemon is not running"
            except (DaemonError, OSError) as exc:
                why = str(exc) or type(exc).__name__
            except pykka.ActorDeadError:
                return
            if not down_told:
                try:
                    me.tell(_StreamDown(why))
                except pykka.ActorDeadError:
                    return
                down_told = True
            self._halt.wait(RETRY_S)


def diff_text(answer: dict[str, Any]) -> str:
    """The Diff tab's text from `GET …/diff`: git's stat, the patch, and a note when it was cut. Pure."""
    parts = [str(answer.get(key) or "").rstrip("\n") for key in ("stat", "diff")]
    text = "\n\n".join(part for part in parts if part)
    if answer.get("truncated"):
        where = answer.get("worktree") or "the repository"
        text += (
            f"\n… cut at {answer.get('limit_bytes', 0)} bytes; the whole diff: "
            f"git -C {where} diff {answer.get('base', '')}"
        )
    return text


def _error_text(status: int, body: Any) -> str:
    message = body.get("error") if isinstance(body, dict) else body
    if status == 404 and "no such route" in str(message):
        return "(this daemon cannot show diffs yet: restart it with a newer corral)"
    return f"({message})"


def stop_bridge(bridge: pykka.ActorRef[Any], timeout: float = 5.0) -> None:
    """Stop the bridge; its helper threads end by themselves (daemon threads, abandoned if blocked)."""
    with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
        bridge.stop(timeout=timeout)
