"""The heart's rules and its state file: when to restart the daemon, when to give up, and what it says.

    policy, problems = HeartPolicy.from_env(os.environ)  # 5 restarts within 30 s, then give up
    policy.delay(failures_in_row=0)                      # 0.0: the first restart after a stable run: at once
    policy.exceeded(window_after_this_restart=6)         # True: more than max_restarts within period_s
    describe_exit(-9, "")                                # "killed by SIGKILL"
    state = decode_state(path.read_bytes())              # HeartState, as `corral daemon status` reads it

The heart (frontends/daemon/heart.py) is a small process that starts the daemon as its child and restarts it
after an abnormal exit, as Erlang's `heart` does for a node. Its decisions are pure functions of this module,
tested without a process or a clock; the process only carries them out. The words are OTP's: a restart
*intensity* — more than `max_restarts` restarts within `period_s` and the heart gives up — and an exponential
*backoff* between restarts that goes back to zero once the daemon has stayed up for `reset_after_s`.

Why the first restart has no delay: a daemon killed once (kill -9, the out-of-memory killer) should answer
again within a second; only a daemon that keeps dying is slowed down, and one that dies at once every time is
given up after the intensity, with the reason where a person looks (`corral daemon status`, the log).

The state file (`<runtime dir>/heart.json`) is written by the heart only, atomically (a temporary file renamed
over it), so a reader never sees half of it, and it survives the heart: after the heart gave up, the file
still says why. The daemon's own exit record (`daemon.exit`) lets a heart that *adopted* a running daemon —
which is not its child, so `waitpid` cannot tell it the exit status — learn how that daemon ended.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping
from typing import Literal

import msgspec

__all__ = [
    "HEART_PID_ENV",
    "READY_FD_ENV",
    "DaemonExit",
    "ExitRecord",
    "HeartPolicy",
    "HeartReport",
    "HeartState",
    "HeartStateName",
    "SupervisedBy",
    "decode_exit_record",
    "decode_state",
    "describe_exit",
    "encode",
    "heart_problem",
    "utc_now",
]

HEART_PID_ENV = "CORRAL_HEART_PID"
"""Set by the heart for the daemon it starts: the daemon knows it has a heart to watch (and to replace)."""

READY_FD_ENV = "CORRAL_HEART_READY_FD"
"""The write end of a pipe the daemon writes `ready` to once it serves: the heart then knows it started."""

HeartStateName = Literal["starting", "running", "restarting", "gave_up", "stopped"]


class HeartPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How the heart restarts the daemon: an intensity (at most `max_restarts` within `period_s`) and a
    backoff (`min_s * 2**(n-1)` capped at `max_s` for the n-th failure in a row, the first one at once)."""

    max_restarts: int = 5
    period_s: float = 30.0
    min_s: float = 0.5
    max_s: float = 10.0
    reset_after_s: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> tuple[HeartPolicy, list[str]]:
        """The defaults, with CORRAL_HEART_MAX_RESTARTS (an integer >= 0) and CORRAL_HEART_PERIOD_S (seconds,
        > 0) applied when they are set; a bad value is left out, and named in the problems returned."""
        values: dict[str, float | int] = {}
        problems: list[str] = []
        for field, (name, kind, least) in _ENV_FIELDS.items():
            text = env.get(name, "").strip()
            if not text:
                continue
            try:
                value = kind(text)
            except ValueError:
                value = None
            if value is None or value < least or (kind is float and (value == 0 or value != value)):
                default = getattr(cls(), field)
                problems.append(f"{name}={text!r} is not {_KIND_WORDS[kind]}: using {default:g}")
                continue
            values[field] = value
        return cls(**values), problems  # type: ignore[arg-type]

    def delay(self, failures_in_row: int) -> float:
        """The wait before restarting a daemon that failed `failures_in_row` times in a row before this one
        (0 for the first failure after a stable run: restart at once)."""
        if failures_in_row <= 0:
            return 0.0
        if failures_in_row > 30:
            return self.max_s
        return min(self.max_s, self.min_s * 2 ** (failures_in_row - 1))

    def exceeded(self, window_after_this_restart: int) -> bool:
        """Whether a restart that makes `window_after_this_restart` restarts within `period_s` is past the
        intensity (OTP: *more than* max_restarts)."""
        return window_after_this_restart > self.max_restarts


