"""corral-model's lifecycle scenario, from corral's real prompts: which role a prompt is for, and the
tool calls that play it (pure: no server, no agent)."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from frontends.model.lifecycle import COMMIT_ATTEMPTS, lifecycle_turns
from frontends.model.roles import is_nudge, role_of
from frontends.model.scenario import ToolCall, Turn
from frontends.sim.behaviour.roles import plan_text
from protocols.plan import parse_plan
from protocols.prompts import (
    coder_prompt,
    finish_commands,
    fixer_prompt,
    nudge_prompt,
    plan_path,
    planner_prompt,
    readiness_prompt,
    restart_prompt,
    reviewer_prompt,
    wave_task_prompt,
)
from tests.conftest import GIT_ENV, git

TASK = "fix-login"
PLAN = parse_plan(plan_text("Fix the login form", TASK, 2, 2))


def last_line(prompt: str, signal_type: str) -> str:
    """The command the prompt ends with, as written in it."""
    lines = [line.strip() for line in prompt.splitlines() if f"corral signal emit {signal_type}" in line]
    return lines[-1]


def tools(turns: tuple[Turn, ...]) -> list[ToolCall]:
    return [turn.tool for turn in turns if turn.tool is not None]


@pytest.mark.parametrize(
    ("prompt", "role"),
    [
        (planner_prompt(TASK, "Fix it", "the brief"), "planner"),
        (coder_prompt(TASK, PLAN), "coder"),
        (wave_task_prompt(TASK, PLAN, 1, 2, peers=2), "coder"),
        (fixer_prompt(TASK, "add a test", 1, "review"), "fixer"),
        (reviewer_prompt(TASK, f"corral/{TASK}", 1), "reviewer"),
        (readiness_prompt(TASK, f"corral/{TASK}", 1), "readiness"),
        (restart_prompt("its process died", reviewer_prompt(TASK, "b", 2)), "reviewer"),
        ("hello there", ""),
        ("please run `corral signal emit something_else x`", ""),
    ],
)
def test_the_role_of_each_corral_prompt_is_read_from_the_prompt_alone(prompt: str, role: str) -> None:
    assert role_of(prompt) == role


def test_a_nudge_is_recognised() -> None:
    assert is_nudge(nudge_prompt(finish_commands("coder", TASK)))
    assert not is_nudge(planner_prompt(TASK, "Fix it", "brief"))


def test_the_planner_writes_a_valid_plan_and_runs_the_exact_command_its_prompt_ends_with() -> None:
    prompt = planner_prompt(TASK, "Fix the login form", "Make it work.\n\nsim-plan: waves=3 tasks=2")
    turns = lifecycle_turns(prompt)
    write, signal = tools(turns)
    assert write.kind == "write" and write.path == plan_path(TASK)
    plan = parse_plan(write.content)
    assert [len(wave.tasks) for wave in plan.waves] == [2, 2, 2]
    assert signal == ToolCall(
        "run", command=last_line(prompt, "planner_finished"), description=signal.description
    )
    assert turns[0].say and turns[-1].tool is None and turns[-1].say.startswith("Done:")


def test_a_wave_coder_appends_to_its_own_file_commits_it_and_signals_exactly() -> None:
    prompt = wave_task_prompt(TASK, PLAN, 2, 3, peers=2)
    append, commit, signal = tools(lifecycle_turns(prompt))
    path = f"sim/{TASK}/task-3.txt"
    assert append.kind == "run" and shlex.split(append.command)[-1] == path and ">>" in append.command
    assert f"git add -- {path} && git commit -m 'Task 3: " in commit.command
    assert commit.command.count(f"-- {path}") == 2
    assert signal.command == last_line(prompt, "implement_task_finished")
    assert '{"wave_number": 2, "task_number": 3}' in shlex.split(signal.command)


def test_a_single_coder_and_a_fixer_do_the_default_work_and_signal() -> None:
    for prompt in (coder_prompt(TASK, PLAN), fixer_prompt(TASK, "add a test", 1, "review")):
        append, commit, signal = tools(lifecycle_turns(prompt))
        assert f"sim/{TASK}.txt" in append.command and "git commit" in commit.command
        assert signal.command == last_line(prompt, "implement_finished")


def test_the_reviewer_approves_with_its_placeholder_filled_in() -> None:
    prompt = reviewer_prompt(TASK, f"corral/{TASK}", 1, "the brief")
    (signal,) = tools(lifecycle_turns(prompt))
    words = shlex.split(signal.command)
    assert words[:5] == ["corral", "signal", "emit", "review_approved", TASK]
    assert words[5] == "--payload" and "corral-model" in words[6] and "<" not in words[6]


def test_the_reviewer_asks_for_changes_once_when_told() -> None:
    brief = "Fix it.\n\nsim-review: changes-once"
    (first,) = tools(lifecycle_turns(reviewer_prompt(TASK, "b", 1, brief)))
    (second,) = tools(lifecycle_turns(reviewer_prompt(TASK, "b", 2, brief)))
    assert shlex.split(first.command)[3] == "review_changes" and "<" not in first.command
    assert shlex.split(second.command)[3] == "review_approved"


def test_readiness_approves() -> None:
    prompt = readiness_prompt(TASK, "b", 1)
    (signal,) = tools(lifecycle_turns(prompt))
    assert signal.command == last_line(prompt, "verify_approved")


def test_a_nudge_runs_the_first_command_it_offers() -> None:
    (signal,) = tools(lifecycle_turns(nudge_prompt(finish_commands("reviewer", TASK))))
    words = shlex.split(signal.command)
    assert words[3:5] == ["review_approved", TASK] and "<" not in words[6]


def test_a_prompt_for_no_role_gets_a_reply_that_says_so() -> None:
    (turn,) = lifecycle_turns("what is the time?")
    assert turn.tool is None and "no corral role" in turn.say


def test_the_turns_depend_on_the_prompt_alone() -> None:
    prompt = wave_task_prompt(TASK, PLAN, 1, 1, peers=2)
    assert lifecycle_turns(prompt) == lifecycle_turns(prompt)


def run_bash(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_the_commit_command_commits_only_its_file_and_fails_when_git_stays_locked(git_repo: Path) -> None:
    append, commit, _ = tools(lifecycle_turns(wave_task_prompt(TASK, PLAN, 1, 1, peers=2)))
    (git_repo / "other.txt").write_text("a peer's work in progress\n")
    assert run_bash(append.command, git_repo).returncode == 0
    done = run_bash(commit.command, git_repo)
    assert done.returncode == 0, done.stderr
    assert git(git_repo, "show", "--name-only", "--format=%s", "HEAD").split("\n")[:3] == [
        "Task 1: Write task-1.txt",
        "",
        f"sim/{TASK}/task-1.txt",
    ]
    assert run_bash(append.command, git_repo).returncode == 0
    (git_repo / ".git" / "index.lock").write_text("")  # another agent's git, holding the lock throughout
    locked = run_bash(commit.command, git_repo)
    assert locked.returncode != 0 and locked.stderr.count("index.lock") == COMMIT_ATTEMPTS
