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
rather than doing nothing.

`on_reply(state, call, answer)` is the other half of a request whose answer is shown (`Call.reply`): the
checkout's git commands, a task's plan.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import msgspec

from frontends.dashboard import sidebar
from frontends.dashboard.actions import INSTANCE_LABELS, SPAWN_MODES, label
from frontends.dashboard.model import (
    SORTS,
    Attach,
    Call,
    Copy,
    Effect,
    Overlay,
    Quit,
    SendKeys,
    State,
    Toast,
)
from protocols.errors import UsageError
from protocols.fsm import allowed_events
from protocols.instances import FINISHED, InstanceView
from protocols.records import TaskSummary, task_name
from protocols.titles import check_title

Result = tuple[State, tuple[Effect, ...]]

TOAST_S = 4.0
ALIVE = frozenset({"loading", "running", "ready", "waiting", "unknown"})
ATTACHABLE = frozenset({"tmux", "pty"})
YES = {"text": "yes", "enter": True}
"""What `y` sends to an agent waiting on a permission prompt (POST …/send)."""

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

_WAVE_TITLE = re.compile(r"-W(\d+)-T(\d+)$")


def normalize(key: str) -> str:
    """A key as one name: control characters as blessed names them; KEY_CTRL_<X> names kept."""
    return _RAW.get(key, key)


# -- small helpers --------------------------------------------------------------------------------------


def _view(state: State, **changes: Any) -> State:
    return msgspec.structs.replace(state, view=msgspec.structs.replace(state.view, **changes))


def toast(state: State, text: str, level: str = "info") -> State:
    """`state` with a toast that lasts TOAST_S (at most 5 kept)."""
    item = Toast(text=text, level=level, until=state.now + TOAST_S)  # type: ignore[arg-type]
    live = tuple(t for t in state.view.toasts if t.until > state.now)[-4:]
    return _view(state, toasts=(*live, item))


def _say(state: State, text: str, level: str = "warn") -> Result:
    return toast(state, text, level), ()


def _open(state: State, **overlay: Any) -> Result:
    return _view(state, overlay=Overlay(**overlay)), ()


def _close(state: State) -> State:
    return _view(state, overlay=None)


def _project(state: State) -> str:
    return f"/v1/repos/{quote(state.fleet.project, safe='')}"


def _inst_path(state: State, title: str, action: str = "") -> str:
    path = f"{_project(state)}/instances/{quote(title, safe='')}"
    return f"{path}/{action}" if action else path


def _instance(state: State, title: str) -> InstanceView | None:
    return next((i for i in state.fleet.instances if i.title == title), None)


def _task(state: State, name: str) -> TaskSummary | None:
    return next((t for t in state.fleet.tasks if t.name == name), None)


def _selection(state: State) -> tuple[list[sidebar.Row], sidebar.Row | None]:
    rows = sidebar.selectable(sidebar.rows(state.fleet, state.view))
    return rows, sidebar.selected_row(rows, state.view)


def _titles(state: State) -> set[str]:
    return {i.title for i in state.fleet.instances}


def _free_title(state: State, base: str) -> str:
    taken = _titles(state)
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _wave_numbers(inst: InstanceView) -> tuple[int, int] | None:
    """(wave, task number) of a wave task's agent, from its title `<task>-W<w>-T<t>`."""
    m = _WAVE_TITLE.search(inst.title)
    if not inst.task or m is None or not inst.title.startswith(f"{inst.task}-W"):
        return None
    return int(m.group(1)), int(m.group(2))


# -- moving ---------------------------------------------------------------------------------------------


def _move(state: State, delta: int) -> Result:
    rows, row = _selection(state)
    if not rows:
        return state, ()
    index = rows.index(row) if row in rows else 0
    index = max(0, min(len(rows) - 1, index + delta))
    return _view(state, selected=rows[index].key, scroll=0), ()


def _edge(state: State, last: bool) -> Result:
    rows, _ = _selection(state)
    if not rows:
        return state, ()
    return _view(state, selected=rows[-1 if last else 0].key, scroll=0), ()


