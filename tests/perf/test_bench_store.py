"""Signal-apply throughput through the store, next to the raw SQLite floor measured in the same run.

Run by `make bench` (pytest -q -s tests/perf); prints a table, asserts no timing. The floor is the least a
transaction can cost on this file system: BEGIN IMMEDIATE, one INSERT, one UPDATE, COMMIT, on a file with the
store's own pragmas (opened by the store's `connect`). Applying a signal writes more (the signal, the task,
an audit event, an outbox item, and their indexes), and most of a commit's cost is writing each changed page
to the WAL, which is why `apply_pending` (many signals per commit) is measured too.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from actors.store import Store
from actors.store.db import connect, create_database

pytestmark = pytest.mark.bench

SIGNALS = 10_000
TASKS = 100
RUNS = 5
BATCH = 100
GOAL = 0.5


def make_template(path: Path) -> int:
    """A database with TASKS tasks and SIGNALS pending, valid signals (plan_start / planner_finished)."""
    with Store.open(path) as store:
        project = store.ensure_project(path.parent)
        for i in range(TASKS):
            store.create_task(project.id, f"task-{i:03d}")
        for k in range(SIGNALS):
            kind = "plan_start" if (k // TASKS) % 2 == 0 else "planner_finished"
            store.emit_signal(project.id, f"task-{k % TASKS:03d}", kind)
        store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return project.id


_FLOOR_SCHEMA = (
    "CREATE TABLE floor_log (id INTEGER PRIMARY KEY, ts TEXT NOT NULL, body TEXT NOT NULL) STRICT;"
    "CREATE TABLE floor_counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, ts TEXT NOT NULL) STRICT;"
    "INSERT INTO floor_counter VALUES (1, 0, '')"
)


def floor(path: Path) -> float:
    create_database(path, busy_timeout_ms=5000, prepare=lambda conn, _: conn.execute(_FLOOR_SCHEMA))
    conn = connect(path, busy_timeout_ms=5000)
    try:
        stamp = "2026-01-01T00:00:00.000000Z"
        start = time.perf_counter()
        for _ in range(SIGNALS):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO floor_log (ts, body) VALUES (?, ?)", (stamp, "plan_start"))
            conn.execute("UPDATE floor_counter SET n = n + 1, ts = ? WHERE id = ?", (stamp, 1))
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - start
        assert conn.execute("SELECT n FROM floor_counter").get == SIGNALS
    finally:
        conn.close()
    return SIGNALS / elapsed


def through_store(template: Path, path: Path, drain: Callable[[Store], int]) -> float:
    shutil.copyfile(template, path)
    with Store.open(path) as store:
        start = time.perf_counter()
        applied = drain(store)
        elapsed = time.perf_counter() - start
        assert applied == SIGNALS
        assert store.list_signals(statuses=["pending", "processing", "failed"]) == []
    return SIGNALS / elapsed


def drain_one_by_one(store: Store) -> int:
    applied = 0
    while store.apply_next("bench") is not None:
        applied += 1
    return applied


def drain_in_batches(store: Store) -> int:
    applied = 0
    while batch := store.apply_pending("bench", limit=BATCH):
        applied += len(batch)
    return applied


def test_bench_signal_apply_throughput(tmp_path: Path) -> None:
    template = tmp_path / "template.db"
    make_template(template)
    results: dict[str, list[float]] = {"floor": [], "next": [], "pending": []}
    for run in range(RUNS):  # interleaved, so that a noisy neighbour hurts every path alike
        results["floor"].append(floor(tmp_path / f"floor-{run}.db"))
        results["next"].append(through_store(template, tmp_path / f"next-{run}.db", drain_one_by_one))
        results["pending"].append(through_store(template, tmp_path / f"pending-{run}.db", drain_in_batches))
    median = {name: statistics.median(values) for name, values in results.items()}

    rows = [
        ("raw SQLite floor: INSERT + UPDATE per txn", median["floor"], None),
        ("store.apply_next: 1 signal per txn", median["next"], median["next"] / median["floor"]),
        (
            f"store.apply_pending: {BATCH} signals per txn",
            median["pending"],
            median["pending"] / median["floor"],
        ),
    ]
    print()
    print(
        f"signal apply throughput: {SIGNALS:,} signals over {TASKS} tasks, median of {RUNS} runs, "
        f"WAL + synchronous=NORMAL, {tmp_path}"
    )
    print(f"{'path':<46} {'ops/s':>9} {'of floor':>9}  goal (≥ {GOAL:.0%} of floor)")
    for name, ops, ratio in rows:
        verdict = "-" if ratio is None else ("met" if ratio >= GOAL else "missed")
        shown = "" if ratio is None else f"{ratio:.0%}"
        print(f"{name:<46} {ops:>9,.0f} {shown:>9}  {verdict}")
    spread = {name: f"{min(v):,.0f}–{max(v):,.0f}" for name, v in results.items()}
    print(f"range over runs (ops/s): {spread}")
