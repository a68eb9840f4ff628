"""What every part of the Store shares: the connection, the clock, the write transaction, and the two rows
nearly every write adds (an audit event, an outbox item).

The Store is assembled from one mixin per concern (projects, tasks, lifecycle, signals, applying, audit,
outbox, waves); each of them is a `StoreBase` and reads and writes only through it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import NamedTuple

import apsw

from actors.clock import Clock, utc_stamp
from actors.store.db import write_txn
from protocols.errors import NotFoundError, UsageError
from protocols.fsm import Source

__all__ = ["StoreBase", "TaskState", "parse_source"]

_INSERT_AUDIT = (
    "INSERT INTO audit_events (ts, project_id, kind, level, message, task, instance, wave, signal_id, "
    "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_OUTBOX = (
    "INSERT INTO outbox (key, project_id, task, kind, payload, created_at, signal_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING"
)
_PROJECT_NAME = "SELECT name FROM projects WHERE id = ?"
_TASK_STATE = (
    "SELECT t.id, t.project_id, t.name, t.status, t.phase, t.topic_id, coalesce(tp.name, '') "
    "FROM tasks t LEFT JOIN topics tp ON tp.id = t.topic_id WHERE t.project_id = ? AND t.name = ?"
)


_SOURCES = {s.value: s for s in Source}


def parse_source(value: str) -> Source:
    """A Source from its name; `protocols.fsm.transition` tests `source is Source.AGENT`, so a plain "agent"
    string must never reach it."""
    source = _SOURCES.get(value)
    if source is None:
        raise UsageError(f'unknown source "{value}"; sources are: {", ".join(Source)}')
    return source


class TaskState(NamedTuple):
    """The columns of a task that deciding a transition needs."""

    id: int
    project_id: int
    name: str
    status: str
    phase: str
    topic_id: int | None
    topic: str


class StoreBase:
    """One apsw connection, used from one thread, and the clock that stamps every row."""

    path: Path
    _conn: apsw.Connection
    _clock: Clock

    def _now(self) -> str:
        return utc_stamp(self._clock.now())

    def _write(self) -> contextlib.AbstractContextManager[None]:
        return write_txn(self._conn, self.path)

    def _project_name(self, project_id: int) -> str:
        """The project's name, or NotFoundError: for messages, and to check a project id before writing."""
        name = self._conn.execute(_PROJECT_NAME, (project_id,)).get
        if name is None:
            raise NotFoundError(f"no project with id {project_id}")
        return str(name)

    def _task_state(self, project_id: int, name: str) -> TaskState:
        row = self._conn.execute(_TASK_STATE, (project_id, name)).fetchone()
        if row is None:
            raise NotFoundError(f'no task named "{name}" in project {self._project_name(project_id)}')
        return TaskState(*row)

    def _insert_audit(
        self,
        ts: str,
        project_id: int | None,
        kind: str,
        level: str,
        message: str,
        *,
        task: str = "",
        instance: str = "",
        wave: int | None = None,
        signal_id: int | None = None,
        detail: str = "",
    ) -> int:
        self._conn.execute(
            _INSERT_AUDIT, (ts, project_id, kind, level, message, task, instance, wave, signal_id, detail)
        )
        return self._conn.last_insert_rowid()

    def _insert_outbox(
        self, key: str, project_id: int, task: str, kind: str, payload: str, ts: str, signal_id: int | None
    ) -> bool:
        """Record a side effect to perform after commit; False if one with this key is already recorded."""
        self._conn.execute(_INSERT_OUTBOX, (key, project_id, task, kind, payload, ts, signal_id))
        return self._conn.changes() == 1
