"""Model faults: what a model API does when it is having a bad day, injected on purpose.

    fault = parse_fault("rate-limit,retry-after=2,times=3")   # → Fault("rate-limit", times=3, retry_after=2)
    switch = FaultSwitch(global_fault=fault)
    switch.fire(("turn", 0, 2), turn_fault)                     # the fault to inject now, or None

| fault | what the client sees |
|---|---|
| `rate-limit` | HTTP 429, `retry-after: SECONDS` (`retry-after=`, default 1), a rate_limit_error body |
| `overloaded` | HTTP 529 with an overloaded_error body |
| `server-error` | HTTP 500 with an api_error body |
| `cut` | a streamed reply that stops mid-message: the connection closes before the message ends |
| `slow` | every event of the stream `delay=` seconds (default 0.5) after the one before |
| `stall` | the stream's headers, then nothing (for `seconds=`, default until the client goes away) |
| `bad-tool` | the turn's tool call with input the tool rejects (its required fields missing) |

`times=N` injects a fault N times, then it clears (a turn's fault counts that turn's requests; the global
fault every model request). Without it a fault lasts. Parsing is pure; `FaultSwitch` holds the counts, and
is used on the server's event loop only (no lock).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["FAULTS", "Fault", "FaultError", "FaultSwitch", "parse_fault"]

FAULTS = ("rate-limit", "overloaded", "server-error", "cut", "slow", "stall", "bad-tool")

# The parameters each fault takes besides `times`, with their defaults.
_PARAMETERS: dict[str, dict[str, float | None]] = {
    "rate-limit": {"retry-after": 1.0},
    "overloaded": {"retry-after": None},
    "server-error": {},
    "cut": {},
    "slow": {"delay": 0.5},
    "stall": {"seconds": None},
    "bad-tool": {},
}


class FaultError(ValueError):
    """A fault spec that does not parse; the message says what is wrong and what would be right."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault to inject (see the table above). `times` None: it lasts; `seconds` None: a stall lasts."""

    kind: str
    times: int | None = None
    retry_after: float | None = None
    delay: float = 0.5
    seconds: float | None = None

    @property
    def spec(self) -> str:
        """The fault written back as `parse_fault` reads it."""
        parts = [self.kind]
        if self.retry_after is not None:
            parts.append(f"retry-after={self.retry_after:g}")
        if self.kind == "slow":
            parts.append(f"delay={self.delay:g}")
        if self.seconds is not None:
            parts.append(f"seconds={self.seconds:g}")
        if self.times is not None:
            parts.append(f"times={self.times}")
        return ",".join(parts)


def parse_fault(spec: str) -> Fault | None:
    """`NAME[,KEY=VALUE…]` → a Fault; "none" or "" → None. Raises FaultError naming the bad part."""
    name, *pairs = [part.strip() for part in spec.strip().split(",")]
    if name in ("", "none"):
        if pairs:
            raise FaultError(f"fault {spec!r}: 'none' takes no parameters")
        return None
    if name not in _PARAMETERS:
        raise FaultError(f"unknown fault {name!r}: expected one of {', '.join(FAULTS)} or none")
    values: dict[str, float | None] = dict(_PARAMETERS[name])
    times: int | None = None
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or (key != "times" and key not in values):
            allowed = ", ".join(f"{k}=" for k in ("times", *values))
            raise FaultError(f"fault {spec!r}: {pair!r} is not a parameter of {name} (it takes {allowed})")
        try:
            number = float(raw)
        except ValueError:
            raise FaultError(f"fault {spec!r}: {key} must be a number, not {raw.strip()!r}") from None
        if number < 0 or (key == "times" and (number < 1 or not number.is_integer())):
            raise FaultError(
                f"fault {spec!r}: {key} must be a {'whole number ≥ 1' if key == 'times' else 'number ≥ 0'}"
            )
        if key == "times":
            times = int(number)
        else:
            values[key] = number
    return Fault(
        kind=name,
        times=times,
        retry_after=values.get("retry-after"),
        delay=_number(values.get("delay"), 0.5),
        seconds=values.get("seconds"),
    )


def _number(value: float | None, default: float) -> float:
    return default if value is None else value


class FaultSwitch:
    """Which fault fires for a request: the global one (settable while the server runs) before a turn's.

    A fault with `times` fires that many times per key, then stays quiet; setting the global fault again
    starts its count afresh.
    """

    def __init__(self, global_fault: Fault | None = None) -> None:
        self._global = global_fault
        self._global_generation = 0
        self._fired: dict[Hashable, int] = {}

    @property
    def global_fault(self) -> Fault | None:
        return self._global

    def set_global(self, fault: Fault | None) -> None:
        self._global = fault
        self._global_generation += 1

    def fire(self, key: Hashable, turn_fault: Fault | None) -> Fault | None:
        """The fault to inject on a model request for the turn `key` (whose own fault is `turn_fault`),
        counting it; None when none is due."""
        if self._global is not None and self._take(("global", self._global_generation), self._global):
            return self._global
        if turn_fault is not None and self._take(("turn", key), turn_fault):
            return turn_fault
        return None

    def _take(self, key: Hashable, fault: Fault) -> bool:
        fired = self._fired.get(key, 0)
        if fault.times is not None and fired >= fault.times:
            return False
        self._fired[key] = fired + 1
        return True