def _tab(state: State, step: int) -> Result:
    tabs = ("agent", "diff", "info")
    return _view(state, tab=tabs[(tabs.index(state.view.tab) + step) % 3], scroll=0), ()


def _scroll(state: State, delta: int) -> Result:
    return _view(state, scroll=max(0, state.view.scroll + delta)), ()


# -- what acts on the selection -------------------------------------------------------------------------


def _target(state: State) -> tuple[InstanceView | None, TaskSummary | None]:
    """The selected instance, and the selected task (the row's, or the selected instance's task)."""
    _, row = _selection(state)
    if row is None:
        return None, None
    if row.instance is not None:
        return row.instance, _task(state, row.instance.task) if row.instance.task else None
    return None, row.task


def instance_actions(inst: InstanceView) -> tuple[str, ...]:
    """The instance context menu: what applies to it as it is now, in the order people reach for."""
    out: list[str] = []
    alive = inst.status in ALIVE
    if alive and inst.mode in ATTACHABLE:
        out += ["open", "focus"]
    if inst.status == "waiting":
        out.append("yes")
    if alive:
        out.append("pause")
    if inst.status == "paused":
        out.append("resume")
    out.append("restart")
    if inst.status not in FINISHED:
        out += ["kill", "checkout"]
    out += ["rename", "push", "pr"]
    if _wave_numbers(inst) is not None:
        out.append("mark")
    if inst.status in FINISHED:
        out.append("delete")
    if inst.task:
        out.append("plan")
    out += ["copy_branch", "copy_worktree"]
    return tuple(out)


def task_actions(task: TaskSummary) -> tuple[str, ...]:
    """The task context menu: a wave question's answers first, then the lifecycle events a person may send
    now (protocols.fsm), spawning an agent, the plan."""
    out: list[str] = []
    if task.waiting is not None and task.waiting.kind == "wave_decision":
        out += ["signal:retry_wave", "signal:advance_wave"]
    elif task.waiting is not None and task.waiting.kind == "wave_confirmation":
        out.append("signal:advance_wave")
    out += [f"transition:{event}" for event in allowed_events(task.status)]
    out += ["spawn", "view_plan", "copy_branch"]
    return tuple(out)


def _confirm(state: State, action: str, target: str, title: str, *lines: str) -> Result:
    return _open(state, kind="confirm", title=title, items=tuple(lines), target=target, on_accept=action)


