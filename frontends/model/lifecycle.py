"""The built-in "lifecycle" scenario: every corral role played from its prompt, as corral-sim plays it.

    lifecycle_turns(planner_prompt("fix-login", "Fix it", brief))
    → (Turn(say="I'll write a plan…", tool=ToolCall("write", ".corral/plans/fix-login.md", plan)),
       Turn(tool=ToolCall("run", command="corral signal emit planner_finished fix-login --payload …")),
       Turn(say="Done: …"))

What a role does is corral-sim's decision (`frontends.sim.behaviour.roles.play`, with the same markers:
`sim-plan: waves=3 tasks=2`, `sim-review: changes-once`, `sim-file: PATH`), so the two stand-ins never
disagree: the planner writes a valid plan and sends it, a coder appends to its file and commits it, a
reviewer approves (or asks for changes in round 1 when told), a readiness agent approves. Here each of
those steps becomes a tool call that the real agent CLI carries out — a file write, a shell command — and
the signal is the exact command the prompt ends with (a `"<your review>"` placeholder filled in). A nudge
runs the first command it offers. Pure: the turns depend on the prompt alone, so a retried request gets
the same turn.
"""

from __future__ import annotations

import os
import re
import shlex

from frontends.model.roles import is_nudge, role_of
from frontends.model.scenario import ToolCall, Turn
from frontends.sim.behaviour.roles import Role, play
from frontends.sim.directives import Step, find_signal_instructions

__all__ = ["COMMIT_ATTEMPTS", "lifecycle_turns"]

_NO_ROLE = (
    "corral-model (lifecycle scenario): this prompt is for no corral role (it ends with no `corral signal "
    "emit` command), so there is nothing to do."
)
_PLACEHOLDER = re.compile(r"\"<[^\"\n]*>\"|'<[^'\n]*>'")


def lifecycle_turns(prompt: str) -> tuple[Turn, ...]:
    """The turns that play the corral role `prompt` is for; one reply saying why when it is for none."""
    if is_nudge(prompt):
        return _nudged(prompt)
    role = role_of(prompt)
    if not role:
        return (Turn(say=_NO_ROLE),)
    calls = find_signal_instructions(prompt)
    task = calls[-1].task if calls else ""
    played = play(Role(agent_type=role, task=task), prompt)
    if played is None:
        return (Turn(say=_NO_ROLE),)
    return _turns(played.steps, prompt, task)


def _turns(steps: tuple[Step, ...], prompt: str, task: str) -> tuple[Turn, ...]:
    turns: list[Turn] = []
    said: list[str] = []
    edited: list[str] = []
    done: list[str] = []

    def call(tool: ToolCall) -> None:
        turns.append(Turn(say="\n\n".join(said), tool=tool))
        said.clear()

    for step in steps:
        if step.name == "echo":
            said.append(_ours(step.arg))
        elif step.name == "write":
            path, _, text = step.arg.partition(" ")
            call(ToolCall("write", path=path, content=text.rstrip("\n") + "\n"))
            done.append(f"wrote {path}")
        elif step.name == "edit":
            path, _, text = step.arg.partition(" ")
            call(_append(path, _ours(text)))
            edited.append(path)
        elif step.name == "work":
            path = f"sim/{_slug(task)}.txt" if task else "sim/work.txt"
            said.append(f"I'll record this in {path} and commit it.")
            call(_append(path, f"turn 1: {_one_line(step.arg, 100)}"))
            edited.append(path)
            call(_commit(f"sim: {_one_line(step.arg, 60)}", edited))
            done.append(f"committed {', '.join(edited)}")
            edited = []
        elif step.name == "commit":
            call(_commit(step.arg, edited))
            done.append(f"committed {', '.join(edited)}")
            edited = []
        elif step.name == "emit":
            signal_type, task, payload = [*step.arg.split(" ", 2), "", ""][:3]
            call(_signal(prompt, signal_type, task, _ours(payload)))
            done.append(f"sent {signal_type}")
    summary = "; ".join(done) or "nothing to do"
    turns.append(Turn(say="\n\n".join([*said, f"Done: {summary}."])))
    return tuple(turns)


def _nudged(prompt: str) -> tuple[Turn, ...]:
    """A nudge: run the first command it offers (the one that finishes the step well)."""
    calls = find_signal_instructions(prompt)
    if not calls:
        return (Turn(say="corral-model: the nudge offers no command; nothing to do."),)
    first = calls[0]
    return (
        Turn(
            say="Sorry, I had not sent my signal. Sending it now.",
            tool=_signal(prompt, first.signal_type, first.task, "Done (sent after corral's nudge)."),
        ),
        Turn(say=f"Done: sent {first.signal_type}."),
    )


def _signal(prompt: str, signal_type: str, task: str, payload: str) -> ToolCall:
    """The prompt's own command for `signal_type`, exactly, its `<…>` placeholder filled with `payload`;
    built like protocols.prompts.signal_command when the prompt has none."""
    command = _command_in(prompt, signal_type)
    if command is None:
        command = f"corral signal emit {signal_type} {shlex.quote(task)}"
        if payload:
            command += f" --payload {shlex.quote(payload)}"
    elif _PLACEHOLDER.search(command):
        command = _PLACEHOLDER.sub(lambda _: shlex.quote(payload or "done"), command, count=1)
    return ToolCall("run", command=command, description=f"Tell corral: {signal_type}")


def _command_in(prompt: str, signal_type: str) -> str | None:
    """The last line of `prompt` that runs `corral signal emit SIGNAL_TYPE …`, as written (no backticks)."""
    pattern = re.compile(rf"corral\s+signal\s+emit\s+{re.escape(signal_type)}(?:\s.*)?$")
    found = None
    for line in prompt.splitlines():
        match = pattern.search(line.strip().strip("`").strip())
        if match is not None:
            found = match.group(0).rstrip("`").rstrip()
    return found


def _append(path: str, line: str) -> ToolCall:
    folder = os.path.dirname(path)
    quoted = shlex.quote(path)
    append = f"printf '%s\\n' {shlex.quote(line)} >> {quoted}"
    command = f"mkdir -p {shlex.quote(folder)} && {append}" if folder else append
    return ToolCall("run", command=command, description=f"Add a line to {path}")


COMMIT_ATTEMPTS = 10
"""How often the commit command tries `git add` + `git commit` before it fails (0.2 s apart)."""


def _commit(message: str, paths: list[str]) -> ToolCall:
    """Commit `paths` only. The agents of a wave commit in one worktree at once and git's index.lock
    turns one of them away; the model cannot react to the failure as a real one would (it is scripted),
    so the command itself tries again, and fails (non-zero) only when every attempt did."""
    files = " ".join(shlex.quote(p) for p in paths)
    once = f"git add -- {files} && git commit -m {shlex.quote(_ours(message))} -- {files}"
    last = COMMIT_ATTEMPTS
    attempts = " ".join(str(n) for n in range(1, last + 1))
    command = (
        f"for attempt in {attempts}; do {once} && break; "
        f"if [ $attempt = {last} ]; then false; else sleep 0.2; fi; done"
    )
    return ToolCall("run", command=command, description="Commit my files")


def _ours(text: str) -> str:
    """corral-sim's words, signed by the stand-in that says them."""
    return text.replace("corral-sim", "corral-model")


def _one_line(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.") or "work"
