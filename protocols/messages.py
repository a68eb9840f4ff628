"""Commands and events: frozen msgspec Structs in two tagged unions.

Inside the daemon these Structs travel between actors as they are (immutable, so thread-safe). At the edges —
the HTTP API, the SSE stream, the store — they are encoded as JSON with a `"type"` tag, and decoded back with
`decode_event` / `decode_command`:

    >>> encode(ChildStarted(supervisor="root", child_id="bus", generation=1))
    b'{"type":"child_started","supervisor":"root","child_id":"bus","generation":1,"restarted":false,"ts":0.0}'

Supervision events name the supervisor and child by their stable ids, never by actor refs (a restart makes a
new ref). Every exit carries its `ExitReason`: `normal`, `shutdown` (stopped by its supervisor) or `error`
with the exception type and message.
"""

from __future__ import annotations

import traceback
from typing import Literal

import msgspec

__all__ = [
    "Command",
    "CreateTask",
    "DaemonReloaded",
    "DaemonStopping",
    "EmitSignal",
    "Event",
    "ExitReason",
    "InstanceNote",
    "InstanceStatusChanged",
    "Lagged",
    "Ping",
    "RepoRegistered",
    "SetTaskStatus",
    "TransitionTask",
    "decode_command",
    "decode_event",
    "encode",
]

ExitKind = Literal["normal", "shutdown", "error"]


class ExitReason(msgspec.Struct, frozen=True, kw_only=True):
    """Why an actor ended: normal, shutdown (its supervisor stopped it) or error (with type and message)."""

    kind: ExitKind
    error_type: str = ""
    message: str = ""
    where: str = ""

    @classmethod
    def normal(cls) -> ExitReason:
        return _NORMAL

    @classmethod
    def shutdown(cls, cause_type: str = "", cause: str = "") -> ExitReason:
        """`shutdown`: stopped by its supervisor; or, with a cause, a supervisor that shut itself down as
        OTP's do (past its restart intensity, or when a significant child ended). Either way it is not an
        error: a transient parent is not restarted for it, a permanent one is."""
        if not cause_type and not cause:
            return _SHUTDOWN
        return cls(kind="shutdown", error_type=cause_type, message=cause)

    @classmethod
    def error(cls, error_type: str, message: str, where: str = "") -> ExitReason:
        return cls(kind="error", error_type=error_type, message=message, where=where)

    @classmethod
    def from_exception(cls, exc: BaseException, where: str = "") -> ExitReason:
        """The reason for a crash: the exception's type and message, and the innermost frame it came from."""
        frames = traceback.extract_tb(exc.__traceback__)
        if not where and frames:
            last = frames[-1]
            where = f"{last.filename}:{last.lineno} in {last.name}"
        return cls(kind="error", error_type=type(exc).__name__, message=str(exc), where=where)

    @property
    def is_error(self) -> bool:
        return self.kind == "error"

    def __str__(self) -> str:
        if self.kind == "error":
            return f"{self.error_type}: {self.message}" if self.message else self.error_type
        return f"{self.kind}: {self.message}" if self.message else self.kind


_NORMAL = ExitReason(kind="normal")
_SHUTDOWN = ExitReason(kind="shutdown")


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    ts: float = 0.0  # wall-clock seconds since the epoch, set by the publisher


class ChildStarted(_Event, tag="child_started"):
    supervisor: str
    child_id: str
    generation: int
    restarted: bool = False


class ChildExited(_Event, tag="child_exited"):
    """A child ended; `restarting` says whether its supervisor will start it again."""

    supervisor: str
    child_id: str
    generation: int
    reason: ExitReason
    restart_type: str = "permanent"
    restarting: bool = False


class ChildRestarting(_Event, tag="child_restarting"):
    """A restart is scheduled after `delay_s` of backoff; `attempt` counts failures in a row."""

    supervisor: str
    child_id: str
    generation: int
    delay_s: float
    attempt: int
    reason: ExitReason


class ChildStartFailed(_Event, tag="child_start_failed"):
    supervisor: str
    child_id: str
    generation: int
    reason: ExitReason


