"""Reading a prompt as directives, a scenario file as steps, a plain prompt's `corral signal emit` line."""

from __future__ import annotations

from pathlib import Path

import pytest

from frontends.sim.directives import SignalCall, Step, find_signal_instruction, parse_prompt
from frontends.sim.scenario import Scenario, ScenarioError, load_scenario
from frontends.sim.sdk_turns import chunks


def test_a_plain_prompt_is_one_work_step() -> None:
    assert parse_prompt("  Fix the login form\nplease  ") == (Step("work", "Fix the login form\nplease"),)


def test_an_empty_prompt_is_no_step() -> None:
    assert parse_prompt(" \n ") == ()


def test_directives_run_in_order_and_other_lines_are_commentary() -> None:
    prompt = "Some context.\n/edit notes.txt hello world\n  /commit add notes  \nmore prose\n/exit"
    assert parse_prompt(prompt) == (
        Step("edit", "notes.txt hello world", 2),
        Step("commit", "add notes", 3),
        Step("exit", "", 5),
    )


def test_an_unknown_directive_is_reported_not_worked_on() -> None:
    assert parse_prompt("/frobnicate now") == (Step("unknown", "frobnicate", 1),)


def test_a_path_is_not_a_directive() -> None:
    assert parse_prompt("/usr/bin/env is where it lives") == (Step("work", "/usr/bin/env is where it lives"),)


@pytest.mark.parametrize(
    ("text", "call"),
    [
        (
            "When done run `corral signal emit planner_finished fix-login`.",
            SignalCall("planner_finished", "fix-login"),
        ),
        ("then: corral signal emit planner-finished $CORRAL_TASK", SignalCall("planner-finished", "")),
        ("run corral signal emit review_approved <task> when happy", SignalCall("review_approved", "")),
        (
            "`corral signal emit implement_task_finished t1 --payload "
            + """'{"wave_number": 1, "task_number": 2}'`""",
            SignalCall("implement_task_finished", "t1", '{"wave_number": 1, "task_number": 2}'),
        ),
        (
            "corral signal emit review-changes x --payload \"tests fail on 'x'\"",
            SignalCall("review-changes", "x", "tests fail on 'x'"),
        ),
        ("nothing to signal here", None),
        ("corral signal emit", None),
    ],
)
def test_the_signal_instruction_of_a_plain_prompt(text: str, call: SignalCall | None) -> None:
    assert find_signal_instruction(text) == call


def test_a_scenario_in_json_may_be_a_plain_list_of_steps(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('["/sleep 0.1", "/signal plan_start"]')
    assert load_scenario(path) == Scenario(steps="/sleep 0.1\n/signal plan_start")


def test_a_scenario_in_toml_has_steps_and_scripted_turns(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('steps = "/echo hi"\nturns = [["/edit a x", "/commit a"], "/crash 3"]\n')
    scenario = load_scenario(path)
    assert scenario.steps == "/echo hi"
    assert (scenario.turn(0), scenario.turn(1), scenario.turn(2)) == (
        "/edit a x\n/commit a",
        "/crash 3",
        None,
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.toml", "steps = [1, 2]", "steps must be a string or a list of strings"),
        ("bad.toml", "other = 1", 'expected a table with "steps" and/or "turns"'),
        ("bad.json", "{not json", "does not parse"),
        ("missing.toml", None, "cannot read scenario"),
    ],
)
def test_a_bad_scenario_names_the_file_and_the_problem(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ScenarioError, match=message) as raised:
        load_scenario(path)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize(
    "text", ["", "one", "a few words to stream in pieces", "trailing space ", "  a\n b\tc  "]
)
def test_streamed_chunks_join_back_to_the_text(text: str) -> None:
    assert "".join(chunks(text)) == text