def instance_action(state: State, action: str, title: str, *, confirmed: bool = False) -> Result:
    """Carry out `action` on instance `title`: ask first where it cannot be undone or stops work."""
    inst = _instance(state, title)
    if inst is None:
        return _say(state, f"{title} is no longer listed")
    path = _inst_path(state, title)
    if action == "open":
        if inst.mode not in ATTACHABLE:
            return _say(
                state,
                f"{title} runs in {inst.mode} mode: no terminal to attach; its transcript is the preview",
                "info",
            )
        if inst.status not in ALIVE:
            hint = "r resumes it" if inst.status == "paused" else "R restarts it"
            return _say(state, f"{title} is {inst.status}: nothing to attach to ({hint})")
        if not state.view.attached_once:
            return _open(
                state,
                kind="attach_help",
                title=f"attaching to {title}",
                target=title,
                items=(
                    "The agent's terminal takes the whole screen.",
                    "ctrl+q or ctrl+space detaches back to the dashboard (also inside your own tmux).",
                    "The agent keeps running after you detach.",
                ),
            )
        return state, (Attach(title),)
    if action == "focus":
        if inst.mode not in ATTACHABLE or inst.status not in ALIVE:
            why = f"runs in {inst.mode} mode" if inst.mode not in ATTACHABLE else f"is {inst.status}"
            return _say(state, f"{title} {why}: interactive mode needs a live terminal agent")
        return _view(state, interactive=True, selected=sidebar.instance_key(title)), ()
    if action == "yes":
        if inst.status != "waiting":
            return _say(state, f"{title} is {inst.status}, not waiting on a prompt: nothing to answer")
        return state, (
            Call(method="POST", path=f"{path}/send", body=dict(YES), done=f"answered yes to {title}"),
        )
    if action == "pause":
        if inst.status == "paused":
            return _say(state, f"{title} is already paused (r resumes it)", "info")
        return state, (
            Call(method="POST", path=f"{path}/pause", done=f"paused {title} (branch kept; r resumes)"),
        )
    if action == "resume":
        if inst.status in FINISHED:
            return instance_action(state, "restart", title)
        if inst.status != "paused":
            return _say(state, f"{title} is {inst.status}, not paused: nothing to resume", "info")
        return state, (Call(method="POST", path=f"{path}/resume", done=f"resumed {title}"),)
    if action == "restart":
        if inst.status in ALIVE and not confirmed:
            return _confirm(
                state,
                "restart",
                title,
                f"Restart {title}?",
                f"{title} is {inst.status}: its agent is stopped and started again.",
            )
        return state, (Call(method="POST", path=f"{path}/restart", done=f"restarted {title}"),)
    if action == "kill":
        if inst.status in FINISHED:
            return _say(state, f"{title} already ended ({inst.status}); D deletes it", "info")
        if not confirmed:
            return _confirm(
                state,
                "kill",
                title,
                f"Kill {title}?",
                "The agent and everything it started are stopped. The row stays:",
                "R restarts it; its branch and worktree are kept.",
            )
        return state, (Call(method="POST", path=f"{path}/kill", done=f"killed {title}"),)
    if action == "checkout":
        effects: tuple[Effect, ...] = (
            Call(
                method="POST",
                path=f"{path}/checkout",
                done=f"paused {title}; branch copied",
                reply="checkout",
            ),
        )
        if inst.branch:
            effects += (Copy(inst.branch),)
        return state, effects
    if action == "rename":
        return _open(
            state,
            kind="input",
            title=f"Rename {title}",
            text=title,
            target=title,
            on_accept="rename",
            lines=("A new title for the instance:",),
        )
    if action == "push":
        return state, (
            Call(method="POST", path=f"{path}/push", body={}, done=f"pushed {inst.branch or title}"),
        )
    if action == "pr":
        if not confirmed:
            return _confirm(
                state,
                "pr",
                title,
                f"Create a pull request for {title}?",
                f"gh pr create for branch {inst.branch or '?'}, title and body from "
                f"{'task ' + inst.task if inst.task else 'the instance'}.",
            )
        return state, (
            Call(method="POST", path=f"{path}/pr", body={}, done=f"pull request created for {title}"),
        )
    if action == "mark":
        numbers = _wave_numbers(inst)
        if numbers is None:
            return _say(state, f"{title} is not a wave task's agent: nothing to mark complete")
        wave, number = numbers
        if not confirmed:
            return _confirm(
                state,
                "mark",
                title,
                f"Mark wave {wave} task {number} of {inst.task} complete?",
                "Do this once the task's work is done (for instance fixed by hand).",
            )
        body = {
            "task": inst.task,
            "signal_type": "implement_task_finished",
            "payload": {"wave_number": wave, "task_number": number},
        }
        return state, (
            Call(
                method="POST",
                path=f"{_project(state)}/signals",
                body=body,
                done=f"{inst.task}: wave {wave} task {number} marked complete",
            ),
        )
    if action == "delete":
        if inst.status not in FINISHED:
            return _say(state, f"{title} is {inst.status}: kill it first (k), then D deletes it")
        if not confirmed:
            return _confirm(
                state,
                "delete",
                title,
                f"Delete {title}?",
                f"The row, its worktree {inst.worktree or '-'} and its branch {inst.branch or '-'} go.",
                "Refused (and nothing lost) when the branch holds work nothing else keeps.",
            )
        return state, (Call(method="DELETE", path=path, done=f"deleted {title}"),)
    if action == "plan":
        return task_action(state, "view_plan", inst.task)
    if action == "copy_branch":
        return toast(state, f"copied {inst.branch}", "info"), (Copy(inst.branch),)
    if action == "copy_worktree":
        return toast(state, f"copied {inst.worktree}", "info"), (Copy(inst.worktree),)
    return _say(state, f"unknown action {action!r}", "error")


