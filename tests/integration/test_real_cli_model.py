"""The real agent CLIs doing real work against corral-model: Claude Code in print mode and Codex in exec
mode write a file and run a command from a scenario, and real Claude Code plays a corral planner and a
wave coder from corral's own prompts (the lifecycle scenario), its signals landing in a private database.

Both CLIs also ride out every model fault corral-model injects (a 429, a stream cut mid-message, an invalid
tool call, a 529), retrying as they do against the real API, and stay in step with the script.

The CLIs come from `make agents` (npm, pinned versions, into .cache/agents), CORRAL_TEST_CLI_PATH or PATH;
without them these tests are skipped visibly, with the reason (pytest -ra lists it). Each CLI runs with a
throwaway HOME, so the user's own settings are never read or written; only the model API is replaced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from protocols.plan import parse_plan
from protocols.prompts import plan_path, planner_prompt, wave_task_prompt
from tests.agents_kit import find_cli
from tests.conftest import git
from tests.integration.cli_kit import clean_env, ok
from tests.model_kit import ModelServer

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

CLI_TIMEOUT_S = 120
TASK = "fix-login"

SCENARIO = """\
[[script]]
prompt = "hello"

[[script.turns]]
say = "I'll write hello.txt."
write = { path = "hello.txt", content = "hello from corral-model\\n" }

[[script.turns]]
run = "cat hello.txt > seen.txt && git status --short hello.txt >> seen.txt"
description = "Show what I wrote"

[[script.turns]]
say = "Wrote hello.txt and looked at it."
"""


def agent_env(home: Path, **extra: str) -> dict[str, str]:
    """The test's environment for a real CLI: no model settings of the user's, a throwaway HOME, and this
    corral first on PATH (its prompts say `corral signal emit`)."""
    env = {
        k: v
        for k, v in clean_env().items()
        if not k.startswith(("ANTHROPIC_", "OPENAI_", "CLAUDE_", "CODEX_"))
    }
    home.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return (
        env | {"HOME": str(home), "PATH": path, "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1"} | extra
    )


def claude_p(claude: str, model: ModelServer, cwd: Path, home: Path, prompt: str) -> dict[str, object]:
    """`claude -p PROMPT` with Bash and Write allowed, against `model`; its JSON result."""
    env = agent_env(
        home,
        ANTHROPIC_BASE_URL=model.url,
        ANTHROPIC_API_KEY="sk-corral-model-test-0123456789",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
    )
    done = subprocess.run(
        [claude, "-p", prompt, "--allowedTools", "Bash Write", "--output-format", "json"],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, (
        f"claude exited {done.returncode}: {done.stdout[-2000:]} {done.stderr[-2000:]}"
    )
    return json.loads(done.stdout)


def codex_exec(
    codex: str, model: ModelServer, cwd: Path, tmp_path: Path, prompt: str, retries: int
) -> subprocess.CompletedProcess[str]:
    """`codex exec PROMPT` against `model`, with its own CODEX_HOME and `retries` retries of each kind."""
    codex_home = tmp_path / "codex-home"
    codex_home.mkdir(exist_ok=True)
    (codex_home / "config.toml").write_text(
        'model = "gpt-5.5"\nmodel_provider = "local"\n\n[model_providers.local]\nname = "corral-model"\n'
        f'base_url = "{model.url}/v1"\nwire_api = "responses"\nenv_key = "CORRAL_MODEL_KEY"\n'
        f"request_max_retries = {retries}\nstream_max_retries = {retries}\n"
    )
    env = agent_env(tmp_path / "home", CODEX_HOME=str(codex_home), CORRAL_MODEL_KEY="sk-test")
    done = subprocess.run(
        [codex, "exec", "--skip-git-repo-check", "-s", "danger-full-access", prompt],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, (
        f"codex exited {done.returncode}: {done.stdout[-2000:]} {done.stderr[-2000:]}"
    )
    return done


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(SCENARIO)
    return path


def test_real_claude_code_writes_a_file_and_runs_a_command(
    git_repo: Path, tmp_path: Path, scenario: Path
) -> None:
    claude = find_cli("claude")
    with ModelServer(["--scenario", str(scenario)], log=tmp_path / "model.jsonl") as model:
        result = claude_p(claude, model, git_repo, tmp_path / "home", "say hello")
        entries = [e for e in model.entries() if e["path"] == "/v1/messages" and "turn" in e]
    assert (git_repo / "hello.txt").read_text() == "hello from corral-model\n"
    assert (git_repo / "seen.txt").read_text() == "hello from corral-model\n?? hello.txt\n"
    assert result["result"] == "Wrote hello.txt and looked at it." and result["permission_denials"] == []
    assert [(e["turn"], e["tool"] and e["tool"]["kind"]) for e in entries] == [
        (0, "write"),
        (1, "run"),
        (2, None),
    ]
    assert {e["cwd"] for e in entries} == {str(git_repo)}


def test_real_codex_exec_writes_a_file_and_runs_a_command(
    git_repo: Path, tmp_path: Path, scenario: Path
) -> None:
    codex = find_cli("codex")
    with ModelServer(["--scenario", str(scenario)], log=tmp_path / "model.jsonl") as model:
        done = codex_exec(codex, model, git_repo, tmp_path, "say hello", retries=0)
        entries = [e for e in model.entries() if e["path"] == "/v1/responses" and "turn" in e]
    assert (git_repo / "hello.txt").read_text() == "hello from corral-model\n"
    assert (git_repo / "seen.txt").read_text() == "hello from corral-model\n?? hello.txt\n"
    assert "Wrote hello.txt and looked at it." in done.stdout
    assert [e["turn"] for e in entries] == [0, 1, 2]


FAULTY = """\
[[script]]
prompt = "hello"

