"""OTP-style supervision for pykka actors: child specs, strategies, restart intensity, backoff, shutdown.

The vocabulary is Erlang's, so a reader who knows OTP recognises it: a `ChildSpec` says how to start,
restart (`Restart`) and stop a child; a `Supervisor` applies a `Strategy` within a restart intensity
(`SupervisorFlags`); every supervised actor derives from `SupervisedActor`, which reports its exit.
See docs/architecture.md.
"""

from actors.supervision.base import ActorExit, SupervisedActor
from actors.supervision.context import ActorDirectory, ChildContext, ChildHandle, SupervisionEnv
from actors.supervision.messages import (
    ChildInfo,
    ChildStartResult,
    GetStatistics,
    RestartChild,
    StartChild,
    SupervisorStats,
    TerminateChild,
    WhichChildren,
)
from actors.supervision.observer import observe
from actors.supervision.spec import BackoffSpec, ChildSpec, Restart, Strategy, SupervisorFlags
from actors.supervision.supervisor import Supervisor
from actors.supervision.tree import SupervisionTree

__all__ = [
    "ActorDirectory",
    "ActorExit",
    "BackoffSpec",
    "ChildContext",
    "ChildHandle",
    "ChildInfo",
    "ChildSpec",
    "ChildStartResult",
    "GetStatistics",
    "Restart",
    "RestartChild",
    "StartChild",
    "Strategy",
    "SupervisedActor",
    "SupervisionEnv",
    "SupervisionTree",
    "Supervisor",
    "SupervisorFlags",
    "SupervisorStats",
    "TerminateChild",
    "WhichChildren",
    "observe",
]
