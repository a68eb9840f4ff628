"""Handshakes with the real agent CLIs where installed (npm: @openai/codex, @anthropic-ai/claude-code).

They run where `make agents` installed the pinned CLIs into .cache/agents, CORRAL_TEST_CLI_PATH names a
directory holding `codex` / `claude`, or PATH has them (tests/agents_kit.py); elsewhere they are skipped,
visibly, with the reason (pytest -ra lists it). No login and no network are
assumed: the point is that corral speaks each transport correctly and that a logged-out agent comes back as a
clear error, never a hang.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.runtimes.base import Capture, IsAlive, RuntimeSpec, Send
from actors.runtimes.sdk import SdkRuntime, SessionMemo
from actors.supervision import ChildSpec, Restart, SupervisionTree, SupervisorFlags
from protocols.sdk import claude_argv_flags
from tests.agents_kit import find_cli
from tests.unit.actor_kit import wait_until

pytestmark = pytest.mark.usefixtures("stop_actors")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A throwaway HOME so the CLIs never read or write the user's own configuration."""
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True)
    return home


def start(
    trees: list[SupervisionTree],
    argv: tuple[str, ...],
    transport: str,
    cwd: Path,
    home: Path,
    memo: SessionMemo,
) -> SupervisionTree:
    spec = RuntimeSpec(
        name=f"real-{transport}",
        argv=argv,
        cwd=str(cwd),
        env=(("HOME", str(home)), ("CODEX_HOME", str(home / ".codex"))),
        log_path=str(cwd.parent / "logs" / f"{transport}.log"),
        sdk_transport=transport,  # type: ignore[arg-type]
    )
    child = ChildSpec.worker(
        "rt", SdkRuntime, spec, memo=memo, restart=Restart.TEMPORARY, handshake_timeout_s=60
    )
    tree = SupervisionTree.start(SupervisorFlags(max_restarts=0), [child])
    trees.append(tree)
    return tree


def test_codex_app_server_handshake_starts_a_thread(
    trees: list[SupervisionTree], git_repo: Path, home: Path
) -> None:
    codex = find_cli("codex")
    memo = SessionMemo()
    tree = start(trees, (codex, "app-server"), "codex", git_repo, home, memo)
    thread_id = wait_until(memo.get, timeout=60, what="codex to answer initialize and thread/start")
    assert len(thread_id) >= 8
    assert tree.env.directory.get("root/rt").ask(IsAlive(), timeout=10)


def test_claude_stream_json_logged_out_is_a_clear_error_not_a_hang(
    trees: list[SupervisionTree], git_repo: Path, home: Path
) -> None:
    claude = find_cli("claude")
    memo = SessionMemo()
    tree = start(trees, (claude, *claude_argv_flags()), "claude", git_repo, home, memo)
    runtime = wait_until(lambda: tree.env.directory.get("root/rt"), what="runtime")
    runtime.ask(Send("say hello"), timeout=10)
    wait_until(memo.get, timeout=60, what="claude's system/init with a session id")

    def error_text() -> str:
        text = runtime.ask(Capture(lines=None), timeout=10)
        return text if "[error]" in text else ""

    text = wait_until(error_text, timeout=60, what="the logged-out error")
    assert "login" in text.lower() or "api key" in text.lower(), text
