"""Stalls and chaos (issue 8): printed tables, no timing asserts (make bench: pytest -q -s -p no:randomly
tests/perf). Correctness is asserted — the campaign's invariants, the task finishing — timings never.

1. `corral chaos --faults 1000` (CORRAL_BENCH_CHAOS_FAULTS; CORRAL_BENCH_CHAOS_SEED, else random): every
   invariant holds; the report is printed, with how long the campaign took.
2. An agent killed mid-turn → its task moving again, goal median ≤ 5 s: a task with one coder (a brief, no
   waves), kill -9 of the coder while its status says it works; from the kill until the task leaves
   implementing (the restarted coder was told its task again, did it, and signalled). Broken down: kill → a
   new agent process, kill → its task told again; the rest is the agent's own turn.
3. A missing agent detected → started again, goal median ≤ 3 s: the coder idles without signalling
   (`sim-fault: silent`), its tmux session is killed; from the kill until a new agent process with its title
   runs.

RUNS (CORRAL_BENCH_STALL_RUNS, default 7) runs of 2 and 3, each on a fresh task of one daemon.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from actors.store import Store
from frontends.cli.chaos_procs import campaign_processes
from tests.integration import test_instances_api as api
from tests.integration.cli_kit import CORRAL, clean_env, ok
from tests.integration.test_instances_api import Env
from tests.integration.test_task_flow import _configure
from tests.perf.report import median, percentile, print_table
from tests.unit.actor_kit import wait_until

pytestmark = pytest.mark.bench

env = api.env  # the fixture: a daemon on a private runtime dir and tmux socket, always stopped

FAULTS = int(os.environ.get("CORRAL_BENCH_CHAOS_FAULTS", "1000"))
RUNS = int(os.environ.get("CORRAL_BENCH_STALL_RUNS", "7"))
KILLED_GOAL_S = 5.0
MISSING_GOAL_S = 3.0
_POLL_S = 0.01


def _noise(values: list[float]) -> str:
    """The spread of a measure, so a reader can tell a goal missed by noise from one missed for real."""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"min {min(values):.2f}, max {max(values):.2f}, stdev {spread:.2f} s"


# --- 1. the campaign --------------------------------------------------------------------------------------


@pytest.mark.timeout(6 * 3600)
def test_bench_a_chaos_campaign_of_a_thousand_faults_keeps_every_invariant(tmp_path: Path) -> None:
    from frontends.cli.chaos_report import ChaosReport, format_report

    args = ["--faults", str(FAULTS), "--json"]
    if "CORRAL_BENCH_CHAOS_SEED" in os.environ:
        args += ["--seed", os.environ["CORRAL_BENCH_CHAOS_SEED"]]
    began = time.monotonic()
    done = subprocess.run(
        [CORRAL, "chaos", *args],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # a progress line per fault: thousands
        text=True,
        timeout=6 * 3600 - 60,
        check=False,
    )
    took = time.monotonic() - began
    import msgspec

    report = msgspec.json.decode(done.stdout, type=ChaosReport)
    print(f"\n== chaos: {FAULTS} faults")
    print(format_report(report))
    print(f"the campaign took {took / 60:.1f} min ({took / max(1, report.faults_injected):.2f} s per fault)")
    assert done.returncode == 0 and report.ok, json.loads(done.stdout)["invariants"]
    assert report.faults_injected == FAULTS


# --- 2 and 3: one daemon, fresh tasks --------------------------------------------------------------------


def _instance(env: Env, repo: Path, title: str) -> dict | None:
    status, body = env.client.request("GET", f"/v1/repos/{repo.name}/instances/{title}", timeout=5)
    return body if status == 200 else None


def _status(repo: Path, task: str) -> str:
    with Store.open() as store:
        return store.get_task(store.get_project(repo.name).id, task).status


def _agents(env: Env, title: str) -> list[int]:
    """The live processes of agent `title` (from /proc, by its environment)."""
    home = Path(os.environ["CORRAL_HOME"])
    procs = campaign_processes(home, env.tmux.socket)
    return [p.pid for p in procs if p.kind == "agent" and p.title == title]


def _working(env: Env, repo: Path, title: str) -> int | None:
    """The agent's pid while its status says it works (mid-turn), else None."""
    view = _instance(env, repo, title)
    if view is None or view["status"] != "running" or not view["reason"].startswith("working"):
        return None
    pids = _agents(env, title)
    return pids[0] if len(pids) == 1 else None


