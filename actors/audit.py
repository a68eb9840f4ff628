"""The AuditRecorder: every supervision, instance and daemon event that belongs in the audit log, as a row.

    ChildSpec.worker("audit", AuditRecorder, AuditConfig(db_path=db), AuditFeed())

It subscribes to the event hub (a bounded queue) and opens its own Store. When events arrive, the
subscription's `on_ready` tells it `Drain` (at most one queued at a time); a drain turns everything queued
into rows (`audit_row`, a pure function) and writes them in one transaction. What becomes a row, at which
level, is the table `_ROWS`; see docs/audit.md.

Not recorded here: `TaskCreated`, `TaskTransitioned`, `SignalEmitted` and `SignalProcessed`. The store writes
their audit rows itself, in the transaction that makes the change (docs/store.md), so recording them again
would duplicate every line.

Where a supervision event belongs is read from the supervisor's path: a segment `project:<name>`,
`task:<name>`, `instance:<title>` or `wave:<n>` names the project, task, instance or wave, and under a
Project the segment after `project:<name>` is an instance's title (`root/project:app/fix-login-coder`,
child `runtime`). A project name is resolved to its id through
the store; an unknown or empty name gives a row with no project (a machine-wide row).

Failures. An event that cannot be described (a bug, a foreign object on the bus) is logged and skipped: the
recorder never crashes on an odd event. A store error (a full disk, the database locked past the busy
timeout, a file that cannot be opened) does not crash it either: such a fault usually persists, and a
recorder that crashed on every write would restart into the same fault until the root supervisor gave up
and took the daemon down. Instead the recorder degrades: it says so once in the log and in `WriteHealth`
(shown by `corral daemon status`), keeps up to `backlog` rows in memory (dropping the oldest beyond that,
counted), and tries again every `retry_s`. When a write succeeds it says so, writes what it kept, and adds a
warn row saying how many rows were dropped and why. A bug (anything but a StoreError) still crashes it;
with an `AuditFeed` in its spec the subscription outlives the crash, and the next generation records what
was published meanwhile. A queue that overflowed is reported as a warn row ("audit lost N events").
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apsw
import msgspec
import pykka

from actors.clock import utc_stamp
from actors.eventbus import Subscription
from actors.health import WriteHealth
from actors.scheduler import TimerHandle
from actors.store import AuditEntry, Store
from actors.supervision import SupervisedActor
from actors.supervision.context import ChildContext
from protocols.errors import StoreError
from protocols.messages import (
    ChildExited,
    ChildRestarting,
    ChildStarted,
    ChildStartFailed,
    DaemonReloaded,
    DaemonStopping,
    ExitReason,
    InstanceNote,
    InstanceStatusChanged,
    Lagged,
    RepoRegistered,
    SupervisorEscalated,
    SupervisorGaveUp,
    encode,
)
from protocols.records import AuditLevel

__all__ = [
    "AuditConfig",
    "AuditFeed",
    "AuditRecorder",
    "AuditRow",
    "AuditStatistics",
    "Drain",
    "GetAuditStatistics",
    "audit_row",
]

log = logging.getLogger(__name__)

DEFAULT_QUEUE = 4096


class AuditConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Where the recorder writes, and how far it may fall behind.

    AuditConfig()                                   # the default database, a queue of 4096 events
    AuditConfig(db_path=tmp / "corral.db", maxsize=8)
    """

    db_path: Path | None = None  # default: actors.store.default_db_path()
    maxsize: int = DEFAULT_QUEUE  # events queued before the oldest are dropped (and counted)
    busy_timeout_ms: int = 5000
    retry_s: float = 5.0  # while the store cannot be written: how often to try again
    backlog: int = 1000  # while the store cannot be written: rows kept to write later (the oldest go first)

    def __post_init__(self) -> None:
        if self.maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {self.maxsize}")
        if self.retry_s <= 0:
            raise ValueError(f"retry_s must be > 0, got {self.retry_s}")
        if self.backlog < 0:
            raise ValueError(f"backlog must be >= 0, got {self.backlog}")


# -- the rows -----------------------------------------------------------------------------------------------


class AuditRow(msgspec.Struct, frozen=True, kw_only=True):
    """One row to write; `project` is a name, resolved to the project's id when written."""

    ts: float  # wall-clock seconds since the epoch; 0 = when written
    kind: str
    level: str
    message: str
    project: str = ""
    task: str = ""
    instance: str = ""
    wave: int | None = None
    detail: str = ""  # the event as JSON (protocols.messages.encode)