_ENV_FIELDS: dict[str, tuple[str, type, float]] = {
    "max_restarts": ("CORRAL_HEART_MAX_RESTARTS", int, 0),
    "period_s": ("CORRAL_HEART_PERIOD_S", float, 0),
}
_KIND_WORDS = {int: "an integer >= 0", float: "a number of seconds > 0"}


class DaemonExit(msgspec.Struct, frozen=True):
    """One end of a daemon the heart watched: its pid, when (UTC ISO stamp), why, in words a person reads."""

    pid: int
    at: str
    reason: str


class HeartState(msgspec.Struct, frozen=True, kw_only=True):
    """`heart.json`: what the heart is doing, written by the heart at every change.

    state: starting (the daemon it started does not serve yet), running, restarting (waiting out the backoff),
    gave_up (past the intensity, or the first daemon could not start: `gave_up` says why and what to type),
    stopped (the daemon stopped in order, and the heart with it). `restarts` counts this heart's restarts of
    the daemon; `last_exit` is the last abnormal exit, kept from a previous heart when this one has seen none.
    """

    pid: int
    state: HeartStateName
    daemon_pid: int | None = None
    started_at: str = ""
    updated_at: str = ""
    restarts: int = 0
    restarts_in_window: int = 0
    max_restarts: int = 5
    period_s: float = 30.0
    next_restart_in_s: float | None = None
    adopted: bool = False
    last_exit: DaemonExit | None = None
    gave_up: str = ""


class ExitRecord(msgspec.Struct, frozen=True):
    """`daemon.exit`: the exit status a daemon returned, written as it ends (not when it is killed)."""

    pid: int
    status: int
    at: str


def encode(value: HeartState | ExitRecord) -> bytes:
    return msgspec.json.encode(value)


def decode_state(data: bytes) -> HeartState | None:
    """The heart's state, or None if the file is empty or not one (a heart from another corral version)."""
    try:
        return msgspec.json.decode(data, type=HeartState)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def decode_exit_record(data: bytes) -> ExitRecord | None:
    try:
        return msgspec.json.decode(data, type=ExitRecord)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def describe_exit(returncode: int | None, last_log_line: str = "") -> str:
    """Why a daemon ended, from its exit status (negative: the signal that killed it, as subprocess reports
    it; None: unknown, for a daemon that was not our child and left no exit record)."""
    if returncode is None:
        return "ended without an exit status (killed by a signal: SIGKILL or the out-of-memory killer?)"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    if returncode == 0:
        return "exit status 0"
    return f"exit status {returncode}: {last_log_line}" if last_log_line else f"exit status {returncode}"


def utc_now(now: float | None = None) -> str:
    """A UTC ISO stamp with microseconds, as the rest of corral writes them: 2026-11-21T15:01:59.123456Z."""
    moment = time.time() if now is None else now
    whole = int(moment)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((moment - whole) * 1e6):06d}Z"


SupervisedBy = Literal["heart", "systemd", "foreground"]


class HeartReport(msgspec.Struct, frozen=True, kw_only=True):
    """What `corral daemon status` and `GET /v1/status` say about what restarts the daemon.

    supervised_by: heart (started by `corral daemon start` or an autostart), systemd (the user unit: systemd
    is the heart), foreground (`daemon start --foreground` by hand: nothing restarts it), or None when no
    daemon answers. running/pid: a heart holds its lock now. state: heart.json as last written, also after the
    heart ended (then it says why). problem: set when a dying daemon would not be restarted, with what to
    type."""

    supervised_by: SupervisedBy | None
    running: bool
    pid: int | None
    state: HeartState | None
    problem: str = ""


def heart_problem(
    supervised_by: SupervisedBy | None, running: bool, state: HeartState | None, respawn_failure: str = ""
) -> str:
    """The sentence a person needs when the daemon is not (or no longer) kept alive; "" when all is well."""
    if running or supervised_by in ("systemd", "foreground"):
        return ""
    if state is not None and state.state == "gave_up" and state.gave_up:
        return state.gave_up
    if supervised_by == "heart":
        why = f" and could not start a new one: {respawn_failure}" if respawn_failure else ""
        return (
            f"the daemon's heart is not running{why}: the daemon will not be restarted if it dies; "
            "put it under a new heart with: corral daemon restart"
        )
    return ""
