"""`corral instance …` end to end: a real daemon process (started by the CLI), real tmux on a private socket,
a real git repository, corral-sim as the agent. The daemon and the tmux server are always stopped."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.runtimes.tmux_server import TmuxServer
from frontends.daemon import DaemonClient
from tests.conftest import git
from tests.daemon_kit import stop_everything
from tests.integration.cli_kit import CORRAL, corral, fails, ok
from tests.unit.actor_kit import wait_until

SIM = str(Path(sys.executable).with_name("corral-sim"))


class Env:
    def __init__(self, runtime_dir: Path, socket: str) -> None:
        self.client = DaemonClient(runtime_dir)
        self.tmux = TmuxServer(socket)


@pytest.fixture
def env(corral_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    parent = Path(tempfile.mkdtemp(prefix="crl-i-", dir="/tmp"))
    runtime_dir = parent / "run"
    socket = f"corral-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CORRAL_RUNTIME_DIR", str(runtime_dir))
    monkeypatch.setenv("CORRAL_TMUX_SOCKET", socket)
    monkeypatch.setenv("CORRAL_AUTOSTART", "1")
    made = Env(runtime_dir, socket)
    yield made
    try:
        stop_everything(runtime_dir)
    finally:
        made.tmux.kill()
        shutil.rmtree(parent, ignore_errors=True)


def view(env: Env, repo: Path, title: str) -> dict[str, Any]:
    return env.client.call("GET", f"/v1/repos/{repo.name}/instances/{title}", timeout=20)


def wait_status(env: Env, repo: Path, title: str, *statuses: str, timeout: float = 30) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        current = view(env, repo, title)
        return current if current["status"] in statuses else None

    return wait_until(reached, timeout, f"{title} to be {' or '.join(statuses)}")


def test_an_agent_started_listed_answered_captured_paused_resumed_restarted_and_killed(
    env: Env, git_repo: Path
) -> None:
    out = ok(git_repo, "instance", "start", "fix-login", "--program", SIM, "--prompt", "/edit a.txt hi")
    assert out.startswith("started fix-login (tmux, ") and "on branch corral/fix-login" in out

    waiting = wait_status(env, git_repo, "fix-login", "waiting")
    assert "permission" in waiting["reason"]
    table = ok(git_repo, "instance", "list").splitlines()
    assert table[0].split() == ["TITLE", "STATUS", "REASON", "MODE", "PROGRAM", "BRANCH", "TASK", "RESTARTS"]
    assert table[1].split()[:2] == ["fix-login", "waiting"] and "permission" in table[1]
    listed = json.loads(ok(git_repo, "instance", "list", "--json", "--status", "waiting,running"))
    assert [(v["title"], v["status"], v["branch"]) for v in listed] == [
        ("fix-login", "waiting", "corral/fix-login")
    ]
    assert listed[0]["reason"] == waiting["reason"] and listed[0]["program"] == SIM
    assert json.loads(ok(git_repo, "instance", "list", "--json", "--status", "paused")) == []

    ok(git_repo, "instance", "send-keys", "fix-log", "1")  # a unique prefix is enough
    worktree = Path(waiting["worktree"])
    wait_until(lambda: (worktree / "a.txt").exists(), 20, "the edit")
    wait_status(env, git_repo, "fix-login", "ready")
    screen = ok(git_repo, "instance", "capture", "login", "--lines", "20")  # and a unique substring
    assert "/edit a.txt hi" in screen and "a.txt" in screen
    everything = json.loads(ok(git_repo, "instance", "capture", "fix-login", "--all", "--json"))
    assert everything["lines"] is None and "corral-sim" in everything["text"]

    paused = ok(git_repo, "instance", "pause", "fix-login")
    assert paused.startswith("paused fix-login: paused: committed ")
    assert not worktree.exists()
    assert git(git_repo, "show", "corral/fix-login:a.txt").strip() == "hi"
    assert "not running" in fails(git_repo, 1, "instance", "send", "fix-login", "hello")

    assert ok(git_repo, "instance", "resume", "fix-login").startswith("resumed fix-login: loading")
    assert (worktree / "a.txt").read_text().strip() == "hi"
    wait_status(env, git_repo, "fix-login", "ready")
    assert "is not paused" in fails(git_repo, 1, "instance", "resume", "fix-login")

    pid = view(env, git_repo, "fix-login")["metrics"]["pid"]
    assert ok(git_repo, "instance", "restart", "fix-login").startswith("restarted fix-login: loading")
    ready = wait_status(env, git_repo, "fix-login", "ready")
    assert ready["metrics"]["pid"] != pid and ready["restarts"] == 0
    ok(git_repo, "instance", "send", "fix-login", "/echo still here")
    wait_until(lambda: "still here" in ok(git_repo, "instance", "capture", "fix-login"), 20, "the echo")

    assert ok(git_repo, "instance", "kill", "fix-login").startswith("killed fix-login")
    exited = wait_status(env, git_repo, "fix-login", "exited")
    assert exited["reason"] and Path(exited["worktree"]).exists()  # branch and worktree are kept
    assert env.tmux.list_sessions() == []


def test_titles_errors_and_attach(env: Env, git_repo: Path, tmp_path: Path) -> None:
    ok(git_repo, "instance", "start", "fix-login", "--program", SIM)
    ok(git_repo, "instance", "start", "fix-logout", "--program", SIM, "--mode", "pty")

    assert "already exists" in fails(git_repo, 1, "instance", "start", "fix-login", "--program", SIM)
    result = corral(git_repo, "instance", "capture", "fix-log")
    assert result.returncode == 2, result.stderr
    assert "fix-login, fix-logout" in result.stderr and "give more of the title" in result.stderr
    assert "no instance" in fails(git_repo, 1, "instance", "show", "nothing-like-it")
    assert "needs a terminal" in fails(git_repo, 2, "instance", "attach", "fix-logout")

    base = f"/v1/repos/{git_repo.name}/instances"
    request = env.client.request
    assert request("GET", "/v1/repos/nope/instances")[0] == 404
    assert request("GET", f"{base}/nothing-like-it")[0] == 404
    status, body = request("POST", f"{base}/fix-log/kill")
    assert (status, body["matches"]) == (400, ["fix-login", "fix-logout"])
    status, body = request("POST", base, json={"title": "fix-login", "program": SIM})
    assert status == 409 and "already exists" in body["error"]
    status, body = request("POST", base, json={"title": "other", "mode": "vt100"})
    assert status == 400 and "mode" in body["error"]
    status, body = request("POST", base, json={"title": "other", "program": "/no/such/agent"})
    assert status == 400 and "/no/such/agent is not an executable file" in body["error"]
    assert request("POST", base, json={"title": 7})[0] == 400
    wait_status(env, git_repo, "fix-login", "ready")
    status, body = request("POST", f"{base}/fix-login/resume")
    assert status == 409 and "not paused" in body["error"]
    assert request("POST", f"{base}/fix-login/teleport")[0] == 404
    assert request("POST", f"{base}/fix-login/send", json={})[0] == 400

    # attach: run it inside a person's own tmux (another server), see its client on the agent's session,
    # and detach with ctrl-q: only the nested client detaches (C-b d would have detached the outer one)
    terminal = TmuxServer(f"corral-term-{uuid.uuid4().hex[:8]}")
    try:
        before = view(env, git_repo, "fix-login")
        command = f"cd {git_repo} && {CORRAL} instance attach fix-login; echo attach-ended-$?; sleep 60"
        terminal.run(["new-session", "-d", "-s", "outer", "-x", "100", "-y", "30", "sh", "-c", command])
        session = before["session"]

        def clients() -> str:
            return env.tmux.run(["list-clients", "-t", f"={session}", "-F", "#{client_name}"]).strip()

        wait_until(clients, 20, "the attached client")
        terminal.run(["send-keys", "-t", "=outer:", "C-q"])
        wait_until(lambda: not clients(), 20, "the client detached by ctrl-q")
        wait_until(
            lambda: "attach-ended-0" in terminal.run(["capture-pane", "-p", "-t", "=outer:"]),
            20,
            "corral instance attach returning 0 in the outer tmux",
        )
        after = view(env, git_repo, "fix-login")
        assert after["status"] in ("ready", "running") and after["metrics"]["pid"] == before["metrics"]["pid"]
    finally:
        terminal.kill()


def test_an_ended_agent_keeps_its_last_screen_and_a_restart_continues_its_conversation(
    env: Env, git_repo: Path
) -> None:
    ok(git_repo, "instance", "start", "scribe", "--program", SIM, "--prompt", "/echo the first turn")
    wait_until(lambda: "the first turn" in ok(git_repo, "instance", "capture", "scribe"), 30, "the echo")
    wait_status(env, git_repo, "scribe", "ready")

    assert ok(git_repo, "instance", "kill", "scribe").startswith("killed scribe")
    exited = wait_status(env, git_repo, "scribe", "exited")
    assert exited["reason"] == "killed by request"
    listed = json.loads(ok(git_repo, "instance", "list", "--json"))
    assert [(v["title"], v["status"], v["reason"]) for v in listed] == [
        ("scribe", "exited", "killed by request")
    ]
    assert "the first turn" in ok(git_repo, "instance", "capture", "scribe")  # its last screen
    refused = fails(git_repo, 1, "instance", "send", "scribe", "hello")
    assert "has ended (exited: killed by request)" in refused and "corral instance restart scribe" in refused
    assert ok(git_repo, "instance", "kill", "scribe").startswith("killed scribe")  # nothing left: no error

    assert ok(git_repo, "instance", "restart", "scribe").startswith("restarted scribe: loading")
    ready = wait_status(env, git_repo, "scribe", "ready")
    argv = Path(f"/proc/{ready['metrics']['pid']}/cmdline").read_bytes().split(b"\0")
    assert b"--continue" in argv  # the conversation goes on; the task is not started over
    assert b"/echo the first turn" not in b" ".join(argv)
    ok(git_repo, "instance", "send", "scribe", "/echo back again")
    wait_until(lambda: "back again" in ok(git_repo, "instance", "capture", "scribe"), 30, "the second turn")


def test_an_agent_past_its_restart_intensity_stays_failed(env: Env, git_repo: Path) -> None:
    ok(git_repo, "instance", "list")  # the daemon is up
    base = f"/v1/repos/{git_repo.name}/instances"
    crasher = {"title": "crasher", "program": SIM, "flags": ["--crash-after", "0.2"]}
    assert env.client.request("POST", base, json=crasher, timeout=60)[0] == 201
    failed = wait_status(env, git_repo, "crasher", "failed", timeout=60)
    assert "gave up after 3 restarts within 60 s" in failed["reason"]
    # Time passes (another agent comes up): the failed status and its reason stay as they were.
    ok(git_repo, "instance", "start", "witness", "--program", SIM)
    wait_status(env, git_repo, "witness", "ready")
    again = view(env, git_repo, "crasher")
    assert (again["status"], again["reason"]) == ("failed", failed["reason"])
    listed = json.loads(ok(git_repo, "instance", "list", "--json"))
    assert [v["status"] for v in listed] == ["failed", "ready"]
