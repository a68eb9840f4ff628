"""The plan format: what parses, what each malformation reports, and properties over generated plans."""

from __future__ import annotations

import textwrap

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import plan as plan_module
from protocols.errors import NotFoundError, PlanError
from protocols.plan import MAX_NUMBER, Plan, PlanTask, Wave, parse_plan, render_plan


def md(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def without_positions(plan: Plan) -> Plan:
    """The plan's content: what render_plan promises to keep (line numbers are the layout's)."""
    replace = msgspec.structs.replace
    return replace(
        plan,
        waves=tuple(
            replace(wave, line=0, tasks=tuple(replace(t, line=0, wave_number=0) for t in wave.tasks))
            for wave in plan.waves
        ),
    )


def parse_error(text: str) -> PlanError:
    with pytest.raises(PlanError) as info:
        parse_plan(text, "p.md")
    return info.value


TWO_WAVES = md(
    """
    # Rate limiting

    ## Wave 1: Foundations
    ### Task 1: Token bucket
    Write the bucket.
    ### Task 2: Clock
    ### Task 3: Config
    Add keys.

    ## Wave 2
    ### Task 4: Middleware
    ### Task 5: Metrics
    ### Task 6: Docs
    """
)


# --- valid plans --------------------------------------------------------------------------------------------


def test_single_wave_single_task_plan_parses_with_lines() -> None:
    plan = parse_plan("# Title\n## Wave 1\n### Task 1: Only\ndo it\n")
    assert plan == Plan(
        "Title", waves=(Wave(1, "", (PlanTask(1, "Only", "do it", line=3, wave_number=1),), line=2),)
    )
    assert plan.task_count == 1


def test_two_waves_of_three_tasks_keep_order_numbers_titles_and_lines() -> None:
    plan = parse_plan(TWO_WAVES)
    assert [(w.number, w.title, w.line) for w in plan.waves] == [(1, "Foundations", 3), (2, "", 10)]
    assert [(t.number, t.title, t.line, t.wave_number) for t in plan.tasks] == [
        (1, "Token bucket", 4, 1),
        (2, "Clock", 6, 1),
        (3, "Config", 7, 1),
        (4, "Middleware", 11, 2),
        (5, "Metrics", 12, 2),
        (6, "Docs", 13, 2),
    ]
    assert plan.task(1).body == "Write the bucket."
    assert plan.task(2).body == ""
    assert plan.task(3).body == "Add keys."
    assert plan.task_count == 6


def test_header_fields_are_read_and_given_back_as_header_context() -> None:
    plan = parse_plan(
        md(
            """
            # Plan
            **Goal:** stop abuse
            **Architecture:** a middleware in front of the API
            **Tech Stack:** Python, Redis
            Some prose the planner wrote.
            ## Wave 1
            ### Task 1: Do
            """
        )
    )
    assert (plan.goal, plan.architecture, plan.tech_stack) == (
        "stop abuse",
        "a middleware in front of the API",
        "Python, Redis",
    )
    assert plan.header_context() == (
        "**Goal:** stop abuse\n"
        "**Architecture:** a middleware in front of the API\n"
        "**Tech Stack:** Python, Redis"
    )


def test_header_fields_are_optional_and_header_context_omits_missing_ones() -> None:
    assert parse_plan("# P\n## Wave 1\n### Task 1: x").header_context() == ""
    plan = parse_plan("# P\n**Architecture:** hexagonal\n## Wave 1\n### Task 1: x")
    assert (plan.goal, plan.header_context()) == ("", "**Architecture:** hexagonal")


@pytest.mark.parametrize(
    "line",
    ["**Goal**: fast", "**goal:** fast", "**Goal:**fast", "** Goal :** fast  ", "**GOAL** : fast"],
)
def test_header_field_spelling_variants_are_accepted(line: str) -> None:
    assert parse_plan(f"# P\n{line}\n## Wave 1\n### Task 1: x").goal == "fast"


@pytest.mark.parametrize("line", ["**Tech Stack:** Go", "**Tech-Stack:** Go", "**tech_stack**: Go"])
def test_tech_stack_accepts_space_hyphen_or_underscore(line: str) -> None:
    assert parse_plan(f"# P\n{line}\n## Wave 1\n### Task 1: x").tech_stack == "Go"


def test_header_field_lines_after_the_first_wave_are_body_text() -> None:
    plan = parse_plan("# P\n## Wave 1\n### Task 1: x\n**Goal:** not the plan's goal\n")
    assert plan.goal == ""
    assert plan.task(1).body == "**Goal:** not the plan's goal"


def test_prose_between_a_wave_heading_and_its_first_task_is_ignored() -> None:
    plan = parse_plan("# P\n## Wave 1\nThese run in parallel.\n**Goal:** no\n### Task 1: x\n")
    assert plan.goal == ""
    assert plan.task(1).body == ""


FENCED = md(
    """
    # P
    ## Wave 1
    ### Task 1: Quote a plan
    Example:
    ```markdown
    ## Wave 9
    ### Task 1: duplicate number, but code
    ### Task two: malformed, but code
    ```
    ~~~
    ## Wave 9
    ```
    ### Task 1: still inside the tilde fence
    ~~~
    ````python
    ```
    ## Wave 9
    ````
    ### Task 2: Next
    """
)


def test_headings_inside_code_fences_are_body_text() -> None:
    plan = parse_plan(FENCED)
    assert [t.number for t in plan.tasks] == [1, 2]
    assert len(plan.waves) == 1
    body = plan.task(1).body
    assert body.startswith("Example:\n```markdown\n## Wave 9\n")
    assert body.endswith("````python\n```\n## Wave 9\n````")


def test_fence_is_closed_only_by_the_same_character_at_least_as_long() -> None:
    text = "# P\n## Wave 1\n### Task 1: x\n````\n```\n~~~~\n### Task 2: code\n````\n### Task 3: y\n"
    plan = parse_plan(text)
    assert [t.number for t in plan.tasks] == [1, 3]
    assert "### Task 2: code" in plan.task(1).body


def test_fence_in_header_prose_hides_headings() -> None:
    plan = parse_plan("# P\n```\n## Wave 1\n```\n## Wave 1\n### Task 1: x\n")
    assert plan.wave(1).line == 5


def test_indented_fence_inside_a_list_item_hides_headings() -> None:
    text = "# P\n## Wave 1\n### Task 1: x\n1. step\n    ```\n## Wave 7\n    ```\n"
    assert parse_plan(text).task(1).body == "1. step\n    ```\n## Wave 7\n    ```"


def test_backticks_with_backticks_after_them_are_inline_code_not_a_fence() -> None:
    plan = parse_plan("# P\n## Wave 1\n### Task 1: x\n```a``` inline\n### Task 2: y\n")
    assert [t.number for t in plan.tasks] == [1, 2]


@pytest.mark.parametrize(
    "line",
    [
        "#### Sub heading",
        "#### Task 9: a sub-heading, not a task",
        "### Wave propagation notes",
        "### Tasks remaining",
        "## Notes",
        "## Waves overview",
        "# Task runner",
        "    ### Task 9: indented code block",
        "\t## Wave 9",
    ],
)
def test_sub_headings_and_prose_headings_stay_in_the_task_body(line: str) -> None:
    plan = parse_plan(f"# P\n## Wave 1\n### Task 1: x\n{line}\nmore\n")
    assert plan.task(1).body == f"{line}\nmore"


def test_body_keeps_inner_text_verbatim_and_drops_blank_edge_lines() -> None:
    body = "  indented first  \n\n\tinner tab\n   \nlast  "
    plan = parse_plan(f"# P\n## Wave 1\n### Task 1: x\n\n   \n{body}\n\n  \n")
    assert plan.task(1).body == body


def test_trailing_text_after_the_last_task_is_its_body() -> None:
    plan = parse_plan("# P\n## Wave 1\n### Task 1: x\n### Task 2: y\nclosing remarks\n\n\n")
    assert plan.task(2).body == "closing remarks"


def test_crlf_bom_and_trailing_whitespace_read_like_plain_lf() -> None:
    messy = "\ufeff" + "\r\n".join(
        line + "  \t" if line.startswith("#") else line for line in TWO_WAVES.split("\n")
    )
    assert parse_plan(messy) == parse_plan(TWO_WAVES)


def test_lone_carriage_returns_end_lines() -> None:
    assert parse_plan(TWO_WAVES.replace("\n", "\r")) == parse_plan(TWO_WAVES)


def test_blank_lines_before_the_title_are_allowed() -> None:
    plan = parse_plan("\n\n# P\n## Wave 1\n### Task 1: x\n")
    assert (plan.title, plan.wave(1).line) == ("P", 4)


@pytest.mark.parametrize(
    ("heading", "title"),
    [
        ("## Wave 1", ""),
        ("## Wave 1 Foundations", "Foundations"),
        ("## Wave 1: Foundations", "Foundations"),
        ("## Wave 1 - Foundations", "Foundations"),
        ("## Wave 1 — Foundations (parallel)", "Foundations (parallel)"),
        ("## Wave 1:", ""),
        ("## wave 1", ""),
        ("   ## Wave 1  ", ""),
    ],
)
def test_wave_heading_title_is_whatever_follows_the_number(heading: str, title: str) -> None:
    assert parse_plan(f"# P\n{heading}\n### Task 1: x").wave(1).title == title


@pytest.mark.parametrize(
    ("heading", "number", "title"),
    [
        ("### Task 1: Title", 1, "Title"),
        ("### Task 7 : Spaced colon", 7, "Spaced colon"),
        ("### task 3:   Lower case  ", 3, "Lower case"),
        ("  ### Task 02: Leading zero", 2, "Leading zero"),
        ("### Task 4: Title: with colon", 4, "Title: with colon"),
    ],
)
def test_task_heading_variants_that_cannot_be_misread_are_accepted(
    heading: str, number: int, title: str
) -> None:
    task = parse_plan(f"# P\n## Wave 1\n{heading}\n").tasks[0]
    assert (task.number, task.title) == (number, title)


@pytest.mark.parametrize("line", ["### Taſk 1: long s", "### Tas\u212a 1: Kelvin sign"])
def test_unicode_letters_that_fold_to_ascii_do_not_spell_wave_or_task(line: str) -> None:
    assert parse_plan(f"# P\n## Wave 1\n### Task 1: x\n{line}\n").task(1).body == line


def test_task_numbers_need_not_be_consecutive_or_ascending() -> None:
    plan = parse_plan("# P\n## Wave 1\n### Task 10: a\n### Task 3: b\n## Wave 2\n### Task 999999: c\n")
    assert [t.number for t in plan.tasks] == [10, 3, 999999]


def test_lookups_find_tasks_and_waves_by_number() -> None:
    plan = parse_plan(TWO_WAVES)
    assert plan.task(5).title == "Metrics"
    assert plan.task(5).wave_number == 2
    assert plan.wave(2).tasks[0].title == "Middleware"


def test_lookups_of_missing_numbers_raise_not_found_listing_what_exists() -> None:
    plan = parse_plan(TWO_WAVES)
    with pytest.raises(NotFoundError, match=r"no task 7 \(its tasks: 1, 2, 3, 4, 5, 6\)"):
        plan.task(7)
    with pytest.raises(NotFoundError, match=r"no wave 3 \(it has 2\)"):
        plan.wave(3)


def test_public_names_are_pinned() -> None:
    assert plan_module.__all__ == ["MAX_NUMBER", "Plan", "PlanTask", "Wave", "parse_plan", "render_plan"]


def test_plan_values_are_frozen() -> None:
    plan = parse_plan(TWO_WAVES)
    with pytest.raises(AttributeError):
        plan.title = "other"  # type: ignore[misc]


# --- malformed plans ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        pytest.param("", 0, "the plan is empty", id="empty"),
        pytest.param(" \n\t\n", 0, "the plan is empty", id="blank"),
        pytest.param(
            "## Wave 1\n### Task 1: x\n", 1, 'no title: start it with a "# <title>" line', id="no-title"
        ),
        pytest.param(
            "intro\n# P\n", 1, 'no title: start it with a "# <title>" line (found "intro")', id="prose"
        ),
        pytest.param("#\n## Wave 1\n", 1, "the plan title is empty", id="empty-title"),
        pytest.param("#   \n## Wave 1\n", 1, "the plan title is empty", id="blank-title"),
        pytest.param("#Plan\n", 1, 'put a space after the "#" of the title: "# Plan"', id="title-space"),
        pytest.param("# P\nprose\n", 0, 'the plan has no waves: add "## Wave N" sections', id="no-waves"),
        pytest.param(
            "# P\n\n### Task 1: x\n## Wave 1\n",
            3,
            'task 1 comes before the first wave: put a "## Wave 1"',
            id="task-first",
        ),
        pytest.param(
            "# P\n## Wave 1\n### Task 1: a\n## Wave 2\n### Task 1: b\n",
            5,
            "task 1 is defined twice, at lines 3 and 5",
            id="duplicate-task",
        ),
        pytest.param(
            "# P\n## Wave 1\n### Task 1:\n",
            3,
            'task 1 has no title: write "### Task 1: <title>"',
            id="no-title",
        ),
        pytest.param("# P\n## Wave 1\n### Task 1:   \n", 3, "task 1 has no title", id="blank-task-title"),
        pytest.param(
            "# P\n## Wave 1\n\n## Wave 2\n### Task 1: x\n", 2, "wave 1 has no tasks", id="empty-wave"
        ),
        pytest.param(
            "# P\n## Wave 1\n### Task 1: x\n## Wave 2\nprose\n", 4, "wave 2 has no tasks", id="empty-last"
        ),
        pytest.param(
            "# P\n## Wave 2\n### Task 1: x\n", 2, 'expected "## Wave 1" here, found wave 2', id="first-not-1"
        ),
        pytest.param(
            "# P\n## Wave 1\n### Task 1: x\n## Wave 3\n### Task 2: y\n",
            4,
            'expected "## Wave 2" here, found wave 3',
            id="skipped-wave",
        ),
        pytest.param(
            "# P\n## Wave 1\n### Task 1: x\n## Wave 1\n### Task 2: y\n",
            4,
            "wave 1 appears twice, at lines 2 and 4: waves are numbered 1, 2, 3, … in order, "
            'so this one should be "## Wave 2"',
            id="duplicate-wave",
        ),
        pytest.param(
            "# P\n## Wave\n", 2, 'needs a wave number (1, 2, 3, …) after "Wave"', id="wave-no-number"
        ),
        pytest.param("# P\n## Wave two\n", 2, '"## Wave two" needs a wave number', id="wave-word-number"),
        pytest.param("# P\n## Wave-1\n", 2, "needs a wave number", id="wave-dash"),
        pytest.param("# P\n## Wave 1.5\n", 2, "needs a wave number", id="wave-fraction"),
        pytest.param("# P\n## Wave 0\n", 2, "wave numbers start at 1, not 0", id="wave-zero"),
        pytest.param("# P\n## Wave1\n", 2, 'write this wave heading as "## Wave 1"', id="wave-glued"),
        pytest.param(
            "# P\n##Wave 1: A\n", 2, 'write this wave heading as "## Wave 1: A"', id="wave-no-space"
        ),
        pytest.param(
            "# P\n## Wave 1\n### Task two: x\n", 3, '"### Task two: x" needs a task number', id="task-word"
        ),
        pytest.param("# P\n## Wave 1\n### Task: x\n", 3, "needs a task number", id="task-no-number"),
        pytest.param("# P\n## Wave 1\n### Task #1: x\n", 3, "needs a task number", id="task-hash-number"),
        pytest.param("# P\n## Wave 1\n### Task ٣: x\n", 3, "needs a task number", id="task-non-ascii-digit"),
        pytest.param(
            "# P\n## Wave 1\n### Task 2 Parse input\n",
            3,
            'put a colon after the task number: "### Task 2: Parse input"',
            id="task-no-colon",
        ),
        pytest.param(
            "# P\n## Wave 1\n### Task 2 - x\n", 3, "put a colon after the task number", id="task-dash"
        ),
        pytest.param("# P\n## Wave 1\n### Task 0: x\n", 3, "task numbers start at 1, not 0", id="task-zero"),
        pytest.param(
            "# P\n## Wave 1\n### Task 1000000: x\n",
            3,
            f"too large: the largest is {MAX_NUMBER}",
            id="task-huge",
        ),
        pytest.param(
            "# P\n## Wave 1\n### Task " + "9" * 5000 + ": x\n", 3, "too large", id="task-5000-digits"
        ),
        pytest.param(
            "# P\n## Wave 1\n### Task1: x\n", 3, 'as "### Task 1: x", with spaces around', id="task-glued"
        ),
        pytest.param("# P\n## Wave 1\n###Task 1: x\n", 3, 'as "### Task 1: x"', id="task-no-space"),
        pytest.param(
            "# P\n## Wave 1\n## Task 1: x\n",
            3,
            'a task heading starts with "###": write "### Task 1: x"',
            id="task-h2",
        ),
        pytest.param(
            "# P\n## Wave 1\n### Task 1: x\n### Wave 2\n",
            4,
            'starts with "##": write "## Wave 2"',
            id="wave-h3",
        ),
        pytest.param("# P\n# Wave 1\n### Task 1: x\n", 2, 'a wave heading starts with "##"', id="wave-h1"),
        pytest.param(
            "# P\n## Wave 1\n### Task 1: x\n```py\n## Wave 2\n### Task 2: y\n",
            4,
            "this code fence is never closed, so everything below it reads as code: "
            'close it with a "```" line',
            id="unclosed-fence",
        ),
        pytest.param(
            "# P\n## Wave 1\n### Task 1: x\n~~~~\n~~~\n", 4, 'close it with a "~~~~" line', id="short-close"
        ),
        pytest.param(
            "# P\n**Goal:** a\n**goal**: b\n## Wave 1\n",
            3,
            '"**Goal:**" is given twice, at lines 2 and 3',
            id="goal-twice",
        ),
    ],
)
def test_malformed_plan_names_the_line_and_the_fix(text: str, line: int, fragment: str) -> None:
    err = parse_error(text)
    assert err.line == line
    assert fragment in err.reason
    assert str(err) == (f"p.md:{line}: {err.reason}" if line else f"p.md: {err.reason}")


