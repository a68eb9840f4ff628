"""The lifecycle roles corral starts agents in (`CORRAL_AGENT_TYPE`), played for real from the role's prompt.

    role = Role.from_env(os.environ, task="fix-login")   # None without CORRAL_AGENT_TYPE, or an unknown one
    turn = play(role, prompt)                            # → RoleTurn(steps, fault, key), or None

| role | its prompt ends with | what the sim does |
|---|---|---|
| planner | `planner_finished` | writes a plan (2 waves × 3 tasks) to `.corral/plans/<task>.md`, sends it |
| coder in a wave | `implement_task_finished` | appends to its task's own file, commits `Task N: title` |
| coder, fixer | `implement_finished` | the default work (append to `sim/<task>.txt`, commit) |
| reviewer | `review_approved` | approves; with `sim-review: changes-once`, asks for changes in round 1 |
| readiness | `verify_approved` | approves |

Each role then runs that signal command. No role but the coder and the fixer commits.

A role plays the prompt corral gave it, recognised by the signal that prompt ends with; any other plain
prompt (a person typing into the agent's pane) gets the default work, as without a role. Markers are lines
of the prompt (the brief, a task's body) that steer the sim: `sim-plan: waves=3 tasks=2`, `sim-review:
changes-once`, `sim-fault: fail-once` and `sim-file: PATH` (the file a wave task edits, else the first file
its body names). `CORRAL_SIM_PLAN` and `CORRAL_SIM_REVIEW` set the first two for every agent; a marker in
the prompt wins.

The steps are the agent's own (`directives.Step`), with two that no prompt can ask for: `write PATH TEXT`
(replace a file) and `emit TYPE TASK [PAYLOAD]` (the payload may span lines). Pure: a decision reads only
the prompt and the Role. The agent carries the steps out and keeps the memory a `fail-once` needs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from frontends.sim.directives import SignalCall, Step, find_signal_instructions

__all__ = ["AGENT_TYPES", "DEFAULT_PLAN", "FAULTS", "MAX_PLAN", "Role", "RoleTurn", "plan_text", "play"]

AGENT_TYPES = ("planner", "coder", "reviewer", "fixer", "readiness")
DEFAULT_PLAN = (2, 3)
"""Waves, and tasks per wave, of the plan a planner writes unless a `sim-plan:` marker says otherwise."""
MAX_PLAN = 20
"""The most waves, and tasks per wave, a `sim-plan:` marker gets: larger values are cut down to it."""

_PLAN_DIR = ".corral/plans"  # protocols.prompts.PLAN_DIR: the sim imports only the standard library


@dataclass(frozen=True, slots=True)
class Role:
    """Who corral started this agent as, from its environment (`CORRAL_AGENT_TYPE`, `CORRAL_WAVE`…)."""

    agent_type: str
    task: str = ""
    wave: str = ""
    instance: str = ""
    plan_size: str = ""
    review: str = ""
    preapproved: bool = False
    """corral manages the session (CORRAL_MANAGED=1) and CORRAL_SIM_AUTO_APPROVE is not "0": the role's own
    turn is approved without asking, as an agent started with its permission prompts off works, so that
    `default_program = "corral-sim"` alone runs a task end to end. Other prompts ask as before."""

    @classmethod
    def from_env(cls, env: Mapping[str, str], task: str = "") -> Role | None:
        """The role in `env`, or None when there is none (or one the sim does not know): no role to play."""
        agent_type = env.get("CORRAL_AGENT_TYPE", "").strip().lower()
        if agent_type not in AGENT_TYPES:
            return None
        return cls(
            agent_type=agent_type,
            task=task or env.get("CORRAL_TASK", ""),
            wave=env.get("CORRAL_WAVE", "").strip(),
            instance=env.get("CORRAL_INSTANCE_TITLE", ""),
            plan_size=env.get("CORRAL_SIM_PLAN", ""),
            review=env.get("CORRAL_SIM_REVIEW", ""),
            preapproved=env.get("CORRAL_MANAGED") == "1"
            and env.get("CORRAL_SIM_AUTO_APPROVE", "").strip().lower() not in ("0", "false", "no", "off"),
        )


@dataclass(frozen=True, slots=True)
class RoleTurn:
    """What the role does with a prompt: its steps, unless `fault` says otherwise (see FAULTS); a `-once`
    attempt is remembered by `key` (the instance title)."""

    steps: tuple[Step, ...]
    fault: str = ""
    key: str = ""


FAULTS = ("fail", "fail-once", "silent", "silent-once")
"""`sim-fault:` modes a role obeys: exit 0 before any work (`fail`), or do the work but never send the
signal that finishes the step (`silent`: the agent then sits idle at its prompt, as a real agent that forgets
does); `-once`: only on the first attempt of the task."""


def play(role: Role, prompt: str) -> RoleTurn | None:
    """What `role` does with the plain prompt `prompt`; None when it is not the role's prompt."""
    turn = _PLAYERS[role.agent_type](role, prompt)
    if turn is None or turn.fault:
        return turn
    # A brief's marker, for the roles that have no task body; a marker in a plan's task belongs to that task.
    brief = re.sub(r"^#{2,3} Task \d+:.*?(?=^#{1,3} |\Z)", "", prompt, flags=re.MULTILINE | re.DOTALL)
    fault, _, rest = _marker(brief, "fault").partition(" ")
    only = re.search(r"\broles?\s*=\s*([\w,]+)", rest)  # `sim-fault: silent roles=coder`: those roles only
    if fault not in FAULTS or (only and role.agent_type not in only.group(1).split(",")):
        return turn
    return RoleTurn(turn.steps, fault, turn.key or role.instance or role.task)


