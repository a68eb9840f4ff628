"""Ended instances (issue 8 §5): an instance whose agent exited or failed stays listed — across a daemon
restart too, as its row says — until a person restarts it or deletes it (`corral instance delete`: its row,
worktree and branch, refusing unmerged work without --force). A real daemon process, tmux on a private
socket, a real git repository, corral-sim as the agent."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from frontends.daemon.lock import pid_alive, read_pid
from tests.integration import test_instances_api as api
from tests.integration.cli_kit import fails, ok
from tests.integration.test_instances_api import SIM, Env, view, wait_status
from tests.unit.actor_kit import wait_until

env = api.env  # the fixture: a daemon on a private runtime dir and tmux socket, always stopped


def _restart_daemon(env: Env, repo: Path) -> None:
    """Stop the daemon with SIGTERM (an orderly exit: its heart does not restart it) and start a new one."""
    pid = read_pid(env.client.paths.pid_file)
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not pid_alive(pid), 30, "the daemon to end")
    ok(repo, "instance", "list")  # starts a new daemon


def _listed(repo: Path) -> dict[str, dict[str, Any]]:
    return {v["title"]: v for v in json.loads(ok(repo, "instance", "list", "--json"))}


def test_ended_instances_are_still_listed_after_a_daemon_restart_and_can_be_restarted(
    env: Env, git_repo: Path
) -> None:
    ok(git_repo, "instance", "start", "finished", "--program", SIM, "--prompt", "/exit 0")
    ok(git_repo, "instance", "start", "killed", "--program", SIM, "--prompt", "/echo the first turn")
    crasher = {"title": "crasher", "program": SIM, "flags": ["--crash-after", "0.2"]}
    base = f"/v1/repos/{git_repo.name}/instances"
    assert env.client.request("POST", base, json=crasher, timeout=60)[0] == 201
    ok(git_repo, "instance", "start", "alive", "--program", SIM)
    wait_status(env, git_repo, "finished", "exited")
    wait_status(env, git_repo, "killed", "ready")
    ok(git_repo, "instance", "kill", "killed")
    failed = wait_status(env, git_repo, "crasher", "failed", timeout=60)
    wait_status(env, git_repo, "alive", "ready")
    before = _listed(git_repo)

    _restart_daemon(env, git_repo)
    after = _listed(git_repo)
    assert list(after) == ["finished", "killed", "crasher", "alive"]  # in start order, as before
    for title in ("finished", "killed", "crasher"):
        assert (after[title]["status"], after[title]["reason"]) == (
            before[title]["status"],
            before[title]["reason"],
        ), title
        assert after[title]["status_age_s"] >= 0 and after[title]["worktree"] == before[title]["worktree"]
    assert after["killed"]["reason"] == "killed by request"
    assert after["crasher"]["status"] == "failed" and after["crasher"]["reason"] == failed["reason"]
    table = ok(git_repo, "instance", "list")
    assert "killed by request" in table and "gave up after" in table
    assert view(env, git_repo, "kill")["status"] == "exited"  # resolved by a prefix, shown from its row

    refused = fails(git_repo, 1, "instance", "start", "killed", "--program", SIM)
    assert "has ended" in refused and "corral instance restart killed" in refused
    assert "corral instance delete killed" in refused
    refused = fails(git_repo, 1, "instance", "send", "killed", "hello")
    assert "corral instance restart killed" in refused

    assert ok(git_repo, "instance", "restart", "killed").startswith("restarted killed: loading")
    ready = wait_status(env, git_repo, "killed", "ready")
    argv = Path(f"/proc/{ready['metrics']['pid']}/cmdline").read_bytes().split(b"\0")
    assert b"--continue" in argv  # continuing its conversation, in its worktree
    assert ready["worktree"] == before["killed"]["worktree"]
    assert ready["session"] == before["killed"]["session"]
    ok(git_repo, "instance", "send", "killed", "/echo back again")
    wait_until(lambda: "back again" in ok(git_repo, "instance", "capture", "killed"), 30, "the echo")
    assert _listed(git_repo)["finished"]["status"] == "exited"
