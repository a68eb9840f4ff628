"""Every command and event round-trips through JSON with its tag."""

from __future__ import annotations

import typing

import msgspec
import pytest

from protocols import messages as m

EXAMPLES: list[msgspec.Struct] = [
    m.ChildStarted(supervisor="root", child_id="bus", generation=1, restarted=True, ts=1.5),
    m.ChildExited(
        supervisor="root",
        child_id="a",
        generation=2,
        reason=m.ExitReason.error("E", "msg", "f:1"),
        restart_type="transient",
        restarting=True,
    ),
    m.ChildRestarting(
        supervisor="root", child_id="a", generation=3, delay_s=0.2, attempt=2, reason=m.ExitReason.normal()
    ),
    m.ChildStartFailed(supervisor="root", child_id="a", generation=3, reason=m.ExitReason.error("E", "x")),
    m.SupervisorGaveUp(
        supervisor="root/p", restarts=4, period_s=5.0, last_child="a", reason=m.ExitReason.error("E", "x")
    ),
    m.SupervisorEscalated(supervisor="root/p", parent="root", reason=m.ExitReason.shutdown()),
    m.InstanceStatusChanged(
        project="p",
        instance="t-coder",
        status="waiting",
        previous="running",
        reason="permission prompt: Yes, allow once",
    ),
    m.InstanceNote(project="p", instance="t-coder", message="trust screen dismissed", level="warn"),
    m.TaskCreated(project="p", task="t", status="ready"),
    m.TaskTransitioned(
        project="p",
        task="t",
        from_status="ready",
        event="plan_start",
        to_status="planning",
        source="agent",
        signal_id=9,
    ),
    m.SignalEmitted(project="p", task="t", signal_id=1, signal_type="plan_start"),
    m.SignalProcessed(
        project="p",
        task="t",
        signal_id=1,
        signal_type="plan_start",
        status="failed",
        result="invalid transition",
    ),
    m.RepoRegistered(project="web", root="/src/web"),
    m.DaemonReloaded(source="SIGHUP", repos=2, problems=("web/.corral/config.toml: ui.x: unknown key",)),
    m.DaemonStopping(reason="SIGTERM"),
    m.Lagged(missed=12),
    m.Ping(),
    m.CreateTask(project="p", name="t", title="T", topic="x", content="# T"),
    m.TransitionTask(project="p", task="t", event="cancel", payload="why"),
    m.SetTaskStatus(project="p", task="t", status="planned", reason="fix"),
    m.EmitSignal(
        project="p", task="t", signal_type="review_approved", payload='{"body": "ok"}', source="user"
    ),
]


def test_every_union_member_has_an_example() -> None:
    members = set(typing.get_args(m.Event)) | set(typing.get_args(m.Command))
    assert members == {type(e) for e in EXAMPLES}


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda e: type(e).__name__)
def test_message_round_trips_through_json(message: msgspec.Struct) -> None:
    data = m.encode(message)
    decode = m.decode_event if isinstance(message, typing.get_args(m.Event)) else m.decode_command
    assert decode(data) == message
    assert msgspec.json.decode(data)["type"]


def test_messages_are_frozen() -> None:
    with pytest.raises(AttributeError):
        m.Ping().x = 1  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        EXAMPLES[0].generation = 5  # type: ignore[misc]


def test_a_bad_message_names_the_field_that_does_not_fit() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"Expected `int`, got `str` - at `\$.generation`"):
        m.decode_event(b'{"type":"child_started","supervisor":"r","child_id":"a","generation":"x"}')
    with pytest.raises(msgspec.ValidationError, match="Invalid value 'nope'"):
        m.decode_command(b'{"type":"nope"}')


def test_exit_reason_from_an_exception_names_type_message_and_place() -> None:
    try:
        raise KeyError("agent")
    except KeyError as exc:
        reason = m.ExitReason.from_exception(exc)
    assert (reason.kind, reason.error_type, reason.message) == ("error", "KeyError", "'agent'")
    assert "test_messages.py" in reason.where
    assert str(reason) == "KeyError: 'agent'"
