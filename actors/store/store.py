"""`Store`: corral's state in one SQLite file, behind one connection used from one thread.

    with Store.open() as store:                        # $CORRAL_HOME/corral.db, created and migrated
        project = store.ensure_project(Path.cwd())
        store.create_task(project.id, "auth-flow", topic="auth")
        store.emit_signal(project.id, "auth-flow", "plan_start")
        outcome = store.apply_next("daemon:1234")      # exactly once, even under kill -9

Every write is one `BEGIN IMMEDIATE` transaction; reads see the last committed state. Open one Store per
thread (an actor opens its own in `on_start`); several processes may use the same file at once.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import apsw
import msgspec

from actors.clock import Clock, SystemClock
from actors.store.applying import ApplyMixin
from actors.store.audit import AuditMixin
from actors.store.db import ENVIRONMENT_ERRORS, connect, create_database, default_db_path, store_error, verify
from actors.store.instances import InstancesMixin
from actors.store.migrations import migrate
from actors.store.outbox import OutboxMixin
from actors.store.projects import ProjectsMixin
from actors.store.signals import SignalsMixin
from actors.store.tasks import TasksMixin
from actors.store.waves import WavesMixin
from protocols.errors import StoreError

__all__ = ["Checkpoint", "Store", "StoreStatistics"]

_COUNTS = (
    "SELECT (SELECT count(*) FROM signals WHERE status = 'pending'), "
    "(SELECT count(*) FROM signals WHERE status = 'processing'), "
    "(SELECT count(*) FROM outbox WHERE status = 'pending')"
)


class StoreStatistics(msgspec.Struct, frozen=True):
    """A snapshot of the queue: what is waiting to be applied or performed."""

    path: str
    schema_version: int
    signals_pending: int
    signals_processing: int
    outbox_pending: int


class Checkpoint(msgspec.Struct, frozen=True):
    """What one WAL checkpoint did: `busy` when a reader or a writer kept it from finishing."""

    mode: str
    busy: bool
    wal_frames: int  # frames in the WAL when it ran (0 after a TRUNCATE that finished)
    copied: int  # of those, frames now in the database file
    wal_bytes: int  # the -wal file's size afterwards


class Store(
    ProjectsMixin,
    TasksMixin,
    SignalsMixin,
    ApplyMixin,
    AuditMixin,
    OutboxMixin,
    WavesMixin,
    InstancesMixin,
):
    """One connection to the corral database. Not thread-safe: use it from the thread that opened it."""

    def __init__(self, conn: apsw.Connection, path: Path, clock: Clock) -> None:
        self._conn = conn
        self.path = path
        self._clock = clock

    @classmethod
    def open(
        cls,
        path: Path | None = None,
        *,
        clock: Clock | None = None,
        busy_timeout_ms: int = 5000,
        check: bool = False,
    ) -> Self:
        """Open (creating and migrating if needed) the database at `path`, default `default_db_path()`.

        StoreError, naming the path and what to do, if it is empty, not a corral database, damaged, newer
        than this corral, or cannot be opened. `check` runs `PRAGMA quick_check` first (it reads the whole
        file: the daemon's start and `corral doctor` ask for it, short commands do not). Writers wait up to
        `busy_timeout_ms` for another process's transaction to end.
        """
        db_path = Path(path) if path is not None else default_db_path()
        for _ in range(3):  # the file may be moved away between the look and the open: look again
            if not db_path.exists():
                create_database(db_path, busy_timeout_ms=busy_timeout_ms, prepare=migrate)
            try:
                conn = connect(db_path, busy_timeout_ms=busy_timeout_ms)
            except StoreError:
                if db_path.exists():
                    raise
                continue
            break
        else:
            raise StoreError(f"cannot open the corral database {db_path}: it keeps disappearing")
        try:
            if check:
                verify(conn, db_path)
            migrate(conn, db_path)
        except ENVIRONMENT_ERRORS as exc:
            conn.close()
            raise store_error(exc, db_path, "open") from None
        except BaseException:
            conn.close()
            raise
        return cls(conn, db_path, clock or SystemClock())

    def close(self) -> None:
        """Close the connection; the Store cannot be used afterwards. Closing twice is a no-op."""
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def checkpoint(self, mode: Literal["PASSIVE", "TRUNCATE"] = "PASSIVE", *, wait_ms: int = 0) -> Checkpoint:
        """Copy the WAL's frames into the database file (`PRAGMA wal_checkpoint`).

        PASSIVE copies what no reader still needs and never waits. TRUNCATE waits up to `wait_ms` for the
        writer and for readers of older snapshots, copies everything and truncates the -wal file to 0
        bytes; if the wait runs out it does what PASSIVE would (`busy` is then true). Without checkpoints
        that can finish, a WAL that readers keep pinned grows with every write.
        """
        if mode not in ("PASSIVE", "TRUNCATE"):
            raise ValueError(f"unknown checkpoint mode {mode!r}")
        before = self._conn.execute("PRAGMA busy_timeout").get
        self._conn.set_busy_timeout(wait_ms)
        try:
            busy, frames, copied = self._conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except ENVIRONMENT_ERRORS as exc:
            raise store_error(exc, self.path, "checkpoint") from None
        finally:
            self._conn.set_busy_timeout(int(before))
        try:
            size = self.path.with_name(self.path.name + "-wal").stat().st_size
        except FileNotFoundError:
            size = 0
        return Checkpoint(mode, bool(busy), max(int(frames), 0), max(int(copied), 0), size)

    def statistics(self) -> StoreStatistics:
        pending, processing, outbox = self._conn.execute(_COUNTS).fetchone()
        version = self._conn.execute("PRAGMA user_version").get
        return StoreStatistics(str(self.path), version, pending, processing, outbox)
