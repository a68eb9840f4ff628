"""The instance board (actors/board.py) and the fleet's metrics read from one /proc snapshot
(actors/runtimes/procinfo.py), with real threads and real processes."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from actors.board import BoardRow, InstanceBoard
from actors.runtimes.procinfo import FleetMetrics, tree, trees
from tests.unit.actor_kit import wait_until


def test_a_project_s_rows_are_none_until_posted_and_again_once_its_project_is_down() -> None:
    board = InstanceBoard()
    assert board.rows("app") is None
    assert not board.wait_ready("app", 0.01)
    threading.Timer(0.05, board.post, args=("app", (BoardRow(entry="e1"),))).start()
    assert board.wait_ready("app", 10)
    assert board.rows("app") == (BoardRow(entry="e1"),)
    assert board.rows("other") is None
    board.down("app")
    assert board.rows("app") is None and not board.wait_ready("app", 0.01)
    board.post("app", ())
    assert board.rows("app") == ()


@pytest.fixture
def agents() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two 'agents', each a shell with two children of its own."""
    procs = [
        subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60 & wait"], start_new_session=True) for _ in range(2)
    ]
    yield procs
    for proc in procs:
        proc.kill()
        subprocess.run(["pkill", "-KILL", "-s", str(proc.pid)], check=False, timeout=10)
        proc.wait(timeout=10)


def test_the_metrics_of_several_agents_come_from_one_walk_and_match_each_tree(
    agents: list[subprocess.Popen[bytes]],
) -> None:
    pids = [p.pid for p in agents]
    wait_until(lambda: all(len(tree(pid)) == 3 for pid in pids), 10, "each shell's two children")
    walked = trees([*pids, 999_999_999])
    assert {pid: sorted(st.pid for st in walked[pid]) for pid in pids} == {
        pid: sorted(st.pid for st in tree(pid)) for pid in pids
    }
    assert walked[999_999_999] == []

    fleet = FleetMetrics()
    started = time.monotonic() - 5.0
    sampled = fleet.sample("app", {"a": (pids[0], started), "b": (pids[1], None)})
    assert (sampled["a"].pid, sampled["a"].processes) == (pids[0], 3)
    assert sampled["a"].rss_bytes > 0 and sampled["a"].uptime_s >= 5.0
    assert sampled["b"].processes == 3 and sampled["b"].uptime_s < 5.0
    assert set(fleet.sample("app", {"a": (pids[0], started)})) == {"a"}
