"""The schema, as an append-only list of migrations keyed by `PRAGMA user_version`.

`MIGRATIONS[i]` takes a database from version i to i + 1. Never edit a migration once it has shipped: append
a new one. `migrate` applies the missing ones in one IMMEDIATE transaction, so several processes opening a new
database at once migrate it exactly once, and a process killed half-way leaves it at the old version.
"""

from __future__ import annotations

from pathlib import Path

import apsw

from actors.store.db import write_txn
from protocols.errors import StoreError

__all__ = ["APPLICATION_ID", "MIGRATIONS", "SCHEMA_VERSION", "migrate"]

# PRAGMA application_id marks the file as corral's (the ASCII of "crrl").
APPLICATION_ID = 0x6372726C

_V1 = f"""
PRAGMA application_id = {APPLICATION_ID};

CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    root        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
) STRICT;

CREATE TABLE topics (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (project_id, name)
) STRICT;

CREATE TABLE tasks (
    id               INTEGER PRIMARY KEY,
    project_id       INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    title            TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL DEFAULT 'ready' CHECK (status IN ('ready', 'planning', 'implementing',
                         'reviewing', 'verifying', 'done', 'cancelled')),
    phase            TEXT NOT NULL DEFAULT '',
    topic_id         INTEGER REFERENCES topics(id) ON DELETE SET NULL,
    branch           TEXT NOT NULL DEFAULT '',
    content          TEXT NOT NULL DEFAULT '',
    review_cycle     INTEGER NOT NULL DEFAULT 0,
    latest_feedback  TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    ready_at         TEXT NOT NULL DEFAULT '',
    planning_at      TEXT NOT NULL DEFAULT '',
    implementing_at  TEXT NOT NULL DEFAULT '',
    reviewing_at     TEXT NOT NULL DEFAULT '',
    verifying_at     TEXT NOT NULL DEFAULT '',
    done_at          TEXT NOT NULL DEFAULT '',
    cancelled_at     TEXT NOT NULL DEFAULT '',
    UNIQUE (project_id, name)
) STRICT;
CREATE INDEX tasks_topic ON tasks(topic_id) WHERE topic_id IS NOT NULL;

CREATE TABLE wave_tasks (
    id           INTEGER PRIMARY KEY,
    task_id      INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    wave_number  INTEGER NOT NULL CHECK (wave_number >= 1),
    task_number  INTEGER NOT NULL CHECK (task_number >= 1),
    title        TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'running', 'complete', 'failed')),
    instance     TEXT NOT NULL DEFAULT '',
    attempts     INTEGER NOT NULL DEFAULT 0,
    updated_at   TEXT NOT NULL,
    UNIQUE (task_id, task_number)
) STRICT;

CREATE TABLE instances (
    id                INTEGER PRIMARY KEY,
    project_id        INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    title             TEXT NOT NULL,
    task_id           INTEGER REFERENCES tasks(id) ON DELETE SET NULL,
    agent_type        TEXT NOT NULL DEFAULT '',
    program           TEXT NOT NULL DEFAULT '',
    execution_mode    TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL DEFAULT '',
    status_reason     TEXT NOT NULL DEFAULT '',
    branch            TEXT NOT NULL DEFAULT '',
    worktree_path     TEXT NOT NULL DEFAULT '',
    session_name      TEXT NOT NULL DEFAULT '',
    pid               INTEGER,
    restarts          INTEGER NOT NULL DEFAULT 0,
    resource_profile  TEXT NOT NULL DEFAULT '',
    sdk_session_id    TEXT NOT NULL DEFAULT '',
    wave_number       INTEGER,
    task_number       INTEGER,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    UNIQUE (project_id, title)
) STRICT;
CREATE INDEX instances_task ON instances(task_id) WHERE task_id IS NOT NULL;

CREATE TABLE signals (
    id            INTEGER PRIMARY KEY,
    project_id    INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    task          TEXT NOT NULL,
    signal_type   TEXT NOT NULL,
    payload       TEXT NOT NULL DEFAULT '',
    source        TEXT NOT NULL DEFAULT 'agent',
    status        TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'processing', 'done', 'failed')),
    result        TEXT NOT NULL DEFAULT '',
    created_at    TEXT NOT NULL,
    claimed_by    TEXT NOT NULL DEFAULT '',
    claimed_at    TEXT NOT NULL DEFAULT '',
    processed_at  TEXT NOT NULL DEFAULT '',
    attempts      INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX signals_pending ON signals(id) WHERE status = 'pending';
CREATE INDEX signals_processing ON signals(claimed_at) WHERE status = 'processing';
CREATE INDEX signals_task ON signals(project_id, task);

CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY,
    ts          TEXT NOT NULL,
    project_id  INTEGER REFERENCES projects(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    level       TEXT NOT NULL DEFAULT 'info' CHECK (level IN ('debug', 'info', 'warn', 'error')),
    message     TEXT NOT NULL,
    task        TEXT NOT NULL DEFAULT '',
    instance    TEXT NOT NULL DEFAULT '',
    wave        INTEGER,
    signal_id   INTEGER,
    detail      TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX audit_project_task ON audit_events(project_id, task);

CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    task        TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    done_at     TEXT NOT NULL DEFAULT '',
    signal_id   INTEGER
) STRICT;
CREATE INDEX outbox_pending ON outbox(id) WHERE status = 'pending';
"""

