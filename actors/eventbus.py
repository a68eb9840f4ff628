"""Pub/sub of protocol events, where a slow subscriber never blocks anyone.

Each subscriber has its own bounded queue. When it is full, the oldest event is dropped and counted; the next
read returns a `Lagged(missed=N)` marker first, so the subscriber knows it missed N events and can re-read
the state it needs (as tokio's broadcast channel does). Publishing never waits on a subscriber.

The subscriber list lives in an `EventHub` that outlives the `EventBus` actor: when the bus is restarted, its
new generation serves the same subscriptions, and while it is down `SupervisionEnv.publish` fans out in the
publisher's thread, so no event is lost to a restart.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from actors.supervision.base import SupervisedActor
from actors.supervision.context import ChildContext, EventBatch
from protocols.messages import Lagged

__all__ = ["EventBus", "EventHub", "Subscription"]

DEFAULT_QUEUE = 1024


class Subscription:
    """One subscriber's bounded queue. `get()` from any thread; `on_ready` bridges to asyncio/selectors."""

    def __init__(
        self,
        hub: EventHub,
        maxsize: int = DEFAULT_QUEUE,
        kinds: tuple[type, ...] = (),
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        if maxsize < 1:
            raise ValueError("a subscription queue holds at least one event")
        self._hub = hub
        self._queue: collections.deque[Any] = collections.deque()
        self._maxsize = maxsize
        self._kinds = kinds
        self._on_ready = on_ready
        self._missed = 0
        self._closed = False
        self._cond = threading.Condition()
        self.delivered = 0
        self.dropped = 0

    def wants(self, event: Any) -> bool:
        return not self._kinds or isinstance(event, self._kinds)

    def put(self, event: Any) -> None:
        """Enqueue without ever blocking: past `maxsize` the oldest event is dropped and counted."""
        with self._cond:
            if self._closed:
                return
            was_empty = not self._queue and not self._missed
            if len(self._queue) >= self._maxsize:
                self._queue.popleft()
                self._missed += 1
                self.dropped += 1
            self._queue.append(event)
            self._cond.notify()
        if was_empty and self._on_ready is not None:
            self._on_ready()

    def get(self, timeout: float | None = None) -> Any | None:
        """The next event (or a Lagged marker); None on timeout or once closed and drained."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._queue and not self._missed:
                if self._closed:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if self._missed:
                missed, self._missed = self._missed, 0
                return Lagged(missed=missed, ts=time.time())
            self.delivered += 1
            return self._queue.popleft()

    def drain(self) -> list[Any]:
        """Everything queued now, without waiting (a Lagged marker first if events were dropped)."""
        out = []
        while (item := self.get(timeout=0)) is not None:
            out.append(item)
        return out

    def __iter__(self) -> Iterator[Any]:
        while (item := self.get()) is not None:
            yield item

    def close(self) -> None:
        self._hub.unsubscribe(self)
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventHub:
    """The subscriber registry shared by every generation of the EventBus actor. Thread-safe."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self.bus_path = ""
        self.published = 0

    def subscribe(
        self,
        maxsize: int = DEFAULT_QUEUE,
        kinds: tuple[type, ...] = (),
        on_ready: Callable[[], None] | None = None,
    ) -> Subscription:
        sub = Subscription(self, maxsize=maxsize, kinds=kinds, on_ready=on_ready)
        with self._lock:
            self._subs = [*self._subs, sub]
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs = [s for s in self._subs if s is not sub]

    def fan_out(self, event: Any) -> None:
        self.published += 1
        for sub in self._subs:  # copy-on-write list: no lock needed to iterate
            if sub.wants(event):
                sub.put(event)

    @property
    def subscribers(self) -> int:
        return len(self._subs)


class EventBus(SupervisedActor):
    """The actor that fans events out, so publishers (supervisors, tasks) never do it on their thread."""

    def __init__(self, ctx: ChildContext) -> None:
        super().__init__(ctx)
        hub = ctx.env.hub
        if hub is None:
            raise ValueError("EventBus needs an environment with an EventHub (SupervisionEnv.create())")
        self.hub = hub

    def started(self) -> None:
        self.hub.bus_path = self.ctx.path

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, EventBatch):
            for event in message.events:
                self.hub.fan_out(event)
            return None
        if isinstance(message, msgspec.Struct):
            self.hub.fan_out(message)
            return None
        return super().on_receive(message)
