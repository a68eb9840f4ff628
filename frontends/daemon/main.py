"""Run the daemon in the foreground: `python -m frontends.daemon.main`, or `corral daemon start --foreground`.

    exit 0   an orderly shutdown (SIGTERM, SIGINT, POST /v1/shutdown), or another daemon already runs
    exit 1   the daemon could not start (unsafe runtime directory, unusable database, socket in use…)
             or its root supervisor gave up; the reason is the last line of the log

Signals are handled on the main thread, the only one Python delivers them to: SIGTERM and SIGINT ask for an
orderly shutdown (the API stops, then the supervision tree stops its children in reverse start order);
SIGHUP asks for a reload. The handlers only put a request on the daemon's queue: a handler interrupts the
main thread anywhere, possibly inside the logging module or holding a lock, so doing the work — or even
logging — inside it could deadlock.

The log goes to stderr with timestamps; `corral daemon start` points stderr at `<runtime dir>/daemon.log`.

Under a heart (heart.py: `corral daemon start` and every autostart), the heart's variables tell the daemon two
things, and are removed from its environment at once so that no agent inherits them: a pipe to write `ready`
to once it serves (the heart then knows it started), and that a heart watches it — the daemon then watches its
heart in turn and starts a new one if it is lost (heartlink.py). As it returns its exit status the daemon
records it (`daemon.exit`), for a heart that adopted it and so cannot learn it from `waitpid`. A daemon that
starts removes the `daemon.stopped` marker `corral daemon stop` left.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from frontends.daemon.errors import AlreadyRunning
from frontends.daemon.heartfile import write_exit_record
from frontends.daemon.lock import PidLock
from frontends.daemon.paths import RuntimePaths
from protocols.errors import CorralError
from protocols.heart import HEART_PID_ENV, READY_FD_ENV

__all__ = ["run"]

log = logging.getLogger("corral.daemon")

_LOG_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s"


def run(runtime_dir: str | None = None) -> int:
    """Run one daemon until it is stopped; returns the exit status."""
    ready_fd = _take_ready_fd()
    under_heart = os.environ.pop(HEART_PID_ENV, None) is not None
    _setup_logging()
    try:
        paths = RuntimePaths.resolve(runtime_dir).prepare()
        lock = PidLock.acquire(paths.pid_file)
    except AlreadyRunning as exc:
        print(f"corral daemon: {exc}", file=sys.stderr)
        return 0
    except CorralError as exc:
        log.error("cannot start: %s", exc)
        return 1
    with lock:
        _forget_stop(paths)
        code = 1
        try:
            code = _serve(paths, ready_fd, under_heart)
        finally:
            write_exit_record(paths, os.getpid(), code)
        return code


def _serve(paths: RuntimePaths, ready_fd: int | None, under_heart: bool) -> int:
    from frontends.daemon.config import DaemonConfig
    from frontends.daemon.heartlink import HeartLink
    from frontends.daemon.root import Daemon

    daemon = Daemon(DaemonConfig.load(paths), heart=HeartLink(paths, under_heart=under_heart))
    previous = _install_signal_handlers(
        {
            signal.SIGTERM: lambda: daemon.request_stop("SIGTERM"),
            signal.SIGINT: lambda: daemon.request_stop("SIGINT"),
            signal.SIGHUP: lambda: daemon.request_reload("SIGHUP"),
        }
    )
    try:
        try:
            daemon.start()
        except CorralError as exc:
            log.error("cannot start: %s", exc)
            return 1
        _tell_ready(ready_fd)
        return daemon.run_until_stopped()
    finally:
        daemon.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _take_ready_fd() -> int | None:
    """The heart's readiness pipe, if we were given one (and it is open), no longer inheritable by agents."""
    text = os.environ.pop(READY_FD_ENV, "")
    if not text.isdigit():
        return None
    fd = int(text)
    try:
        os.set_inheritable(fd, False)
    except OSError:
        return None
    return fd


def _tell_ready(fd: int | None) -> None:
    if fd is None:
        return
    try:
        os.write(fd, b"ready\n")
    except OSError:
        pass  # the heart is gone: it will be replaced, and a new one adopts a running daemon as ready
    finally:
        os.close(fd)


def _forget_stop(paths: RuntimePaths) -> None:
    try:
        paths.stopped_file.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove %s: %s", paths.stopped_file, exc.strerror)


def _install_signal_handlers(actions: dict[signal.Signals, Callable[[], None]]) -> dict[signal.Signals, Any]:
    previous = {}
    for signum, action in actions.items():

        def handler(_signum: int, _frame: FrameType | None, action: Callable[[], None] = action) -> None:
            action()

        previous[signum] = signal.signal(signum, handler)
    return previous


def _setup_logging() -> None:
    level = logging.DEBUG if os.environ.get("CORRAL_DEBUG") == "1" else logging.INFO
    from frontends.daemon.logsink import DaemonLogHandler

    handler = DaemonLogHandler(sys.stderr)  # counts the lines a full disk drops (corral daemon status)
    handler.setFormatter(logging.Formatter(_LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


if __name__ == "__main__":
    raise SystemExit(run())