def audit_row(event: Any) -> AuditRow | None:
    """The audit row for `event`, or None when it does not belong in the audit log. Pure; may raise on an
    event whose fields are not what its type says (the recorder logs and skips it)."""
    describe = _ROWS.get(type(event))
    if describe is None:
        return None
    kind, level, message, where = describe(event)
    return AuditRow(
        ts=float(event.ts or 0.0),
        kind=kind,
        level=level if level in _LEVELS else AuditLevel.INFO.value,
        message=message,
        project=str(where.get("project", "")),
        task=str(where.get("task", "")),
        instance=str(where.get("instance", "")),
        wave=_wave(where.get("wave")),
        detail=encode(event).decode(),
    )


_LEVELS = frozenset(level.value for level in AuditLevel)
_Described = tuple[
    str, str, str, dict[str, str]
]  # kind, level, message, where (project, task, instance, wave)

# Reasons whose type only repeats what the message says ("AgentExited: exit status 137").
_PLAIN_REASONS = frozenset({"AgentExited", "AgentKilled", "AgentFailed"})
# Path segments that say where a supervisor belongs: `project:app`, `instance:fix-login-coder`.
_PLACES = ("project", "task", "instance", "wave")
# InstanceStatusChanged: the level of a status; any other is info.
_STATUS_LEVELS = {"waiting": "warn", "failed": "error"}


def _reason(reason: ExitReason) -> str:
    if reason.is_error and reason.error_type in _PLAIN_REASONS and reason.message:
        return reason.message
    return str(reason)


def _where(supervisor: str, child_id: str = "") -> dict[str, str]:
    """project/task/instance/wave named by the `kind:value` segments of a child's path. Under a Project
    (`root/project:app/fix-login`), a bare segment right after `project:<name>` is an instance's title."""
    found: dict[str, str] = {}
    after_project = False
    for segment in [*supervisor.split("/"), child_id]:
        kind, sep, value = segment.partition(":")
        if sep and kind in _PLACES and value:
            found[kind] = value
        elif segment and after_project:
            found.setdefault("instance", segment)
        after_project = sep != "" and kind == "project"
    return found


def _subject(supervisor: str, child_id: str) -> str:
    """How a child is named in a message: "runtime of fix-login-coder"; a child of the root by its path."""
    _, sep, last = supervisor.rpartition("/")
    if not sep:
        return f"{supervisor}/{child_id}"
    return f"{child_id} of {last.partition(':')[2] or last}"


