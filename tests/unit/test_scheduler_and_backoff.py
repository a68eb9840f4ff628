"""The timer thread on an injected clock, and the backoff arithmetic."""

from __future__ import annotations

import random
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.clock import FakeClock, utc_stamp
from actors.scheduler import Scheduler
from actors.supervision import BackoffSpec, ChildSpec, SupervisorFlags


def test_a_callback_runs_only_once_the_fake_clock_reaches_its_time() -> None:
    clock = FakeClock()
    scheduler = Scheduler(clock)
    fired = threading.Event()
    scheduler.call_later(30, fired.set)
    clock.advance(29.9)
    assert not fired.wait(0.05)
    clock.advance(0.1)
    assert fired.wait(5)
    scheduler.stop()


def test_callbacks_run_in_time_order_and_cancelled_ones_never_run() -> None:
    clock = FakeClock()
    scheduler = Scheduler(clock)
    order: list[int] = []
    done = threading.Event()
    scheduler.call_later(3, lambda: (order.append(3), done.set()))
    scheduler.call_later(1, lambda: order.append(1))
    cancelled = scheduler.call_later(2, lambda: order.append(2))
    cancelled.cancel()
    clock.advance(5)
    assert done.wait(5)
    assert order == [1, 3]
    scheduler.stop()


def test_a_failing_callback_does_not_stop_the_scheduler(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    scheduler = Scheduler(clock)
    fired = threading.Event()
    scheduler.call_later(1, lambda: 1 / 0)
    scheduler.call_later(2, fired.set)
    clock.advance(2)
    assert fired.wait(5)
    assert "scheduled callback" in caplog.text
    scheduler.stop()


def test_fake_clock_cannot_go_backwards_and_stamps_sort_as_text() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    first = utc_stamp(clock.now())
    clock.advance(0.5)
    assert utc_stamp(clock.now()) > first
    assert first == "2026-01-01T00:00:00.000000Z"


def test_backoff_doubles_from_min_to_max_without_jitter() -> None:
    spec = BackoffSpec(min_s=0.5, max_s=10, jitter=0)
    rng = random.Random(1)
    assert [spec.delay(n, rng) for n in range(7)] == [0.5, 1, 2, 4, 8, 10, 10]
    assert spec.delay(10_000, rng) == 10  # no overflow for absurd counts


def test_zero_min_backoff_means_immediate_restart() -> None:
    assert BackoffSpec(min_s=0, max_s=0).delay(5, random.Random()) == 0


@given(n=st.integers(0, 100), jitter=st.floats(0, 1), seed=st.integers())
def test_jitter_only_adds_time_and_at_most_the_given_fraction(n: int, jitter: float, seed: int) -> None:
    spec = BackoffSpec(min_s=0.1, max_s=30, jitter=jitter)
    base = min(30, 0.1 * 2 ** min(n, 30))
    delay = spec.delay(n, random.Random(seed))
    assert base <= delay <= base * (1 + jitter) + 1e-9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_s": -1}, "min_s must be >= 0"),
        ({"min_s": 5, "max_s": 1}, "max_s .* must be >= min_s"),
        ({"jitter": 1.5}, "jitter must be within 0..1"),
        ({"reset_after_s": -2}, "reset_after_s must be >= 0"),
    ],
)
def test_invalid_backoff_is_refused_with_the_setting_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BackoffSpec(**kwargs)


def test_invalid_flags_and_child_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="max_restarts must be >= 0"):
        SupervisorFlags(max_restarts=-1)
    with pytest.raises(ValueError, match="period_s must be > 0"):
        SupervisorFlags(period_s=0)
    with pytest.raises(ValueError, match="contain no '/'"):
        ChildSpec(id="a/b", start=lambda ctx: None)  # type: ignore[arg-type,return-value]
