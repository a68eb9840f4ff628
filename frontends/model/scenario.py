"""A scenario file: what the model answers, per corral role or per prompt, turn by turn.

    # scenario.toml
    otherwise = "lifecycle"          # a prompt no script matches: "lifecycle" (play its role) or "reply"

    [[script]]
    role = "coder"                   # planner | coder | fixer | reviewer | readiness (roles.ROLES), and/or
    prompt = "hello"                 # a regular expression searched in the prompt; neither: every prompt
    fault = "rate-limit,times=1"     # optional: a fault for every turn of this script (faults.parse_fault)

    [[script.turns]]
    say = "I'll write hello.txt."
    write = { path = "hello.txt", content = "hello\n" }

    [[script.turns]]
    run = "git add hello.txt && git commit -m hello"
    description = "Commit hello.txt"

    [[script.turns]]
    read = "hello.txt"
    fault = "cut,times=1"

    [[script.turns]]
    say = "Done."

A script with a `fault` and no turns plays the lifecycle scenario's turns for the prompt, each with that
fault: `role = "coder"` and `fault = "rate-limit"` rate-limit every coder while the other roles play
on. A turn is `say` (text) and/or one tool call — `write` (a file, its path relative to the
agent's working directory or absolute), `run` (a shell command), `read` (a file) — and may carry a `fault`.
A turn with a tool call ends the model's reply with that call; the client runs it and asks again, which is
the next turn. A turn with text only ends the reply (the agent's turn is over); past the last turn the model
says it is done. A JSON file (`.json`) has the same shape. `load_scenario` names the file, the script and
the turn of any mistake; the rest of this module is data.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from frontends.model.faults import Fault, FaultError, parse_fault
from frontends.model.roles import ROLES

__all__ = ["OTHERWISE", "Scenario", "ScenarioError", "Script", "ToolCall", "Turn", "load_scenario"]

OTHERWISE = ("reply", "lifecycle")


class ScenarioError(Exception):
    """A scenario file that cannot be read or does not have the shape above; the message says where."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the model makes, in the API-neutral words a scenario uses; each API names it its way."""

    kind: Literal["write", "run", "read"]
    path: str = ""
    content: str = ""
    command: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class Turn:
    """One reply of the model: text and/or a tool call, and a fault to inject on it."""

    say: str = ""
    tool: ToolCall | None = None
    fault: Fault | None = None


@dataclass(frozen=True, slots=True)
class Script:
    """The turns for the prompts it matches: of `role` (if set) and searched by `prompt` (if set). No
    turns: the lifecycle scenario's turns for the prompt, each with the script's `fault`."""

    turns: tuple[Turn, ...]
    role: str = ""
    prompt: re.Pattern[str] | None = None
    name: str = ""
    fault: Fault | None = None

    def matches(self, role: str, prompt: str) -> bool:
        if self.role and self.role != role:
            return False
        return self.prompt is None or self.prompt.search(prompt) is not None


@dataclass(frozen=True, slots=True)
class Scenario:
    """Scripts, tried in order; `otherwise` says what a prompt that none matches gets."""

    scripts: tuple[Script, ...] = ()
    otherwise: str = "reply"
    source: str = ""

    @classmethod
    def lifecycle(cls) -> Scenario:
        """The built-in scenario: every prompt plays its corral role (`lifecycle`)."""
        return cls(otherwise="lifecycle", source="lifecycle")

    def script_for(self, role: str, prompt: str) -> tuple[int, Script] | None:
        for index, script in enumerate(self.scripts):
            if script.matches(role, prompt):
                return index, script
        return None


_TOP_KEYS = {"script", "otherwise"}
_SCRIPT_KEYS = {"role", "prompt", "fault", "turns"}
_TURN_KEYS = {"say", "write", "run", "description", "read", "fault"}
_TOOLS = ("write", "run", "read")


def load_scenario(path: str | Path) -> Scenario:
    """Read a TOML (any name but `.json`) or JSON scenario file; ScenarioError says what is wrong, where."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc.strerror}") from None
    try:
        if path.suffix == ".json":
            data: Any = json.loads(raw)
        else:
            import tomllib

            data = tomllib.loads(raw.decode())
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: not UTF-8 text") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError: its message ends "(at line N, column M)"
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    return parse_scenario(data, str(path))


def parse_scenario(data: Any, source: str) -> Scenario:
    """The scenario in decoded file data; `source` names it in errors."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: expected a table with [[script]] entries")
    _no_unknown(source, data, _TOP_KEYS, "the top level")
    otherwise = data.get("otherwise", "reply")
    if otherwise not in OTHERWISE:
        raise ScenarioError(f'{source}: otherwise = {otherwise!r}: expected "reply" or "lifecycle"')
    scripts = data.get("script", [])
    if not isinstance(scripts, list):
        raise ScenarioError(f"{source}: script must be a list of tables ([[script]])")
    return Scenario(
        scripts=tuple(_script(source, i, entry) for i, entry in enumerate(scripts, start=1)),
        otherwise=otherwise,
        source=source,
    )


