"""corral-model's scenario files and faults: what a good file means, and that every mistake is named
with its file, its script and turn (or its line), never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frontends.model.conversation import Conversation
from frontends.model.faults import Fault, FaultError, FaultSwitch, parse_fault
from frontends.model.scenario import Scenario, ScenarioError, ToolCall, Turn, load_scenario
from frontends.model.script import choose
from protocols.prompts import planner_prompt, reviewer_prompt

GOOD = """\
otherwise = "lifecycle"

[[script]]
role = "coder"
fault = "slow,delay=0.2"

[[script.turns]]
say = "I'll write hello.txt."
write = { path = "hello.txt", content = "hello\\n" }

[[script.turns]]
run = "git commit -am hello"
description = "Commit"
fault = "rate-limit,retry-after=3,times=2"

[[script]]
prompt = "read (it|this)"
turns = [{ read = "notes.txt" }, { say = "Read it." }]
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_scenario_file_is_read_into_scripts_of_turns(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, GOOD))
    assert scenario.otherwise == "lifecycle"
    coder, reader = scenario.scripts
    assert coder.role == "coder" and coder.turns == (
        Turn(
            "I'll write hello.txt.",
            ToolCall("write", path="hello.txt", content="hello\n"),
            Fault("slow", delay=0.2),
        ),
        Turn(
            "",
            ToolCall("run", command="git commit -am hello", description="Commit"),
            Fault("rate-limit", 2, 3.0),
        ),
    )
    assert reader.turns == (Turn("", ToolCall("read", path="notes.txt")), Turn("Read it."))
    assert scenario.script_for("coder", "anything") == (0, coder)
    assert scenario.script_for("planner", "please read this") == (1, reader)
    assert scenario.script_for("planner", "something else") is None


def test_a_json_scenario_has_the_same_shape(tmp_path: Path) -> None:
    data = {"script": [{"turns": [{"say": "hi"}]}]}
    scenario = load_scenario(write(tmp_path, json.dumps(data), "s.json"))
    assert scenario.scripts[0].turns == (Turn("hi"),) and scenario.otherwise == "reply"
    assert scenario.script_for("", "any prompt") is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[script]\n", "s.toml: not valid TOML: "),
        ('[[script]]\nrole = "coder"\nturns = []\n', "script 1 (coder): turns must be a non-empty list"),
        ('[[script]]\nrole = "boss"\nturns = [{say = "x"}]\n', "script 1: role 'boss' is not a corral role"),
        (
            '[[script]]\nprompt = "("\nturns = [{say = "x"}]\n',
            "script 1: prompt '(' is not a regular expression",
        ),
        (
            '[[script]]\nturns = [{say = "x"}, {run = "a", read = "b"}]\n',
            "script 1, turn 2: one tool call per turn, not run and read",
        ),
        ('[[script]]\nturns = [{say = "x"}, {}]\n', "script 1, turn 2: a turn needs say, write, run or read"),
        ('[[script]]\nturns = [{write = {path = "a"}}]\n', "script 1, turn 1: write must be a table"),
        ('[[script]]\nturns = [{say = "x", fault = "boom"}]\n', "script 1, turn 1: unknown fault 'boom'"),
        (
            '[[script]]\nturns = [{say = "x", colour = "red"}]\n',
            "script 1, turn 1: unknown key 'colour' in a turn",
        ),
        ('otherwise = "sing"\n', 'otherwise = \'sing\': expected "reply" or "lifecycle"'),
        ("scripts = []\n", "unknown key 'scripts' in the top level"),
    ],
)
def test_a_bad_scenario_says_which_file_script_and_turn_and_what_is_wrong(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(caught.value).startswith(str(path)) and expected in str(caught.value)


def test_a_toml_syntax_error_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[[script]]\nturns = [{say = "x"}]\n\nrole = = "coder"\n')
    with pytest.raises(ScenarioError, match=r"line 4"):
        load_scenario(path)


def test_a_json_syntax_error_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, '{"script": [\n  {"turns": [}\n]}', "s.json")
    with pytest.raises(ScenarioError, match=rf"^{path}:2: not valid JSON"):
        load_scenario(path)


