"""The signal queue: emit, list, claim, apply (every failure reason), stale claims, wave signals, batches."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from actors.clock import FakeClock, utc_stamp
from actors.store import Store
from protocols.errors import ConflictError, NotFoundError, PayloadError, TooLargeError, UsageError
from protocols.fsm import Event, Source, Status
from protocols.records import Project, SignalOutcome


def audit_for(store: Store, signal_id: int) -> list[str]:
    return [e.kind for e in store.list_audit(limit=10_000) if e.signal_id == signal_id]


def apply_one(store: Store) -> SignalOutcome:
    outcome = store.apply_next("worker-1")
    assert outcome is not None
    return outcome


# -- emit and list -------------------------------------------------------------------------------------------


def test_emit_validates_and_canonicalises(store: Store, project: Project, clock: FakeClock) -> None:
    signal = store.emit_signal(project.id, "my-task.md", "review-changes", "tests fail on empty input")
    assert (signal.task, signal.signal_type, signal.source, signal.status) == (
        "my-task",
        "review_changes_requested",
        "agent",
        "pending",
    )
    assert signal.payload == '{"body":"tests fail on empty input"}'
    assert (signal.created_at, signal.attempts, signal.claimed_by) == (utc_stamp(clock.now()), 0, "")
    assert store.get_signal(signal.id) == signal


def test_emit_refuses_unknown_types_bad_payloads_and_names(store: Store, project: Project) -> None:
    with pytest.raises(UsageError, match='unknown signal type "fly"'):
        store.emit_signal(project.id, "t", "fly")
    with pytest.raises(PayloadError, match="implement_task_finished needs a payload"):
        store.emit_signal(project.id, "t", "implement_task_finished")
    with pytest.raises(PayloadError, match="implement_wave"):
        store.emit_signal(project.id, "t", "implement_wave", '{"wave_number": 0}')
    with pytest.raises(UsageError, match="invalid task name"):
        store.emit_signal(project.id, "Bad Name", "plan_start")
    with pytest.raises(NotFoundError, match="no project with id 42"):
        store.emit_signal(42, "t", "plan_start")
    assert store.list_signals() == []


def test_a_planner_finished_payload_over_one_mib_is_refused_when_emitted(
    store: Store, project: Project
) -> None:
    plan = "# Plan\n" + "x" * (1024 * 1024)
    with pytest.raises(TooLargeError) as refused:
        store.emit_signal(project.id, "t", "planner_finished", plan)
    assert str(refused.value).startswith(
        f"the payload of signal planner_finished is 1.0 MiB ({len(plan)} bytes), over the cap of 1 MiB"
    )
    with pytest.raises(TooLargeError):  # as JSON too: the body would become the task's content
        store.emit_signal(project.id, "t", "planner_finished", msgspec.json.encode({"body": plan}).decode())
    assert store.list_signals() == []
    edge = "x" * (1024 * 1024)  # at the cap: accepted, and fits the task's content cap once decoded
    assert store.emit_signal(project.id, "t", "planner_finished", edge).status == "pending"


def test_list_signals_newest_first_with_filters(store: Store, project: Project) -> None:
    a = store.emit_signal(project.id, "a", "plan_start")
    b = store.emit_signal(project.id, "b", "plan_start")
    c = store.emit_signal(project.id, "a", "planner_finished", source=Source.USER)
    assert [s.id for s in store.list_signals(project.id)] == [c.id, b.id, a.id]
    assert [s.id for s in store.list_signals(project.id, task="a")] == [c.id, a.id]
    assert [s.id for s in store.list_signals(limit=1)] == [c.id]
    store.apply_next("w")
    assert [s.id for s in store.list_signals(statuses=["failed"])] == [a.id]  # no task "a" yet
    assert [s.id for s in store.list_signals(statuses=["pending", "done"])] == [c.id, b.id]
    with pytest.raises(UsageError, match='unknown signal status "lost"'):
        store.list_signals(statuses=["lost"])


# -- claim and apply -----------------------------------------------------------------------------------------


def test_apply_next_applies_in_order_and_finishes(store: Store, project: Project, clock: FakeClock) -> None:
    store.create_task(project.id, "t")
    first = store.emit_signal(project.id, "t", "plan_start")
    store.emit_signal(project.id, "t", "planner_finished", "plan written")
    clock.advance(3)
    outcome = apply_one(store)
    now = utc_stamp(clock.now())
    assert outcome.applied and outcome.reason == ""
    assert outcome.transition is not None and outcome.transition.to_status is Status.PLANNING
    assert outcome.signal == store.get_signal(first.id)
    assert (outcome.signal.status, outcome.signal.result) == ("done", "ready → planning")
    assert (outcome.signal.claimed_by, outcome.signal.claimed_at, outcome.signal.processed_at) == (
        "worker-1",
        now,
        now,
    )
    assert outcome.signal.attempts == 1
    assert apply_one(store).signal.result == "planning → planned"
    assert store.apply_next("worker-1") is None
    task = store.get_task(project.id, "t")
    assert task.display_status == "planned"
    [audit] = [e for e in store.list_audit() if e.signal_id == first.id]
    assert (audit.kind, audit.message) == ("transition", "t: ready → planning (plan_start, by agent)")
    keys = [item.key for item in store.pending_outbox()]
    assert keys == [f"signal:{first.id}:enter_planning", f"signal:{first.id + 1}:enter_ready"]
    assert [item.signal_id for item in store.pending_outbox()] == [first.id, first.id + 1]


def test_feedback_signal_sets_latest_feedback(store: Store, project: Project) -> None:
    store.create_task(project.id, "t")
    store.set_status(project.id, "t", "reviewing")
    store.emit_signal(project.id, "t", "review_changes", "handle the empty list")
    apply_one(store)
    task = store.get_task(project.id, "t")
    assert (task.status, task.latest_feedback, task.review_cycle) == (
        "implementing",
        "handle the empty list",
        1,
    )


def test_claim_then_apply_claimed(store: Store, project: Project) -> None:
    store.create_task(project.id, "t")
    emitted = store.emit_signal(project.id, "t", "implement_start")
    claimed = store.claim_next("daemon:1")
    assert claimed is not None and claimed.id == emitted.id
    assert (claimed.status, claimed.claimed_by, claimed.attempts) == ("processing", "daemon:1", 1)
    assert store.claim_next("daemon:2") is None
    assert store.apply_next("daemon:2") is None  # processing signals are not pending
    outcome = store.apply_claimed(emitted.id, "daemon:1")
    assert outcome.applied and outcome.signal == store.get_signal(emitted.id)
    assert (outcome.signal.status, outcome.signal.claimed_at, outcome.signal.attempts) == (
        "done",
        claimed.claimed_at,
        1,
    )
    assert store.get_task(project.id, "t").status == "implementing"


def test_apply_claimed_refuses_a_lost_claim(store: Store, project: Project, clock: FakeClock) -> None:
    store.create_task(project.id, "t")
    emitted = store.emit_signal(project.id, "t", "plan_start")
    store.claim_next("daemon:1")
    with pytest.raises(ConflictError, match=r"no longer claimed by daemon:2 .*claimed by daemon:1"):
        store.apply_claimed(emitted.id, "daemon:2")
    clock.advance(120)
    assert store.requeue_stale(60) == 1
    with pytest.raises(ConflictError, match="it is pending, not claimed"):
        store.apply_claimed(emitted.id, "daemon:1")
    with pytest.raises(NotFoundError, match="no signal with id 999"):
        store.apply_claimed(999, "daemon:1")
    assert store.get_task(project.id, "t").status == "ready"


def test_claims_are_scoped_by_project(store: Store, project: Project, tmp_path: Path) -> None:
    other = store.ensure_project(tmp_path)
    for p in (project, other):
        store.create_task(p.id, "t")
    theirs = store.emit_signal(other.id, "t", "plan_start")
    ours = store.emit_signal(project.id, "t", "plan_start")
    claimed = store.claim_next("me", project_id=project.id)
    assert claimed is not None and claimed.id == ours.id
    outcome = store.apply_next("me", project_id=other.id)
    assert outcome is not None and outcome.signal.id == theirs.id
    assert store.apply_next("me", project_id=other.id) is None


# -- every reason a signal fails -----------------------------------------------------------------------------


def inject(store: Store, project: Project, task: str, signal_type: str, payload: str, source: str) -> int:
    """Write a signal row as an older or buggy client might have, bypassing emit's validation."""
    store._conn.execute(
        "INSERT INTO signals (project_id, task, signal_type, payload, source, created_at) "
        "VALUES (?, ?, ?, ?, ?, '')",
        (project.id, task, signal_type, payload, source),
    )
    return store._conn.last_insert_rowid()


