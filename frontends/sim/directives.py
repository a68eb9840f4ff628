"""A prompt, read as what the simulated agent should do: directives, or plain text (the default work).

    parse_prompt("/edit notes.txt hello\\n/commit add a note")
      → (Step("edit", "notes.txt hello", 1), Step("commit", "add a note", 2))
    parse_prompt("Fix the login form")  → (Step("work", "Fix the login form", 0),)

A directive is a line `/NAME [ARGS]` whose NAME is in `DIRECTIVES`; the other lines of a prompt that has
directives are commentary and are ignored. A line that looks like a directive but names none (`/frobnicate`)
becomes an `unknown` step, so a typo is reported instead of silently doing the default work. A path such as
`/usr/bin/env` is not a directive (a name is followed by a space or the end of the line).

Pure functions: no I/O, no clock.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

__all__ = [
    "DIRECTIVES",
    "Directive",
    "SignalCall",
    "Step",
    "find_signal_instruction",
    "find_signal_instructions",
    "parse_prompt",
    "parse_steps",
]


@dataclass(frozen=True, slots=True)
class Directive:
    """One directive's usage and what it does (the table is the documentation: `corral-sim --directives`)."""

    usage: str
    summary: str


DIRECTIVES: dict[str, Directive] = {
    "work": Directive("[TEXT]", "the default work of a plain prompt: append TEXT to sim/<task>.txt, commit"),
    "edit": Directive("PATH TEXT", "append the line TEXT to PATH (relative, inside the working directory)"),
    "commit": Directive("MESSAGE", "git add + git commit the files this agent edited (and only those)"),
    "signal": Directive("TYPE [PAYLOAD]", "corral signal emit TYPE $CORRAL_TASK [--payload PAYLOAD]"),
    "run": Directive("COMMAND", "run COMMAND (split like a shell, no shell), after asking permission"),
    "ask": Directive("[QUESTION]", "ask 'Would you like to proceed? (Y)es/(N)o'; no ends the turn"),
    "echo": Directive("TEXT", "reply TEXT"),
    "sleep": Directive("SECONDS", "keep working (spinner) for SECONDS; interruptible"),
    "error": Directive("[MESSAGE]", "fail the turn with an API error"),
    "not-logged-in": Directive("", "fail like a CLI that is not logged in, then exit 1"),
    "offline": Directive(
        "", "no network: the model API is retried, then the turn fails (codex: retried for ever)"
    ),
    "rate-limit": Directive("", "fail the turn with a usage limit reached (a rate limit)"),
    "crash": Directive("[STATUS|SIGNAL]", "exit at once with STATUS (default 1) or kill itself with SIGNAL"),
    "hang": Directive("[hard]", "stop reading and writing, stay alive; hard: ignore SIGTERM/SIGINT/SIGHUP"),
    "flood": Directive("MB", "write MB megabytes of output as fast as possible"),
    "exit": Directive("[STATUS]", "exit with STATUS (default 0) after restoring the terminal"),
    "spawn-grandchild": Directive("[SECONDS]", "start a child that calls setsid and sleeps (default 600 s)"),
    "ignore-input": Directive("", "from now on read input and discard it; the agent never answers again"),
}

_DIRECTIVE_LINE = re.compile(r"^/([a-z][a-z0-9-]*)(?:[ \t]+(.*?))?[ \t]*$")


@dataclass(frozen=True, slots=True)
class Step:
    """One thing to do: a directive `name` with its argument text, from `line` of the prompt (0: no line)."""

    name: str
    arg: str = ""
    line: int = 0


def parse_prompt(text: str) -> tuple[Step, ...]:
    """The steps a prompt asks for: its directives in order, or one `work` step for a plain prompt."""
    steps = parse_steps(text)
    if steps:
        return steps
    return (Step("work", text.strip()),) if text.strip() else ()


def parse_steps(text: str) -> tuple[Step, ...]:
    """Only the directive lines of `text` (unknown `/names` as `unknown` steps); () for plain text."""
    steps = []
    for number, raw in enumerate(text.splitlines(), start=1):
        match = _DIRECTIVE_LINE.match(raw.strip())
        if match is None:
            continue
        name, arg = match.group(1), match.group(2) or ""
        if name in DIRECTIVES:
            steps.append(Step(name, arg, number))
        else:
            steps.append(Step("unknown", name, number))
    return tuple(steps)


@dataclass(frozen=True, slots=True)
class SignalCall:
    """A `corral signal emit TYPE [TASK] [--payload P]` that a plain prompt tells the agent to run."""

    signal_type: str
    task: str = ""
    payload: str = ""


_EMIT = re.compile(r"corral\s+signal\s+emit\s+(.*)")
_TRAILING = "`'\".,;:)"


def find_signal_instruction(text: str) -> SignalCall | None:
    """The first `corral signal emit …` command written in a plain prompt, as an agent would run it.

    A task written as a placeholder (`$CORRAL_TASK`, `<task>`, `{task}`) is left empty: the agent then uses
    its own task. Markdown backticks and trailing punctuation around the command are dropped.
    """
    match = _EMIT.search(text)
    return _signal_call(match.group(1)) if match is not None else None


def find_signal_instructions(text: str) -> tuple[SignalCall, ...]:
    """Every `corral signal emit …` command of a plain prompt, in order (one per line at most): a role
    picks the one it means, such as a reviewer's `review_approved` among the verdicts it is offered."""
    calls = (_signal_call(match.group(1)) for match in _EMIT.finditer(text))
    return tuple(call for call in calls if call is not None)


def _signal_call(rest: str) -> SignalCall | None:
    rest = rest.split("`")[0]
    try:
        words = shlex.split(rest)
    except ValueError:  # an unbalanced quote in prose: take the words as they are
        words = rest.split()
    payload = ""
    if "--payload" in words:
        at = words.index("--payload")
        payload = words[at + 1] if at + 1 < len(words) else ""
        words = words[:at]
    words = [w.rstrip(_TRAILING) for w in words if not w.startswith("-")]
    words = [w for w in words if w]
    if not words or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", words[0]):
        return None
    task = words[1] if len(words) > 1 and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", words[1]) else ""
    return SignalCall(words[0], task, payload)
