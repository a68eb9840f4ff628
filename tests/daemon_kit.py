"""Finding and ending the daemons and hearts a test started, by their runtime directory.

    daemons_of(runtime_dir), hearts_of(runtime_dir)  # live pids, from /proc: command line and environment
    stop_everything(runtime_dir)                     # an orderly stop, then kill whatever is left

A heart restarts a daemon that is killed, and a daemon starts a new heart when its heart is killed, so killing
them one by one can race with the replacement. `kill_everything` freezes every process of the directory first
(SIGSTOP: a frozen process restarts nothing), then kills them, and looks again until none is left.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from frontends.daemon.client import DaemonClient
from frontends.daemon.errors import DaemonError, RuntimeDirError
from frontends.daemon.lock import pid_alive

__all__ = ["daemons_of", "hearts_of", "kill_everything", "processes_of", "stop_everything"]

_DAEMON = b"frontends.daemon.main"
_HEART = b"frontends.daemon.heart"


def processes_of(runtime_dir: Path, *markers: bytes) -> list[int]:
    """Live processes whose command line has one of `markers` and whose environment names `runtime_dir`."""
    wanted = f"CORRAL_RUNTIME_DIR={runtime_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if not any(marker in cmdline for marker in markers):
                continue
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if wanted in environ.split(b"\0") and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def daemons_of(runtime_dir: Path) -> list[int]:
    return processes_of(runtime_dir, _DAEMON)


def hearts_of(runtime_dir: Path) -> list[int]:
    return processes_of(runtime_dir, _HEART)


def kill_everything(runtime_dir: Path, timeout: float = 20.0) -> None:
    """SIGSTOP, then SIGKILL, every daemon and heart of `runtime_dir`, until none is left."""
    deadline = time.monotonic() + timeout
    while pids := processes_of(runtime_dir, _DAEMON, _HEART):
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.01)
        if time.monotonic() > deadline:
            raise AssertionError(f"processes of {runtime_dir} would not die: {pids}")


def stop_everything(runtime_dir: Path, timeout: float = 30.0) -> None:
    """Stop the daemon and its heart in order if they answer, then kill whatever is left."""
    try:
        if runtime_dir.exists():
            DaemonClient(runtime_dir).stop(timeout=timeout)
    except (DaemonError, RuntimeDirError):
        pass  # killed below; a runtime directory a test made unsafe has nothing in it
    finally:
        kill_everything(runtime_dir)