FAILURES = [
    # (set-up status of task "t", task, type, payload, source, reason pattern)
    ("ready", "t", "teleport", "", "agent", 'unknown signal type "teleport"'),
    ("ready", "t", "plan_start", "{not json", "agent", "payload is not JSON"),
    ("ready", "t", "implement_wave", '{"wave_number": "one"}', "agent", "implement_wave payload"),
    ("ready", "t", "plan_start", "", "robot", 'unknown source "robot"'),
    ("ready", "ghost", "plan_start", "", "agent", 'no task named "ghost" in project repo'),
    ("ready", "t", "implement_finished", "", "agent", 'event "implement_finished" does not apply'),
    ("done", "t", "start_over", "", "agent", 'event "start_over" is user-only'),
    ("ready", "t", "implement_wave", '{"wave_number": 1}', "agent", "needs task t to be implementing"),
    ("ready", "t", "retry_wave", "", "user", "needs task t to be implementing"),
    (
        "implementing",
        "t",
        "implement_task_finished",
        '{"wave_number": 1, "task_number": 9}',
        "agent",
        "task t has no wave task 9",
    ),
    (
        "implementing",
        "t",
        "implement_task_finished",
        '{"wave_number": 2, "task_number": 1}',
        "agent",
        "wave task 1 of t is in wave 1, not wave 2",
    ),
    (
        "implementing",
        "t",
        "implement_task_finished",
        '{"wave_number": 1, "task_number": 2}',
        "agent",
        "wave task 2 of t is pending, not running",
    ),
]


