"""Property: random crash sequences never leave a permanent child dead under a live supervisor, and the
supervisor gives up exactly when the restart intensity is exceeded — never silently, never early."""

from __future__ import annotations

import pykka
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.clock import FakeClock
from actors.supervision import (
    ChildSpec,
    Restart,
    Strategy,
    SupervisionEnv,
    SupervisionTree,
    SupervisorFlags,
    WhichChildren,
)
from protocols.messages import ChildExited, SupervisorGaveUp
from tests.unit.actor_kit import Worker, expect_event

IDS = ("a", "b", "c")
PERIOD = 10.0
EXITS = ("crash", "exit-error", "stop")  # two abnormal exits, one normal

ops = st.lists(
    st.tuples(st.sampled_from(IDS), st.sampled_from(EXITS), st.sampled_from([0.0, 0.0, 11.0])),
    max_size=12,
)


class Model:
    """What OTP says should happen, computed without threads."""

    def __init__(self, restarts: dict[str, Restart], strategy: Strategy, max_restarts: int) -> None:
        self.restart = restarts
        self.strategy = strategy
        self.max_restarts = max_restarts
        self.present = list(IDS)
        self.running = set(IDS)
        self.window: list[float] = []
        self.now = 0.0
        self.gave_up = False

    def exit(self, child: str, how: str) -> None:
        self.running.discard(child)
        kind = self.restart[child]
        abnormal = how != "stop"
        wants = kind is Restart.PERMANENT or (kind is Restart.TRANSIENT and abnormal)  # OTP's table
        if not wants:
            if kind is Restart.TEMPORARY:
                self.present.remove(child)
            return
        self.window = [t for t in self.window if t > self.now - PERIOD] + [self.now]
        if len(self.window) > self.max_restarts:
            self.gave_up = True
            return
        index = self.present.index(child)
        group = {
            Strategy.ONE_FOR_ONE: [child],
            Strategy.ONE_FOR_ALL: list(self.present),
            Strategy.REST_FOR_ONE: self.present[index:],
        }[self.strategy]
        for other in group:
            if other != child and self.restart[other] is Restart.TEMPORARY:
                self.present.remove(other)
                self.running.discard(other)
            else:
                self.running.add(other)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    restarts=st.tuples(*[st.sampled_from(list(Restart))] * 3),
    strategy=st.sampled_from(list(Strategy)),
    max_restarts=st.integers(0, 4),
    sequence=ops,
)
def test_random_crash_sequences_keep_permanent_children_alive_or_escalate(
    restarts: tuple[Restart, ...],
    strategy: Strategy,
    max_restarts: int,
    sequence: list[tuple[str, str, float]],
) -> None:
    clock = FakeClock()
    model = Model(dict(zip(IDS, restarts, strict=True)), strategy, max_restarts)
    specs = [ChildSpec.worker(i, Worker, restart=r) for i, r in zip(IDS, restarts, strict=True)]
    env = SupervisionEnv.create(clock, seed=1)
    sub = env.hub.subscribe(maxsize=100_000)
    tree = SupervisionTree.start(SupervisorFlags(strategy, max_restarts, PERIOD), specs, env=env)
    try:
        for child, how, advance in sequence:
            if model.gave_up:
                break
            clock.advance(advance)
            model.now += advance
            if child not in model.running:
                continue
            ref = tree.env.directory.get(f"root/{child}")
            assert ref is not None, f"{child} should be running"
            gen = {c.id: c.generation for c in tree.ask(WhichChildren())}[child]
            ref.tell(how)
            expect_event(
                sub,
                lambda e, c=child, g=gen: (
                    isinstance(e, ChildExited)
                    and e.child_id == c
                    and e.generation == g
                    and e.reason.kind != "shutdown"
                ),
            )
            model.exit(child, how)
            if model.gave_up:
                expect_event(sub, lambda e: isinstance(e, SupervisorGaveUp))
                assert tree.exited.wait(5), "the supervisor must fail past its intensity"
                break
            children = {c.id: c for c in tree.ask(WhichChildren())}  # processed after the restart
            assert list(children) == model.present
            running = {i for i, c in children.items() if c.state == "running"}
            assert running == model.running
            for i in running:
                ref = tree.env.directory.get(f"root/{i}")
                assert ref is not None and ref.is_alive()
            permanent = {i for i in model.present if model.restart[i] is Restart.PERMANENT}
            assert permanent <= running, "a permanent child is dead under a live supervisor"
            assert not tree.exited.is_set(), "gave up without exceeding the intensity"
    finally:
        tree.stop(timeout=10)
        pykka.ActorRegistry.stop_all(block=True, timeout=10)