def task_action(state: State, action: str, name: str, *, confirmed: bool = False) -> Result:
    """Carry out `action` on task `name`: a lifecycle event, a wave signal, spawning an agent, the plan."""
    path = f"{_project(state)}/tasks/{quote(name, safe='')}"
    if action.startswith("transition:"):
        event = action.split(":", 1)[1]
        if event == "cancel" and not confirmed:
            return _confirm(
                state,
                action,
                name,
                f"Cancel task {name}?",
                "Its agents are stopped; reopen brings it back to planning.",
            )
        return state, (
            Call(
                method="POST",
                path=f"{path}/transition",
                body={"event": event},
                done=f"{name}: {label(action)}",
            ),
        )
    if action.startswith("signal:"):
        kind = action.split(":", 1)[1]
        body = {"task": name, "signal_type": kind}
        return state, (
            Call(
                method="POST", path=f"{_project(state)}/signals", body=body, done=f"{name}: {label(action)}"
            ),
        )
    if action == "spawn":
        return _spawn_title(state, name, "tmux")
    if action == "view_plan":
        if not name:
            return _say(state, "this agent belongs to no task: no plan to show", "info")
        state, _ = _open(
            state, kind="plan", title=f"plan of {name}", target=name, items=("loading the plan…",)
        )
        return state, (Call(method="GET", path=path, reply="plan"),)
    if action == "copy_branch":
        task = _task(state, name)
        branch = task.branch if task else ""
        return toast(state, f"copied {branch}", "info"), (Copy(branch),)
    return _say(state, f"unknown action {action!r}", "error")


def _spawn_title(state: State, task: str, mode: str) -> Result:
    base = f"{task}-agent" if task else "agent"
    what = f"for task {task}" if task else "standalone"
    return _open(
        state,
        kind="input",
        title=f"New {mode} agent {what}",
        text=_free_title(state, base),
        on_accept="spawn_title",
        fields={"task": task, "mode": mode},
        lines=("Its title (its branch and worktree are named after it):",),
    )


# -- overlays -------------------------------------------------------------------------------------------


def _accept(state: State, overlay: Overlay) -> Result:
    """What enter (or y) does in an overlay."""
    kind, action, target = overlay.kind, overlay.on_accept, overlay.target
    if kind == "confirm":
        state = _close(state)
        if action == "quit":
            return state, (Quit(),)
        if action.startswith("orphan:"):
            return _orphan(state, action, target, confirmed=True)
        if action.startswith(("transition:", "signal:")):
            return task_action(state, action, target, confirmed=True)
        return instance_action(state, action, target, confirmed=True)
    if kind == "menu":
        if not overlay.items:
            return _close(state), ()
        choice = overlay.items[overlay.cursor]
        state = _close(state)
        if overlay.on_accept == "task":
            return task_action(state, choice, target)
        return instance_action(state, choice, target)
    if kind == "picker":
        choice = overlay.items[overlay.cursor]
        state = _close(state)
        return _spawn_title(state, overlay.fields.get("task", ""), choice)
    if kind == "input":
        return _input_done(state, overlay)
    if kind == "tmux":
        return _orphan(state, "orphan:attach", _orphan_at(state, overlay.cursor))
    if kind == "attach_help":
        return _view(state, overlay=None, attached_once=True), (Attach(target),)
    return _close(state), ()