def test_errors_report_the_first_problem_in_the_document() -> None:
    err = parse_error("# P\n## Wave 1\n## Wave 2\n### Task two: x\n")
    assert (err.line, err.reason) == (
        2,
        'wave 1 has no tasks: add "### Task N: Title" headings under it, or remove it',
    )


def test_a_malformed_task_heading_is_reported_rather_than_its_wave_being_empty() -> None:
    err = parse_error("# P\n## Wave 1\nprose\n### Task one: x\n## Wave 2\n")
    assert err.line == 4
    assert "needs a task number" in err.reason


def test_error_lines_count_crlf_and_lone_cr_as_one_line_break() -> None:
    assert parse_error("# P\r\n## Wave 1\r\n\r\n### Task x: y\r\n").line == 4
    assert parse_error("# P\r## Wave 1\r\r### Task x: y\r").line == 4


def test_error_source_defaults_to_plan() -> None:
    with pytest.raises(PlanError, match=r"^plan:1: the plan title is empty"):
        parse_plan("#\n")


# --- render_plan --------------------------------------------------------------------------------------------


def test_render_writes_the_canonical_layout() -> None:
    plan = Plan(
        "Rate limiting",
        goal="stop abuse",
        tech_stack="Python",
        waves=(
            Wave(
                1,
                "Foundations",
                (PlanTask(1, "Bucket", "Write it.\n\n```\n## Wave 9\n```"), PlanTask(3, "Clock")),
            ),
            Wave(2, "", (PlanTask(2, "Docs", "Explain."),)),
        ),
    )
    assert render_plan(plan) == md(
        """
        # Rate limiting

        **Goal:** stop abuse
        **Tech Stack:** Python

        ## Wave 1: Foundations

        ### Task 1: Bucket

        Write it.

        ```
        ## Wave 9
        ```

        ### Task 3: Clock

        ## Wave 2

        ### Task 2: Docs

        Explain.
        """
    )


