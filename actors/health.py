"""`WriteHealth`: which of the daemon's writers cannot write, and what they dropped. Thread-safe.

    health = WriteHealth()
    if health.failing("audit", exc):        # True only when this starts a fault: log it once, not per row
        log.warning("audit: %s; dropping rows until the database can be written", exc)
    health.dropped_audit_rows(3)
    if health.recovered("audit"):           # True only when a fault ends
        log.info("audit: writing again")
    health.view()                           # protocols.health.WriteFaults, for `corral daemon status`

One per daemon, shared by the audit recorder, the signal claimer and the daemon's log handler. A writer that
hits a persistent fault (a full disk, a database locked for minutes) reports it here and retries on a timer,
instead of raising out of its handler: a leaf that crash-loops on a fault that will not go away would take
the root supervisor past its restart intensity and the whole daemon down with it.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from actors.clock import utc_stamp
from protocols.health import WriteFaults

__all__ = ["WriteHealth"]


class WriteHealth:
    """The current write faults by writer, and counts of what was dropped. Every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, tuple[str, str]] = {}  # writer → (problem, since)
        self._audit_rows = 0
        self._log_lines = 0

    def failing(self, writer: str, problem: object) -> bool:
        """`writer` could not write because of `problem`; True if it was writing fine until now."""
        with self._lock:
            started = writer not in self._faults
            since = utc_stamp(datetime.now(UTC)) if started else self._faults[writer][1]
            self._faults[writer] = (str(problem), since)
            return started

    def recovered(self, writer: str) -> bool:
        """`writer` wrote again; True if it had been failing."""
        with self._lock:
            return self._faults.pop(writer, None) is not None

    def is_failing(self, writer: str) -> bool:
        with self._lock:
            return writer in self._faults

    def dropped_audit_rows(self, count: int) -> None:
        with self._lock:
            self._audit_rows += count

    def dropped_log_lines(self, count: int) -> None:
        with self._lock:
            self._log_lines += count

    def view(self) -> WriteFaults:
        with self._lock:
            faults = sorted(self._faults.items())
            return WriteFaults(
                problems=tuple(f"{writer}: {problem}" for writer, (problem, _) in faults),
                since=min((since for _, (_, since) in faults), default=""),
                audit_rows_dropped=self._audit_rows,
                log_lines_dropped=self._log_lines,
            )