@pytest.mark.parametrize(("status", "task", "signal_type", "payload", "source", "reason"), FAILURES)
def test_a_signal_that_cannot_apply_fails_with_its_reason(
    store: Store,
    project: Project,
    status: str,
    task: str,
    signal_type: str,
    payload: str,
    source: str,
    reason: str,
) -> None:
    created = store.create_task(project.id, "t")
    store.set_status(project.id, "t", status)
    store.set_wave_tasks(created.id, [(1, 1, "one"), (1, 2, "two")])
    store.set_wave_task_status(created.id, 1, "running")
    before = store.get_task(project.id, "t")
    signal_id = inject(store, project, task, signal_type, payload, source)
    outcome = apply_one(store)
    assert not outcome.applied and outcome.transition is None
    assert outcome.signal == store.get_signal(signal_id)
    assert outcome.signal.status == "failed"
    assert reason in outcome.reason and outcome.signal.result == outcome.reason
    assert store.get_task(project.id, "t") == before
    [event] = [e for e in store.list_audit() if e.signal_id == signal_id]
    assert (event.kind, event.level) == ("signal_failed", "warn")
    assert msgspec.json.decode(event.detail)["signal_type"] == signal_type
    assert store.pending_outbox() == []


def test_a_topic_conflict_fails_the_signal(store: Store, project: Project) -> None:
    store.create_task(project.id, "a", topic="auth")
    store.create_task(project.id, "b", topic="auth")
    store.transition_task(project.id, "a", "implement_start")
    store.emit_signal(project.id, "b", "implement_start")
    outcome = apply_one(store)
    assert not outcome.applied and 'task "a" of the same topic "auth" is implementing' in outcome.reason


