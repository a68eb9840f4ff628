"""What a frame shows, checked as a person would look for it (the snapshots pin the whole picture; these
pin the rules behind it)."""

from __future__ import annotations

import re

import msgspec

from frontends.dashboard.cells import visible_width
from frontends.dashboard.keys import handle
from frontends.dashboard.model import Pane, State, Toast, View
from frontends.dashboard.render import frame, sidebar_width
from tests.unit.dashboard.fleet_kit import big_fleet, sample_fleet, sample_state, with_view

SGR = re.compile(r"\x1b\[[0-9;:]*m")


def text(state: State, width: int = 200, height: int = 60) -> list[str]:
    return [SGR.sub("", line) for line in frame(state, width, height)]


def test_the_selected_row_stays_in_view_in_a_long_list() -> None:
    fleet = big_fleet(200)
    last = fleet.instances[-1].title
    for title in (last, fleet.instances[0].title, fleet.instances[100].title):
        lines = text(State(fleet=fleet, view=View(selected=f"instance:{title}")), 80, 24)
        side = [line[: sidebar_width(80)] for line in lines]
        assert any("›" in s and title in s for s in side), f"{title} not shown selected"


def test_scrolling_back_shows_earlier_lines_of_a_long_transcript() -> None:
    screen = "\n".join(f"line {n}" for n in range(5000))
    state = sample_state()
    state = msgspec.structs.replace(state, pane=Pane(title="add-sso-W2-T3", screen=screen))
    assert "line 4999" in "".join(text(state))
    back = "".join(text(with_view(state, scroll=1000)))
    assert "line 3999" in back and "line 4999" not in back
    top = text(with_view(state, scroll=10_000))
    edge = sidebar_width(200) + 1
    assert top[2][edge:].rstrip() == "line 0"  # scrolled as far back as it goes: the first line first


def test_toasts_show_until_they_expire() -> None:
    state = with_view(sample_state(), toasts=(Toast(text="pushed corral/x", until=150.0),))
    assert any("pushed corral/x" in line for line in text(state))
    later = msgspec.structs.replace(state, now=151.0)
    assert not any("pushed corral/x" in line for line in text(later))


def test_the_banner_shows_only_while_the_daemon_cannot_be_reached() -> None:
    assert not any("reconnecting" in line for line in text(sample_state()))
    offline = text(sample_state(fleet=sample_fleet(connected=False)))
    assert "connection refused" in offline[1] and "reconnecting by itself" in offline[1]
    assert "offline" in offline[0]


def test_info_says_speed_tier_fast_and_a_profile_that_is_not_normal() -> None:
    info = "\n".join(text(sample_state("instance:codex-fast", tab="info")))
    assert re.search(r"speed tier\s+fast", info) and re.search(r"profile\s+light", info)
    normal = "\n".join(text(sample_state("instance:add-sso-W2-T1", tab="info")))
    assert "speed tier" not in normal and "profile" not in normal
    assert "cpu 0.3% · mem 30.0 MiB · up 12m34s" in normal


def test_a_waiting_task_shows_its_question_under_it_and_its_wave_progress() -> None:
    lines = text(sample_state(), 200, 60)
    row = next(n for n, line in enumerate(lines) if "add-sso W2 3/5 ✗1" in line)
    assert "↳ add-sso — wave 2: 3/5 tasks complete" in lines[row + 1]


def test_tiny_and_huge_terminals_get_exact_frames() -> None:
    for width, height in ((1, 1), (10, 3), (43, 5), (300, 100), (500, 200)):
        lines = frame(sample_state(audit_open=True), width, height)
        assert len(lines) == height
        assert [visible_width(line) for line in lines] == [width] * height


def test_status_glyphs_carry_their_colours_at_16_and_256() -> None:
    for colors, failed, waiting in (
        (256, "\x1b[1;38;5;203m✗", "\x1b[1;38;5;220m◆"),
        (16, "\x1b[1;31m✗", "\x1b[1;33m◆"),
    ):
        drawn = "".join(frame(sample_state(), 200, 60, colors=colors))
        assert failed in drawn and waiting in drawn


def test_a_long_help_scrolls_and_says_how_much_is_left() -> None:
    state, _ = handle(sample_state(), "?")
    first = text(state, 80, 24)
    assert any("↓" in line and "more" in line for line in first)
    for _ in range(40):
        state, _ = handle(state, "KEY_DOWN")
    last = text(state, 80, 24)
    assert any("W2 3/5 = wave 2" in line for line in last)
    assert any("↑" in line and "above" in line for line in last)


def test_a_menu_keeps_its_cursor_in_view_on_a_short_terminal() -> None:
    state, _ = handle(sample_state("instance:add-sso-W2-T3"), " ")
    for _ in range(30):
        state, _ = handle(state, "KEY_DOWN")
    assert any("▸ copy worktree path" in line for line in text(state, 80, 12))
