"""What a key does: `handle(state, key) -> (state, effects)`, pure.

The key is a blessed key name when it has one (`KEY_UP`, `KEY_ENTER`, `KEY_CTRL_Q`…) or the character; the
raw control characters (`"\\x11"`, `"\\x00"`, `"\\r"`, `"\\x1b"`) are read as the names they stand for. The
answer is the next State and the effects the app carries out: `Call` (a control API request, path and body
as docs/api.md says), `Attach`, `SendKeys`, `Copy`, `Quit`. Nothing here waits, reads a clock (the State
carries `now`) or touches a terminal, so every key is a unit test.

Where a key goes, in order: the open overlay (confirm, menu, picker, input, help, tmux, tree, checkout,
plan, attach help) takes every key; then interactive mode (`i`) forwards keys to the agent until
ctrl+space; then the search prompt (`/`); else the dashboard's own keys act on the selected row
(sidebar.rows: the same rows the renderer draws). A key that cannot apply to the row says why in a toast
rather than doing nothing. What an action does (the request, the confirmation, the form) is actions.py's,
shared by keys, menu entries and accepted overlays; its `on_reply` is re-exported here, beside `handle`, for
the loop that carries out the effects.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from frontends.dashboard.actions import (
    ALIVE,
    Result,
    accept,
    change_view,
    close_overlay,
    confirm,
    find_instance,
    instance_action,
    instance_actions,
    on_reply,
    open_overlay,
    orphan_action,
    orphan_at,
    say,
    selection,
    spawn_form,
    target,
    task_actions,
    toast,
)
from frontends.dashboard.labels import INSTANCE_LABELS, SPAWN_MODES
from frontends.dashboard.model import SORTS, Overlay, Quit, SendKeys, State
from frontends.dashboard.overlays import tree_lines

_RAW = {
    "\x11": "KEY_CTRL_Q",
    "\x00": "KEY_CTRL_SPACE",
    "\x03": "KEY_CTRL_C",
    "\r": "KEY_ENTER",
    "\n": "KEY_ENTER",
    "\x1b": "KEY_ESCAPE",
    "\x7f": "KEY_BACKSPACE",
    "\x08": "KEY_BACKSPACE",
    "\t": "KEY_TAB",
    "KEY_KP_ENTER": "KEY_ENTER",
    "KEY_CTRL_@": "KEY_CTRL_SPACE",
    "KEY_DELETE": "KEY_BACKSPACE",
}

TMUX_KEYS = {
    "KEY_ENTER": "Enter",
    "KEY_BACKSPACE": "BSpace",
    "KEY_TAB": "Tab",
    "KEY_BTAB": "BTab",
    "KEY_ESCAPE": "Escape",
    "KEY_UP": "Up",
    "KEY_DOWN": "Down",
    "KEY_LEFT": "Left",
    "KEY_RIGHT": "Right",
    "KEY_HOME": "Home",
    "KEY_END": "End",
    "KEY_PGUP": "PPage",
    "KEY_PGDOWN": "NPage",
    "KEY_CTRL_C": "C-c",
    " ": "Space",
}
"""A blessed key name as the tmux key name interactive mode forwards (send-keys)."""


def normalize(key: str) -> str:
    """A key as one name: control characters as blessed names them; KEY_CTRL_<X> names kept."""
    return _RAW.get(key, key)


# -- moving ---------------------------------------------------------------------------------------------


def _move(state: State, delta: int) -> Result:
    rows, row = selection(state)
    if not rows:
        return state, ()
    index = rows.index(row) if row in rows else 0
    index = max(0, min(len(rows) - 1, index + delta))
    return change_view(state, selected=rows[index].key, scroll=0), ()


def _edge(state: State, last: bool) -> Result:
    rows, _ = selection(state)
    if not rows:
        return state, ()
    return change_view(state, selected=rows[-1 if last else 0].key, scroll=0), ()


def _tab(state: State, step: int) -> Result:
    tabs = ("agent", "diff", "info")
    return change_view(state, tab=tabs[(tabs.index(state.view.tab) + step) % 3], scroll=0), ()


def _scroll(state: State, delta: int) -> Result:
    return change_view(state, scroll=max(0, state.view.scroll + delta)), ()


def _overlay_key(state: State, key: str) -> Result:
    overlay = state.view.overlay
    assert overlay is not None
    kind = overlay.kind
    if kind == "attach_help":  # any key goes on to the attach
        return accept(state, overlay)
    if kind == "input":
        return _input_key(state, overlay, key)
    if key in ("KEY_ESCAPE", "q") or (kind == "confirm" and key in ("n", "N")):
        return close_overlay(state), ()
    if kind == "confirm":
        if key in ("y", "Y", "KEY_ENTER"):
            return accept(state, overlay)
        return state, ()
    count = _overlay_length(state, overlay)
    if key in ("KEY_UP", "KEY_DOWN", "KEY_PGUP", "KEY_PGDOWN", "KEY_HOME", "KEY_END"):
        step = {
            "KEY_UP": -1,
            "KEY_DOWN": 1,
            "KEY_PGUP": -10,
            "KEY_PGDOWN": 10,
            "KEY_HOME": -(10**6),
            "KEY_END": 10**6,
        }[key]
        cursor = max(0, min(max(count - 1, 0), overlay.cursor + step))
        return change_view(state, overlay=msgspec.structs.replace(overlay, cursor=cursor)), ()
    if kind == "tmux":
        session = orphan_at(state, overlay.cursor)
        if key == "a":
            return orphan_action(state, "orphan:adopt", session)
        if key == "k":
            return orphan_action(state, "orphan:kill", session)
    if key in ("KEY_ENTER", " ") and kind in ("menu", "picker", "tmux"):
        return accept(state, overlay)
    if key in ("KEY_ENTER", "?") and kind in ("help", "tree", "plan", "checkout"):
        return close_overlay(state), ()
    return state, ()


def _overlay_length(state: State, overlay: Overlay) -> int:
    if overlay.kind == "tmux":
        return len(state.fleet.orphans)
    if overlay.kind == "tree":
        return len(tree_lines(state.fleet.tree))
    return len(overlay.items)


def _input_key(state: State, overlay: Overlay, key: str) -> Result:
    if key == "KEY_ESCAPE":
        return close_overlay(state), ()
    if key == "KEY_ENTER":
        return accept(state, overlay)
    if key == "KEY_BACKSPACE":
        text = overlay.text[:-1]
    elif len(key) == 1 and key.isprintable():
        text = overlay.text + key
    else:
        return state, ()
    return change_view(state, overlay=msgspec.structs.replace(overlay, text=text)), ()


# -- interactive mode and search ------------------------------------------------------------------------


def _interactive_key(state: State, key: str) -> Result:
    title = state.view.selected.split(":", 1)[1] if state.view.selected.startswith("instance:") else ""
    if key in ("KEY_CTRL_SPACE", "KEY_CTRL_Q"):
        return change_view(state, interactive=False), ()
    if key == "KEY_CTRL_ENTER":
        return change_view(state, interactive=False), (SendKeys(title, ("Enter",)),)
    inst = find_instance(state, title)
    if inst is None or inst.status not in ALIVE:
        why = "is gone" if inst is None else f"is {inst.status}"
        return toast(
            change_view(state, interactive=False), f"left interactive mode: {title or 'the agent'} {why}"
        ), ()
    name = TMUX_KEYS.get(key)
    if name is None:
        if key.startswith("KEY_CTRL_") and len(key) == 10:
            name = f"C-{key[-1].lower()}"
        elif len(key) == 1 and key.isprintable():
            name = key
        else:
            return state, ()
    return state, (SendKeys(title, (name,)),)


def _search_key(state: State, key: str) -> Result:
    if key == "KEY_ESCAPE":
        return change_view(state, searching=False, search=""), ()
    if key == "KEY_ENTER":
        return change_view(state, searching=False), ()
    if key == "KEY_BACKSPACE":
        return _keep_selection(change_view(state, search=state.view.search[:-1])), ()
    if key in ("KEY_UP", "KEY_DOWN"):
        return _move(state, -1 if key == "KEY_UP" else 1)
    if len(key) == 1 and key.isprintable():
        return _keep_selection(change_view(state, search=state.view.search + key)), ()
    return state, ()


def _keep_selection(state: State) -> State:
    """After the rows changed (search, filter), select the first row when the selected one is gone."""
    _, row = selection(state)
    if row is not None and row.key != state.view.selected:
        return change_view(state, selected=row.key, scroll=0)
    return state


# -- the dashboard's own keys ---------------------------------------------------------------------------


def _on_instance(action: str) -> Callable[[State], Result]:
    def act(state: State) -> Result:
        inst, _ = target(state)
        if inst is None:
            text, key = INSTANCE_LABELS[action]
            return say(state, f"{key}: select an agent first ({text})", "info")
        return instance_action(state, action, inst.title)

    return act


def _enter(state: State) -> Result:
    _, row = selection(state)
    if row is not None and row.task is not None:
        return _menu(state)
    return _on_instance("open")(state)


def _menu(state: State) -> Result:
    _, row = selection(state)
    if row is None:
        return state, ()
    if row.task is not None:
        return open_overlay(
            state,
            kind="menu",
            title=f"task {row.task.name} ({row.task.display_status})",
            items=task_actions(row.task),
            target=row.task.name,
            on_accept="task",
            lines=(row.task.waiting.reason,) if row.task.waiting else (),
        )
    inst = row.instance
    assert inst is not None
    return open_overlay(
        state,
        kind="menu",
        title=f"{inst.title} ({inst.status})",
        items=instance_actions(inst),
        target=inst.title,
        on_accept="instance",
    )


def _spawn(state: State, *, standalone: bool = False) -> Result:
    _, task = target(state)
    return spawn_form(state, "" if standalone or task is None else task.name, "tmux")


def _spawn_picker(state: State) -> Result:
    _, task = target(state)
    return open_overlay(
        state,
        kind="picker",
        title="Spawn an agent: how it runs",
        items=SPAWN_MODES,
        fields={"task": task.name if task else ""},
        on_accept="spawn_mode",
    )


def _new_task(state: State) -> Result:
    return open_overlay(
        state,
        kind="input",
        title="New task",
        on_accept="task_name",
        lines=("Its name (lowercase letters, digits, '.', '_', '-'; it names the branch):",),
    )


def _bang(state: State) -> Result:
    state, effects = _on_instance("focus")(state)
    if not state.view.interactive:
        return state, effects
    title = state.view.selected.split(":", 1)[1]
    return state, (*effects, SendKeys(title, ("!",)))


def _mark(state: State) -> Result:
    inst, task = target(state)
    if inst is None and task is not None:
        return say(state, "m marks one wave task's agent complete: select the agent under the task", "info")
    return _on_instance("mark")(state)


def _quit(state: State) -> Result:
    running = [i for i in state.fleet.instances if i.status in ALIVE]
    if not running:
        return state, (Quit(),)
    return confirm(
        state,
        "quit",
        "",
        "Quit the dashboard?",
        f"{len(running)} agent{'s' if len(running) != 1 else ''} running: "
        f"{'they keep' if len(running) != 1 else 'it keeps'} running after you quit.",
    )


def _filter(value: str) -> Callable[[State], Result]:
    def act(state: State) -> Result:
        return toast(
            _keep_selection(change_view(state, filter=value)),
            f"showing {value if value == 'all' else 'active agents only'}",
            "info",
        ), ()

    return act


def _sort(state: State) -> Result:
    after = SORTS[(SORTS.index(state.view.sort) + 1) % len(SORTS)]
    return toast(change_view(state, sort=after), f"sorted by {after}", "info"), ()


def _help(state: State) -> Result:
    return open_overlay(state, kind="help", title="corral dashboard — keys", items=HELP)


def _tmux(state: State) -> Result:
    return open_overlay(state, kind="tmux", title="tmux sessions no instance owns (orphans)")


def _tree(state: State) -> Result:
    return open_overlay(state, kind="tree", title="supervision tree")


def _escape(state: State) -> Result:
    if state.view.search:
        return _keep_selection(change_view(state, search="")), ()
    return state, ()


KEYS: dict[str, Callable[[State], Result]] = {
    "KEY_UP": lambda s: _move(s, -1),
    "KEY_DOWN": lambda s: _move(s, 1),
    "KEY_HOME": lambda s: _edge(s, False),
    "KEY_END": lambda s: _edge(s, True),
    "KEY_PGUP": lambda s: _scroll(s, 10 if s.view.tab == "agent" else -10),
    "KEY_PGDOWN": lambda s: _scroll(s, -10 if s.view.tab == "agent" else 10),
    "KEY_TAB": lambda s: _tab(s, 1),
    "KEY_BTAB": lambda s: _tab(s, -1),
    "KEY_ENTER": _enter,
    "o": _on_instance("open"),
    " ": _menu,
    "n": _new_task,
    "N": lambda s: _spawn(s, standalone=True),
    "s": _spawn,
    "S": _spawn_picker,
    "i": _on_instance("focus"),
    "!": _bang,
    "y": _on_instance("yes"),
    "k": _on_instance("kill"),
    "K": _on_instance("pause"),
    "r": _on_instance("resume"),
    "R": _on_instance("restart"),
    "c": _on_instance("checkout"),
    "e": _on_instance("rename"),
    "p": _on_instance("push"),
    "P": _on_instance("pr"),
    "m": _mark,
    "D": _on_instance("delete"),
    "T": _tmux,
    "t": _tree,
    "L": lambda s: (change_view(s, audit_open=not s.view.audit_open), ()),
    "1": _filter("all"),
    "2": _filter("active"),
    "3": _sort,
    "/": lambda s: (change_view(s, searching=True), ()),
    "?": _help,
    "q": _quit,
    "KEY_CTRL_C": _quit,
    "KEY_ESCAPE": _escape,
}

HELP: tuple[str, ...] = (
    "↑ ↓ home end  move                 tab shift+tab  Agent / Diff / Info",
    "pgup pgdn     scroll the preview   space          context menu",
    "enter o       attach fullscreen (a task: its menu)",
    "              ctrl+q or ctrl+space detaches back here",
    "n             new task (then s spawns an agent for it)",
    "N             new standalone agent with a prompt",
    "s             spawn an agent (for the selected task)",
    "S             spawn, choosing tmux / pty / sdk / sdk-fast",
    "i             interactive: keys go to the agent",
    "              ctrl+space leaves, ctrl+enter sends and leaves",
    "!             interactive, and send ! (shell mode)",
    "y             answer yes to the agent's permission prompt",
    "k             kill (asks; the row stays)",
    "K             pause (branch kept)      r  resume",
    "R             restart                  e  rename",
    "c             checkout: pause, copy the branch, show git commands",
    "p             push the branch          P  create a pull request",
    "m             mark a wave task's agent complete",
    "D             delete an ended agent (asks)",
    "T             tmux sessions no instance owns: adopt, attach, kill",
    "t             supervision tree: restarts, intensity, backoff",
    "L             audit pane               / search by title or task",
    "1 2 3         all / active only / cycle sort (status, name, created)",
    "?             this help                q quit (agents keep running)",
    "",
    "● running  ◌ starting  ○ idle  ◆ needs you  ‖ paused  □ ended  ✗ failed",
    "task rows: ◆ waits for you (its question under it)",
    "           W2 3/5 = wave 2, 3 of its 5 tasks done; ✗1 = 1 failed",
)


def handle(state: State, key: str) -> Result:
    """The next state and the effects of pressing `key`."""
    key = normalize(key)
    view = state.view
    if view.overlay is not None:
        return _overlay_key(state, key)
    if view.interactive:
        return _interactive_key(state, key)
    if view.searching:
        return _search_key(state, key)
    action = KEYS.get(key)
    if action is None:
        return state, ()
    return action(state)


__all__ = ["HELP", "KEYS", "TMUX_KEYS", "handle", "normalize", "on_reply"]
