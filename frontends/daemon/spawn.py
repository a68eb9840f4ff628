"""Starting a daemon in the background, as `corral daemon start` and every autostarting client do.

    pong = start_daemon(DaemonClient(), timeout=20)     # {"pid": ..., "version": ...} once it answers

The daemon is this Python running `-m frontends.daemon.main`, detached: a session of its own (no terminal's
Ctrl-C or hang-up reaches it), stdin from /dev/null, stdout and stderr appended to `<runtime dir>/daemon.log`,
working directory `/` (it must not keep a repository's directory busy). Paths in the environment that the
daemon reads are made absolute first, since its working directory is not ours.

Then we wait, on a condition rather than a fixed delay, until `GET /v1/ping` answers:
- the process exits with status 0 before that: it lost the pid lock to another daemon starting at the same
  moment, so we keep waiting for that one — or start again if the winner has since died;
- it exits with another status: it failed; the error carries the last lines of its log;
- nothing answers within the timeout: the same error, with the log.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frontends.daemon.errors import DaemonStartError
from frontends.daemon.lock import pid_alive, read_pid
from frontends.daemon.paths import RUNTIME_ENV

if TYPE_CHECKING:
    from frontends.daemon.client import DaemonClient

__all__ = ["daemon_command", "log_tail", "spawn_daemon", "start_daemon"]

_PATH_VARIABLES = ("CORRAL_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME")
_LOG_ROTATE_BYTES = 4 * 1024 * 1024
_TAIL_LINES = 15


def daemon_command() -> list[str]:
    """The argv that runs a daemon in the foreground with this interpreter."""
    return [sys.executable, "-m", "frontends.daemon.main"]


def _environment(runtime_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in _PATH_VARIABLES:
        if env.get(name):
            env[name] = str(Path(env[name]).expanduser().absolute())
    env[RUNTIME_ENV] = str(runtime_dir)
    # The daemon must import this very corral, also when it runs from a source tree rather than installed
    # (an installed one is found anyway; putting site-packages on PYTHONPATH would shadow the stdlib).
    source_root = Path(__file__).resolve().parents[2]
    if source_root.name not in ("site-packages", "dist-packages"):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(source_root), env.get("PYTHONPATH", "")) if p)
    return env


def spawn_daemon(client: DaemonClient) -> subprocess.Popen[bytes]:
    """Start a detached daemon for `client`'s runtime directory (created and checked first)."""
    paths = client.paths.prepare()
    log_path = paths.log_file
    try:
        if log_path.stat().st_size > _LOG_ROTATE_BYTES:
            os.replace(log_path, log_path.with_name(log_path.name + ".1"))
    except FileNotFoundError:
        pass
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        return subprocess.Popen(
            daemon_command(),
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            cwd="/",
            env=_environment(paths.dir),
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(log_fd)


def start_daemon(client: DaemonClient, timeout: float = 20.0) -> dict[str, Any]:
    """Start a daemon and wait until it answers; returns its ping. See the module doc for the races."""
    deadline = time.monotonic() + timeout
    process = spawn_daemon(client)
    delay = 0.002
    while True:
        pong = client.ping(timeout=max(0.05, min(1.0, deadline - time.monotonic())))
        if pong is not None:
            _reap_in_background(process)
            return pong
        code = process.poll()
        if code is not None and code != 0:
            raise DaemonStartError(
                f"the corral daemon exited with status {code} before it was ready; "
                f"{_log_excerpt(client.paths.log_file)}"
            )
        if code == 0 and not _lock_holder_alive(client):
            process = spawn_daemon(client)  # the daemon we lost to has gone meanwhile: try again
        if time.monotonic() > deadline:
            raise DaemonStartError(
                f"the corral daemon did not answer on {client.socket} within {timeout:g} s; "
                f"{_log_excerpt(client.paths.log_file)}"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _lock_holder_alive(client: DaemonClient) -> bool:
    pid = read_pid(client.paths.pid_file)
    return pid is not None and pid_alive(pid)


def _reap_in_background(process: subprocess.Popen[bytes]) -> None:
    """The daemon is our child until it exits: wait for it on a daemon thread, so it never lingers as a
    zombie in a long-lived client (the dashboard) and `Popen` never warns that it is still running."""
    if process.poll() is None:
        threading.Thread(target=process.wait, name="corral-daemon-reaper", daemon=True).start()


def log_tail(path: Path, lines: int = _TAIL_LINES) -> list[str]:
    """The last `lines` lines of a log file ([] if it cannot be read)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as log:
            return [line.rstrip("\n") for line in deque(log, maxlen=lines)]
    except OSError:
        return []


def _log_excerpt(path: Path) -> str:
    tail = log_tail(path)
    if not tail:
        return f"its log {path} is empty"
    return f"the last lines of {path}:\n" + "\n".join(tail)
