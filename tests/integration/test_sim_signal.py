"""corral-sim emits signals through the real `corral signal emit`, into a private CORRAL_HOME."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontends.sim.testing import SIM, SimPipe, SimPty
from tests.integration.cli_kit import clean_env, ok

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def repo(corral_home: Path, git_repo: Path) -> Path:
    """A repository with the task fix-login (ready), on a private database."""
    ok(git_repo, "task", "create", "fix-login")
    return git_repo


@pytest.fixture
def env(repo: Path, tmp_path: Path) -> dict[str, str]:
    return clean_env() | {
        "CORRAL_TASK": "fix-login",
        "CORRAL_MANAGED": "1",
        "CORRAL_SIM_STATE": str(tmp_path / "sim-state"),
        "CORRAL_SIM_THINK": "0",
    }


@pytest.fixture
def procs() -> Iterator[list[SimPty | SimPipe]]:
    started: list[SimPty | SimPipe] = []
    yield started
    for proc in started:
        proc.close()


def signals(repo: Path) -> list[dict[str, object]]:
    return json.loads(ok(repo, "signal", "list", "--json"))


def print_mode(repo: Path, env: dict[str, str], prompt: str, *args: str) -> SimPipe:
    return SimPipe([SIM, "-p", "--dangerously-skip-permissions", *args, prompt], cwd=repo, env=env)


def test_signal_directive_emits_through_corral_as_the_agent(repo: Path, env: dict[str, str], procs) -> None:
    sim = SimPty([SIM, "--no-trust"], cwd=repo, env=env)
    procs.append(sim)
    sim.expect("> ")
    sim.send("/signal plan_start\r")
    sim.expect("⏺ Bash(corral signal emit plan_start fix-login)")
    sim.expect("signal 1 pending: plan_start fix-login")
    sim.expect("⏺ Done. emitted plan_start.")
    (signal,) = signals(repo)
    assert (signal["signal_type"], signal["task"], signal["source"]) == ("plan_start", "fix-login", "agent")


def test_signal_directive_passes_a_json_payload(repo: Path, env: dict[str, str], procs) -> None:
    payload = '{"wave_number": 1, "task_number": 2}'
    sim = print_mode(repo, env, f"/signal implement_task_finished {payload}")
    procs.append(sim)
    assert sim.wait() == 0
    (signal,) = signals(repo)
    assert json.loads(str(signal["payload"])) == {"wave_number": 1, "task_number": 2}


def test_a_refused_signal_is_reported_and_the_agent_goes_on(repo: Path, env: dict[str, str], procs) -> None:
    sim = print_mode(
        repo, env, "/signal cancel\n/echo still working", "--output-format", "stream-json", "--verbose"
    )
    procs.append(sim)
    result = sim.recv(lambda m: m.get("type") == "user")
    block = result["message"]["content"][0]
    assert block["is_error"] is True
    assert 'signal "cancel" is user-only' in block["content"]
    sim.recv(lambda m: m.get("type") == "assistant" and "still working" in json.dumps(m))
    assert sim.wait() == 0
    assert signals(repo) == []


def test_a_plain_prompt_that_says_to_emit_a_signal_does_the_work_then_emits_it(
    repo: Path, env: dict[str, str], procs
) -> None:
    prompt = "Plan the login fix.\nWhen you are done run `corral signal emit planner_finished fix-login`."
    sim = print_mode(repo, env, prompt)
    procs.append(sim)
    assert sim.wait() == 0
    assert [s["signal_type"] for s in signals(repo)] == ["planner_finished"]
    assert (repo / "sim" / "fix-login.txt").read_text().startswith("turn 1: Plan the login fix.")


def test_exit_after_signal_exits_0_once_the_signal_is_emitted(repo: Path, env: dict[str, str], procs) -> None:
    sim = SimPty([SIM, "--no-trust", "--exit-after-signal"], cwd=repo, env=env)
    procs.append(sim)
    sim.expect("> ")
    sim.send("/echo before\r")
    sim.expect("⏺ Done.")
    assert sim.alive()
    sim.send("/signal plan_start\r")
    sim.expect("⏺ Done. emitted plan_start.")
    assert sim.wait() == 0


def test_without_a_task_the_signal_fails_with_a_reason(repo: Path, env: dict[str, str], procs) -> None:
    stream = ("--output-format", "stream-json", "--verbose")
    sim = print_mode(repo, env | {"CORRAL_TASK": ""}, "/signal plan_start", *stream)
    procs.append(sim)
    block = sim.recv(lambda m: m.get("type") == "user")["message"]["content"][0]
    assert block["is_error"] is True
    assert block["content"].startswith("no task: set $CORRAL_TASK")
    assert sim.wait() == 0
    assert signals(repo) == []
