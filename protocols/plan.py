"""The plan format planner agents write, and the `Plan` it reads into.

    # Add rate limiting                      ← the title: the first line, required
    **Goal:** throttle abusive clients       ← optional header fields, before the first wave
    ## Wave 1: Foundations                   ← waves, numbered 1, 2, 3, … in order
    ### Task 1: Token bucket                 ← tasks, numbered uniquely across the whole plan
    body …                                   ← everything up to the next wave or task heading

Waves run one after another; the tasks of a wave run in parallel. The parser is strict because a plan that
silently means something else costs a wave of agent work: a heading it cannot read (`### Task two:`, a
`## Wave` without a number, a task heading with two `#`) is a PlanError naming the line, never body text. It
is lenient only where nothing can be misread: CRLF, a BOM, trailing spaces, `**Goal**:` for `**Goal:**`.
Headings inside fenced code blocks are code, so task bodies can quote plans. docs/plan-format.md lists every
rule and every message.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType

import msgspec

from protocols.errors import NotFoundError, PlanError

__all__ = ["MAX_NUMBER", "Plan", "PlanTask", "Wave", "parse_plan", "render_plan"]

MAX_NUMBER = 999_999
"""The largest wave or task number: anything longer is a typo, and every number must fit the store."""


class PlanTask(msgspec.Struct, frozen=True):
    """`### Task 3: Title` and its body. parse_plan fills `line` (1-based) and `wave_number`."""

    number: int
    title: str
    body: str = ""
    line: int = 0
    wave_number: int = 0


class Wave(msgspec.Struct, frozen=True):
    """`## Wave 2: Title` and its tasks, which run in parallel once every earlier wave is done."""

    number: int
    title: str = ""
    tasks: tuple[PlanTask, ...] = ()
    line: int = 0


class Plan(msgspec.Struct, frozen=True):
    """A plan: `plan = parse_plan(path.read_text(), str(path)); plan.wave(1).tasks`.

    A Plan from parse_plan has waves numbered 1, 2, 3, … with at least one task each, and task numbers unique
    across the plan. A Plan built by hand is checked when render_plan writes it.
    """

    title: str
    goal: str = ""
    architecture: str = ""
    tech_stack: str = ""
    waves: tuple[Wave, ...] = ()

    @property
    def tasks(self) -> tuple[PlanTask, ...]:
        """Every task, in plan order."""
        return tuple(task for wave in self.waves for task in wave.tasks)

    @property
    def task_count(self) -> int:
        return sum(len(wave.tasks) for wave in self.waves)

    def task(self, number: int) -> PlanTask:
        """The task numbered `number`, or NotFoundError listing the numbers there are."""
        for task in self.tasks:
            if task.number == number:
                return task
        numbers = ", ".join(str(task.number) for task in self.tasks) or "none"
        raise NotFoundError(f'plan "{self.title}" has no task {number} (its tasks: {numbers})')

    def wave(self, number: int) -> Wave:
        """The wave numbered `number`, or NotFoundError saying how many waves there are."""
        for wave in self.waves:
            if wave.number == number:
                return wave
        raise NotFoundError(f'plan "{self.title}" has no wave {number} (it has {len(self.waves)})')

    def header_context(self) -> str:
        """The Goal, Architecture and Tech Stack lines as a plan writes them, for prompts; "" if none."""
        return "\n".join(_header_lines(self))


# (Plan field, the label a plan writes): parsing, rendering and header_context all read this table.
_HEADER_FIELDS: tuple[tuple[str, str], ...] = (
    ("goal", "Goal"),
    ("architecture", "Architecture"),
    ("tech_stack", "Tech Stack"),
)
_FIELD_BY_KEY: Mapping[str, str] = MappingProxyType({label.lower(): f for f, label in _HEADER_FIELDS})
# The heading level each kind of heading must have.
_LEVELS: Mapping[str, int] = MappingProxyType({"wave": 2, "task": 3})

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_TITLE = re.compile(r" {0,3}#(?!#)(.*)")
# The label is bounded so that a long line of spaces cannot make the lazy match quadratic.
_HEADER_FIELD = re.compile(r" {0,3}\*\*[ \t]*([A-Za-z][A-Za-z \t_-]{0,30}?)[ \t]*(?::\*\*|\*\*[ \t]*:)(.*)")
# Anything that starts like a wave or task heading at levels 1-3 is one, or an error: never body text.
# Levels 4+ are sub-headings of a task body.
# ASCII case folding only: under Unicode rules "taſk" (long s) and "tasK" (Kelvin sign) would spell "task".
_HEADING = re.compile(r" {0,3}(#{1,3})(?!#)([ \t]*)(wave|task)(?![a-z])(.*)", re.IGNORECASE | re.ASCII)
_NUMBERED = re.compile(r"[ \t]*[0-9]")
_WAVE_REST = re.compile(r"([ \t]*)([^ \t:]*)(.*)")
_TASK_REST = re.compile(r"([ \t]*)([^ \t:]*)[ \t]*(:?)(.*)")
_FENCE_OPEN = re.compile(r"[ \t]*(`{3,}|~{3,})(.*)")
_FENCE_CLOSE = re.compile(r"[ \t]*(`{3,}|~{3,})[ \t]*")
_TITLE_SEPARATORS = ":-–—"


class _Kind(enum.Enum):
    TEXT = "text"
    CODE = "code"
    WAVE = "wave"
    TASK = "task"


class _Line(msgspec.Struct, frozen=True):
    """One source line as the scanner read it; `number` and `title` are set for wave and task headings."""

    line: int
    text: str
    kind: _Kind
    number: int = 0
    title: str = ""


def parse_plan(text: str, source: str = "plan") -> Plan:
    """Read a plan, or raise PlanError naming `source`, the 1-based line and what to change.

    Errors come in document order, so the first one reported is the first one to fix.
    """
    lines = _LINE_BREAK.split(text.removeprefix("\ufeff"))
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise PlanError(
            0,
            'the plan is empty: it needs a "# Title" line, then "## Wave 1" and "### Task 1: Title" under it',
            source,
        )
    builder = _Builder(_title(first + 1, lines[first], source), source)
    for line in _scan(lines, first + 1, source):
        builder.add(line)
    return builder.finish()


def render_plan(plan: Plan) -> str:
    """Write `plan` in the canonical layout, so that `parse_plan(render_plan(p)) == p`.

    `line` and `wave_number` are the layout's to decide, so they are ignored: the plan reads back with the
    same content and the canonical line numbers, and exactly equal when `p` was read from render_plan's
    output. A plan that would not read back as given (a title with a line break, a body line that reads as a
    heading, an empty wave) raises PlanError rather than write a file that means something else.
    """
    text = _write(plan)
    try:
        back = parse_plan(text, "render_plan")
    except PlanError as err:
        where = f" (line {err.line} of the text)" if err.line else ""
        raise PlanError(0, f"cannot write this plan: {err.reason}{where}", "render_plan") from None
    problem = _difference(plan, back)
    if problem:
        raise PlanError(
            0,
            f"cannot write this plan: {problem} would not read back as given (titles and header fields are "
            "one line without surrounding spaces; a body has no blank first or last line and no line that "
            "reads as a wave or task heading outside a code fence)",
            "render_plan",
        )
    return text


def _title(line: int, text: str, source: str) -> str:
    match = _TITLE.fullmatch(text)
    if match is None:
        raise PlanError(
            line, f'the plan has no title: start it with a "# <title>" line (found {_quote(text)})', source
        )
    rest = match[1]
    if not rest.strip():
        raise PlanError(
            line, 'the plan title is empty: write it after the "#", e.g. "# Add rate limiting"', source
        )
    if rest[0] not in " \t":
        raise PlanError(line, f'put a space after the "#" of the title: "# {rest.strip()}"', source)
    return rest.strip()


def _scan(lines: list[str], start: int, source: str) -> Iterator[_Line]:
    """Classify the lines after the title, lazily, so that errors surface in document order."""
    fence: tuple[str, int, int] | None = None  # the open fence's character, length and line
    for index in range(start, len(lines)):
        line, text = index + 1, lines[index]
        if fence is not None:
            close = _FENCE_CLOSE.fullmatch(text)
            if close and close[1][0] == fence[0] and len(close[1]) >= fence[1]:
                fence = None
            yield _Line(line, text, _Kind.CODE)
            continue
        opening = _FENCE_OPEN.fullmatch(text)
        if opening and not (opening[1][0] == "`" and "`" in opening[2]):
            fence = (opening[1][0], len(opening[1]), line)
            yield _Line(line, text, _Kind.CODE)
            continue
        yield _heading(line, text, source) or _Line(line, text, _Kind.TEXT)
    if fence is not None:
        marker = fence[0] * fence[1]
        raise PlanError(
            fence[2],
            f"this code fence is never closed, so everything below it reads as code: "
            f'close it with a "{marker}" line',
            source,
        )


def _heading(line: int, text: str, source: str) -> _Line | None:
    match = _HEADING.fullmatch(text)
    if match is None:
        return None
    hashes, gap, word, rest = match.groups()
    kind = word.lower()
    level = _LEVELS[kind]
    if len(hashes) != level:
        if not _NUMBERED.match(rest):
            return None  # "### Wave propagation", "# Task runner": prose, not a misplaced heading
        suggestion = f"{'#' * level} {kind.capitalize()}{rest}"
        raise PlanError(
            line,
            f'a {kind} heading starts with "{"#" * level}": write "{suggestion.strip()}" '
            '(or use "####" for a sub-heading inside a task body)',
            source,
        )
    if kind == "wave":
        number, title = _wave_heading(line, text, gap, rest, source)
        return _Line(line, text, _Kind.WAVE, number, title)
    number, title = _task_heading(line, text, gap, rest, source)
    return _Line(line, text, _Kind.TASK, number, title)


def _wave_heading(line: int, text: str, gap: str, rest: str, source: str) -> tuple[int, str]:
    match = _WAVE_REST.fullmatch(rest)
    assert match is not None  # the pattern matches any text
    space, token, after = match.groups()
    number = _number(line, text, token, "wave", '"## Wave N" or "## Wave N: Title"', source)
    title = after.strip()
    if title[:1] and title[0] in _TITLE_SEPARATORS:
        title = title[1:].strip()
    if not gap or not space:
        canonical = f"## Wave {number}: {title}" if title else f"## Wave {number}"
        raise PlanError(line, f'write this wave heading as "{canonical}", with spaces around "Wave"', source)
    return number, title


def _task_heading(line: int, text: str, gap: str, rest: str, source: str) -> tuple[int, str]:
    match = _TASK_REST.fullmatch(rest)
    assert match is not None  # the pattern matches any text
    space, token, colon, after = match.groups()
    number = _number(line, text, token, "task", '"### Task N: Title"', source)
    title = after.strip()
    if not colon:
        raise PlanError(
            line,
            f'put a colon after the task number: "### Task {number}: {title or "<title>"}"',
            source,
        )
    if not title:
        raise PlanError(line, f'task {number} has no title: write "### Task {number}: <title>"', source)
    if not gap or not space:
        raise PlanError(
            line,
            f'write this task heading as "### Task {number}: {title}", with spaces around "Task"',
            source,
        )
    return number, title


def _number(line: int, text: str, token: str, kind: str, form: str, source: str) -> int:
    if not (token.isascii() and token.isdigit()):
        raise PlanError(
            line,
            f'{_quote(text)} needs a {kind} number (1, 2, 3, …) after "{kind.capitalize()}": write {form}',
            source,
        )
    digits = token.lstrip("0")
    if not digits:
        raise PlanError(line, f"{kind} numbers start at 1, not 0", source)
    # Compare lengths first: int() of a 5000-digit string is refused by Python itself.
    if len(digits) > len(str(MAX_NUMBER)) or int(digits) > MAX_NUMBER:
        shown = token if len(token) <= 20 else f"{token[:12]}…"
        raise PlanError(line, f"{kind} number {shown} is too large: the largest is {MAX_NUMBER}", source)
    return int(digits)


class _Builder:
    """Assembles a Plan from scanned lines, checking what only the structure reveals."""

    def __init__(self, title: str, source: str) -> None:
        self.title, self.source = title, source
        self.header: dict[str, tuple[str, int]] = {}  # field -> (value, line)
        self.waves: list[Wave] = []
        self.wave_lines: dict[int, int] = {}
        self.task_lines: dict[int, int] = {}
        self.open_wave: _Line | None = None
        self.wave_tasks: list[PlanTask] = []
        self.open_task: _Line | None = None
        self.body: list[str] = []

    def add(self, line: _Line) -> None:
        if line.kind is _Kind.WAVE:
            self._start_wave(line)
        elif line.kind is _Kind.TASK:
            self._start_task(line)
        elif self.open_task is not None:
            self.body.append(line.text)
        elif self.open_wave is None and line.kind is _Kind.TEXT:
            self._header_field(line)
        # Anything else is prose between a wave heading and its first task: for people, not agents.

    def finish(self) -> Plan:
        self._close_wave()
        if not self.waves:
            raise PlanError(
                0,
                'the plan has no waves: add "## Wave N" sections (the first is "## Wave 1"), each with '
                '"### Task N: Title" headings under it',
                self.source,
            )
        fields = {field: value for field, (value, _) in self.header.items()}
        return Plan(self.title, waves=tuple(self.waves), **fields)

    def _header_field(self, line: _Line) -> None:
        match = _HEADER_FIELD.fullmatch(line.text)
        if match is None:
            return
        field = _FIELD_BY_KEY.get(" ".join(re.split(r"[ \t_-]+", match[1])).lower())
        if field is None:
            return  # "**Note:** …" and the like are prose
        if field in self.header:
            label = dict(_HEADER_FIELDS)[field]
            raise PlanError(
                line.line,
                f'"**{label}:**" is given twice, at lines {self.header[field][1]} and {line.line}: keep one',
                self.source,
            )
        self.header[field] = (match[2].strip(), line.line)

    def _start_wave(self, line: _Line) -> None:
        self._close_wave()
        expected = len(self.waves) + 1
        if line.number in self.wave_lines:
            raise PlanError(
                line.line,
                f"wave {line.number} appears twice, at lines {self.wave_lines[line.number]} and {line.line}: "
                f'waves are numbered 1, 2, 3, … in order, so this one should be "## Wave {expected}"',
                self.source,
            )
        if line.number != expected:
            raise PlanError(
                line.line,
                f'expected "## Wave {expected}" here, found wave {line.number}: '
                "waves are numbered 1, 2, 3, … in order, none skipped",
                self.source,
            )
        self.wave_lines[line.number] = line.line
        self.open_wave = line

    def _start_task(self, line: _Line) -> None:
        if self.open_wave is None:
            raise PlanError(
                line.line,
                f'task {line.number} comes before the first wave: put a "## Wave 1" heading above it',
                self.source,
            )
        self._close_task()
        if line.number in self.task_lines:
            raise PlanError(
                line.line,
                f"task {line.number} is defined twice, at lines {self.task_lines[line.number]} "
                f"and {line.line}: task numbers are unique across the whole plan, so renumber one",
                self.source,
            )
        self.task_lines[line.number] = line.line
        self.open_task = line

    def _close_task(self) -> None:
        head, wave = self.open_task, self.open_wave
        if head is None or wave is None:
            return
        body = _trim_blank_lines(self.body)
        self.wave_tasks.append(PlanTask(head.number, head.title, body, head.line, wave.number))
        self.open_task, self.body = None, []

    def _close_wave(self) -> None:
        self._close_task()
        head = self.open_wave
        if head is None:
            return
        if not self.wave_tasks:
            raise PlanError(
                head.line,
                f'wave {head.number} has no tasks: add "### Task N: Title" headings under it, or remove it',
                self.source,
            )
        self.waves.append(Wave(head.number, head.title, tuple(self.wave_tasks), head.line))
        self.open_wave, self.wave_tasks = None, []


def _trim_blank_lines(lines: list[str]) -> str:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return "\n".join(lines[start:end])


def _quote(text: str) -> str:
    text = text.strip()
    return f'"{text}"' if len(text) <= 60 else f'"{text[:59]}…"'


def _header_lines(plan: Plan) -> list[str]:
    return [f"**{label}:** {value}" for field, label in _HEADER_FIELDS if (value := getattr(plan, field))]


def _write(plan: Plan) -> str:
    out = [f"# {plan.title}", ""]
    header = _header_lines(plan)
    if header:
        out += [*header, ""]
    for wave in plan.waves:
        out += [f"## Wave {wave.number}: {wave.title}" if wave.title else f"## Wave {wave.number}", ""]
        for task in wave.tasks:
            out += [f"### Task {task.number}: {task.title}", ""]
            if task.body:
                out += [task.body, ""]
    return "\n".join(out)


def _difference(given: Plan, back: Plan) -> str:
    """The first part of `given` that reads back differently, described for a person; "" if none."""
    if given.title != back.title:
        return f"the title {given.title!r}"
    for field, label in _HEADER_FIELDS:
        if getattr(given, field) != getattr(back, field):
            return f"the {label} {getattr(given, field)!r}"
    shape = [(w.number, [t.number for t in w.tasks]) for w in given.waves]
    if shape != [(w.number, [t.number for t in w.tasks]) for w in back.waves]:
        return "the waves and tasks"
    for wave, wave_back in zip(given.waves, back.waves, strict=True):
        if wave.title != wave_back.title:
            return f"wave {wave.number}'s title {wave.title!r}"
        for task, task_back in zip(wave.tasks, wave_back.tasks, strict=True):
            if task.title != task_back.title:
                return f"task {task.number}'s title {task.title!r}"
            if task.body != task_back.body:
                return f"task {task.number}'s body"
    return ""
