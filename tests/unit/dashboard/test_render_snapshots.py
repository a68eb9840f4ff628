"""Snapshots of whole frames: what a person sees at 80×24 and at 200×60, for the states that matter.

Each snapshot is the frame as plain text (SGR sequences removed: colours are checked by the other tests),
stored in tests/unit/dashboard/snapshots/<name>-<width>x<height>.txt and compared exactly. When a change to
the layout is meant, regenerate them and read the diff before committing:

    CORRAL_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest -q tests/unit/dashboard/test_render_snapshots.py
    git diff tests/unit/dashboard/snapshots/

Every state is also drawn at 256, 16 and no colours and checked against blessed's own measure of a line
(`Terminal.length`), so "exactly `width` cells" does not rest on our own width function alone.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import blessed
import msgspec
import pytest

from frontends.dashboard.keys import HELP
from frontends.dashboard.model import Fleet, Overlay, Pane, State
from frontends.dashboard.render import frame
from protocols.observer import SupervisionNode
from tests.unit.dashboard.fleet_kit import big_fleet, sample_fleet, sample_state, toast, with_view

SNAPSHOTS = Path(__file__).parent / "snapshots"
SGR = re.compile(r"\x1b\[[0-9;:]*m")
TERM = blessed.Terminal(kind="xterm-256color", force_styling=True, stream=io.StringIO())


def _node(path: str, kind: str = "worker", state: str = "running", **facts: Any) -> SupervisionNode:
    return SupervisionNode(id=path.rsplit("/", 1)[-1], path=path, kind=kind, state=state, **facts)


TREE = _node(
    "root",
    "supervisor",
    max_restarts=5,
    period_s=10.0,
    children=(
        _node("root/eventbus"),
        _node(
            "root/projects/project:app",
            "supervisor",
            restarts=1,
            last_exit="crashed: store busy",
            max_restarts=3,
            period_s=5.0,
            restarts_in_window=1,
            children=(
                _node(
                    "root/projects/project:app/add-sso-W2-T2",
                    "supervisor",
                    restarts=3,
                    generation=4,
                    max_restarts=3,
                    period_s=60.0,
                    restarts_in_window=3,
                    children=(
                        _node(
                            "root/projects/project:app/add-sso-W2-T2/runtime",
                            state="restarting",
                            restarts=3,
                            generation=4,
                            backoff_due_s=4.0,
                            last_exit="exit status 1",
                        ),
                    ),
                ),
            ),
        ),
    ),
)


def _overlay(**fields: object) -> Callable[[State], State]:
    return lambda s: with_view(s, overlay=Overlay(**fields))  # type: ignore[arg-type]


STATES: dict[str, Callable[[], State]] = {
    "agent-waiting": lambda: sample_state(),
    "diff": lambda: sample_state(tab="diff"),
    "info-sdk-fast": lambda: sample_state("instance:codex-fast", tab="info"),
    "info-failed": lambda: sample_state(
        "instance:add-sso-W2-T2",
        tab="info",
        fleet=msgspec.structs.replace(sample_fleet(), tree=TREE),
    ),
    "task-waits-for-wave-decision": lambda: sample_state("task:add-sso"),
    "offline-banner": lambda: sample_state(fleet=sample_fleet(connected=False)),
    "audit-and-toasts": lambda: sample_state(
        audit_open=True,
        toasts=(toast("paused helper (branch kept; r resumes)"), toast("gh is not logged in", "error")),
    ),
    "search-sso-active-only": lambda: sample_state(search="sso", filter="active", sort="name"),
    "interactive": lambda: sample_state(interactive=True),
    "empty": lambda: State(fleet=Fleet(project="app", connected=True)),
    "help": lambda: _overlay(kind="help", title="corral dashboard — keys", items=HELP)(sample_state()),
    "confirm-kill": lambda: _overlay(
        kind="confirm",
        title="Kill add-sso-W2-T1?",
        items=("The agent and everything it started are stopped. The row stays:",),
        target="add-sso-W2-T1",
        on_accept="kill",
    )(sample_state("instance:add-sso-W2-T1")),
    "menu-task": lambda: _overlay(
        kind="menu",
        title="task add-sso (implementing)",
        items=(
            "signal:retry_wave",
            "signal:advance_wave",
            "transition:implement_finished",
            "transition:cancel",
        ),
        cursor=1,
        target="add-sso",
        on_accept="task",
    )(sample_state("task:add-sso")),
    "picker-spawn": lambda: _overlay(
        kind="picker", title="Spawn an agent: how it runs", items=("tmux", "pty", "sdk", "sdk-fast"), cursor=3
    )(sample_state()),
    "input-rename": lambda: _overlay(
        kind="input", title="Rename scratch", text="scratch-2", lines=("A new title for the instance:",)
    )(sample_state("instance:scratch")),
    "tmux-orphans": lambda: _overlay(kind="tmux", title="tmux sessions no instance owns (orphans)")(
        sample_state()
    ),
    "tree": lambda: _overlay(kind="tree", title="supervision tree")(
        sample_state(fleet=msgspec.structs.replace(sample_fleet(), tree=TREE))
    ),
    "checkout": lambda: _overlay(
        kind="checkout",
        title="checkout corral/helper",
        items=("git -C /src/app checkout corral/helper",),
        lines=("The agent is paused and corral/helper is on your clipboard. Run:",),
    )(sample_state("instance:helper")),
    "attach-help": lambda: _overlay(
        kind="attach_help",
        title="attaching to add-sso-W2-T1",
        items=("ctrl+q or ctrl+space detaches back to the dashboard (also inside your own tmux).",),
    )(sample_state("instance:add-sso-W2-T1")),
    "200-agents": lambda: State(
        fleet=big_fleet(200), pane=Pane(title="agent-100", screen="$ make test\nok\n"), now=1.0
    ),
}

SIZES = ((80, 24), (200, 60))


def _plain(lines: list[str]) -> str:
    return "\n".join(SGR.sub("", line) for line in lines) + "\n"


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", list(STATES))
def test_frame_matches_its_snapshot(name: str, size: tuple[int, int]) -> None:
    width, height = size
    got = _plain(frame(STATES[name](), width, height))
    path = SNAPSHOTS / f"{name}-{width}x{height}.txt"
    if os.environ.get("CORRAL_UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(got, encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}: run with CORRAL_UPDATE_SNAPSHOTS=1 to write it"
    assert got == path.read_text(encoding="utf-8"), (
        f"{path.name} differs (CORRAL_UPDATE_SNAPSHOTS=1 rewrites it)"
    )


@pytest.mark.parametrize("colors", (256, 16, 0))
@pytest.mark.parametrize("size", ((80, 24), (200, 60), (300, 100), (44, 10), (120, 7)), ids=str)
@pytest.mark.parametrize("name", list(STATES))
def test_every_line_is_exactly_the_width_by_blessed_measure(
    name: str, size: tuple[int, int], colors: int
) -> None:
    width, height = size
    lines = frame(STATES[name](), width, height, colors=colors)
    assert len(lines) == height
    assert [TERM.length(line) for line in lines] == [width] * height


@pytest.mark.parametrize("name", list(STATES))
def test_colours_degrade_to_16_and_to_none(name: str) -> None:
    state = STATES[name]()
    rich = "".join(frame(state, 200, 60, colors=256))
    basic = "".join(frame(state, 200, 60, colors=16))
    none = "".join(frame(state, 200, 60, colors=0))
    assert "38;5;" in rich
    assert "38;5;" not in basic and "48;5;" not in basic and "38;2;" not in basic
    colour_params = {p for seq in SGR.findall(none) for p in seq[2:-1].split(";") if p}
    assert colour_params <= {"0", "1", "7"}, f"colour codes without colours: {colour_params}"
    assert _plain(frame(state, 200, 60, colors=0)) == _plain(frame(state, 200, 60, colors=256))
