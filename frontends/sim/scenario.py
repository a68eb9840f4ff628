"""A scenario file: what the simulated agent does without being told, and what it does per prompt.

    # scenario.toml                                  // scenario.json
    steps = ["/sleep 0.5", "/signal plan_start"]     {"steps": ["/sleep 0.5", "/signal plan_start"],
    turns = [["/edit a.txt x", "/commit a"],          "turns": [["/edit a.txt x", "/commit a"],
             "/crash 3"]                                        "/crash 3"]}

`steps` run once at start-up, as a first prompt would (a JSON file may be just that list). `turns[n]`
replaces the n-th prompt received (counting from 0): its directives run instead of the prompt's own (the
prompt is still recorded). Each entry is a directive line, plain text, or a list of those; a prompt past the
last turn is read as usual.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Scenario", "ScenarioError", "load_scenario"]


class ScenarioError(Exception):
    """The scenario file cannot be read or does not have the shape above; the message names the file."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """Prompt texts: `steps` to run at start-up ("" for none), one text per scripted turn."""

    steps: str = ""
    turns: tuple[str, ...] = ()

    def turn(self, index: int) -> str | None:
        """The scripted text for the `index`-th prompt, None past the last one."""
        return self.turns[index] if index < len(self.turns) else None


def load_scenario(path: str | Path) -> Scenario:
    """Read a JSON (`.json`) or TOML (any other name) scenario file."""
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
    except (ValueError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"scenario {path} does not parse: {exc}") from None
    if isinstance(data, list):
        data = {"steps": data}
    if not isinstance(data, dict) or set(data) - {"steps", "turns"}:
        raise ScenarioError(f'scenario {path}: expected a table with "steps" and/or "turns", or a list')
    turns = data.get("turns", [])
    if not isinstance(turns, list):
        raise ScenarioError(f'scenario {path}: "turns" must be a list')
    return Scenario(
        steps=_text(path, "steps", data.get("steps", [])),
        turns=tuple(_text(path, f"turns[{i}]", turn) for i, turn in enumerate(turns)),
    )


def _text(path: Path, where: str, value: Any) -> str:
    """A step or a list of steps as prompt text, one line each."""
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) for item in items):
        raise ScenarioError(f"scenario {path}: {where} must be a string or a list of strings")
    return "\n".join(items)
