"""PTY throughput: an agent flooding output through PtyRuntime, next to `cat` through a raw PTY (the floor).

Run by `make bench` (pytest -q -s tests/perf); prints a table, asserts no timing. Goal (issue 3): the runtime
delivers at least 50 % of the floor's MB/s.

- Runtime: corral-sim `--flood MB` (python flooder in raw mode when the sim is not installed) as the agent of
  a PtyRuntime in a real supervision tree, everything on: the reader thread, ring, rotating log, activity
  notices to a stand-in Instance. Timed from the start of the runtime to the last activity notice (which
  trails the last byte by at most the 20 ms flush interval), so the agent's own start-up is included.
- Floor: `cat` of a file holding the same lines, in a PTY set raw, drained by a tight `os.read` loop on one
  thread — nothing but the kernel's PTY and one reader.

The sim keeps the terminal's output processing on, so its "\\n" arrives as "\\r\\n"; MB/s counts the bytes
that crossed the PTY (MB = 10⁶ bytes). Set CORRAL_BENCH_PTY_MB to change the 200 MB.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path
from typing import Any

import pytest
from ptyprocess import PtyProcess

from actors.clock import SystemClock
from actors.runtimes.base import RuntimeActivity, RuntimeSpec
from actors.runtimes.pty import PtyRuntime
from actors.supervision import (
    ChildSpec,
    Restart,
    SupervisionEnv,
    SupervisionTree,
    Supervisor,
    SupervisorFlags,
)
from tests.perf.report import median, print_table

pytestmark = pytest.mark.bench

MB = int(os.environ.get("CORRAL_BENCH_PTY_MB", "200"))
RUNS = 3
GOAL = 0.5
LINE = b"flood " + b"x" * 121 + b"\n"  # the sim's flood line (128 bytes)
SIM = shutil.which("corral-sim", path=str(Path(sys.executable).parent))
FLOODER = r"""
import os, sys, tty
tty.setraw(1)
line = b"flood " + b"x" * 121 + b"\n"
chunk = line * 512
left = int(sys.argv[1]) * 1_000_000
while left > 0:
    left -= os.write(1, chunk[:left])
sys.stdin.read()
"""


def flood_file(path: Path, mb: int) -> Path:
    total = mb * 1_000_000
    block = LINE * 8192
    with path.open("wb") as f:
        while total > 0:
            total -= f.write(block[:total])
    return path


def floor_cat(path: Path) -> tuple[int, float]:
    """`cat path` in a raw PTY, read by a tight loop: (bytes, seconds)."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        ["cat", str(path)], stdin=slave, stdout=slave, stderr=slave, start_new_session=True
    )
    os.close(slave)
    total = 0
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: cat exited and closed its side
            break
        if not chunk:
            break
        total += len(chunk)
    elapsed = time.perf_counter() - t0
    proc.wait(10)
    os.close(master)
    return total, elapsed


def agent_ceiling(argv: tuple[str, ...], target: int) -> tuple[int, float]:
    """The same agent in a PTY drained by a tight `os.read` loop: what it can write at all."""
    proc = PtyProcess.spawn(list(argv), dimensions=(50, 200))
    t0 = time.perf_counter()
    total, last = 0, t0
    try:
        while True:
            if total >= target and not select.select([proc.fd], [], [], 0.2)[0]:
                break  # the rest of the flood (and the prompt after it) is in
            try:
                chunk = os.read(proc.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            total += len(chunk)
            last = time.perf_counter()
    finally:
        proc.terminate(force=True)
    return total, last - t0


class Meter:
    """Counts the activity notices a runtime sends its Instance, with the time each one arrived."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.total = 0
        self.last_at = 0.0
        self.reached = threading.Event()

    def supervisor_class(self) -> type[Supervisor]:
        meter = self

        class Instance(Supervisor):
            def on_receive(self, message: Any) -> Any:
                if isinstance(message, RuntimeActivity):
                    meter.total += message.nbytes
                    meter.last_at = time.perf_counter()
                    if meter.total >= meter.target:
                        meter.reached.set()
                    return None
                return super().on_receive(message)

        return Instance


def flooder(mb: int) -> tuple[str, ...]:
    return (SIM, "--no-trust", "--flood", str(mb)) if SIM else (sys.executable, "-c", FLOODER, str(mb))


def through_runtime(tmp: Path, mb: int, run: int) -> tuple[int, float]:
    """The agent floods `mb` MB through a PtyRuntime: (bytes, seconds from start to the last notice)."""
    argv = flooder(mb)
    spec = RuntimeSpec(
        name=f"bench{run}", argv=argv, cwd=str(tmp), log_path=str(tmp / "logs" / f"b{run}.log")
    )
    meter = Meter(mb * 1_000_000)
    runtime = ChildSpec.worker("rt", PtyRuntime, spec, restart=Restart.TEMPORARY)
    inst = ChildSpec.supervisor(
        "inst", SupervisorFlags(), [runtime], supervisor_class=meter.supervisor_class()
    )
    env = SupervisionEnv.create(SystemClock())
    t0 = time.perf_counter()
    tree = SupervisionTree.start(SupervisorFlags(), [inst], env=env)
    try:
        assert meter.reached.wait(300), f"only {meter.total} bytes arrived"
        while True:  # the rest of the flood (and the prompt after it) is in once notices stop coming
            seen = meter.total
            time.sleep(0.2)
            if meter.total == seen:
                break
        return meter.total, meter.last_at - t0
    finally:
        tree.stop(timeout=30)


def test_bench_pty_throughput(tmp_path: Path) -> None:
    data = flood_file(tmp_path / "flood.txt", MB)
    floors, ceilings, runtimes = [], [], []
    for run in range(RUNS):  # interleaved, so a noisy moment hits both sides
        nbytes, seconds = floor_cat(data)
        floors.append(nbytes / seconds / 1e6)
        nbytes, seconds = agent_ceiling(flooder(MB), MB * 1_000_000)
        ceilings.append(nbytes / seconds / 1e6)
        nbytes, seconds = through_runtime(tmp_path, MB, run)
        runtimes.append(nbytes / seconds / 1e6)
        for log in (tmp_path / "logs").glob("*"):
            log.unlink()
    floor, ceiling, runtime = median(floors), median(ceilings), median(runtimes)
    ratio = runtime / floor
    agent = "corral-sim --flood" if SIM else "python flooder (corral-sim not installed)"
    runs = " ".join(f"{f:.0f}|{c:.0f}|{r:.0f}" for f, c, r in zip(floors, ceilings, runtimes, strict=True))
    rows = [
        (f"floor: cat, raw PTY, tight read loop, {MB} MB, median of {RUNS}", f"{floor:.0f} MB/s", "", None),
        (f"{agent}, tight os.read loop (the agent's own ceiling)", f"{ceiling:.0f} MB/s", "", None),
        (f"{agent} through PtyRuntime (ring, log, notices)", f"{runtime:.0f} MB/s", "", None),
        ("PtyRuntime / floor", f"{ratio:.0%}", f">= {GOAL:.0%}", ratio >= GOAL),
        ("PtyRuntime / the agent's ceiling", f"{runtime / ceiling:.0%}", "", None),
        ("each run: floor|ceiling|runtime, MB/s", runs, "", None),
    ]
    print_table("PTY throughput", rows)
