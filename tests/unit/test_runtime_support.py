"""The pieces every runtime shares: the rotating log, /proc reads, killing a whole tree, exit reasons."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from actors.runtimes.base import RuntimeSpec, agent_exit_reason, exit_details, valid_session_name
from actors.runtimes.logfile import RotatingLog
from actors.runtimes.procinfo import CpuSampler, kill_tree, read_stat, tree
from protocols.errors import UsageError
from tests.disk_kit import SmallDisk
from tests.unit.actor_kit import wait_until


def test_log_rotates_past_its_cap_and_keeps_only_the_backups(tmp_path: Path) -> None:
    log = RotatingLog(tmp_path / "logs" / "a.log", max_bytes=1024, backups=2)
    for n in range(10):
        log.write(bytes([65 + n]) * 700)
    log.close()
    files = log.files()
    assert [f.name for f in files] == ["a.log", "a.log.1", "a.log.2"]
    assert all(f.stat().st_size <= 1024 for f in files)
    assert sum(f.stat().st_size for f in files) <= 3 * 1024
    assert files[0].read_bytes().endswith(b"J" * 100)  # the newest bytes are in the live file


def test_log_reopened_continues_counting_its_size(tmp_path: Path) -> None:
    path = tmp_path / "b.log"
    first = RotatingLog(path, max_bytes=1024, backups=1)
    first.write(b"x" * 1000)
    first.close()
    second = RotatingLog(path, max_bytes=1024, backups=1)
    second.write(b"y" * 100)
    second.close()
    assert second.rotations == 1
    assert path.read_bytes() == b"y" * 76


GRANDCHILD = """
import os, subprocess, sys, time
code = "import os, time; os.setsid(); print(os.getpid(), flush=True); time.sleep(60)"
child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
print(child.stdout.readline().decode().strip(), flush=True)
time.sleep(60)
"""


def test_kill_tree_sweeps_a_grandchild_that_escaped_with_setsid() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", GRANDCHILD], stdout=subprocess.PIPE, start_new_session=True
    )
    escaped = int(proc.stdout.readline())
    assert read_stat(escaped).sid == escaped != read_stat(proc.pid).sid  # really left the session
    survivors = kill_tree(proc.pid, sids=[escaped], grace_s=1)
    proc.wait(5)
    assert survivors == []
    wait_until(lambda: read_stat(escaped) is None or read_stat(escaped).state == "Z", what="grandchild gone")


def test_tree_and_metrics_cover_the_process_and_its_children() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess,sys,time; subprocess.Popen(['sleep','30']); time.sleep(30)",
        ],
        start_new_session=True,
    )
    try:
        wait_until(lambda: len(tree(proc.pid)) == 2, what="child started")
        sampler = CpuSampler()
        sampler.sample(proc.pid, time.monotonic())
        metrics = sampler.sample(proc.pid, time.monotonic() - 5)
        assert metrics.processes == 2 and metrics.rss_bytes > 1_000_000 and metrics.uptime_s >= 5
    finally:
        assert kill_tree(proc.pid, grace_s=1) == []
        proc.wait(5)


def test_exit_reasons_say_how_the_agent_ended_and_read_back() -> None:
    assert agent_exit_reason(0, None).kind == "normal"
    assert str(agent_exit_reason(137, None)) == "AgentExited: exit status 137"
    assert str(agent_exit_reason(None, 9)) == "AgentKilled: killed by SIGKILL"
    for status, sig in [(0, None), (137, None), (1, None), (None, 9), (None, 15)]:
        assert exit_details(agent_exit_reason(status, sig)) == (status, sig)


def test_runtime_names_are_restricted_to_safe_characters() -> None:
    assert valid_session_name("corral_web_fix-login") == "corral_web_fix-login"
    for bad in ("a b", "a;rm", "", "x.y", "ünï"):
        with pytest.raises(UsageError, match="invalid runtime name"):
            valid_session_name(bad)
    with pytest.raises(UsageError, match="empty command"):
        RuntimeSpec(name="ok", argv=(), cwd=os.getcwd(), log_path="/tmp/x.log")


def test_a_recent_value_is_computed_once_per_age_and_shared() -> None:
    from actors.clock import Recent

    calls: list[int] = []

    def scan() -> int:
        calls.append(1)
        return len(calls)

    shared = Recent(scan, max_age_s=3600.0)
    assert [shared.get() for _ in range(50)] == [1] * 50  # 50 callers, one scan
    fresh = Recent(scan, max_age_s=0.0)
    assert fresh.get() != fresh.get()  # no age allowed: every caller scans


def test_a_log_on_a_full_disk_drops_and_counts_the_output_then_says_what_it_lost(
    disk: SmallDisk, caplog: pytest.LogCaptureFixture
) -> None:
    log = RotatingLog(disk.path / "logs" / "agent.log", max_bytes=1024 * 1024, backups=1)
    log.write(b"before\n")
    disk.fill()
    with caplog.at_level("WARNING", logger="actors.runtimes.logfile"):
        for _ in range(10):
            log.write(b"x" * 10_000)  # never raises: the agent's runtime goes on
        assert log.dropped_bytes >= 90_000  # a page-sized tail may still have fitted
        assert caplog.text.count("cannot write the agent log") == 1  # said once, not per write
        disk.free()
        log.write(b"after\n")
    log.close()
    text = (disk.path / "logs" / "agent.log").read_bytes()
    assert text.startswith(b"before\n") and text.endswith(b"after\n")
    marker = f"[corral: {log.dropped_bytes} bytes of output were not logged: No space left on device]"
    assert marker.encode() in text
    assert f"writing the agent log {disk.path / 'logs' / 'agent.log'} again" in caplog.text
