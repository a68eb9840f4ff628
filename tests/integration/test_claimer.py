"""The SignalClaimer with real processes: emitters in parallel, the real `corral signal emit`, kill -9.

Every emitter, bridger and daemon stand-in below is a separate Python process on the same SQLite file and
the same wake socket; nothing is mocked. Where the claimer runs in the test process, its clock is a
FakeClock that the test never advances: whatever gets applied got there through a poke, not the tick.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.claimer import ClaimerConfig, ClaimerStatistics, GetClaimerStatistics, SignalClaimer
from actors.clock import FakeClock
from actors.eventbus import EventBus
from actors.sentinels import signal_dirs
from actors.store import Store, default_db_path
from actors.supervision import ChildSpec, SupervisionEnv, SupervisionTree, SupervisorFlags
from actors.wake import RUNTIME_DIR_ENV
from tests.integration.cli_kit import ok
from tests.unit.actor_kit import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("stop_actors")]

CLAIMER = "root/signals"
START = 1000.0  # FakeClock's first reading


@pytest.fixture
def rt(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short private runtime directory, in the environment so that child processes poke it too."""
    path = Path(tempfile.mkdtemp(prefix="corral-rt-", dir="/tmp"))
    monkeypatch.setenv(RUNTIME_DIR_ENV, str(path))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start_claimer(trees: list[SupervisionTree], clock: FakeClock, **config: Any) -> SupervisionTree:
    env = SupervisionEnv.create(clock, seed=5)
    spec = ChildSpec.worker("signals", SignalClaimer, ClaimerConfig(**({"settle_s": 0.0} | config)))
    tree = SupervisionTree.start(
        SupervisorFlags(max_restarts=5, period_s=5), [ChildSpec.worker("bus", EventBus), spec], env=env
    )
    trees.append(tree)
    return tree


def stats(tree: SupervisionTree) -> ClaimerStatistics:
    return tree.ask(GetClaimerStatistics(), path=CLAIMER)


def statuses(store: Store) -> Counter[str]:
    return Counter(
        dict(store._conn.execute("SELECT status, count(*) FROM signals GROUP BY status").fetchall())
    )


def audit_rows_per_signal(store: Store) -> Counter[int]:
    """How many audit events carry each signal id: exactly one for every applied signal."""
    rows = store._conn.execute(
        "SELECT count(*) FROM audit_events WHERE signal_id IS NOT NULL GROUP BY signal_id"
    ).fetchall()
    return Counter(n for (n,) in rows)


# -- emitters in other processes --------------------------------------------------------------------------

EMITTER = r"""
import sys
from pathlib import Path
from actors.store import Store
from actors.wake import poke

db = Path(sys.argv[1])
project_id, worker, count, tasks = (int(arg) for arg in sys.argv[2:6])
with Store.open(db) as store:
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(count):
        store.emit_signal(project_id, f"task-{(worker * count + i) % tasks:02d}", "plan_start")
        poke()
print("done", flush=True)
"""


def test_a_burst_from_four_processes_is_applied_once_each_through_pokes_alone(
    tmp_path: Path, rt: Path, trees: list[SupervisionTree]
) -> None:
    db, clock = tmp_path / "corral.db", FakeClock()
    with Store.open(db) as store:
        project = store.ensure_project(tmp_path)
        for t in range(20):
            store.create_task(project.id, f"task-{t:02d}")
    tree = start_claimer(trees, clock, db_path=db, repos=[])
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", EMITTER, str(db), str(project.id), str(w), "250", "20"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    try:
        for w in workers:
            assert w.stdout is not None and w.stdout.readline() == "ready\n"
        for w in workers:  # go, all at once
            assert w.stdin is not None
            w.stdin.write("\n")
            w.stdin.flush()
        for w in workers:
            assert w.wait(60) == 0
    finally:
        for w in workers:
            w.kill()
            w.wait()
            for pipe in (w.stdin, w.stdout):
                if pipe is not None:
                    pipe.close()
    with Store.open(db) as store:
        wait_until(lambda: statuses(store) == {"done": 1000}, 30, "1,000 signals done")
        assert audit_rows_per_signal(store) == {1: 1000}
        assert len(store.pending_outbox(limit=2000)) == 1000  # one side effect recorded per signal
    assert clock.monotonic() == START
    s = stats(tree)
    assert (s.ticks, s.applied, s.failed) == (0, 1000, 0)
    assert s.wakes < 1000  # bursts were coalesced


# -- the real CLI -----------------------------------------------------------------------------------------


def test_corral_signal_emit_wakes_the_claimer_and_the_tick_never_runs(
    corral_home: Path, git_repo: Path, rt: Path, trees: list[SupervisionTree]
) -> None:
    ok(git_repo, "task", "create", "fix-login")
    clock = FakeClock()
    tree = start_claimer(trees, clock, repos=[])
    with Store.open(default_db_path()) as store:
        project = store.get_project(str(git_repo))
        for event, status in (("plan_start", "planning"), ("planner_finished", "ready")):
            assert ok(git_repo, "signal", "emit", event, "fix-login").endswith(
                "pending: " + event + " fix-login\n"
            )
            wait_until(
                lambda status=status: store.get_task(project.id, "fix-login").status == status,
                10,
                f"fix-login to be {status}",
            )
    assert clock.monotonic() == START
    assert stats(tree).ticks == 0