# An instance's spec essentials that v1 lacked, for re-starting it after a daemon restart (issue 4 §5).
_V2 = """
ALTER TABLE instances ADD COLUMN prompt TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN task TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN worktree_mode TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN base_commit TEXT NOT NULL DEFAULT '';
"""

# Whether an agent did any work before it ended: a wave task whose agent exits cleanly is complete only if it
# worked, and a daemon restarted after the exit must still know (issue 4 §3).
_V3 = """
ALTER TABLE instances ADD COLUMN worked INTEGER NOT NULL DEFAULT 0;
"""

# Which attempt of a wave task an agent is (`<implementing_at>#<attempt>`): told apart by equality, not by
# comparing stamps, which a wall clock stepping back could confuse.
_V4 = """
ALTER TABLE instances ADD COLUMN attempt_key TEXT NOT NULL DEFAULT '';
"""

# Why a task waits for a person, and the commands that answer it (issue 8 §3): shown by task list and show and
# the API, not only in the audit log. JSON of protocols.records.TaskWaiting; '' when the task does not wait.
_V5 = """
ALTER TABLE tasks ADD COLUMN waiting TEXT NOT NULL DEFAULT '';
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5)
SCHEMA_VERSION = len(MIGRATIONS)


def _check_version(version: int, path: Path) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {version}, newer than this corral understands ({SCHEMA_VERSION}): "
            "upgrade corral, or set CORRAL_HOME to use another database"
        )


# One statement, so one snapshot: read separately, another process's migration could commit in between.
_INSPECT = (
    "SELECT (SELECT user_version FROM pragma_user_version), "
    "(SELECT application_id FROM pragma_application_id), (SELECT count(*) FROM sqlite_schema)"
)


def _inspect(conn: apsw.Connection, path: Path) -> int:
    """The schema version, after refusing a database that is not corral's or is newer than this corral."""
    version, app_id, objects = conn.execute(_INSPECT).fetchone()
    if app_id != APPLICATION_ID and (app_id != 0 or version != 0 or objects != 0):
        raise StoreError(
            f"{path} is a SQLite database but not corral's: move it away, or set CORRAL_HOME to another "
            "directory"
        )
    _check_version(version, path)
    return int(version)


def migrate(conn: apsw.Connection, path: Path) -> int:
    """Bring the database at `path` to SCHEMA_VERSION and return the version it was at."""
    version = _inspect(conn, path)
    if version == SCHEMA_VERSION:
        return version
    with write_txn(conn, path):
        version = _inspect(conn, path)  # again, under the write lock: another process may have migrated
        for index in range(version, SCHEMA_VERSION):
            try:
                conn.execute(MIGRATIONS[index])
            except apsw.SQLError as exc:  # a bug in a migration: the transaction rolls back to `version`
                raise StoreError(f"cannot migrate {path} to schema version {index + 1}: {exc}") from exc
            conn.execute(f"PRAGMA user_version = {index + 1}")
    return version
