"""A task carried through its lifecycle by the daemon (issue 4 §2): each transition's outbox item starts the
next agent — coder, reviewer, readiness — which commits in the task's shared worktree and signals the next
step, until the task is done. A real daemon process, tmux on a private socket, corral-sim in every role."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from actors.store import Store
from frontends.daemon.lock import pid_alive, read_pid
from tests.conftest import git
from tests.integration import test_instances_api as api
from tests.integration.cli_kit import fails, ok
from tests.integration.test_instances_api import SIM, Env
from tests.unit.actor_kit import wait_until

env = api.env  # the fixture: a daemon on a private runtime dir and tmux socket, always stopped

PLAN = """# Typo

## Wave 1: Fix

### Task 1: Fix the typo

Fix the typo in the README.
"""


def _configure(repo: Path, monkeypatch: pytest.MonkeyPatch, **sim: str) -> None:
    """The sim plays every role and never asks permission; `sim` sets more of its CORRAL_SIM_* options,
    through the daemon's environment ([resources.env] may not set CORRAL_* variables)."""
    config = repo / ".corral" / "config.toml"
    config.parent.mkdir(exist_ok=True)
    config.write_text(f'default_program = "{SIM}"\n')
    for name, value in {"auto_approve": "1", **sim}.items():
        monkeypatch.setenv(f"CORRAL_SIM_{name.upper()}", value)


def _task(repo: Path) -> str:
    with Store.open() as store:
        return store.get_task(store.get_project(repo.name).id, "t").display_status


def _wait_done(repo: Path, timeout: float = 60) -> None:
    try:
        wait_until(lambda: _task(repo) == "done", timeout, "task t to be done")
    except AssertionError:
        with Store.open() as store:
            project = store.get_project(repo.name)
            audit = [f"{a.level} {a.kind} {a.message}" for a in store.list_audit(project.id, limit=60)]
            rows = [(r.title, r.status, r.reason) for r in store.list_instances(repo.name)]
        raise AssertionError(
            f"task t is {_task(repo)}; outbox {_outbox(repo)}; instances {rows}; audit "
            + "\n".join(reversed(audit))
        ) from None


def _settled(repo: Path) -> list[tuple[str, str, str]]:
    def all_settled() -> list[tuple[str, str, str]] | None:
        rows = _outbox(repo)
        return rows if all(status != "pending" for _, status, _ in rows) else None

    return wait_until(all_settled, 30, "every outbox item to be settled")


def _started(repo: Path) -> list[str]:
    with Store.open() as store:
        project = store.get_project(repo.name)
        rows = store.list_audit(project.id, task="t", limit=1000)
    return [a.message.split()[2] for a in reversed(rows) if a.kind == "task_agent_started"]


def _outbox(repo: Path) -> list[tuple[str, str, str]]:
    with Store.open() as store:
        rows = store._conn.execute("SELECT kind, status, last_error FROM outbox ORDER BY id")
        return [tuple(row) for row in rows]


def test_a_task_goes_from_implement_start_to_done_through_coder_reviewer_and_readiness(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(git_repo, monkeypatch)
    ok(git_repo, "instance", "list")  # the daemon, and the project's supervisor, run
    ok(git_repo, "task", "create", "t", "--content", PLAN)
    ok(git_repo, "task", "transition", "t", "implement_start")
    _wait_done(git_repo)

    assert [(kind, status) for kind, status, _ in _settled(git_repo)] == [
        ("enter_implementing", "done"),
        ("enter_reviewing", "done"),
        ("enter_verifying", "done"),
        ("enter_done", "done"),
    ]
    assert _started(git_repo) == ["t-coder", "t-review-1", "t-verify-1"]
    with Store.open() as store:
        coder = store.get_instance(git_repo.name, "t-coder")
        rows = {r.title: r for r in store.list_instances(git_repo.name)}
    assert coder.worktree_mode == "shared" and coder.branch == "corral/t" and coder.agent_type == "coder"
    assert {rows[t].worktree_path for t in ("t-coder", "t-review-1", "t-verify-1")} == {coder.worktree_path}
    assert all(r.status == "exited" for r in rows.values())  # done stopped them all
    log = git(git_repo, "log", "--format=%s", "corral/t")
    assert "sim: " in log  # the coder's commit, on the task's branch


def test_a_daemon_killed_while_the_coder_works_does_not_start_a_second_coder(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(git_repo, monkeypatch, slow_start="4")
    ok(git_repo, "instance", "list")
    ok(git_repo, "task", "create", "t", "--content", PLAN)
    ok(git_repo, "task", "transition", "t", "implement_start")

    def coder_created() -> str | None:
        with Store.open() as store:
            found = [r for r in store.list_instances(git_repo.name) if r.title == "t-coder"]
        return found[0].created_at if found else None

    created = wait_until(coder_created, 30, "t-coder to be started")
    pid = read_pid(env.client.paths.pid_file)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid), 30, "the daemon to end")
    ok(git_repo, "instance", "list")  # a new daemon: it re-adopts t-coder and finds the outbox item
    _wait_done(git_repo, 90)

    assert coder_created() == created  # the same t-coder, never started a second time
    assert _started(git_repo).count("t-coder") <= 1
    assert all(status == "done" for _, status, _ in _settled(git_repo))


