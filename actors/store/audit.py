"""The audit log: who changed what, when, and why; newest first when read."""

from __future__ import annotations

from typing import Any

import msgspec

from actors.store.base import StoreBase
from actors.store.rows import AUDIT_COLUMNS
from protocols.errors import UsageError
from protocols.records import AuditEvent, AuditLevel, task_name

__all__ = ["AuditEntry", "AuditMixin"]

_LEVELS = tuple(level.value for level in AuditLevel)
_encode = msgspec.json.Encoder().encode


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One row for `record_audit_many`; `ts` "" = now; `detail` is already JSON (or "")."""

    kind: str
    message: str
    project_id: int | None = None
    level: str = "info"
    task: str = ""
    instance: str = ""
    wave: int | None = None
    detail: str = ""
    ts: str = ""


class AuditMixin(StoreBase):
    def record_audit(
        self,
        project_id: int | None,
        kind: str,
        message: str,
        *,
        task: str = "",
        instance: str = "",
        wave: int | None = None,
        level: str = "info",
        detail: dict[str, Any] | None = None,
        signal_id: int | None = None,
    ) -> None:
        """Append one event (committed at once); `detail` is stored as JSON."""
        if level not in _LEVELS:
            raise UsageError(f'unknown audit level "{level}"; levels are: {", ".join(_LEVELS)}')
        text = _encode(detail).decode() if detail is not None else ""
        with self._write():
            if project_id is not None:
                self._project_name(project_id)  # NotFoundError rather than a foreign key failure
            self._insert_audit(
                self._now(),
                project_id,
                kind,
                level,
                message,
                task=task,
                instance=instance,
                wave=wave,
                signal_id=signal_id,
                detail=text,
            )

    def record_audit_many(self, entries: list[AuditEntry]) -> None:
        """Append several events in one transaction (the audit recorder writes a drain at a time)."""
        for entry in entries:
            if entry.level not in _LEVELS:
                raise UsageError(f'unknown audit level "{entry.level}"; levels are: {", ".join(_LEVELS)}')
        now = self._now()
        with self._write():
            for e in entries:
                self._insert_audit(
                    e.ts or now,
                    e.project_id,
                    e.kind,
                    e.level,
                    e.message,
                    task=e.task,
                    instance=e.instance,
                    wave=e.wave,
                    detail=e.detail,
                )

    def list_audit(
        self,
        project_id: int | None = None,
        *,
        task: str = "",
        instance: str = "",
        levels: tuple[str, ...] = (),
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Audit events, newest first; `task`, `instance` and `levels` narrow them (within the project, if
        one is given; project None = every row, the daemon's project-less ones included)."""
        where: list[str] = []
        args: list[object] = []
        if instance:
            where.append("a.instance = ?")
            args.append(instance)
        if levels:
            where.append(f"a.level IN ({', '.join('?' * len(levels))})")
            args.extend(levels)
        if project_id is not None:
            # Without a task, scan newest first and stop at `limit` (the index would sort all the project's).
            where.append("a.project_id = ?" if task else "+a.project_id = ?")
            args.append(project_id)
        if task:
            where.append("a.task = ?")
            args.append(task_name(task))
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        sql = f"SELECT {AUDIT_COLUMNS} FROM audit_events a {clause}ORDER BY a.id DESC LIMIT ?"
        return [AuditEvent(*row) for row in self._conn.execute(sql, [*args, limit])]
