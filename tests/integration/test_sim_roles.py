"""corral-sim playing corral's lifecycle roles from corral's real prompts: real git repositories and
worktrees, the real `corral signal emit` into a private CORRAL_HOME, and the sim in each of its modes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from frontends.sim.behaviour.roles import plan_text
from frontends.sim.testing import SIM, SimPipe, SimPty
from protocols.plan import parse_plan
from protocols.prompts import plan_path, planner_prompt, readiness_prompt, reviewer_prompt, wave_task_prompt
from tests.conftest import git
from tests.integration.cli_kit import clean_env, ok

pytestmark = pytest.mark.timeout(60)

TASK = "fix-login"
_ROLE_ENV = (
    "CORRAL_AGENT_TYPE",
    "CORRAL_WAVE",
    "CORRAL_INSTANCE_TITLE",
    "CORRAL_SIM_PLAN",
    "CORRAL_SIM_REVIEW",
)


@pytest.fixture
def repo(corral_home: Path, git_repo: Path) -> Path:
    """A repository with the task fix-login, on a private database."""
    ok(git_repo, "task", "create", TASK)
    return git_repo


@pytest.fixture
def worktree(repo: Path) -> Path:
    """The task's shared worktree, as corral makes it."""
    path = repo.parent / "wt"
    git(repo, "worktree", "add", "-q", "-b", f"corral/{TASK}", str(path))
    return path


@pytest.fixture
def base_env(repo: Path, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in clean_env().items() if k not in _ROLE_ENV}
    return env | {
        "CORRAL_MANAGED": "1",
        "CORRAL_TASK": TASK,
        "CORRAL_WAVE": "",
        "CORRAL_SIM_STATE": str(tmp_path / "sim-state"),
        "CORRAL_SIM_THINK": "0",
    }


@pytest.fixture
def procs() -> Iterator[list[SimPty | SimPipe]]:
    started: list[SimPty | SimPipe] = []
    yield started
    for proc in started:
        proc.close()


def signals(repo: Path) -> list[dict[str, Any]]:
    """The signals emitted so far, oldest first."""
    return sorted(json.loads(ok(repo, "signal", "list", "--json")), key=lambda s: s["id"])


def body(signal: dict[str, Any]) -> str:
    return json.loads(signal["payload"])["body"]


def prompt_file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.prompt.md"
    path.write_text(text)
    return str(path)


def print_mode(procs: list, cwd: Path, env: dict[str, str], prompt: str, *args: str) -> SimPipe:
    """The sim as `claude -p PROMPT`, never asking permission."""
    sim = SimPipe([SIM, "-p", "--dangerously-skip-permissions", *args, "--prompt", prompt], cwd=cwd, env=env)
    procs.append(sim)
    return sim


def wave_prompt(task_number: int, plan: str) -> str:
    return wave_task_prompt(TASK, parse_plan(plan), 1, task_number, peers=len(parse_plan(plan).wave(1).tasks))


# --- planner -------------------------------------------------------------------------------------------


def test_the_planner_writes_a_plan_corral_parses_and_sends_it_as_planner_finished(
    repo: Path, base_env: dict[str, str], procs
) -> None:
    env = base_env | {"CORRAL_AGENT_TYPE": "planner", "CORRAL_INSTANCE_TITLE": f"{TASK}-planner"}
    prompt = planner_prompt(TASK, "Fix the login form", "The form rejects good passwords.")
    assert print_mode(procs, repo, env, prompt).wait() == 0

    text = (repo / plan_path(TASK)).read_text()
    plan = parse_plan(text, plan_path(TASK))
    assert [[t.number for t in w.tasks] for w in plan.waves] == [[1, 2, 3], [4, 5, 6]]
    (signal,) = signals(repo)
    assert (signal["signal_type"], signal["task"]) == ("planner_finished", TASK)
    assert body(signal) == text.strip()
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"  # the planner did not commit
    assert git(repo, "status", "--porcelain", "--untracked-files=all").splitlines() == [
        f"?? {plan_path(TASK)}"
    ]


def test_corral_sim_plan_sizes_the_plan_and_a_sim_plan_line_in_the_brief_wins(
    repo: Path, base_env: dict[str, str], procs, tmp_path: Path
) -> None:
    env = base_env | {"CORRAL_AGENT_TYPE": "planner", "CORRAL_SIM_PLAN": "waves=3 tasks=2"}
    print_mode(procs, repo, env, planner_prompt(TASK, "Fix it", "Fix it.")).wait()
    plan = parse_plan((repo / plan_path(TASK)).read_text())
    assert [len(w.tasks) for w in plan.waves] == [2, 2, 2]

    brief = "Fix it.\n\nsim-plan: waves=1 tasks=4"
    print_mode(procs, repo, env, planner_prompt(TASK, "Fix it", brief)).wait()
    plan = parse_plan((repo / plan_path(TASK)).read_text())  # written again, not appended to
    assert [len(w.tasks) for w in plan.waves] == [4]
    assert [len(parse_plan(body(s)).tasks) for s in signals(repo)] == [6, 4]