def _notes_after(repo: Path, title: str, after: str, text: str) -> str | None:
    with Store.open() as store:
        project = store.get_project(repo.name)
        rows = store.list_audit(project.id, instance=title, limit=200)
    return next((r.ts for r in reversed(rows) if r.ts > after and text in r.message), None)


def _stamp_s(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_bench_an_agent_killed_mid_turn_and_its_task_moving_again(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(git_repo, monkeypatch)
    ok(git_repo, "instance", "list")  # the daemon, with the sim's think time in its environment
    moving, back, told = [], [], []
    for run in range(RUNS):
        task, title = f"k{run}", f"k{run}-coder"
        ok(git_repo, "task", "create", task, "--content", "Fix the typo.")
        ok(git_repo, "task", "transition", task, "implement_start")
        pid = wait_until(lambda: _working(env, git_repo, title), 60, f"{title} at work")  # noqa: B023
        killed_wall, killed = time.time(), time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        new_pid = None
        while _status(git_repo, task) == "implementing":
            if new_pid is None and (pids := [p for p in _agents(env, title) if p != pid]):
                new_pid = pids[0]
                back.append(time.perf_counter() - killed)
            if time.perf_counter() - killed > 120:
                raise AssertionError(f"{task} did not move within 120 s of its coder's kill")
            time.sleep(_POLL_S)
        moving.append(time.perf_counter() - killed)
        stamp = _notes_after(git_repo, title, "", "told it was restarted")
        if stamp is not None:
            told.append(_stamp_s(stamp) - killed_wall)
        wait_until(lambda: _status(git_repo, task) == "done", 120, f"{task} done")  # noqa: B023
    rows: list[tuple[str, str, str, bool | None]] = [
        (f"kill -9 mid-turn → task moving again, median of {len(moving)}", f"{median(moving):.2f} s",
         f"≤ {KILLED_GOAL_S:g} s", median(moving) <= KILLED_GOAL_S),
        ("  noise", _noise(moving), "", None),
        ("  p90", f"{percentile(moving, 90):.2f} s", "", None),
        ("  kill → a new agent process (median)", f"{median(back):.2f} s" if back else "-", "", None),
        ("  kill → restarted and told its task again (median)", f"{median(told):.2f} s" if told else "-", "",
         None),
    ]  # fmt: skip
    print_table("stalls: an agent killed mid-turn → its task moving again", rows)


def test_bench_a_missing_agent_detected_and_started_again(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(git_repo, monkeypatch)
    ok(git_repo, "instance", "list")
    started = []
    for run in range(RUNS):
        task, title = f"m{run}", f"m{run}-coder"
        ok(git_repo, "task", "create", task, "--content", "Fix the typo.\n\nsim-fault: silent roles=coder\n")
        ok(git_repo, "task", "transition", task, "implement_start")
        view = wait_until(
            lambda: (v := _instance(env, git_repo, title)) and v["status"] == "ready" and v,  # noqa: B023
            60,
            f"{title} idle at its prompt",
        )
        [pid] = wait_until(lambda: _agents(env, title), 10, f"{title}'s process")  # noqa: B023
        killed = time.perf_counter()
        env.tmux.kill_session(view["session"])
        while not [p for p in _agents(env, title) if p != pid]:
            if time.perf_counter() - killed > 60:
                raise AssertionError(f"{title} was not started again within 60 s of its session's end")
            time.sleep(_POLL_S)
        started.append(time.perf_counter() - killed)
        ok(git_repo, "task", "transition", task, "cancel")
    rows: list[tuple[str, str, str, bool | None]] = [
        (f"session killed → agent started again, median of {len(started)}", f"{median(started):.2f} s",
         f"≤ {MISSING_GOAL_S:g} s", median(started) <= MISSING_GOAL_S),
        ("  noise", _noise(started), "", None),
        ("  p90", f"{percentile(started, 90):.2f} s", "", None),
    ]  # fmt: skip
    print_table("stalls: a missing agent (its tmux session killed) → started again", rows)
