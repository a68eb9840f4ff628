"""An agent's escape sequences never leave the preview pane.

An agent writes whatever it likes to its terminal: clear-screen, cursor moves, an OSC window title or
clipboard write, DCS strings, a full reset, the alternate screen, C1 controls, bidi overrides, colours it
never closes. The dashboard draws that screen inside its preview pane, so each of these would repaint,
retitle or reprogram the person's terminal if it got through. What a person would check, as properties of
the frame: the only escape sequences anywhere are SGR (colours); no line ends with a colour open; the
sidebar is drawn the same whatever the agent's screen holds; and text an agent wrote into its status reason
or a task's question reaches the sidebar and the bars as plain text.
"""

from __future__ import annotations

import re

import msgspec
import pytest

from frontends.dashboard.cells import cut
from frontends.dashboard.model import Pane, State
from frontends.dashboard.render import frame, sidebar_width
from frontends.dashboard.sanitize import plain, screen_lines
from protocols.records import TaskWaiting
from tests.unit.dashboard.fleet_kit import instance, sample_fleet, sample_state, task

HOSTILE = (
    "\x1b[2J\x1b[Hcleared and homed\n"
    "\x1b[10;5Hmoved \x1b[5Aup \x1b[Kerased \x1b[3Lrows\n"
    "\x1b]0;pwned title\x07\x1b]2;another title\x1b\\title set twice\n"
    "\x1b]52;c;ZXZpbA==\x07clipboard written\n"
    "\x1b]8;;http://evil.example\x1b\\a hyperlink\x1b]8;;\x1b\\ closed\n"
    "\x1bP+q544e\x1b\\a DCS query\n"
    "\x1bc full reset \x1b7saved\x1b8restored \x1b(0qqqq\x1b(B charset\n"
    "\x1b[?1049h alternate screen \x1b[?25l hidden cursor \x1b[?1000h mouse \x1b[?2004h paste\n"
    "\x9b2J C1 CSI \x9d0;c1 title\x9c\n"
    "\x1b[31mred never closed\n"
    "\u202eevil reversed\u202c text\n"
    "overwritten\rOVER\n"
    "bell\x07 back\x08space del\x7f\n"
    "\x1b[38;5;196m漢字 wide \x1b[48;2;1;2;3m" + "x" * 400 + "\n"
    "\x1b[1;4;5;7;8;9mevery attribute\n"
    "\x1b]0;never terminated"
)

ESCAPE = re.compile(r"\x1b(\[[0-9;:]*m)?")
CONTROLS = re.compile("[\x00-\x1a\x1c-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
SGR = re.compile(r"\x1b\[[0-9;:]*m")


def hostile_state(screen: str = HOSTILE, **view: object) -> State:
    state = sample_state(**view)  # type: ignore[arg-type]
    return msgspec.structs.replace(state, pane=Pane(title="add-sso-W2-T3", screen=screen, diff=screen))


@pytest.mark.parametrize("colors", (256, 16, 0))
@pytest.mark.parametrize("size", ((80, 24), (200, 60), (300, 100)), ids=str)
@pytest.mark.parametrize("tab", ("agent", "diff", "info"))
def test_only_sgr_escapes_reach_the_frame(tab: str, size: tuple[int, int], colors: int) -> None:
    lines = frame(hostile_state(tab=tab), *size, colors=colors)
    for n, line in enumerate(lines):
        for m in ESCAPE.finditer(line):
            assert m.group(1), f"line {n}: a non-SGR escape at {line[m.start() : m.start() + 12]!r}"
        assert not CONTROLS.search(line), f"line {n}: a control character in {line!r}"


@pytest.mark.parametrize("size", ((80, 24), (200, 60)), ids=str)
def test_no_line_ends_with_a_colour_open(size: tuple[int, int]) -> None:
    for line in frame(hostile_state(), *size):
        found = SGR.findall(line)
        if found:
            assert found[-1] in ("\x1b[0m", "\x1b[m"), f"a colour left open at the end of {line!r}"


@pytest.mark.parametrize("size", ((80, 24), (200, 60)), ids=str)
def test_the_sidebar_is_the_same_whatever_the_agent_wrote(size: tuple[int, int]) -> None:
    width, height = size
    calm = frame(hostile_state(screen="$ ok\n"), width, height)
    wild = frame(hostile_state(), width, height)
    edge = sidebar_width(width) + 1  # the sidebar and the separator
    for n, (a, b) in enumerate(zip(calm[1:-1], wild[1:-1], strict=True), start=1):
        assert cut(b, 0, edge) == cut(a, 0, edge), f"line {n}: the agent's screen changed the sidebar"


def test_the_agents_colours_are_kept_inside_the_preview() -> None:
    lines = frame(hostile_state(), 200, 60)
    assert any("\x1b[38;5;196m" in line for line in lines), "the agent's own colours are drawn"
    edge = sidebar_width(200) + 1
    assert not any("38;5;196" in cut(line, 0, edge) for line in lines)


def test_the_visible_text_of_hostile_lines_is_what_a_terminal_would_print() -> None:
    lines = [SGR.sub("", line) for line in screen_lines(HOSTILE, 256)]
    assert lines[0] == "cleared and homed"
    assert lines[2] == "title set twice"
    assert lines[4] == "a hyperlink closed"
    assert lines[5] == "a DCS query"
    assert lines[11] == "OVER"
    assert lines[-1] == "every attribute"  # an OSC never terminated swallows the rest, as a terminal does
    assert not any("never terminated" in line for line in lines)


def test_text_an_agent_wrote_into_its_reason_or_a_question_is_plain_in_the_chrome() -> None:
    fleet = sample_fleet()
    evil = "\x1b[2J\x1b]0;owned\x07\x1b[31mred reason\x1b[10;1H"
    instances = tuple(
        msgspec.structs.replace(i, reason=evil) if i.title == "add-sso-W2-T3" else i for i in fleet.instances
    )
    tasks = (
        *fleet.tasks,
        task("evil", "implementing", waiting=TaskWaiting(reason="why?\x1b]52;c;Zm9v\x07\x1b[5mblink")),
    )
    instances += (instance("agent\x1b[31m-odd", "running"),)
    state = msgspec.structs.replace(
        sample_state(tab="info"), fleet=msgspec.structs.replace(fleet, instances=instances, tasks=tasks)
    )
    lines = frame(state, 200, 60)
    text = "\n".join(lines)
    assert "\x1b[31m" not in text and "\x1b[5m" not in text and "\x1b]" not in text
    assert "red reason" in SGR.sub("", text)
    assert "why?blink" in SGR.sub("", text)
    assert plain("a\x1b[31mb\nc\td\x1b]0;t\x07e") == "ab c de"