# --- wave coders ---------------------------------------------------------------------------------------


def test_a_wave_coder_asks_to_edit_its_own_file_commits_it_and_signals_its_task(
    repo: Path, worktree: Path, base_env: dict[str, str], procs, tmp_path: Path
) -> None:
    env = base_env | {
        "CORRAL_AGENT_TYPE": "coder",
        "CORRAL_WAVE": "1",
        "CORRAL_INSTANCE_TITLE": "t-w1-t2",
        "CORRAL_SIM_AUTO_APPROVE": "0",  # a managed role approves its own edits unless told to ask
    }
    plan = plan_text("Fix the login form", TASK, 2, 3)
    prompt = prompt_file(tmp_path, "t2", wave_prompt(2, plan))
    sim = SimPty([SIM, "--no-trust", "--prompt-file", prompt], cwd=worktree, env=env)
    procs.append(sim)
    sim.expect(f"Do you want to make this edit to sim/{TASK}/task-2.txt?")
    sim.send("1")
    sim.expect("⏺ Done. edited sim/fix-login/task-2.txt; committed ")
    sim.expect("; emitted implement_task_finished.")

    assert git(worktree, "log", "-1", "--format=%s").strip() == "Task 2: Write task-2.txt"
    assert git(worktree, "show", "--name-only", "--format=", "HEAD").split() == [f"sim/{TASK}/task-2.txt"]
    (signal,) = signals(repo)
    assert signal["signal_type"] == "implement_task_finished"
    assert json.loads(signal["payload"]) == {"wave_number": 1, "task_number": 2}


def test_a_managed_wave_coder_edits_without_asking(
    repo: Path, worktree: Path, base_env: dict[str, str], procs, tmp_path: Path
) -> None:
    env = base_env | {"CORRAL_AGENT_TYPE": "coder", "CORRAL_WAVE": "1", "CORRAL_INSTANCE_TITLE": "t-w1-t1"}
    env.pop("CORRAL_SIM_AUTO_APPROVE", None)
    plan = plan_text("Fix the login form", TASK, 2, 3)
    sim = SimPty(
        [SIM, "--no-trust", "--prompt-file", prompt_file(tmp_path, "t1", wave_prompt(1, plan))],
        cwd=worktree,
        env=env,
    )
    procs.append(sim)
    sim.expect("; emitted implement_task_finished.")
    assert "Do you want to make this edit" not in sim.output
    assert git(worktree, "log", "-1", "--format=%s").strip() == "Task 1: Write task-1.txt"


def test_three_wave_coders_commit_at_the_same_time_in_one_worktree(
    repo: Path, worktree: Path, base_env: dict[str, str], procs
) -> None:
    plan = plan_text("Fix the login form", TASK, 1, 3)
    coders = [
        print_mode(
            procs,
            worktree,
            base_env | {"CORRAL_AGENT_TYPE": "coder", "CORRAL_WAVE": "1", "CORRAL_INSTANCE_TITLE": f"t-{n}"},
            wave_prompt(n, plan),
        )
        for n in (1, 2, 3)
    ]
    assert [coder.wait(30) for coder in coders] == [0, 0, 0], [c.stderr for c in coders]

    commits = git(worktree, "log", "--format=%s", "-3").splitlines()
    assert sorted(commits) == [f"Task {n}: Write task-{n}.txt" for n in (1, 2, 3)]
    for n in (1, 2, 3):
        sha = git(worktree, "log", "--format=%H", f"--grep=^Task {n}:").strip()
        assert git(worktree, "show", "--name-only", "--format=", sha).split() == [f"sim/{TASK}/task-{n}.txt"]
    assert git(worktree, "status", "--porcelain") == ""
    payloads = sorted(json.loads(s["payload"])["task_number"] for s in signals(repo))
    assert payloads == [1, 2, 3]


def test_fail_once_exits_0_before_any_work_and_the_fresh_retry_works(
    repo: Path, worktree: Path, base_env: dict[str, str], procs, tmp_path: Path
) -> None:
    env = base_env | {"CORRAL_AGENT_TYPE": "coder", "CORRAL_WAVE": "1", "CORRAL_INSTANCE_TITLE": "t-w1-t1"}
    plan = "# P\n\n## Wave 1: One\n\n### Task 1: Flaky\n\nDo it.\nsim-fault: fail-once\n"
    argv = [
        SIM,
        "--no-trust",
        "--auto-approve",
        "--prompt-file",
        prompt_file(tmp_path, "t1", wave_prompt(1, plan)),
    ]
    first = SimPty(argv, cwd=worktree, env=env)
    procs.append(first)
    assert first.wait() == 0
    assert "esc to interrupt" not in first.output and "⏺" not in first.output
    assert git(worktree, "rev-list", "--count", "HEAD").strip() == "1"
    assert signals(repo) == []

    again = SimPty(argv, cwd=worktree, env=env)
    procs.append(again)
    again.expect("emitted implement_task_finished.")
    assert git(worktree, "log", "-1", "--format=%s").strip() == "Task 1: Flaky"
    assert [s["signal_type"] for s in signals(repo)] == ["implement_task_finished"]
    assert git(worktree, "status", "--porcelain") == ""  # the memory is not in the worktree