[[script.turns]]
say = "I'll write hello.txt."
write = { path = "hello.txt", content = "hello\\n" }
fault = "rate-limit,retry-after=0,times=1"

[[script.turns]]
run = "echo ran > ran.txt"
fault = "cut,times=1"

[[script.turns]]
run = "echo again >> ran.txt"
fault = "bad-tool,times=1"

[[script.turns]]
say = "All done."
fault = "overloaded,times=1"
"""
FAULTS_SEEN = [
    (0, "rate-limit,retry-after=0,times=1"),
    (0, None),
    (1, "cut,times=1"),
    (1, None),
    (2, "bad-tool,times=1"),
    (2, None),
    (3, "overloaded,times=1"),
    (3, None),
]
"""Each turn's fault once, then the same turn answered: the retry was not counted as a new turn."""


def test_real_claude_code_rides_out_each_model_fault_and_stays_in_step(
    git_repo: Path, tmp_path: Path
) -> None:
    claude = find_cli("claude")
    (tmp_path / "faulty.toml").write_text(FAULTY)
    with ModelServer(["--scenario", str(tmp_path / "faulty.toml")], log=tmp_path / "model.jsonl") as model:
        result = claude_p(claude, model, git_repo, tmp_path / "home", "say hello")
        seen = [
            (e["turn"], e["fault"]) for e in model.entries() if e["path"] == "/v1/messages" and "turn" in e
        ]
    assert seen == FAULTS_SEEN
    assert result["result"] == "All done."
    assert (git_repo / "ran.txt").read_text() == "ran\nagain\n"  # each command ran once


def test_real_codex_rides_out_each_model_fault_and_stays_in_step(git_repo: Path, tmp_path: Path) -> None:
    codex = find_cli("codex")
    (tmp_path / "faulty.toml").write_text(FAULTY)
    with ModelServer(["--scenario", str(tmp_path / "faulty.toml")], log=tmp_path / "model.jsonl") as model:
        done = codex_exec(codex, model, git_repo, tmp_path, "say hello", retries=3)
        seen = [
            (e["turn"], e["fault"]) for e in model.entries() if e["path"] == "/v1/responses" and "turn" in e
        ]
    assert seen == FAULTS_SEEN
    assert "missing field `cmd`" in done.stderr + done.stdout  # the invalid call, reported by codex
    assert (git_repo / "ran.txt").read_text() == "ran\nagain\n"


def signals(repo: Path) -> list[dict[str, object]]:
    return sorted(json.loads(ok(repo, "signal", "list", "--json")), key=lambda s: s["id"])  # type: ignore[index]


def test_real_claude_code_plays_a_planner_then_a_wave_coder_from_corrals_prompts(
    corral_home: Path, git_repo: Path, tmp_path: Path
) -> None:
    claude = find_cli("claude")
    ok(git_repo, "task", "create", TASK)
    worktree = tmp_path / "wt"
    git(git_repo, "worktree", "add", "-q", "-b", f"corral/{TASK}", str(worktree))
    with ModelServer([], log=tmp_path / "model.jsonl") as model:
        claude_p(
            claude, model, git_repo, tmp_path / "home", planner_prompt(TASK, "Fix the login form", "Fix it.")
        )
        plan = parse_plan((git_repo / plan_path(TASK)).read_text())
        (planned,) = signals(git_repo)
        assert (planned["signal_type"], planned["task"]) == ("planner_finished", TASK)
        claude_p(claude, model, worktree, tmp_path / "home", wave_task_prompt(TASK, plan, 1, 2, peers=3))
        roles = {e["role"] for e in model.entries() if e.get("role")}
    assert [(w.number, [t.number for t in w.tasks]) for w in plan.waves] == [(1, [1, 2, 3]), (2, [4, 5, 6])]
    _, coded = signals(git_repo)
    assert coded["signal_type"] == "implement_task_finished"
    assert json.loads(str(coded["payload"])) == {"wave_number": 1, "task_number": 2}
    assert git(worktree, "log", "-1", "--format=%s").startswith("Task 2: ")
    assert git(worktree, "show", "--name-only", "--format=", "HEAD").split() == [f"sim/{TASK}/task-2.txt"]
    assert roles == {"planner", "coder"}
