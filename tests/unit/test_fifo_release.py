"""A pane's writer blocked on a FIFO nobody reads is released (actors/runtimes/tmux_output.py): found by
corral chaos, where a daemon killed between arming tmux's pipe-pane and the shell's open left a `sh -c 'exec
cat >> FIFO'` behind for good. Real FIFOs and real processes; no tmux needed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from actors.runtimes.tmux_output import OutputPump, release_fifo
from actors.runtimes.tmux_server import TmuxServer
from tests.unit.actor_kit import wait_until


def _blocked_writer(fifo: Path) -> subprocess.Popen[bytes]:
    """tmux's pipe-pane command, with a stdin of ours standing for the pane: blocked in open() (no reader)."""
    return subprocess.Popen(["sh", "-c", f"exec cat >> '{fifo}'"], stdin=subprocess.PIPE)


def _ends(writer: subprocess.Popen[bytes]) -> bool:
    assert writer.stdin is not None
    writer.stdin.close()  # the pane's end (the tmux server gone): EOF, once cat reads at all
    try:
        writer.wait(timeout=10)
    except subprocess.TimeoutExpired:
        writer.kill()
        writer.wait(timeout=10)
        return False
    return True


def _wait_blocked(writer: subprocess.Popen[bytes]) -> None:
    """Until the shell sits in open() of the FIFO, waiting for a reader (its wchan says so)."""

    def blocked() -> bool:
        try:
            return Path(f"/proc/{writer.pid}/wchan").read_text() == "wait_for_partner"
        except OSError:
            return False

    wait_until(blocked, 10, "the writer blocked in open() of the FIFO")


def test_release_fifo_lets_a_writer_blocked_in_open_end(tmp_path: Path) -> None:
    fifo = tmp_path / "corral_app_fix.0123abcd.fifo"
    os.mkfifo(fifo, 0o600)
    writer = _blocked_writer(fifo)
    _wait_blocked(writer)
    release_fifo(fifo)
    assert not fifo.exists()
    assert _ends(writer), "the writer stayed blocked on the FIFO"


def test_a_new_pump_releases_the_fifos_a_killed_corral_left(tmp_path: Path) -> None:
    run_dir = tmp_path / "run" / "tmux" / "s"
    run_dir.mkdir(parents=True)
    fifo = run_dir / "corral_app_fix.0123abcd.fifo"
    os.mkfifo(fifo, 0o600)
    writer = _blocked_writer(fifo)
    _wait_blocked(writer)
    pump = OutputPump(TmuxServer("corral-test-unused", run_dir=run_dir))
    try:
        assert not fifo.exists()
        assert _ends(writer), "the writer stayed blocked on the FIFO"
    finally:
        pump.close()


def test_release_leaves_a_live_reader_and_writer_connected(tmp_path: Path) -> None:
    fifo = tmp_path / "live.fifo"
    os.mkfifo(fifo, 0o600)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    writer = os.open(fifo, os.O_WRONLY)
    try:
        release_fifo(fifo)
        os.write(writer, b"still here")
        assert os.read(reader, 100) == b"still here"
    finally:
        os.close(writer)
        os.close(reader)
