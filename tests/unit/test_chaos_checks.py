"""corral chaos's pure parts: the seeded schedule, the invariant checks (each fed a planted violation), the
person it plays, the report's figures. No process, no store, no clock."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontends.cli.chaos_invariants import (
    DOUBLED,
    DUPLICATE,
    LEAKED,
    LOST,
    STUCK,
    DuplicateWatch,
    StallWatch,
    check_leaks,
    check_signals,
    check_task,
)
from frontends.cli.chaos_person import person_command
from frontends.cli.chaos_procs import Proc
from frontends.cli.chaos_report import FaultRecord, by_kind, invariant_results, percentile
from frontends.cli.chaos_schedule import ALL_KINDS, BAD_SIGNALS, FaultKind, parse_kinds, schedule
from protocols.errors import UsageError
from protocols.records import AuditEvent, Signal, Task, TaskWaiting, WaveTaskRecord

# --- records made by hand ----------------------------------------------------------------------------------

_ids = iter(range(1, 10**6))


def signal(sid: int, status: str = "done", result: str = "ok", kind: str = "planner_finished") -> Signal:
    return Signal(sid, 1, "t", kind, "", "agent", status, result, "", "", "", "", 1)


def audit(
    kind: str, message: str = "", *, signal_id: int | None = None, instance: str = "", detail: str = ""
) -> AuditEvent:
    return AuditEvent(next(_ids), "", 1, kind, "info", message, "t", instance, None, signal_id, detail)


def move(
    before: str, after: str, event: str, source: str = "agent", signal_id: int | None = None
) -> AuditEvent:
    return audit("transition", f"t: {before} → {after} ({event}, by {source})", signal_id=signal_id)


def finished(wave: int, number: int, signal_id: int) -> AuditEvent:
    payload = json.dumps({"wave_number": wave, "task_number": number})
    return audit(
        "wave_task_finished", f"t: wave {wave} task {number} complete", signal_id=signal_id, detail=payload
    )


def started(title: str) -> AuditEvent:
    return audit("task_agent_started", f"t: started {title}", instance=title)


def wave_row(wave: int, number: int, attempts: int = 1, status: str = "complete") -> WaveTaskRecord:
    return WaveTaskRecord(
        number, 1, wave, number, f"task {number}", status, f"t-W{wave}-T{number}", attempts, ""
    )


TASK = Task(1, 1, "t", "T", "done", "", "", "corral/t", "", 0, "", "", "", "", "", "", "", "", "", "")

# A clean record of a task: planned, implemented in one wave of two tasks, reviewed, verified.
CLEAN = [
    move("ready", "planning", "plan_start", "user"),
    started("t-plan"),
    move("planning", "planned", "planner_finished", signal_id=1),
    move("planned", "implementing", "implement_start", "user"),
    started("t-W1-T1"),
    started("t-W1-T2"),
    finished(1, 1, 2),
    finished(1, 2, 3),
    move("implementing", "reviewing", "implement_finished", "corral"),
    started("t-review-1"),
    move("reviewing", "verifying", "review_approved", signal_id=4),
    started("t-verify-1"),
    move("verifying", "done", "verify_approved", signal_id=5),
]
WAVES = [wave_row(1, 1), wave_row(1, 2)]
SIGNALS = [signal(1), signal(2, kind="implement_task_finished"), signal(3), signal(4), signal(5)]


# --- the schedule ------------------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=2**63 - 1), st.integers(min_value=1, max_value=60))
def test_the_same_seed_gives_the_same_schedule(seed: int, count: int) -> None:
    assert schedule(seed, ALL_KINDS, count) == schedule(seed, ALL_KINDS, count)
    faults = schedule(seed, ALL_KINDS, count)
    assert [f.number for f in faults] == list(range(1, count + 1))
    for fault in faults:
        assert 0.2 <= fault.gap_s <= 2.5
        if fault.kind is FaultKind.AGENT_STOP:
            assert 2.0 <= fault.hold_s <= 16.0
        if fault.kind is FaultKind.BAD_SIGNAL:
            assert 0 <= fault.variant < len(BAD_SIGNALS)


def test_other_seeds_give_other_schedules_and_only_the_kinds_asked_for() -> None:
    assert schedule(1, ALL_KINDS, 50) != schedule(2, ALL_KINDS, 50)
    kinds = (FaultKind.AGENT_KILL, FaultKind.FLOOD)
    drawn = {fault.kind for fault in schedule(3, kinds, 200)}
    assert drawn == set(kinds)  # 200 draws of 2 kinds: both appear
    assert {fault.kind for fault in schedule(3, ALL_KINDS, 500)} == set(ALL_KINDS)


def test_kinds_are_parsed_in_their_canonical_order_and_an_unknown_one_is_named() -> None:
    assert parse_kinds("flood, agent-kill") == (FaultKind.AGENT_KILL, FaultKind.FLOOD)
    with pytest.raises(UsageError, match="unknown fault kind 'agent-kil'"):
        parse_kinds("agent-kil")
    with pytest.raises(UsageError, match="at least one"):
        parse_kinds(" , ")


# --- signals -----------------------------------------------------------------------------------------------


def test_a_clean_record_breaks_no_invariant() -> None:
    assert check_signals(SIGNALS, CLEAN, {2: "a bad signal"}) == []
    assert check_task(TASK, CLEAN, WAVES) == []


def test_a_signal_still_pending_or_failed_without_a_reason_or_unrecorded_or_missing_is_lost() -> None:
    signals = [*SIGNALS, signal(6, "pending"), signal(7, "failed", " "), signal(8, "failed", "bad wave")]
    rows = [*CLEAN, audit("signal_failed", signal_id=7)]  # 8 has no row
    found = check_signals(signals, rows, {9: "signal emit no such wave"})
    assert [v.invariant for v in found] == [LOST] * 4
    assert "signal 6 (planner_finished for t, from agent) is still pending" in found[0].what
    assert "failed without a reason" in found[1].what
    assert "no audit row records it" in found[2].what and "signal 8" in found[2].what
    assert "signal 9 (signal emit no such wave) was emitted, and is not in the store" in found[3].what


def test_a_signal_recorded_twice_was_applied_twice() -> None:
    doubled = [*CLEAN, move("verifying", "done", "verify_approved", signal_id=5)]
    found = check_signals(SIGNALS, doubled)
    assert [(v.invariant, v.what) for v in found] == [
        (
            DOUBLED,
            "signal 5 (planner_finished for t, from agent) was applied 2 times (audit rows with its id)",
        )
    ]
    # Rows that only mention a signal (requeued, a wave keeper's refusal) are not applications.
    assert check_signals(SIGNALS, [*CLEAN, audit("signal_requeued", signal_id=5)]) == []


# --- one task's record -------------------------------------------------------------------------------------


def test_a_transition_applied_twice_breaks_the_chain() -> None:
    record = [*CLEAN[:9], move("implementing", "reviewing", "implement_finished", "corral"), *CLEAN[9:]]
    found = check_task(TASK, record, WAVES)
    assert [v.invariant for v in found] == [DOUBLED]
    assert (
        "moves it implementing → reviewing (implement_finished, by corral), but it was reviewing"
        in found[0].what
    )


def test_a_wave_task_completed_twice_in_one_attempt_is_doubled_and_a_retry_is_not() -> None:
    record = [*CLEAN[:8], finished(1, 2, 6), *CLEAN[8:]]
    found = check_task(TASK, record, WAVES)
    assert [(v.invariant, v.what) for v in found] == [
        (DOUBLED, "t: wave 1 task 2 completed 2 times in 1 attempt(s)")
    ]
    retried = [*CLEAN[:8], started("t-W1-T2"), finished(1, 2, 6), *CLEAN[8:]]
    assert check_task(TASK, retried, [wave_row(1, 1), wave_row(1, 2, attempts=2)]) == []


def test_an_agent_started_twice_for_one_attempt_or_one_step_is_a_duplicate() -> None:
    record = [*CLEAN[:6], started("t-W1-T2"), *CLEAN[6:], started("t-verify-1")]
    found = check_task(TASK, record, WAVES)
    assert [(v.invariant, v.what) for v in found] == [
        (DUPLICATE, "t: t-W1-T2 was started 2 times for 1 attempt(s) of wave 1 task 2"),
        (DUPLICATE, "t: t-verify-1 was started 2 times for 1 entry into verifying"),
    ]


# --- processes and stalls ----------------------------------------------------------------------------------


def agent(pid: int, title: str, state: str = "S") -> Proc:
    return Proc(pid, "agent", state, title, "t")


def test_two_live_agents_with_one_title_seen_twice_in_a_row_are_reported_once() -> None:
    watch = DuplicateWatch()
    assert watch.sample([agent(1, "t-W1-T1"), agent(2, "t-W1-T1"), agent(3, "t-W1-T2")]) == []  # a moment
    assert watch.sample([agent(2, "t-W1-T1")]) == []  # the old one was on its way out
    assert watch.sample([agent(2, "t-W1-T1"), agent(4, "t-W1-T1")]) == []
    [found] = watch.sample([agent(2, "t-W1-T1"), agent(4, "t-W1-T1"), Proc(5, "other", "S", "t-W1-T1")])
    assert (found.invariant, found.what) == (
        DUPLICATE,
        "two live agents titled t-W1-T1: agent t-W1-T1 (pid 2), agent t-W1-T1 (pid 4)",
    )
    assert watch.sample([agent(2, "t-W1-T1"), agent(4, "t-W1-T1")]) == []  # once
    assert watch.violations == [found]


def test_a_process_left_is_a_leak() -> None:
    found = check_leaks([agent(7, "t-coder"), Proc(8, "tmux", "S")], "after the cleanup")
    assert [(v.invariant, v.what) for v in found] == [
        (LEAKED, "agent t-coder (pid 7) still alive after the cleanup"),
        (LEAKED, "tmux server (pid 8) still alive after the cleanup"),
    ]


def test_a_task_that_does_not_move_and_shows_no_reason_is_stuck_once() -> None:
    watch = StallWatch(stall_s=10)
    assert watch.observe(0, "t", "a", "", True) is None
    assert watch.observe(9.9, "t", "a", "", True) is None
    found = watch.observe(10.0, "t", "a", "", True, note="implementing; agents: none")
    assert found is not None and found.invariant == STUCK
    assert found.what == "t did not move for 10 s and showed no waiting reason: implementing; agents: none"
    assert watch.observe(30, "t", "a", "", True) is None  # one violation per stall


def test_moving_showing_a_reason_or_the_daemon_being_down_is_not_stuck() -> None:
    watch = StallWatch(stall_s=10)
    watch.observe(0, "t", "a", "", True)
    watch.observe(8, "t", "b", "", True)  # it moved
    assert watch.observe(17, "t", "b", "", True) is None
    watch.observe(17, "t", "b", "t-coder waits: it may be hung", True)  # a reason is shown
    assert watch.observe(26, "t", "b", "", True) is None  # the clock starts again when it goes
    watch.observe(26, "t", "b", "", False)  # the daemon is down from 26 to 60: that time does not count
    assert watch.observe(60, "t", "b", "", True) is None
    assert watch.observe(70.5, "t", "b", "", True) is not None  # 9 s before the outage + 10.5 s after


# --- the person --------------------------------------------------------------------------------------------


def test_the_person_answers_with_the_command_the_wait_lists_never_a_manual_finish() -> None:
    decision = TaskWaiting(
        reason="t — wave 1: 2/3 tasks complete, 1 failed (task 2)",
        commands=(
            "corral signal emit retry_wave t",
            "corral signal emit advance_wave t",
            "corral signal emit implement_task_finished t --payload '{\"wave_number\": 1}'",
            "corral task transition t cancel",
        ),
        kind="wave_decision",
    )
    assert person_command(decision) == ["corral", "signal", "emit", "retry_wave", "t"]
    ended = TaskWaiting(
        reason="t-coder ended", commands=("corral instance restart t-coder", "corral task transition t …"),
        kind="agent_ended", agent="t-coder",
    )  # fmt: skip
    assert person_command(ended) == ["corral", "instance", "restart", "t-coder"]
    idle = TaskWaiting(
        reason="t-coder is idle",
        commands=("corral instance attach t-coder",),
        kind="agent_idle",
        agent="t-coder",
    )
    assert person_command(idle) == ["corral", "instance", "restart", "t-coder"]
    limit = TaskWaiting(
        reason="3 review cycles", commands=("corral task transition t cancel",), kind="review_limit"
    )
    assert person_command(limit) is None
    assert person_command(None) is None


# --- the report --------------------------------------------------------------------------------------------


def test_recovery_times_by_kind_and_invariants_in_their_order() -> None:
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0 and percentile([1.0, 2.0], 99) == 2.0
    assert percentile([float(n) for n in range(1, 101)], 99) == 99.0
    assert percentile([7.0], 0) == 7.0
    records = [
        FaultRecord(1, "agent-kill", "a", "t", 1.0, 2.0),
        FaultRecord(2, "agent-kill", "b", "t", 2.0, 4.0),
        FaultRecord(3, "agent-kill", "c", "t", 3.0, None),
        FaultRecord(4, "flood", "d", "t", 4.0, 1.0),
    ]
    stats = {s.kind: s for s in by_kind(records, ["agent-kill", "flood", "tmux-kill"])}
    assert (stats["agent-kill"].injected, stats["agent-kill"].recovered) == (3, 2)
    kill = stats["agent-kill"]
    assert (kill.p50_s, kill.p99_s, kill.max_s) == (2.0, 4.0, 4.0)
    assert (stats["tmux-kill"].injected, stats["tmux-kill"].p50_s) == (0, None)
    results = invariant_results(check_signals([signal(1, "pending")], []))
    assert [(r.name, r.count) for r in results] == [
        (LOST, 1), (DOUBLED, 0), (DUPLICATE, 0), (LEAKED, 0), (STUCK, 0)
    ]  # fmt: skip
    assert msgspec.json.decode(msgspec.json.encode(results[0]))["examples"][0].startswith("signal 1 ")