def test_render_of_a_parsed_plan_reads_back_with_the_same_content() -> None:
    parsed = parse_plan(FENCED)
    again = parse_plan(render_plan(parsed))
    assert without_positions(again) == without_positions(parsed)
    assert parse_plan(render_plan(again)) == again


def test_render_ignores_line_numbers_and_task_wave_numbers() -> None:
    plan = Plan("P", waves=(Wave(1, tasks=(PlanTask(1, "x", line=40, wave_number=7),), line=12),))
    assert render_plan(plan) == "# P\n\n## Wave 1\n\n### Task 1: x\n"


@pytest.mark.parametrize(
    ("plan", "fragment"),
    [
        pytest.param(
            Plan("two\nlines", waves=(Wave(1, tasks=(PlanTask(1, "x"),)),)), "the title", id="title-newline"
        ),
        pytest.param(
            Plan(" padded", waves=(Wave(1, tasks=(PlanTask(1, "x"),)),)),
            "the title ' padded'",
            id="title-pad",
        ),
        pytest.param(
            Plan("P", goal="a\nb", waves=(Wave(1, tasks=(PlanTask(1, "x"),)),)), "the Goal", id="goal-newline"
        ),
        pytest.param(
            Plan("P", waves=(Wave(1, "a\nb", (PlanTask(1, "x"),)),)), "wave 1's title", id="wave-title"
        ),
        pytest.param(
            Plan("P", waves=(Wave(1, tasks=(PlanTask(1, "x "),)),)), "task 1's title", id="task-title-pad"
        ),
        pytest.param(
            Plan("P", waves=(Wave(1, tasks=(PlanTask(1, "x", "\nbody"),)),)), "task 1's body", id="blank-edge"
        ),
        pytest.param(
            Plan("P", waves=(Wave(1, tasks=(PlanTask(1, "x", "a\n### Task 2: b"),)),)),
            "waves and tasks",
            id="heading",
        ),
        pytest.param(
            Plan("P", waves=(Wave(1, tasks=(PlanTask(1, "x", "```"),)),)), "never closed", id="fence"
        ),
        pytest.param(Plan("P", waves=(Wave(1),)), "wave 1 has no tasks", id="empty-wave"),
        pytest.param(
            Plan("P", waves=(Wave(2, tasks=(PlanTask(1, "x"),)),)), 'expected "## Wave 1"', id="wave-order"
        ),
        pytest.param(Plan("P"), "the plan has no waves", id="no-waves"),
        pytest.param(
            Plan("P", waves=(Wave(1, tasks=(PlanTask(1, "x"), PlanTask(1, "y"))),)),
            "defined twice",
            id="dup-task",
        ),
        pytest.param(Plan("P", waves=(Wave(1, tasks=(PlanTask(0, "x"),)),)), "start at 1", id="task-zero"),
        pytest.param(
            Plan("", waves=(Wave(1, tasks=(PlanTask(1, "x"),)),)), "title is empty", id="empty-title"
        ),
    ],
)
def test_render_refuses_a_plan_that_would_read_back_differently(plan: Plan, fragment: str) -> None:
    with pytest.raises(PlanError, match=r"^render_plan: cannot write this plan: ") as info:
        render_plan(plan)
    assert info.value.line == 0
    assert fragment in info.value.reason


