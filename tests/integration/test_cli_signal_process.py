"""`corral signal process` as a real process: applies pending signals and sentinels without the daemon.

Every test has a private runtime directory (short, under /tmp) so that no daemon of the user's is seen, and
the daemon test stops the one it starts. The watch test waits on output lines, bounded by a timeout.
"""

from __future__ import annotations

import json
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from frontends.daemon.client import DaemonClient
from tests.daemon_kit import stop_everything
from tests.integration.cli_kit import CORRAL, clean_env, fails, ok


@pytest.fixture(autouse=True)
def runtime_dir(corral_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private CORRAL_RUNTIME_DIR; a daemon still running in it at the end is stopped, or killed."""
    parent = Path(tempfile.mkdtemp(prefix="crl-", dir="/tmp"))
    directory = parent / "run"
    monkeypatch.setenv("CORRAL_RUNTIME_DIR", str(directory))
    yield directory
    stop_everything(directory)
    shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def repo(git_repo: Path) -> Path:
    """A repository with one task, fix-login, in status ready."""
    ok(git_repo, "task", "create", "fix-login")
    return git_repo


def signals_json(repo: Path) -> list[dict[str, object]]:
    return json.loads(ok(repo, "signal", "list", "--json"))


def task_status(repo: Path) -> str:
    (task,) = json.loads(ok(repo, "task", "list", "--json"))
    return str(task["status"])


def test_process_once_applies_the_pending_signals_in_order(repo: Path) -> None:
    ok(repo, "signal", "emit", "plan_start", "fix-login")
    ok(repo, "signal", "emit", "planner_finished", "fix-login")
    out = ok(repo, "signal", "process", "--once")
    assert out.splitlines()[:2] == ["signal 1 done: ready → planning", "signal 2 done: planning → planned"]
    assert out.splitlines()[2].startswith("2 signals in project proj: 2 done, 0 failed")
    assert "wait for the daemon" in out
    assert task_status(repo) == "ready"
    assert [s["status"] for s in signals_json(repo)] == ["done", "done"]


def test_process_once_with_nothing_pending_says_so(repo: Path) -> None:
    assert ok(repo, "signal", "process", "--once") == "no pending signals in project proj\n"


def test_a_failed_signal_is_shown_with_its_reason_and_the_rest_still_apply(repo: Path) -> None:
    ok(repo, "signal", "emit", "planner_finished", "fix-login")
    ok(repo, "signal", "emit", "plan_start", "fix-login")
    lines = ok(repo, "signal", "process", "--once").splitlines()
    assert lines[0].startswith('signal 1 failed: invalid transition: event "planner_finished" does not apply')
    assert lines[1] == "signal 2 done: ready → planning"
    assert lines[2].startswith("2 signals in project proj: 1 done, 1 failed")


def test_sentinels_of_the_repository_and_of_a_worktree_are_bridged_then_applied(repo: Path) -> None:
    ok(repo, "task", "create", "other")
    ok(repo, "signal", "emit", "plan_start", "fix-login")
    ok(repo, "signal", "emit", "plan_start", "other")
    ok(repo, "signal", "process", "--once")
    own = repo / ".corral" / "signals"
    own.mkdir(parents=True)
    (own / "planner-finished-fix-login").write_text("the plan\n")
    worktree = repo / ".worktrees" / "w1" / ".corral" / "signals"
    worktree.mkdir(parents=True)
    (worktree / "planner-finished-other.md").write_text("")
    out = ok(repo, "signal", "process", "--once")
    lines = sorted(out.splitlines()[:2])
    assert lines == ["signal 3 done: planning → planned", "signal 4 done: planning → planned"]
    assert "2 sentinel files bridged" in out.splitlines()[2]
    assert {str(s["task"]): s["source"] for s in signals_json(repo)[:2]} == {
        "fix-login": "agent",
        "other": "agent",
    }
    assert list(own.iterdir()) == [own / "processing"] and not any((own / "processing").iterdir())
    assert not (worktree / "planner-finished-other.md").exists()


def test_json_prints_the_outcomes(repo: Path) -> None:
    ok(repo, "signal", "emit", "plan_start", "fix-login")
    ok(repo, "signal", "emit", "implement_finished", "fix-login")
    outcomes = json.loads(ok(repo, "signal", "process", "--once", "--json"))
    assert [(o["signal"]["id"], o["applied"]) for o in outcomes] == [(1, True), (2, False)]
    assert outcomes[0]["transition"]["to_status"] == "planning"
    assert outcomes[1]["transition"] is None
    assert outcomes[1]["signal"]["result"].startswith("invalid transition")


def test_process_refuses_while_a_daemon_runs(repo: Path, runtime_dir: Path) -> None:
    ok(repo, "daemon", "start")
    pong = DaemonClient(runtime_dir).ping()
    assert pong is not None
    ok(repo, "signal", "emit", "plan_start", "fix-login")  # the daemon may apply it: no matter
    message = fails(repo, 1, "signal", "process", "--once")
    assert message.startswith(f"the daemon is running (pid {pong['pid']}): it applies signals itself")
    assert "does not" in message and "stop it first" in message


def test_without_once_it_applies_a_signal_emitted_later_and_stops_on_sigint(repo: Path) -> None:
    ok(repo, "signal", "emit", "plan_start", "fix-login")
    proc = subprocess.Popen(
        [CORRAL, "signal", "process"],
        cwd=repo,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = _lines(proc.stdout), _lines(proc.stderr)
        assert out.get(timeout=30) == "signal 1 done: ready → planning"
        assert err.get(timeout=30).startswith("waiting for signals of project proj")
        ok(repo, "signal", "emit", "planner_finished", "fix-login")
        assert out.get(timeout=30) == "signal 2 done: planning → planned"
        ok(repo, "signal", "emit", "plan_start", "fix-login", CORRAL_RUNTIME_DIR="/nonexistent-no-poke")
        assert out.get(timeout=30) == "signal 3 done: planned → planning"  # found by the poll, not a poke
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert out.get(timeout=30).startswith("3 signals in project proj: 3 done, 0 failed")
        assert out.get(timeout=30) is None
        rest = list(iter(lambda: err.get(timeout=30), None))
        assert not any("Traceback" in line for line in rest), rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _lines(stream: IO[str] | None) -> queue.Queue[str | None]:
    """The lines of `stream`, read on a thread, then None at its end: a test waits for each with a timeout."""
    assert stream is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines
