"""What the simulated agent does with a prompt, the same in every mode.

    agent = Agent(workspace, surface, think_s=0.2, record="prompts.jsonl")
    agent.run_turn("/edit notes.txt hello\\n/commit add a note")   # → Outcome("completed", …)

A turn reads the prompt as steps (`directives.parse_prompt`) and carries them out one by one, telling its
`Surface` what happens: the interactive screen draws it (`screen`), the SDK modes turn it into codex JSON-RPC
(`sdk_codex`) or claude stream-json (`sdk_claude`). The surface also answers the questions a turn asks:
may I edit this file, may I run this command, "Would you like to proceed? (Y)es/(N)o".

A plain prompt does the default work: say what it will do, append a line to `sim/<task>.txt`, commit it,
and, when the prompt tells it to run `corral signal emit …`, run it (so the demo's agents finish their tasks
the way real ones do). An agent that corral started in a role (`CORRAL_AGENT_TYPE`: planner, coder…) plays
that role's prompt instead (`roles.play`): it plans, implements a wave task, reviews. Its steps are decided
before the turn begins, so that a `sim-fault` can end the agent before it shows any sign of work.

A refused edit or command, a "no" to a question, an interrupt, `/error` end the turn early; the rest of its
steps are dropped. A turn runs on one thread; `steer` (codex `turn/steer`) may add input from another.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NoReturn, Protocol

from frontends.sim import faults
from frontends.sim.behaviour.roles import Role, RoleTurn, play
from frontends.sim.behaviour.workspace import CommandResult, Workspace, WorkspaceError
from frontends.sim.directives import DIRECTIVES, Step, find_signal_instruction, parse_prompt, parse_steps

__all__ = ["QUESTION", "Agent", "Approval", "Outcome", "Surface", "Tool"]

QUESTION = "Would you like to proceed? (Y)es/(N)o"


class Approval(Enum):
    """A surface's answer to "may I?": once, for the rest of the session, no, or stop the turn."""

    ALLOW = "allow"
    ALLOW_SESSION = "allow_session"
    DENY = "deny"
    CANCEL = "cancel"

    @property
    def allowed(self) -> bool:
        return self in (Approval.ALLOW, Approval.ALLOW_SESSION)


_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Tool:
    """A tool call the agent makes. `kind` is "edit" or "command"; `name` is claude's tool name (Write,
    Edit, Bash); `title` is how the screen shows it (`Update(sim/x.txt)`, `Bash(git commit -m …)`)."""

    kind: str
    name: str
    title: str
    path: str = ""
    text: str = ""
    command: str = ""
    needs_approval: bool = True
    id: int = field(default_factory=lambda: next(_ids))


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a turn ended: status "completed", "interrupted" or "failed"; `text` is its final reply."""

    status: str
    text: str
    error: str = ""


class Surface(Protocol):
    """What a mode does with the agent's actions. Called on the turn's thread."""

    def begin(self, prompt: str) -> None:
        """A turn starts."""

    def say(self, text: str) -> None:
        """An assistant message."""

    def tool_started(self, tool: Tool) -> None:
        """The agent is about to use `tool`."""

    def approve(self, tool: Tool) -> Approval:
        """May the agent go on with `tool`? (A surface that needs no permission answers ALLOW.)"""

    def tool_finished(self, tool: Tool, status: str, output: str) -> None:
        """`tool` is done: `status` "completed", "failed" or "declined" (refused); `output` says what
        happened."""

    def ask(self, question: str) -> bool | None:
        """Ask a yes/no question; None: the answer will be the next prompt (the turn ends with it)."""

    def sleep(self, seconds: float) -> bool:
        """Work for `seconds`; False when the turn was interrupted meanwhile."""

    def interrupted(self) -> bool:
        """Has the turn been interrupted (Esc, turn/interrupt, a control interrupt)?"""

    def flood(self, megabytes: float) -> None:
        """Write `megabytes` MB of output as fast as possible."""

    def fail(self, message: str, *, auth: bool = False) -> None:
        """Report an API error (`auth`: not logged in); the turn ends failed."""

    def offline(self) -> Outcome:
        """The model API cannot be reached: retry as the real CLI does; how the turn ends (codex: it
        waits for the network until the turn is interrupted)."""

    def rate_limited(self) -> Outcome:
        """The model API refuses for a usage limit; how the turn ends (failed)."""

    def hang(self, hard: bool) -> NoReturn:
        """Stop reading and writing for ever."""

    def ignore_input(self) -> None:
        """From now on read input and never act on it."""

    def end(self, outcome: Outcome) -> None:
        """The turn is over: show its final reply and go back to waiting for a prompt."""


class _Stop(Exception):
    """Ends a turn early with an outcome."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


