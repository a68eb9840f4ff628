"""frontends.cli.output: tables and field blocks for people, JSON for programs, one-line errors."""

from __future__ import annotations

import argparse
import json

import msgspec

from frontends.cli.output import (
    ERROR_PREFIX,
    HelpFormatter,
    display_width,
    format_error,
    format_fields,
    format_table,
    short_stamp,
    terminal_safe,
    to_json,
)
from protocols.fsm import Event, Status, Transition


def test_table_columns_align_on_the_widest_cell() -> None:
    table = format_table(("NAME", "STATUS"), [("a", "ready"), ("fix-login", "implementing")])
    assert table.splitlines() == [
        "NAME       STATUS",
        "a          ready",
        "fix-login  implementing",
    ]


def test_table_last_column_is_not_padded_and_lines_have_no_trailing_spaces() -> None:
    table = format_table(("A", "B", "C"), [("x", "", ""), ("long-value", "y", "z")])
    assert all(line == line.rstrip() for line in table.splitlines())
    assert table.splitlines()[1] == "x"


def test_table_counts_wide_characters_as_two_columns() -> None:
    table = format_table(("TITLE", "X"), [("日本", "1"), ("abcd", "2")])
    first, second = table.splitlines()[1:]  # the X cells start in the same terminal column
    assert display_width(first[: first.index("1")]) == display_width(second[: second.index("2")])


def test_table_folds_newlines_in_a_cell_onto_one_line() -> None:
    table = format_table(("RESULT",), [("failed:\n  no such task",)])
    assert table.splitlines()[1] == "failed: no such task"


def test_display_width_of_combining_and_wide_characters() -> None:
    assert display_width("abc") == 3
    assert display_width("e\u0301") == 1
    assert display_width("日本") == 4


def test_fields_align_values_and_indent_continuation_lines() -> None:
    block = format_fields([("name", "fix-login"), ("latest feedback", "line one\nline two")])
    assert block.splitlines() == [
        "name:            fix-login",
        "latest feedback: line one",
        "                 line two",
    ]


def test_short_stamp_drops_the_fraction_and_the_t() -> None:
    assert short_stamp("2026-11-21T15:01:59.123456Z") == "2026-11-21 15:01:59"
    assert short_stamp("") == ""


def test_json_of_a_record_keeps_field_names_and_enum_values() -> None:
    transition = Transition(Status.PLANNING, Event.PLANNER_FINISHED, Status.READY, "planned")
    assert json.loads(to_json([transition])) == [
        {"from_status": "planning", "event": "planner_finished", "to_status": "ready", "phase": "planned"}
    ]


def test_json_keeps_non_ascii_text_readable() -> None:
    class Note(msgspec.Struct):
        text: str

    assert "Überprüfung" in to_json(Note("Überprüfung"))


def test_error_is_prefixed_and_continuation_lines_are_indented() -> None:
    assert format_error("no task named x") == "corral: error: no task named x"
    assert format_error("first\nsecond") == f"{ERROR_PREFIX}first\n  second"


def test_help_formatter_wraps_prose_but_keeps_indented_examples() -> None:
    parser = argparse.ArgumentParser(
        prog="corral x",
        description="word " * 40,
        epilog="examples:\n  corral x --a-very-long-option-name " + "y" * 90,
        formatter_class=HelpFormatter,
    )
    text = parser.format_help()
    prose = [line for line in text.splitlines() if line.startswith("word")]
    assert len(prose) > 1
    assert "  corral x --a-very-long-option-name " + "y" * 90 in text.splitlines()


# -- agent-written text on a person's terminal (issue 8 §5) --------------------------------------------------

TITLE_GRAB = "\x1b]0;pwned\x07"  # OSC 0: set the window title
CURSOR_UP_AND_ERASE = "\x1b[2A\x1b[2K"  # CSI: two lines up, erase the line


def test_terminal_safe_shows_escape_sequences_instead_of_letting_them_act() -> None:
    assert terminal_safe(f"plan{TITLE_GRAB}done") == "plan^[]0;pwned^Gdone"
    assert terminal_safe(f"x{CURSOR_UP_AND_ERASE}y") == "x^[[2A^[[2Ky"
    assert terminal_safe("a\rb\x08c\x00d\x7fe") == "a^Mb^Hc^@d^?e"


def test_terminal_safe_shows_c1_controls_and_bidi_overrides_as_escapes() -> None:
    assert terminal_safe("\x9b2J \x9d0;t\x9c") == "\\x9b2J \\x9d0;t\\x9c"  # CSI, OSC, ST in one byte
    assert terminal_safe("abc\u202edef\u2066") == "abc\\u202edef\\u2066"


def test_terminal_safe_keeps_newlines_tabs_and_every_printable_character() -> None:
    text = "line one\n\tindented: é, 漢字, emoji 🙂, ü\n"
    assert terminal_safe(text) == text


def test_tables_fields_and_errors_never_pass_a_control_sequence_through() -> None:
    table = format_table(("TITLE", "REASON"), [(f"t{TITLE_GRAB}", f"r{CURSOR_UP_AND_ERASE}")])
    fields = format_fields([("title", f"t{TITLE_GRAB}"), ("content", f"one\ntwo{CURSOR_UP_AND_ERASE}")])
    error = format_error(f"no task named {TITLE_GRAB}")
    for shown in (table, fields, error):
        assert "\x1b" not in shown and "\x07" not in shown, shown
    assert table.splitlines()[1] == "t^[]0;pwned^G  r^[[2A^[[2K"
    assert fields.splitlines() == ["title:   t^[]0;pwned^G", "content: one", "         two^[[2A^[[2K"]
