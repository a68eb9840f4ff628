"""What each action of the dashboard does: the requests it makes, the confirmation it asks first, the
form it opens — for a key, a menu entry or an accepted overlay alike, so `k` and "kill" in the agent's menu
are one code path.

    state, effects = instance_action(state, "kill", "fix-login")                  # opens the confirm
    state, effects = instance_action(state, "kill", "fix-login", confirmed=True)  # the Call
    state, effects = accept(state, state.view.overlay)                            # enter in an overlay

Pure like keys.handle: a new State and the effects (`Call` with the path and body docs/api.md gives,
`Attach`, `Copy`, `Quit`). A request whose answer is shown carries `Call.reply`, and `on_reply(state,
call, answer)` shows it: the checkout's git commands, a task's plan.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import msgspec

from frontends.dashboard import sidebar
from frontends.dashboard.labels import label
from frontends.dashboard.model import Attach, Call, Copy, Effect, Overlay, Quit, State, Toast
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
_WAVE_TITLE = re.compile(r"-W(\d+)-T(\d+)$")


# -- small helpers --------------------------------------------------------------------------------------


def change_view(state: State, **changes: Any) -> State:
    return msgspec.structs.replace(state, view=msgspec.structs.replace(state.view, **changes))


def toast(state: State, text: str, level: str = "info") -> State:
    """`state` with a toast that lasts TOAST_S (at most 5 kept)."""
    item = Toast(text=text, level=level, until=state.now + TOAST_S)  # type: ignore[arg-type]
    live = tuple(t for t in state.view.toasts if t.until > state.now)[-4:]
    return change_view(state, toasts=(*live, item))


def say(state: State, text: str, level: str = "warn") -> Result:
    return toast(state, text, level), ()


def open_overlay(state: State, **overlay: Any) -> Result:
    return change_view(state, overlay=Overlay(**overlay)), ()


def close_overlay(state: State) -> State:
    return change_view(state, overlay=None)


def _project(state: State) -> str:
    return f"/v1/repos/{quote(state.fleet.project, safe='')}"


def _inst_path(state: State, title: str, action: str = "") -> str:
    path = f"{_project(state)}/instances/{quote(title, safe='')}"
    return f"{path}/{action}" if action else path


def find_instance(state: State, title: str) -> InstanceView | None:
    return next((i for i in state.fleet.instances if i.title == title), None)


def find_task(state: State, name: str) -> TaskSummary | None:
    return next((t for t in state.fleet.tasks if t.name == name), None)


def selection(state: State) -> tuple[list[sidebar.Row], sidebar.Row | None]:
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


# -- what acts on the selection -------------------------------------------------------------------------


def target(state: State) -> tuple[InstanceView | None, TaskSummary | None]:
    """The selected instance, and the selected task (the row's, or the selected instance's task)."""
    _, row = selection(state)
    if row is None:
        return None, None
    if row.instance is not None:
        return row.instance, find_task(state, row.instance.task) if row.instance.task else None
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


def confirm(state: State, action: str, target: str, title: str, *lines: str) -> Result:
    return open_overlay(
        state, kind="confirm", title=title, items=tuple(lines), target=target, on_accept=action
    )


def instance_action(state: State, action: str, title: str, *, confirmed: bool = False) -> Result:
    """Carry out `action` on instance `title`: ask first where it cannot be undone or stops work."""
    inst = find_instance(state, title)
    if inst is None:
        return say(state, f"{title} is no longer listed")
    path = _inst_path(state, title)
    if action == "open":
        if inst.mode not in ATTACHABLE:
            return say(
                state,
                f"{title} runs in {inst.mode} mode: no terminal to attach; its transcript is the preview",
                "info",
            )
        if inst.status not in ALIVE:
            hint = "r resumes it" if inst.status == "paused" else "R restarts it"
            return say(state, f"{title} is {inst.status}: nothing to attach to ({hint})")
        if not state.view.attached_once:
            return open_overlay(
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
            return say(state, f"{title} {why}: interactive mode needs a live terminal agent")
        return change_view(state, interactive=True, selected=sidebar.instance_key(title)), ()
    if action == "yes":
        if inst.status != "waiting":
            return say(state, f"{title} is {inst.status}, not waiting on a prompt: nothing to answer")
        return state, (
            Call(method="POST", path=f"{path}/send", body=dict(YES), done=f"answered yes to {title}"),
        )
    if action == "pause":
        if inst.status == "paused":
            return say(state, f"{title} is already paused (r resumes it)", "info")
        return state, (
            Call(method="POST", path=f"{path}/pause", done=f"paused {title} (branch kept; r resumes)"),
        )
    if action == "resume":
        if inst.status in FINISHED:
            return instance_action(state, "restart", title)
        if inst.status != "paused":
            return say(state, f"{title} is {inst.status}, not paused: nothing to resume", "info")
        return state, (Call(method="POST", path=f"{path}/resume", done=f"resumed {title}"),)
    if action == "restart":
        if inst.status in ALIVE and not confirmed:
            return confirm(
                state,
                "restart",
                title,
                f"Restart {title}?",
                f"{title} is {inst.status}: its agent is stopped and started again.",
            )
        return state, (Call(method="POST", path=f"{path}/restart", done=f"restarted {title}"),)
    if action == "kill":
        if inst.status in FINISHED:
            return say(state, f"{title} already ended ({inst.status}); D deletes it", "info")
        if not confirmed:
            return confirm(
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
        return open_overlay(
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
            return confirm(
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
            return say(state, f"{title} is not a wave task's agent: nothing to mark complete")
        wave, number = numbers
        if not confirmed:
            return confirm(
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
            return say(state, f"{title} is {inst.status}: kill it first (k), then D deletes it")
        if not confirmed:
            return confirm(
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
    return say(state, f"unknown action {action!r}", "error")


def task_action(state: State, action: str, name: str, *, confirmed: bool = False) -> Result:
    """Carry out `action` on task `name`: a lifecycle event, a wave signal, spawning an agent, the plan."""
    path = f"{_project(state)}/tasks/{quote(name, safe='')}"
    if action.startswith("transition:"):
        event = action.split(":", 1)[1]
        if event == "cancel" and not confirmed:
            return confirm(
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
        return spawn_form(state, name, "tmux")
    if action == "view_plan":
        if not name:
            return say(state, "this agent belongs to no task: no plan to show", "info")
        state, _ = open_overlay(
            state, kind="plan", title=f"plan of {name}", target=name, items=("loading the plan…",)
        )
        return state, (Call(method="GET", path=path, reply="plan"),)
    if action == "copy_branch":
        task = find_task(state, name)
        branch = task.branch if task else ""
        return toast(state, f"copied {branch}", "info"), (Copy(branch),)
    return say(state, f"unknown action {action!r}", "error")


def spawn_form(state: State, task: str, mode: str) -> Result:
    base = f"{task}-agent" if task else "agent"
    what = f"for task {task}" if task else "standalone"
    return open_overlay(
        state,
        kind="input",
        title=f"New {mode} agent {what}",
        text=_free_title(state, base),
        on_accept="spawn_title",
        fields={"task": task, "mode": mode},
        lines=("Its title (its branch and worktree are named after it):",),
    )


# -- overlays -------------------------------------------------------------------------------------------


def accept(state: State, overlay: Overlay) -> Result:
    """What enter (or y) does in an overlay."""
    kind, action, target = overlay.kind, overlay.on_accept, overlay.target
    if kind == "confirm":
        state = close_overlay(state)
        if action == "quit":
            return state, (Quit(),)
        if action.startswith("orphan:"):
            return orphan_action(state, action, target, confirmed=True)
        if action.startswith(("transition:", "signal:")):
            return task_action(state, action, target, confirmed=True)
        return instance_action(state, action, target, confirmed=True)
    if kind == "menu":
        if not overlay.items:
            return close_overlay(state), ()
        choice = overlay.items[overlay.cursor]
        state = close_overlay(state)
        if overlay.on_accept == "task":
            return task_action(state, choice, target)
        return instance_action(state, choice, target)
    if kind == "picker":
        choice = overlay.items[overlay.cursor]
        state = close_overlay(state)
        return spawn_form(state, overlay.fields.get("task", ""), choice)
    if kind == "input":
        return _input_done(state, overlay)
    if kind == "tmux":
        return orphan_action(state, "orphan:attach", orphan_at(state, overlay.cursor))
    if kind == "attach_help":
        return change_view(state, overlay=None, attached_once=True), (Attach(target),)
    return close_overlay(state), ()


def _input_done(state: State, overlay: Overlay) -> Result:
    text = overlay.text.strip()
    fields = dict(overlay.fields)
    step = overlay.on_accept

    def again(message: str) -> Result:
        return change_view(state, overlay=msgspec.structs.replace(overlay, lines=(message,))), ()

    if step == "rename":
        try:
            check_title(text)
        except UsageError as e:
            return again(str(e))
        if text == overlay.target:
            return close_overlay(state), ()
        state = change_view(state, overlay=None, selected=sidebar.instance_key(text))
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
        if find_task(state, name) is not None:
            return again(f'a task named "{name}" already exists; choose another name')
        return open_overlay(
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
        state = change_view(state, overlay=None, selected=sidebar.task_key(name))
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
        return open_overlay(
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
        state = change_view(state, overlay=None, selected=sidebar.instance_key(title))
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
        state = close_overlay(state)
        return state, (
            Call(
                method="POST",
                path=f"{_project(state)}/orphans/{quote(session, safe='')}/adopt",
                body={"title": text},
                done=f"adopted {session}",
            ),
        )
    return close_overlay(state), ()


def orphan_at(state: State, cursor: int) -> str:
    orphans = state.fleet.orphans
    return orphans[min(cursor, len(orphans) - 1)].session if orphans else ""


def orphan_action(state: State, action: str, session: str, *, confirmed: bool = False) -> Result:
    if not session:
        return say(state, "no orphan session selected", "info")
    if action == "orphan:attach":
        return close_overlay(state), (Attach("", session=session),)
    if action == "orphan:adopt":
        return open_overlay(
            state,
            kind="input",
            title=f"Adopt {session}",
            target=session,
            on_accept="adopt",
            lines=("A title for the new instance (empty: the session's name without corral_<project>_):",),
        )
    if action == "orphan:kill":
        if not confirmed:
            return confirm(
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
    return say(state, f"unknown action {action!r}", "error")


def on_reply(state: State, call: Call, answer: Any) -> State:
    """Show the answer of a request made with `reply` set: the checkout's commands, the task's plan."""
    if call.reply == "checkout" and isinstance(answer, dict):
        commands = tuple(str(c) for c in answer.get("commands") or ())
        branch = str(answer.get("branch") or "")
        return change_view(
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
        return change_view(
            state, overlay=msgspec.structs.replace(overlay, items=tuple(content.splitlines()), cursor=0)
        )
    return state
