"""Signal types: what an agent or a person may emit, and the payload each one carries.

A signal is a durable request to move a task: it is written to the store as `pending` (by `corral signal
emit`, the API, a UI, or a bridged filesystem sentinel) and applied exactly once. Every FSM event is a signal
type; the wave signals steer the wave scheduler. Payloads are stored as canonical JSON so that every reader
decodes them the same way:

    corral signal emit review_changes my-task --payload "tests fail on empty input"
        → type review_changes_requested, payload {"body": "tests fail on empty input"}
    corral signal emit implement_task_finished my-task --payload '{"wave_number": 1, "task_number": 2}'
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any

import msgspec

from protocols.errors import PayloadError, UsageError
from protocols.fsm import Event
from protocols.records import INT64_MAX, check_content_size

__all__ = [
    "SIGNAL_TYPES",
    "Body",
    "SignalType",
    "WaveDecision",
    "WaveStart",
    "WaveTaskFinished",
    "decode_payload",
    "normalize_payload",
    "parse_signal_type",
]

PositiveInt = Annotated[int, msgspec.Meta(ge=1, le=INT64_MAX)]


class Body(msgspec.Struct, frozen=True):
    """The payload of an FSM signal: free text (a review, feedback) plus any other fields the sender adds."""

    body: str = ""


class WaveTaskFinished(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    wave_number: PositiveInt
    task_number: PositiveInt


class WaveStart(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    wave_number: PositiveInt


class WaveDecision(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """retry_wave / advance_wave: the wave is optional (default: the task's current wave)."""

    wave_number: PositiveInt | None = None


class SignalType(msgspec.Struct, frozen=True):
    """One row of the signal table: its name, the FSM event it drives (if any) and its payload schema."""

    name: str
    event: Event | None
    payload: type[msgspec.Struct]
    payload_required: bool
    summary: str


def _fsm(event: Event, summary: str) -> SignalType:
    return SignalType(event.value, event, Body, False, summary)


SIGNAL_TYPES: Mapping[str, SignalType] = MappingProxyType(
    {
        s.name: s
        for s in (
            _fsm(Event.PLAN_START, "start (or restart) the planner"),
            _fsm(Event.PLANNER_FINISHED, "the plan is written: ready, phase planned"),
            _fsm(Event.IMPLEMENT_START, "start implementing"),
            _fsm(Event.IMPLEMENT_FINISHED, "implementation done: start the review"),
            _fsm(Event.REVIEW_APPROVED, "the reviewer approves (body = the review)"),
            _fsm(Event.REVIEW_CHANGES_REQUESTED, "the reviewer wants changes (body = the feedback)"),
            _fsm(Event.VERIFY_APPROVED, "the readiness check passed: done"),
            _fsm(Event.VERIFY_FAILED, "the readiness check failed (body = the feedback)"),
            _fsm(Event.START_OVER, "user only: plan again from scratch"),
            _fsm(Event.REIMPLEMENT, "user only: implement a done task again"),
            _fsm(Event.REQUEST_REVIEW, "user only: review a done task again"),
            _fsm(Event.CANCEL, "user only: cancel the task"),
            _fsm(Event.REOPEN, "user only: reopen a cancelled task"),
            SignalType(
                "implement_task_finished",
                None,
                WaveTaskFinished,
                True,
                'a wave task is finished: {"wave_number": W, "task_number": T}',
            ),
            SignalType("implement_wave", None, WaveStart, True, 'start a wave: {"wave_number": N}'),
            SignalType("retry_wave", None, WaveDecision, False, "retry the failed tasks of a finished wave"),
            SignalType("advance_wave", None, WaveDecision, False, "go on to the next wave"),
        )
    }
)

_ALIASES: Mapping[str, str] = MappingProxyType(
    {"review_changes": "review_changes_requested", "readiness_approved": "verify_approved"}
)


def parse_signal_type(text: str) -> SignalType:
    """Read a signal type as written (hyphens or underscores, aliases), or raise UsageError listing them."""
    token = text.strip().lower().replace("-", "_")
    token = _ALIASES.get(token, token)
    try:
        return SIGNAL_TYPES[token]
    except KeyError:
        names = ", ".join(SIGNAL_TYPES)
        raise UsageError(f'unknown signal type "{text}"; signal types are: {names}') from None


_encoder = msgspec.json.Encoder()


def normalize_payload(signal_type: SignalType, raw: str | None) -> str:
    """Validate a payload as given on the command line or the API and return its canonical JSON.

    A JSON object is checked against the type's schema; for FSM signals any other text becomes the body.
    TooLargeError over MAX_CONTENT_BYTES: a plan carried by planner_finished becomes the task's content,
    which has that cap (the body decoded from a JSON payload is never longer than the payload).
    """
    text = (raw or "").strip()
    check_content_size(text, f"the payload of signal {signal_type.name}")  # planner_finished carries a plan
    if not text:
        if signal_type.payload_required:
            raise PayloadError(f"signal {signal_type.name} needs a payload: {signal_type.summary}")
        return ""
    try:
        value: Any = msgspec.json.decode(text)
    except msgspec.DecodeError:
        value = None
    if not isinstance(value, dict):
        if signal_type.payload is Body:
            return _encoder.encode({"body": text}).decode()
        raise PayloadError(
            f"signal {signal_type.name} needs a JSON object payload, got {text[:80]!r}: {signal_type.summary}"
        )
    if signal_type.payload is Body:
        if not isinstance(value.get("body", ""), str):
            raise PayloadError(f'signal {signal_type.name}: "body" must be a string')
        return _encoder.encode(value).decode()
    try:
        msgspec.convert(value, signal_type.payload)
    except msgspec.ValidationError as exc:
        raise PayloadError(f"signal {signal_type.name} payload: {exc} ({signal_type.summary})") from None
    return _encoder.encode(value).decode()


def decode_payload(signal_type: SignalType, stored: str) -> msgspec.Struct:
    """Decode a stored payload into the type's Struct, or raise PayloadError saying why it does not fit."""
    if not stored:
        if signal_type.payload_required:
            raise PayloadError(f"signal {signal_type.name} has no payload: {signal_type.summary}")
        return signal_type.payload()
    try:
        value = msgspec.json.decode(stored)
    except msgspec.DecodeError as exc:
        raise PayloadError(f"signal {signal_type.name} payload is not JSON: {exc}") from None
    if signal_type.payload is Body and isinstance(value, dict):
        body = value.get("body", "")
        if not isinstance(body, str):
            raise PayloadError(f'signal {signal_type.name}: "body" must be a string')
        return Body(body)
    try:
        return msgspec.convert(value, signal_type.payload)
    except msgspec.ValidationError as exc:
        raise PayloadError(f"signal {signal_type.name} payload: {exc} ({signal_type.summary})") from None
