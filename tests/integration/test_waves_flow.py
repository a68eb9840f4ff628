"""A plan run in waves by the daemon (issue 4 §3): each wave's coders in parallel in the task's shared
worktree, the cap promoting pending tasks, a failed task waiting for a decision, review changes going to a
fixer, and a daemon killed again and again mid-wave. A real daemon process, tmux on a private socket,
corral-sim playing every role from CORRAL_AGENT_TYPE (docs/sim.md#roles), real git."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from actors.store import Store
from frontends.daemon.lock import pid_alive, read_pid
from tests.conftest import git
from tests.integration import test_instances_api as api
from tests.integration.cli_kit import ok
from tests.integration.test_instances_api import SIM, Env
from tests.integration.test_task_flow import _configure, _started, _task, _wait_done
from tests.unit.actor_kit import wait_until

env = api.env  # the fixture: a daemon on a private runtime dir and tmux socket, always stopped


def _plan(*, marks: dict[int, str] | None = None, waves: int = 2, per_wave: int = 3) -> str:
    """A plan of `waves` × `per_wave` tasks, each editing a file of its own; `marks` adds a sim marker line
    (e.g. `sim-fault: fail-once`) to a task's body."""
    marks = marks or {}
    lines = ["# Notes", ""]
    number = 0
    for wave in range(1, waves + 1):
        lines += [f"## Wave {wave}: Part {wave}", ""]
        for _ in range(per_wave):
            number += 1
            lines += [f"### Task {number}: Note {number}", "", f"Add a line to notes/n{number}.txt."]
            if number in marks:
                lines.append(marks[number])
            lines.append("")
    return "\n".join(lines)


def _wave_rows(repo: Path) -> dict[int, tuple[str, int]]:
    with Store.open() as store:
        task = store.get_task(store.get_project(repo.name).id, "t")
        return {r.task_number: (r.status, r.attempts) for r in store.list_wave_tasks(task.id)}


def _task_commits(repo: Path) -> list[str]:
    subjects = git(repo, "log", "--format=%s", "corral/t").splitlines()
    return sorted(s.split(":")[0] for s in subjects if s.startswith("Task "))


def _audit(repo: Path, kind: str) -> list[str]:
    with Store.open() as store:
        project = store.get_project(repo.name)
        rows = store.list_audit(project.id, task="t", limit=2000)
    return [a.message for a in reversed(rows) if a.kind == kind]


def _listed_wave(env: Env, repo: Path) -> tuple[object, object]:
    """Task t's `wave` as `corral task list --json` and `GET …/tasks` show it."""
    (cli,) = [t for t in json.loads(ok(repo, "task", "list", "--json")) if t["name"] == "t"]
    (api_row,) = [t for t in env.client.call("GET", f"/v1/repos/{repo.name}/tasks") if t["name"] == "t"]
    return cli["wave"], api_row["wave"]


def _start(repo: Path, content: str) -> None:
    ok(repo, "instance", "list")  # the daemon, and the project's supervisor, run
    ok(repo, "task", "create", "t", "--content", content)
    ok(repo, "task", "transition", "t", "implement_start")


