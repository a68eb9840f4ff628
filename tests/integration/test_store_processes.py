"""The store across real OS processes: concurrent claims, kill -9 at random moments, dead claimers.

Every worker is a separate Python process running WORKER below on the same SQLite file. Nothing is mocked:
the guarantees under test (one write lock, atomic commit, WAL recovery) are SQLite's and the store's.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import apsw
import pytest

from actors.clock import FakeClock
from actors.store import SCHEMA_VERSION, Store
from protocols.errors import ConflictError, TransitionError
from protocols.fsm import Event, Source, Status, transition
from protocols.records import Project

pytestmark = pytest.mark.slow

WORKER = r"""
import sys, time
from pathlib import Path
from actors.store import Store
print("imported", flush=True)

db, claimer, mode = sys.argv[1], sys.argv[2], sys.argv[3]
with Store.open(Path(db)) as store:
    print("ready", flush=True)
    if mode == "drain-after-go":
        sys.stdin.readline()
    if mode == "claim-and-hang":
        signal = store.claim_next(claimer)
        print(signal.id if signal else "none", flush=True)
        time.sleep(600)
    applied = 0
    if mode == "drain-in-batches":
        while batch := store.apply_pending(claimer, limit=50):
            applied += len(batch)
    elif mode != "open":
        while store.apply_next(claimer) is not None:
            applied += 1
    print("applied", applied, flush=True)