def _input_done(state: State, overlay: Overlay) -> Result:
    text = overlay.text.strip()
    fields = dict(overlay.fields)
    step = overlay.on_accept

    def again(message: str) -> Result:
        return _view(state, overlay=msgspec.structs.replace(overlay, lines=(message,))), ()

    if step == "rename":
        try:
            check_title(text)
        except UsageError as e:
            return again(str(e))
        if text == overlay.target:
            return _close(state), ()
        state = _view(state, overlay=None, selected=sidebar.instance_key(text))
        return state, (
            Call(
                method="POST",
                path=_inst_path(state, overlay.target, "rename"),
                body={"title": text},
                done=f"renamed {overlay.target} to {text}",
            ),
        )
    if step == "task_name":
        try:
            name = task_name(text)
        except UsageError as e:
            return again(str(e))
        if _task(state, name) is not None:
            return again(f'a task named "{name}" already exists; choose another name')
        return _open(
            state,
            kind="input",
            title=f"New task {name}",
            on_accept="task_brief",
            fields={"name": name},
            lines=("What should be done? (the brief; a planner turns it into a plan)",),
        )
    if step == "task_brief":
        if not text:
            return again("the brief is empty: say what the task is about")
        name = fields["name"]
        body = {"name": name, "title": text.splitlines()[0][:100], "content": text + "\n"}
        state = _view(state, overlay=None, selected=sidebar.task_key(name))
        return state, (
            Call(
                method="POST",
                path=f"{_project(state)}/tasks",
                body=body,
                done=f"task {name} created: s spawns an agent for it, enter starts planning",
            ),
        )
    if step == "spawn_title":
        try:
            check_title(text)
        except UsageError as e:
            return again(str(e))
        if text in _titles(state):
            return again(f'an instance titled "{text}" already exists; choose another title')
        return _open(
            state,
            kind="input",
            title=f"Prompt for {text}",
            on_accept="spawn_prompt",
            fields={**fields, "title": text},
            lines=("Its first prompt (empty: the agent starts at its prompt):",),
        )
    if step == "spawn_prompt":
        title, mode, task = fields["title"], fields.get("mode", "tmux"), fields.get("task", "")
        body: dict[str, Any] = {"title": title, "mode": mode}
        if mode == "sdk-fast":
            body["program"] = "codex"
        if text:
            body["prompt"] = text
        if task:
            body["task"] = task
        state = _view(state, overlay=None, selected=sidebar.instance_key(title))
        return state, (
            Call(
                method="POST",
                path=f"{_project(state)}/instances",
                body=body,
                done=f"started {title} ({mode})",
            ),
        )
    if step == "adopt":
        session = overlay.target
        state = _close(state)
        return state, (
            Call(
                method="POST",
                path=f"{_project(state)}/orphans/{quote(session, safe='')}/adopt",
                body={"title": text},
                done=f"adopted {session}",
            ),
        )
    return _close(state), ()


def _orphan_at(state: State, cursor: int) -> str:
    orphans = state.fleet.orphans
    return orphans[min(cursor, len(orphans) - 1)].session if orphans else ""


def _orphan(state: State, action: str, session: str, *, confirmed: bool = False) -> Result:
    if not session:
        return _say(state, "no orphan session selected", "info")
    if action == "orphan:attach":
        return _close(state), (Attach("", session=session),)
    if action == "orphan:adopt":
        return _open(
            state,
            kind="input",
            title=f"Adopt {session}",
            target=session,
            on_accept="adopt",
            lines=("A title for the new instance (empty: the session's name without corral_<project>_):",),
        )
    if action == "orphan:kill":
        if not confirmed:
            return _confirm(
                state,
                "orphan:kill",
                session,
                f"Kill the tmux session {session}?",
                "The session and every process of its agent are stopped.",
            )
        return state, (
            Call(
                method="POST",
                path=f"/v1/orphans/{quote(session, safe='')}/kill",
                done=f"killed session {session}",
            ),
        )
    return _say(state, f"unknown action {action!r}", "error")


def _overlay_key(state: State, key: str) -> Result:
    overlay = state.view.overlay
    assert overlay is not None
    kind = overlay.kind
    if kind == "attach_help":  # any key goes on to the attach
        return _accept(state, overlay)
    if kind == "input":
        return _input_key(state, overlay, key)
    if key in ("KEY_ESCAPE", "q") or (kind == "confirm" and key in ("n", "N")):
        return _close(state), ()
    if kind == "confirm":
        if key in ("y", "Y", "KEY_ENTER"):
            return _accept(state, overlay)
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
        return _view(state, overlay=msgspec.structs.replace(overlay, cursor=cursor)), ()
    if kind == "tmux":
        session = _orphan_at(state, overlay.cursor)
        if key == "a":
            return _orphan(state, "orphan:adopt", session)
        if key == "k":
            return _orphan(state, "orphan:kill", session)
    if key in ("KEY_ENTER", " ") and kind in ("menu", "picker", "tmux"):
        return _accept(state, overlay)
    if key in ("KEY_ENTER", "?") and kind in ("help", "tree", "plan", "checkout"):
        return _close(state), ()
    return state, ()