# --- properties ---------------------------------------------------------------------------------------------

# Lines of the text a plan is made of, and its near misses: fed to the parser raw, or joined into bodies.
PLANISH_LINES = [
    "# Title",
    "#",
    "## Wave 1",
    "## Wave 2: Second",
    "## Wave 3",
    "## Wave",
    "## Wave two",
    "### Wave 2",
    "### Task 1: One",
    "### Task 2: Two",
    "### Task 2:",
    "### Task two: x",
    "### Task 3 no colon",
    "## Task 4: wrong level",
    "#### Task 5: sub",
    "**Goal:** g",
    "**Goal**: g2",
    "**Tech Stack:** t",
    "```",
    "```python",
    "~~~",
    "````",
    "",
    "   ",
    "prose",
    "\ufeff# BOM title",
]

# Printable ASCII plus the characters a parser could trip on: markup, dashes, and whitespace that is not "\n".
CHARACTERS = st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from(
    "\t\x0b\x0c\x85\xa0\u2028é—–٣ſ\u212a"
)
ONE_LINE = st.text(CHARACTERS, max_size=16)
TITLES = ONE_LINE.map(str.strip).filter(bool)
FIELDS = ONE_LINE.map(str.strip)
# Lines that can never be a heading or a fence, however Hypothesis fills them in.
PROSE = ONE_LINE.map(lambda text: "p" + text) | st.sampled_from(
    [
        "#### Task 1: sub-heading",
        "### Wave propagation",
        "## Notes",
        "# Task runner",
        "**Goal:** only prose here",
        "    ### Task 9: indented code",
        "- item",
        "",
        "  ",
    ]
)
# What may sit inside a fence without closing any of ``` ~~~ ````.
CODE = st.sampled_from(
    ["## Wave 9", "### Task 1: code", "### Task two:", "```python", "# x", "", "\t"]
) | ONE_LINE.map(lambda text: "c" + text)