"""


@dataclass(frozen=True)
class Emitted:
    task: str
    signal_type: str
    source: Source


class Worker:
    """One worker process; every line it prints is read with a deadline, never a blind sleep."""

    def __init__(self, db: Path, claimer: str, mode: str) -> None:
        self.claimer = claimer
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(db), claimer, mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=Path(__file__).resolve().parents[2],
        )
        self._pending = b""

    def expect(self, prefix: str, timeout: float = 30.0) -> str:
        """The next line starting with `prefix`. Reads the pipe unbuffered, so select() sees every line."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self._pending:
                line, self._pending = self._pending.split(b"\n", 1)
                if line.decode().startswith(prefix):
                    return line.decode().strip()
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0))
            if not ready:
                raise AssertionError(f"{self.claimer}: no {prefix!r} line within {timeout} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"{self.claimer} exited before {prefix!r}: {self.stderr()}")
            self._pending += chunk

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def finish(self, timeout: float = 60.0) -> int:
        code = self.proc.wait(timeout=timeout)
        assert code == 0, f"{self.claimer} exited {code}: {self.stderr()}"
        return code

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode() if self.proc.poll() is not None else "(still running)"

    def close(self) -> None:
        self.kill()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.close()


# -- a replay of the FSM, the oracle every test compares the database with ---------------------------------


def replay(emitted: list[Emitted], task_names: list[str]) -> tuple[list[bool], dict[str, Status]]:
    """Which signals apply (in id order) and the final status of every task."""
    status = dict.fromkeys(task_names, Status.READY)
    applied = []
    for item in emitted:
        ok = item.task in status
        if ok:
            try:
                status[item.task] = transition(
                    status[item.task], Event(item.signal_type), item.source
                ).to_status
            except TransitionError:
                ok = False
        applied.append(ok)
    return applied, status


def make_workload(names: list[str], start: int, count: int, rng: random.Random) -> list[Emitted]:
    """Signals start … start + count - 1 of an endless workload over `names`: per task, plan_start and
    planner_finished alternate (valid); about 3 % are invalid or refused."""
    emitted = []
    for i in range(start, start + count):
        task, step = names[i % len(names)], i // len(names)
        roll = rng.random()
        if roll < 0.01:
            emitted.append(Emitted(task, "implement_finished", Source.AGENT))  # never valid here
        elif roll < 0.02:
            emitted.append(Emitted(task, "cancel", Source.AGENT))  # user-only: refused
        elif roll < 0.03:
            emitted.append(Emitted("ghost", "plan_start", Source.AGENT))  # no such task
        else:
            emitted.append(Emitted(task, "plan_start" if step % 2 == 0 else "planner_finished", Source.AGENT))
    return emitted


def seed(db: Path, root: Path, n_tasks: int) -> tuple[Project, list[str]]:
    names = [f"task-{i:02d}" for i in range(n_tasks)]
    with Store.open(db) as store:
        project = store.ensure_project(root)
        for name in names:
            store.create_task(project.id, name)
    return project, names


def emit(db: Path, project: Project, emitted: list[Emitted]) -> list[int]:
    with Store.open(db) as store:
        return [store.emit_signal(project.id, e.task, e.signal_type, source=e.source).id for e in emitted]


@dataclass(frozen=True)
class Snapshot:
    integrity: str
    statuses: dict[int, str]
    claimed_by: dict[int, str]
    audit_per_signal: Counter[int]
    transitions_per_task: Counter[str]
    task_status: dict[str, str]
    outbox_rows: int


def snapshot(db: Path) -> Snapshot:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        q = conn.execute
        return Snapshot(
            integrity=q("PRAGMA integrity_check").get,
            statuses=dict(q("SELECT id, status FROM signals")),
            claimed_by=dict(q("SELECT id, claimed_by FROM signals")),
            audit_per_signal=Counter(
                dict(
                    q(
                        "SELECT signal_id, count(*) FROM audit_events WHERE signal_id IS NOT NULL "
                        "GROUP BY signal_id"
                    )
                )
            ),
            transitions_per_task=Counter(
                dict(q("SELECT task, count(*) FROM audit_events WHERE kind = 'transition' GROUP BY task"))
            ),
            task_status=dict(q("SELECT name, status FROM tasks")),
            outbox_rows=q("SELECT count(*) FROM outbox").get,
        )
    finally:
        conn.close()


def assert_consistent(db: Path, ids: list[int], emitted: list[Emitted], names: list[str]) -> int:
    """Everything the database says agrees with a replay of exactly the signals it says were applied.

    Returns how many signals were applied. Holds at any instant between transactions, so after a kill too.
    """
    snap = snapshot(db)
    assert snap.integrity == "ok"
    statuses = [snap.statuses[i] for i in ids]
    assert "processing" not in statuses, "apply_next must never leave a signal half-applied"
    n_applied = sum(s != "pending" for s in statuses)
    assert all(s != "pending" for s in statuses[:n_applied]), "signals are applied in id order"
    assert all(s == "pending" for s in statuses[n_applied:])
    expected, final = replay(emitted[:n_applied], names)
    assert statuses[:n_applied] == ["done" if ok else "failed" for ok in expected]
    for signal_id, status in zip(ids, statuses, strict=True):
        assert snap.audit_per_signal[signal_id] == (0 if status == "pending" else 1), signal_id
    per_task = Counter(e.task for e, ok in zip(emitted, expected, strict=False) if ok)
    assert snap.transitions_per_task == per_task
    assert snap.task_status == {name: status.value for name, status in final.items()}
    assert snap.outbox_rows == sum(expected)
    return n_applied


# -- the tests -----------------------------------------------------------------------------------------------


def test_four_processes_apply_ten_thousand_signals_exactly_once(
    tmp_path: Path, workers: list[Worker]
) -> None:
    db = tmp_path / "corral.db"
    project, names = seed(db, tmp_path, n_tasks=50)
    emitted = make_workload(names, 0, 10_000, random.Random(1))
    ids = emit(db, project, emitted)
    workers.extend(Worker(db, f"worker-{n}", "drain-after-go") for n in range(4))
    for worker in workers:
        worker.expect("ready")
    for worker in workers:  # all four are past their imports and open: release them together
        worker.go()
    counts = {}
    for worker in workers:
        counts[worker.claimer] = int(worker.expect("applied", timeout=120).split()[1])
        worker.finish()
    print(f"claims per worker: {counts}")

    assert sum(counts.values()) == len(ids)
    assert assert_consistent(db, ids, emitted, names) == len(ids)
    snap = snapshot(db)
    assert Counter(snap.claimed_by[i] for i in ids) == Counter(counts)
    # Claims interleave across processes (on a loaded 2-core machine one worker may be starved: not a bug).
    assert sum(count > 0 for count in counts.values()) >= 2, f"claims did not interleave: {counts}"
    assert sum(not ok for ok in replay(emitted, names)[0]) > 100  # the invalid ones really were exercised


@pytest.mark.parametrize("mode", ["drain", "drain-in-batches"])
def test_a_worker_killed_at_random_moments_never_leaves_a_signal_half_applied(
    tmp_path: Path, workers: list[Worker], mode: str
) -> None:
    db = tmp_path / "corral.db"
    project, names = seed(db, tmp_path, n_tasks=40)
    rng = random.Random(2)
    emitted = make_workload(names, 0, 10_000, rng)
    ids = emit(db, project, emitted)
    progress = []
    for round_no in range(24):
        worker = Worker(db, f"worker-{round_no}", mode)
        workers.append(worker)
        if round_no % 3 == 0:
            time.sleep(rng.uniform(0, 0.3))  # anywhere: during imports, open, or applying
        else:
            worker.expect("ready")
            time.sleep(rng.uniform(0, 0.03))  # while applying
        worker.kill()
        worker.close()
        progress.append(assert_consistent(db, ids, emitted, names))
        if len(ids) - progress[-1] < 5_000:  # keep the worker busy until the last kill
            more = make_workload(names, len(emitted), 10_000, rng)
            ids += emit(db, project, more)
            emitted += more

    assert sum(b > a for a, b in zip([0, *progress], progress, strict=False)) >= 8, progress
    print(f"applied after each kill: {progress}")
    survivor = Worker(db, "survivor", mode)
    workers.append(survivor)
    survivor.expect("applied", timeout=120)
    survivor.finish()
    assert assert_consistent(db, ids, emitted, names) == len(ids)


def test_a_claim_whose_holder_was_killed_is_requeued_and_applied_once(
    tmp_path: Path, workers: list[Worker]
) -> None:
    db = tmp_path / "corral.db"
    with Store.open(db) as store:
        project = store.ensure_project(tmp_path)
        store.create_task(project.id, "t")
        emitted = store.emit_signal(project.id, "t", "plan_start")

    doomed = Worker(db, "doomed", "claim-and-hang")
    workers.append(doomed)
    assert doomed.expect(str(emitted.id)) == str(emitted.id)
    doomed.kill()

    with Store.open(db) as store:
        held = store.get_signal(emitted.id)
        assert (held.status, held.claimed_by, held.attempts) == ("processing", "doomed", 1)
        assert store.apply_next("someone-else") is None  # a claimed signal is not pending
        assert store.requeue_stale(60) == 0  # claimed a moment ago: its holder may still be working
    later = FakeClock(wall=datetime.now(UTC) + timedelta(minutes=5))
    with Store.open(db, clock=later) as store:
        assert store.requeue_stale(60) == 1

    rescuer = Worker(db, "rescuer", "drain")
    workers.append(rescuer)
    assert rescuer.expect("applied") == "applied 1"
    rescuer.finish()

    with Store.open(db) as store:
        done = store.get_signal(emitted.id)
        assert (done.status, done.claimed_by, done.attempts, done.result) == (
            "done",
            "rescuer",
            2,
            "ready → planning",
        )
        assert [e.kind for e in store.list_audit() if e.signal_id == emitted.id] == ["transition"]
        assert store.get_task(project.id, "t").status == "planning"
        with pytest.raises(ConflictError, match="the claim was lost"):
            store.apply_claimed(emitted.id, "doomed")  # had it survived, it could not apply it again
        assert store.statistics().signals_processing == 0


def test_a_process_killed_while_creating_the_database_leaves_it_openable(
    tmp_path: Path, workers: list[Worker]
) -> None:
    rng = random.Random(4)
    for round_no in range(10):
        db = tmp_path / f"fresh-{round_no}" / "corral.db"
        worker = Worker(db, f"creator-{round_no}", "open")
        workers.append(worker)
        worker.expect("imported")
        time.sleep(rng.uniform(0, 0.02))  # opening and migrating take a few milliseconds
        worker.kill()
        # Never a half-made database under its real name: none at all, or a whole one.
        assert not db.exists() or db.stat().st_size > 0
        with Store.open(db) as store:
            conn = store._conn
            assert conn.execute("PRAGMA user_version").get == SCHEMA_VERSION
            assert conn.execute("PRAGMA integrity_check").get == "ok"
        assert [p.name for p in db.parent.iterdir() if p.name.startswith(".creating-")] == []


def test_four_processes_creating_the_database_at_once_all_open_it(
    tmp_path: Path, workers: list[Worker]
) -> None:
    for round_no in range(5):
        db = tmp_path / f"fresh-{round_no}" / "corral.db"
        racers = [Worker(db, f"racer-{round_no}-{n}", "open") for n in range(4)]
        workers.extend(racers)
        for racer in racers:
            assert racer.expect("applied") == "applied 0"
            racer.finish()
        with Store.open(db) as store:
            assert store._conn.execute("PRAGMA user_version").get == SCHEMA_VERSION