def test_a_missing_scenario_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"cannot read scenario .*nope\.toml: No such file"):
        load_scenario(tmp_path / "nope.toml")


def test_the_lifecycle_scenario_plays_every_prompt() -> None:
    assert Scenario.lifecycle() == Scenario(otherwise="lifecycle", source="lifecycle")


@pytest.mark.parametrize(
    ("spec", "fault"),
    [
        ("rate-limit", Fault("rate-limit", retry_after=1.0)),
        ("rate-limit,retry-after=2.5,times=3", Fault("rate-limit", times=3, retry_after=2.5)),
        ("overloaded", Fault("overloaded")),
        ("slow, delay=0.1", Fault("slow", delay=0.1)),
        ("slow,delay=0", Fault("slow", delay=0.0)),
        ("stall,seconds=4", Fault("stall", seconds=4.0)),
        ("cut,times=1", Fault("cut", times=1)),
        ("none", None),
        ("", None),
    ],
)
def test_fault_specs_parse(spec: str, fault: Fault | None) -> None:
    assert parse_fault(spec) == fault
    if fault is not None:
        assert parse_fault(fault.spec) == fault


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("boom", "unknown fault 'boom': expected one of rate-limit, overloaded"),
        ("cut,delay=1", "'delay=1' is not a parameter of cut (it takes times=)"),
        ("slow,delay=fast", "delay must be a number, not 'fast'"),
        ("rate-limit,times=0", "times must be a whole number ≥ 1"),
        ("stall,seconds=-1", "seconds must be a number ≥ 0"),
        ("none,times=1", "'none' takes no parameters"),
    ],
)
def test_bad_fault_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(FaultError) as caught:
        parse_fault(spec)
    assert message in str(caught.value)


def test_a_fault_with_times_fires_that_often_per_turn_then_clears() -> None:
    switch = FaultSwitch()
    once = Fault("cut", times=1)
    assert switch.fire(("script 0", 1), once) == once
    assert switch.fire(("script 0", 1), once) is None
    assert switch.fire(("script 0", 2), once) == once  # another turn counts apart
    lasting = Fault("overloaded")
    assert all(switch.fire(("script 1", 0), lasting) == lasting for _ in range(5))


def test_the_global_fault_comes_first_and_setting_it_again_starts_its_count_afresh() -> None:
    twice = Fault("rate-limit", times=2, retry_after=1.0)
    turn_fault = Fault("slow", delay=0.1)
    switch = FaultSwitch(twice)
    assert [switch.fire(("s", 0), turn_fault) for _ in range(3)] == [twice, twice, turn_fault]
    switch.set_global(twice)
    assert switch.fire(("s", 0), None) == twice
    switch.set_global(None)
    assert switch.fire(("s", 0), None) is None and switch.global_fault is None


def test_a_script_with_a_fault_and_no_turns_plays_the_lifecycle_with_that_fault(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, '[[script]]\nrole = "reviewer"\nfault = "overloaded,times=1"\n'))
    prompt = reviewer_prompt("fix-login", "corral/fix-login", 1)
    first = choose(scenario, Conversation(api="anthropic", prompt=prompt, turn=0, tools=("Bash",)))
    assert first.turn.tool is not None and "review_approved" in first.turn.tool.command
    assert first.turn.fault == Fault("overloaded", times=1) and first.key == ("script 0", 0)
    assert first.source == "script 1 (reviewer): lifecycle (reviewer)"
    planner = planner_prompt("fix-login", "Fix it", "brief")
    other = choose(scenario, Conversation(api="anthropic", prompt=planner, turn=0, tools=("Bash",)))
    assert "no script" in other.source  # otherwise = "reply": only the reviewer is scripted


def test_a_script_without_turns_or_fault_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"needs turns .*or a fault to inject into the lifecycle's turns"):
        load_scenario(write(tmp_path, '[[script]]\nrole = "coder"\n'))
