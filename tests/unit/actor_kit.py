"""Test actors and waiting helpers for the supervision tests (condition waits, never bare sleeps)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from actors.eventbus import Subscription
from actors.supervision import SupervisedActor
from actors.supervision.context import ChildContext
from protocols.messages import ExitReason

WAIT_S = 10.0


def wait_until(predicate: Callable[[], Any], timeout: float = WAIT_S, what: str = "condition") -> Any:
    """Poll `predicate` until it is truthy; fail the test with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.002)


def expect_event(sub: Subscription, match: Callable[[Any], bool], timeout: float = WAIT_S) -> Any:
    """Read events until one matches; fail with the events seen if none does in time."""
    seen = []
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        event = sub.get(timeout=remaining)
        if event is None:
            break
        if match(event):
            return event
        seen.append(event)
    raise AssertionError(f"no matching event within {timeout:g} s; saw: {seen}")


class Journal:
    """A thread-safe log that test actors write their lifecycle to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: list[str] = []

    def add(self, entry: str) -> None:
        with self._lock:
            self.entries.append(entry)

    def of(self, kind: str) -> list[str]:
        with self._lock:
            return [e.split(":", 1)[1] for e in self.entries if e.startswith(kind + ":")]


class Worker(SupervisedActor):
    """A child that does what it is told: echo, crash, stop, exit with an error, raise SystemExit."""

    def __init__(
        self,
        ctx: ChildContext,
        journal: Journal | None = None,
        fail_start: bool = False,
        hang_on_stop: threading.Event | None = None,
    ) -> None:
        super().__init__(ctx)
        self.journal = journal
        self.fail_start = fail_start
        self.hang_on_stop = hang_on_stop

    def _log(self, kind: str) -> None:
        if self.journal is not None:
            self.journal.add(f"{kind}:{self.ctx.child_id}")

    def started(self) -> None:
        if self.fail_start:
            raise RuntimeError(f"{self.ctx.child_id} cannot start")
        self._log("start")

    def stopping(self) -> None:
        self._log("stop")
        if self.hang_on_stop is not None:
            self.hang_on_stop.wait(30)

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError(f"{self.ctx.child_id} crashed on purpose")
        if message == "stop":
            self.stop()
            return None
        if message == "exit-error":
            self.exit(ExitReason.error("AgentExited", "exit status 137"))
            return None
        if message == "sys-exit":
            raise SystemExit(3)
        if message == "bad-request":
            raise ValueError("bad request")
        return ("echo", self.ctx.generation, message)
