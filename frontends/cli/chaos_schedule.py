"""The faults `corral chaos` injects, and the seeded schedule that says which, when and on what.

    faults = schedule(seed=7, kinds=ALL_KINDS, count=30)    # the same 30 faults for the same seed, always
    faults[0]    # Fault(number=1, kind=FaultKind.AGENT_KILL, gap_s=1.3, pick=81723, hold_s=0.0, variant=0)

Pure: no clock, no process, no store. Everything random about a campaign is drawn here, from one
`random.Random(seed)`: the kinds in order, the pause before each fault, the number that picks its target among
the candidates alive at that moment (`pick % len(candidates)`), how long a hold lasts (a stopped agent, a full
disk) and which variant of a fault is used (which malformed signal, how many megabytes of flood). What cannot
be drawn in advance is *when* a target exists and what it is doing then: a replay with the same seed injects
the same faults in the same order, at the same pauses, but the agents it meets may be at other points of their
work (docs/chaos.md, "Replaying a seed").
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable, Sequence

import msgspec

from protocols.errors import UsageError

__all__ = [
    "ALL_KINDS",
    "BAD_SIGNALS",
    "HOLD_S",
    "MAX_GAP_S",
    "MIN_GAP_S",
    "BadSignal",
    "Fault",
    "FaultKind",
    "parse_kinds",
    "schedule",
]


class FaultKind(enum.StrEnum):
    AGENT_KILL = "agent-kill"  # kill -9 of an agent process
    TMUX_KILL = "tmux-kill"  # kill -9 of the tmux server (every tmux agent with it)
    DAEMON_KILL = "daemon-kill"  # kill -9 of the daemon (its heart starts it again)
    AGENT_STOP = "agent-stop"  # SIGSTOP of an agent (a hang), SIGCONT after a hold
    ACTOR_CRASH = "actor-crash"  # an exception inside an actor (POST /v1/chaos/crash)
    BAD_SIGNAL = "bad-signal"  # `corral signal emit` with a malformed signal
    DUPLICATE_SIGNAL = "duplicate-signal"  # an agent's finishing signal emitted a second time
    FLOOD = "flood"  # an agent writes megabytes of output
    DISK_FULL = "disk-full"  # the disk holding CORRAL_HOME is full for a while (root only: a tmpfs)


ALL_KINDS: tuple[FaultKind, ...] = tuple(FaultKind)

MIN_GAP_S = 0.2
MAX_GAP_S = 2.5
"""The pause between one fault's recovery and the next fault, drawn uniformly."""

HOLD_S: dict[FaultKind, tuple[float, float]] = {
    FaultKind.AGENT_STOP: (2.0, 16.0),  # long enough, sometimes, for the agent to be seen as hung
    FaultKind.DISK_FULL: (1.0, 5.0),
}
"""How long a held fault lasts (uniform, seconds); faults not listed are instants."""

FLOOD_MB = (1, 6)
"""An output flood writes this many megabytes (uniform integers, inclusive)."""


class BadSignal(msgspec.Struct, frozen=True):
    """A malformed `corral signal emit`: its arguments after `emit` ({task}: the campaign's current task) and
    whether it is sent as the task's agent would (CORRAL_MANAGED=1). It must be refused by the command (an
    error, nothing stored) or stored and failed, with a reason, when applied: never applied."""

    name: str
    args: tuple[str, ...]
    as_agent: bool = False


BAD_SIGNALS: tuple[BadSignal, ...] = (
    BadSignal("payload not json", ("implement_task_finished", "{task}", "--payload", "not json")),
    BadSignal(
        "payload of the wrong type",
        ("implement_task_finished", "{task}", "--payload", '{"wave_number": "one", "task_number": 1}'),
    ),
    BadSignal(
        "no such wave",
        ("implement_task_finished", "{task}", "--payload", '{"wave_number": 99, "task_number": 1}'),
    ),
    BadSignal(
        "no such wave task",
        ("implement_task_finished", "{task}", "--payload", '{"wave_number": 1, "task_number": 999}'),
        as_agent=True,
    ),
    BadSignal("unknown signal type", ("no_such_signal", "{task}")),
    BadSignal("no such task", ("review_approved", "no-such-task-{task}")),
    BadSignal("a user-only event from an agent", ("cancel", "{task}"), as_agent=True),
    BadSignal("a bad task name", ("review_approved", "Not A Task!")),
    BadSignal(
        "a wave action with a bad wave",
        ("retry_wave", "{task}", "--payload", '{"wave_number": 0}'),
    ),
)
"""The malformed signals a bad-signal fault picks from (`Fault.variant` indexes this)."""


class Fault(msgspec.Struct, frozen=True):
    """One fault of a campaign, as drawn from the seed."""

    number: int  # 1, 2, … in the order injected
    kind: FaultKind
    gap_s: float  # the pause before it, after the previous fault's recovery
    pick: int  # chooses the target among the candidates alive then: pick % len(candidates)
    hold_s: float = 0.0  # agent-stop: until SIGCONT; disk-full: until space is freed
    variant: int = 0  # bad-signal: index into BAD_SIGNALS; flood: megabytes


def parse_kinds(text: str) -> tuple[FaultKind, ...]:
    """`agent-kill,flood` → the kinds, in the order of FaultKind; UsageError naming an unknown one."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UsageError(f"--kinds needs at least one fault kind; the kinds: {', '.join(ALL_KINDS)}")
    unknown = [name for name in names if name not in FaultKind.__members__.values()]
    if unknown:
        raise UsageError(f"unknown fault kind {unknown[0]!r}; the kinds: {', '.join(ALL_KINDS)}")
    chosen = set(names)
    return tuple(kind for kind in ALL_KINDS if kind in chosen)


def schedule(seed: int, kinds: Iterable[FaultKind], count: int) -> tuple[Fault, ...]:
    """`count` faults drawn from `seed`, each of one of `kinds` (with equal chances). The same arguments give
    the same faults."""
    pool: Sequence[FaultKind] = tuple(kinds)
    if not pool:
        raise UsageError("no fault kind to inject")
    rng = random.Random(seed)
    faults = []
    for number in range(1, count + 1):
        kind = rng.choice(pool)
        gap = round(rng.uniform(MIN_GAP_S, MAX_GAP_S), 2)
        pick = rng.randrange(2**31)
        low, high = HOLD_S.get(kind, (0.0, 0.0))
        hold = round(rng.uniform(low, high), 2) if high else 0.0
        variant = 0
        if kind is FaultKind.BAD_SIGNAL:
            variant = rng.randrange(len(BAD_SIGNALS))
        elif kind is FaultKind.FLOOD:
            variant = rng.randint(*FLOOD_MB)
        faults.append(Fault(number, kind, gap, pick, hold, variant))
    return tuple(faults)
