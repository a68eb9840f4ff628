"""Any sequence of keys, on any of the sample states: `handle` never raises, the selection is always a row
that exists (or none when there is none), an overlay's cursor stays inside its list, and every frame drawn
along the way is exactly the terminal's size. What a person mashing keys would find out the hard way."""

from __future__ import annotations

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frontends.dashboard import sidebar
from frontends.dashboard.cells import visible_width
from frontends.dashboard.keys import KEYS, handle
from frontends.dashboard.model import Fleet, State
from frontends.dashboard.render import frame
from tests.unit.dashboard.fleet_kit import big_fleet, sample_fleet, sample_state

NAMED = [
    *KEYS,
    "KEY_LEFT",
    "KEY_RIGHT",
    "KEY_BACKSPACE",
    "KEY_CTRL_SPACE",
    "KEY_CTRL_Q",
    "KEY_CTRL_ENTER",
    "\x00",
    "\x11",
    "\r",
    "\x1b",
    "\x7f",
    "a",
    "x",
    "Z",
    "-",
    "é",
    "漢",
]
STATES = {
    "sample": sample_state(),
    "task": sample_state("task:add-sso"),
    "offline": sample_state(fleet=sample_fleet(connected=False)),
    "empty": State(fleet=Fleet(project="app", connected=True)),
    "many": State(fleet=big_fleet(40)),
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.sampled_from(sorted(STATES)),
    keys=st.lists(st.sampled_from(NAMED), max_size=40),
    size=st.sampled_from([(80, 24), (200, 60), (30, 8), (120, 12)]),
)
def test_any_keys_keep_the_state_whole_and_the_frame_exact(
    start: str, keys: list[str], size: tuple[int, int]
) -> None:
    state = STATES[start]
    width, height = size
    for key in keys:
        state, effects = handle(state, key)
        assert isinstance(effects, tuple)
        rows = sidebar.selectable(sidebar.rows(state.fleet, state.view))
        assert (sidebar.selected_row(rows, state.view) is None) == (not rows)
        overlay = state.view.overlay
        if overlay is not None and overlay.kind in ("menu", "picker"):
            assert 0 <= overlay.cursor < len(overlay.items)
        lines = frame(msgspec.structs.replace(state, now=state.now + 1), width, height)
        assert len(lines) == height and all(visible_width(line) == width for line in lines)