def _script(source: str, number: int, entry: Any) -> Script:
    where = f"{source}: script {number}"
    if not isinstance(entry, dict):
        raise ScenarioError(f"{where}: expected a table")
    _no_unknown(where, entry, _SCRIPT_KEYS, "a script")
    role = entry.get("role", "")
    if role and role not in ROLES:
        raise ScenarioError(
            f"{where}: role {role!r} is not a corral role: expected one of {', '.join(ROLES)}"
        )
    prompt = entry.get("prompt")
    pattern = None
    if prompt is not None:
        if not isinstance(prompt, str):
            raise ScenarioError(f"{where}: prompt must be a string (a regular expression)")
        try:
            pattern = re.compile(prompt)
        except re.error as exc:
            raise ScenarioError(f"{where}: prompt {prompt!r} is not a regular expression: {exc}") from None
    name = f"script {number}" + (f" ({', '.join(filter(None, [role, prompt]))})" if role or prompt else "")
    where = f"{source}: {name}"
    default_fault = _fault(where, entry.get("fault"))
    turns = entry.get("turns")
    if turns is None:
        if default_fault is None:
            raise ScenarioError(
                f"{where}: needs turns ([[script.turns]]), or a fault to inject into the lifecycle's turns"
            )
        return Script(turns=(), role=role, prompt=pattern, name=name, fault=default_fault)
    if not isinstance(turns, list) or not turns:
        raise ScenarioError(f"{where}: turns must be a non-empty list of tables ([[script.turns]])")
    return Script(
        turns=tuple(_turn(f"{where}, turn {i}", turn, default_fault) for i, turn in enumerate(turns, 1)),
        role=role,
        prompt=pattern,
        name=name,
        fault=default_fault,
    )


def _turn(where: str, entry: Any, default_fault: Fault | None) -> Turn:
    if not isinstance(entry, dict):
        raise ScenarioError(f"{where}: expected a table with say, write, run or read")
    _no_unknown(where, entry, _TURN_KEYS, "a turn")
    tools = [key for key in _TOOLS if key in entry]
    if len(tools) > 1:
        raise ScenarioError(
            f"{where}: one tool call per turn, not {' and '.join(tools)}: split it in two turns"
        )
    say = entry.get("say", "")
    if not isinstance(say, str):
        raise ScenarioError(f"{where}: say must be a string")
    if not say and not tools:
        raise ScenarioError(f"{where}: a turn needs say, write, run or read")
    if "description" in entry and tools != ["run"]:
        raise ScenarioError(f"{where}: description belongs to a run turn")
    fault = _fault(where, entry["fault"]) if "fault" in entry else default_fault
    return Turn(say=say, tool=_tool(where, tools[0], entry) if tools else None, fault=fault)


def _tool(where: str, kind: str, entry: dict[str, Any]) -> ToolCall:
    value = entry[kind]
    if kind == "write":
        if not isinstance(value, dict) or set(value) != {"path", "content"}:
            raise ScenarioError(f'{where}: write must be a table {{ path = "…", content = "…" }}')
        if not all(isinstance(v, str) for v in value.values()) or not value["path"]:
            raise ScenarioError(f"{where}: write's path and content must be strings, the path not empty")
        return ToolCall("write", path=value["path"], content=value["content"])
    if not isinstance(value, str) or not value.strip():
        what = "a shell command" if kind == "run" else "a file path"
        raise ScenarioError(f"{where}: {kind} must be {what} (a non-empty string)")
    if kind == "run":
        description = entry.get("description", "")
        if not isinstance(description, str):
            raise ScenarioError(f"{where}: description must be a string")
        return ToolCall("run", command=value, description=description)
    return ToolCall("read", path=value)


def _fault(where: str, spec: Any) -> Fault | None:
    if spec is None:
        return None
    if not isinstance(spec, str):
        raise ScenarioError(f'{where}: fault must be a string such as "rate-limit,times=1"')
    try:
        return parse_fault(spec)
    except FaultError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def _no_unknown(where: str, entry: dict[str, Any], known: set[str], what: str) -> None:
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ScenarioError(
            f"{where}: unknown key {', '.join(map(repr, unknown))} in {what} "
            f"(known: {', '.join(sorted(known))})"
        )
