"""What a supervised actor is handed at birth: its identity, its parent, and the tree's shared services.

`ChildContext` is immutable and belongs to one generation of one child. `ChildHandle` is the only thing the
supervisor and that generation share across threads: the start handshake (so `start_child` returns only after
the child's `started()` ran, as OTP's start_link does), the shutdown flag (so the child reports `shutdown`
rather than `normal`), and the kill hooks a supervisor runs when a child will not stop in time — a thread
cannot be killed, but the processes it owns can.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import pykka

from actors.clock import Clock, SystemClock
from actors.scheduler import Scheduler
from protocols.messages import ExitReason

if TYPE_CHECKING:
    from actors.eventbus import EventHub

__all__ = ["ActorDirectory", "ChildContext", "ChildHandle", "EventBatch", "SupervisionEnv"]

log = logging.getLogger(__name__)


class EventBatch(msgspec.Struct, frozen=True):
    """Several events for the bus in one message, delivered in order."""

    events: tuple[Any, ...]


class ActorDirectory:
    """Stable addresses: actor path → the ref of its current generation, kept up to date by supervisors.

    A restart makes a new ref, so nobody should keep one; they `tell` a path instead. Thread-safe.
    """

    def __init__(self) -> None:
        self._refs: dict[str, pykka.ActorRef[Any]] = {}
        self._lock = threading.Lock()

    def register(self, path: str, ref: pykka.ActorRef[Any]) -> None:
        with self._lock:
            self._refs[path] = ref

    def unregister(self, path: str, ref: pykka.ActorRef[Any] | None = None) -> None:
        """Forget `path`; given `ref`, only while `path` points at it (a newer generation stays)."""
        with self._lock:
            if ref is None or self._refs.get(path) is ref:
                self._refs.pop(path, None)

    def get(self, path: str) -> pykka.ActorRef[Any] | None:
        with self._lock:
            return self._refs.get(path)

    def tell(self, path: str, message: Any) -> bool:
        """Deliver to the current generation at `path`; False when nothing lives there right now."""
        ref = self.get(path)
        if ref is None:
            return False
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    def paths(self) -> list[str]:
        with self._lock:
            return sorted(self._refs)


@dataclass(frozen=True)
class SupervisionEnv:
    """Services shared by the whole tree: time, timers, randomness (jitter), addresses and events."""

    clock: Clock = field(default_factory=SystemClock)
    scheduler: Scheduler | None = None
    rng: random.Random = field(default_factory=random.Random)
    directory: ActorDirectory = field(default_factory=ActorDirectory)
    hub: EventHub | None = None

    @classmethod
    def create(cls, clock: Clock | None = None, *, seed: int | None = None) -> SupervisionEnv:
        """A complete environment: a scheduler on `clock` and an event hub."""
        from actors.eventbus import EventHub

        clock = clock or SystemClock()
        return cls(
            clock=clock,
            scheduler=Scheduler(clock),
            rng=random.Random(seed),
            directory=ActorDirectory(),
            hub=EventHub(),
        )

    def publish(self, event: Any) -> None:
        """Publish a protocol event through the EventBus actor, or straight to the hub while it restarts."""
        if self.hub is None:
            return
        if not self.directory.tell(self.hub.bus_path, event):
            self.hub.fan_out(event)

    def publish_many(self, events: Sequence[Any]) -> None:
        """Publish several events as one message to the bus (a drain of 100 signals is one tell, not 200)."""
        if self.hub is None or not events:
            return
        batch = EventBatch(tuple(events))
        if not self.directory.tell(self.hub.bus_path, batch):
            for event in batch.events:
                self.hub.fan_out(event)

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()


class ChildHandle:
    """Shared by a supervisor and one generation of its child; every method is thread-safe."""

    def __init__(self) -> None:
        self._started = threading.Event()
        self._lock = threading.Lock()
        self._kill_hooks: list[Callable[[], None]] = []
        self.start_error: ExitReason | None = None
        self.shutdown_requested = False
        self.killed = False
        """It did not stop in time: its kill hooks ran and its thread was abandoned. When it stops at last it
        must leave nothing running for a next generation to adopt (that generation may be running already)."""

    def mark_started(self) -> None:
        self._started.set()

    def fail_start(self, reason: ExitReason) -> None:
        self.start_error = reason
        self._started.set()

    def wait_started(self, timeout: float | None) -> bool:
        """True once `started()` finished or failed (see `start_error`); False on timeout."""
        return self._started.wait(timeout)

    def add_kill_hook(self, hook: Callable[[], None]) -> None:
        """Register what kills this child's OS resources (a process group, a session) if it hangs."""
        with self._lock:
            self._kill_hooks.append(hook)

    def brutal_kill(self) -> None:
        with self._lock:
            self.killed = True
            hooks = list(self._kill_hooks)
        for hook in hooks:
            try:
                hook()
            except Exception:
                log.exception("kill hook %r failed", hook)


@dataclass(frozen=True)
class ChildContext:
    """Who a child is (id, generation, path), who supervises it, and the shared services."""

    child_id: str
    generation: int
    parent: pykka.ActorRef[Any] | None
    path: str
    env: SupervisionEnv
    handle: ChildHandle = field(default_factory=ChildHandle)
    on_exit: Callable[[ExitReason], None] | None = None  # the root has no parent: this hears its exit

    @classmethod
    def root(
        cls,
        env: SupervisionEnv,
        child_id: str = "root",
        on_exit: Callable[[ExitReason], None] | None = None,
    ) -> ChildContext:
        return cls(child_id=child_id, generation=1, parent=None, path=child_id, env=env, on_exit=on_exit)
