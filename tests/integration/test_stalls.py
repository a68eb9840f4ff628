"""No silent stalls (issue 8 §2): an agent that was killed, restarted, lost or that forgot its signal never
leaves its task stuck without a word. A real daemon process, tmux on a private socket, corral-sim playing
every role (its `sim-fault: silent` does the work but never sends the step's signal, as a real agent that
forgets does), real git."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from actors.store import Store
from frontends.daemon.lock import pid_alive, read_pid
from tests.integration import test_instances_api as api
from tests.integration.cli_kit import ok
from tests.integration.test_instances_api import Env
from tests.integration.test_task_flow import _configure, _started, _task, _wait_done
from tests.integration.test_waves_flow import _audit, _plan, _task_commits, _wave_rows
from tests.unit.actor_kit import wait_until

env = api.env  # the fixture: a daemon on a private runtime dir and tmux socket, always stopped


def _set_ui(repo: Path, **ui: object) -> None:
    config = repo / ".corral" / "config.toml"
    lines = [config.read_text(), "[ui]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in ui.items()]
    config.write_text("\n".join(lines) + "\n")


def _waiting(repo: Path) -> dict | None:
    [task] = json.loads(ok(repo, "task", "list", "--json"))
    return task["waiting"]


def _notes(repo: Path, title: str) -> list[str]:
    with Store.open() as store:
        project = store.get_project(repo.name)
        rows = store.list_audit(project.id, instance=title, limit=2000)
    return [a.message for a in reversed(rows) if a.kind == "instance_note"]


def _commits(repo: Path) -> list[str]:
    """The `Task N` commits on the task's branch ([] before the branch exists)."""
    try:
        return _task_commits(repo)
    except subprocess.CalledProcessError:
        return []


def _agent_pid(env: Env, repo: Path, title: str) -> int:
    view = env.client.call("GET", f"/v1/repos/{repo.name}/instances/{title}", timeout=20)
    return int(view["metrics"]["pid"])


def test_a_wave_agent_killed_while_idle_is_restarted_and_given_its_task_again(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(git_repo, monkeypatch)
    ok(git_repo, "instance", "list")
    # Task 2 does its work but does not signal the first time: it sits at its prompt, its task running.
    ok(git_repo, "task", "create", "t", "--content", _plan(marks={2: "sim-fault: silent-once"}, waves=1))
    ok(git_repo, "task", "transition", "t", "implement_start")
    wait_until(lambda: _wave_rows(git_repo).get(1, ("",))[0] == "complete", 60, "task 1 complete")
    wait_until(lambda: "Task 2" in _commits(git_repo), 60, "task 2's work committed")
    assert _wave_rows(git_repo)[2][0] == "running"  # no signal: still running

    os.kill(_agent_pid(env, git_repo, "t-W1-T2"), signal.SIGKILL)

    _wait_done(git_repo, 120)
    assert _wave_rows(git_repo)[2] == ("complete", 1)  # the same attempt, finished after the restart
    notes = _notes(git_repo, "t-W1-T2")
    assert any("told it was restarted, and given its task again" in n for n in notes), notes


def test_an_agent_idle_without_its_signal_is_nudged_once_and_then_finishes(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(git_repo, monkeypatch)
    _set_ui(git_repo, idle_nudge_s=1)
    ok(git_repo, "instance", "list")
    ok(git_repo, "task", "create", "t", "--content", "Fix the typo.\n\nsim-fault: silent-once roles=coder\n")
    ok(git_repo, "task", "transition", "t", "implement_start")
    _wait_done(git_repo, 120)
    nudges = _audit(git_repo, "agent_nudged")
    assert len(nudges) == 1 and nudges[0].startswith("t: nudged t-coder: idle "), nudges
    assert _started(git_repo) == ["t-coder", "t-review-1", "t-verify-1"]


def test_an_agent_that_never_signals_makes_the_task_wait_for_a_person_who_moves_it_on(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(git_repo, monkeypatch)
    _set_ui(git_repo, idle_nudge_s=1)
    ok(git_repo, "instance", "list")
    ok(git_repo, "task", "create", "t", "--content", "Fix the typo.\n\nsim-fault: silent roles=coder\n")
    ok(git_repo, "task", "transition", "t", "implement_start")

    wait = wait_until(lambda: _waiting(git_repo), 60, "task t to wait for a person")
    assert wait["kind"] == "agent_idle" and wait["agent"] == "t-coder"
    assert "t-coder is idle at its prompt and has not signalled" in wait["reason"]
    assert "nudged" in wait["reason"]
    assert wait["commands"] == [
        "corral instance attach t-coder",
        "corral instance send t-coder 'TEXT'",
        "corral task transition t implement_finished",
    ]
    assert "t-coder is idle at its prompt" in ok(git_repo, "task", "list")
    assert len(_audit(git_repo, "agent_nudged")) == 1

    ok(git_repo, "task", "transition", "t", "implement_finished")  # the person checked the work
    wait_until(lambda: _task(git_repo) in ("reviewing", "verifying", "done"), 30, "the task to move on")
    assert _waiting(git_repo) is None


def test_agents_killed_with_their_whole_tmux_server_come_back_and_finish_the_wave(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(git_repo, monkeypatch)
    ok(git_repo, "instance", "list")
    marks = {n: "sim-fault: silent-once" for n in (1, 2, 3)}
    ok(git_repo, "task", "create", "t", "--content", _plan(marks=marks, waves=1, per_wave=3))
    ok(git_repo, "task", "transition", "t", "implement_start")
    wait_until(lambda: _commits(git_repo) == ["Task 1", "Task 2", "Task 3"], 60, "the tasks' work committed")

    env.tmux.kill()  # every agent at once, with the server

    _wait_done(git_repo, 120)
    assert _wave_rows(git_repo) == {1: ("complete", 1), 2: ("complete", 1), 3: ("complete", 1)}


def test_an_agent_whose_session_died_with_the_daemon_down_is_given_its_task_again(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(git_repo, monkeypatch)
    ok(git_repo, "instance", "list")
    ok(git_repo, "task", "create", "t", "--content", "Fix the typo.\n\nsim-fault: silent-once roles=coder\n")
    ok(git_repo, "task", "transition", "t", "implement_start")
    wait_until(lambda: "t-coder" in _started(git_repo), 30, "the coder")
    with Store.open() as store:
        wait_until(lambda: store.get_instance(git_repo.name, "t-coder").worked, 30, "the coder's work")
    pid = read_pid(env.client.paths.pid_file)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid), 10, "the daemon gone")
    env.tmux.kill()  # its session goes while nobody watches

    ok(git_repo, "daemon", "start")
    _wait_done(git_repo, 120)
    notes = _notes(git_repo, "t-coder")
    assert any("told it was restarted, and given its task again" in n for n in notes), notes
