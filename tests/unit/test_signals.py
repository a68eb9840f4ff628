"""Signal types and their payloads: canonical JSON in, a clear PayloadError for what does not fit."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.errors import PayloadError, UsageError
from protocols.fsm import Event
from protocols.signals import (
    SIGNAL_TYPES,
    Body,
    WaveTaskFinished,
    decode_payload,
    normalize_payload,
    parse_signal_type,
)


def test_every_fsm_event_is_a_signal_type() -> None:
    assert {s.event for s in SIGNAL_TYPES.values() if s.event} == set(Event)


def test_signal_type_names_accept_hyphens_and_aliases() -> None:
    assert parse_signal_type("review-changes").name == "review_changes_requested"
    assert parse_signal_type("implement-task-finished").name == "implement_task_finished"
    with pytest.raises(UsageError, match='unknown signal type "done"'):
        parse_signal_type("done")


def test_free_text_becomes_the_body_of_an_fsm_signal() -> None:
    t = parse_signal_type("review_changes")
    stored = normalize_payload(t, 'fix "quotes" and $HOME\nline 2 →')
    assert decode_payload(t, stored) == Body('fix "quotes" and $HOME\nline 2 →')


def test_a_json_object_payload_keeps_its_fields() -> None:
    t = parse_signal_type("review_approved")
    assert normalize_payload(t, '{"body": "lgtm", "reviewer": "x"}') == '{"body":"lgtm","reviewer":"x"}'
    with pytest.raises(PayloadError, match='"body" must be a string'):
        normalize_payload(t, '{"body": 3}')


def test_wave_payload_is_validated_and_named() -> None:
    t = parse_signal_type("implement_task_finished")
    assert decode_payload(
        t, normalize_payload(t, '{"wave_number": 2, "task_number": 5}')
    ) == WaveTaskFinished(2, 5)
    with pytest.raises(PayloadError, match="needs a payload"):
        normalize_payload(t, "")
    with pytest.raises(PayloadError, match=r"Object missing required field `task_number`"):
        normalize_payload(t, '{"wave_number": 2}')
    with pytest.raises(PayloadError, match=r"Expected `int` >= 1 - at `\$.task_number`"):
        normalize_payload(t, '{"wave_number": 2, "task_number": 0}')
    with pytest.raises(PayloadError, match="needs a JSON object payload"):
        normalize_payload(t, "wave 2 task 5")


def test_a_stored_payload_that_does_not_fit_is_a_payload_error() -> None:
    t = parse_signal_type("implement_task_finished")
    with pytest.raises(PayloadError, match="not JSON"):
        decode_payload(t, "{oops")
    with pytest.raises(PayloadError, match="has no payload"):
        decode_payload(t, "")


@given(text=st.text(max_size=200), name=st.sampled_from(sorted(SIGNAL_TYPES)))
def test_any_text_payload_is_accepted_canonically_or_refused_with_payload_error(text: str, name: str) -> None:
    t = SIGNAL_TYPES[name]
    try:
        stored = normalize_payload(t, text)
    except PayloadError:
        return
    if stored:
        msgspec.json.decode(stored)
    decode_payload(t, stored)
