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

from actors.store import Store
from frontends.daemon.lock import pid_alive, read_pid
from tests.conftest import git
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


def _branches(repo: Path) -> set[str]:
    return set(git(repo, "branch", "--format=%(refname:short)").split())


def _deleted(repo: Path, *args: str) -> dict[str, Any]:
    return json.loads(ok(repo, "instance", "delete", *args, "--yes", "--json"))


def test_delete_refuses_a_running_instance_and_unmerged_work_then_removes_row_worktree_and_branch(
    env: Env, git_repo: Path
) -> None:
    base = f"/v1/repos/{git_repo.name}/instances"
    prompt = "/edit notes.txt hello\n/commit add notes"
    out = ok(git_repo, "instance", "start", "notes", "--program", SIM, "--prompt", prompt, "--json")
    worktree = Path(json.loads(out)["worktree"])
    wait_status(env, git_repo, "notes", "waiting")  # the permission prompt
    ok(git_repo, "instance", "send-keys", "notes", "1")
    wait_until(lambda: "add notes" in git(worktree, "log", "-1", "--format=%s"), 30, "the commit")
    wait_status(env, git_repo, "notes", "ready")

    # running: refused, with the command that ends it; nothing changes
    refused = fails(git_repo, 1, "instance", "delete", "notes", "--yes")
    assert 'instance "notes" is ready' in refused and "kill it first (corral instance kill notes)" in refused
    status, body = env.client.request("DELETE", f"{base}/notes")
    assert status == 409 and "kill it first" in body["error"]
    ok(git_repo, "instance", "kill", "notes")

    # unmerged: its commit and an uncommitted file would be lost, named; nothing is deleted
    (worktree / "scratch.txt").write_text("draft\n")
    refused = fails(git_repo, 1, "instance", "delete", "notes", "--yes")
    assert "1 commit on branch corral/notes that no other branch" in refused and "add notes" in refused
    assert f"1 uncommitted change in {worktree} (scratch.txt)" in refused
    assert "Nothing was deleted" in refused and "corral instance delete notes --force" in refused
    assert worktree.exists() and "corral/notes" in _branches(git_repo)
    assert list(_listed(git_repo)) == ["notes"]

    # the exact title only, and --yes to do it: without it, what would go is said and nothing goes
    assert "exact title" in fails(git_repo, 2, "instance", "delete", "note", "--force", "--yes")
    said = fails(git_repo, 2, "instance", "delete", "notes", "--force")
    assert f"its worktree {worktree}, its branch corral/notes" in said and "it discards 1 commit" in said
    assert "Nothing was deleted" in said and "corral instance delete notes --force --yes" in said
    assert worktree.exists() and "corral/notes" in _branches(git_repo)
    assert env.client.request("DELETE", f"{base}/notes?force=maybe")[0] == 400
    assert env.client.request("DELETE", f"{base}/notes?forse=true")[0] == 400
    assert worktree.exists()

    deleted = _deleted(git_repo, "notes", "--force")
    assert (deleted["title"], deleted["status"], deleted["worktree"], deleted["branch"]) == (
        "notes",
        "exited",
        str(worktree),
        "corral/notes",
    )
    assert deleted["kept"] == [] and len(deleted["discarded"]) == 2 and not deleted["dry_run"]
    assert not worktree.exists() and "corral/notes" not in _branches(git_repo)
    assert str(worktree) not in git(git_repo, "worktree", "list")
    assert _listed(git_repo) == {}
    with Store.open() as store:
        assert store.list_instances(git_repo.name) == []
    assert env.client.request("DELETE", f"{base}/notes")[0] == 404
    ok(git_repo, "instance", "start", "notes", "--program", SIM)  # the title is free again


