"""The outbox: side effects decided inside a transaction, performed after it commits.

Whoever performs an item (the daemon) marks it done or failed afterwards. A process killed between performing
and marking leaves the item pending, so it is performed again on restart: every side effect must therefore be
idempotent (spawning an agent that already runs is a no-op). The unique `key` makes recording idempotent too:
the same key twice is one item.
"""

from __future__ import annotations

from actors.store.base import StoreBase
from actors.store.rows import OUTBOX_COLUMNS
from protocols.errors import NotFoundError
from protocols.records import OutboxItem

__all__ = ["OutboxMixin"]

_GET = f"SELECT {OUTBOX_COLUMNS} FROM outbox o WHERE o.id = ?"
_BY_KEY = f"SELECT {OUTBOX_COLUMNS} FROM outbox o WHERE o.key = ?"
_PENDING = f"SELECT {OUTBOX_COLUMNS} FROM outbox o WHERE o.status = 'pending' "
_PENDING_ANY = f"{_PENDING}ORDER BY o.id LIMIT ?"
_PENDING_IN_PROJECT = f"{_PENDING}AND o.project_id = ? ORDER BY o.id LIMIT ?"
_COMPLETE = (
    "UPDATE outbox SET status = 'done', done_at = ?, attempts = attempts + 1 "
    "WHERE id = ? AND status = 'pending'"
)
_FAIL = (
    "UPDATE outbox SET status = 'failed', last_error = ?, done_at = ?, attempts = attempts + 1 "
    "WHERE id = ? AND status = 'pending'"
)
# A task's failed items since `since` (the task's current step began then): what `corral task retry` re-runs.
_RETRY = (
    "UPDATE outbox SET status = 'pending', done_at = '' "
    "WHERE project_id = ? AND task = ? AND status = 'failed' AND created_at >= ?"
)


class OutboxMixin(StoreBase):
    def add_outbox(
        self,
        project_id: int,
        key: str,
        kind: str,
        *,
        task: str = "",
        payload: str = "",
        signal_id: int | None = None,
    ) -> OutboxItem:
        """Record a side effect to perform; if `key` is already recorded, the existing item is returned."""
        with self._write():
            self._project_name(project_id)
            self._insert_outbox(key, project_id, task, kind, payload, self._now(), signal_id)
            return OutboxItem(*self._conn.execute(_BY_KEY, (key,)).fetchone())

    def get_outbox(self, item_id: int) -> OutboxItem:
        row = self._conn.execute(_GET, (item_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no outbox item with id {item_id}")
        return OutboxItem(*row)

    def pending_outbox(self, *, project_id: int | None = None, limit: int = 100) -> list[OutboxItem]:
        """Items still to perform, oldest first (the order they were decided in)."""
        if project_id is None:
            rows = self._conn.execute(_PENDING_ANY, (limit,))
        else:
            rows = self._conn.execute(_PENDING_IN_PROJECT, (project_id, limit))
        return [OutboxItem(*row) for row in rows]

    def complete_outbox(self, item_id: int) -> None:
        """Mark the item performed. Completing it again is a no-op; NotFoundError if there is no such item."""
        self._settle(_COMPLETE, (self._now(), item_id), item_id)

    def fail_outbox(self, item_id: int, error: str) -> None:
        """Mark the item failed for good, with the error (shown to people; nothing retries it)."""
        self._settle(_FAIL, (error, self._now(), item_id), item_id)

    def retry_outbox(self, project_id: int, task: str, since: str) -> int:
        """Put the task's items that failed since `since` back to pending (their last error is kept until they
        are settled again): `corral task retry`. The number requeued."""
        with self._write():
            self._conn.execute(_RETRY, (project_id, task, since))
            return self._conn.changes()

    def failed_outbox(self, project_id: int, task: str, since: str) -> list[OutboxItem]:
        """The task's items that failed since `since`, oldest first."""
        rows = self._conn.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox o WHERE o.project_id = ? AND o.task = ? "
            "AND o.status = 'failed' AND o.created_at >= ? ORDER BY o.id",
            (project_id, task, since),
        )
        return [OutboxItem(*row) for row in rows]

    def start_step(self, project_id: int, task: str, status: str, since: str, source: str) -> bool:
        """Record the `enter_<status>` item of a step no transition began (a status set by hand), as if the
        task had just entered `status` at `since` the usual way (`USUAL_ENTRY`): `corral task retry`.
        False if it is recorded already, or `status` is not a step with an agent."""
        import msgspec

        from protocols.fsm import USUAL_ENTRY, Status

        entry = USUAL_ENTRY.get(Status(status))
        if entry is None:
            return False
        before, event = entry
        payload = msgspec.json.encode(
            {"event": event, "from_status": before, "to_status": status, "phase": "", "source": source}
        ).decode()
        key = f"step:{project_id}:{task}:{status}:{since}"
        with self._write():
            return self._insert_outbox(key, project_id, task, f"enter_{status}", payload, since, None)

    def step_item(self, project_id: int, task: str, status: str, since: str) -> OutboxItem | None:
        """The `enter_<status>` item that began the task's current step (created at `since`, the task's
        `<status>_at`); None when no transition began it (a status forced by a person)."""
        row = self._conn.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox o WHERE o.project_id = ? AND o.task = ? AND o.kind = ? "
            "AND o.created_at = ? ORDER BY o.id DESC LIMIT 1",
            (project_id, task, f"enter_{status}", since),
        ).fetchone()
        return OutboxItem(*row) if row is not None else None

    def _settle(self, sql: str, args: tuple[object, ...], item_id: int) -> None:
        with self._write():
            self._conn.execute(sql, args)
            if self._conn.changes() == 0:
                self.get_outbox(item_id)  # NotFoundError if it does not exist; else it was already settled
