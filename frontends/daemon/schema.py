"""The JSON of the control API: request and response bodies as frozen msgspec Structs, one schema for the
daemon that encodes them and the clients that read them. Imports msgspec only, so the CLI can use it.

Records the store already defines (`protocols.records`: Project, Task, Signal, AuditEvent, TransitionResult)
and the supervision snapshot (`SupervisorStats`) appear as they are, so the API, the CLI's `--json` and the
web admin share one schema; errors are always `ApiError`: `{"error": "what went wrong", "detail": "…"}`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from protocols.health import WriteFaults
from protocols.heart import HeartReport
from protocols.records import Project, Task, WaveTaskRecord

__all__ = [
    "API_VERSION",
    "ApiError",
    "DaemonStatus",
    "EmitSignal",
    "NewTask",
    "Payload",
    "Pong",
    "RegisterRepo",
    "ReloadReport",
    "Stopping",
    "TaskDetail",
    "TransitionRequest",
]

API_VERSION = "v1"


class ApiError(msgspec.Struct, frozen=True):
    """Every error of the API: `error` says what was wrong (and what to do), one line; `detail` adds what is
    known beyond it (the bytes a malformed request was refused for, the exception of an internal error), or
    is empty."""

    error: str
    detail: str = ""


class Pong(msgspec.Struct, frozen=True):
    """`GET /v1/ping`: the daemon is up and serving."""

    pid: int
    version: str


class DaemonStatus(msgspec.Struct, frozen=True):
    """`GET /v1/status`. `supervision` is the root supervisor's statistics (`SupervisorStats` as JSON), or
    None when the root did not answer in time; `started_at` is a UTC ISO stamp. `writes` says which of the
    daemon's writers cannot write now (a full disk) and what they dropped since the start; `heart` says what
    restarts the daemon if it dies (protocols/heart.py)."""

    pid: int
    version: str
    started_at: str
    uptime_s: float
    socket: str
    runtime_dir: str
    database: str
    repos: tuple[Project, ...]
    supervision: dict[str, Any] | None
    writes: WriteFaults = WriteFaults()
    heart: HeartReport | None = None


class RegisterRepo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/repos`: an absolute path inside a git work tree; its main repository's root is registered."""

    path: str


class ReloadReport(msgspec.Struct, frozen=True):
    """`POST /v1/reload` (and SIGHUP): how many repositories' configs were re-read, and each problem found
    (`<file>: <key>: <reason>`). Problems are reported, not fatal: the daemon keeps its previous settings."""

    source: str
    repos: int
    problems: tuple[str, ...] = ()


class Stopping(msgspec.Struct, frozen=True):
    """`POST /v1/shutdown`: the orderly shutdown has begun; the socket disappears, then the process exits."""

    pid: int
    status: str = "stopping"


# -- tasks, signals, the audit log (frontends/daemon/tasks.py) ----------------------------------------------

Payload = str | dict[str, Any] | None
"""A signal's or a transition's payload: free text (stored as `{"body": text}` for a lifecycle event), a JSON
object checked against the signal type's schema (`{"wave_number": 1, "task_number": 2}`), or none."""


class NewTask(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/repos/{project}/tasks`, as `corral task create`: `name` is a slug; the title defaults to the
    content's first `# ` heading, the branch to `corral/<name>`."""

    name: str
    title: str = ""
    topic: str = ""
    branch: str = ""
    content: str = ""


class TaskDetail(Task, frozen=True):
    """`GET /v1/repos/{project}/tasks/{name}`: the task's fields and its wave tasks, as the daemon last
    recorded them — the shape `corral task show --json` prints."""

    wave_tasks: tuple[WaveTaskRecord, ...] = ()


class TransitionRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/repos/{project}/tasks/{name}/transition`, as `corral task transition`: a lifecycle event
    (hyphens or underscores, aliases such as `review_changes`), sent as the user."""

    event: str
    payload: Payload = None


class EmitSignal(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/repos/{project}/signals`, as `corral signal emit` from a person's shell (source user)."""

    task: str
    signal_type: str
    payload: Payload = None