@st.composite
def fenced_blocks(draw: st.DrawFn) -> list[str]:
    fence = draw(st.sampled_from(["```", "~~~", "````"]))
    info = draw(st.sampled_from(["", "python", " md"]))
    return [fence + info, *draw(st.lists(CODE, max_size=3)), fence]


@st.composite
def bodies(draw: st.DrawFn) -> str:
    blocks = draw(st.lists(st.lists(PROSE, min_size=1, max_size=2) | fenced_blocks(), max_size=3))
    return plan_module._trim_blank_lines([line for block in blocks for line in block])


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    numbers = iter(
        draw(
            st.lists(
                st.integers(1, 20) | st.integers(1, MAX_NUMBER),
                min_size=sum(sizes),
                max_size=sum(sizes),
                unique=True,
            )
        )
    )
    waves = tuple(
        Wave(
            index,
            draw(FIELDS),
            tuple(PlanTask(next(numbers), draw(TITLES), draw(bodies())) for _ in range(size)),
        )
        for index, size in enumerate(sizes, 1)
    )
    return Plan(draw(TITLES), draw(FIELDS), draw(FIELDS), draw(FIELDS), waves)


def check_reads_back(plan: Plan) -> None:
    """What every parsed plan must satisfy: it renders, and reads back with the same content."""
    again = parse_plan(render_plan(plan))
    assert without_positions(again) == without_positions(plan)
    assert parse_plan(render_plan(again)) == again