# --- planner -------------------------------------------------------------------------------------------


def _planner(role: Role, prompt: str) -> RoleTurn | None:
    call = _call(prompt, "planner_finished")
    if call is None:
        return None
    task = call.task or role.task
    waves, tasks = _plan_size(_marker(prompt, "plan") or role.plan_size)
    faults = _faults_by_task(prompt, waves * tasks)
    text = plan_text(_heading_title(prompt) or task, task, waves, tasks, faults)
    path = f"{_PLAN_DIR}/{task or 'plan'}.md"
    return RoleTurn(
        (
            Step("echo", f"I'll write a plan of {waves} waves × {tasks} tasks to {path} and send it."),
            Step("write", f"{path} {text}"),
            Step("emit", f"planner_finished {task} {text}"),
        )
    )


def plan_text(title: str, task: str, waves: int, tasks: int, faults: Mapping[int, str] | None = None) -> str:
    """A plan in corral's format: `waves` waves of `tasks` tasks, numbered 1, 2, … across the plan. Each
    task edits a file of its own, `sim/<task>/task-<n>.txt`, so the tasks of a wave never touch the same
    file; `faults` puts a `sim-fault:` marker into the body of the tasks it numbers."""
    lines = [
        f"# {title}",
        "",
        f"**Goal:** {title}, in {waves} waves of {tasks} tasks (a plan written by corral-sim)",
        "",
    ]
    for wave in range(1, waves + 1):
        lines += [f"## Wave {wave}: Part {wave}", ""]
        for number in range((wave - 1) * tasks + 1, wave * tasks + 1):
            path = f"sim/{_slug(task)}/task-{number}.txt"
            lines += [
                f"### Task {number}: Write task-{number}.txt",
                "",
                f"Append a line to `{path}` and commit only that file.",
                "",
                f"sim-file: {path}",
            ]
            if faults and number in faults:
                lines.append(f"sim-fault: {faults[number]}")
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _plan_size(spec: str) -> tuple[int, int]:
    """`waves=3 tasks=2` → (3, 2); a missing key keeps its default, a value is kept within 1..MAX_PLAN."""
    sizes = dict(zip(("waves", "tasks"), DEFAULT_PLAN, strict=True))
    for key, value in re.findall(r"\b(waves|tasks)\s*=\s*(\d+)", spec):
        sizes[key] = min(max(int(value), 1), MAX_PLAN)
    return sizes["waves"], sizes["tasks"]


