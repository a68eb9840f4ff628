"""Where the database lives, how its file is made and opened, and the one way to write: `write_txn`.

Every connection gets the same pragmas: WAL (readers never block the writer), `synchronous=NORMAL` set
explicitly (apsw's SQLite defaults to FULL in WAL; NORMAL cannot corrupt the database and loses nothing when a
process is killed, only possibly the last commits on power loss), foreign keys on, a busy timeout so that
writers from several processes queue for the lock instead of failing at once, and a `journal_size_limit` so
that the -wal file is trimmed back after a checkpoint instead of keeping the size of its largest burst.

The file is private: it holds agents' prompts, plans and reviews. A new database is created 0600 (SQLite gives
its -wal and -shm the mode of the database file), and an existing one that group or others could read is
tightened, with a warning in the log.

A new database never appears half-made. `create_database` builds it under a temporary name in the same
directory, migrates it, closes it (which folds the WAL into the file) and links it into place with
`os.link`, which refuses to replace an existing file. So a process that finds `corral.db` finds a whole
corral database: several processes creating it at once each build their own, one link wins and the others
throw theirs away. A 0-byte `corral.db` can therefore only be something corral did not make (a `touch`, a
copy that failed, a disk that filled up under an older corral): it is refused with the way out, never
silently replaced — SQLite itself would take an empty file for a new database.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import apsw

from protocols.errors import DiskFullError, StoreError

__all__ = [
    "ENVIRONMENT_ERRORS",
    "JOURNAL_SIZE_LIMIT",
    "connect",
    "create_database",
    "default_db_path",
    "recovery_hint",
    "store_error",
    "verify",
    "write_txn",
]

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

JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024
"""Bytes of -wal file kept after a checkpoint has reset the log; the rest is truncated away."""

_PRIVATE = 0o600
_TEMP_PREFIX = ".creating-"  # `.creating-<pid>-<random>-corral.db`, next to the database


def default_db_path() -> Path:
    """$CORRAL_HOME/corral.db, else $XDG_DATA_HOME/corral/corral.db, else ~/.local/share/corral/corral.db."""
    if home := os.environ.get("CORRAL_HOME"):
        return Path(home).expanduser() / "corral.db"
    if data := os.environ.get("XDG_DATA_HOME"):
        return Path(data).expanduser() / "corral" / "corral.db"
    return Path.home() / ".local" / "share" / "corral" / "corral.db"


def recovery_hint(path: Path) -> str:
    """What a person can do about a database corral refuses to use (the daemon must not be running)."""
    return (
        f"move it away with its -wal and -shm files (mv {path} {path}.bad), and corral starts a new, empty "
        f"database; or set CORRAL_HOME to another directory. To save what is readable first: "
        f"sqlite3 {path} .recover | sqlite3 {path.parent / 'recovered.db'}"
    )


def store_error(exc: apsw.Error, path: Path, doing: str) -> StoreError:
    """The StoreError for an environment error while `doing` ("write", "open"…) the database at `path`: a
    DiskFullError naming the directory when the disk is full, a refusal with the recovery hint when the file
    is damaged."""
    if _disk_full(exc, path):
        return DiskFullError(
            f"cannot {doing} the corral database {path}: the disk holding {path.parent} is full; free some "
            "space there (corral picks up again by itself), or set CORRAL_HOME to a directory on another disk"
        )
    if isinstance(exc, apsw.CorruptError | apsw.NotADBError):
        return StoreError(
            f"the corral database {path} is damaged ({exc}); corral will not use it: {recovery_hint(path)}"
        )
    return StoreError(f"cannot {doing} the corral database {path}: {exc}")


def _disk_full(exc: apsw.Error, path: Path) -> bool:
    """SQLITE_FULL, or an I/O error while the file system has no space left (a failed ftruncate or mmap of
    the -shm file reports IOERR, not FULL)."""
    if isinstance(exc, apsw.FullError):
        return True
    if not isinstance(exc, apsw.IOError):
        return False
    try:
        fs = os.statvfs(path.parent)
    except OSError:
        return False
    return fs.f_bavail * fs.f_frsize < 64 * 1024


def connect(path: Path, *, busy_timeout_ms: int) -> apsw.Connection:
    """Open the existing database at `path` with corral's pragmas; StoreError naming it if it is missing,
    empty, not a database, damaged or unreachable. Use `create_database` first for one that may not exist."""
    _refuse_empty(path)
    _make_private(path)
    try:
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READWRITE, statementcachesize=256)
    except apsw.CantOpenError:
        if not path.exists():
            raise StoreError(f"the corral database {path} does not exist (it was moved or deleted)") from None
        raise StoreError(f"cannot open the corral database {path}: permission denied or not a file") from None
    except apsw.Error as exc:
        raise StoreError(f"cannot open the corral database {path}: {exc}") from None
    try:
        _configure(conn, path, busy_timeout_ms)
    except apsw.NotADBError:
        conn.close()
        raise StoreError(
            f"{path} is not a SQLite database: move it away, or set CORRAL_HOME to another directory"
        ) from None
    except ENVIRONMENT_ERRORS as exc:
        conn.close()
        raise store_error(exc, path, "open") from None
    except BaseException:
        conn.close()
        raise
    _make_private(path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
    return conn


def _configure(conn: apsw.Connection, path: Path, busy_timeout_ms: int) -> None:
    conn.set_busy_timeout(busy_timeout_ms)
    _enter_wal(conn, path, busy_timeout_ms / 1000)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")


def create_database(
    path: Path, *, busy_timeout_ms: int, prepare: Callable[[apsw.Connection, Path], object]
) -> bool:
    """Make the database at `path` if there is none: built under a temporary name, `prepare`d (migrated)
    there, then linked into place. False if another process linked its own first (theirs is kept).

    Creates the directory (mode 0700). A process killed here leaves only its temporary file, which the next
    creator removes once that process is gone.
    """
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the directory of the corral database {path}: {exc.strerror}"
        ) from None
    _sweep_temporaries(path)
    temp = path.with_name(f"{_TEMP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}-{path.name}")
    try:
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _PRIVATE))
            conn = apsw.Connection(str(temp), flags=apsw.SQLITE_OPEN_READWRITE, statementcachesize=16)
        except OSError as exc:
            raise _os_store_error(exc, path, "create") from None
        except apsw.Error as exc:
            raise store_error(exc, path, "create") from None
        try:
            _configure(conn, temp, busy_timeout_ms)
            prepare(conn, temp)
        except ENVIRONMENT_ERRORS as exc:
            raise store_error(exc, path, "create") from None
        finally:
            conn.close()  # the last connection: SQLite checkpoints the WAL into the file and removes it
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        except OSError as exc:
            raise _os_store_error(exc, path, "create") from None
        return True
    finally:
        for leftover in (temp, *_sidecars(temp)):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _sidecars(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def _os_store_error(exc: OSError, path: Path, doing: str) -> StoreError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(
            f"cannot {doing} the corral database {path}: the disk holding {path.parent} is full; free some "
            "space there, or set CORRAL_HOME to a directory on another disk"
        )
    return StoreError(f"cannot {doing} the corral database {path}: {exc.strerror or exc}")


def _sweep_temporaries(path: Path) -> None:
    """Remove the temporary databases of creators that were killed (their pid is gone)."""
    try:
        names = [n for n in os.listdir(path.parent) if n.startswith(_TEMP_PREFIX) and path.name in n]
    except OSError:
        return
    for name in names:
        pid_text = name.removeprefix(_TEMP_PREFIX).split("-", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            (path.parent / name).unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _refuse_empty(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise StoreError(f"the corral database {path} does not exist (it was moved or deleted)") from None
    except OSError as exc:
        raise StoreError(f"cannot open the corral database {path}: {exc.strerror}") from None
    if size == 0:
        raise StoreError(
            f"the corral database {path} is an empty file (0 bytes): corral never leaves one, so something "
            f"else made or truncated it, and corral will not use it: {recovery_hint(path)}"
        )


def _make_private(*paths: Path) -> None:
    """Take away group's and others' access to each of `paths` that exists, saying so in the log."""
    for path in paths:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue
        if not mode & 0o077:
            continue
        import logging  # only here: `corral signal emit` must not pay for it on every call

        log = logging.getLogger("corral.store")
        try:
            os.chmod(path, mode & 0o700)
        except OSError as exc:
            log.warning("%s is readable by others (mode %04o) and cannot be tightened: %s", path, mode, exc)
        else:
            log.warning(
                "%s was open to group or others (mode %04o): tightened to %04o (it holds agents' prompts "
                "and plans)",
                path,
                mode,
                mode & 0o700,
            )


def verify(conn: apsw.Connection, path: Path) -> None:
    """`PRAGMA quick_check`, or StoreError with what it found and the recovery hint. O(size of the file):
    for the daemon's start and `corral doctor`, not for every short command."""
    try:
        rows = [str(row[0]) for row in conn.execute("PRAGMA quick_check")]
    except ENVIRONMENT_ERRORS as exc:
        raise store_error(exc, path, "check") from None
    if rows != ["ok"]:
        found = "; ".join(rows[:3]) + (f" (and {len(rows) - 3} more)" if len(rows) > 3 else "")
        raise StoreError(
            f"the corral database {path} is damaged (PRAGMA quick_check: {found}); corral will not use "
            f"it: {recovery_hint(path)}"
        )


def _enter_wal(conn: apsw.Connection, path: Path, timeout_s: float) -> None:
    """Switch to WAL (a no-op once the file is in WAL: the mode is persistent).

    Only the first switch of a new file needs an exclusive lock, and SQLite reports BUSY at once, without
    calling the busy handler, when two connections race for it (waiting could deadlock). A database made by
    `create_database` is switched before anyone else can see it; one made by an older corral may not be, so
    this still retries for as long as the busy timeout allows.
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
    A full disk is a `DiskFullError` naming the directory.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
    except ENVIRONMENT_ERRORS as exc:
        raise store_error(exc, path, "write") from None
    try:
        yield
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            with contextlib.suppress(apsw.Error):  # a rollback on a full disk may fail too: it is undone
                conn.execute("ROLLBACK")
        if isinstance(exc, ENVIRONMENT_ERRORS):
            raise store_error(exc, path, "write") from exc
        raise
