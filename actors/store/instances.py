"""Instances: each agent's spec essentials and last known state, so a restarted daemon can bring it back.

    store.upsert_instance(InstanceRecord(project="app", title="fix-login", program="claude", mode="tmux",
                                         status="loading", session="corral_app_fix-login"))
    store.set_instance_status("app", "fix-login", "ready", pid=48305)
    [r.title for r in store.list_instances("app")]

An Instance writes its own row, from its own thread through a Store it opened there, when it starts and at
every status change; the daemon reads them all once at startup (`list_instances()`) to re-adopt or resume
what was running. Projects are named, not numbered: an Instance knows its project's name only.
"""

from __future__ import annotations

from actors.store.base import StoreBase
from protocols.errors import ConflictError, NotFoundError
from protocols.records import InstanceRecord

__all__ = ["InstancesMixin"]

# Record field → column of `instances` (project comes from the join).
_COLUMNS = {
    "project": "p.name",
    "title": "i.title",
    "program": "i.program",
    "mode": "i.execution_mode",
    "prompt": "i.prompt",
    "task": "i.task",
    "agent_type": "i.agent_type",
    "wave": "i.wave_number",
    "branch": "i.branch",
    "worktree_mode": "i.worktree_mode",
    "worktree_path": "i.worktree_path",
    "base_commit": "i.base_commit",
    "session": "i.session_name",
    "resource_profile": "i.resource_profile",
    "sdk_session_id": "i.sdk_session_id",
    "status": "i.status",
    "reason": "i.status_reason",
    "restarts": "i.restarts",
    "pid": "i.pid",
    "worked": "i.worked",
    "attempt_key": "i.attempt_key",
    "created_at": "i.created_at",
    "updated_at": "i.updated_at",
}
_SELECT = f"SELECT {', '.join(_COLUMNS.values())} FROM instances i JOIN projects p ON p.id = i.project_id"
_WRITABLE = [c.removeprefix("i.") for f, c in _COLUMNS.items() if f not in ("project", "created_at")]
_UPSERT = (
    f"INSERT INTO instances (project_id, {', '.join(_WRITABLE)}, created_at) "
    f"VALUES (?, {', '.join('?' for _ in _WRITABLE)}, ?) "
    f"ON CONFLICT (project_id, title) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _WRITABLE if c != "title")
    + ", created_at = coalesce(nullif(?, ''), instances.created_at)"
)
_PROJECT_ID = "SELECT id FROM projects WHERE name = ?"
_STATUS = (
    "UPDATE instances SET status = ?, status_reason = ?, restarts = coalesce(?, restarts), "
    "pid = CASE WHEN ? THEN ? ELSE pid END, sdk_session_id = coalesce(?, sdk_session_id), updated_at = ? "
    "WHERE project_id = ? AND title = ?"
)
_DELETE = "DELETE FROM instances WHERE project_id = ? AND title = ?"
_RENAME = "UPDATE instances SET title = ?, updated_at = ? WHERE project_id = ? AND title = ?"
_TAKEN = "SELECT 1 FROM instances WHERE project_id = ? AND title = ?"
_KEEP = object()


class InstancesMixin(StoreBase):
    def upsert_instance(self, record: InstanceRecord) -> InstanceRecord:
        """Insert the instance's row, or replace every field of the one with its title (its `created_at` is
        kept unless the record gives one: a new start over an old row). `updated_at` is now; returns the row
        as stored. NotFoundError if the project is unknown."""
        now = self._now()
        values = [getattr(record, f) for f in _COLUMNS if f not in ("project", "created_at")]
        values[_WRITABLE.index("updated_at")] = now
        with self._write():
            project_id = self._project_id(record.project)
            self._conn.execute(_UPSERT, (project_id, *values, record.created_at or now, record.created_at))
        return self.get_instance(record.project, record.title)

    def get_instance(self, project: str, title: str) -> InstanceRecord:
        """The instance called `title` in `project`; NotFoundError if there is none."""
        row = self._conn.execute(f"{_SELECT} WHERE p.name = ? AND i.title = ?", (project, title)).fetchone()
        if row is None:
            raise NotFoundError(f'no instance "{title}" recorded in project {project}')
        return _record(row)

    def list_instances(self, project: str | None = None) -> list[InstanceRecord]:
        """Every recorded instance (of `project` when given), by project and then in creation order."""
        if project is None:
            rows = self._conn.execute(f"{_SELECT} ORDER BY p.name, i.id")
        else:
            rows = self._conn.execute(f"{_SELECT} WHERE p.name = ? ORDER BY i.id", (project,))
        return [_record(row) for row in rows]

    def set_instance_status(
        self,
        project: str,
        title: str,
        status: str,
        reason: str = "",
        *,
        restarts: int | None = None,
        pid: int | object | None = _KEEP,
        sdk_session_id: str | None = None,
    ) -> bool:
        """Record a status change (and, when given, the restarts, the agent's pid — None: not running — and
        the conversation id). False when no such row exists (nothing is written)."""
        set_pid = pid is not _KEEP
        with self._write():
            project_id = self._project_id(project)
            self._conn.execute(
                _STATUS,
                (
                    status,
                    reason,
                    restarts,
                    set_pid,
                    pid if set_pid else None,
                    sdk_session_id,
                    self._now(),
                    project_id,
                    title,
                ),
            )
            return self._conn.changes() == 1

    def rename_instance(self, project: str, title: str, new_title: str) -> InstanceRecord:
        """Give the instance's row another title (everything else stays: session, branch, worktree) → the
        row as stored. NotFoundError without such a row; ConflictError when `new_title` is taken."""
        with self._write():
            project_id = self._project_id(project)
            if self._conn.execute(_TAKEN, (project_id, new_title)).fetchone() is not None:
                raise ConflictError(f'instance "{new_title}" already exists in project {project}')
            self._conn.execute(_RENAME, (new_title, self._now(), project_id, title))
            if self._conn.changes() != 1:
                raise NotFoundError(f'no instance "{title}" recorded in project {project}')
        return self.get_instance(project, new_title)

    def delete_instance(self, project: str, title: str) -> bool:
        """Forget the instance; False when there was no such row."""
        with self._write():
            self._conn.execute(_DELETE, (self._project_id(project), title))
            return self._conn.changes() == 1

    def _project_id(self, name: str) -> int:
        project_id = self._conn.execute(_PROJECT_ID, (name,)).get
        if project_id is None:
            raise NotFoundError(f'no project named "{name}"')
        return int(project_id)


def _record(row: tuple[object, ...]) -> InstanceRecord:
    fields = dict(zip(_COLUMNS, row, strict=True))
    fields["worked"] = bool(fields["worked"])
    return InstanceRecord(**fields)  # type: ignore[arg-type]
