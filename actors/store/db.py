"""Where the database lives, how a connection is opened, and the one way to write: `write_txn`.

Every connection gets the same pragmas: WAL (readers never block the writer), `synchronous=NORMAL` set
explicitly (apsw's SQLite defaults to FULL in WAL; NORMAL cannot corrupt the database and loses nothing when a
process is killed, only possibly the last commits on power loss), foreign keys on, and a busy timeout so that
writers from several processes queue for the lock instead of failing at once.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import apsw

from protocols.errors import StoreError

__all__ = ["ENVIRONMENT_ERRORS", "connect", "default_db_path", "write_txn"]

# Errors that say something about the file or the machine (locked, full, unreadable), never about the data:
# they become StoreError. Anything else apsw raises (a constraint, a misuse) is a bug and propagates as is.
ENVIRONMENT_ERRORS: tuple[type[apsw.Error], ...] = (
    apsw.BusyError,
    apsw.LockedError,
    apsw.IOError,
    apsw.FullError,
    apsw.CorruptError,
    apsw.NotADBError,
    apsw.CantOpenError,
    apsw.ReadOnlyError,
    apsw.PermissionsError,
    apsw.ProtocolError,
)


def default_db_path() -> Path:
    """$CORRAL_HOME/corral.db, else $XDG_DATA_HOME/corral/corral.db, else ~/.local/share/corral/corral.db."""
    if home := os.environ.get("CORRAL_HOME"):
        return Path(home).expanduser() / "corral.db"
    if data := os.environ.get("XDG_DATA_HOME"):
        return Path(data).expanduser() / "corral" / "corral.db"
    return Path.home() / ".local" / "share" / "corral" / "corral.db"


def connect(path: Path, *, busy_timeout_ms: int) -> apsw.Connection:
    """Open `path` (creating it, and its directory mode 0700) with corral's pragmas; StoreError names it."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the directory of the corral database {path}: {exc.strerror}"
        ) from None
    try:
        conn = apsw.Connection(
            str(path), flags=apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE, statementcachesize=256
        )
    except apsw.Error as exc:
        raise StoreError(f"cannot open the corral database {path}: {exc}") from None
    try:
        conn.set_busy_timeout(busy_timeout_ms)
        _enter_wal(conn, path, busy_timeout_ms / 1000)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
    except apsw.NotADBError:
        conn.close()
        raise StoreError(
            f"{path} is not a SQLite database: move it away, or set CORRAL_HOME to another directory"
        ) from None
    except ENVIRONMENT_ERRORS as exc:
        conn.close()
        raise StoreError(f"cannot open the corral database {path}: {exc}") from None
    except BaseException:
        conn.close()
        raise
    return conn


def _enter_wal(conn: apsw.Connection, path: Path, timeout_s: float) -> None:
    """Switch to WAL (a no-op once the file is in WAL: the mode is persistent).

    Only the first switch of a new file needs an exclusive lock, and SQLite reports BUSY at once, without
    calling the busy handler, when two connections race for it (waiting could deadlock). So several processes
    creating the database together retry here, for as long as the busy timeout allows.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.001
    while True:
        try:
            mode = str(conn.execute("PRAGMA journal_mode=WAL").get).lower()
        except apsw.BusyError:
            mode = "busy"
        if mode == "wal":
            return
        if time.monotonic() + delay > deadline:
            raise StoreError(f"cannot put the corral database {path} in WAL mode (journal mode: {mode})")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


@contextlib.contextmanager
def write_txn(conn: apsw.Connection, path: Path) -> Iterator[None]:
    """One `BEGIN IMMEDIATE` … `COMMIT` transaction; rolled back if anything in it raises, or if COMMIT fails.

    IMMEDIATE takes the write lock before the first read, so a read-modify-write never sees a snapshot that
    another process has already changed (a DEFERRED transaction would fail with SQLITE_BUSY_SNAPSHOT at its
    first write). A process killed inside the block leaves only uncommitted WAL frames, which SQLite ignores.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
    except ENVIRONMENT_ERRORS as exc:
        raise StoreError(f"cannot write the corral database {path}: {exc}") from None
    try:
        yield
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, ENVIRONMENT_ERRORS):
            raise StoreError(f"cannot write the corral database {path}: {exc}") from exc
        raise
