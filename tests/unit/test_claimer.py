"""The SignalClaimer on real SQLite files and threads, woken by real pokes, with a FakeClock for its tick."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest

from actors.claimer import (
    ClaimerConfig,
    ClaimerStatistics,
    GetClaimerStatistics,
    OutboxReady,
    SignalClaimer,
    Wake,
)
from actors.clock import FakeClock
from actors.eventbus import EventBus
from actors.health import WriteHealth
from actors.store import Store
from actors.supervision import (
    ChildSpec,
    SupervisedActor,
    SupervisionEnv,
    SupervisionTree,
    SupervisorFlags,
    WhichChildren,
)
from actors.supervision.context import ChildContext
from actors.wake import poke
from protocols.fsm import Source
from protocols.messages import SignalProcessed, TaskTransitioned
from protocols.records import Project, Signal
from tests.unit.actor_kit import expect_event, wait_until

pytestmark = pytest.mark.usefixtures("stop_actors")

CLAIMER = "root/signals"


class Inbox(SupervisedActor):
    """Records what it is told: stands in for the Task actors that perform outbox items."""

    def __init__(self, ctx: ChildContext, received: list[Any]) -> None:
        super().__init__(ctx)
        self.received = received

    def on_receive(self, message: Any) -> Any:
        self.received.append(message)
        return None


class Rig:
    """A database with one project and its tasks, a wake socket, and at most one claimer tree at a time."""

    def __init__(self, tmp_path: Path, runtime: Path, trees: list[SupervisionTree]) -> None:
        self.clock = FakeClock()
        self.db = tmp_path / "corral.db"
        self.wake = runtime / "wake.sock"
        self.repo = tmp_path / "repo"
        self.repo.mkdir()
        self.store = Store.open(self.db, clock=self.clock)  # the test's own connection: an emitter
        self.project: Project = self.store.ensure_project(self.repo)
        for name in ("t1", "t2", "t3"):
            self.store.create_task(self.project.id, name)
        self.trees = trees  # stopped by the `trees` fixture

    def start(
        self,
        *extra: ChildSpec,
        flags: SupervisorFlags | None = None,
        health: WriteHealth | None = None,
        **config: Any,
    ) -> SupervisionTree:
        env = SupervisionEnv.create(self.clock, seed=3)
        config = {"db_path": self.db, "wake_path": self.wake, "repos": [], "settle_s": 0.0} | config
        children = [
            ChildSpec.worker("bus", EventBus),
            *extra,
            ChildSpec.worker("signals", SignalClaimer, ClaimerConfig(**config), health),
        ]
        tree = SupervisionTree.start(flags or SupervisorFlags(max_restarts=20, period_s=5), children, env=env)
        self.trees.append(tree)
        return tree

    def emit(self, task: str, signal_type: str, payload: str | None = None, *, wake: bool = True) -> Signal:
        signal = self.store.emit_signal(self.project.id, task, signal_type, payload)
        if wake:
            poke(self.wake)
        return signal

    def final(self, signal: Signal, timeout: float = 10.0) -> Signal:
        """The signal once it is done or failed."""
        return wait_until(
            lambda: (s := self.store.get_signal(signal.id)).status in ("done", "failed") and s,
            timeout,
            f"signal {signal.id} to be applied",
        )

    def audit_rows(self, signal_id: int) -> int:
        rows = self.store._conn.execute(
            "SELECT count(*) FROM audit_events WHERE signal_id = ?", (signal_id,)
        ).get
        return int(rows)

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def rig(tmp_path: Path, runtime_dir: Path, trees: list[SupervisionTree]) -> Iterator[Rig]:
    rig = Rig(tmp_path, runtime_dir, trees)
    yield rig
    rig.close()


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    """A short directory for the wake socket (a Unix socket path is limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="corral-rt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def stats(tree: SupervisionTree) -> ClaimerStatistics:
    return tree.ask(GetClaimerStatistics(), path=CLAIMER)


def generation(tree: SupervisionTree) -> int:
    return {c.id: c.generation for c in tree.ask(WhichChildren())}["signals"]


# -- draining ---------------------------------------------------------------------------------------------


def test_signals_emitted_while_no_claimer_ran_are_applied_at_its_start(rig: Rig) -> None:
    pending = [rig.emit(f"t{i}", "plan_start", wake=False) for i in (1, 2, 3)]
    tree = rig.start()
    assert [rig.final(s).result for s in pending] == ["ready → planning"] * 3
    assert rig.clock.monotonic() == 1000.0 and stats(tree).ticks == 0


def test_a_poke_applies_the_signal_without_the_fallback_tick(rig: Rig) -> None:
    tree = rig.start()
    signal = rig.emit("t1", "plan_start")
    assert rig.final(signal).status == "done"
    assert rig.store.get_task(rig.project.id, "t1").status == "planning"
    assert rig.clock.monotonic() == 1000.0  # the FakeClock never moved: no tick ran
    assert stats(tree).ticks == 0


def test_a_wake_message_is_enough_without_the_socket(rig: Rig) -> None:
    tree = rig.start(listen=False)  # e.g. the daemon's own API, which emits in-process
    signal = rig.emit("t1", "plan_start", wake=False)
    assert tree.env.directory.tell(CLAIMER, Wake())
    assert rig.final(signal).status == "done"
    assert not rig.wake.exists() and stats(tree).wake is None


def test_every_signal_is_applied_once_with_one_audit_row(rig: Rig) -> None:
    tree = rig.start(batch=7)  # small batches: the drain continues over many messages
    signals = [rig.emit(f"t{1 + i % 3}", "plan_start") for i in range(60)]
    for signal in signals:
        assert rig.final(signal).status == "done"
    assert [rig.audit_rows(s.id) for s in signals] == [1] * 60
    assert stats(tree).applied == 60


def test_bad_signals_fail_with_their_reason_and_the_claimer_keeps_running(rig: Rig) -> None:
    tree = rig.start()
    old_client = apsw.Connection(str(rig.db))  # an older corral wrote a payload this one cannot read
    old_client.set_busy_timeout(5000)
    old_client.execute(
        "INSERT INTO signals (project_id, task, signal_type, payload, source, status, created_at) "
        "VALUES (?, 't1', 'implement_wave', '{\"wave\": \"two\"}', 'agent', 'pending', '')",
        (rig.project.id,),
    )
    malformed = rig.store.get_signal(old_client.last_insert_rowid())
    old_client.close()
    user_only = rig.store.emit_signal(rig.project.id, "t2", "cancel", source=Source.AGENT)
    no_task = rig.emit("ghost", "plan_start")
    poke(rig.wake)

    assert rig.final(malformed).status == "failed"
    assert "implement_wave payload" in rig.store.get_signal(malformed.id).result
    assert rig.final(user_only).result == 'event "cancel" is user-only: an agent may not send it'
    assert rig.final(no_task).result.startswith('no task named "ghost"')
    assert rig.final(rig.emit("t3", "plan_start")).status == "done"  # and it goes on
    assert generation(tree) == 1 and stats(tree).failed == 3


def test_the_fallback_tick_reads_the_queue_only_when_another_connection_committed(rig: Rig) -> None:
    tree = rig.start()
    wait_until(lambda: stats(tree).drains >= 1, what="the start-up drain")

    def tick() -> ClaimerStatistics:
        before = stats(tree).ticks
        rig.clock.advance(1.0)
        return wait_until(lambda: (s := stats(tree)).ticks == before + 1 and s, what="a tick")

    signal = rig.emit("t1", "plan_start", wake=False)  # an emitter that cannot poke
    tick()
    assert rig.final(signal).status == "done"
    tick()  # its own commit changed data_version as seen from the watch connection: one more look
    quiet = [tick() for _ in range(3)]
    assert [s.idle_ticks - quiet[0].idle_ticks for s in quiet] == [0, 1, 2]
    assert len({s.drains for s in quiet}) == 1


def test_events_are_published_for_each_outcome(rig: Rig) -> None:
    tree = rig.start()
    sub = tree.env.hub.subscribe(kinds=(SignalProcessed, TaskTransitioned))
    done = rig.emit("t1", "plan_start")
    refused = rig.emit("t2", "planner_finished")
    processed = expect_event(sub, lambda e: isinstance(e, SignalProcessed) and e.signal_id == done.id)
    assert (processed.project, processed.status, processed.result) == ("repo", "done", "ready → planning")
    moved = expect_event(sub, lambda e: isinstance(e, TaskTransitioned))
    assert (moved.task, moved.from_status, moved.event, moved.to_status, moved.source, moved.signal_id) == (
        "t1",
        "ready",
        "plan_start",
        "planning",
        "agent",
        done.id,
    )
    failed = expect_event(sub, lambda e: isinstance(e, SignalProcessed) and e.signal_id == refused.id)
    assert failed.status == "failed" and "invalid transition" in failed.result
    assert sub.drain() == []  # no TaskTransitioned for the refused one


def test_applied_outcomes_are_told_to_the_outbox_performer_at_its_path(rig: Rig) -> None:
    received: list[Any] = []
    rig.start(ChildSpec.worker("tasks", Inbox, received), on_applied="root/tasks")
    applied = rig.emit("t1", "plan_start")
    refused = rig.emit("t2", "planner_finished")
    rig.final(refused)
    wait_until(lambda: received, what="OutboxReady")
    (message,) = received
    assert isinstance(message, OutboxReady)
    assert [o.signal.id for o in message.outcomes] == [applied.id]
    (item,) = rig.store.pending_outbox()
    assert (item.signal_id, item.kind) == (applied.id, "enter_planning")


def test_applied_outcomes_can_go_to_an_actor_ref(rig: Rig) -> None:
    received: list[Any] = []
    inbox = Inbox.start(ChildContext.root(SupervisionEnv(), "inbox"), received)
    rig.start(on_applied=inbox)
    signal = rig.emit("t1", "plan_start")
    wait_until(lambda: received, what="OutboxReady at the ref")
    assert [o.signal.id for o in received[0].outcomes] == [signal.id]


def test_a_hook_that_raises_does_not_stop_the_claimer(rig: Rig) -> None:
    calls: list[int] = []

    def hook(outcomes: tuple[Any, ...]) -> None:
        calls.append(len(outcomes))
        raise RuntimeError("the hook is broken")

    tree = rig.start(on_applied=hook)
    rig.final(rig.emit("t1", "plan_start"))
    assert rig.final(rig.emit("t2", "plan_start")).status == "done"
    assert calls and generation(tree) == 1


def test_a_burst_of_pokes_while_a_drain_runs_is_one_more_wake(rig: Rig) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow_hook(outcomes: tuple[Any, ...]) -> None:
        entered.set()
        release.wait(10)

    tree = rig.start(on_applied=slow_hook)
    wait_until(lambda: stats(tree).wakes == 1, what="the start-up drain")
    first = rig.emit("t1", "plan_start")
    assert entered.wait(10)  # the claimer is inside its drain
    burst = [rig.emit("t2", "plan_start"), *(rig.emit("t3", "plan_start") for _ in range(49))]
    release.set()
    for signal in [first, *burst]:
        assert rig.final(signal).status == "done"
    # the start-up Wake, the one for `first`, one for the whole burst, perhaps one for its stragglers
    assert stats(tree).wakes <= 4


# -- failures ---------------------------------------------------------------------------------------------


def test_a_store_failure_degrades_the_claimer_and_the_next_tick_applies_everything(rig: Rig) -> None:
    pending = [rig.emit(f"t{i}", "plan_start", wake=False) for i in (1, 2, 3)]
    health = WriteHealth()
    blocker = apsw.Connection(str(rig.db))
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock past the busy timeout
    try:
        tree = rig.start(busy_timeout_ms=100, health=health)
        wait_until(lambda: not health.view().ok, what="the claimer to report the fault")
        assert health.view().problems[0].startswith("signals: cannot write the corral database")
        assert "database is locked" in health.view().problems[0]
        rig.clock.advance(1.0)  # a tick while the fault lasts: it tries again, and fails again
        wait_until(lambda: stats(tree).ticks >= 1, what="a tick")
        assert [rig.store.get_signal(s.id).status for s in pending] == ["pending"] * 3
        assert not health.view().ok
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    rig.clock.advance(1.0)  # the next tick drains, with no commit nor poke to prompt it
    assert [rig.final(s).status for s in pending] == ["done"] * 3
    wait_until(lambda: health.view().ok, what="the fault to end")
    later = rig.emit("t1", "plan_start")
    assert rig.final(later).status == "done"
    assert generation(tree) == 1  # never crashed, never restarted
    assert [rig.audit_rows(s.id) for s in [*pending, later]] == [1, 1, 1, 1]


def test_a_claimer_that_cannot_open_the_store_starts_degraded_and_opens_it_later(
    rig: Rig, tmp_path: Path
) -> None:
    db = tmp_path / "later" / "corral.db"
    db.parent.mkdir()
    db.touch()  # an empty file: refused (corral never leaves one), until someone moves it away
    health = WriteHealth()
    tree = rig.start(health=health, db_path=db)
    wait_until(lambda: not health.view().ok, what="the claimer to report the store it cannot open")
    assert "is an empty file (0 bytes)" in health.view().problems[0]
    assert generation(tree) == 1
    db.unlink()  # what the error message says to do
    rig.clock.advance(1.0)  # the next tick opens (here: creates) the store and drains
    wait_until(lambda: health.view().ok, what="the claimer to open the store")
    with Store.open(db) as store:
        project = store.ensure_project(rig.repo)
        store.create_task(project.id, "t1")
        signal = store.emit_signal(project.id, "t1", "plan_start")
    poke(rig.wake)

    def applied() -> bool:
        with Store.open(db) as store:
            return store.get_signal(signal.id).status == "done"

    wait_until(applied, what="the signal to be applied")
    assert generation(tree) == 1


def test_a_claim_left_by_a_dead_claimer_is_requeued_and_applied(rig: Rig) -> None:
    rig.emit("t1", "plan_start", wake=False)
    dead = Store.open(rig.db, clock=rig.clock)
    claimed = dead.claim_next("claimer:dead")
    dead.close()
    assert claimed is not None and claimed.status == "processing"
    tree = rig.start(requeue_every_s=30, stale_after_s=60)
    wait_until(lambda: stats(tree).wakes >= 1, what="the start-up drain")
    assert rig.store.get_signal(claimed.id).status == "processing"  # not stale yet: left alone
    rig.clock.advance(61)  # stale now; the requeue timer (30 s) fires once
    assert rig.final(claimed).status == "done"
    assert stats(tree).requeued == 1
    assert rig.store.get_signal(claimed.id).attempts == 2


def test_a_second_claimer_on_the_same_socket_fails_to_start(rig: Rig) -> None:
    rig.start()
    with pytest.raises(Exception, match="already listening"):
        rig.start()


# -- sentinels --------------------------------------------------------------------------------------------


def test_sentinel_files_are_bridged_and_applied_on_a_wake(rig: Rig) -> None:
    tree = rig.start(repos=[(rig.project.id, rig.repo)])
    wait_until(lambda: stats(tree).wakes >= 1, what="the start-up drain")
    rig.store.transition_task(rig.project.id, "t1", "implement_start")
    rig.store.transition_task(rig.project.id, "t1", "implement_finished")
    signals_dir = rig.repo / ".corral" / "signals"
    signals_dir.mkdir(parents=True)
    (signals_dir / "review-changes-t1").write_text("  the tests fail on empty input\n")
    poke(rig.wake)
    task = wait_until(
        lambda: (t := rig.store.get_task(rig.project.id, "t1")).status == "implementing" and t,
        what="the sentinel's transition",
    )
    assert task.latest_feedback == "the tests fail on empty input"
    assert os.listdir(signals_dir) == ["processing"]
    assert stats(tree).sentinels_bridged == 1


def test_a_bad_sentinel_is_moved_to_failed_with_an_audit_event(rig: Rig) -> None:
    tree = rig.start(repos=lambda: [(rig.project.id, str(rig.repo))])
    signals_dir = rig.repo / ".corral" / "signals"
    signals_dir.mkdir(parents=True)
    (signals_dir / "coder-finished-t1").write_text("")
    rig.clock.advance(1.0)  # the tick scans too
    wait_until(lambda: stats(tree).sentinels_failed == 1, what="the sentinel to fail")
    reason = (signals_dir / "failed" / "coder-finished-t1.reason").read_text()
    assert reason.startswith('unknown sentinel "coder-finished-t1"')
    (event,) = [a for a in rig.store.list_audit(rig.project.id) if a.kind == "sentinel_failed"]
    assert event.level == "warn" and ".corral/signals/coder-finished-t1" in event.message


def test_the_public_names_are_pinned() -> None:
    import actors.claimer
    import actors.sentinels
    import actors.wake

    assert set(actors.claimer.__all__) == {
        "ClaimerConfig",
        "ClaimerStatistics",
        "GetClaimerStatistics",
        "OutboxReady",
        "SignalClaimer",
        "Wake",
    }
    assert set(actors.wake.__all__) == {
        "NO_LISTENER",
        "RUNTIME_DIR_ENV",
        "WAKE_SOCKET",
        "WakeListener",
        "WakeStatistics",
        "ensure_runtime_dir",
        "poke",
        "poke_status",
        "runtime_dir",
        "wake_socket_path",
    }
    assert set(actors.sentinels.__all__) == {
        "FAILED_DIR",
        "MAX_BODY_BYTES",
        "PROCESSING_DIR",
        "SIGNALS_DIR",
        "BridgeResult",
        "Sentinel",
        "bridge",
        "parse_name",
        "recover_in_flight",
        "scan",
        "signal_dirs",
    }
    for module in (actors.claimer, actors.sentinels, actors.wake):
        assert all(hasattr(module, name) for name in module.__all__)


def test_a_config_that_cannot_work_is_refused() -> None:
    for bad in ({"tick_s": 0}, {"batch": 0}, {"stale_after_s": -1}):
        with pytest.raises(ValueError):
            ClaimerConfig(**bad)
