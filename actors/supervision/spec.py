"""Child specs and supervisor flags, in OTP's vocabulary.

    ChildSpec.worker("bus", EventBus)                                  # permanent, 5 s shutdown
    ChildSpec.worker("runtime", TmuxRuntime, cfg, restart=Restart.TRANSIENT,
                     backoff=BackoffSpec(min_s=0.5, max_s=30))
    ChildSpec.supervisor("project:web", SupervisorFlags(Strategy.ONE_FOR_ONE, max_restarts=5, period_s=60),
                         children=[...])                               # shutdown: infinity

Backoff follows Akka's BackoffSupervisor: `min(max_s, min_s * 2**n)`, then up to `jitter` more (0.2 = up to
20 % later, so a crowd of children restarting together spreads out); `n` counts failures in a row and goes
back to 0 once the child has stayed up for `reset_after_s`.
"""

from __future__ import annotations

import enum
import functools
import random
from collections.abc import Callable, Sequence
from typing import Any, Literal

import msgspec
import pykka

from actors.supervision.context import ChildContext
from protocols.messages import ExitReason

__all__ = ["AutoShutdown", "BackoffSpec", "ChildSpec", "Restart", "Strategy", "SupervisorFlags"]

AutoShutdown = Literal["never", "any_significant", "all_significant"]
"""OTP's `auto_shutdown` flag: whether a supervisor shuts itself down when its significant children end."""


class Strategy(enum.StrEnum):
    ONE_FOR_ONE = "one_for_one"  # restart only the child that died
    ONE_FOR_ALL = "one_for_all"  # stop the others (reverse order), restart all (start order)
    REST_FOR_ONE = "rest_for_one"  # stop and restart the dead child and those started after it


class Restart(enum.StrEnum):
    PERMANENT = "permanent"  # always restarted
    TRANSIENT = "transient"  # restarted only after an abnormal exit (not normal, not shutdown)
    TEMPORARY = "temporary"  # never restarted, and forgotten once it ends

    def wants_restart(self, reason: ExitReason) -> bool:
        if self is Restart.PERMANENT:
            return True
        return self is Restart.TRANSIENT and reason.is_error


class BackoffSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Exponential backoff between restarts of one child, with multiplicative jitter and a cap."""

    min_s: float = 0.1
    max_s: float = 30.0
    jitter: float = 0.2
    reset_after_s: float = 10.0

    def __post_init__(self) -> None:
        if self.min_s < 0:
            raise ValueError(f"backoff min_s must be >= 0, got {self.min_s}")
        if self.max_s < self.min_s:
            raise ValueError(f"backoff max_s ({self.max_s}) must be >= min_s ({self.min_s})")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"backoff jitter must be within 0..1, got {self.jitter}")
        if self.reset_after_s < 0:
            raise ValueError(f"backoff reset_after_s must be >= 0, got {self.reset_after_s}")

    def delay(self, failures_in_row: int, rng: random.Random) -> float:
        """The wait before restart number `failures_in_row + 1` (0 for the first when min_s is 0)."""
        if self.min_s == 0:
            return 0.0
        base = self.max_s if failures_in_row >= 30 else min(self.max_s, self.min_s * 2**failures_in_row)
        return base * (1.0 + rng.random() * self.jitter)


class SupervisorFlags(msgspec.Struct, frozen=True):
    """Strategy and restart intensity: more than `max_restarts` restarts within `period_s` → the supervisor
    stops its children and shuts down (reason `shutdown`, with the cause), as OTP's does.

    `auto_shutdown` (OTP 24): `any_significant` — the supervisor shuts down as soon as one significant child
    ends by itself and is not restarted; `all_significant` — once every significant child has; `never` (the
    default). A child stopped by the supervisor itself (terminate, a strategy's group restart) never counts.
    """

    strategy: Strategy = Strategy.ONE_FOR_ONE
    max_restarts: int = 1
    period_s: float = 5.0
    auto_shutdown: AutoShutdown = "never"

    def __post_init__(self) -> None:
        if self.max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0, got {self.max_restarts}")
        if self.period_s <= 0:
            raise ValueError(f"period_s must be > 0, got {self.period_s}")


StartFn = Callable[[ChildContext], "pykka.ActorRef[Any]"]


def _start_actor(
    actor_class: type[pykka.Actor], args: tuple[Any, ...], kwargs: dict[str, Any], ctx: ChildContext
) -> pykka.ActorRef[Any]:
    return actor_class.start(ctx, *args, **kwargs)


class ChildSpec(msgspec.Struct, frozen=True, kw_only=True):
    """How to start, restart and stop one child.

    `start(ctx)` must return the new actor's ref; `shutdown_s` is how long an orderly stop may take before
    the child's kill hooks run (None waits forever, the default for supervisors); `start_timeout_s` bounds
    the start handshake. `significant` (OTP 24, transient or temporary children only): its end may shut its
    supervisor down, by the supervisor's `auto_shutdown`.
    """

    id: str
    start: StartFn
    restart: Restart = Restart.PERMANENT
    shutdown_s: float | None = 5.0
    kind: Literal["worker", "supervisor"] = "worker"
    backoff: BackoffSpec | None = None
    start_timeout_s: float = 10.0
    significant: bool = False

    def __post_init__(self) -> None:
        if not self.id or "/" in self.id:
            raise ValueError(f"child id must be non-empty and contain no '/': {self.id!r}")
        if self.shutdown_s is not None and self.shutdown_s < 0:
            raise ValueError(f"shutdown_s must be >= 0 or None, got {self.shutdown_s}")
        if self.significant and self.restart is Restart.PERMANENT:
            raise ValueError(f"child {self.id!r}: a permanent child cannot be significant (OTP's rule)")

    @classmethod
    def worker(
        cls,
        id: str,
        actor_class: type[pykka.Actor],
        *args: Any,
        restart: Restart = Restart.PERMANENT,
        shutdown_s: float | None = 5.0,
        backoff: BackoffSpec | None = None,
        start_timeout_s: float = 10.0,
        significant: bool = False,
        **kwargs: Any,
    ) -> ChildSpec:
        """A SupervisedActor subclass started as `actor_class.start(ctx, *args, **kwargs)`."""
        return cls(
            id=id,
            start=functools.partial(_start_actor, actor_class, args, kwargs),
            restart=restart,
            shutdown_s=shutdown_s,
            kind="worker",
            backoff=backoff,
            start_timeout_s=start_timeout_s,
            significant=significant,
        )

    @classmethod
    def supervisor(
        cls,
        id: str,
        flags: SupervisorFlags,
        children: Sequence[ChildSpec] = (),
        *,
        restart: Restart = Restart.PERMANENT,
        shutdown_s: float | None = None,
        backoff: BackoffSpec | None = None,
        supervisor_class: type[pykka.Actor] | None = None,
    ) -> ChildSpec:
        """A nested supervisor with its own strategy, intensity and children."""
        from actors.supervision.supervisor import Supervisor

        actor_class = supervisor_class or Supervisor
        return cls(
            id=id,
            start=functools.partial(_start_actor, actor_class, (flags, tuple(children)), {}),
            restart=restart,
            shutdown_s=shutdown_s,
            kind="supervisor",
            backoff=backoff,
            start_timeout_s=60.0,
        )
