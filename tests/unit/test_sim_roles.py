"""The sim's lifecycle roles: what each role decides from corral's real prompts (pure), and the workspace
memory and lock retry the roles lean on, on real git repositories."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from frontends.sim.behaviour.roles import MAX_PLAN, Role, RoleTurn, plan_text, play
from frontends.sim.behaviour.workspace import Workspace
from frontends.sim.directives import Step, find_signal_instructions
from protocols.plan import parse_plan
from protocols.prompts import (
    coder_prompt,
    fixer_prompt,
    plan_path,
    planner_prompt,
    readiness_prompt,
    reviewer_prompt,
    wave_task_prompt,
)
from tests.conftest import GIT_ENV, git
from tests.unit.test_sim_agent import ScriptedSurface, agent

TASK = "fix-login"


def role(agent_type: str, **env: str) -> Role:
    found = Role.from_env({"CORRAL_AGENT_TYPE": agent_type, "CORRAL_TASK": TASK, **env})
    assert found is not None
    return found


def turn(agent_type: str, prompt: str, **env: str) -> RoleTurn:
    played = play(role(agent_type, **env), prompt)
    assert played is not None
    return played


def step(played: RoleTurn, name: str) -> str:
    (found,) = [s.arg for s in played.steps if s.name == name]
    return found


def emitted(played: RoleTurn) -> tuple[str, str, str]:
    """The emit step as (signal type, task, payload)."""
    signal_type, task, payload = [*step(played, "emit").split(" ", 2), ""][:3]
    return signal_type, task, payload


def planned(played: RoleTurn) -> tuple[str, str]:
    """The write step as (path, text)."""
    path, _, text = step(played, "write").partition(" ")
    return path, text


def wave_prompt(plan_md: str, task_number: int, wave_number: int = 1, peers: int = 3) -> str:
    return wave_task_prompt(TASK, parse_plan(plan_md), wave_number, task_number, peers)


# --- Role ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("agent_type", ["", "wizard"])
def test_no_role_without_a_known_agent_type(agent_type: str) -> None:
    assert Role.from_env({"CORRAL_AGENT_TYPE": agent_type, "CORRAL_TASK": TASK}) is None
    assert Role.from_env({}) is None


def test_the_agent_type_is_read_loosely() -> None:
    assert role(" Coder ").agent_type == "coder"


def test_the_role_reads_corrals_environment() -> None:
    env = {
        "CORRAL_AGENT_TYPE": "coder",
        "CORRAL_TASK": "t",
        "CORRAL_WAVE": "2",
        "CORRAL_INSTANCE_TITLE": "t-w2-t5",
        "CORRAL_SIM_PLAN": "waves=1",
        "CORRAL_SIM_REVIEW": "changes-once",
    }
    assert Role.from_env(env) == Role("coder", "t", "2", "t-w2-t5", "waves=1", "changes-once")
    assert Role.from_env(env, task="other").task == "other"  # --task wins, as for /signal


def test_a_prompt_that_is_not_the_roles_own_is_left_to_the_default_work() -> None:
    for agent_type in ("planner", "coder", "fixer", "reviewer", "readiness"):
        assert play(role(agent_type), "add a changelog entry") is None


# --- planner -------------------------------------------------------------------------------------------


def test_the_planner_writes_a_plan_of_two_waves_of_three_tasks_and_sends_it() -> None:
    played = turn("planner", planner_prompt(TASK, "Fix the login form", "The form rejects good passwords."))
    path, text = planned(played)
    assert path == plan_path(TASK)
    plan = parse_plan(text, path)
    assert plan.title == "Fix the login form"
    assert [[t.number for t in w.tasks] for w in plan.waves] == [[1, 2, 3], [4, 5, 6]]
    files = [t.body.split("sim-file: ")[1] for t in plan.tasks]
    assert files == [f"sim/{TASK}/task-{n}.txt" for n in range(1, 7)]
    assert all(f"`{file}`" in t.body for file, t in zip(files, plan.tasks, strict=True))
    assert emitted(played) == ("planner_finished", TASK, text)
    assert "commit" not in [s.name for s in played.steps]  # a planner never commits


def test_a_sim_plan_line_in_the_brief_sizes_the_plan_and_wins_over_the_environment() -> None:
    prompt = planner_prompt(TASK, "Fix it", "Fix it.\nsim-plan: waves=3 tasks=2")
    plan = parse_plan(planned(turn("planner", prompt, CORRAL_SIM_PLAN="waves=1 tasks=1"))[1])
    assert [len(w.tasks) for w in plan.waves] == [2, 2, 2]
    assert [t.number for t in plan.tasks] == [1, 2, 3, 4, 5, 6]


def test_corral_sim_plan_sizes_the_plan_when_the_brief_does_not() -> None:
    prompt = planner_prompt(TASK, "Fix it", "Fix it.")
    plan = parse_plan(planned(turn("planner", prompt, CORRAL_SIM_PLAN="waves=1 tasks=4"))[1])
    assert [len(w.tasks) for w in plan.waves] == [4]


def test_a_plan_size_is_kept_within_bounds() -> None:
    prompt = planner_prompt(TASK, "Fix it", "sim-plan: waves=0 tasks=999")
    plan = parse_plan(planned(turn("planner", prompt))[1])
    assert [len(w.tasks) for w in plan.waves] == [MAX_PLAN]


def test_sim_fault_lines_of_the_brief_are_carried_into_the_task_bodies_they_name() -> None:
    brief = "Fix it.\nsim-fault: fail-once tasks=2,5\n- sim-fault: fail task=6"
    plan = parse_plan(planned(turn("planner", planner_prompt(TASK, "Fix it", brief)))[1])
    faults = {t.number: t.body.split("sim-fault: ")[1] for t in plan.tasks if "sim-fault:" in t.body}
    assert faults == {2: "fail-once", 5: "fail-once", 6: "fail"}


def test_a_sim_fault_line_without_tasks_marks_every_task() -> None:
    brief = "sim-plan: waves=1 tasks=2\nsim-fault: fail-once"
    plan = parse_plan(planned(turn("planner", planner_prompt(TASK, "Fix it", brief)))[1])
    assert all("sim-fault: fail-once" in t.body for t in plan.tasks)


# --- coders and fixers ---------------------------------------------------------------------------------

PLAN = plan_text("Fix the login form", TASK, 2, 3)


def test_a_wave_coder_edits_its_own_file_commits_it_as_its_task_and_signals_the_prompts_payload() -> None:
    played = turn("coder", wave_prompt(PLAN, 5, wave_number=2), CORRAL_WAVE="2", CORRAL_INSTANCE_TITLE="w5")
    assert step(played, "edit").startswith(f"sim/{TASK}/task-5.txt Task 5: Write task-5.txt (wave 2, by w5)")
    assert step(played, "commit") == "Task 5: Write task-5.txt"
    signal_type, task, payload = emitted(played)
    assert (signal_type, task) == ("implement_task_finished", TASK)
    assert json.loads(payload) == {"wave_number": 2, "task_number": 5}
    assert (played.fault, played.key) == ("", "w5")


def test_a_wave_task_without_a_sim_file_line_edits_its_default_file() -> None:
    plan_md = "# P\n\n## Wave 1\n\n### Task 1: One\n\nDo one.\n\n### Task 2: Two\n\nDo two.\n"
    played = turn("coder", wave_prompt(plan_md, 2), CORRAL_WAVE="1")
    assert step(played, "edit").startswith(f"sim/{TASK}/task-2.txt Task 2: Two ")


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ("Add a line to notes/n2.txt.", "notes/n2.txt"),
        ("Edit `README.md` and nothing else.", "README.md"),
        ("Read ../outside/x.txt and https://example.com/a/b.html first.", f"sim/{TASK}/task-2.txt"),
        ("Touch docs/a.md.\nsim-file: sim/mine.txt", "sim/mine.txt"),
    ],
)
def test_a_wave_task_edits_the_file_its_body_names(body: str, path: str) -> None:
    plan_md = f"# P\n\n## Wave 1\n\n### Task 1: One\n\nSee notes/n1.txt.\n\n### Task 2: Two\n\n{body}\n"
    played = turn("coder", wave_prompt(plan_md, 2), CORRAL_WAVE="1")
    assert step(played, "edit").startswith(f"{path} Task 2: Two ")


@pytest.mark.parametrize("mode", ["fail-once", "fail"])
def test_a_wave_tasks_sim_fault_line_is_the_coders_fault(mode: str) -> None:
    plan_md = f"# P\n\n## Wave 1\n\n### Task 1: One\n\nDo one.\nsim-fault: {mode}\n"
    played = turn("coder", wave_prompt(plan_md, 1, peers=1), CORRAL_WAVE="1", CORRAL_INSTANCE_TITLE="t-1")
    assert (played.fault, played.key) == (mode, "t-1")


def test_a_coder_without_a_wave_does_the_default_work_then_implement_finished() -> None:
    played = turn("coder", coder_prompt(TASK, parse_plan(PLAN)))
    assert played.steps == (
        Step("work", "Implement task fix-login: Fix the login form"),
        Step("emit", f"implement_finished {TASK}"),
    )


def test_a_fixer_does_the_default_work_then_implement_finished() -> None:
    played = turn("fixer", fixer_prompt(TASK, "add a test", cycle=2, source="review"))
    assert played.steps == (
        Step("work", "Fix task fix-login (round 2)"),
        Step("emit", f"implement_finished {TASK}"),
    )


# --- reviewer and readiness ----------------------------------------------------------------------------


def test_the_reviewer_approves_with_a_review_text() -> None:
    signal_type, task, payload = emitted(
        turn("reviewer", reviewer_prompt(TASK, f"corral/{TASK}", 1, "Fix it."))
    )
    assert (signal_type, task) == ("review_approved", TASK)
    assert payload.startswith("Approved by corral-sim (round 1)")


def test_changes_once_in_the_brief_asks_for_changes_in_round_1_and_approves_in_round_2() -> None:
    brief = "Fix it.\nsim-review: changes-once"
    first = emitted(turn("reviewer", reviewer_prompt(TASK, f"corral/{TASK}", 1, brief)))
    second = emitted(turn("reviewer", reviewer_prompt(TASK, f"corral/{TASK}", 2, brief)))
    changes = [c.signal_type for c in find_signal_instructions(reviewer_prompt(TASK, "b", 1))][1]
    assert first[:2] == (changes, TASK) and "round 1" in first[2]
    assert second[0] == "review_approved"


@pytest.mark.parametrize("value", ["changes-once", "sim-review: changes-once"])
def test_corral_sim_review_asks_for_changes_once(value: str) -> None:
    prompt = reviewer_prompt(TASK, f"corral/{TASK}", 1, "Fix it.")
    assert emitted(turn("reviewer", prompt, CORRAL_SIM_REVIEW=value))[0] != "review_approved"


def test_readiness_approves() -> None:
    played = turn("readiness", readiness_prompt(TASK, f"corral/{TASK}", 1, "Fix it."))
    assert emitted(played) == ("verify_approved", TASK, "")


# --- the agent, on a real repository -------------------------------------------------------------------


@pytest.fixture
def repo(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    return git_repo


def test_a_directives_prompt_is_not_played_by_the_role(repo: Path) -> None:
    surface = ScriptedSurface()
    agent(repo, surface, role=role("reviewer")).run_turn("/echo hello")
    assert surface.said() == ["hello"]


def test_a_wave_coder_commits_only_its_own_file(repo: Path, corral_home: Path) -> None:
    (repo / "README.md").write_text("another agent's work in progress\n")
    sim = agent(repo, ScriptedSurface(), role=role("coder", CORRAL_WAVE="1"))
    sim.run_turn(wave_prompt(PLAN, 2))  # its signal goes to the private CORRAL_HOME (the task is unknown)
    assert git(repo, "log", "-1", "--format=%s").strip() == "Task 2: Write task-2.txt"
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == [f"sim/{TASK}/task-2.txt"]
    assert git(repo, "status", "--short").split() == ["M", "README.md"]


def test_first_attempt_is_remembered_under_the_git_dir_not_in_the_worktree(repo: Path) -> None:
    git(repo, "worktree", "add", "-q", "-b", "corral/t", str(repo.parent / "wt"))
    worktree = Workspace(repo.parent / "wt")
    assert worktree.first_attempt("t-w1-t2") is True
    assert worktree.first_attempt("t-w1-t2") is False
    assert Workspace(repo.parent / "wt").first_attempt("t-w1-t3") is True  # another title, another memory
    assert (repo / ".git" / "worktrees" / "wt" / "corral-sim" / "attempts" / "t-w1-t2").exists()
    assert git(repo.parent / "wt", "status", "--short") == ""


def test_a_commit_waits_for_a_lock_another_git_holds(repo: Path) -> None:
    workspace = Workspace(repo)
    workspace.append("a.txt", "mine")
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    timer = threading.Timer(0.4, lock.unlink)
    timer.start()
    started = time.monotonic()
    try:
        result = workspace.commit("a")
    finally:
        timer.join()
    assert result.ok, result.output
    assert time.monotonic() - started >= 0.4
    assert git(repo, "log", "-1", "--format=%s").strip() == "a"


def test_a_failure_that_is_not_a_lock_is_reported_at_once(repo: Path) -> None:
    workspace = Workspace(repo)
    workspace.append("a.txt", "mine")
    git(repo, "config", "core.hooksPath", str(repo / "hooks"))
    hook = repo / "hooks" / "pre-commit"
    hook.parent.mkdir()
    hook.write_text("#!/bin/sh\necho refused by the hook >&2\nexit 1\n")
    hook.chmod(0o755)
    started = time.monotonic()
    result = workspace.commit("a")
    assert not result.ok and "refused by the hook" in result.output
    assert time.monotonic() - started < 2