PLANISH_TEXT = st.lists(st.sampled_from(PLANISH_LINES) | ONE_LINE, max_size=20).map("\n".join)


@settings(max_examples=400, deadline=None)
@given(st.text() | PLANISH_TEXT | PLANISH_TEXT.map(lambda text: "# Title\n## Wave 1\n" + text))
def test_arbitrary_text_parses_or_raises_plan_error(text: str) -> None:
    try:
        plan = parse_plan(text)
    except PlanError as err:
        assert err.line >= 0
        assert err.reason
        return
    check_reads_back(plan)


@settings(max_examples=250, deadline=None)
@given(plans())
def test_generated_plans_round_trip_through_render_and_parse(plan: Plan) -> None:
    text = render_plan(plan)
    parsed = parse_plan(text)
    assert without_positions(parsed) == without_positions(plan)
    assert render_plan(parsed) == text
    assert parse_plan(render_plan(parsed)) == parsed
    lines = text.split("\n")
    for wave in parsed.waves:
        assert lines[wave.line - 1].startswith(f"## Wave {wave.number}")
        for task in wave.tasks:
            assert lines[task.line - 1] == f"### Task {task.number}: {task.title}"
            assert task.wave_number == wave.number


@settings(max_examples=100, deadline=None)
@given(plans())
def test_crlf_and_bom_do_not_change_a_generated_plan(plan: Plan) -> None:
    text = render_plan(plan)
    assert parse_plan("\ufeff" + text.replace("\n", "\r\n")) == parse_plan(text)


MUTATIONS = st.lists(
    st.tuples(st.sampled_from(["drop", "duplicate", "swap"]), st.integers(0, 999), st.integers(0, 999)),
    min_size=1,
    max_size=4,
)


def mutate(lines: list[str], operations: list[tuple[str, int, int]]) -> list[str]:
    lines = list(lines)
    for operation, i, j in operations:
        if not lines:
            break
        i, j = i % len(lines), j % len(lines)
        if operation == "drop":
            del lines[i]
        elif operation == "duplicate":
            lines.insert(i, lines[i])
        else:
            lines[i], lines[j] = lines[j], lines[i]
    return lines


@settings(max_examples=250, deadline=None)
@given(plans(), MUTATIONS)
def test_mutated_plans_parse_or_raise_plan_error(plan: Plan, operations: list[tuple[str, int, int]]) -> None:
    text = "\n".join(mutate(render_plan(plan).split("\n"), operations))
    try:
        mutated = parse_plan(text)
    except PlanError as err:
        assert 0 <= err.line <= text.count("\n") + 1
        return
    check_reads_back(mutated)
