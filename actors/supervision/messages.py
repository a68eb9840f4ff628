"""The supervision protocol: what children tell their supervisor, and what a supervisor is asked.

These stay in `actors/` rather than `protocols/` because `StartChild` carries a live `ChildSpec` (a start
function) and `reply_to` a live actor ref: they never cross a process boundary. What does cross it — the
events a supervisor publishes — lives in `protocols.messages`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from protocols.messages import ExitReason

__all__ = [
    "ChildExit",
    "ChildInfo",
    "ChildStartResult",
    "GetStatistics",
    "RestartChild",
    "RestartDue",
    "RestartFailed",
    "StartChild",
    "SupervisorStats",
    "TerminateChild",
    "WhichChildren",
]


class ChildExit(msgspec.Struct, frozen=True):
    """Told by a child's base class exactly once per generation, however it ended."""

    child_id: str
    generation: int
    reason: ExitReason


class RestartDue(msgspec.Struct, frozen=True):
    """Told by the scheduler when a child's backoff is over; `token` tells a stale timer from the live one."""

    child_id: str
    token: int


class StartChild(msgspec.Struct, frozen=True):
    """Add and start a dynamic child. Asked: replies ChildInfo or raises. Told: replies to `reply_to`."""

    spec: Any  # ChildSpec
    reply_to: Any = None  # pykka.ActorRef | None


class ChildStartResult(msgspec.Struct, frozen=True):
    child_id: str
    ok: bool
    reason: ExitReason | None = None


class RestartChild(msgspec.Struct, frozen=True):
    """Start a stopped child again from its kept spec (OTP's restart_child); its backoff starts afresh."""

    child_id: str


class TerminateChild(msgspec.Struct, frozen=True):
    """Stop a child with its shutdown timeout and forget its spec."""

    child_id: str


class WhichChildren(msgspec.Struct, frozen=True):
    pass


class GetStatistics(msgspec.Struct, frozen=True):
    pass


class ChildInfo(msgspec.Struct, frozen=True):
    """One child as its supervisor sees it (OTP's which_children, with the restart state added)."""

    id: str
    generation: int
    state: str  # running | restarting | stopped
    restart: str
    kind: str
    restarts: int
    failures_in_row: int
    restart_due_in_s: float | None = None
    last_exit: str = ""  # why its last generation ended or failed to start ("" none has yet)


class SupervisorStats(msgspec.Struct, frozen=True):
    """A snapshot of a supervisor, cheap to take (trio-style `statistics()`)."""

    path: str
    strategy: str
    max_restarts: int
    period_s: float
    restarts_in_window: int
    total_restarts: int
    children: tuple[ChildInfo, ...]

    @property
    def running(self) -> int:
        return sum(1 for c in self.children if c.state == "running")


class RestartFailed(msgspec.Struct, frozen=True):
    """Told by a supervisor to itself when a restart failed, so the retry is a new message, not recursion."""

    child_id: str
    generation: int
    reason: ExitReason
