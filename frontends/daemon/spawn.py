"""Starting the daemon in the background, under its heart, as `corral daemon start` and every autostart do.

    started = start_daemon(DaemonClient(), timeout=20)  # Started: pids of the daemon and its heart, and
                                                        # whether this call started them
    spawn_heart(paths)                                  # a heart, detached, not waited for (an agent's emit)

What is started is the heart (`python -m frontends.daemon.heart`, see heart.py), which starts the daemon as
its child and restarts it after an abnormal exit. Both are detached from the client: a session of their own
(no terminal's Ctrl-C or hang-up reaches them), stdin from /dev/null, stdout and stderr appended to `<runtime
dir>/daemon.log`, working directory `/` (they must not keep a repository's directory busy), no other
descriptor of ours. Paths in the environment that the daemon reads are made absolute first, since its working
directory is not ours, and the variables of an agent's session (CORRAL_MANAGED…) are dropped: the daemon is
nobody's agent.

Then we wait, on a condition rather than a fixed delay, until `GET /v1/ping` answers:
- our heart exits 0 before that: another heart holds the heart lock (a client starting at the same moment, or
  a heart restarting a daemon that died), so we keep waiting for its daemon — or start again if it has gone
  too;
- our heart exits otherwise: the daemon could not start; the error carries the heart's reason and the last
  lines of the log;
- nothing answers within the timeout: the same error, with the log.
Exactly one heart and one daemon survive however many clients start them at once: each has a pid lock.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from frontends.daemon.errors import DaemonStartError
from frontends.daemon.lock import lock_holder
from frontends.daemon.paths import RUNTIME_ENV, RuntimePaths

if TYPE_CHECKING:
    from frontends.daemon.client import DaemonClient

__all__ = [
    "Started",
    "daemon_command",
    "heart_command",
    "log_tail",
    "open_log",
    "read_stopped_marker",
    "spawn_heart",
    "start_daemon",
]

_PATH_VARIABLES = ("CORRAL_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME")
_LOG_ROTATE_BYTES = 4 * 1024 * 1024
_TAIL_LINES = 15


@dataclass(frozen=True)
class Started:
    """The daemon a client made sure of: its pid, its heart's, whether this client started it, and whether
    it had been stopped on purpose (`corral daemon stop`) before."""

    pid: int
    version: str
    heart_pid: int | None = None
    started: bool = False
    stopped_at: str = ""

    @property
    def notice(self) -> str:
        """What a command that started the daemon says on stderr."""
        line = f"started the corral daemon, pid {self.pid}"
        if self.stopped_at:
            line += f" (it had been stopped with `corral daemon stop` at {self.stopped_at})"
        return line


def daemon_command() -> list[str]:
    """The argv that runs a daemon in the foreground with this interpreter."""
    return [sys.executable, "-m", "frontends.daemon.main"]


def heart_command() -> list[str]:
    """The argv that runs a heart (which runs the daemon) with this interpreter."""
    return [sys.executable, "-m", "frontends.daemon.heart"]


def _environment(runtime_dir: Path) -> dict[str, str]:
    from protocols.config import MANAGED_ENV_KEYS
    from protocols.heart import HEART_PID_ENV, READY_FD_ENV

    dropped = MANAGED_ENV_KEYS | {HEART_PID_ENV, READY_FD_ENV}
    env = {name: value for name, value in os.environ.items() if name not in dropped}
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


def open_log(path: Path) -> int:
    """A descriptor appending to the daemon's log, moved to `<log>.1` first when it is past 4 MiB."""
    try:
        if path.stat().st_size > _LOG_ROTATE_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)


def spawn_heart(paths: RuntimePaths) -> subprocess.Popen[bytes]:
    """Start a detached heart for the runtime directory `paths` (created and checked first). Not waited for:
    the caller polls it, or simply exits (the heart is then adopted by init, as a daemon should be)."""
    paths = paths.prepare()
    log_fd = open_log(paths.log_file)
    try:
        return subprocess.Popen(
            heart_command(),
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


def read_stopped_marker(paths: RuntimePaths) -> str:
    """When `corral daemon stop` last stopped the daemon (its UTC stamp, shortened), or "" if no daemon has
    started since."""
    try:
        text = paths.stopped_file.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
    return text.replace("T", " ").split(".")[0] + " UTC" if text else "an unknown time"


def start_daemon(client: DaemonClient, timeout: float = 20.0) -> Started:
    """Start a heart (which starts the daemon) and wait until the daemon answers. See the module doc.

    No heart is started while a daemon holds the pid lock: that daemon is starting, or too busy to answer a
    ping at once, and has its own heart, or systemd, or replaces a lost heart itself. We only wait for it."""
    paths = client.paths
    deadline = time.monotonic() + timeout
    stopped_at = read_stopped_marker(paths)
    heart: subprocess.Popen[bytes] | None = None
    delay = 0.002
    while True:
        pong = client.ping(timeout=max(0.05, min(1.0, deadline - time.monotonic())))
        if pong is not None:
            holder = lock_holder(paths.heart_pid_file)
            ours = heart is not None and holder == heart.pid
            if heart is not None:
                _reap_in_background(heart)
            return Started(
                pid=int(pong["pid"]),
                version=str(pong.get("version", "")),
                heart_pid=holder,
                started=ours,
                stopped_at=stopped_at if ours else "",
            )
        code = heart.poll() if heart is not None else None
        if heart is not None and code not in (None, 0):
            raise DaemonStartError(_start_failure(paths, heart.pid, f"its heart exited with status {code}"))
        nobody = lock_holder(paths.heart_pid_file) is None and lock_holder(paths.pid_file) is None
        if nobody and heart is not None and code == 0 and _gave_up(paths):
            raise DaemonStartError(_start_failure(paths, None, "its heart gave up"))
        if nobody and (heart is None or code == 0):
            # No daemon, no heart: start one (again, if the heart we lost to has gone meanwhile).
            heart = spawn_heart(paths)
        if time.monotonic() > deadline:
            raise DaemonStartError(
                f"the corral daemon did not answer on {client.socket} within {timeout:g} s; "
                f"{_log_excerpt(paths.log_file)}"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _gave_up(paths: RuntimePaths) -> bool:
    from frontends.daemon.heartfile import read_state

    state = read_state(paths)
    return state is not None and state.state == "gave_up"


def _start_failure(paths: RuntimePaths, heart_pid: int | None, fallback: str) -> str:
    """Why the daemon could not start, from its heart's state (the reason it gave up), and the log."""
    from frontends.daemon.heartfile import read_state

    state = read_state(paths)
    ours = state is not None and (heart_pid is None or state.pid == heart_pid)
    last = state.last_exit if ours and state is not None and state.state == "gave_up" else None
    reason = last.reason if last is not None else fallback
    return f"the corral daemon could not start ({reason}); {_log_excerpt(paths.log_file)}"


def _reap_in_background(process: subprocess.Popen[bytes]) -> None:
    """The heart is our child until we exit: wait for it on a daemon thread, so it never lingers as a zombie
    in a long-lived client (the dashboard) and `Popen` never warns that it is still running."""
    if process.poll() is None:
        threading.Thread(target=process.wait, name="corral-heart-reaper", daemon=True).start()


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
