"""What the store holds, as frozen Structs: projects, tasks, signals, audit events, outbox items, wave tasks.

These are also the JSON of the HTTP API, so every field is a plain value: statuses are strings, a
timestamp is a fixed-width ISO UTC string (`actors.clock.utc_stamp`) or "" when the thing never happened, and
JSON carried inside a record (a signal's payload, an audit event's detail) stays a string, decoded only by
whoever needs it.

    store.get_task(project.id, "auth-flow").display_status   # "planned" when ready with phase planned

Task names are slugs; `task_name()` is the one rule every frontend and the store agree on.
"""

from __future__ import annotations

import enum
import re

import msgspec

from protocols.errors import TooLargeError, UsageError
from protocols.fsm import Transition, shown_status

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_CONTENT_BYTES",
    "MAX_TASK_NAME",
    "AuditEvent",
    "AuditLevel",
    "InstanceRecord",
    "OutboxItem",
    "OutboxStatus",
    "Project",
    "Signal",
    "SignalOutcome",
    "SignalStatus",
    "Task",
    "TaskSummary",
    "TransitionResult",
    "WaveProgress",
    "WaveTaskRecord",
    "WaveTaskStatus",
    "check_content_size",
    "default_task_title",
    "task_name",
]

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
"""The integers the store keeps (SQLite's); a number beyond them is refused where it enters, not by an
OverflowError at the write."""

MAX_TASK_NAME = 100
MAX_CONTENT_BYTES = 1024 * 1024
"""A task's content (its plan) and a signal's payload are at most this many bytes of UTF-8, as API bodies."""
_TASK_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


def default_task_title(content: str) -> str:
    """A task's title when none is given: its content's first `# ` heading ("" if it has none). One rule for
    `corral task create`, `corral task register` and the API."""
    for line in content.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return ""


def check_content_size(text: str, what: str) -> None:
    """TooLargeError naming `what` when `text` is over MAX_CONTENT_BYTES of UTF-8. (Cheap: a str of at most
    MAX_CONTENT_BYTES / 4 characters cannot be over, and is not encoded.)"""
    if len(text) * 4 <= MAX_CONTENT_BYTES:
        return
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_CONTENT_BYTES:
        raise TooLargeError(what, size, MAX_CONTENT_BYTES)


def task_name(text: str) -> str:
    """Return the canonical task name for `text` (a trailing ".md" is dropped), or raise UsageError.

    A name is a slug: lowercase letters, digits, ".", "_" and "-", starting with a letter or a digit, at most
    100 characters. It names the branch, the worktree and the tmux session, so it must be safe in all three.
    """
    name = text.strip()
    name = name.removesuffix(".md")
    if len(name) > MAX_TASK_NAME or not _TASK_NAME.fullmatch(name):
        raise UsageError(
            f'invalid task name "{text}": use lowercase letters, digits, ".", "_" and "-", starting with a '
            f"letter or a digit, at most {MAX_TASK_NAME} characters (e.g. auth-flow)"
        )
    return name


class SignalStatus(enum.StrEnum):
    """pending → processing → done | failed; `apply_next` goes from pending to done | failed in one step."""

    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class WaveTaskStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"


