"""The interactive mode: a claude-like CLI in a terminal (a tmux pane, a PTY) or on plain pipes.

    corral-sim 0.1.0 — simulated coding agent

    Do you trust the files in this folder?     (unless --no-trust / --skip-permissions)
    ❯ 1. Yes, proceed
      2. No, exit
    > add a note                                the prompt; Enter submits
    ⏺ I'll record this in sim/work.txt and commit it.
    ⏺ Write(sim/work.txt)
    Do you want to make this edit to sim/work.txt?        (answered, then erased)
      ⎿  Wrote 1 line to sim/work.txt
    ⏺ Bash(git add sim/work.txt && git commit -m "sim: add a note")
      ⎿  [main 1a2b3c4] sim: add a note
    ⏺ Done. edited sim/work.txt; committed 1a2b3c4.

    >

While a turn runs, `✻ Working… (esc to interrupt)` is the last line; Esc or Ctrl-C interrupts the turn. The
turn runs on the main thread; the spinner's thread reads the keyboard meanwhile (`screen.Spinner`). Ctrl-D on
an empty prompt, or the end of input, exits 0; SIGTERM exits 143 (`main`), the terminal restored.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import NoReturn

from frontends.sim import faults
from frontends.sim.behaviour.agent import Agent, Approval, Outcome, Tool
from frontends.sim.behaviour.roles import Role
from frontends.sim.behaviour.workspace import Workspace
from frontends.sim.options import Options, version
from frontends.sim.scenario import Scenario
from frontends.sim.screen import (
    BANNER,
    BRACKETED_PASTE_OFF,
    BRACKETED_PASTE_ON,
    COMMAND_OPTIONS,
    COMMAND_QUESTION,
    CONNECTION_ERROR,
    EDIT_OPTIONS,
    EDIT_QUESTION,
    NOT_LOGGED_IN,
    OFFLINE_AT_START,
    TRUST_OPTIONS,
    TRUST_QUESTION,
    Choice,
    LineEditor,
    Output,
    Spinner,
    menu,
    rate_limit_text,
    yes_no,
)
from frontends.sim.sdk_turns import API_RETRIES, RETRY_S
from frontends.sim.state import SessionStore
from frontends.sim.terminal import KeyReader, RawMode

__all__ = ["InteractiveSurface", "run"]

_TOOL_OUTPUT_LINES = 8
_APPROVALS = {0: Approval.ALLOW, 1: Approval.ALLOW_SESSION, 2: Approval.DENY, Choice.CANCEL: Approval.CANCEL}


class InteractiveSurface:
    """The agent's actions drawn on the screen; permission and questions asked with menus."""

    def __init__(self, options: Options, out: Output, keys: KeyReader) -> None:
        self.out = out
        self.keys = keys
        self._interrupt = threading.Event()
        self.spinner = Spinner(out, keys, self._interrupt.set)
        trusted = options.skip_permissions or options.auto_approve
        self._allow = {"edit": trusted, "command": trusted}
        self.ignoring = False

    def begin(self, prompt: str) -> None:
        self._interrupt.clear()
        self.spinner.start()

    def say(self, text: str) -> None:
        first, *rest = text.splitlines() or [""]
        self.out.line("⏺ " + first)
        for line in rest:
            self.out.line("  " + line)

    def tool_started(self, tool: Tool) -> None:
        self.out.line("⏺ " + tool.title)

    def approve(self, tool: Tool) -> Approval:
        if self._allow[tool.kind]:
            return Approval.ALLOW
        self.spinner.stop()
        if tool.kind == "edit":
            choice = menu(self.out, self.keys, EDIT_QUESTION.format(path=tool.path), EDIT_OPTIONS, esc=2)
        else:
            question = f"Bash command: {tool.command}\n{COMMAND_QUESTION}"
            choice = menu(self.out, self.keys, question, COMMAND_OPTIONS, esc=2)
        if choice == Choice.EOF:
            faults.quit(0)
        approval = _APPROVALS[choice]
        if approval is Approval.ALLOW_SESSION:
            self._allow[tool.kind] = True
        if approval.allowed:
            self.spinner.start()
        return approval

    def tool_finished(self, tool: Tool, status: str, output: str) -> None:
        lines = output.splitlines() or [""]
        self.out.line("  ⎿  " + lines[0])
        for line in lines[1:_TOOL_OUTPUT_LINES]:
            self.out.line("     " + line)
        if len(lines) > _TOOL_OUTPUT_LINES:
            self.out.line(f"     … +{len(lines) - _TOOL_OUTPUT_LINES} lines")

    def ask(self, question: str) -> bool | None:
        self.spinner.stop()
        answer = yes_no(self.out, self.keys, question)
        if answer == Choice.EOF:
            faults.quit(0)
        if answer == Choice.CANCEL:
            self._interrupt.set()
            return False
        self.out.line(f"  ⎿  Answered: {'yes' if answer else 'no'}")
        self.spinner.start()
        return bool(answer)

    def sleep(self, seconds: float) -> bool:
        # In slices: this is the main thread, where a signal's handler runs only between waits.
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self._interrupt.wait(min(left, 0.2)):
                return False
        return not self._interrupt.is_set()

    def interrupted(self) -> bool:
        return self._interrupt.is_set()

    def flood(self, megabytes: float) -> None:
        self.spinner.stop()
        faults.flood(self.out.raw, megabytes)
        self.spinner.start()

    def fail(self, message: str, *, auth: bool = False) -> None:
        self.spinner.stop()
        self.out.line(NOT_LOGGED_IN if auth else f"  ⎿  API Error: {message}")

    def offline(self) -> Outcome:
        retries = API_RETRIES["claude"]
        for attempt in range(1, retries + 1):
            self.out.line(f"  ⎿  API Error (Connection error.) · Retrying… (attempt {attempt}/{retries})")
            if not self.sleep(RETRY_S):
                return Outcome("interrupted", "Interrupted by user")
        self.spinner.stop()
        self.out.line(f"  ⎿  {CONNECTION_ERROR}")
        return Outcome("failed", CONNECTION_ERROR, error=CONNECTION_ERROR)

    def rate_limited(self) -> Outcome:
        self.spinner.stop()
        text = rate_limit_text(time.time() + 3600)
        self.out.line(f"  ⎿  {text}")
        return Outcome("failed", text, error=text)

    def hang(self, hard: bool) -> NoReturn:
        self.spinner.stop(clear=False)  # the last frame stays: a frozen screen
        faults.hang(hard)

    def ignore_input(self) -> None:
        self.ignoring = True

    def end(self, outcome: Outcome) -> None:
        self.spinner.stop()
        if outcome.status == "interrupted":
            self.out.line("  ⎿  Interrupted by user")
        elif outcome.status == "completed":
            self.say(outcome.text)
        self.out.write("\n")