def test_a_transition_no_one_announces_is_found_by_the_projects_sweep_which_starts_the_project(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(git_repo, monkeypatch)
    ok(git_repo, "daemon", "start")  # no repository's supervisor runs yet
    status = env.client.call("GET", "/v1/status")
    projects = next(c for c in status["supervision"]["children"] if c["id"] == "projects")
    assert projects["state"] == "running"
    ok(git_repo, "task", "create", "t", "--content", PLAN)
    ok(git_repo, "task", "transition", "t", "implement_start")  # commits an outbox item, pokes nobody
    _wait_done(git_repo)
    assert _started(git_repo) == ["t-coder", "t-review-1", "t-verify-1"]


def test_a_planner_that_cannot_start_makes_the_task_wait_with_the_reason_and_retry_runs_it_again(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = git_repo / ".corral" / "config.toml"
    config.parent.mkdir(exist_ok=True)
    config.write_text('default_program = "no-such-agent-program"\n')
    monkeypatch.setenv("CORRAL_SIM_AUTO_APPROVE", "1")
    ok(git_repo, "daemon", "start")
    ok(git_repo, "task", "create", "t", "--content", "Fix the typo in the README.")
    ok(git_repo, "task", "transition", "t", "plan_start")

    def waiting() -> dict | None:
        [task] = json.loads(ok(git_repo, "task", "list", "--json"))
        return task["waiting"]

    wait = wait_until(waiting, 30, "task t to wait for a person")
    assert wait["kind"] == "start_failed" and "starting its planner failed" in wait["reason"]
    assert "no-such-agent-program" in wait["reason"]
    assert wait["commands"][0] == "corral task retry t"
    table = ok(git_repo, "task", "list")
    assert "WAITING FOR YOU" in table.splitlines()[0] and "starting its planner failed" in table
    assert "\n  corral task retry t" in table  # the command, where a person looks
    shown = ok(git_repo, "task", "show", "t")
    assert "waiting for you:" in shown and "corral task retry t" in shown

    config.write_text(f'default_program = "{SIM}"\n')  # the person fixes the cause
    assert "retrying enter_planning" in ok(git_repo, "task", "retry", "t")
    wait_until(lambda: _task(git_repo) == "planned", 60, "the planner to write the plan")
    assert waiting() is None
    assert "no failed step to retry" in fails(git_repo, 1, "task", "retry", "t")


def test_implementing_a_plan_that_cannot_be_read_is_refused_naming_the_line_and_changes_nothing(
    env: Env, git_repo: Path
) -> None:
    broken = "# Plan\n\n## Wave 1: Go\n\n### Task one without a number\n\nDo it.\n"
    ok(git_repo, "task", "create", "t", "--content", broken)
    message = fails(git_repo, 1, "task", "implement", "t")
    assert "cannot start implementing: its plan cannot be read" in message and ":5:" in message
    assert "corral task update-content t" in message
    assert _task(git_repo) == "ready"
    with Store.open() as store:
        project = store.get_project(git_repo.name)
        assert [a.kind for a in store.list_audit(project.id, task="t")] == ["task_created"]
        assert store.pending_outbox(project_id=project.id) == []


def test_a_step_set_by_hand_shows_that_no_agent_runs_it_and_retry_starts_it(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(git_repo, monkeypatch)
    ok(git_repo, "daemon", "start")
    ok(git_repo, "task", "create", "t", "--content", "Fix the typo in the README.")
    ok(git_repo, "task", "set-status", "t", "implementing", "--force")

    def waiting() -> dict | None:
        [task] = json.loads(ok(git_repo, "task", "list", "--json"))
        return task["waiting"]

    wait = wait_until(waiting, 30, "task t to say no agent runs its step")
    assert wait["kind"] == "no_step" and "set by hand" in wait["reason"]
    assert wait["commands"][0] == "corral task retry t"
    assert ok(git_repo, "task", "retry", "t") == "t: starting its implementing step\n"
    _wait_done(git_repo)
    assert _started(git_repo) == ["t-coder", "t-review-1", "t-verify-1"]