class AuditLevel(enum.StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


class Project(msgspec.Struct, frozen=True):
    """A repository corral has run in; `name` is unique (the root's basename, then name-2, name-3…)."""

    id: int
    name: str
    root: str
    created_at: str


class TaskWaiting(msgspec.Struct, frozen=True, kw_only=True):
    """Why a task cannot go on without a person, and the exact commands that answer it.

    `kind` says what it waits on (`wave_decision`, `wave_confirmation`, `review_limit`, `review_fix_off`,
    `plan_unreadable`, `start_failed`, `agent_ended`, `agent_idle`, `agent_waiting`); `agent` names the
    instance concerned, if one is; `since` is when it began (the store's clock)."""

    reason: str
    commands: tuple[str, ...] = ()
    kind: str = ""
    agent: str = ""
    since: str = ""


class Task(msgspec.Struct, frozen=True):
    """A unit of work moving through the lifecycle of `protocols.fsm`. A `<status>_at` stamp is the last time
    the task entered that status ("" if never). `waiting` is set while it waits for a person (and cleared
    by its next transition)."""

    id: int
    project_id: int
    name: str
    title: str
    status: str
    phase: str
    topic: str
    branch: str
    content: str
    review_cycle: int
    latest_feedback: str
    created_at: str
    updated_at: str
    ready_at: str
    planning_at: str
    implementing_at: str
    reviewing_at: str
    verifying_at: str
    done_at: str
    cancelled_at: str
    waiting: TaskWaiting | None = None

    @property
    def display_status(self) -> str:
        """The status as people read it: "planned" for a ready task whose plan is written (`shown_status`)."""
        return shown_status(self.status, self.phase)


class WaveProgress(msgspec.Struct, frozen=True):
    """A task's current wave as lists show it ("W2 3/5"): wave `wave` of `waves`; of its `total` tasks,
    `done` complete and `failed` failed. The current wave is the last one with a task that ever started."""

    wave: int
    waves: int
    done: int
    total: int
    failed: int = 0


class TaskSummary(msgspec.Struct, frozen=True):
    """A task as lists show it: every field of `Task` but its content, which is only its size here
    (`content_bytes`, UTF-8). A list of tasks never carries their plans; `get_task` does."""

    id: int
    project_id: int
    name: str
    title: str
    status: str
    phase: str
    topic: str
    branch: str
    content_bytes: int
    review_cycle: int
    latest_feedback: str
    created_at: str
    updated_at: str
    ready_at: str
    planning_at: str
    implementing_at: str
    reviewing_at: str
    verifying_at: str
    done_at: str
    cancelled_at: str
    waiting: TaskWaiting | None = None
    wave: WaveProgress | None = None
    """Its current wave (None: its plan has no waves, or none has started)."""

    @property
    def display_status(self) -> str:
        """The status as people read it: "planned" for a ready task whose plan is written (`shown_status`)."""
        return shown_status(self.status, self.phase)


class Signal(msgspec.Struct, frozen=True):
    """A durable request to move a task, applied exactly once. `payload` is canonical JSON or ""; `result`
    says what applying it did ("ready → planning") or why it failed."""

    id: int
    project_id: int
    task: str
    signal_type: str
    payload: str
    source: str
    status: str
    result: str
    created_at: str
    claimed_by: str
    claimed_at: str
    processed_at: str
    attempts: int


class AuditEvent(msgspec.Struct, frozen=True):
    """One line of the audit log. Applying a signal writes exactly one event carrying its `signal_id`."""

    id: int
    ts: str
    project_id: int | None
    kind: str
    level: str
    message: str
    task: str
    instance: str
    wave: int | None
    signal_id: int | None
    detail: str


class OutboxItem(msgspec.Struct, frozen=True):
    """A side effect decided in a transaction and performed after it commits; `key` makes it idempotent."""

    id: int
    key: str
    project_id: int
    task: str
    kind: str
    payload: str
    status: str
    attempts: int
    last_error: str
    created_at: str
    done_at: str
    signal_id: int | None


class WaveTaskRecord(msgspec.Struct, frozen=True):
    """One task of a wave of a task's plan; `task_number` is unique within the plan."""

    id: int
    task_id: int
    wave_number: int
    task_number: int
    title: str
    status: str
    instance: str
    attempts: int
    updated_at: str


class SignalOutcome(msgspec.Struct, frozen=True):
    """What applying a signal did: its final row, whether it applied, the FSM transition (None for a wave
    signal or a failure) and, when it failed, why."""

    signal: Signal
    applied: bool
    transition: Transition | None
    reason: str


class TransitionResult(msgspec.Struct, frozen=True):
    task: Task
    transition: Transition


class InstanceRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What the store keeps of one instance (an agent), so a restarted daemon can bring it back.

    The spec essentials (how it was asked for: `program`, `mode`, `prompt`, `worktree_mode`…), where it runs
    (`branch`, `worktree_path`, `session`), and its last known state (`status`, `reason`, `restarts`, `pid`,
    and for sdk agents the conversation `sdk_session_id`). Written by the Instance at its start and at every
    status change; `(project, title)` is unique.
    """

    project: str
    title: str
    program: str = ""
    mode: str = "tmux"
    prompt: str = ""
    task: str = ""
    agent_type: str = ""
    wave: int | None = None  # the wave of a wave task's agent (CORRAL_WAVE)
    branch: str = ""
    worktree_mode: str = ""  # own | branch | shared | none ("" before it was recorded: own)
    worktree_path: str = ""
    base_commit: str = ""
    session: str = ""
    resource_profile: str = ""
    sdk_session_id: str = ""
    status: str = ""
    reason: str = ""
    restarts: int = 0
    pid: int | None = None
    worked: bool = False  # the agent was seen working (after its prompt); see actors/instance.py
    attempt_key: str = ""  # a wave task's agent: `<task's implementing_at>#<attempt>` (actors/waves.py)
    created_at: str = ""
    updated_at: str = ""