def test_fail_always_exits_0_without_work(
    repo: Path, worktree: Path, base_env: dict[str, str], procs
) -> None:
    env = base_env | {"CORRAL_AGENT_TYPE": "coder", "CORRAL_WAVE": "1", "CORRAL_INSTANCE_TITLE": "t-w1-t1"}
    plan = "# P\n\n## Wave 1: One\n\n### Task 1: Broken\n\nDo it.\nsim-fault: fail\n"
    stream = ("--output-format", "stream-json", "--verbose")
    for _ in range(2):
        sim = print_mode(procs, worktree, env, wave_prompt(1, plan), *stream)
        assert sim.wait() == 0
        assert sim.messages == []
    assert git(worktree, "rev-list", "--count", "HEAD").strip() == "1"
    assert signals(repo) == []


# --- reviewer and readiness ----------------------------------------------------------------------------


class Codex:
    """Just enough of a codex app-server client to run one turn, approving whatever the sim asks."""

    def __init__(self, sim: SimPipe, cwd: Path) -> None:
        self.sim = sim
        sim.send({"method": "initialize", "id": 0, "params": {"clientInfo": {"name": "t", "version": "0"}}})
        sim.recv(lambda m: m.get("id") == 0)
        sim.send(
            {"method": "thread/start", "id": 1, "params": {"cwd": str(cwd), "approvalPolicy": "on-request"}}
        )
        self.thread = sim.recv(lambda m: m.get("id") == 1)["result"]["thread"]["id"]

    def turn(self, text: str) -> dict[str, Any]:
        self.sim.send(
            {
                "method": "turn/start",
                "id": 2,
                "params": {"threadId": self.thread, "input": [{"type": "text", "text": text}]},
            }
        )
        while True:
            message = self.sim.recv()
            if "id" in message and "method" in message:
                self.sim.send({"id": message["id"], "result": {"decision": "accept"}})
            if message.get("method") == "turn/completed":
                return message["params"]["turn"]


def test_the_reviewer_approves_with_a_review_in_the_codex_mode(
    repo: Path, worktree: Path, base_env: dict[str, str], procs
) -> None:
    env = base_env | {"CORRAL_AGENT_TYPE": "reviewer", "CORRAL_INSTANCE_TITLE": f"{TASK}-review-1"}
    sim = SimPipe([SIM, "app-server"], cwd=worktree, env=env)
    procs.append(sim)
    turn = Codex(sim, worktree).turn(reviewer_prompt(TASK, f"corral/{TASK}", 1, "Fix the login form."))
    assert turn["status"] == "completed"
    (signal,) = signals(repo)
    assert signal["signal_type"] == "review_approved"
    assert body(signal).startswith("Approved by corral-sim (round 1)")
    assert git(worktree, "rev-list", "--count", "HEAD").strip() == "1"  # a reviewer changes nothing


@pytest.mark.parametrize("where", ["brief", "env"])
def test_changes_once_asks_for_changes_in_round_1_and_approves_in_round_2(
    repo: Path, worktree: Path, base_env: dict[str, str], procs, where: str
) -> None:
    brief = "Fix the login form.\n\nsim-review: changes-once" if where == "brief" else "Fix the login form."
    extra = {"CORRAL_SIM_REVIEW": "changes-once"} if where == "env" else {}
    for cycle in (1, 2):
        env = base_env | {"CORRAL_AGENT_TYPE": "reviewer", "CORRAL_INSTANCE_TITLE": f"r-{cycle}"} | extra
        sim = SimPipe([SIM, "app-server"], cwd=worktree, env=env)
        procs.append(sim)
        Codex(sim, worktree).turn(reviewer_prompt(TASK, f"corral/{TASK}", cycle, brief))
    first, second = signals(repo)
    assert first["signal_type"] == "review_changes_requested"
    assert "round 1" in body(first)
    assert second["signal_type"] == "review_approved"


def test_readiness_approves_in_the_claude_stream_json_mode(
    repo: Path, worktree: Path, base_env: dict[str, str], procs
) -> None:
    env = base_env | {"CORRAL_AGENT_TYPE": "readiness", "CORRAL_INSTANCE_TITLE": f"{TASK}-verify-1"}
    stream = ["--input-format", "stream-json", "--output-format", "stream-json", "--verbose"]
    sim = SimPipe([SIM, "-p", *stream, "--permission-prompt-tool", "stdio"], cwd=worktree, env=env)
    procs.append(sim)
    text = readiness_prompt(TASK, f"corral/{TASK}", 1, "Fix the login form.")
    sim.send({"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": text}]}})
    result = sim.recv(lambda m: m.get("type") == "result")
    assert result["is_error"] is False and "emitted verify_approved" in result["result"]
    assert [s["signal_type"] for s in signals(repo)] == ["verify_approved"]