def test_signals_emitted_while_no_daemon_runs_are_applied_when_it_starts(
    corral_home: Path, git_repo: Path, rt: Path, trees: list[SupervisionTree]
) -> None:
    ok(git_repo, "task", "create", "fix-login")
    ok(git_repo, "signal", "emit", "implement_start", "fix-login")  # no daemon: the poke goes nowhere
    ok(git_repo, "signal", "emit", "implement_finished", "fix-login", "--payload", "all green")
    with Store.open(default_db_path()) as store:
        project = store.get_project(str(git_repo))
        assert statuses(store) == {"pending": 2}
        start_claimer(trees, FakeClock(), repos=[])
        wait_until(lambda: statuses(store) == {"done": 2}, 10, "both signals applied")
        assert store.get_task(project.id, "fix-login").status == "reviewing"


# -- kill -9 ----------------------------------------------------------------------------------------------

DAEMON = r"""
import sys, time
from pathlib import Path
from actors.claimer import ClaimerConfig, SignalClaimer
from actors.supervision import ChildSpec, SupervisionTree, SupervisorFlags

config = ClaimerConfig(db_path=Path(sys.argv[1]), batch=int(sys.argv[2]), repos=[])
tree = SupervisionTree.start(SupervisorFlags(), [ChildSpec.worker("signals", SignalClaimer, config)])
print("started", flush=True)
time.sleep(120)
"""


def kill_at_random(args: list[str], rng: random.Random, max_delay_s: float, ready: str) -> None:
    """Run a child until it prints `ready`, let it work up to `max_delay_s`, then SIGKILL it."""
    child = subprocess.Popen([sys.executable, "-c", *args], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == ready + "\n"
        time.sleep(rng.uniform(0, max_delay_s))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()


def test_a_daemon_killed_again_and_again_applies_every_signal_exactly_once(tmp_path: Path, rt: Path) -> None:
    db, rng = tmp_path / "corral.db", random.Random(11)
    with Store.open(db) as store:
        project = store.ensure_project(tmp_path)
        for t in range(30):
            store.create_task(project.id, f"task-{t:02d}")
        for k in range(3000):
            store.emit_signal(project.id, f"task-{k % 30:02d}", "plan_start")
        progress = []
        while statuses(store).get("pending", 0) and len(progress) < 40:
            kill_at_random([DAEMON, str(db), "10"], rng, 0.15, "started")
            progress.append(statuses(store)["done"])
        assert any(0 < done < 3000 for done in progress), progress  # killed while it worked
        daemon = subprocess.Popen([sys.executable, "-c", DAEMON, str(db), "10"], stdout=subprocess.DEVNULL)
        try:  # the next start finishes the queue, and replaces the killed one's wake socket
            wait_until(lambda: statuses(store) == {"done": 3000}, 60, "every signal done")
        finally:
            daemon.kill()
            daemon.wait(10)
        assert audit_rows_per_signal(store) == {1: 3000}
        assert statuses(store) == {"done": 3000}


BRIDGER = r"""
import sys
from pathlib import Path
from actors.sentinels import bridge, recover_in_flight, scan
from actors.store import Store

db, project_id, repo = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
with Store.open(db) as store:
    print("ready", flush=True)
    recover_in_flight(store, project_id, repo)
    while found := scan(repo):
        for sentinel in found:
            bridge(store, project_id, sentinel)
print("finished", flush=True)
"""


def test_sentinels_bridged_by_a_process_killed_at_random_are_each_emitted_once(tmp_path: Path) -> None:
    db, rng, repo = tmp_path / "corral.db", random.Random(7), tmp_path / "repo"
    expected: set[tuple[str, str, str]] = set()
    for t in range(150):
        base = repo / ".worktrees" / f"w{t % 3}" if t % 2 else repo
        directory = base / ".corral" / "signals"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"review-approved-task-{t:03d}").write_text(f"review {t}\n")
        (directory / f"implement-task-finished-w1-t{t + 1}-task-{t:03d}").write_text("")
        expected |= {
            (f"task-{t:03d}", "review_approved", f"review {t}"),
            (f"task-{t:03d}", "implement_task_finished", f"1/{t + 1}"),
        }
    with Store.open(db) as store:
        project = store.ensure_project(repo)
    in_processing_after_kill = kills = 0
    while any(p.is_file() for d in signal_dirs(repo) for p in d.iterdir()) and kills < 30:
        kill_at_random([BRIDGER, str(db), str(project.id), str(repo)], rng, 0.02, "ready")
        kills += 1
        in_processing_after_kill += sum(len(list((d / "processing").glob("*"))) for d in signal_dirs(repo))
    finisher = subprocess.run(
        [sys.executable, "-c", BRIDGER, str(db), str(project.id), str(repo)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert finisher.stdout == "ready\nfinished\n"
    assert in_processing_after_kill > 0  # some kills landed between the rename and the delete
    with Store.open(db) as store:
        signals = store.list_signals(project.id, limit=1000)
    seen = Counter(_identity(s.task, s.signal_type, s.payload) for s in signals)
    assert set(seen) == expected
    assert max(seen.values()) == 1, [k for k, n in seen.items() if n > 1]
    for directory in signal_dirs(repo):
        assert sorted(os.listdir(directory)) == ["processing"]
        assert os.listdir(directory / "processing") == []


def _identity(task: str, signal_type: str, payload: str) -> tuple[str, str, str]:
    import json

    data = json.loads(payload)
    if signal_type == "review_approved":
        return task, signal_type, data["body"]
    return task, signal_type, f"{data['wave_number']}/{data['task_number']}"
