"""Benchmarks of the supervision core: restart latency, ask round trip, spawning (make bench)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pykka
import pytest

from actors.supervision import (
    ChildSpec,
    StartChild,
    SupervisedActor,
    SupervisionTree,
    SupervisorFlags,
)
from actors.supervision.context import ChildContext
from tests.perf.report import median, percentile, print_table

pytestmark = pytest.mark.bench


class Echo(SupervisedActor):
    def __init__(
        self, ctx: ChildContext, up: list[float] | None = None, ready: threading.Event | None = None
    ):
        super().__init__(ctx)
        self.up, self.ready = up, ready

    def started(self) -> None:
        if self.up is not None:
            self.up.append(time.perf_counter())
            assert self.ready is not None
            self.ready.set()

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("crash on purpose")
        return message


class Plain(pykka.ThreadingActor):
    use_daemon_thread = True

    def on_receive(self, message: Any) -> Any:
        return message


def test_bench_supervision_core() -> None:
    rows = []

    # crash → restarted child, zero backoff: from the crashing tell to the new generation's started().
    up: list[float] = []
    ready = threading.Event()
    tree = SupervisionTree.start(
        SupervisorFlags(max_restarts=100_000, period_s=1), [ChildSpec.worker("echo", Echo, up, ready)]
    )
    latencies = []
    ref = None
    for _ in range(300):
        ready.clear()
        while (new := tree.env.directory.get("root/echo")) is None or new is ref:
            time.sleep(0.0001)  # the new generation is registered just after its started() returns
        ref = new
        t0 = time.perf_counter()
        ref.tell("crash")
        assert ready.wait(5)
        latencies.append(up[-1] - t0)
    rest = median(latencies) * 1e3
    rows.append(("crash → restarted child, median (300)", f"{rest:.2f} ms", "<= 5 ms", rest <= 5))
    rows.append(("crash → restarted child, p99", f"{percentile(latencies, 99) * 1e3:.2f} ms", "", None))

    # ask round trip on a supervised actor.
    ref = tree.env.directory.get("root/echo")
    for _ in range(500):
        ref.ask("warm")
    samples = []
    for _ in range(20_000):
        t0 = time.perf_counter()
        ref.ask("ping")
        samples.append(time.perf_counter() - t0)
    ask = median(samples) * 1e6
    rows.append(("ask round trip, median (20k)", f"{ask:.1f} µs", "<= 100 µs", ask <= 100))
    rows.append(("ask round trip, p99", f"{percentile(samples, 99) * 1e6:.1f} µs", "", None))
    tree.stop()

    # spawning 1,000 supervised actors through start_child (start handshake included), and raw pykka.
    runs = []
    for _ in range(3):
        tree = SupervisionTree.start(SupervisorFlags(), [])
        t0 = time.perf_counter()
        for n in range(1000):
            tree.ref.ask(StartChild(ChildSpec.worker(f"c{n}", Echo)), timeout=30)
        runs.append(time.perf_counter() - t0)
        assert tree.statistics().running == 1000
        tree.stop()
    spawn = median(runs)
    rows.append(("spawn 1,000 supervised actors, median of 3", f"{spawn * 1e3:.0f} ms", "<= 1 s", spawn <= 1))
    raw = []
    for _ in range(3):
        t0 = time.perf_counter()
        refs = [Plain.start() for _ in range(1000)]
        raw.append(time.perf_counter() - t0)
        for r in refs:
            r.stop()
    rows.append(("spawn 1,000 plain pykka actors (floor)", f"{median(raw) * 1e3:.0f} ms", "", None))
    print_table("supervision core", rows)
