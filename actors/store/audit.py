"""The audit log: who changed what, when, and why; newest first when read."""

from __future__ import annotations

from typing import Any

import msgspec

from actors.store.base import StoreBase
from actors.store.rows import AUDIT_COLUMNS
from protocols.errors import UsageError
from protocols.records import AuditEvent, AuditLevel, task_name

__all__ = ["AuditMixin"]

_LEVELS = tuple(level.value for level in AuditLevel)
_encode = msgspec.json.Encoder().encode


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

    def list_audit(
        self, project_id: int | None = None, *, task: str = "", limit: int = 100
    ) -> list[AuditEvent]:
        """Audit events, newest first; `task` narrows to one task (within the project, if one is given)."""
        where: list[str] = []
        args: list[object] = []
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
