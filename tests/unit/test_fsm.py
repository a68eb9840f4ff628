"""The lifecycle table: every (status, event) pair, user-only refusal, names as people write them."""

from __future__ import annotations

import itertools

import pytest

from protocols.errors import TransitionError, UsageError
from protocols.fsm import (
    PHASE_PLANNED,
    Event,
    Source,
    Status,
    allowed_events,
    parse_event,
    parse_status,
    transition,
)

# Written out from the issue, independently of protocols/fsm.py's table.
EXPECTED = {
    ("ready", "plan_start"): "planning",
    ("ready", "implement_start"): "implementing",
    ("ready", "cancel"): "cancelled",
    ("planning", "plan_start"): "planning",
    ("planning", "planner_finished"): "ready",
    ("planning", "cancel"): "cancelled",
    ("implementing", "implement_finished"): "reviewing",
    ("implementing", "cancel"): "cancelled",
    ("reviewing", "review_approved"): "verifying",
    ("reviewing", "review_changes_requested"): "implementing",
    ("reviewing", "cancel"): "cancelled",
    ("verifying", "verify_approved"): "done",
    ("verifying", "verify_failed"): "implementing",
    ("verifying", "cancel"): "cancelled",
    ("done", "start_over"): "planning",
    ("done", "reimplement"): "implementing",
    ("done", "request_review"): "reviewing",
    ("done", "cancel"): "cancelled",
    ("cancelled", "reopen"): "planning",
}
USER_ONLY = {"start_over", "reimplement", "request_review", "cancel", "reopen"}
PAIRS = list(itertools.product(list(Status), list(Event)))


@pytest.mark.parametrize(("status", "event"), PAIRS, ids=[f"{s}-{e}" for s, e in PAIRS])
def test_every_status_event_pair_matches_the_table(status: Status, event: Event) -> None:
    expected = EXPECTED.get((status.value, event.value))
    if expected is None:
        with pytest.raises(TransitionError) as err:
            transition(status, event, Source.USER)
        assert f'event "{event}"' in str(err.value) and f'status "{status}"' in str(err.value)
    else:
        result = transition(status, event, Source.USER)
        assert result.to_status == expected
        assert result.phase == (PHASE_PLANNED if event is Event.PLANNER_FINISHED else "")


@pytest.mark.parametrize(("status", "event"), PAIRS, ids=[f"{s}-{e}" for s, e in PAIRS])
def test_agents_are_refused_user_only_events_and_get_the_rest(status: Status, event: Event) -> None:
    expected = EXPECTED.get((status.value, event.value))
    if event.value in USER_ONLY:
        with pytest.raises(TransitionError, match="user-only"):
            transition(status, event, Source.AGENT)
    elif expected is None:
        with pytest.raises(TransitionError, match="invalid transition"):
            transition(status, event, Source.AGENT)
    else:
        assert transition(status, event, Source.AGENT).to_status == expected


def test_invalid_transition_lists_what_is_allowed() -> None:
    with pytest.raises(TransitionError) as err:
        transition(Status.READY, Event.REVIEW_APPROVED)
    assert str(err.value) == (
        'invalid transition: event "review_approved" does not apply to a task in status "ready" '
        "(allowed: plan_start, implement_start, cancel)"
    )


def test_allowed_events_hide_user_only_ones_from_agents() -> None:
    assert allowed_events(Status.DONE, Source.AGENT) == ()
    assert allowed_events(Status.DONE, Source.USER) == (
        Event.START_OVER,
        Event.REIMPLEMENT,
        Event.REQUEST_REVIEW,
        Event.CANCEL,
    )


@pytest.mark.parametrize(
    ("text", "event"),
    [
        ("plan_start", Event.PLAN_START),
        ("plan-start", Event.PLAN_START),
        (" Planner-Finished ", Event.PLANNER_FINISHED),
        ("review_changes", Event.REVIEW_CHANGES_REQUESTED),
        ("review-changes", Event.REVIEW_CHANGES_REQUESTED),
        ("review-changes-requested", Event.REVIEW_CHANGES_REQUESTED),
    ],
)
def test_event_names_accept_hyphens_and_the_review_changes_alias(text: str, event: Event) -> None:
    assert parse_event(text) is event


def test_unknown_event_is_a_usage_error_listing_the_events() -> None:
    with pytest.raises(UsageError, match='unknown event "finish"; events are: plan_start, '):
        parse_event("finish")


def test_planned_is_ready_with_phase_planned() -> None:
    assert parse_status("planned") == (Status.READY, PHASE_PLANNED)
    assert parse_status("Implementing") == (Status.IMPLEMENTING, "")
    with pytest.raises(UsageError, match='unknown status "almost"'):
        parse_status("almost")


def test_plain_strings_are_read_as_the_enums_so_user_only_cannot_be_bypassed() -> None:
    with pytest.raises(TransitionError, match="user-only"):
        transition("done", "cancel", "agent")
    assert transition("ready", "plan_start", "agent").to_status is Status.PLANNING


def test_a_ready_task_with_its_plan_written_reads_planned_and_every_other_status_as_it_is() -> None:
    from protocols.fsm import shown_status

    assert shown_status(Status.READY, PHASE_PLANNED) == "planned"
    assert shown_status("ready", "") == "ready"
    assert all(shown_status(status, "") == status.value for status in Status)
    move = transition(Status.READY, Event.IMPLEMENT_START)
    assert move.describe(PHASE_PLANNED) == "planned → implementing"
    assert transition(Status.PLANNING, Event.PLANNER_FINISHED).describe() == "planning → planned"