class SupervisorGaveUp(_Event, tag="supervisor_gave_up"):
    """More than `max_restarts` restarts within `period_s`: the supervisor stops every child and fails."""

    supervisor: str
    restarts: int
    period_s: float
    last_child: str
    reason: ExitReason


class SupervisorEscalated(_Event, tag="supervisor_escalated"):
    """A supervisor failed and hands the decision to its parent (or, at the root, to the process)."""

    supervisor: str
    parent: str
    reason: ExitReason


class InstanceStatusChanged(_Event, tag="instance_status_changed"):
    """An agent's status changed (loading, running, ready, waiting, exited, failed, paused), and why."""

    project: str
    instance: str
    status: str
    previous: str
    reason: str


class InstanceNote(_Event, tag="instance_note"):
    """Something corral did to or noticed about an agent that belongs in the audit log (keys sent, a
    fallback taken, a start screen dismissed)."""

    project: str
    instance: str
    message: str
    level: Literal["info", "warn", "error"] = "info"


class TaskCreated(_Event, tag="task_created"):
    project: str
    task: str
    status: str


class TaskTransitioned(_Event, tag="task_transitioned"):
    project: str
    task: str
    from_status: str
    event: str
    to_status: str
    source: str
    signal_id: int | None = None


class SignalEmitted(_Event, tag="signal_emitted"):
    project: str
    task: str
    signal_id: int
    signal_type: str


class SignalProcessed(_Event, tag="signal_processed"):
    project: str
    task: str
    signal_id: int
    signal_type: str
    status: Literal["done", "failed"]
    result: str


class RepoRegistered(_Event, tag="repo_registered"):
    """A repository was registered as a project through the daemon's API (`POST /v1/repos`)."""

    project: str
    root: str


class DaemonReloaded(_Event, tag="daemon_reloaded"):
    """The configuration was re-read (`source`: "SIGHUP" or "api"); `problems` names each invalid file."""

    source: str
    repos: int
    problems: tuple[str, ...] = ()


class DaemonStopping(_Event, tag="daemon_stopping"):
    """An orderly shutdown began (`reason`: "SIGTERM", "SIGINT", "api"); the event stream ends right after."""

    reason: str


class Lagged(_Event, tag="lagged"):
    """Delivered to a subscriber in place of `missed` events it was too slow to take."""

    missed: int


Event = (
    ChildStarted
    | ChildExited
    | ChildRestarting
    | ChildStartFailed
    | SupervisorGaveUp
    | SupervisorEscalated
    | InstanceStatusChanged
    | InstanceNote
    | TaskCreated
    | TaskTransitioned
    | SignalEmitted
    | SignalProcessed
    | RepoRegistered
    | DaemonReloaded
    | DaemonStopping
    | Lagged
)


class _Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    pass


class Ping(_Command, tag="ping"):
    pass


class CreateTask(_Command, tag="create_task"):
    project: str
    name: str
    title: str = ""
    topic: str = ""
    content: str = ""


class TransitionTask(_Command, tag="transition_task"):
    project: str
    task: str
    event: str
    payload: str = ""


class SetTaskStatus(_Command, tag="set_task_status"):
    project: str
    task: str
    status: str
    reason: str = ""


class EmitSignal(_Command, tag="emit_signal"):
    project: str
    task: str
    signal_type: str
    payload: str = ""
    source: Literal["user", "agent"] = "agent"


Command = Ping | CreateTask | TransitionTask | SetTaskStatus | EmitSignal

_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(Event)
_command_decoder = msgspec.json.Decoder(Command)


def encode(message: msgspec.Struct) -> bytes:
    """JSON with the `"type"` tag: the wire form of an event or a command."""
    return _encoder.encode(message)


def decode_event(data: bytes | str) -> Event:
    """Decode an event; raises msgspec.ValidationError naming the field that does not fit."""
    return _event_decoder.decode(data)


def decode_command(data: bytes | str) -> Command:
    """Decode a command; raises msgspec.ValidationError naming the field that does not fit."""
    return _command_decoder.decode(data)
