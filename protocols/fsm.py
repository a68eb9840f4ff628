"""The task lifecycle as a pure table: `(status, event) -> status`.

    ready ──plan_start──▶ planning ──planner_finished──▶ ready (phase "planned")
      │                      └─plan_start (restart after a crash)─▶ planning
      └──implement_start──▶ implementing ──implement_finished──▶ reviewing
                               ▲                                   │ review_approved
                               ├──── review_changes_requested ─────┤
                               │                                   ▼
                               └────────── verify_failed ───── verifying ──verify_approved──▶ done
    done: start_over → planning, reimplement → implementing, request_review → reviewing
    any live status: cancel → cancelled;  cancelled: reopen → planning

"planned" is not a status: it is `ready` with execution phase `planned`. start_over, reimplement,
request_review, cancel and reopen are user-only: an agent that sends them is refused. Nothing here touches a
database, a clock or a thread; the store applies what `transition()` decides.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

import msgspec

from protocols.errors import TransitionError, UsageError

__all__ = [
    "PHASE_PLANNED",
    "TRANSITIONS",
    "USER_ONLY",
    "USUAL_ENTRY",
    "Event",
    "Source",
    "Status",
    "Transition",
    "allowed_events",
    "parse_event",
    "parse_status",
    "shown_status",
    "transition",
]


class Status(enum.StrEnum):
    READY = "ready"
    PLANNING = "planning"
    IMPLEMENTING = "implementing"
    REVIEWING = "reviewing"
    VERIFYING = "verifying"
    DONE = "done"
    CANCELLED = "cancelled"


class Event(enum.StrEnum):
    PLAN_START = "plan_start"
    PLANNER_FINISHED = "planner_finished"
    IMPLEMENT_START = "implement_start"
    IMPLEMENT_FINISHED = "implement_finished"
    REVIEW_APPROVED = "review_approved"
    REVIEW_CHANGES_REQUESTED = "review_changes_requested"
    VERIFY_APPROVED = "verify_approved"
    VERIFY_FAILED = "verify_failed"
    START_OVER = "start_over"
    REIMPLEMENT = "reimplement"
    REQUEST_REVIEW = "request_review"
    CANCEL = "cancel"
    REOPEN = "reopen"


class Source(enum.StrEnum):
    """Who sent an event: a person (CLI, TUI, web), an agent (signal emitted from a managed session), or
    corral itself (a chained move its config asks for: implement_finished after the last wave,
    verify_approved when the readiness review is off). Only agents are refused user-only events."""

    USER = "user"
    AGENT = "agent"
    CORRAL = "corral"


PHASE_PLANNED = "planned"

_S, _E = Status, Event
TRANSITIONS: Mapping[Status, Mapping[Event, Status]] = MappingProxyType(
    {
        _S.READY: MappingProxyType(
            {_E.PLAN_START: _S.PLANNING, _E.IMPLEMENT_START: _S.IMPLEMENTING, _E.CANCEL: _S.CANCELLED}
        ),
        _S.PLANNING: MappingProxyType(
            {_E.PLAN_START: _S.PLANNING, _E.PLANNER_FINISHED: _S.READY, _E.CANCEL: _S.CANCELLED}
        ),
        _S.IMPLEMENTING: MappingProxyType({_E.IMPLEMENT_FINISHED: _S.REVIEWING, _E.CANCEL: _S.CANCELLED}),
        _S.REVIEWING: MappingProxyType(
            {
                _E.REVIEW_APPROVED: _S.VERIFYING,
                _E.REVIEW_CHANGES_REQUESTED: _S.IMPLEMENTING,
                _E.CANCEL: _S.CANCELLED,
            }
        ),
        _S.VERIFYING: MappingProxyType(
            {_E.VERIFY_APPROVED: _S.DONE, _E.VERIFY_FAILED: _S.IMPLEMENTING, _E.CANCEL: _S.CANCELLED}
        ),
        _S.DONE: MappingProxyType(
            {
                _E.START_OVER: _S.PLANNING,
                _E.REIMPLEMENT: _S.IMPLEMENTING,
                _E.REQUEST_REVIEW: _S.REVIEWING,
                _E.CANCEL: _S.CANCELLED,
            }
        ),
        _S.CANCELLED: MappingProxyType({_E.REOPEN: _S.PLANNING}),
    }
)

USUAL_ENTRY: Mapping[Status, tuple[Status, Event]] = MappingProxyType(
    {
        _S.PLANNING: (_S.READY, _E.PLAN_START),
        _S.IMPLEMENTING: (_S.READY, _E.IMPLEMENT_START),
        _S.REVIEWING: (_S.IMPLEMENTING, _E.IMPLEMENT_FINISHED),
        _S.VERIFYING: (_S.REVIEWING, _E.REVIEW_APPROVED),
    }
)
"""The usual way into each step with an agent: how a step whose status a person set by hand is started."""

USER_ONLY: frozenset[Event] = frozenset(
    {_E.START_OVER, _E.REIMPLEMENT, _E.REQUEST_REVIEW, _E.CANCEL, _E.REOPEN}
)

# The execution phase a transition leaves behind; every other transition clears it.
_PHASE_AFTER: Mapping[Event, str] = MappingProxyType({_E.PLANNER_FINISHED: PHASE_PLANNED})

_EVENT_ALIASES: Mapping[str, Event] = MappingProxyType({"review_changes": _E.REVIEW_CHANGES_REQUESTED})


class Transition(msgspec.Struct, frozen=True):
    """What applying `event` to a task in `from_status` does: its new status and execution phase."""

    from_status: Status
    event: Event
    to_status: Status
    phase: str = ""

    def describe(self, from_phase: str = "") -> str:
        """The move as a person reads it, `planned → implementing`: each side by `shown_status`."""
        return f"{shown_status(self.from_status, from_phase)} → {shown_status(self.to_status, self.phase)}"


def shown_status(status: Status | str, phase: str = "") -> str:
    """The one word for a task's status wherever a person reads it (tables, `show`, transition lines, signal
    results, audit messages): "planned" for a ready task whose plan is written, else the status. JSON keeps
    the two fields apart (`"status": "ready", "phase": "planned"`)."""
    if status == Status.READY and phase == PHASE_PLANNED:
        return PHASE_PLANNED
    return str(status)


def _token(text: str) -> str:
    return text.strip().lower().replace("-", "_")


def parse_event(text: str) -> Event:
    """Read an event name as a person or an agent writes it: hyphens or underscores, aliases accepted."""
    token = _token(text)
    if token in _EVENT_ALIASES:
        return _EVENT_ALIASES[token]
    try:
        return Event(token)
    except ValueError:
        names = ", ".join(e.value for e in Event)
        raise UsageError(f'unknown event "{text}"; events are: {names}') from None


def parse_status(text: str) -> tuple[Status, str]:
    """Read a status for `set-status --force`; "planned" means ready with phase planned."""
    token = _token(text)
    if token == PHASE_PLANNED:
        return Status.READY, PHASE_PLANNED
    try:
        return Status(token), ""
    except ValueError:
        names = ", ".join([*(s.value for s in Status), PHASE_PLANNED])
        raise UsageError(f'unknown status "{text}"; statuses are: {names}') from None


def allowed_events(status: Status | str, source: Source | str = Source.USER) -> tuple[Event, ...]:
    """The events `source` may send to a task in `status`, in table order."""
    status, source = Status(status), Source(source)
    events = TRANSITIONS[status].keys()
    return tuple(e for e in events if source is Source.USER or e not in USER_ONLY)


def transition(status: Status | str, event: Event | str, source: Source | str = Source.USER) -> Transition:
    """Decide what `event` does to a task in `status`, or raise TransitionError naming both."""
    status, event, source = Status(status), Event(event), Source(source)
    if source is Source.AGENT and event in USER_ONLY:
        raise TransitionError(f'event "{event}" is user-only: an agent may not send it')
    target = TRANSITIONS[status].get(event)
    if target is None:
        allowed = ", ".join(allowed_events(status, source)) or "none"
        raise TransitionError(
            f'invalid transition: event "{event}" does not apply to a task in status "{status}" '
            f"(allowed: {allowed})"
        )
    return Transition(status, event, target, _PHASE_AFTER.get(event, ""))