def _overlay_length(state: State, overlay: Overlay) -> int:
    if overlay.kind == "tmux":
        return len(state.fleet.orphans)
    if overlay.kind == "tree":
        from frontends.dashboard.overlays import tree_lines

        return len(tree_lines(state.fleet.tree))
    return len(overlay.items)


def _input_key(state: State, overlay: Overlay, key: str) -> Result:
    if key == "KEY_ESCAPE":
        return _close(state), ()
    if key == "KEY_ENTER":
        return _accept(state, overlay)
    if key == "KEY_BACKSPACE":
        text = overlay.text[:-1]
    elif len(key) == 1 and key.isprintable():
        text = overlay.text + key
    else:
        return state, ()
    return _view(state, overlay=msgspec.structs.replace(overlay, text=text)), ()


# -- interactive mode and search ------------------------------------------------------------------------


def _interactive_key(state: State, key: str) -> Result:
    title = state.view.selected.split(":", 1)[1] if state.view.selected.startswith("instance:") else ""
    if key in ("KEY_CTRL_SPACE", "KEY_CTRL_Q"):
        return _view(state, interactive=False), ()
    if key == "KEY_CTRL_ENTER":
        return _view(state, interactive=False), (SendKeys(title, ("Enter",)),)
    if not title:
        return _view(state, interactive=False), ()
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
        return _view(state, searching=False, search=""), ()
    if key == "KEY_ENTER":
        return _view(state, searching=False), ()
    if key == "KEY_BACKSPACE":
        return _keep_selection(_view(state, search=state.view.search[:-1])), ()
    if key in ("KEY_UP", "KEY_DOWN"):
        return _move(state, -1 if key == "KEY_UP" else 1)
    if len(key) == 1 and key.isprintable():
        return _keep_selection(_view(state, search=state.view.search + key)), ()
    return state, ()


def _keep_selection(state: State) -> State:
    """After the rows changed (search, filter), select the first row when the selected one is gone."""
    _, row = _selection(state)
    if row is not None and row.key != state.view.selected:
        return _view(state, selected=row.key, scroll=0)
    return state


# -- the dashboard's own keys ---------------------------------------------------------------------------


def _on_instance(action: str) -> Callable[[State], Result]:
    def act(state: State) -> Result:
        inst, _ = _target(state)
        if inst is None:
            text, key = INSTANCE_LABELS[action]
            return _say(state, f"{key}: select an agent first ({text})", "info")
        return instance_action(state, action, inst.title)

    return act


def _enter(state: State) -> Result:
    _, row = _selection(state)
    if row is not None and row.task is not None:
        return _menu(state)
    return _on_instance("open")(state)


