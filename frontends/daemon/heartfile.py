"""The heart's files in the runtime directory: its state, the daemon's exit record, who holds the heart lock.

    write_state(paths, state)                         # the heart, at every change: temp file + rename
    state = read_state(paths)                         # HeartState, or None
    report = heart_report(paths, supervised_by)       # HeartReport, for `daemon status` and GET /v1/status
    write_exit_record(paths, pid, status)             # the daemon, as it returns its exit status

Both files are written whole under a temporary name and renamed over the old one, so a reader — or a heart
killed with -9 in the middle of a write — never leaves or sees half a file. They hold nothing secret, but are
created 0600 like everything in the runtime directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from frontends.daemon.lock import lock_holder
from frontends.daemon.paths import RuntimePaths
from protocols.heart import (
    ExitRecord,
    HeartReport,
    HeartState,
    SupervisedBy,
    decode_exit_record,
    decode_state,
    encode,
    heart_problem,
    utc_now,
)

__all__ = [
    "heart_report",
    "read_exit_record",
    "read_state",
    "write_atomically",
    "write_exit_record",
    "write_state",
]


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` in one rename (mode 0600). Only one writer per file (each is owned by one
    locked process), so the temporary name need not be unique."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def write_state(paths: RuntimePaths, state: HeartState) -> None:
    write_atomically(paths.heart_state_file, encode(state))


def read_state(paths: RuntimePaths) -> HeartState | None:
    try:
        return decode_state(paths.heart_state_file.read_bytes())
    except OSError:
        return None


def write_exit_record(paths: RuntimePaths, pid: int, status: int) -> None:
    """Best effort: a daemon that cannot write it is reported by its heart as ended without an exit status."""
    try:
        write_atomically(paths.exit_record_file, encode(ExitRecord(pid=pid, status=status, at=utc_now())))
    except OSError:
        pass


def read_exit_record(paths: RuntimePaths) -> ExitRecord | None:
    try:
        return decode_exit_record(paths.exit_record_file.read_bytes())
    except OSError:
        return None


def heart_report(
    paths: RuntimePaths, supervised_by: SupervisedBy | None, respawn_failure: str = ""
) -> HeartReport:
    """The heart as it is now: whether one holds the lock, its last state, and the problem if the daemon would
    not be restarted. `supervised_by` is the daemon's own account (None when no daemon answers)."""
    holder = lock_holder(paths.heart_pid_file)
    state = read_state(paths)
    running = holder is not None
    return HeartReport(
        supervised_by=supervised_by,
        running=running,
        pid=holder,
        state=state,
        problem=heart_problem(supervised_by, running, state, respawn_failure),
    )
