"""Applying a signal, exactly once: claim, decide, write the effects and mark the signal, in ONE transaction.

    BEGIN IMMEDIATE
      read the oldest pending signal joined with its task         (apply_next: this read is the claim)
      decide: type, payload, task, source, FSM, topic / wave rules (reads only; a refusal is a reason)
      write: task row, one audit event (signal_id), outbox items  (only when the decision is to apply)
      mark the signal done (result "ready → planning") or failed (result = the reason)
    COMMIT

A process killed anywhere before COMMIT leaves nothing: the signal is still pending and the next worker
applies it. Killed after COMMIT, everything is written and the signal is done. There is no third state, so
no signal is applied twice or lost, and `apply_next` never leaves a signal `processing`.

A signal that cannot apply (unknown type, bad payload, no such task, invalid transition, user-only event from
an agent, topic or wave conflict) is marked failed with the reason and a warn audit event; it is an outcome,
not an exception. A bug while applying rolls the transaction back, then fails that one signal in a second
transaction (audit level error), so a poison signal cannot block the queue.
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from actors.store.base import TaskState, parse_source
from actors.store.lifecycle import LifecycleMixin
from protocols.errors import (
    ConflictError,
    CorralError,
    NotFoundError,
    StoreError,
    TransitionError,
    UsageError,
)
from protocols.fsm import Source, Status, Transition
from protocols.records import Signal, SignalOutcome
from protocols.signals import (
    SIGNAL_TYPES,
    Body,
    WaveDecision,
    WaveStart,
    WaveTaskFinished,
    decode_payload,
    parse_signal_type,
)

__all__ = ["ApplyMixin"]

_COLUMNS = (
    "s.id, s.project_id, s.task, s.signal_type, s.payload, s.source, s.status, s.created_at, s.claimed_by, "
    "s.claimed_at, s.attempts, t.id, t.status, t.phase, t.topic_id, coalesce(tp.name, '')"
)
_FROM = (
    "signals s LEFT JOIN tasks t ON t.project_id = s.project_id AND t.name = s.task "
    "LEFT JOIN topics tp ON tp.id = t.topic_id"
)
_NEXT_ANY = (
    f"SELECT {_COLUMNS} FROM {_FROM} "
    "WHERE s.id = (SELECT id FROM signals WHERE status = 'pending' ORDER BY id LIMIT 1)"
)
_NEXT_IN_PROJECT = (
    f"SELECT {_COLUMNS} FROM {_FROM} "
    "WHERE s.id = (SELECT id FROM signals WHERE status = 'pending' AND +project_id = ? ORDER BY id LIMIT 1)"
)
_BY_ID = f"SELECT {_COLUMNS} FROM {_FROM} WHERE s.id = ?"
_FINISH = (
    "UPDATE signals SET status = ?, result = ?, claimed_by = ?, claimed_at = ?, processed_at = ?, "
    "attempts = ? WHERE id = ?"
)
_WAVE_TASK = "SELECT id, wave_number, status FROM wave_tasks WHERE task_id = ? AND task_number = ?"
_WAVE_TASK_DONE = "UPDATE wave_tasks SET status = 'complete', updated_at = ? WHERE id = ?"

# Wave signals that ask the daemon to act on the task's waves: signal type → outbox kind.
WAVE_ACTIONS = {"implement_wave": "start_wave", "retry_wave": "retry_wave", "advance_wave": "advance_wave"}

_encode = msgspec.json.Encoder().encode


class _Row(NamedTuple):
    """A signal joined with its task (task columns None when no task has the signal's name)."""

    id: int
    project_id: int
    task: str
    signal_type: str
    payload: str
    source: str
    status: str
    created_at: str
    claimed_by: str
    claimed_at: str
    attempts: int
    task_id: int | None
    task_status: str | None
    task_phase: str | None
    topic_id: int | None
    topic: str

    def task_state(self) -> TaskState:
        """The task's state; only when `task_id` is set, and then so is every task column."""
        assert self.task_id is not None and self.task_status is not None and self.task_phase is not None
        return TaskState(
            self.task_id,
            self.project_id,
            self.task,
            self.task_status,
            self.task_phase,
            self.topic_id,
            self.topic,
        )

    def finished(
        self, status: str, result: str, claimer: str, claimed_at: str, now: str, attempts: int
    ) -> Signal:
        """The signal as `_FINISH` leaves it, built here rather than read back."""
        return Signal(
            self.id,
            self.project_id,
            self.task,
            self.signal_type,
            self.payload,
            self.source,
            status,
            result,
            self.created_at,
            claimer,
            claimed_at,
            now,
            attempts,
        )


class _Fsm(NamedTuple):
    task: TaskState
    change: Transition
    source: Source
    body: str


class _WaveTaskFinished(NamedTuple):
    wave_task_id: int
    payload: WaveTaskFinished
    person: bool  # a person marks it complete: the wave scheduler decides (the row is not written here)


class _WaveAction(NamedTuple):
    kind: str
    wave_number: int | None
    payload: str


class ApplyMixin(LifecycleMixin):
    def apply_next(self, claimer: str, *, project_id: int | None = None) -> SignalOutcome | None:
        """Claim, apply and finish the oldest pending signal in one transaction; None if the queue is empty.

        Exactly once even under kill -9: see the module docstring. Safe to call from any number of
        processes at once; each signal goes to exactly one of them.
        """
        signal_id = None
        try:
            with self._write():
                now = self._now()  # under the lock, like every stamp of a claim
                if project_id is None:
                    found = self._conn.execute(_NEXT_ANY).fetchone()
                else:
                    found = self._conn.execute(_NEXT_IN_PROJECT, (project_id,)).fetchone()
                if found is None:
                    return None
                row = _Row(*found)
                signal_id = row.id
                return self._apply(row, claimer, now, now, row.attempts + 1)
        except (StoreError, KeyboardInterrupt):
            raise
        except Exception as exc:
            if signal_id is None:
                raise
            return self._fail_after_bug(signal_id, claimer, exc, claimed=False)

    def apply_pending(
        self, claimer: str, *, project_id: int | None = None, limit: int = 100
    ) -> list[SignalOutcome]:
        """Apply up to `limit` pending signals, oldest first, in ONE transaction; [] if there are none.

        Each signal is applied as `apply_next` would apply it, each seeing the ones before it; the batch
        commits all or nothing, so the exactly-once argument is unchanged. It exists for throughput: most of
        the cost of a commit is writing each changed page once, and consecutive signals change the same
        pages. It holds the write lock for the whole batch (about 0.1 ms per signal). A bug while applying
        rolls the batch back and it is redone one signal at a time, which isolates and fails the culprit.
        """
        outcomes: list[SignalOutcome] = []
        try:
            with self._write():
                now = self._now()
                for _ in range(limit):
                    if project_id is None:
                        found = self._conn.execute(_NEXT_ANY).fetchone()
                    else:
                        found = self._conn.execute(_NEXT_IN_PROJECT, (project_id,)).fetchone()
                    if found is None:
                        break
                    row = _Row(*found)
                    outcomes.append(self._apply(row, claimer, now, now, row.attempts + 1))
        except (StoreError, KeyboardInterrupt):
            raise
        except Exception:
            outcomes = []
            for _ in range(limit):
                outcome = self.apply_next(claimer, project_id=project_id)
                if outcome is None:
                    break
                outcomes.append(outcome)
        return outcomes

    def apply_claimed(self, signal_id: int, claimer: str) -> SignalOutcome:
        """Apply a signal this claimer holds (from `claim_next`) and finish it, in one transaction.

        NotFoundError if there is no such signal; ConflictError if the claim was lost (requeued as stale,
        then claimed or applied by someone else): the caller must then do nothing with it.
        """
        try:
            with self._write():
                now = self._now()
                found = self._conn.execute(_BY_ID, (signal_id,)).fetchone()
                if found is None:
                    raise NotFoundError(f"no signal with id {signal_id}")
                row = _Row(*found)
                if row.status != "processing" or row.claimed_by != claimer:
                    holder = f"claimed by {row.claimed_by}" if row.claimed_by else "not claimed"
                    raise ConflictError(
                        f"signal {signal_id} is no longer claimed by {claimer} (it is {row.status}, "
                        f"{holder}): the claim was lost, probably requeued as stale"
                    )
                return self._apply(row, claimer, row.claimed_at, now, row.attempts)
        except (CorralError, KeyboardInterrupt):
            raise
        except Exception as exc:
            return self._fail_after_bug(signal_id, claimer, exc, claimed=True)

    # -- inside the transaction ------------------------------------------------------------------------------

    def _apply(self, row: _Row, claimer: str, claimed_at: str, now: str, attempts: int) -> SignalOutcome:
        try:
            plan = self._plan(row)
        except CorralError as exc:
            return self._finish_failed(row, claimer, claimed_at, now, attempts, str(exc), "warn")
        change: Transition | None = None
        match plan:
            case _Fsm(task, change, source, body):
                self._enter(
                    task, change, source=source, body=body, detail=row.payload, signal_id=row.id, now=now
                )
                result = change.describe(task.phase)
            case _WaveTaskFinished(wave_task_id, payload, person):
                result = self._finish_wave_task(row, wave_task_id, payload, now, person)
            case _WaveAction(kind, wave_number, payload):
                result = self._request_wave_action(row, kind, wave_number, payload, now)
        self._conn.execute(_FINISH, ("done", result, claimer, claimed_at, now, attempts, row.id))
        return SignalOutcome(
            row.finished("done", result, claimer, claimed_at, now, attempts), True, change, ""
        )

    def _plan(self, row: _Row) -> _Fsm | _WaveTaskFinished | _WaveAction:
        """Decide what the signal does, reading only; every refusal is a CorralError naming the reason."""
        stype = SIGNAL_TYPES.get(row.signal_type) or parse_signal_type(row.signal_type)
        source = parse_source(row.source)
        payload = decode_payload(stype, row.payload)
        if row.task_id is None:
            raise NotFoundError(f'no task named "{row.task}" in project {self._project_name(row.project_id)}')
        task = row.task_state()
        if stype.event is not None:
            body = payload.body if isinstance(payload, Body) else ""
            return _Fsm(task, self._decide(task, stype.event, source), source, body)
        if isinstance(payload, WaveTaskFinished):
            found = self._conn.execute(_WAVE_TASK, (task.id, payload.task_number)).fetchone()
            if found is None:
                raise NotFoundError(f"task {task.name} has no wave task {payload.task_number}")
            wave_task_id, wave_number, status = found
            if wave_number != payload.wave_number:
                raise ConflictError(
                    f"wave task {payload.task_number} of {task.name} is in wave {wave_number}, "
                    f"not wave {payload.wave_number}"
                )
            person = source is Source.USER
            if status != "running" and not (person and status in ("pending", "failed")):
                raise ConflictError(
                    f"wave task {payload.task_number} of {task.name} is {status}, not running"
                )
            return _WaveTaskFinished(wave_task_id, payload, person)
        kind = WAVE_ACTIONS.get(stype.name)
        if kind is None:
            raise UsageError(f"signal type {stype.name} cannot be applied by this version of corral")
        if task.status != Status.IMPLEMENTING:
            raise TransitionError(
                f"signal {stype.name} needs task {task.name} to be implementing, but it is {task.status}"
            )
        wave = payload.wave_number if isinstance(payload, WaveStart | WaveDecision) else None
        return _WaveAction(kind, wave, _encode(payload).decode())

    def _finish_wave_task(
        self, row: _Row, wave_task_id: int, payload: WaveTaskFinished, now: str, person: bool
    ) -> str:
        """An agent's finish completes its running task here; a person's "mark complete" (which may also be
        of a pending or failed task) is left to the wave scheduler, which knows whether the wave allows it."""
        w, t = payload.wave_number, payload.task_number
        if not person:
            self._conn.execute(_WAVE_TASK_DONE, (now, wave_task_id))
        self._insert_audit(
            now,
            row.project_id,
            "wave_task_finished",
            "info",
            f"{row.task}: wave {w} task {t} " + ("marked complete by a person" if person else "complete"),
            task=row.task,
            wave=w,
            signal_id=row.id,
            detail=row.payload,
        )
        self._insert_outbox(
            f"signal:{row.id}:wave_task_finished",
            row.project_id,
            row.task,
            "wave_task_finished",
            _encode(payload).decode(),
            now,
            row.id,
        )
        return f"wave {w} task {t}: " + ("mark complete requested" if person else "running → complete")

    def _request_wave_action(self, row: _Row, kind: str, wave: int | None, payload: str, now: str) -> str:
        which = f"wave {wave}" if wave is not None else "the current wave"
        self._insert_audit(
            now,
            row.project_id,
            kind,
            "info",
            f"{row.task}: {kind.replace('_', ' ')} requested ({which})",
            task=row.task,
            wave=wave,
            signal_id=row.id,
            detail=row.payload,
        )
        self._insert_outbox(f"signal:{row.id}:{kind}", row.project_id, row.task, kind, payload, now, row.id)
        return f"{kind} requested ({which})"

    def _finish_failed(
        self, row: _Row, claimer: str, claimed_at: str, now: str, attempts: int, reason: str, level: str
    ) -> SignalOutcome:
        self._conn.execute(_FINISH, ("failed", reason, claimer, claimed_at, now, attempts, row.id))
        detail = {"signal_type": row.signal_type, "source": row.source, "payload": row.payload}
        self._insert_audit(
            now,
            row.project_id,
            "signal_failed",
            level,
            f"signal {row.id} ({row.signal_type} for {row.task}) failed: {reason}",
            task=row.task,
            signal_id=row.id,
            detail=_encode(detail).decode(),
        )
        signal = row.finished("failed", reason, claimer, claimed_at, now, attempts)
        return SignalOutcome(signal, False, None, reason)

    # -- after a bug -----------------------------------------------------------------------------------------

    def _fail_after_bug(
        self, signal_id: int, claimer: str, exc: Exception, *, claimed: bool
    ) -> SignalOutcome:
        """The apply transaction raised something unexpected and rolled back: fail the signal on its own, if
        it is still where that transaction found it, so that it cannot block the queue; else re-raise."""
        reason = f"internal error while applying: {type(exc).__name__}: {exc}"
        with self._write():
            now = self._now()
            found = self._conn.execute(_BY_ID, (signal_id,)).fetchone()
            row = None if found is None else _Row(*found)
            expected = ("processing", claimer) if claimed else ("pending", "")
            if row is None or (row.status, row.claimed_by) != expected:
                raise exc
            claimed_at, attempts = (row.claimed_at, row.attempts) if claimed else (now, row.attempts + 1)
            return self._finish_failed(row, claimer, claimed_at, now, attempts, reason, "error")
