"""The pid lock: at most one daemon per runtime directory, decided by the kernel.

    with PidLock.acquire(paths.pid_file):     # AlreadyRunning(pid) if another daemon holds it
        run the daemon

The lock is `flock(LOCK_EX | LOCK_NB)` on `daemon.pid`, held through one file descriptor for the daemon's
whole life. Why this shape:

- The kernel drops the lock when the process dies, however it dies: a pid file left behind by `kill -9`
  never blocks the next start, and nobody has to guess whether the pid in it is still ours.
- `flock`, not `fcntl.lockf`: a POSIX record lock is released when the process closes *any* descriptor of
  the file, so merely reading the pid file (to print it in `status`) would unlock the daemon.
- The descriptor is close-on-exec: an agent or tmux server the daemon starts must not inherit the lock,
  or it would outlive the daemon and block every later start.
- The file is never unlinked, only emptied on release. Unlinking a lock file races: a starter that opened
  the old inode just before the unlink locks a file nobody else can see, while a third process creates and
  locks a new one — two daemons.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from frontends.daemon.errors import AlreadyRunning

__all__ = ["PidLock", "lock_holder", "pid_alive", "read_pid"]


class PidLock:
    """An exclusive lock on the pid file, with our pid written in it. Release it once (or use `with`)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, path: Path) -> PidLock:
        """Lock `path` (created 0600) and write our pid; AlreadyRunning with the holder's pid if taken."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(read_pid(path)) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Empty the pid file and drop the lock. Idempotent."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the last descriptor of the open file description drops the flock

    def __enter__(self) -> PidLock:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def read_pid(path: Path) -> int | None:
    """The pid written in `path`, or None if the file is missing, empty (no daemon, or one still starting) or
    garbled. Says nothing about whether that process still runs."""
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def lock_holder(path: Path) -> int | None:
    """The pid of the process holding the lock on `path` now, or None if nobody holds it (or the file is
    missing). Read from the kernel's table of locks (/proc/locks), not by trying the lock: a probe that took
    the lock for an instant could make a daemon starting at that instant believe another one runs. Falls back
    to the pid written in the file, if that process lives, where /proc/locks cannot be read."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    wanted = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}".encode()
    try:
        with open("/proc/locks", "rb") as table:
            lines = table.read().splitlines()
    except OSError:
        pid = read_pid(path)
        return pid if pid is not None and pid_alive(pid) else None
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 4242 fe:00:2148837 0 EOF" (a blocked waiter's line has "->" after "1:")
        if len(fields) >= 6 and fields[1] == b"FLOCK" and fields[3] == b"WRITE" and fields[5] == wanted:
            return int(fields[4]) if fields[4].isdigit() else None
    return None


def pid_alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[-1].split()
        return bool(fields) and fields[0] != b"Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