def test_a_two_wave_plan_runs_each_wave_in_parallel_then_review_and_verify_to_done(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(git_repo, monkeypatch)
    _start(git_repo, _plan())
    _wait_done(git_repo, 120)

    started = _started(git_repo)
    waves = [t for t in started if "-W" in t]
    assert sorted(waves) == [f"t-W{1 + (n - 1) // 3}-T{n}" for n in range(1, 7)]  # each exactly once
    assert max(started.index(t) for t in waves[:3]) < min(started.index(t) for t in waves[3:])
    assert started[-2:] == ["t-review-1", "t-verify-1"]
    assert _wave_rows(git_repo) == {n: ("complete", 1) for n in range(1, 7)}
    assert _task_commits(git_repo) == [f"Task {n}" for n in range(1, 7)]
    with Store.open() as store:
        rows = {r.title: r for r in store.list_instances(git_repo.name)}
    assert {rows[t].worktree_path for t in waves} == {rows["t-review-1"].worktree_path}  # one shared worktree
    assert rows["t-W2-T5"].wave == 2
    assert len(_audit(git_repo, "wave_done")) == 2
    shown = ok(git_repo, "task", "show", "t")
    assert "wave tasks:" in shown and "  W2 T6  complete  1 attempt" in shown
    as_json = json.loads(ok(git_repo, "task", "show", "t", "--json"))
    assert [w["status"] for w in as_json["wave_tasks"]] == ["complete"] * 6 and as_json["status"] == "done"


def test_a_cap_of_one_runs_the_wave_tasks_one_at_a_time(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(git_repo, monkeypatch)
    config = git_repo / ".corral" / "config.toml"
    config.write_text(config.read_text() + '[resources]\nprofile = "custom"\nmax_parallel_wave_tasks = 1\n')
    _start(git_repo, _plan(waves=1))
    _wait_done(git_repo, 120)

    with Store.open() as store:
        project = store.get_project(git_repo.name)
        rows = list(reversed(store.list_audit(project.id, task="t", limit=2000)))
    order = [
        ("start", a.message.split()[2]) if a.kind == "task_agent_started" else ("done", a.message.split()[4])
        for a in rows
        if (a.kind == "task_agent_started" and "-W" in a.message) or a.kind == "wave_task_finished"
    ]
    # each task starts only after the one before it finished: start 1, done 1, start 2, done 2, ...
    assert order == [
        ("start", "t-W1-T1"),
        ("done", "1"),
        ("start", "t-W1-T2"),
        ("done", "2"),
        ("start", "t-W1-T3"),
        ("done", "3"),
    ]


def test_a_failed_wave_task_waits_for_a_decision_and_retry_finishes_it(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(git_repo, monkeypatch)
    _start(git_repo, _plan(marks={2: "sim-fault: fail-once"}))

    wait_until(lambda: _wave_rows(git_repo).get(2, ("", 0))[0] == "failed", 60, "task 2 to fail")
    wait_until(
        lambda: any("Retry the failed tasks" in m for m in _audit(git_repo, "task_waiting")),
        30,
        "the question",
    )
    assert _wave_rows(git_repo)[4] == ("pending", 0)  # wave 2 waits for the decision
    deciding = {"wave": 1, "waves": 2, "done": 2, "total": 3, "failed": 1}
    assert _listed_wave(env, git_repo) == (deciding, deciding)
    ok(git_repo, "signal", "emit", "retry_wave", "t")
    _wait_done(git_repo, 120)

    done = {"wave": 2, "waves": 2, "done": 3, "total": 3, "failed": 0}
    assert _listed_wave(env, git_repo) == (done, done)
    assert _wave_rows(git_repo)[2] == ("complete", 2)
    assert _task_commits(git_repo) == [
        f"Task {n}" for n in range(1, 7)
    ]  # the failed attempt committed nothing


def test_review_changes_go_to_a_fixer_and_then_to_done(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(git_repo, monkeypatch)
    _start(git_repo, _plan(waves=1) + "\nsim-review: changes-once\n")
    _wait_done(git_repo, 120)

    started = _started(git_repo)
    assert started[-4:] == ["t-review-1", "t-fix-1", "t-review-2", "t-verify-2"]
    with Store.open() as store:
        task = store.get_task(store.get_project(git_repo.name).id, "t")
    assert task.review_cycle == 1 and task.latest_feedback


def test_a_daemon_killed_again_and_again_mid_wave_still_runs_every_task_exactly_once(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(git_repo, monkeypatch, slow_start="1.5")
    _start(git_repo, _plan())
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    kills = 0
    while kills < 4 and _task(git_repo) != "done":
        # A random point: after 0 or 1 more wave task completes, while another runs, plus up to 0.5 s.
        complete = sum(s == "complete" for s, _ in _wave_rows(git_repo).values()) + rng.choice((0, 1))

        def reached(complete: int = complete) -> bool:
            rows = _wave_rows(git_repo).values()
            running = any(s == "running" for s, _ in rows)
            return _task(git_repo) != "implementing" or (
                running and sum(s == "complete" for s, _ in rows) >= complete
            )

        wait_until(reached, 90, f"{complete} wave tasks complete and one running")
        time.sleep(rng.uniform(0, 0.5))  # not a wait for anything: where in the work the kill lands
        pid = read_pid(env.client.paths.pid_file)
        if pid is None or _task(git_repo) != "implementing":
            break
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda pid=pid: not pid_alive(pid), 30, "the daemon to end")
        kills += 1
        ok(git_repo, "instance", "list")  # a new daemon re-adopts the agents and puts the waves back
    _wait_done(git_repo, 180)

    assert kills >= 1, "the daemon was never killed mid-wave"
    assert _wave_rows(git_repo) == {n: ("complete", 1) for n in range(1, 7)}  # no task was run twice
    waves = [t for t in _started(git_repo) if "-W" in t]
    assert sorted(waves) == sorted(set(waves))  # no duplicate agent
    assert _task_commits(git_repo) == [f"Task {n}" for n in range(1, 7)]  # each task's work done once


def test_default_program_corral_sim_alone_runs_a_task_to_done(env: Env, git_repo: Path) -> None:
    config = git_repo / ".corral" / "config.toml"
    config.parent.mkdir(exist_ok=True)
    config.write_text(f'default_program = "{SIM}"\n')  # nothing else: no auto-yes, no sim switches
    _start(git_repo, _plan(waves=1))
    _wait_done(git_repo, 120)
    assert _task_commits(git_repo) == ["Task 1", "Task 2", "Task 3"]
