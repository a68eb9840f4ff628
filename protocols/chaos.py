"""What `corral chaos` and a daemon started for it agree on: the injected crash, and the chaos routes' bodies.

    directory.tell("root/signals", InjectedCrash(reason="chaos: fault 12"))   # the actor raises, and crashes

A daemon whose environment has CORRAL_CHAOS=1 serves `GET /v1/chaos/actors` and `POST /v1/chaos/crash`
(frontends/daemon/chaos.py); any other daemon answers them 404, as every unknown route. The crash is real: the
actor at that path raises `InjectedFault` in a `tell` handler, as a bug would, and its supervisor does what
it does with any crash (docs/chaos.md).
"""

from __future__ import annotations

import msgspec

__all__ = ["CHAOS_ENV", "ActorEntry", "CrashRequest", "InjectedCrash", "InjectedFault", "chaos_enabled"]

CHAOS_ENV = "CORRAL_CHAOS"
"""`1` in the daemon's environment turns the chaos routes on; anything else, or unset, leaves them out."""


def chaos_enabled(environ: dict[str, str] | None = None) -> bool:
    import os

    return (os.environ if environ is None else environ).get(CHAOS_ENV) == "1"


class InjectedFault(Exception):
    """The exception an actor raises on `InjectedCrash`: a bug put there on purpose."""


class InjectedCrash(msgspec.Struct, frozen=True):
    """Told to a supervised actor: it raises `InjectedFault(reason)` while handling it (a crash)."""

    reason: str


class CrashRequest(msgspec.Struct, frozen=True):
    """`POST /v1/chaos/crash`: the path of the actor to crash (one of `GET /v1/chaos/actors`)."""

    path: str


class ActorEntry(msgspec.Struct, frozen=True):
    """A live actor: its path in the tree and the urn of its current generation (a restart changes it)."""

    path: str
    urn: str
