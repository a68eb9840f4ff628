"""The one place a task's status changes by an event: decide (read only), then enter (write).

`transition_task` (a person) and applying a signal (an agent or a person, through the queue) both call
`_decide` and `_enter` inside their own write transaction. `_decide` raises every refusal (TransitionError,
ConflictError) before anything is written, so a caller that turns a refusal into a failed signal can still
commit the rest of its transaction without a half-applied transition in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import msgspec

from actors.store.base import StoreBase, TaskState
from protocols.errors import ConflictError
from protocols.fsm import Event, Source, Status, Transition, transition

__all__ = ["FEEDBACK_EVENTS", "LifecycleMixin"]

# Events that carry a reviewer's or a verifier's feedback: they start a new review cycle.
FEEDBACK_EVENTS: frozenset[Event] = frozenset({Event.REVIEW_CHANGES_REQUESTED, Event.VERIFY_FAILED})

# One statement per target status (the stamp column differs), so each is prepared once and cached.
_ENTER: Mapping[Status, str] = MappingProxyType(
    {
        status: (
            f"UPDATE tasks SET status = ?, phase = ?, {status.value}_at = ?, updated_at = ?, waiting = '', "
            "review_cycle = review_cycle + ?, latest_feedback = CASE WHEN ? THEN ? ELSE latest_feedback END "
            "WHERE id = ?"
        )
        for status in Status
    }
)
_TOPIC_HOLDER = (
    "SELECT name FROM tasks WHERE topic_id = ? AND status = 'implementing' AND id <> ? ORDER BY id LIMIT 1"
)


_STATUSES: Mapping[str, Status] = MappingProxyType({s.value: s for s in Status})
_NEEDS_PLAN = frozenset({Event.IMPLEMENT_START, Event.REIMPLEMENT})
"""Events that hand the task's content to coders: it must be a plan that parses, or a plain brief."""
_CONTENT = "SELECT content FROM tasks WHERE id = ?"


class _Effect(msgspec.Struct, frozen=True):
    """The payload of an `enter_<status>` outbox item: what the daemon needs to act on the transition."""

    event: str
    from_status: str
    to_status: str
    phase: str
    source: str


_encode = msgspec.json.Encoder().encode
# There are few distinct (transition, source) pairs: encode each once, not once per row.
_effects: dict[tuple[Transition, Source], str] = {}


def _effect(change: Transition, source: Source) -> str:
    text = _effects.get((change, source))
    if text is None:
        effect = _Effect(change.event, change.from_status, change.to_status, change.phase, source)
        text = _effects[(change, source)] = _encode(effect).decode()
    return text


class LifecycleMixin(StoreBase):
    def _decide(self, task: TaskState, event: Event, source: Source) -> Transition:
        """The transition `event` makes, or TransitionError / ConflictError. Reads only.

        The topic rule: tasks sharing a topic touch the same code, so only one of them implements at a time.
        """
        change = transition(_STATUSES[task.status], event, source)
        if event in _NEEDS_PLAN:
            self._check_plan(task)
        if change.to_status is Status.IMPLEMENTING and task.topic_id is not None:
            holder = self._conn.execute(_TOPIC_HOLDER, (task.topic_id, task.id)).get
            if holder is not None:
                raise ConflictError(
                    f'task "{task.name}" cannot start implementing: task "{holder}" of the same topic '
                    f'"{task.topic}" is implementing; finish or cancel it first'
                )
        return change

    def _check_plan(self, task: TaskState) -> None:
        """A task whose content has wave headings that do not parse is not implemented: nothing would know
        what to start. Refused with the parser's line, before anything is written."""
        from protocols.errors import PlanError, TransitionError
        from protocols.stages import read_plan

        content = self._conn.execute(_CONTENT, (task.id,)).get or ""
        try:
            read_plan(content, task.name)
        except PlanError as exc:
            raise TransitionError(
                f'task "{task.name}" cannot start implementing: its plan cannot be read: {exc}; fix the plan '
                f"(corral task update-content {task.name} --file PLAN.md), then implement it"
            ) from None

    def _enter(
        self,
        task: TaskState,
        change: Transition,
        *,
        source: Source,
        body: str,
        detail: str,
        signal_id: int | None,
        now: str,
    ) -> None:
        """Write `change`: the task row, one audit event, one `enter_<status>` outbox item."""
        feedback = change.event in FEEDBACK_EVENTS
        to = change.to_status
        self._conn.execute(_ENTER[to], (to, change.phase, now, now, feedback, feedback, body, task.id))
        message = f"{task.name}: {change.describe(task.phase)} ({change.event}, by {source})"
        audit_id = self._insert_audit(
            now,
            task.project_id,
            "transition",
            "info",
            message,
            task=task.name,
            signal_id=signal_id,
            detail=detail,
        )
        kind = f"enter_{to}"
        # A signal's effects are keyed by the signal (applied once, so recorded once); a person's by the
        # audit event that records the transition.
        key = f"signal:{signal_id}:{kind}" if signal_id is not None else f"audit:{audit_id}:{kind}"
        self._insert_outbox(key, task.project_id, task.name, kind, _effect(change, source), now, signal_id)
