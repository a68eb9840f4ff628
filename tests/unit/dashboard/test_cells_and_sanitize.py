"""Cells and agent text: widths as a terminal counts them (wide and combining characters, escapes taking
none), coloured lines cut to an exact width with their colours re-opened and closed, and agent colours
rewritten for 16 colours or none."""

from __future__ import annotations

import io

import blessed
import pytest

from frontends.dashboard.cells import RESET, cut, fit, visible_width, width, wrap
from frontends.dashboard.sanitize import plain, screen_lines

TERM = blessed.Terminal(kind="xterm-256color", force_styling=True, stream=io.StringIO())


@pytest.mark.parametrize(
    "text",
    ["plain", "漢字かな", "e\u0301te\u0301", "\x1b[31mred\x1b[0m and 漢", "emoji 🎉 ok", "❤️ ✔️ 👩‍💻 🇫🇷 x", ""],
)
def test_width_of_sanitized_text_agrees_with_blessed(text: str) -> None:
    (line,) = screen_lines(text, 256) or ("",)
    assert visible_width(line) == TERM.length(line)


def test_emoji_whose_width_terminals_disagree_on_are_made_unambiguous() -> None:
    assert plain("❤️ ✔️ 👩‍💻") == "❤ ✔ 👩💻"


@pytest.mark.parametrize("cells", range(0, 12))
def test_fit_is_exactly_the_cells_asked_even_with_wide_characters(cells: int) -> None:
    for text in ("a long title", "漢字の長いタイトル", "ab漢"):
        got = fit(text, cells)
        assert width(got) == cells
        if width(text) > cells > 0:
            assert got.rstrip().endswith("…")


@pytest.mark.parametrize(("start", "end"), [(0, 5), (2, 9), (3, 6), (0, 40), (7, 8), (5, 5)])
def test_cut_is_exact_reopens_colours_and_closes_them(start: int, end: int) -> None:
    line = "ab\x1b[31m漢字\x1b[1mbold\x1b[0m tail"
    got = cut(line, start, end)
    assert TERM.length(got) == end - start
    if "\x1b[" in got:
        assert got.endswith(RESET)
    if start == 3:  # inside the red run: the red is re-opened before the first cell
        assert got.startswith("\x1b[31m")


@pytest.mark.parametrize(("start", "end"), [(0, 3), (1, 4), (2, 7), (0, 12)])
def test_cut_keeps_clusters_whole(start: int, end: int) -> None:
    (line,) = screen_lines("a❤️👩‍💻\x1b[32m✔️b🇫🇷e\u0301", 256)
    got = cut(line, start, end)
    assert TERM.length(got) == end - start
    assert "🇫" not in got or "🇫🇷" in got  # a flag's pair is never split


def test_cut_after_a_reset_does_not_reopen_closed_colours() -> None:
    assert cut("\x1b[31mred\x1b[0m plain", 4, 9) == "plain"


def test_wrap_breaks_at_spaces_and_cuts_long_words() -> None:
    assert wrap("retry the failed tasks", 10) == ["retry the", "failed", "tasks"]
    assert all(width(line) <= 4 for line in wrap("abcdefghij", 4))


def test_sixteen_colours_map_256_and_true_colour_to_the_nearest_basic() -> None:
    assert screen_lines("\x1b[38;5;196mred\x1b[0m", 16) == ("\x1b[91mred\x1b[0m",)
    assert screen_lines("\x1b[48;5;2mbg\x1b[0m", 16) == ("\x1b[42mbg\x1b[0m",)
    assert screen_lines("\x1b[1;38;2;0;0;0mblack", 16) == ("\x1b[1;30mblack",)
    assert screen_lines("\x1b[38:5:21mblue", 16) == ("\x1b[34mblue",)
    assert screen_lines("\x1b[38;5;196mred", 256) == ("\x1b[38;5;196mred",)
    assert screen_lines("\x1b[38;5;196mred\x1b[0m", 0) == ("red",)


def test_a_private_mode_sequence_ending_in_m_is_not_taken_for_a_colour() -> None:
    assert screen_lines("\x1b[>4;2mkeys", 256) == ("keys",)


def test_tabs_expand_to_the_next_stop_of_eight() -> None:
    assert screen_lines("a\tb\x1b[31m漢\tc", 0) == ("a       b漢     c",)


def test_plain_drops_every_escape_and_control() -> None:
    assert plain("\x1b[2Jhi\x1b]0;title\x07 there\r\n\x1b[31mred\x07\u202e") == "hi there red"