def _wave(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _child_started(e: ChildStarted) -> _Described:
    what = "restarted" if e.restarted else "started"
    return (
        "child_started",
        "info",
        f"{_subject(e.supervisor, e.child_id)} {what}",
        _where(e.supervisor, e.child_id),
    )


def _child_exited(e: ChildExited) -> _Described:
    subject = _subject(e.supervisor, e.child_id)
    if e.reason.kind == "shutdown" and e.reason.message:  # it shut itself down: intensity, auto_shutdown
        then = "restarting" if e.restarting else f"not restarted (restart {e.restart_type})"
        return (
            "child_exited",
            "warn" if e.reason.error_type == "ReachedMaxRestartIntensity" else "info",
            f"{subject} shut down: {e.reason.message}; {then}",
            _where(e.supervisor, e.child_id),
        )
    if e.reason.kind == "shutdown":
        return (
            "child_exited",
            "info",
            f"{subject} stopped by its supervisor",
            _where(e.supervisor, e.child_id),
        )
    text = f"{subject} exited: {_reason(e.reason)}" if e.reason.is_error else f"{subject} exited normally"
    if e.restarting:
        text += "; restarting"
    else:
        text += f"; not restarted (restart {e.restart_type})"
    level = "info" if not e.reason.is_error else "warn" if e.restarting else "error"
    return "child_exited", level, text, _where(e.supervisor, e.child_id)


def _child_restarting(e: ChildRestarting) -> _Described:
    when = f"in {e.delay_s:.3g} s" if e.delay_s > 0 else "now"
    text = (
        f"{_subject(e.supervisor, e.child_id)} restarting {when} (attempt {e.attempt}): {_reason(e.reason)}"
    )
    return "child_restarting", "warn", text, _where(e.supervisor, e.child_id)


def _child_start_failed(e: ChildStartFailed) -> _Described:
    text = f"{_subject(e.supervisor, e.child_id)} failed to start: {_reason(e.reason)}"
    return "child_start_failed", "error", text, _where(e.supervisor, e.child_id)


def _gave_up(e: SupervisorGaveUp) -> _Described:
    text = (
        f"{e.supervisor} gave up: {e.restarts} restarts within {e.period_s:g} s; "
        f"last: {e.last_child}: {_reason(e.reason)}"
    )
    return "supervisor_gave_up", "error", text, _where(e.supervisor)


def _escalated(e: SupervisorEscalated) -> _Described:
    if e.reason.kind == "shutdown":  # past its intensity: its parent decides by its restart type
        text = f"{e.supervisor} shut down past its restart intensity, escalated to {e.parent}"
    else:
        text = f"{e.supervisor} failed, escalated to {e.parent}: {_reason(e.reason)}"
    return "supervisor_escalated", "error", text, _where(e.supervisor)


def _instance_status(e: InstanceStatusChanged) -> _Described:
    text = f"{e.instance}: {e.previous or 'new'} → {e.status}"
    if e.reason:
        text += f": {e.reason}"
    level = _STATUS_LEVELS.get(e.status, "info")
    return "instance_status", level, text, {"project": e.project, "instance": e.instance}


def _instance_note(e: InstanceNote) -> _Described:
    return (
        "instance_note",
        e.level,
        f"{e.instance}: {e.message}",
        {"project": e.project, "instance": e.instance},
    )


def _repo_registered(e: RepoRegistered) -> _Described:
    text = f"repository {e.root} registered as project {e.project}"
    return "repo_registered", "info", text, {"project": e.project}


def _daemon_reloaded(e: DaemonReloaded) -> _Described:
    repos = f"{e.repos} {'repository' if e.repos == 1 else 'repositories'}"
    if not e.problems:
        return "daemon_reloaded", "info", f"configuration reloaded ({e.source}): {repos}, no problems", {}
    problems = "; ".join(e.problems)
    text = f"configuration reloaded ({e.source}): {repos}, {len(e.problems)} problem(s): {problems}"
    return "daemon_reloaded", "warn", text, {}


def _daemon_stopping(e: DaemonStopping) -> _Described:
    return "daemon_stopping", "info", f"daemon stopping ({e.reason})", {}


def _lagged(e: Lagged) -> _Described:
    text = f"audit lost {e.missed} event{'s' if e.missed != 1 else ''} (the recorder fell behind)"
    return "audit_lagged", "warn", text, {}


_ROWS: dict[type, Callable[[Any], _Described]] = {
    ChildStarted: _child_started,
    ChildExited: _child_exited,
    ChildRestarting: _child_restarting,
    ChildStartFailed: _child_start_failed,
    SupervisorGaveUp: _gave_up,
    SupervisorEscalated: _escalated,
    InstanceStatusChanged: _instance_status,
    InstanceNote: _instance_note,
    RepoRegistered: _repo_registered,
    DaemonReloaded: _daemon_reloaded,
    DaemonStopping: _daemon_stopping,
    Lagged: _lagged,
}
"""Event type → (kind, level, message, where). Types not listed are not audited here."""


# -- the inbox ----------------------------------------------------------------------------------------------


class Drain(msgspec.Struct, frozen=True):
    """Events are queued: record them. Told by the subscription's `on_ready`, at most one queued."""


class GetAuditStatistics(msgspec.Struct, frozen=True):
    """Asked: replies AuditStatistics."""


class _Retry(msgspec.Struct, frozen=True):
    """The store could not be written: try again (the retry timer)."""


class AuditStatistics(msgspec.Struct, frozen=True):
    """What one generation of the recorder did, and how its queue stands."""

    drains: int  # transactions written
    recorded: int  # rows written
    skipped: int  # events that could not be described (logged)
    lost: int  # events dropped because the queue was full (each overflow is a warn row too)
    last_drain_ms: float
    queued_dropped: int  # the subscription's own count, across generations
    failing: bool = False  # the store cannot be written now: rows wait in the backlog
    waiting: int = 0  # rows in the backlog
    dropped: int = 0  # rows dropped because the store could not be written and the backlog was full


# -- the feed: what outlives one generation -----------------------------------------------------------------


class AuditFeed:
    """The recorder's subscription and its "a Drain is queued" flag, kept across the recorder's restarts.

    Put one in the recorder's child spec: the first generation subscribes, a crashed one leaves the
    subscription open, and the next picks it up with whatever was published meanwhile. Without it each
    generation subscribes anew, and what is published while the recorder is down is not recorded.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.subscription: Subscription | None = None
        self._ref: pykka.ActorRef[Any] | None = None
        self._queued = False

    def attach(self, ref: pykka.ActorRef[Any]) -> None:
        """A generation starts: it will be told Drain from now on, and is told one at once."""
        with self._lock:
            self._ref, self._queued = ref, True
        _tell(ref, Drain())

    def detach(self) -> None:
        with self._lock:
            self._ref = None

    def ready(self) -> None:
        """The subscription's on_ready (any thread): tell the current generation Drain, unless one is queued.

        A Drain told to a generation that is already dead clears the flag again: the next generation is
        told one by `attach`, so no wake-up is lost across a restart.
        """
        with self._lock:
            if self._queued or self._ref is None:
                return
            self._queued, ref = True, self._ref
        if not _tell(ref, Drain()):
            with self._lock:
                self._queued = False

    def taken(self) -> None:
        """A Drain is being handled: cleared *before* the queue is read, so an event arriving during the
        drain queues another Drain instead of being absorbed by this one."""
        with self._lock:
            self._queued = False

    def close(self) -> None:
        with self._lock:
            sub, self.subscription, self._ref = self.subscription, None, None
        if sub is not None:
            sub.close()


# -- the actor ----------------------------------------------------------------------------------------------


class AuditRecorder(SupervisedActor):
    """Writes audit rows for the events on the bus. Its own thread, its own Store connection."""

    def __init__(
        self,
        ctx: ChildContext,
        config: AuditConfig | None = None,
        feed: AuditFeed | None = None,
        health: WriteHealth | None = None,
    ) -> None:
        super().__init__(ctx)
        self.config = config or AuditConfig()
        self.feed = feed or AuditFeed()
        self.health = health or WriteHealth()
        self._keep_feed = feed is not None
        self._store: Store | None = None
        self._projects: dict[str, int] = {}
        self._drains = self._recorded = self._skipped = self._lost = 0
        self._last_drain_ms = 0.0
        self._crashed = False
        self._backlog: deque[AuditRow] = deque()
        self._failing = ""  # the store error while the store cannot be written, else ""
        self._dropped = 0  # rows dropped in this generation
        self._dropped_in_fault = 0  # rows dropped since the current fault began
        self._retry: TimerHandle | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------

    def started(self) -> None:
        env, cfg = self.ctx.env, self.config
        if env.hub is None:
            raise ValueError("AuditRecorder needs an environment with an EventHub (SupervisionEnv.create())")
        try:
            self._open()
        except StoreError as exc:  # a full disk, a locked database: start degraded, retry on the timer
            self._degrade(exc)
        if self.feed.subscription is None:
            self.feed.subscription = env.hub.subscribe(maxsize=cfg.maxsize, on_ready=self.feed.ready)
        self.feed.attach(self.actor_ref)  # the first Drain: what was queued while no generation ran

    def crashed(self, exc: BaseException) -> None:
        self._crashed = True

    def stopping(self) -> None:
        self.feed.detach()
        orderly = self.ctx.handle.shutdown_requested and not self._crashed
        try:
            if orderly:
                self._record_queued(force=True)  # the last events (DaemonStopping): best effort
            if self._backlog:
                log.warning(
                    "%s: %d audit row(s) could not be written before the stop: %s",
                    self.ctx.path,
                    len(self._backlog),
                    self._failing or "the recorder crashed",
                )
                self.health.dropped_audit_rows(len(self._backlog))
        except Exception:
            log.exception("%s: could not record the last audit events", self.ctx.path)
        finally:
            if self._retry is not None:
                self._retry.cancel()
            # Kept open across a crash or a failed start, so that the next generation records what waits in
            # it; closed on an orderly stop, or when no AuditFeed outlives this generation.
            if orderly or not self._keep_feed:
                self.feed.close()
            if self._store is not None:
                self._store.close()
                self._store = None

    # -- messages -------------------------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        match message:
            case Drain():
                self.feed.taken()
                self._record_queued()
            case _Retry():
                self._retry = None
                self._record_queued(force=True)
            case GetAuditStatistics():
                return self.statistics()
            case _:
                return super().on_receive(message)
        return None

    def statistics(self) -> AuditStatistics:
        sub = self.feed.subscription
        return AuditStatistics(
            drains=self._drains,
            recorded=self._recorded,
            skipped=self._skipped,
            lost=self._lost,
            last_drain_ms=self._last_drain_ms,
            queued_dropped=sub.dropped if sub is not None else 0,
            failing=bool(self._failing),
            waiting=len(self._backlog),
            dropped=self._dropped,
        )

    # -- recording ------------------------------------------------------------------------------------------

    def _record_queued(self, *, force: bool = False) -> None:
        """Turn what is queued into rows and write them with whatever waits in the backlog. While the store
        cannot be written, only the retry timer (`force`) tries: a drain just adds to the backlog."""
        sub = self.feed.subscription
        if sub is not None:
            self._backlog.extend(row for event in sub.drain() if (row := self._row(event)) is not None)
        self._trim()
        if (self._failing and not force) or (not self._failing and not self._backlog):
            return
        start = time.perf_counter()
        rows = list(self._backlog)
        try:
            if self._store is None:
                self._open()
            if rows:
                self._write(rows)
        except StoreError as exc:
            self._degrade(exc)
            return
        self._backlog.clear()
        if rows:
            self._last_drain_ms = (time.perf_counter() - start) * 1000
            self._drains += 1
            self._recorded += len(rows)
        if self._failing:
            self._recover()

    def _open(self) -> None:
        cfg = self.config
        self._store = Store.open(cfg.db_path, clock=self.ctx.env.clock, busy_timeout_ms=cfg.busy_timeout_ms)

    def _trim(self) -> None:
        """While the store cannot be written, keep at most `backlog` rows waiting: the oldest go first."""
        if not self._failing:
            return
        excess = len(self._backlog) - self.config.backlog
        if excess > 0:
            for _ in range(excess):
                self._backlog.popleft()
            self._dropped += excess
            self._dropped_in_fault += excess
            self.health.dropped_audit_rows(excess)

    def _degrade(self, exc: StoreError) -> None:
        """The store cannot be written: say so once, keep the rows, try again in `retry_s`."""
        if not self._failing:
            log.warning(
                "%s: %s; keeping up to %d audit rows in memory and dropping older ones until it can be "
                "written (trying again every %g s)",
                self.ctx.path,
                exc,
                self.config.backlog,
                self.config.retry_s,
            )
        self._failing = str(exc)
        self.health.failing("audit", exc)
        self._trim()
        scheduler = self.ctx.env.scheduler
        if self._retry is None and scheduler is not None:
            self._retry = scheduler.call_later(
                self.config.retry_s, functools.partial(_tell, self.actor_ref, _Retry())
            )

    def _recover(self) -> None:
        """A write succeeded after a fault: say so, and leave a row saying what was dropped meanwhile."""
        problem, dropped = self._failing, self._dropped_in_fault
        self._failing, self._dropped_in_fault = "", 0
        self.health.recovered("audit")
        log.warning(
            "%s: the audit log is written again; %d row(s) were dropped meanwhile", self.ctx.path, dropped
        )
        if dropped:
            row = AuditRow(
                ts=time.time(),
                kind="audit_dropped",
                level="warn",
                message=f"audit dropped {dropped} row{'s' if dropped != 1 else ''} while the database "
                f"could not be written: {problem}",
            )
            self._backlog.append(row)
            self._record_queued()

    def _row(self, event: Any) -> AuditRow | None:
        if isinstance(event, Lagged):
            self._lost += event.missed
        try:
            return audit_row(event)
        except Exception:
            self._skipped += 1
            log.exception("%s: cannot describe %r for the audit log; skipped", self.ctx.path, event)
            return None

    def _write(self, rows: list[AuditRow]) -> None:
        """All rows in one transaction. A project deleted since its id was cached fails the foreign key:
        the ids are looked up again and the transaction retried once."""
        try:
            self._insert(rows)
        except apsw.ConstraintError:
            self._projects.clear()
            self._insert(rows)

    def _insert(self, rows: list[AuditRow]) -> None:
        store = self._require_store()
        ids = self._project_ids({row.project for row in rows if row.project})
        store.record_audit_many(
            [
                AuditEntry(
                    ts=_stamp(row.ts) if row.ts > 0 else "",
                    project_id=ids.get(row.project),
                    kind=row.kind,
                    level=row.level,
                    message=row.message,
                    task=row.task,
                    instance=row.instance,
                    wave=row.wave,
                    detail=row.detail,
                )
                for row in rows
            ]
        )

    def _project_ids(self, names: set[str]) -> dict[str, int]:
        """Project name → id; a name the cache does not know re-reads the projects (once per drain)."""
        if names - self._projects.keys():
            self._projects = {p.name: p.id for p in self._require_store().list_projects()}
        return {name: self._projects[name] for name in names if name in self._projects}

    def _require_store(self) -> Store:
        if self._store is None:
            raise StoreError(f"{self.ctx.path}: the store is not open")
        return self._store


def _stamp(ts: float) -> str:
    try:
        return utc_stamp(datetime.fromtimestamp(ts, UTC))
    except (OverflowError, OSError, ValueError):
        return utc_stamp(datetime.now(UTC))


def _tell(ref: pykka.ActorRef[Any], message: Any) -> bool:
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        return False
    return True