def _faults_by_task(prompt: str, count: int) -> dict[int, str]:
    """The brief's `sim-fault: MODE [tasks=N,M]` lines, as task number → MODE, for a plan of `count`
    tasks (a line without `tasks=` marks every task; a later line wins)."""
    faults: dict[int, str] = {}
    for spec in _markers(prompt, "fault"):
        mode, _, rest = spec.partition(" ")
        chosen = re.search(r"\btasks?\s*=\s*([\d, ]+)", rest)
        numbers = [int(n) for n in re.findall(r"\d+", chosen.group(1))] if chosen else range(1, count + 1)
        faults.update(dict.fromkeys(numbers, mode))
    return faults


# --- coders and fixers ---------------------------------------------------------------------------------


def _coder(role: Role, prompt: str) -> RoleTurn | None:
    if role.wave or _call(prompt, "implement_task_finished") is not None:
        return _wave_coder(role, prompt) or _implementer(role, prompt)
    return _implementer(role, prompt)


def _implementer(role: Role, prompt: str) -> RoleTurn | None:
    """A coder without a wave, or a fixer: the default work, then `implement_finished`."""
    call = _call(prompt, "implement_finished")
    if call is None:
        return None
    subject = _heading_line(prompt) or "implement the task"
    return RoleTurn((Step("work", subject), _emit_step(call, role)))


def _wave_coder(role: Role, prompt: str) -> RoleTurn | None:
    """One task of a wave: its own file, a `Task N: title` commit, `implement_task_finished`."""
    call = _call(prompt, "implement_task_finished")
    numbers = _wave_numbers(role, prompt, call)
    if numbers is None:
        return None
    wave, number = numbers
    title = _task_title(prompt) or f"task {number}"
    payload = call.payload if call is not None and call.payload else _wave_payload(wave, number)
    done = SignalCall("implement_task_finished", call.task if call is not None else "", payload)
    body = _task_body(prompt, number)
    path = _named_file(body) or f"sim/{_slug(role.task or done.task)}/task-{number}.txt"
    who = role.instance or "corral-sim"
    fault = _marker(body, "fault").split(" ")[0]
    return RoleTurn(
        (
            Step("echo", f"I'll do Task {number} of wave {wave} in {path} and commit it."),
            Step("edit", f"{path} Task {number}: {title} (wave {wave}, by {who})"),
            Step("commit", f"Task {number}: {title}"),
            _emit_step(done, role),
        ),
        fault=fault if fault in FAULTS else "",
        key=role.instance or f"{role.task or done.task}-task-{number}",
    )


def _wave_numbers(role: Role, prompt: str, call: SignalCall | None) -> tuple[int, int] | None:
    """(wave, task number): from the prompt's implement_task_finished payload, else from CORRAL_WAVE and
    the `# Implement Task N:` heading; None when the prompt names no task."""
    try:
        given = json.loads(call.payload) if call is not None and call.payload else {}
    except ValueError:
        given = {}
    given = given if isinstance(given, dict) else {}
    heading = re.search(r"^#\s+Implement Task (\d+)\b", prompt, re.MULTILINE)
    number = given.get("task_number") or (int(heading.group(1)) if heading else None)
    wave = given.get("wave_number") or (int(role.wave) if role.wave.isdigit() else 1)
    if not isinstance(number, int) or not isinstance(wave, int):
        return None
    return wave, number


def _wave_payload(wave: int, number: int) -> str:
    return json.dumps({"wave_number": wave, "task_number": number})


def _task_body(prompt: str, number: int) -> str:
    """The `## Task N: title` section of a wave prompt (the task's body), or the whole prompt."""
    found = re.search(rf"^## Task {number}:.*?(?=^## |\Z)", prompt, re.MULTILINE | re.DOTALL)
    return found.group(0) if found else prompt


def _named_file(body: str) -> str:
    """The file a task's body names: its `sim-file:` line, else the first relative path with a file
    extension (`notes/n1.txt`, `` `src/app.py` ``); "" when it names none."""
    marked = _marker(body, "file")
    if marked:
        return marked
    found = _PATH.search(body)
    return found.group(1) or found.group(2) if found else ""


# A relative path with a directory and an extension (not part of a URL, an absolute path or one with
# "..": the sim edits only inside its worktree), or a file name in backticks (`README.md`).
_PATH = re.compile(
    r"(?:^|(?<=[\s`'\"(]))(?!\.\./)((?:(?!\.\./)[\w.-]+/)+[\w-][\w.-]*\.[A-Za-z0-9]+)\b"
    r"|`([\w-][\w.-]*\.[A-Za-z0-9]+)`"
)


