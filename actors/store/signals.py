"""The signal queue: emit (pending), read, claim (processing), and requeue claims whose holder died.

Applying a signal is in `applying.py`. Claims are ordered by id, which SQLite hands out in commit order of
the inserts, so signals are applied in the order they were emitted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import apsw
import msgspec

from actors.clock import utc_stamp
from actors.store.base import StoreBase, parse_source
from actors.store.rows import SIGNAL_COLUMNS, SIGNAL_FIELDS
from protocols.errors import NotFoundError, UsageError
from protocols.fsm import Source
from protocols.records import AuditLevel, Signal, SignalStatus, task_name
from protocols.signals import normalize_payload, parse_signal_type

__all__ = ["SignalsMixin"]

_INSERT = (
    "INSERT INTO signals (project_id, task, signal_type, payload, source, status, created_at) "
    "VALUES (?, ?, ?, ?, ?, 'pending', ?)"
)
_GET = f"SELECT {SIGNAL_COLUMNS} FROM signals s WHERE s.id = ?"
_CLAIM = (
    "UPDATE signals SET status = 'processing', claimed_by = ?, claimed_at = ?, attempts = attempts + 1 "
    "WHERE id = (SELECT id FROM signals WHERE status = 'pending' {filter}ORDER BY id LIMIT 1) "
    f"RETURNING {SIGNAL_FIELDS}"
)
_CLAIM_ANY = _CLAIM.format(filter="")
_CLAIM_IN_PROJECT = _CLAIM.format(filter="AND +project_id = ? ")
_STALE = (
    "SELECT id, project_id, task, signal_type, claimed_by, claimed_at FROM signals "
    "WHERE status = 'processing' AND claimed_at < ? ORDER BY claimed_at"
)
_REQUEUE = "UPDATE signals SET status = 'pending', claimed_by = '', claimed_at = '' WHERE id = ?"
_STATUSES = tuple(s.value for s in SignalStatus)
_encode = msgspec.json.Encoder().encode


class SignalsMixin(StoreBase):
    def emit_signal(
        self,
        project_id: int,
        task: str,
        signal_type: str,
        payload: str | None = None,
        *,
        source: Source = Source.AGENT,
    ) -> Signal:
        """Queue a signal (pending) for the named task; it is applied later, exactly once.

        The type is read as written (hyphens, aliases) and stored by its canonical name; the payload is
        validated and stored as canonical JSON (UsageError / PayloadError otherwise). The task is not looked
        up here: a signal for a task that does not exist fails when it is applied, with that reason.
        """
        name = task_name(task)
        stype = parse_signal_type(signal_type)
        canonical = normalize_payload(stype, payload)
        src = parse_source(source)
        try:
            with self._write():
                now = self._now()
                self._conn.execute(_INSERT, (project_id, name, stype.name, canonical, src.value, now))
                signal_id = self._conn.last_insert_rowid()
        except apsw.ConstraintError:
            raise NotFoundError(f"no project with id {project_id}") from None
        return Signal(
            signal_id, project_id, name, stype.name, canonical, src.value, "pending", "", now, "", "", "", 0
        )

    def get_signal(self, signal_id: int) -> Signal:
        row = self._conn.execute(_GET, (signal_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no signal with id {signal_id}")
        return Signal(*row)

    def list_signals(
        self,
        project_id: int | None = None,
        *,
        statuses: Iterable[str] = (),
        task: str = "",
        limit: int = 100,
    ) -> list[Signal]:
        """Signals, newest first."""
        where: list[str] = []
        args: list[object] = []
        if project_id is not None:
            # Without a task, scan newest first and stop at `limit` (the index would sort all the project's).
            where.append("s.project_id = ?" if task else "+s.project_id = ?")
            args.append(project_id)
        wanted = list(dict.fromkeys(statuses))
        for status in wanted:
            if status not in _STATUSES:
                raise UsageError(f'unknown signal status "{status}"; statuses are: {", ".join(_STATUSES)}')
        if wanted:
            where.append(f"s.status IN ({', '.join('?' * len(wanted))})")
            args.extend(wanted)
        if task:
            where.append("s.task = ?")
            args.append(task_name(task))
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        sql = f"SELECT {SIGNAL_COLUMNS} FROM signals s {clause}ORDER BY s.id DESC LIMIT ?"
        return [Signal(*row) for row in self._conn.execute(sql, [*args, limit])]

    def claim_next(self, claimer: str, *, project_id: int | None = None) -> Signal | None:
        """Claim the oldest pending signal (pending → processing, committed), or None if there is none.

        One `UPDATE … WHERE id = (SELECT …) RETURNING` under the write lock: two processes never claim the
        same signal. The claimer then calls `apply_claimed`; if it dies first, `requeue_stale` gives the
        signal back. Prefer `apply_next`, which has no such window.
        """
        with self._write():
            now = self._now()  # under the lock: claimed_at is when the claim really happened
            if project_id is None:
                row = self._conn.execute(_CLAIM_ANY, (claimer, now)).fetchone()
            else:
                row = self._conn.execute(_CLAIM_IN_PROJECT, (claimer, now, project_id)).fetchone()
        return None if row is None else Signal(*row)

    def requeue_stale(self, timeout_s: float) -> int:
        """Give back to the queue every signal claimed more than `timeout_s` ago and still processing.

        Its claimer is presumed dead (a live one applies within milliseconds); `attempts` keeps counting, and
        the claimer's late `apply_claimed`, if it comes, is refused. One audit event (warn) per signal, not
        carrying its signal_id: that stays the mark of the one event that applied it. Returns the count.
        """
        now = self._clock.now()
        cutoff = utc_stamp(now - timedelta(seconds=timeout_s))
        stamp = utc_stamp(now)
        with self._write():
            stale = self._conn.execute(_STALE, (cutoff,)).fetchall()
            for signal_id, project_id, task, signal_type, claimed_by, claimed_at in stale:
                self._conn.execute(_REQUEUE, (signal_id,))
                detail = {"signal_id": signal_id, "claimed_by": claimed_by, "claimed_at": claimed_at}
                self._insert_audit(
                    stamp,
                    project_id,
                    "signal_requeued",
                    AuditLevel.WARN,
                    f"signal {signal_id} ({signal_type} for {task}) requeued: claimed by {claimed_by} at "
                    f"{claimed_at}, not applied within {timeout_s:g} s",
                    task=task,
                    detail=_encode(detail).decode(),
                )
        return len(stale)
