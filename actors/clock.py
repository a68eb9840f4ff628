"""Injected time: every scheduling decision reads a `Clock`, so tests move time instead of sleeping.

`monotonic()` drives restart windows, backoff and leases; `now()` gives the UTC wall-clock stamps that are
persisted. `FakeClock.advance()` wakes whoever waits on the clock (the scheduler), so a test can jump past a
30 s backoff in microseconds. freezegun is for wall-clock stamps only: it freezes `time.monotonic`, which
hangs pykka's timeouts (see docs/architecture.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Generic, Protocol, TypeVar

_T = TypeVar("_T")

__all__ = ["Clock", "FakeClock", "Recent", "SystemClock", "utc_stamp"]


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def now(self) -> datetime: ...

    def on_advance(self, callback: Callable[[], None]) -> None:
        """Register a callback run whenever time jumps (a no-op for real time, which never jumps)."""


class SystemClock:
    """Real time."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def on_advance(self, callback: Callable[[], None]) -> None:
        return None


class FakeClock:
    """Time that moves only when a test says so. Thread-safe."""

    def __init__(self, start: float = 1000.0, wall: datetime | None = None) -> None:
        self._t = start
        self._start = start
        self._wall = wall or datetime(2026, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._t

    def now(self) -> datetime:
        with self._lock:
            return self._wall + timedelta(seconds=self._t - self._start)

    def on_advance(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._t += seconds
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()


def utc_stamp(moment: datetime) -> str:
    """A fixed-width, lexically sortable UTC stamp: 2026-11-21T15:01:59.123456Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Recent(Generic[_T]):
    """A value computed at most once per `max_age_s` and shared by every thread that asks meanwhile: many
    callers at once (50 agents' metrics, 50 agents brought back) pay for one scan. Thread-safe; the value may
    be up to `max_age_s` old, so use it only where that is fine."""

    def __init__(self, compute: Callable[[], _T], max_age_s: float) -> None:
        self._compute = compute
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._taken = -1e18
        self._value: _T | None = None

    def get(self) -> _T:
        with self._lock:
            now = time.monotonic()
            if self._value is None or now - self._taken > self.max_age_s:
                self._value, self._taken = self._compute(), now
            return self._value