def _ignore_input_forever(keys: KeyReader) -> NoReturn:
    """Read and drop every key; once the input is closed, just stay alive."""
    while (key := keys.read()) is not None and key.kind != "eof":
        pass
    faults.hang()


def _session(options: Options, cwd: Path) -> tuple[SessionStore, str]:
    """The session this run continues (--resume, --continue) or starts; exits 1 for an unknown id."""
    store = SessionStore(options.state_path(cwd))
    if options.resume:
        if store.get(options.resume) is None:
            sys.stderr.write(f"No conversation found with session ID: {options.resume}\n")
            faults.quit(1)
        return store, options.resume
    if options.continue_last and (latest := store.latest("claude")):
        return store, latest
    try:
        return store, store.create("claude", options.session_id, cwd=str(cwd))
    except OSError:  # a read-only working directory: go on without a session file
        return store, options.session_id


def run(options: Options, scenario: Scenario) -> NoReturn:
    """Run the interactive mode until the user or a fault ends it."""
    out, keys = Output(1), KeyReader(0, wakeup=faults.install_wakeup())
    tty = os.isatty(0)
    raw = RawMode(0).__enter__()
    faults.on_exit(raw.restore)
    if tty:
        faults.on_exit(lambda: out.write(BRACKETED_PASTE_OFF))
    cwd = Path.cwd()
    if options.offline:  # Claude Code checks its API before it draws anything, and gives up
        for line in OFFLINE_AT_START:
            out.line(line)
        faults.quit(1)
    out.line(BANNER.format(version=version()))
    out.line("")
    store, session_id = _session(options, cwd)
    if options.not_logged_in:
        out.line(NOT_LOGGED_IN)
        faults.quit(1)
    if options.flood_mb:
        faults.flood(out.raw, options.flood_mb)
    if options.hang:
        faults.hang()
    if options.trust:
        choice = menu(out, keys, TRUST_QUESTION, TRUST_OPTIONS, esc=1)
        if choice != 0:
            faults.quit({1: 1, Choice.CANCEL: 130}.get(choice, 0))
    if tty:
        out.write(BRACKETED_PASTE_ON)
    surface = InteractiveSurface(options, out, keys)
    agent = Agent(
        Workspace(cwd, task=options.task),
        surface,
        think_s=options.think_s,
        record=options.record,
        exit_after_signal=options.exit_after_signal,
        role=Role.from_env(os.environ, options.task),
    )
    if options.ignore_input:
        out.write("> ")
        _ignore_input_forever(keys)
    if scenario.steps:
        agent.run_turn(scenario.steps, record=False)
    editor = LineEditor(out, keys)
    prompts = 0
    first = options.prompt
    while True:
        if surface.ignoring:
            out.write("> ")
            _ignore_input_forever(keys)
        if first:
            out.write("> " + first.replace("\n", "\n  ") + "\n")
            text: str | None = first
            first = ""
        else:
            try:
                text = editor.read(surface.spinner.typeahead)
            except KeyboardInterrupt:
                faults.quit(130)
        if text is None:
            faults.quit(0)
        agent.run_turn(text, scenario.turn(prompts))
        prompts += 1
        try:
            store.record_turn(session_id, text)
        except OSError:
            pass
