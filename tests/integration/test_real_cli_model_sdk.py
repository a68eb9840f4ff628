"""Real Claude Code (stream-json) and real Codex (app-server) in corral's own SDK runtime, doing a scripted
turn against corral-model: the file written and the command run in the agent's worktree, the model's text
in the runtime's capture. Only the base URL and the key are set, through the runtime's environment;
skipped, with the reason, where the CLIs are not installed (tests/agents_kit.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.runtimes.base import Capture, RuntimeSpec, Send
from actors.runtimes.sdk import SdkRuntime, SessionMemo
from actors.supervision import ChildSpec, Restart, SupervisionTree, SupervisorFlags
from protocols.sdk import claude_argv_flags
from tests.agents_kit import find_cli
from tests.model_kit import ModelServer
from tests.unit.actor_kit import wait_until

pytestmark = [pytest.mark.usefixtures("stop_actors"), pytest.mark.timeout(180), pytest.mark.slow]

SCENARIO = """\
[[script]]
prompt = "hello"

[[script.turns]]
say = "I'll write hello.txt."
write = { path = "hello.txt", content = "hello from corral-model\\n" }

[[script.turns]]
run = "echo ran > ran.txt"

[[script.turns]]
say = "Wrote hello.txt and ran the command."
"""


def start(
    trees: list[SupervisionTree], argv: tuple[str, ...], transport: str, cwd: Path, env: dict[str, str]
) -> SupervisionTree:
    spec = RuntimeSpec(
        name=f"real-{transport}",
        argv=argv,
        cwd=str(cwd),
        env=tuple(env.items()),
        log_path=str(cwd.parent / "logs" / f"{transport}.log"),
        sdk_transport=transport,  # type: ignore[arg-type]
    )
    child = ChildSpec.worker(
        "rt", SdkRuntime, spec, memo=SessionMemo(), restart=Restart.TEMPORARY, handshake_timeout_s=60
    )
    tree = SupervisionTree.start(SupervisorFlags(max_restarts=0), [child])
    trees.append(tree)
    return tree


def run_turn(tree: SupervisionTree, cwd: Path) -> str:
    runtime = wait_until(lambda: tree.env.directory.get("root/rt"), what="the runtime")
    runtime.ask(Send("say hello"), timeout=30)
    wait_until(lambda: (cwd / "ran.txt").exists(), timeout=90, what="the agent to run the scripted command")

    def finished() -> str:
        text = runtime.ask(Capture(lines=None), timeout=10)
        return text if "Wrote hello.txt and ran the command." in text else ""

    return wait_until(finished, timeout=60, what="the model's last text in the capture")


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(SCENARIO)
    return path


def test_real_claude_stream_json_in_the_sdk_runtime_against_corral_model(
    trees: list[SupervisionTree], git_repo: Path, tmp_path: Path, scenario: Path
) -> None:
    claude = find_cli("claude")
    with ModelServer(["--scenario", str(scenario)], log=tmp_path / "model.jsonl") as model:
        env = {
            "HOME": str(tmp_path / "home"),
            "ANTHROPIC_BASE_URL": model.url,
            "ANTHROPIC_API_KEY": "sk-corral-model-test-0123456789",
            "DISABLE_AUTOUPDATER": "1",
        }
        argv = (claude, *claude_argv_flags(), "--allowedTools", "Bash Write")
        run_turn(start(trees, argv, "claude", git_repo, env), git_repo)
        turns = [e["turn"] for e in model.entries() if e["path"] == "/v1/messages" and "turn" in e]
    assert (git_repo / "hello.txt").read_text() == "hello from corral-model\n"
    assert (git_repo / "ran.txt").read_text() == "ran\n"
    assert turns == [0, 1, 2]


def test_real_codex_app_server_in_the_sdk_runtime_against_corral_model(
    trees: list[SupervisionTree], git_repo: Path, tmp_path: Path, scenario: Path
) -> None:
    codex = find_cli("codex")
    codex_home = tmp_path / "codex-home"
    codex_home.mkdir()
    with ModelServer(["--scenario", str(scenario)], log=tmp_path / "model.jsonl") as model:
        (codex_home / "config.toml").write_text(
            'model = "gpt-5.5"\nmodel_provider = "local"\n\n[model_providers.local]\nname = "corral-model"\n'
            f'base_url = "{model.url}/v1"\nwire_api = "responses"\nenv_key = "CORRAL_MODEL_KEY"\n'
            "request_max_retries = 0\nstream_max_retries = 0\n"
        )
        env = {"HOME": str(tmp_path / "home"), "CODEX_HOME": str(codex_home), "CORRAL_MODEL_KEY": "sk-test"}
        run_turn(start(trees, (codex, "app-server"), "codex", git_repo, env), git_repo)
        turns = [e["turn"] for e in model.entries() if e["path"] == "/v1/responses" and "turn" in e]
    assert (git_repo / "hello.txt").read_text() == "hello from corral-model\n"
    assert (git_repo / "ran.txt").read_text() == "ran\n"
    assert turns == [0, 1, 2]
