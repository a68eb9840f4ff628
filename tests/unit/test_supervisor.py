"""The supervisor's OTP semantics, with real pykka actors on real threads and an injected clock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

import pykka
import pytest

from actors.clock import FakeClock
from actors.eventbus import EventBus
from actors.supervision import (
    BackoffSpec,
    ChildSpec,
    Restart,
    RestartChild,
    StartChild,
    Strategy,
    SupervisionEnv,
    SupervisionTree,
    Supervisor,
    SupervisorFlags,
    WhichChildren,
)
from actors.supervision.messages import ChildExit
from protocols.errors import ConflictError, NotFoundError, SupervisionError
from protocols.messages import (
    ChildExited,
    ChildRestarting,
    ChildStarted,
    ChildStartFailed,
    ExitReason,
    SupervisorEscalated,
    SupervisorGaveUp,
)
from tests.unit.actor_kit import Journal, Worker, expect_event, wait_until

pytestmark = pytest.mark.usefixtures("stop_actors")


TreeFactory = Callable[..., SupervisionTree]


@pytest.fixture
def make_tree() -> Iterator[TreeFactory]:
    trees: list[SupervisionTree] = []

    def make(
        children: Sequence[ChildSpec], flags: SupervisorFlags | None = None, clock: FakeClock | None = None
    ) -> SupervisionTree:
        env = SupervisionEnv.create(clock or FakeClock(), seed=7)
        env.hub.subscribe  # noqa: B018 - the hub exists before the tree starts
        tree = SupervisionTree.start(flags or SupervisorFlags(max_restarts=10, period_s=5), children, env=env)
        trees.append(tree)
        return tree

    yield make
    for tree in trees:
        tree.stop(timeout=10)


def alive(tree: SupervisionTree, child: str, path: str = "root") -> pykka.ActorRef | None:
    ref = tree.env.directory.get(f"{path}/{child}")
    return ref if ref is not None and ref.is_alive() else None


def generation(tree: SupervisionTree, child: str, path: str = "root") -> int:
    infos = {c.id: c for c in tree.ask(WhichChildren(), path=path)}
    return infos[child].generation if child in infos else 0


def workers(journal: Journal, *ids: str, **kw: object) -> list[ChildSpec]:
    return [ChildSpec.worker(i, Worker, journal, **kw) for i in ids]  # type: ignore[arg-type]


# -- strategies -------------------------------------------------------------------------------------------


def test_one_for_one_restarts_only_the_crashed_child(make_tree: TreeFactory) -> None:
    journal = Journal()
    tree = make_tree(workers(journal, "a", "b", "c"))
    sub = tree.env.hub.subscribe()
    alive(tree, "b").tell("crash")
    expect_event(sub, lambda e: isinstance(e, ChildStarted) and e.child_id == "b" and e.restarted)
    assert [generation(tree, c) for c in "abc"] == [1, 2, 1]
    assert journal.of("stop") == ["b"]


def test_one_for_all_stops_the_others_in_reverse_order_and_restarts_all_in_start_order(
    make_tree: TreeFactory,
) -> None:
    journal = Journal()
    tree = make_tree(workers(journal, "a", "b", "c"), SupervisorFlags(Strategy.ONE_FOR_ALL, 10, 5))
    sub = tree.env.hub.subscribe()
    alive(tree, "b").tell("crash")
    expect_event(sub, lambda e: isinstance(e, ChildStarted) and e.child_id == "c" and e.generation == 2)
    assert journal.of("stop") == ["b", "c", "a"]  # b crashed; then c and a in reverse start order
    assert journal.of("start") == ["a", "b", "c", "a", "b", "c"]
    assert [generation(tree, c) for c in "abc"] == [2, 2, 2]


def test_rest_for_one_restarts_the_crashed_child_and_those_started_after_it(make_tree: TreeFactory) -> None:
    journal = Journal()
    tree = make_tree(workers(journal, "a", "b", "c", "d"), SupervisorFlags(Strategy.REST_FOR_ONE, 10, 5))
    sub = tree.env.hub.subscribe()
    alive(tree, "b").tell("crash")
    expect_event(sub, lambda e: isinstance(e, ChildStarted) and e.child_id == "d" and e.generation == 2)
    assert journal.of("stop") == ["b", "d", "c"]
    assert journal.of("start")[4:] == ["b", "c", "d"]
    assert [generation(tree, c) for c in "abcd"] == [1, 2, 2, 2]


def test_one_for_all_drops_temporary_siblings_instead_of_restarting_them(make_tree: TreeFactory) -> None:
    journal = Journal()
    children = [
        ChildSpec.worker("a", Worker, journal),
        ChildSpec.worker("t", Worker, journal, restart=Restart.TEMPORARY),
        ChildSpec.worker("c", Worker, journal),
    ]
    tree = make_tree(children, SupervisorFlags(Strategy.ONE_FOR_ALL, 10, 5))
    sub = tree.env.hub.subscribe()
    alive(tree, "a").tell("crash")
    expect_event(sub, lambda e: isinstance(e, ChildStarted) and e.child_id == "c" and e.generation == 2)
    assert [c.id for c in tree.ask(WhichChildren())] == ["a", "c"]


# -- restart types ----------------------------------------------------------------------------------------

EXITS = {
    "crash": ExitReason.error("RuntimeError", ""),
    "exit-error": ExitReason.error("AgentExited", ""),
    "stop": ExitReason.normal(),
}
RESTARTED = {
    (Restart.PERMANENT, "crash"): True,
    (Restart.PERMANENT, "exit-error"): True,
    (Restart.PERMANENT, "stop"): True,
    (Restart.TRANSIENT, "crash"): True,
    (Restart.TRANSIENT, "exit-error"): True,
    (Restart.TRANSIENT, "stop"): False,
    (Restart.TEMPORARY, "crash"): False,
    (Restart.TEMPORARY, "exit-error"): False,
    (Restart.TEMPORARY, "stop"): False,
}


@pytest.mark.parametrize(("restart", "how"), sorted(RESTARTED, key=str))
def test_restart_type_decides_whether_an_exit_is_restarted(
    make_tree: TreeFactory, restart: Restart, how: str
) -> None:
    tree = make_tree([ChildSpec.worker("w", Worker, restart=restart), ChildSpec.worker("x", Worker)])
    sub = tree.env.hub.subscribe()
    alive(tree, "w").tell(how)
    exited = expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "w")
    assert exited.reason.kind == EXITS[how].kind
    assert exited.restarting is RESTARTED[(restart, how)]
    children = {c.id: c for c in tree.ask(WhichChildren())}
    if RESTARTED[(restart, how)]:
        wait_until(lambda: alive(tree, "w"), what="w restarted")
        assert children["w"].generation == 2
    elif restart is Restart.TEMPORARY:
        assert "w" not in children  # a temporary child is forgotten once it ends
    else:
        assert children["w"].state == "stopped"
    assert alive(tree, "x")


def test_exit_reason_carries_exception_type_and_message(make_tree: TreeFactory) -> None:
    tree = make_tree([ChildSpec.worker("w", Worker)])
    sub = tree.env.hub.subscribe()
    alive(tree, "w").tell("crash")
    exited = expect_event(sub, lambda e: isinstance(e, ChildExited))
    assert exited.reason.error_type == "RuntimeError"
    assert exited.reason.message == "w crashed on purpose"
    assert "on_receive" in exited.reason.where


# -- failures in the hooks --------------------------------------------------------------------------------


def test_ask_handler_exception_goes_back_to_the_caller_and_the_actor_lives(make_tree: TreeFactory) -> None:
    tree = make_tree([ChildSpec.worker("w", Worker)])
    ref = alive(tree, "w")
    with pytest.raises(ValueError, match="bad request"):
        ref.ask("bad-request", timeout=5)
    assert ref.ask("ping", timeout=5) == ("echo", 1, "ping")


def test_system_exit_inside_an_actor_crashes_only_that_actor(make_tree: TreeFactory) -> None:
    tree = make_tree([ChildSpec.worker("w", Worker), ChildSpec.worker("x", Worker)])
    sub = tree.env.hub.subscribe()
    x = alive(tree, "x")
    alive(tree, "w").tell("sys-exit")
    exited = expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "w")
    assert exited.reason.error_type == "ActorExit"
    assert "SystemExit" in exited.reason.message
    wait_until(lambda: alive(tree, "w"), what="w restarted")
    assert x.is_alive() and x.ask("still", timeout=5) == ("echo", 1, "still")


def test_a_child_failing_in_started_fails_the_supervisor_start_and_stops_earlier_children() -> None:
    journal = Journal()
    children = [
        ChildSpec.worker("a", Worker, journal),
        ChildSpec.worker("b", Worker, journal, fail_start=True),
        ChildSpec.worker("c", Worker, journal),
    ]
    with pytest.raises(SupervisionError, match="child b failed to start: RuntimeError: b cannot start"):
        SupervisionTree.start(SupervisorFlags(), children, clock=FakeClock())
    assert journal.of("start") == ["a"]
    assert journal.of("stop") == ["b", "a"]  # b released what it had; a was stopped by the supervisor


def test_start_child_reports_a_failing_started_to_the_caller_and_the_supervisor_lives(
    make_tree: TreeFactory,
) -> None:
    tree = make_tree([ChildSpec.worker("a", Worker)])
    sub = tree.env.hub.subscribe()
    with pytest.raises(SupervisionError, match="root/bad failed to start: RuntimeError: bad cannot start"):
        tree.start_child(ChildSpec.worker("bad", Worker, fail_start=True))
    expect_event(sub, lambda e: isinstance(e, ChildStartFailed) and e.child_id == "bad")
    assert [c.id for c in tree.ask(WhichChildren())] == ["a"]
    assert tree.statistics().total_restarts == 0


def test_a_restart_that_keeps_failing_uses_up_the_intensity_and_escalates(make_tree: TreeFactory) -> None:
    flaky = threading.Event()

    class Flaky(Worker):
        def started(self) -> None:
            if flaky.is_set():
                raise RuntimeError("still broken")

    tree = make_tree([ChildSpec.worker("f", Flaky)], SupervisorFlags(max_restarts=3, period_s=5))
    sub = tree.env.hub.subscribe()
    flaky.set()
    alive(tree, "f").tell("crash")
    gave_up = expect_event(sub, lambda e: isinstance(e, SupervisorGaveUp))
    assert gave_up.restarts == 4 and gave_up.last_child == "f"
    assert gave_up.reason.message == "still broken"
    assert tree.exited.wait(5)
    assert tree.failed
    reason = tree.exit_reason
    assert reason is not None and (reason.kind, reason.error_type) == (
        "shutdown",
        "ReachedMaxRestartIntensity",
    )


# -- intensity and escalation -----------------------------------------------------------------------------


def test_intensity_exceeded_stops_children_in_reverse_order_and_escalates_to_the_parent(
    make_tree: TreeFactory,
) -> None:
    journal = Journal()
    inner = ChildSpec.supervisor(
        "inner", SupervisorFlags(max_restarts=2, period_s=5), workers(journal, "a", "b", "c")
    )
    tree = make_tree([ChildSpec.worker("bus", EventBus), inner], SupervisorFlags(max_restarts=5, period_s=5))
    sub = tree.env.hub.subscribe()
    for attempt in range(3):
        wait_until(lambda: alive(tree, "b", "root/inner"), what="b running").tell("crash")
        if attempt < 2:
            expect_event(sub, lambda e: isinstance(e, ChildStarted) and e.child_id == "b" and e.restarted)
    gave_up = expect_event(sub, lambda e: isinstance(e, SupervisorGaveUp))
    assert (gave_up.supervisor, gave_up.restarts, gave_up.last_child) == ("root/inner", 3, "b")
    escalated = expect_event(sub, lambda e: isinstance(e, SupervisorEscalated))
    assert escalated.supervisor == "root/inner" and escalated.parent == "root"
    assert escalated.reason.error_type == "ReachedMaxRestartIntensity"
    exited = expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "inner")
    # OTP: a supervisor past its intensity terminates with reason shutdown, carrying the cause; its permanent
    # spec makes the parent restart it all the same.
    assert exited.reason.kind == "shutdown" and "gave up: 3 restarts" in exited.reason.message
    assert exited.restarting
    restarted = expect_event(sub, lambda e: isinstance(e, ChildStarted) and e.child_id == "inner")
    assert restarted.generation == 2
    stops = journal.of("stop")
    assert stops[-3:] == ["b", "c", "a"]  # b crashed; the others stopped in reverse start order
    assert not tree.exited.is_set()


def test_the_window_slides_so_restarts_spread_over_time_never_give_up(make_tree: TreeFactory) -> None:
    clock = FakeClock()
    tree = make_tree([ChildSpec.worker("w", Worker)], SupervisorFlags(max_restarts=2, period_s=10), clock)
    sub = tree.env.hub.subscribe()
    for n in range(6):
        wait_until(lambda: alive(tree, "w"), what="w running").tell("crash")
        expect_event(sub, lambda e, n=n: isinstance(e, ChildStarted) and e.generation == n + 2)
        clock.advance(6)  # at most two restarts fall within any 10 s
    assert not tree.exited.is_set()
    assert tree.statistics().total_restarts == 6
    assert tree.statistics().restarts_in_window == 1


def test_root_giving_up_ends_the_tree_with_the_reason(make_tree: TreeFactory) -> None:
    tree = make_tree([ChildSpec.worker("w", Worker)], SupervisorFlags(max_restarts=0, period_s=5))
    alive(tree, "w").tell("crash")
    assert tree.exited.wait(5)
    assert tree.failed
    assert "gave up: 1 restarts within 5 s" in tree.exit_reason.message


def test_a_transient_supervisor_past_its_intensity_is_not_restarted_by_its_parent(
    make_tree: TreeFactory,
) -> None:
    journal = Journal()
    inner = ChildSpec.supervisor(
        "inner",
        SupervisorFlags(max_restarts=1, period_s=5),
        workers(journal, "a"),
        restart=Restart.TRANSIENT,
    )
    tree = make_tree([ChildSpec.worker("bus", EventBus), inner], SupervisorFlags(max_restarts=5, period_s=5))
    sub = tree.env.hub.subscribe()
    for _ in range(2):
        wait_until(lambda: alive(tree, "a", "root/inner"), what="a running").tell("crash")
        expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "a")
    exited = expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "inner")
    assert exited.reason.kind == "shutdown" and not exited.restarting
    assert exited.reason.error_type == "ReachedMaxRestartIntensity"
    children = {c.id: c for c in tree.ask(WhichChildren())}
    assert children["inner"].state == "stopped" and children["bus"].state == "running"
    assert tree.statistics().total_restarts == 0  # the root counted nothing: shutdown is not a failure
    assert not tree.exited.is_set()


def test_a_stopped_tree_has_not_failed(make_tree: TreeFactory) -> None:
    tree = make_tree([ChildSpec.worker("w", Worker)])
    tree.stop()
    assert tree.exited.wait(5)
    assert not tree.failed and tree.exit_reason == ExitReason.shutdown()


# -- significant children and auto_shutdown (OTP 24) ------------------------------------------------------


def test_a_permanent_child_cannot_be_significant() -> None:
    with pytest.raises(ValueError, match="permanent child cannot be significant"):
        ChildSpec.worker("w", Worker, significant=True)


def _holder(journal: Journal, auto: str, *specs: ChildSpec) -> ChildSpec:
    return ChildSpec.supervisor(
        "holder",
        SupervisorFlags(max_restarts=3, period_s=60, auto_shutdown=auto),  # type: ignore[arg-type]
        specs,
        restart=Restart.TRANSIENT,
    )


def test_any_significant_shuts_the_supervisor_down_when_its_significant_child_ends_normally(
    make_tree: TreeFactory,
) -> None:
    journal = Journal()
    holder = _holder(
        journal,
        "any_significant",
        ChildSpec.worker("helper", Worker, journal),
        ChildSpec.worker("main", Worker, journal, restart=Restart.TRANSIENT, significant=True),
    )
    tree = make_tree([holder])
    sub = tree.env.hub.subscribe()
    alive(tree, "main", "root/holder").tell("stop")
    exited = expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "holder")
    assert exited.reason.kind == "shutdown" and exited.reason.error_type == "AutoShutdown"
    assert "significant child main ended: normal" in exited.reason.message
    assert not exited.restarting  # transient, and shutdown is not a failure
    assert journal.of("stop")[-2:] == ["main", "helper"]


def test_a_significant_transient_child_that_crashes_is_restarted_not_shut_down(
    make_tree: TreeFactory,
) -> None:
    journal = Journal()
    holder = _holder(
        journal,
        "any_significant",
        ChildSpec.worker("main", Worker, journal, restart=Restart.TRANSIENT, significant=True),
    )
    tree = make_tree([holder])
    sub = tree.env.hub.subscribe()
    alive(tree, "main", "root/holder").tell("crash")
    expect_event(sub, lambda e: isinstance(e, ChildStarted) and e.child_id == "main" and e.restarted)
    assert alive(tree, "holder")


def test_terminating_a_significant_child_does_not_shut_the_supervisor_down(make_tree: TreeFactory) -> None:
    journal = Journal()
    holder = _holder(
        journal,
        "any_significant",
        ChildSpec.worker("main", Worker, journal, restart=Restart.TRANSIENT, significant=True),
    )
    tree = make_tree([holder])
    tree.terminate_child("main", path="root/holder")
    assert alive(tree, "holder")
    assert tree.ask(WhichChildren(), path="root/holder") == ()


def test_all_significant_waits_for_the_last_significant_child(make_tree: TreeFactory) -> None:
    journal = Journal()
    holder = _holder(
        journal,
        "all_significant",
        ChildSpec.worker("one", Worker, journal, restart=Restart.TEMPORARY, significant=True),
        ChildSpec.worker("two", Worker, journal, restart=Restart.TEMPORARY, significant=True),
    )
    tree = make_tree([holder])
    sub = tree.env.hub.subscribe()
    alive(tree, "one", "root/holder").tell("crash")  # temporary: any end counts
    expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "one")
    assert alive(tree, "holder")
    alive(tree, "two", "root/holder").tell("stop")
    exited = expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "holder")
    assert exited.reason.error_type == "AutoShutdown" and "two ended" in exited.reason.message


def test_never_keeps_the_supervisor_when_a_significant_child_ends(make_tree: TreeFactory) -> None:
    journal = Journal()
    holder = _holder(
        journal,
        "never",
        ChildSpec.worker("main", Worker, journal, restart=Restart.TRANSIENT, significant=True),
    )
    tree = make_tree([holder])
    sub = tree.env.hub.subscribe()
    alive(tree, "main", "root/holder").tell("stop")
    expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "main")
    assert alive(tree, "holder")


# -- backoff ----------------------------------------------------------------------------------------------


def test_backoff_waits_on_the_injected_clock_and_doubles_up_to_the_cap(make_tree: TreeFactory) -> None:
    clock = FakeClock()
    backoff = BackoffSpec(min_s=1, max_s=4, jitter=0, reset_after_s=100)
    tree = make_tree(
        [ChildSpec.worker("w", Worker, backoff=backoff)], SupervisorFlags(max_restarts=50, period_s=1), clock
    )
    sub = tree.env.hub.subscribe()
    delays = []
    for n in range(4):
        wait_until(lambda: alive(tree, "w"), what="w running").tell("crash")
        restarting = expect_event(sub, lambda e: isinstance(e, ChildRestarting))
        delays.append(restarting.delay_s)
        info = tree.ask(WhichChildren())[0]
        assert info.state == "restarting" and alive(tree, "w") is None
        assert info.restart_due_in_s == pytest.approx(restarting.delay_s)
        clock.advance(restarting.delay_s - 0.01)
        assert tree.ask(WhichChildren())[0].state == "restarting"  # not a moment early
        clock.advance(0.01)
        expect_event(sub, lambda e, n=n: isinstance(e, ChildStarted) and e.generation == n + 2)
    assert delays == [1, 2, 4, 4]


def test_backoff_resets_once_the_child_stayed_up_for_the_stable_period(make_tree: TreeFactory) -> None:
    clock = FakeClock()
    backoff = BackoffSpec(min_s=1, max_s=60, jitter=0, reset_after_s=30)
    tree = make_tree(
        [ChildSpec.worker("w", Worker, backoff=backoff)], SupervisorFlags(max_restarts=50, period_s=1), clock
    )
    sub = tree.env.hub.subscribe()

    def crash_and_restart() -> float:
        wait_until(lambda: alive(tree, "w"), what="w running").tell("crash")
        delay = expect_event(sub, lambda e: isinstance(e, ChildRestarting)).delay_s
        clock.advance(delay)
        expect_event(sub, lambda e: isinstance(e, ChildStarted))
        return delay

    assert [crash_and_restart() for _ in range(3)] == [1, 2, 4]
    clock.advance(30)
    assert crash_and_restart() == 1


def test_a_crash_during_backoff_of_a_sibling_is_handled_at_once(make_tree: TreeFactory) -> None:
    clock = FakeClock()
    backoff = BackoffSpec(min_s=30, max_s=60, jitter=0)
    tree = make_tree(
        [ChildSpec.worker("slow", Worker, backoff=backoff), ChildSpec.worker("fast", Worker)], clock=clock
    )
    sub = tree.env.hub.subscribe()
    alive(tree, "slow").tell("crash")
    expect_event(sub, lambda e: isinstance(e, ChildRestarting) and e.child_id == "slow")
    alive(tree, "fast").tell("crash")
    expect_event(sub, lambda e: isinstance(e, ChildStarted) and e.child_id == "fast" and e.restarted)
    assert alive(tree, "slow") is None


# -- shutdown ---------------------------------------------------------------------------------------------


def test_orderly_shutdown_stops_children_in_reverse_start_order(make_tree: TreeFactory) -> None:
    journal = Journal()
    tree = make_tree(workers(journal, "a", "b", "c"))
    sub = tree.env.hub.subscribe()
    tree.stop()
    assert journal.of("stop") == ["c", "b", "a"]
    reasons = [e.reason.kind for e in sub.drain() if isinstance(e, ChildExited)]
    assert reasons == ["shutdown", "shutdown", "shutdown"]
    assert tree.exit_reason == ExitReason.shutdown()


def test_a_child_that_will_not_stop_in_time_has_its_kill_hooks_run_and_shutdown_goes_on(
    make_tree: TreeFactory,
) -> None:
    journal = Journal()
    release = threading.Event()
    killed = threading.Event()

    class Stubborn(Worker):
        def started(self) -> None:
            super().started()
            self.ctx.handle.add_kill_hook(lambda: (killed.set(), release.set()))

    children = [
        ChildSpec.worker("a", Worker, journal),
        ChildSpec.worker("s", Stubborn, journal, hang_on_stop=release, shutdown_s=0.2),
        ChildSpec.worker("c", Worker, journal),
    ]
    tree = make_tree(children)
    sub = tree.env.hub.subscribe()
    tree.stop()
    assert killed.is_set()
    assert journal.of("stop") == ["c", "s", "a"]
    exits = {e.child_id: e.reason for e in sub.drain() if isinstance(e, ChildExited)}
    assert exits["s"].error_type == "ShutdownTimeout"
    assert exits["a"].kind == exits["c"].kind == "shutdown"


# -- dynamic children and stale reports -------------------------------------------------------------------


def test_dynamic_children_start_list_and_terminate(make_tree: TreeFactory) -> None:
    journal = Journal()
    tree = make_tree(workers(journal, "a"))
    info = tree.start_child(ChildSpec.worker("inst-1", Worker, journal, restart=Restart.TRANSIENT))
    assert (info.id, info.state, info.restart, info.generation) == ("inst-1", "running", "transient", 1)
    tree.start_child(ChildSpec.worker("inst-2", Worker, journal))
    assert [c.id for c in tree.ask(WhichChildren())] == ["a", "inst-1", "inst-2"]
    with pytest.raises(ConflictError, match="'inst-1' already exists"):
        tree.start_child(ChildSpec.worker("inst-1", Worker))
    tree.terminate_child("inst-1")
    assert [c.id for c in tree.ask(WhichChildren())] == ["a", "inst-2"]
    assert journal.of("stop") == ["inst-1"]
    with pytest.raises(NotFoundError, match="no child 'nope' under root"):
        tree.terminate_child("nope")


def test_start_child_by_tell_replies_to_the_requester(make_tree: TreeFactory) -> None:
    tree = make_tree([])
    replies: list[object] = []
    got = threading.Event()

    class Requester(pykka.ThreadingActor):
        def on_receive(self, message: object) -> None:
            replies.append(message)
            got.set()

    requester = Requester.start()
    tree.ref.tell(StartChild(ChildSpec.worker("w", Worker), reply_to=requester))
    assert got.wait(5)
    assert replies[0].child_id == "w" and replies[0].ok
    requester.stop()


def test_a_stale_exit_report_from_an_old_generation_is_ignored(make_tree: TreeFactory) -> None:
    tree = make_tree([ChildSpec.worker("w", Worker)])
    sub = tree.env.hub.subscribe()
    alive(tree, "w").tell("crash")
    expect_event(sub, lambda e: isinstance(e, ChildStarted) and e.generation == 2)
    tree.ref.tell(ChildExit("w", 1, ExitReason.error("RuntimeError", "late report")))
    assert tree.ask(WhichChildren())[0].generation == 2
    assert tree.statistics().total_restarts == 1


def test_statistics_report_children_and_restarts_in_the_window(make_tree: TreeFactory) -> None:
    tree = make_tree(
        [ChildSpec.worker("a", Worker), ChildSpec.worker("b", Worker)],
        SupervisorFlags(Strategy.ONE_FOR_ONE, 3, 5),
    )
    sub = tree.env.hub.subscribe()
    alive(tree, "a").tell("crash")
    expect_event(sub, lambda e: isinstance(e, ChildStarted) and e.restarted)
    stats = tree.statistics()
    assert (stats.path, stats.strategy, stats.max_restarts) == ("root", "one_for_one", 3)
    assert (stats.restarts_in_window, stats.total_restarts, stats.running) == (1, 1, 2)
    assert stats.children[0].restarts == 1


def test_subclasses_cannot_override_the_pykka_hooks() -> None:
    with pytest.raises(TypeError, match="overrides on_stop"):

        class Bad(Worker):
            def on_stop(self) -> None:
                pass


# -- every strategy × restart type of the crashing child --------------------------------------------------

GENERATIONS_AFTER_B_CRASHES = {
    Strategy.ONE_FOR_ONE: {"a": 1, "b": 2, "c": 1},
    Strategy.ONE_FOR_ALL: {"a": 2, "b": 2, "c": 2},
    Strategy.REST_FOR_ONE: {"a": 1, "b": 2, "c": 2},
}


@pytest.mark.parametrize("restart", list(Restart))
@pytest.mark.parametrize("strategy", list(Strategy))
def test_strategy_and_restart_type_of_the_crashed_child(
    make_tree: TreeFactory, strategy: Strategy, restart: Restart
) -> None:
    children = [
        ChildSpec.worker("a", Worker),
        ChildSpec.worker("b", Worker, restart=restart),
        ChildSpec.worker("c", Worker),
    ]
    tree = make_tree(children, SupervisorFlags(strategy, 10, 5))
    sub = tree.env.hub.subscribe()
    alive(tree, "b").tell("crash")
    expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "b" and e.reason.is_error)
    generations = {c.id: c.generation for c in tree.ask(WhichChildren())}
    if restart is Restart.TEMPORARY:
        assert generations == {"a": 1, "c": 1}  # never restarted, forgotten, and nobody else touched
    else:
        assert generations == GENERATIONS_AFTER_B_CRASHES[strategy]
    for child in generations:
        assert alive(tree, child)


# -- a supervisor that records giving up --------------------------------------------------------------------


def test_the_gave_up_hook_runs_before_the_supervisor_shuts_down_and_a_transient_one_stays_down(
    make_tree: TreeFactory,
) -> None:
    recorded: list[str] = []

    class Keeper(Supervisor):
        def child_started(self, child_id: str, generation: int, restarted: bool) -> None:
            recorded.append(f"started {child_id} {generation}")

        def child_exited(self, child_id: str, generation: int, reason: ExitReason, restarting: bool) -> None:
            recorded.append(f"exited {child_id} {generation} restarting={restarting}")

        def gave_up(self, error: SupervisionError, child_id: str, reason: ExitReason) -> None:
            recorded.append(f"{child_id}: {reason}")

    keeper = ChildSpec.supervisor(
        "keeper",
        SupervisorFlags(max_restarts=1, period_s=60),
        [ChildSpec.worker("rt", Worker)],
        supervisor_class=Keeper,
        restart=Restart.TRANSIENT,
    )
    tree = make_tree([keeper])
    sub = tree.env.hub.subscribe()
    for _ in range(2):
        wait_until(lambda: alive(tree, "rt", "root/keeper"), what="rt running").tell("crash")
        expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "rt")
    expect_event(sub, lambda e: isinstance(e, SupervisorGaveUp))
    exited = expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "keeper")
    assert exited.reason.kind == "shutdown" and not exited.restarting
    assert recorded == [
        "started rt 1",
        "exited rt 1 restarting=True",
        "started rt 2",
        "exited rt 2 restarting=True",
        "rt: RuntimeError: rt crashed on purpose",
    ]
    assert tree.ask(WhichChildren())[0].state == "stopped"
    info = tree.ask(RestartChild("keeper"))  # OTP's restart_child: the kept spec, a fresh generation
    assert (info.state, info.generation) == ("running", 2)
    assert alive(tree, "rt", "root/keeper")
    with pytest.raises(ConflictError, match="is running"):
        tree.ask(RestartChild("keeper"))


def test_an_id_is_free_again_only_once_its_abandoned_generation_has_stopped(make_tree: TreeFactory) -> None:
    """OTP's name semantics: a child that did not stop in time (its thread abandoned) still holds its id, so
    a new child with that id never runs beside it; once it has stopped at last, the id is free."""
    journal = Journal()
    release = threading.Event()
    tree = make_tree([])
    hung = ChildSpec.worker(
        "w", Worker, journal, hang_on_stop=release, shutdown_s=0.05, restart=Restart.TEMPORARY
    )
    tree.start_child(hung)
    sub = tree.env.hub.subscribe()
    tree.terminate_child("w")  # times out: kill hooks run, the thread is abandoned
    expect_event(sub, lambda e: isinstance(e, ChildExited) and e.reason.error_type == "ShutdownTimeout")
    with pytest.raises(ConflictError, match="still stopping"):
        tree.start_child(ChildSpec.worker("w", Worker, journal))
    release.set()  # it stops at last and reports its exit
    wait_until(lambda: _starts(tree, ChildSpec.worker("w", Worker, journal)), what="the id free again")
    assert journal.of("start") == ["w", "w"]


def _starts(tree: SupervisionTree, spec: ChildSpec) -> bool:
    try:
        tree.start_child(spec)
    except ConflictError:
        return False
    return True


def test_a_late_exit_of_a_removed_child_never_ends_a_new_child_with_its_id(make_tree: TreeFactory) -> None:
    """A task's next round starts an agent under the title of the one it just stopped: the stopped one's
    exit report, arriving late, must not be taken for the new one's."""
    tree = make_tree([])
    tree.start_child(ChildSpec.worker("w", Worker, restart=Restart.TRANSIENT))
    first = tree.ask(WhichChildren())[0].generation
    root = tree.env.directory.get("root")
    tree.terminate_child("w")
    tree.start_child(ChildSpec.worker("w", Worker, restart=Restart.TRANSIENT))
    second = tree.ask(WhichChildren())[0].generation
    assert second > first
    root.tell(ChildExit("w", first, ExitReason.normal()))  # the removed generation's report, late
    assert tree.ask(WhichChildren())[0].state == "running"
    assert alive(tree, "w")
