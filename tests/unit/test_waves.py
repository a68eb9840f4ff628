"""The wave scheduler: caps, promotions, outcomes, decisions, duplicates, refusals, restore."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.plan import Plan, PlanTask, Wave
from protocols.records import WaveTaskRecord
from protocols.waves import (
    AllWavesDone,
    AwaitConfirmation,
    AwaitDecision,
    StartTask,
    Step,
    StopTasks,
    WaveDone,
    WaveFailed,
    WaveRun,
    WavesAborted,
)


def make_plan(*sizes: int) -> Plan:
    """A plan whose wave i has sizes[i] tasks, numbered 1, 2, 3, … across the plan."""
    waves, n = [], 0
    for w, size in enumerate(sizes, start=1):
        tasks = []
        for _ in range(size):
            n += 1
            tasks.append(PlanTask(n, f"task {n}", f"body {n}", wave_number=w))
        waves.append(Wave(w, f"wave {w}", tuple(tasks)))
    return Plan("T", waves=tuple(waves))


def starts(step: Step) -> list[tuple[int, int]]:
    return [(a.wave, a.task_number) for a in step.actions if isinstance(a, StartTask)]


def kinds(step: Step) -> list[type]:
    return [type(a) for a in step.actions]


# --- caps and promotions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cap", "first"),
    [(0, [1, 2, 3, 4, 5]), (1, [1]), (2, [1, 2]), (5, [1, 2, 3, 4, 5]), (9, [1, 2, 3, 4, 5])],
)
def test_start_wave_starts_the_first_cap_tasks_and_keeps_the_rest_pending(cap: int, first: list[int]) -> None:
    step = WaveRun.begin("t", make_plan(5), cap=cap).start_wave(1)
    assert starts(step) == [(1, n) for n in first]
    assert step.run.statistics().pending == 5 - len(first)
    assert {t.number for t in step.changed} == set(first)


def test_each_finished_or_failed_task_promotes_one_pending_task() -> None:
    step = WaveRun.begin("t", make_plan(5), cap=2).start_wave(1)
    step = step.run.task_finished(1, 1)
    assert starts(step) == [(1, 3)]
    step = step.run.task_failed(1, 2, "boom")
    assert starts(step) == [(1, 4)]
    step = step.run.agent_exited_cleanly(1, 3, worked=True)
    assert starts(step) == [(1, 5)]
    assert step.run.statistics().running == 2


def test_start_wave_cap_argument_overrides_the_run_cap() -> None:
    step = WaveRun.begin("t", make_plan(3), cap=0).start_wave(1, cap=1)
    assert starts(step) == [(1, 1)]


# --- outcomes -----------------------------------------------------------------------------------------------


def test_all_complete_with_auto_advance_starts_the_next_wave() -> None:
    step = WaveRun.begin("t", make_plan(1, 2)).start_wave(1).run.task_finished(1, 1)
    assert kinds(step) == [StopTasks, WaveDone, StartTask, StartTask]
    assert step.run.current == 2 and step.run.phase == "running"


def test_all_complete_without_auto_advance_awaits_confirmation_then_advance_starts_it() -> None:
    step = WaveRun.begin("fix", make_plan(1, 1), auto_advance=False).start_wave(1).run.task_finished(1, 1)
    assert kinds(step) == [StopTasks, WaveDone, AwaitConfirmation]
    ask = step.actions[-1]
    assert isinstance(ask, AwaitConfirmation) and "wave 1 complete (1/1). Start wave 2?" in ask.message
    assert ask.commands[0] == "corral signal emit advance_wave fix"
    step = step.run.advance(1)
    assert starts(step) == [(2, 2)]
    assert step.run.advance(1).note  # a second advance_wave is a harmless duplicate


def test_last_wave_complete_gives_all_waves_done_even_without_auto_advance() -> None:
    step = WaveRun.begin("t", make_plan(1), auto_advance=False).start_wave(1).run.task_finished(1, 1)
    assert kinds(step) == [StopTasks, WaveDone, AllWavesDone]
    assert step.run.phase == "done"


def test_a_failed_task_makes_the_wave_wait_for_a_decision() -> None:
    run = WaveRun.begin("fix", make_plan(2, 1)).start_wave(1).run
    step = run.task_finished(1, 1).run.task_failed(1, 2, "crashed")
    assert kinds(step) == [StopTasks, WaveFailed, AwaitDecision]
    decision = step.actions[-1]
    assert isinstance(decision, AwaitDecision)
    assert "fix — wave 1: 1/2 tasks complete, 1 failed" in decision.message
    assert decision.commands == (
        "corral signal emit retry_wave fix",
        "corral signal emit advance_wave fix",
        """corral signal emit implement_task_finished fix --payload '{"wave_number": 1, "task_number": 2}'""",
        "corral task transition fix cancel",
    )
    assert step.run.phase == "awaiting_decision"


def test_retry_failed_reruns_only_the_failed_tasks_with_a_new_attempt() -> None:
    run = WaveRun.begin("t", make_plan(3)).start_wave(1).run
    run = run.task_failed(1, 1).run.task_finished(1, 2).run.task_failed(1, 3).run
    step = run.retry_failed()
    assert [(a.task_number, a.attempt) for a in step.actions if isinstance(a, StartTask)] == [(1, 2), (3, 2)]
    assert step.run.retry_failed().note  # already running again


def test_advance_past_failures_goes_on_and_after_the_last_wave_finishes() -> None:
    run = WaveRun.begin("t", make_plan(1, 1)).start_wave(1).run.task_failed(1, 1).run
    step = run.advance()
    assert starts(step) == [(2, 2)]
    step = step.run.task_failed(2, 2).run.advance(2)
    assert kinds(step) == [AllWavesDone]


def test_mark_complete_of_the_failed_task_decides_the_wave_again() -> None:
    run = WaveRun.begin("t", make_plan(2, 1)).start_wave(1).run
    run = run.task_finished(1, 1).run.task_failed(1, 2).run
    step = run.mark_complete(1, 2)
    assert kinds(step) == [StopTasks, WaveDone, StartTask]


def test_mark_complete_of_a_pending_task_means_it_is_never_started() -> None:
    run = WaveRun.begin("t", make_plan(2), cap=1).start_wave(1).run
    step = run.mark_complete(1, 2)
    assert starts(step) == []
    assert kinds(step.run.task_finished(1, 1)) == [StopTasks, WaveDone, AllWavesDone]


def test_abort_stops_the_running_tasks_and_ends_the_run() -> None:
    run = WaveRun.begin("t", make_plan(3), cap=2).start_wave(1).run
    step = run.abort("changed my mind")
    assert step.actions == (StopTasks(1, (1, 2), "changed my mind"), WavesAborted(1, "changed my mind"))
    assert step.run.phase == "aborted"
    assert step.run.abort().note
    assert "aborted" in step.run.task_finished(1, 1).refusal


# --- duplicates and refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (lambda r: r.task_finished(9, 1), "has no wave 9 (its plan has 2)"),
        (lambda r: r.task_finished(1, 42), "has no task 42 in its plan"),
        (lambda r: r.task_finished(1, 3), "task 3 of t is in wave 2, not wave 1"),
        (lambda r: r.task_finished(2, 3), "wrong wave"),
        (lambda r: r.task_finished(1, 2), "has not started yet (it is pending)"),
        (lambda r: r.task_failed(1, 2), "has not started"),
        (lambda r: r.retry_failed(2), "cannot retry wave 2"),
        (lambda r: r.advance(), "cannot advance from wave 1"),
        (lambda r: r.start_wave(3), "cannot start wave 3"),
    ],
)
def test_invalid_events_are_refused_with_a_reason_and_change_nothing(event, expected: str) -> None:  # type: ignore[no-untyped-def]
    run = WaveRun.begin("t", make_plan(2, 1), cap=1).start_wave(1).run
    step = event(run)
    assert expected in step.refusal
    assert step.run == run and step.actions == () and not step.applied


@pytest.mark.parametrize(
    "event",
    [
        lambda r: r.task_finished(1, 1),
        lambda r: r.mark_complete(1, 1),
        lambda r: r.agent_exited_cleanly(1, 1, worked=True),
        lambda r: r.task_failed(1, 1),
        lambda r: r.agent_exited_cleanly(1, 1, worked=False),
    ],
)
def test_events_for_a_complete_task_are_noted_duplicates(event) -> None:  # type: ignore[no-untyped-def]
    run = WaveRun.begin("t", make_plan(2)).start_wave(1).run.task_finished(1, 1).run
    step = event(run)
    assert step.note and not step.refusal and step.run == run and step.actions == ()


def test_a_clean_exit_without_work_fails_the_task() -> None:
    run = WaveRun.begin("t", make_plan(2)).start_wave(1).run
    step = run.agent_exited_cleanly(1, 1, worked=False)
    task = step.run.get(1)
    assert task is not None and task.status == "failed" and "before doing any work" in task.reason


def test_nothing_runs_before_the_first_wave_is_started() -> None:
    run = WaveRun.begin("t", make_plan(1))
    assert "no wave of t has started" in run.task_finished(1, 1).refusal
    assert "waves start at wave 1" in run.start_wave(2).refusal


# --- restore ------------------------------------------------------------------------------------------------


def rows(run: WaveRun) -> list[WaveTaskRecord]:
    return [WaveTaskRecord(0, 1, t.wave, t.number, "", str(t.status), "", t.attempts, "") for t in run.tasks]


def test_from_records_restores_a_running_wave_and_fills_free_slots() -> None:
    plan = make_plan(3, 1)
    run = WaveRun.begin("t", plan, cap=2).start_wave(1).run.task_finished(1, 1).run
    saved = rows(run)
    step = WaveRun.from_records("t", plan, saved, cap=2)
    assert shape(step.run) == shape(run) and step.run.current == 1 and step.run.phase == "running"
    assert step.actions == ()  # two running, cap two: nothing to start
    bigger = WaveRun.from_records("t", plan, saved, cap=0)
    assert starts(bigger) == []  # task 3 was already promoted when task 1 finished


def test_from_records_asks_again_for_a_pending_decision() -> None:
    plan = make_plan(1, 1)
    run = WaveRun.begin("t", plan).start_wave(1).run.task_failed(1, 1).run
    step = WaveRun.from_records("t", plan, rows(run))
    assert kinds(step) == [StopTasks, WaveFailed, AwaitDecision]


def test_from_records_without_started_tasks_is_idle() -> None:
    plan = make_plan(2)
    step = WaveRun.from_records("t", plan, rows(WaveRun.begin("t", plan)))
    assert step.run.phase == "idle" and step.actions == ()


def test_from_records_ignores_rows_the_plan_does_not_have() -> None:
    plan = make_plan(1)
    ghost = WaveTaskRecord(0, 1, 1, 99, "", "running", "", 1, "")
    assert WaveRun.from_records("t", plan, [ghost]).run.phase == "idle"


# --- properties ---------------------------------------------------------------------------------------------

EVENTS = st.tuples(
    st.sampled_from(["finished", "failed", "exited", "idle_exit", "mark", "retry", "advance", "abort"]),
    st.integers(0, 4),  # wave (0 and beyond the plan: invalid)
    st.integers(0, 12),  # task number (some invalid)
)


def apply(run: WaveRun, event: tuple[str, int, int]) -> Step:
    kind, wave, number = event
    if kind == "finished":
        return run.task_finished(wave, number)
    if kind == "failed":
        return run.task_failed(wave, number, "x")
    if kind == "exited":
        return run.agent_exited_cleanly(wave, number, worked=True)
    if kind == "idle_exit":
        return run.agent_exited_cleanly(wave, number, worked=False)
    if kind == "mark":
        return run.mark_complete(wave, number)
    if kind == "retry":
        return run.retry_failed(wave or None)
    if kind == "advance":
        return run.advance(wave or None)
    return run.abort()


def shape(run: WaveRun) -> list[tuple[int, int, str, int]]:
    """What the store keeps of a run's tasks (a failure's reason is audited, not kept in the row)."""
    return [(t.wave, t.number, str(t.status), t.attempts) for t in run.tasks]


class Model:
    """What the actions say happened, checked against the run after every step."""

    def __init__(self, run: WaveRun) -> None:
        self.live: set[int] = set()
        self.outcomes: list[tuple[int, str]] = []

    def check(self, before: WaveRun, step: Step) -> None:
        run = step.run
        if step.refusal or step.note:
            assert step.run == before and step.actions == ()
            return
        outcome_count = 0
        for action in step.actions:
            if isinstance(action, StartTask):
                assert action.task_number not in self.live, "started twice"
                self.live.add(action.task_number)
            elif isinstance(action, (WaveDone, WaveFailed)):
                outcome_count += 1
                wave_tasks = run.wave_tasks(action.wave)
                assert all(t.status in ("complete", "failed") for t in wave_tasks)
                self.outcomes.append((action.wave, type(action).__name__))
        for t in run.tasks:
            if t.status in ("complete", "failed", "pending"):
                self.live.discard(t.number)
            else:
                assert t.number in self.live, f"task {t.number} runs without a StartTask"
        if run.cap:
            assert run.statistics().running <= run.cap
        assert all(t.status == "pending" for t in run.tasks if t.wave > run.current)
        if run.phase == "running":
            # A running wave always has something left, and never a free slot with a pending task.
            stats = run.statistics()
            assert stats.pending + stats.running > 0
            assert not (stats.pending and (run.cap == 0 or stats.running < run.cap))
        # Exactly one outcome per wave end: a wave that stopped running reports one, no wave reports two.
        ended = [w for w, _ in self.outcomes[len(self.outcomes) - outcome_count :]]
        assert len(ended) == len(set(ended))
        stopped = before.phase == "running" and (run.current != before.current or run.phase != "running")
        if stopped and run.phase != "aborted":
            assert before.current in ended
        if before.phase == "running" and run.phase in ("awaiting_decision", "awaiting_confirmation", "done"):
            assert run.current in ended


@settings(max_examples=300, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    cap=st.integers(0, 3),
    auto_advance=st.booleans(),
    events=st.lists(EVENTS, max_size=40),
)
def test_random_events_keep_the_cap_never_double_start_and_end_every_wave_once(
    sizes: list[int], cap: int, auto_advance: bool, events: list[tuple[str, int, int]]
) -> None:
    plan = make_plan(*sizes)
    run = WaveRun.begin("t", plan, cap=cap, auto_advance=auto_advance)
    model = Model(run)
    step = run.start_wave(1)
    model.check(run, step)
    run = step.run
    for event in events:
        step = apply(run, event)
        model.check(run, step)
        run = step.run
        # A restarted daemon sees the same run.
        restored = WaveRun.from_records("t", plan, rows(run), cap=cap, auto_advance=auto_advance).run
        if run.phase in ("running", "awaiting_decision", "awaiting_confirmation"):
            assert shape(restored) == shape(run) and restored.current == run.current
            assert restored.phase == run.phase
    # Drive the run to its end: finish whatever runs, go on from every decision.
    for _ in range(100):
        if run.phase in ("done", "aborted"):
            break
        if run.phase == "running":
            live = [t for t in run.wave_tasks(run.current) if t.status == "running"]
            step = run.task_finished(run.current, live[0].number)
        else:
            step = run.advance()
        model.check(run, step)
        run = step.run
    assert run.phase in ("done", "aborted")
    if run.phase == "done":
        assert all(t.status in ("complete", "failed") for t in run.tasks)