def _task_title(prompt: str) -> str:
    found = re.search(r"^#\s+Implement Task \d+:\s*(.+)$", prompt, re.MULTILINE)
    return found.group(1).strip() if found else ""


# --- reviewer and readiness ----------------------------------------------------------------------------

_REVIEW_MODES = ("approve", "changes-once", "changes")


def _reviewer(role: Role, prompt: str) -> RoleTurn | None:
    approve = _call(prompt, "review_approved")
    if approve is None:
        return None
    round_ = _round(prompt)
    mode = _marker(prompt, "review").split(" ")[0] or _review_env(role.review)
    wants_changes = mode == "changes" or (mode == "changes-once" and round_ == 1)
    if not wants_changes:
        verdict = SignalCall(
            approve.signal_type,
            approve.task,
            f"Approved by corral-sim (round {round_}): the work does what was asked and is committed.",
        )
        return RoleTurn(
            (Step("echo", f"Round {round_}: the work is good. Approving."), _emit_step(verdict, role))
        )
    changes = _call(prompt, "review_changes", "review_changes_requested") or SignalCall("review_changes")
    feedback = SignalCall(
        changes.signal_type,
        changes.task or approve.task,
        f"corral-sim asks for changes (round {round_}, sim-review: {mode}): add a line saying the work "
        "was reviewed, and commit it.",
    )
    return RoleTurn((Step("echo", f"Round {round_}: this needs changes."), _emit_step(feedback, role)))


def _review_env(value: str) -> str:
    """CORRAL_SIM_REVIEW, written as the mode alone (`changes-once`) or as the marker line."""
    mode = value.strip().removeprefix("sim-review:").strip().split(" ")[0]
    return mode if mode in _REVIEW_MODES else ""


def _round(prompt: str) -> int:
    found = re.search(r"\(round (\d+)\)", prompt)
    return int(found.group(1)) if found else 1


def _readiness(role: Role, prompt: str) -> RoleTurn | None:
    approve = _call(prompt, "verify_approved")
    if approve is None:
        return None
    verdict = SignalCall(approve.signal_type, approve.task)
    return RoleTurn((Step("echo", "The branch is ready to merge."), _emit_step(verdict, role)))


# --- reading prompts -----------------------------------------------------------------------------------


def _call(prompt: str, *signal_types: str) -> SignalCall | None:
    """The last `corral signal emit` command of one of `signal_types` in the prompt (a prompt's own
    command comes last; earlier mentions may be examples)."""
    calls = [c for c in find_signal_instructions(prompt) if c.signal_type in signal_types]
    return calls[-1] if calls else None


def _emit_step(call: SignalCall, role: Role) -> Step:
    task = call.task or role.task
    return Step("emit", f"{call.signal_type} {task} {call.payload}".rstrip())


def _markers(prompt: str, name: str) -> list[str]:
    """The values of the `sim-<name>: VALUE` lines of the prompt, in order (a list bullet may precede)."""
    pattern = rf"^[ \t>*-]*sim-{name}:[ \t]*(.*?)[ \t]*$"
    return [value for value in re.findall(pattern, prompt, re.MULTILINE) if value]


def _marker(prompt: str, name: str) -> str:
    found = _markers(prompt, name)
    return found[0] if found else ""


def _heading_line(prompt: str) -> str:
    """The prompt's first heading without its `#`s: `Implement task fix-login: Fix the form`."""
    found = re.search(r"^#+\s+(.+)$", prompt, re.MULTILINE)
    return found.group(1).strip() if found else ""


def _heading_title(prompt: str) -> str:
    """The title after the task in a `# Plan task <task>: <title>` heading."""
    found = re.search(r"^#\s+Plan task \S+:\s*(.+)$", prompt, re.MULTILINE)
    return found.group(1).strip() if found else ""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.") or "work"


_PLAYERS: Mapping[str, Callable[[Role, str], RoleTurn | None]] = {
    "planner": _planner,
    "coder": _coder,
    "fixer": _implementer,
    "reviewer": _reviewer,
    "readiness": _readiness,
}
