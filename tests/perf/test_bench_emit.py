"""`corral signal emit` cold, as an agent calls it (issue 8: "≤ 3 × `python -c "import apsw"` in the same
run"). A printed table, no timing asserts (make bench: pytest -q -s -p no:randomly tests/perf).

An agent runs `corral signal emit TYPE TASK` as a fresh process in its worktree, with CORRAL_MANAGED=1, many
times an hour, while the daemon runs: each one starts an interpreter, imports what it needs, commits one row
and pokes the daemon. Its floor is an interpreter that imports the SQLite binding and nothing else, `python -c
"import apsw"`: the two are timed alternately in the same run (RUNS each, after a warm-up), wall time from
spawn to exit, and compared by their medians. The daemon runs (a private one, started as `corral daemon start`
does); the signal (`implement_finished` on a ready task) is applied as a failed transition, so it starts no
agent. A second row, with no daemon and CORRAL_AUTOSTART=0, shows the emit that only finds nobody listening.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.daemon_kit import stop_everything
from tests.integration.cli_kit import CORRAL, clean_env, corral
from tests.perf.report import median, print_table

pytestmark = pytest.mark.bench

RUNS = int(os.environ.get("CORRAL_BENCH_EMIT_RUNS", "31"))
GOAL_RATIO = 3.0


def _wall(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60, check=False
    )
    elapsed = time.perf_counter() - began
    assert done.returncode == 0, done.stderr
    return elapsed


def _alternate(emit: list[str], floor: list[str], cwd: Path, env: dict[str, str]) -> tuple[list[float], ...]:
    for _ in range(3):  # warm the bytecode caches and the page cache
        _wall(emit, cwd, env)
        _wall(floor, cwd, env)
    emits, floors = [], []
    for _ in range(RUNS):
        emits.append(_wall(emit, cwd, env))
        floors.append(_wall(floor, cwd, env))
    return emits, floors


def test_bench_signal_emit_cold_next_to_importing_apsw(git_repo: Path, corral_home: Path) -> None:
    parent = Path(tempfile.mkdtemp(prefix="crl-e-", dir="/tmp"))
    runtime = parent / "run"
    base = clean_env() | {"CORRAL_RUNTIME_DIR": str(runtime)}
    assert corral(git_repo, "task", "create", "t").returncode == 0
    agent = base | {"CORRAL_MANAGED": "1", "CORRAL_TASK": "t"}
    emit = [CORRAL, "signal", "emit", "implement_finished", "t"]
    floor = [sys.executable, "-c", "import apsw"]
    try:
        started = corral(Path("/"), "daemon", "start", CORRAL_RUNTIME_DIR=str(runtime))
        assert started.returncode == 0, started.stderr
        emits, floors = _alternate(emit, floor, git_repo, agent)
        stop_everything(runtime)
        alone, floors_alone = _alternate(emit, floor, git_repo, agent | {"CORRAL_AUTOSTART": "0"})
    finally:
        stop_everything(runtime)
        shutil.rmtree(parent, ignore_errors=True)

    ratio = median(emits) / median(floors)
    ratio_alone = median(alone) / median(floors_alone)
    rows: list[tuple[str, str, str, bool | None]] = [
        ('python -c "import apsw" (the floor), median', f"{median(floors) * 1000:.1f} ms", "", None),
        ("corral signal emit, agent, daemon running, median", f"{median(emits) * 1000:.1f} ms", "", None),
        ("  emit / floor", f"{ratio:.2f} ×", f"≤ {GOAL_RATIO:g} ×", ratio <= GOAL_RATIO),
        ("corral signal emit, agent, no daemon (autostart off)", f"{median(alone) * 1000:.1f} ms", "", None),
        ("  emit / floor", f"{ratio_alone:.2f} ×", "", None),
    ]
    print_table(f"signal emit cold, {RUNS} runs each, alternating", rows)
