"""One timer thread for the whole tree: restarts after backoff, leases, ticks.

pykka has no timers and an actor must never sleep (it would stop handling messages, including its own stop),
so an actor asks the scheduler to run a callback later — almost always `ref.tell(SomeMessage)` — and goes on.
Time is read from the injected `Clock`; a `FakeClock.advance()` wakes the thread, so tests jump over a 30 s
backoff without waiting. Callbacks run on the scheduler thread and must be quick (a `tell` is).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable

from actors.clock import Clock

__all__ = ["Scheduler", "TimerHandle"]

log = logging.getLogger(__name__)


class TimerHandle:
    """A scheduled callback; `cancel()` is safe from any thread, before or after it ran."""

    __slots__ = ("_callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self._callback: Callable[[], None] | None = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        self._callback = None


class Scheduler:
    """Runs callbacks at monotonic times of the injected clock, on one daemon thread."""

    def __init__(self, clock: Clock, name: str = "corral-scheduler") -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        clock.on_advance(self._wake)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> TimerHandle:
        return self.call_at(self._clock.monotonic() + max(0.0, delay_s), callback)

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(when, callback)
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._seq), handle))
            if self._heap[0][2] is handle:
                self._cond.notify()
        return handle

    def pending(self) -> int:
        """How many callbacks are waiting (cancelled ones included until their time comes)."""
        with self._cond:
            return len(self._heap)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def _take_due(self) -> list[TimerHandle]:
        now = self._clock.monotonic()
        due = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        return due

    def _run(self) -> None:
        while True:
            with self._cond:
                due = self._take_due()
                while not due and not self._stopped:
                    timeout = self._heap[0][0] - self._clock.monotonic() if self._heap else None
                    # A FakeClock never reaches `when` by waiting: its advance() notifies us instead, and a
                    # real-time wakeup merely re-checks. With the system clock this is an exact sleep.
                    self._cond.wait(timeout=None if timeout is None else max(timeout, 0.0))
                    due = self._take_due()
                if self._stopped:
                    return
            for handle in due:
                callback = handle._callback
                if callback is None:
                    continue
                try:
                    callback()
                except Exception:
                    log.exception("scheduled callback %r failed", callback)