def test_delete_without_force_when_the_work_is_merged_and_after_a_daemon_restart(
    env: Env, git_repo: Path
) -> None:
    prompt = "/edit merged.txt kept\n/commit keep this"
    out = ok(git_repo, "instance", "start", "merged", "--program", SIM, "--prompt", prompt, "--json")
    worktree = Path(json.loads(out)["worktree"])
    wait_status(env, git_repo, "merged", "waiting")
    ok(git_repo, "instance", "send-keys", "merged", "1")
    wait_until(lambda: "keep this" in git(worktree, "log", "-1", "--format=%s"), 30, "the commit")
    ok(git_repo, "instance", "kill", "merged")
    git(git_repo, "merge", "--ff-only", "corral/merged")  # its work is on main now: nothing would be lost
    ok(git_repo, "instance", "start", "idle", "--program", SIM)
    ok(git_repo, "instance", "kill", "idle")

    out = ok(git_repo, "instance", "delete", "merged", "--yes")
    assert out.startswith(f"deleted merged (exited): its record, its worktree {worktree}, its branch")
    assert "corral/merged" not in _branches(git_repo) and (git_repo / "merged.txt").exists()

    _restart_daemon(env, git_repo)
    assert list(_listed(git_repo)) == ["idle"]  # ended before the restart: listed, and deletable
    assert _deleted(git_repo, "idle")["branch"] == "corral/idle"
    assert _listed(git_repo) == {} and "corral/idle" not in _branches(git_repo)


def test_delete_keeps_a_tasks_shared_worktree_and_a_branch_corral_did_not_create(
    env: Env, git_repo: Path
) -> None:
    shared = ("--task", "login", "--worktree", "shared", "--program", SIM)
    coder = json.loads(ok(git_repo, "instance", "start", "login-coder", *shared, "--json"))
    ok(git_repo, "instance", "start", "login-review", *shared)
    worktree = Path(coder["worktree"])
    (worktree / "wip.txt").write_text("the task's work in progress\n")
    ok(git_repo, "instance", "kill", "login-coder")

    deleted = _deleted(git_repo, "login-coder")  # no --force: nothing of the task's is at risk
    assert (deleted["worktree"], deleted["branch"], deleted["discarded"]) == ("", "", [])
    assert deleted["kept"] == ["the worktree and branch corral/login of task login, shared by its agents"]
    assert (worktree / "wip.txt").exists() and "corral/login" in _branches(git_repo)
    assert list(_listed(git_repo)) == ["login-review"]
    wait_status(env, git_repo, "login-review", "ready")

    git(git_repo, "branch", "feature")
    out = ok(git_repo, "instance", "start", "on-feature", "--program", SIM, "--branch", "feature", "--json")
    feature_tree = Path(json.loads(out)["worktree"])
    ok(git_repo, "instance", "kill", "on-feature")
    out = ok(git_repo, "instance", "delete", "on-feature", "--yes")
    assert "kept branch feature: corral did not create it" in out
    assert not feature_tree.exists() and "feature" in _branches(git_repo)


def test_a_paused_instance_is_killed_then_restarted_or_deleted(env: Env, git_repo: Path) -> None:
    out = ok(git_repo, "instance", "start", "held", "--program", SIM, "--json")
    worktree = Path(json.loads(out)["worktree"])
    wait_status(env, git_repo, "held", "ready")
    ok(git_repo, "instance", "pause", "held")
    refused = fails(git_repo, 1, "instance", "delete", "held", "--yes")
    assert 'instance "held" is paused' in refused and "corral instance kill held" in refused
    out = ok(git_repo, "instance", "kill", "held")
    assert out.startswith("killed held: exited (killed by request while paused (its work is on branch")
    assert not worktree.exists()
    ok(git_repo, "instance", "restart", "held")  # its worktree is put back first
    wait_status(env, git_repo, "held", "ready")
    assert worktree.exists()
    ok(git_repo, "instance", "kill", "held")
    assert _deleted(git_repo, "held")["branch"] == "corral/held"
    assert not worktree.exists() and "corral/held" not in _branches(git_repo)