def _menu(state: State) -> Result:
    _, row = _selection(state)
    if row is None:
        return state, ()
    if row.task is not None:
        return _open(
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
    return _open(
        state,
        kind="menu",
        title=f"{inst.title} ({inst.status})",
        items=instance_actions(inst),
        target=inst.title,
        on_accept="instance",
    )


def _spawn(state: State, *, standalone: bool = False) -> Result:
    _, task = _target(state)
    return _spawn_title(state, "" if standalone or task is None else task.name, "tmux")


def _spawn_picker(state: State) -> Result:
    _, task = _target(state)
    return _open(
        state,
        kind="picker",
        title="Spawn an agent: how it runs",
        items=SPAWN_MODES,
        fields={"task": task.name if task else ""},
        on_accept="spawn_mode",
    )


def _new_task(state: State) -> Result:
    return _open(
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
    inst, task = _target(state)
    if inst is None and task is not None:
        return _say(state, "m marks one wave task's agent complete: select the agent under the task", "info")
    return _on_instance("mark")(state)


def _quit(state: State) -> Result:
    running = [i for i in state.fleet.instances if i.status in ALIVE]
    if not running:
        return state, (Quit(),)
    return _confirm(
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
            _keep_selection(_view(state, filter=value)),
            f"showing {value if value == 'all' else 'active agents only'}",
            "info",
        ), ()

    return act


def _sort(state: State) -> Result:
    after = SORTS[(SORTS.index(state.view.sort) + 1) % len(SORTS)]
    return toast(_view(state, sort=after), f"sorted by {after}", "info"), ()


def _help(state: State) -> Result:
    return _open(state, kind="help", title="corral dashboard — keys", items=HELP)


def _tmux(state: State) -> Result:
    return _open(state, kind="tmux", title="tmux sessions no instance owns (orphans)")


def _tree(state: State) -> Result:
    return _open(state, kind="tree", title="supervision tree")


def _escape(state: State) -> Result:
    if state.view.search:
        return _keep_selection(_view(state, search="")), ()
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
    "L": lambda s: (_view(s, audit_open=not s.view.audit_open), ()),
    "1": _filter("all"),
    "2": _filter("active"),
    "3": _sort,
    "/": lambda s: (_view(s, searching=True), ()),
    "?": _help,
    "q": _quit,
    "KEY_CTRL_C": _quit,
    "KEY_ESCAPE": _escape,
}

HELP: tuple[str, ...] = (
    "move         ↑ ↓ (home, end)    tab / shift+tab: Agent, Diff, Info    pgup pgdn: scroll the preview",
    "enter, o     attach fullscreen (a task: its menu); ctrl+q or ctrl+space detaches",
    "space        the context menu of the selected task or agent",
    "n            new task (then s spawns an agent for it)",
    "N            new standalone agent with a prompt",
    "s            spawn an agent (for the selected task)        S  the same, choosing tmux/pty/sdk/sdk-fast",
    "i            interactive: keys go to the agent; ctrl+space leaves, ctrl+enter sends and leaves",
    "!            interactive, and send ! (the harness's shell mode)",
    "y            answer yes to the agent's permission prompt",
    "k            kill (asks; the row stays)        K  pause (branch kept)        r  resume",
    "R            restart        c  checkout: pause, copy the branch, show the git commands",
    "e            rename        p  push the branch        P  create a pull request (gh)",
    "m            mark a wave task's agent complete        D  delete an ended agent (asks)",
    "T            tmux sessions no instance owns: adopt, attach, kill",
    "t            the supervision tree: restarts, intensity, backoff, last exit (live)",
    "L            audit pane        1 all   2 active only   3 sort: status, name, created",
    "/            search by title or task (enter keeps, esc clears)",
    "?            this help        q  quit (agents keep running; asks while they run)",
    "",
    "glyphs       ● running  ◌ starting  ○ idle at its prompt  ◆ needs you  ‖ paused  □ ended  ✗ failed",
    "tasks        ◆ waits for you (its question below it)   W2 3/5: wave 2, 3 of its 5 tasks done  ✗1 failed",
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


def on_reply(state: State, call: Call, answer: Any) -> State:
    """Show the answer of a request made with `reply` set: the checkout's commands, the task's plan."""
    if call.reply == "checkout" and isinstance(answer, dict):
        commands = tuple(str(c) for c in answer.get("commands") or ())
        branch = str(answer.get("branch") or "")
        return _view(
            state,
            overlay=Overlay(
                kind="checkout",
                title=f"checkout {branch}",
                items=commands,
                lines=(f"The agent is paused and {branch} is on your clipboard. Run:",),
            ),
        )
    if call.reply == "plan" and isinstance(answer, dict):
        overlay = state.view.overlay
        if overlay is None or overlay.kind != "plan":
            return state
        content = str(answer.get("content") or "(the task has no plan yet)")
        return _view(
            state, overlay=msgspec.structs.replace(overlay, items=tuple(content.splitlines()), cursor=0)
        )
    return state


__all__ = [
    "HELP",
    "KEYS",
    "YES",
    "handle",
    "instance_actions",
    "normalize",
    "on_reply",
    "task_actions",
    "toast",
]