def _one_line(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.") or "work"


class Agent:
    """The simulated agent of one process: a workspace, a surface and the state kept between turns."""

    def __init__(
        self,
        workspace: Workspace,
        surface: Surface,
        *,
        think_s: float = 0.2,
        record: str = "",
        mode: str = "interactive",
        exit_after_signal: bool = False,
        role: Role | None = None,
    ) -> None:
        self.workspace = workspace
        self.role = role
        self.surface = surface
        self.think_s = think_s
        self.record_path = record
        self.mode = mode
        self.exit_after_signal = exit_after_signal
        self.turns = 0
        self._pending: tuple[Step, ...] = ()  # steps after an unanswered question
        self._steered: deque[str] = deque()
        self._lock = threading.Lock()
        self._actions: list[str] = []
        self._signaled = False
        self._preapproved = False  # this turn is a managed role's own: its edits do not ask

    # --- turns ------------------------------------------------------------------------------------------

    def run_turn(self, prompt: str, script: str | None = None, *, record: bool = True) -> Outcome:
        """Carry out one prompt (or the scenario's `script` for it) and report how it ended. `record`:
        append the prompt to the record file (not for a scenario's start-up steps)."""
        self.turns += 1
        if record:
            self.record(prompt)
        self._actions = []
        self._preapproved = False
        steps = self._steps_for(prompt, script)
        self.surface.begin(prompt)
        try:
            if not self.surface.sleep(self.think_s):
                raise _Stop(Outcome("interrupted", "Interrupted by user"))
            self._run_steps(steps)
            while steered := self._next_steered():
                self._run_steps(parse_prompt(steered))
            outcome = Outcome("completed", self._summary())
        except _Stop as stop:
            outcome = stop.outcome
        self.surface.end(outcome)
        if self.exit_after_signal and self._signaled:
            faults.quit(0)
        return outcome

    def steer(self, text: str) -> None:
        """Add input to the running turn: its steps run after the current ones (codex `turn/steer`)."""
        self.record(text)
        with self._lock:
            self._steered.append(text)

    def _next_steered(self) -> str | None:
        with self._lock:
            return self._steered.popleft() if self._steered else None

    def _steps_for(self, prompt: str, script: str | None) -> tuple[Step, ...]:
        if self._pending:
            pending, self._pending = self._pending, ()
            if prompt.strip().lower() in ("y", "yes", "1", "ok", "proceed", "go on", "continue"):
                return (Step("echo", "Proceeding."), *pending)
            return (Step("echo", "Okay, I won't proceed."),)
        if script is None and self.role is not None and not parse_steps(prompt):
            turn = play(self.role, prompt)
            if turn is not None:
                self._fault(turn)
                self._preapproved = self.role.preapproved
                if self._silenced(turn):
                    kept = tuple(step for step in turn.steps if step.name != "emit")
                    return (*kept, Step("echo", "Done. (sim-fault: I will not send my signal.)"))
                return turn.steps
        return parse_prompt(script if script is not None else prompt)

    def _fault(self, turn: RoleTurn) -> None:
        """A `sim-fault` exits 0 before any work, as an agent that gave up would; `fail-once` only on the
        first attempt of its task (a fresh agent with the same instance title works)."""
        if turn.fault == "fail" or (turn.fault == "fail-once" and self.workspace.first_attempt(turn.key)):
            sys.stderr.write(f"corral-sim: sim-fault: {turn.fault}: exiting before any work\n")
            faults.quit(0)

    def _silenced(self, turn: RoleTurn) -> bool:
        """`silent`: this agent never sends its step's signal, also later, when nudged or restarted with a
        prompt that lacks the marker (remembered in the repository); `silent-once`: only its first attempt
        is silent."""
        who = self.role.instance or self.role.task if self.role is not None else ""
        key = f"silent-{who or turn.key}"
        if turn.fault == "silent-once":
            return self.workspace.first_attempt(f"{key}-once")
        if turn.fault == "silent":
            self.workspace.first_attempt(key)
            return True
        return self.workspace.attempted(key)

    def record(self, prompt: str) -> None:
        """Append the prompt received to the record file (JSON lines: sha256, bytes, text), if any."""
        if not self.record_path:
            return
        data = prompt.encode("utf-8", errors="surrogateescape")
        entry = {
            "mode": self.mode,
            "turn": self.turns,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "text": prompt,
        }
        with open(self.record_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def _run_steps(self, steps: tuple[Step, ...]) -> None:
        for index, step in enumerate(steps):
            if self.surface.interrupted():
                raise _Stop(Outcome("interrupted", "Interrupted by user"))
            handler = getattr(self, "_do_" + step.name.replace("-", "_"))
            handler(step.arg, steps[index + 1 :])

    def _summary(self) -> str:
        return "Done. " + "; ".join(self._actions) + "." if self._actions else "Done."

    # --- tools ------------------------------------------------------------------------------------------

    def _use(self, tool: Tool) -> None:
        """Announce `tool` and get permission; a refusal ends the turn."""
        self.surface.tool_started(tool)
        asks = tool.needs_approval and not self._preapproved
        approval = self.surface.approve(tool) if asks else Approval.ALLOW
        if approval.allowed:
            return
        what = f"the edit to {tool.path}" if tool.kind == "edit" else f"the command {tool.command}"
        self.surface.tool_finished(tool, "declined", f"User rejected {what}")
        if approval is Approval.CANCEL:
            raise _Stop(Outcome("interrupted", "Interrupted by user"))
        raise _Stop(Outcome("completed", f"Stopped: {what} was refused. What should I do instead?"))

    def _command(self, display: str, approval: bool = False) -> Tool:
        return Tool("command", "Bash", f"Bash({display})", command=display, needs_approval=approval)

    def _finish(self, tool: Tool, result: CommandResult) -> CommandResult:
        output = result.output or ("(no output)" if result.ok else f"exit status {result.status}")
        self.surface.tool_finished(tool, "completed" if result.ok else "failed", output)
        return result

    # --- directives: `_do_<name>(arg, rest)`, rest being the steps after this one; _Stop ends the turn --

    def _do_work(self, text: str, rest: tuple[Step, ...]) -> None:
        text = text or "work"
        path = f"sim/{_slug(self.workspace.task)}.txt" if self.workspace.task else "sim/work.txt"
        subject = _one_line(text, 60)
        self.surface.say(f"I'll record this in {path} and commit it.")
        self._do_edit(f"{path} turn {self.turns}: {_one_line(text, 100)}", rest)
        self._do_commit(f"sim: {subject}", rest)
        call = find_signal_instruction(text)
        if call is not None:
            self._emit(call.signal_type, call.payload, call.task)

    def _do_edit(self, arg: str, rest: tuple[Step, ...]) -> None:
        path, _, text = arg.strip().partition(" ")
        if not path:
            self.surface.say("/edit needs a path: /edit PATH TEXT")
            return
        text = text.strip() or "edited by corral-sim"
        used = self._file_tool(path, text, self.workspace.append)
        if used is not None:
            tool, edit = used
            done = f"Wrote 1 line to {edit.path}" if edit.created else "Added 1 line"
            self.surface.tool_finished(tool, "completed", done)
            self._actions.append(f"edited {edit.path}")

    def _do_write(self, arg: str, rest: tuple[Step, ...]) -> None:
        """A role's step, not a directive: replace the file PATH with TEXT (which may span lines)."""
        path, _, text = arg.partition(" ")
        text = text.rstrip("\n")
        used = self._file_tool(path, text, self.workspace.write)
        if used is not None:
            tool, edit = used
            lines = len(text.splitlines())
            self.surface.tool_finished(tool, "completed", f"Wrote {lines} lines to {edit.path}")
            self._actions.append(f"wrote {edit.path}")

    def _file_tool(self, path: str, text: str, change: Callable[[str, str], Any]) -> tuple[Tool, Any] | None:
        """Show the edit tool for PATH, ask as an edit does, and make the `change`; None if it could not
        be made (the reason is on the surface)."""
        try:
            exists = self.workspace.resolve(path).exists()
        except WorkspaceError as exc:
            self.surface.say(str(exc))
            return None
        name, title = ("Edit", f"Update({path})") if exists else ("Write", f"Write({path})")
        tool = Tool("edit", name, title, path=path, text=text)
        self._use(tool)
        try:
            return tool, change(path, text)
        except WorkspaceError as exc:
            self.surface.tool_finished(tool, "failed", str(exc))
            return None

    def _do_commit(self, arg: str, rest: tuple[Step, ...]) -> None:
        message = arg.strip() or "corral-sim: update"
        files = " ".join(self.workspace.edited)
        tool = self._command(f"git add {files} && git commit -m {json.dumps(message)}")
        self._use(tool)
        result = self._finish(tool, self.workspace.commit(message))
        if result.ok:
            sha = re.search(r"\b([0-9a-f]{7,40})\]", result.output)
            self._actions.append(f"committed {sha.group(1) if sha else ''}".strip())

    def _do_signal(self, arg: str, rest: tuple[Step, ...]) -> None:
        signal_type, _, payload = arg.strip().partition(" ")
        if not signal_type:
            self.surface.say("/signal needs a type: /signal TYPE [PAYLOAD]")
            return
        self._emit(signal_type, payload.strip())

    def _do_emit(self, arg: str, rest: tuple[Step, ...]) -> None:
        """A role's step, not a directive: `TYPE TASK [PAYLOAD]`, the payload spanning lines if it must."""
        signal_type, _, more = arg.partition(" ")
        task, _, payload = more.partition(" ")
        self._emit(signal_type, payload, task)

    def _emit(self, signal_type: str, payload: str = "", task: str = "") -> None:
        task = task or self.workspace.task
        display = f"corral signal emit {signal_type} {task or '$CORRAL_TASK'}"
        if "\n" in payload.strip():  # a plan: shown as its first line, as a pasted command would be
            display += f" --payload {json.dumps(payload.strip().splitlines()[0] + ' …', ensure_ascii=False)}"
        elif payload:
            display += f" --payload {json.dumps(payload) if ' ' in payload else payload}"
        tool = self._command(display)
        self._use(tool)
        result = self._finish(tool, self.workspace.emit_signal(signal_type, payload, task))
        if result.ok:
            self._signaled = True
            self._actions.append(f"emitted {signal_type}")

    def _do_run(self, arg: str, rest: tuple[Step, ...]) -> None:
        tool = self._command(arg.strip(), approval=True)
        self._use(tool)
        self._finish(tool, self.workspace.run(arg))

    def _do_ask(self, arg: str, rest: tuple[Step, ...]) -> None:
        question = f"{arg.strip()} (Y)es/(N)o" if arg.strip() else QUESTION
        answer = self.surface.ask(question)
        if answer is None:  # the answer is the next prompt: keep the rest of the steps for it
            self._pending = rest
            raise _Stop(Outcome("completed", question))
        if not answer:
            raise _Stop(Outcome("completed", "Okay, I won't proceed."))
        self.surface.say("Proceeding.")

    def _do_echo(self, arg: str, rest: tuple[Step, ...]) -> None:
        self.surface.say(arg)

    def _do_sleep(self, arg: str, rest: tuple[Step, ...]) -> None:
        try:
            seconds = float(arg or "1")
        except ValueError:
            self.surface.say(f"/sleep needs a number of seconds, not {arg!r}")
            return
        if not self.surface.sleep(seconds):
            raise _Stop(Outcome("interrupted", "Interrupted by user"))

    def _do_error(self, arg: str, rest: tuple[Step, ...]) -> None:
        message = arg.strip() or "simulated API error"
        self.surface.fail(message)
        raise _Stop(Outcome("failed", f"API Error: {message}", error=message))

    def _do_offline(self, arg: str, rest: tuple[Step, ...]) -> NoReturn:
        raise _Stop(self.surface.offline())

    def _do_rate_limit(self, arg: str, rest: tuple[Step, ...]) -> NoReturn:
        raise _Stop(self.surface.rate_limited())

    def _do_not_logged_in(self, arg: str, rest: tuple[Step, ...]) -> NoReturn:
        self.surface.fail("not logged in", auth=True)
        faults.quit(1)

    def _do_crash(self, arg: str, rest: tuple[Step, ...]) -> None:
        try:
            status, signal_name = faults.parse_crash(arg)
        except ValueError as exc:
            self.surface.say(f"/crash: {exc}")
            return
        faults.crash(status, signal_name)

    def _do_hang(self, arg: str, rest: tuple[Step, ...]) -> NoReturn:
        self.surface.hang(hard=arg.strip().lower() == "hard")

    def _do_flood(self, arg: str, rest: tuple[Step, ...]) -> None:
        try:
            megabytes = float(arg or "1")
        except ValueError:
            self.surface.say(f"/flood needs a number of megabytes, not {arg!r}")
            return
        self.surface.flood(megabytes)

    def _do_exit(self, arg: str, rest: tuple[Step, ...]) -> NoReturn:
        status = int(arg) if arg.strip().lstrip("-").isdigit() else 0
        faults.quit(status)

    def _do_spawn_grandchild(self, arg: str, rest: tuple[Step, ...]) -> None:
        try:
            seconds = float(arg or "600")
        except ValueError:
            seconds = 600.0
        child = faults.spawn_grandchild(seconds, cwd=str(self.workspace.root))
        self.surface.say(f"Spawned grandchild pid {child.pid} in a new session.")

    def _do_ignore_input(self, arg: str, rest: tuple[Step, ...]) -> None:
        self.surface.ignore_input()

    def _do_unknown(self, arg: str, rest: tuple[Step, ...]) -> None:
        names = ", ".join(f"/{name}" for name in DIRECTIVES)
        self.surface.say(f"Unknown directive /{arg}. Directives: {names}.")
