"""The event bus: fan-out to every subscriber, bounded queues, a Lagged marker instead of blocking."""

from __future__ import annotations

import threading

import pytest

from actors.clock import FakeClock
from actors.eventbus import EventBus
from actors.supervision import ChildSpec, SupervisionEnv, SupervisionTree, SupervisorFlags
from protocols.messages import ChildStarted, Lagged, TaskCreated
from tests.unit.actor_kit import expect_event, wait_until

pytestmark = pytest.mark.usefixtures("stop_actors")


def task_event(n: int) -> TaskCreated:
    return TaskCreated(project="p", task=f"t{n}", status="ready")


@pytest.fixture
def tree():
    env = SupervisionEnv.create(FakeClock())
    tree = SupervisionTree.start(
        SupervisorFlags(max_restarts=5), [ChildSpec.worker("bus", EventBus)], env=env
    )
    with env.hub.subscribe() as probe:  # let the start-up events pass before a test subscribes
        env.publish(task_event(-1))
        expect_event(probe, lambda e: isinstance(e, TaskCreated))
    yield tree
    tree.stop()


def test_every_subscriber_gets_every_event_in_order(tree: SupervisionTree) -> None:
    subs = [tree.env.hub.subscribe() for _ in range(3)]
    for n in range(50):
        tree.env.publish(task_event(n))
    for sub in subs:
        got = [sub.get(timeout=5) for _ in range(50)]
        assert [e.task for e in got] == [f"t{n}" for n in range(50)]


def test_a_slow_subscriber_gets_a_lagged_marker_and_never_blocks_the_others(tree: SupervisionTree) -> None:
    slow = tree.env.hub.subscribe(maxsize=10)
    fast = tree.env.hub.subscribe(maxsize=1000)
    for n in range(100):
        tree.env.publish(task_event(n))
    assert [fast.get(timeout=5).task for _ in range(100)][-1] == "t99"
    wait_until(lambda: slow.dropped == 90, what="90 events dropped for the slow subscriber")
    first = slow.get(timeout=1)
    assert isinstance(first, Lagged) and first.missed == 90
    assert [e.task for e in slow.drain()] == [f"t{n}" for n in range(90, 100)]


def test_a_subscription_can_filter_by_event_type(tree: SupervisionTree) -> None:
    sub = tree.env.hub.subscribe(kinds=(ChildStarted,))
    tree.env.publish(task_event(1))
    tree.env.publish(ChildStarted(supervisor="root", child_id="x", generation=1))
    assert isinstance(sub.get(timeout=5), ChildStarted)
    assert sub.get(timeout=0.05) is None


def test_on_ready_fires_when_a_queue_becomes_non_empty(tree: SupervisionTree) -> None:
    ready = threading.Event()
    sub = tree.env.hub.subscribe(on_ready=ready.set)
    tree.env.publish(task_event(1))
    assert ready.wait(5)
    assert sub.get(timeout=1).task == "t1"


def test_subscriptions_survive_a_restart_of_the_bus_actor(tree: SupervisionTree) -> None:
    sub = tree.env.hub.subscribe()
    bus = tree.env.directory.get("root/bus")
    bus.tell("not an event")  # logged and ignored: unexpected messages do not crash the bus
    bus.stop()
    expect_event(sub, lambda e: isinstance(e, ChildStarted) and e.child_id == "bus" and e.generation == 2)
    tree.env.publish(task_event(7))
    assert expect_event(sub, lambda e: isinstance(e, TaskCreated)).task == "t7"


def test_closed_subscription_stops_receiving_and_unblocks_readers(tree: SupervisionTree) -> None:
    sub = tree.env.hub.subscribe()
    results = []
    reader = threading.Thread(target=lambda: results.append(sub.get()))
    reader.start()
    sub.close()
    reader.join(5)
    assert results == [None]
    tree.env.publish(task_event(1))
    assert tree.env.hub.subscribers == 0


def test_publishing_while_the_bus_is_down_fans_out_directly() -> None:
    env = SupervisionEnv.create(FakeClock())
    sub = env.hub.subscribe()
    env.publish(task_event(3))  # no bus actor started at all
    assert sub.get(timeout=1).task == "t3"
    env.close()


def test_a_batch_of_events_arrives_in_order_as_separate_events(tree: SupervisionTree) -> None:
    sub = tree.env.hub.subscribe()
    tree.env.publish_many([task_event(n) for n in range(5)])
    assert [sub.get(timeout=5).task for _ in range(5)] == [f"t{n}" for n in range(5)]