def test_a_bug_while_applying_fails_that_signal_alone(
    store: Store, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create_task(project.id, "t")
    poison = store.emit_signal(project.id, "t", "plan_start")
    store.emit_signal(project.id, "t", "plan_start")

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(Store, "_enter", broken)
    outcome = apply_one(store)
    monkeypatch.undo()
    assert outcome.signal.id == poison.id and not outcome.applied
    assert outcome.reason == "internal error while applying: ZeroDivisionError: oops"
    assert store.get_task(project.id, "t").status == "ready"  # the rolled-back transaction left nothing
    [event] = [e for e in store.list_audit() if e.signal_id == poison.id]
    assert (event.kind, event.level) == ("signal_failed", "error")
    assert store.pending_outbox() == []
    assert apply_one(store).applied  # the queue moves on
    assert not store._conn.in_transaction


# -- stale claims --------------------------------------------------------------------------------------------


def test_requeue_stale_returns_old_claims_only(store: Store, project: Project, clock: FakeClock) -> None:
    store.create_task(project.id, "t")
    old = store.emit_signal(project.id, "t", "plan_start")
    young = store.emit_signal(project.id, "t", "planner_finished")
    dead = store.claim_next("dead-worker")
    assert dead is not None
    clock.advance(50)
    store.claim_next("live-worker")
    assert store.requeue_stale(60) == 0
    clock.advance(20)  # old: claimed 70 s ago; young: 20 s ago
    assert store.requeue_stale(60) == 1
    requeued = store.get_signal(old.id)
    assert (requeued.status, requeued.claimed_by, requeued.claimed_at, requeued.attempts) == (
        "pending",
        "",
        "",
        1,
    )
    assert store.get_signal(young.id).status == "processing"
    [event] = [e for e in store.list_audit() if e.kind == "signal_requeued"]
    assert (event.level, event.signal_id) == ("warn", None)
    assert msgspec.json.decode(event.detail) == {
        "signal_id": old.id,
        "claimed_by": "dead-worker",
        "claimed_at": dead.claimed_at,
    }
    outcome = apply_one(store)  # the requeued signal is the oldest pending one
    assert outcome.signal.id == old.id and outcome.signal.attempts == 2 and outcome.applied
    assert audit_for(store, old.id) == ["transition"]


# -- wave signals --------------------------------------------------------------------------------------------


def test_wave_task_finished_completes_a_running_wave_task(store: Store, project: Project) -> None:
    task = store.create_task(project.id, "t")
    store.set_status(project.id, "t", "implementing")
    store.set_wave_tasks(task.id, [(1, 1, "models"), (1, 2, "views"), (2, 3, "docs")])
    store.set_wave_task_status(task.id, 2, "running", instance="t-w1-t2")
    signal = store.emit_signal(
        project.id, "t", "implement_task_finished", '{"wave_number": 1, "task_number": 2}'
    )
    outcome = apply_one(store)
    assert outcome.applied and outcome.transition is None
    assert outcome.signal.result == "wave 1 task 2: running → complete"
    assert [w.status for w in store.list_wave_tasks(task.id)] == ["pending", "complete", "pending"]
    [item] = store.pending_outbox()
    assert (item.kind, item.key) == ("wave_task_finished", f"signal:{signal.id}:wave_task_finished")
    assert msgspec.json.decode(item.payload) == {"wave_number": 1, "task_number": 2}
    [event] = [e for e in store.list_audit() if e.signal_id == signal.id]
    assert (event.kind, event.wave) == ("wave_task_finished", 1)


@pytest.mark.parametrize(
    ("signal_type", "payload", "kind", "wave"),
    [
        ("implement_wave", '{"wave_number": 2}', "start_wave", 2),
        ("retry_wave", "", "retry_wave", None),
        ("advance_wave", '{"wave_number": 1}', "advance_wave", 1),
    ],
)
def test_wave_decisions_queue_outbox_items(
    store: Store, project: Project, signal_type: str, payload: str, kind: str, wave: int | None
) -> None:
    store.create_task(project.id, "t")
    store.set_status(project.id, "t", "implementing")
    signal = store.emit_signal(project.id, "t", signal_type, payload)
    outcome = apply_one(store)
    assert outcome.applied and outcome.signal.status == "done"
    [item] = store.pending_outbox()
    assert (item.kind, item.key, item.signal_id) == (kind, f"signal:{signal.id}:{kind}", signal.id)
    assert msgspec.json.decode(item.payload) == {"wave_number": wave}
    [event] = [e for e in store.list_audit() if e.signal_id == signal.id]
    assert (event.kind, event.wave) == (kind, wave)
    assert store.get_task(project.id, "t").status == "implementing"


def test_wave_task_records(store: Store, project: Project) -> None:
    task = store.create_task(project.id, "t")
    store.set_wave_tasks(task.id, [(1, 1, "a"), (2, 2, "b")])
    record = store.set_wave_task_status(task.id, 1, "running", instance="i1")
    assert (record.status, record.instance, record.attempts) == ("running", "i1", 1)
    assert store.set_wave_task_status(task.id, 1, "failed").attempts == 1
    assert store.set_wave_task_status(task.id, 1, "running").attempts == 2
    store.set_wave_tasks(task.id, [(1, 5, "only")])
    assert [(w.wave_number, w.task_number, w.title, w.status) for w in store.list_wave_tasks(task.id)] == [
        (1, 5, "only", "pending"),
    ]
    with pytest.raises(NotFoundError, match="task t has no wave task 1"):
        store.set_wave_task_status(task.id, 1, "running")
    with pytest.raises(UsageError, match='unknown wave task status "lost"'):
        store.set_wave_task_status(task.id, 5, "lost")
    with pytest.raises(UsageError, match="appears twice"):
        store.set_wave_tasks(task.id, [(1, 1, "a"), (2, 1, "b")])
    with pytest.raises(NotFoundError, match="no task with id 99"):
        store.set_wave_tasks(99, [])
    store.set_wave_tasks(task.id, [])
    assert store.list_wave_tasks(task.id) == []


# -- batches -------------------------------------------------------------------------------------------------


def test_apply_pending_applies_a_batch_in_order(store: Store, project: Project) -> None:
    store.create_task(project.id, "t")
    cycle = [Event.PLAN_START, Event.PLANNER_FINISHED] * 3
    for event in [*cycle, Event.IMPLEMENT_FINISHED]:
        store.emit_signal(project.id, "t", event.value)
    outcomes = store.apply_pending("w", limit=4)
    assert [o.signal.result for o in outcomes] == [
        "ready → planning",
        "planning → planned",
        "planned → planning",  # a planned task's status reads "planned", also where it is left
        "planning → planned",
    ]
    rest = store.apply_pending("w")
    assert [o.applied for o in rest] == [True, True, False]
    assert store.apply_pending("w") == []
    assert len({o.signal.processed_at for o in outcomes}) == 1  # one transaction, one moment


def test_apply_pending_isolates_a_bug(
    store: Store, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create_task(project.id, "t")
    store.emit_signal(project.id, "t", "plan_start")
    store.emit_signal(project.id, "t", "implement_wave", '{"wave_number": 1}')
    store.emit_signal(project.id, "t", "planner_finished")
    original = Store._plan

    def flaky(self: Store, row: object) -> object:
        if getattr(row, "signal_type", "") == "implement_wave":
            raise KeyError("bug")
        return original(self, row)

    monkeypatch.setattr(Store, "_plan", flaky)
    outcomes = store.apply_pending("w")
    assert [(o.signal.signal_type, o.applied) for o in outcomes] == [
        ("plan_start", True),
        ("implement_wave", False),
        ("planner_finished", True),
    ]
    assert "internal error" in outcomes[1].reason
