"""The dashboard's state: what the daemon last said (`Fleet`), what the person is doing (`View`), and what a
key asks the outside world to do (`Effect`).

Everything here is frozen data. The parts that change it are pure functions — `keys.handle(state, key)` →
`(state, effects)` decides, `render.frame(state, width, height)` → lines draws — so both are tested without a
terminal, a thread or a daemon. The bridge (frontends/dashboard/bridge.py) is the only writer of `Fleet`: it
reads the daemon's control API and event stream on threads of its own and hands the blessed loop a new
`Fleet` whole (latest wins), never a half-updated one. The loop (frontends/dashboard/app.py) owns `View` and
carries out the effects.

The daemon's own answers are decoded into the protocol Structs (`InstanceView`, `TaskSummary`): the
dashboard shows what `corral instance list` and `corral task list` show, never a second reading of the store.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from protocols.instances import InstanceView
from protocols.observer import SupervisionNode
from protocols.records import TaskSummary

Tab = Literal["agent", "diff", "info"]
Filter = Literal["all", "active"]
Sort = Literal["status", "name", "created"]
SORTS: tuple[Sort, ...] = ("status", "name", "created")  # the order `3` cycles through


class WaveProgress(msgspec.Struct, frozen=True):
    """A task's current wave as the sidebar shows it: "W2 3/5" (wave 2 of `waves`, 3 of its 5 tasks done)."""

    wave: int
    waves: int
    done: int
    total: int
    failed: int = 0


class AuditLine(msgspec.Struct, frozen=True):
    """One row of the audit pane (the newest last)."""

    ts: str
    kind: str
    message: str
    task: str = ""
    instance: str = ""
    level: str = "info"


class Orphan(msgspec.Struct, frozen=True):
    """A tmux session on corral's server that no instance owns (the T browser: adopt, attach, kill)."""

    session: str
    command: str = ""
    created: float = 0.0


class Fleet(msgspec.Struct, frozen=True, kw_only=True):
    """What the daemon last said about one project. Replaced whole by the bridge; `connected` False with
    `problem` set while the daemon cannot be reached (the banner), the last known rows kept meanwhile."""

    project: str
    tasks: tuple[TaskSummary, ...] = ()
    instances: tuple[InstanceView, ...] = ()
    waves: dict[str, WaveProgress] = {}  # task name → its current wave
    orphans: tuple[Orphan, ...] = ()
    audit: tuple[AuditLine, ...] = ()
    tree: SupervisionNode | None = None  # the supervision view (GET /v1/tree), while a view shows it
    connected: bool = False
    problem: str = ""  # why the daemon cannot be reached, and what is being done about it
    revision: int = 0  # bumped by the bridge on every change, so a renderer can tell "nothing new" cheaply


class Pane(msgspec.Struct, frozen=True, kw_only=True):
    """The preview pane's content for the selected instance: its screen (with its colours, kept inside the
    pane), its diff against its base, as last fetched."""

    title: str = ""
    screen: str = ""  # tmux/pty: the agent's screen, ANSI; sdk: its transcript
    diff: str = ""
    fetched_at: float = 0.0


class Toast(msgspec.Struct, frozen=True):
    """A one-line message that disappears by itself (`until`, monotonic seconds)."""

    text: str
    level: Literal["info", "warn", "error"] = "info"
    until: float = 0.0


class Overlay(msgspec.Struct, frozen=True, kw_only=True):
    """A modal box over the dashboard. `kind` says which: help, confirm, menu (instance or task context menu:
    `on_accept` "instance" or "task", `items` action ids of labels.py), picker (the spawn mode), input (a
    new task's name then brief, a new agent's title then prompt, a rename, an orphan's title; `on_accept`
    the form's step, `fields` the earlier steps' answers, `lines` the question or the last error), tmux (the
    orphan browser over `Fleet.orphans`), tree (the supervision view over `Fleet.tree`: the app keeps it
    fresh while this is open), checkout (the git commands after c), plan (a task's plan), attach_help
    (before the first attach)."""

    kind: str
    title: str = ""
    items: tuple[str, ...] = ()  # menu and picker entries; help and checkout lines
    cursor: int = 0
    text: str = ""  # an input's text so far
    target: str = ""  # the instance or task the overlay acts on
    on_accept: str = ""  # the action taken when accepted (confirm, input, picker)
    fields: dict[str, str] = {}  # a form of several steps: what the earlier steps answered
    lines: tuple[str, ...] = ()  # text shown above the items or the input (a plan, a tree, commands)


class View(msgspec.Struct, frozen=True, kw_only=True):
    """What the person is doing: selection, tab, filter, sort, search, the open overlay and toasts."""

    selected: str = ""  # a sidebar row's key: "task:<name>", "instance:<title>"
    tab: Tab = "agent"
    filter: Filter = "all"
    sort: Sort = "status"
    search: str = ""
    searching: bool = False  # the / prompt has the keyboard
    interactive: bool = False  # i: keys go to the selected agent until ctrl+space
    audit_open: bool = False
    overlay: Overlay | None = None
    toasts: tuple[Toast, ...] = ()
    attached_once: bool = False  # the attach help overlay is shown only the first time
    scroll: int = 0  # preview lines scrolled: back from the end (agent) or down from the top (diff, info)


class State(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a frame is drawn from."""

    fleet: Fleet
    view: View = View()
    pane: Pane = Pane()
    now: float = 0.0  # monotonic seconds, for toasts and ages
    wall: float = 0.0  # time.time(), for the age of what the daemon stamped with the wall clock (orphans)


# -- effects: what a key asks the app to carry out ---------------------------------------------------------


class Call(msgspec.Struct, frozen=True, kw_only=True):
    """A control API request; `done` is the toast shown when it succeeds (its error is shown when not)."""

    method: Literal["GET", "POST", "DELETE"]
    path: str
    body: Any = None
    done: str = ""
    reply: str = ""  # "" or what to do with the answer: `actions.on_reply(state, call, answer)`


class Attach(msgspec.Struct, frozen=True):
    """Hand the terminal to the instance's agent until ctrl-q (or ctrl+space); with `session` (and no title),
    to an orphan tmux session on corral's server (`tmux -L corral attach-session -t =<session>`)."""

    title: str
    session: str = ""


class SendKeys(msgspec.Struct, frozen=True):
    """Forward keys to the selected agent (interactive mode): tmux key names (`Enter`, `BSpace`, `Up`, `C-c`,
    `Space`) or one literal character each, which names itself as a key (the send-keys route)."""

    title: str
    keys: tuple[str, ...]


class Copy(msgspec.Struct, frozen=True):
    """Put text on the clipboard (OSC 52)."""

    text: str


class Quit(msgspec.Struct, frozen=True):
    """Leave the dashboard; every agent keeps running."""


Effect = Call | Attach | SendKeys | Copy | Quit
