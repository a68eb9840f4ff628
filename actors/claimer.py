"""The SignalClaimer: applies the store's pending signals exactly once, milliseconds after they are committed.

    ChildSpec.worker("signals", SignalClaimer, ClaimerConfig(on_applied="root/tasks"))

It learns of new signals three ways, fastest first:

- a **poke** on the wake socket (`actors/wake.py`), sent by whoever committed a signal: `corral signal emit`,
  the API, a UI. The listener thread tells the claimer `Wake`; a burst of pokes is one `Wake`;
- the **fallback tick**, every `tick_s` (1 s): `PRAGMA data_version` says whether any other connection has
  committed since the last look, and only then is the queue read. It covers emitters that cannot poke (an
  older client, a poke sent while the daemon restarted);
- **start-up**: every signal emitted while no claimer ran is pending, and the first drain applies it.

A drain is `store.apply_pending(claimer_id, limit=batch)`: claim, apply (FSM transition, audit row, outbox
items) and finish up to `batch` signals in one transaction, so each signal takes effect exactly once even if
the daemon is killed at any instant (docs/store.md). A full batch is followed by a message to itself rather
than a loop, so a stop or a statistics request is served between batches of a long queue. Each outcome is
published (`SignalProcessed`, and `TaskTransitioned` for a lifecycle move) and the applied ones are handed to
`on_applied`: whoever performs their outbox items (spawn a planner, start a wave).

Legacy sentinel files (`actors/sentinels.py`) are bridged into the table on every wake and tick, for every
repository in `repos`; the files a killed bridge left in `processing/` are recovered the first time a
repository is seen.

Lost wake-ups, and why there are none:

- the wake socket is bound in `started()`, before the first drain is even queued: a signal committed before
  the bind is found by that drain, one committed after it pokes the listener;
- the "a Wake is queued" flag is cleared when the `Wake` is handled, *before* the drain reads the queue: a
  poke arriving during the drain queues another `Wake` instead of being absorbed by the one running;
- `data_version` is read *before* draining: a commit landing during the drain changes the version the next
  tick compares with. (It is read on a connection of its own, so the claimer's own commits change it too:
  the tick after a busy one reads an empty queue once. The price of not reaching into the Store.)

Failures. A signal that cannot apply (a payload an old client stored, a user-only event from an agent, a
transition that does not fit) is an outcome: `failed`, with the reason, never an exception. A store error
(a full disk, the database locked past the busy timeout) is not raised out of the handler: it usually
persists, and a claimer that crashed on it would restart into it until the root supervisor gave up and took
the daemon down. The claimer says so once (the log, `WriteHealth`), and its timers go on: every tick looks
at the queue again, and the first drain that commits ends the fault (it says so too). The signals whose
transaction rolled back are still pending; nothing is lost. Claims that other claimers left `processing`
when they died are requeued every `requeue_every_s` (`apply_pending` itself never leaves one).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import apsw
import msgspec
import pykka

from actors.health import WriteHealth
from actors.scheduler import TimerHandle
from actors.sentinels import BridgeResult, bridge, recover_in_flight, scan
from actors.store import Store
from actors.store.db import connect
from actors.supervision import SupervisedActor
from actors.supervision.context import ChildContext
from actors.wake import WakeListener, WakeStatistics
from protocols.errors import CorralError, NotFoundError, StoreError
from protocols.messages import SignalProcessed, TaskTransitioned
from protocols.records import SignalOutcome

__all__ = [
    "ClaimerConfig",
    "ClaimerStatistics",
    "GetClaimerStatistics",
    "OutboxReady",
    "SignalClaimer",
    "Wake",
]

log = logging.getLogger(__name__)


class ClaimerConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How a SignalClaimer finds its work.

        ClaimerConfig()                                     # the daemon: default database, socket, projects
        ClaimerConfig(db_path=tmp / "corral.db", wake_path=tmp / "wake.sock", repos=[(1, repo)])

    `repos` lists the (project id, repository root) pairs whose sentinel files are bridged: a sequence, a
    callable returning one (asked on every scan), or None for every project in the store. `on_applied` is
    told about applied signals: an actor path (it is told `OutboxReady`) or a callable (called on the
    claimer's thread with the outcomes; it must be quick), or None. An ActorRef works too, but a path is
    better: a restart of that actor makes a new ref, and the path follows it.
    """

    db_path: Path | None = None  # default: actors.store.default_db_path()
    wake_path: Path | None = None  # default: actors.wake.wake_socket_path()
    listen: bool = True  # bind the wake socket; False: tick only
    tick_s: float = 1.0
    requeue_every_s: float = 30.0
    stale_after_s: float = 60.0  # a claim older than this is presumed dead
    batch: int = 100
    repos: Any = None  # Sequence[(project_id, root)] | Callable[[], Iterable[(project_id, root)]] | None
    on_applied: Any = None  # str (actor path) | pykka.ActorRef | Callable[[tuple[SignalOutcome, ...]], None]
    settle_s: float = 0.2  # a sentinel younger than this may still be being written: next scan
    busy_timeout_ms: int = 5000
    claimer_id: str = ""  # default: claimer:<pid>:<actor path>#<generation>

    def __post_init__(self) -> None:
        if self.tick_s <= 0 or self.requeue_every_s <= 0:
            raise ValueError("tick_s and requeue_every_s must be > 0")
        if self.stale_after_s <= 0:
            raise ValueError(f"stale_after_s must be > 0, got {self.stale_after_s}")
        if self.batch < 1:
            raise ValueError(f"batch must be at least 1, got {self.batch}")


# -- the claimer's inbox -----------------------------------------------------------------------------------


class Wake(msgspec.Struct, frozen=True):
    """Look at the queue (and the sentinel files) now. Told by the wake listener, or by anyone who has just
    committed a signal in this process."""


class GetClaimerStatistics(msgspec.Struct, frozen=True):
    """Asked: replies ClaimerStatistics."""


class _Tick(msgspec.Struct, frozen=True):
    pass


class _Requeue(msgspec.Struct, frozen=True):
    pass


class _Continue(msgspec.Struct, frozen=True):
    """The last batch was full: drain on, after whatever else is in the inbox."""


# -- what it tells and answers -----------------------------------------------------------------------------


class OutboxReady(msgspec.Struct, frozen=True):
    """Signals were applied: their outbox items (side effects) are waiting in the store to be performed."""

    outcomes: tuple[SignalOutcome, ...]


class ClaimerStatistics(msgspec.Struct, frozen=True):
    """A snapshot of a claimer's work since its start (one generation)."""

    claimer_id: str
    wakes: int  # Wake messages handled: a burst of pokes is one
    ticks: int
    idle_ticks: int  # ticks that found nothing committed since the last look, and read nothing
    drains: int  # apply_pending transactions
    applied: int
    failed: int
    requeued: int
    sentinels_bridged: int
    sentinels_duplicate: int  # found already emitted by a bridge that was killed before deleting the file
    sentinels_failed: int
    last_drain_ms: float
    wake: WakeStatistics | None


class _Counts(msgspec.Struct):
    """The counters of ClaimerStatistics, kept on the claimer's thread."""

    wakes: int = 0
    ticks: int = 0
    idle_ticks: int = 0
    drains: int = 0
    applied: int = 0
    failed: int = 0
    requeued: int = 0
    sentinels_bridged: int = 0
    sentinels_duplicate: int = 0
    sentinels_failed: int = 0


class SignalClaimer(SupervisedActor):
    """Applies pending signals and bridges sentinel files. Its own thread, its own connections."""

    def __init__(
        self, ctx: ChildContext, config: ClaimerConfig | None = None, health: WriteHealth | None = None
    ) -> None:
        super().__init__(ctx)
        self.config = config or ClaimerConfig()
        self.health = health or WriteHealth()
        self.claimer_id = self.config.claimer_id or f"claimer:{os.getpid()}:{ctx.path}#{ctx.generation}"
        self._store: Store | None = None
        self._watch: apsw.Connection | None = None
        self._listener: WakeListener | None = None
        self._timers: dict[str, TimerHandle] = {}
        self._seen_version: int | None = None
        self._wake_queued = False
        self._flag = threading.Lock()
        self._recovered: set[Path] = set()
        self._projects: dict[int, str] = {}
        self._counts = _Counts()
        self._last_drain_ms = 0.0

    # -- lifecycle ------------------------------------------------------------------------------------------

    def started(self) -> None:
        cfg = self.config
        self._guarded(self._open)  # a store that cannot be opened now is opened by a later tick
        if cfg.listen:  # bound before the first drain is queued: see "Lost wake-ups" above
            self._listener = WakeListener(self._poked, cfg.wake_path).start()
        self._tell_self(_Requeue())
        self._tell_self(Wake())
        self._schedule("tick", cfg.tick_s, _Tick())

    def stopping(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- messages -------------------------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        match message:
            case Wake():
                with self._flag:
                    self._wake_queued = False
                self._counts.wakes += 1
                self._guarded(self._wake)
            case _Continue():
                self._guarded(lambda: self._drain(continued=True))
            case _Tick():
                self._schedule("tick", self.config.tick_s, _Tick())  # first: a failed tick must not end them
                self._guarded(self._on_tick)
            case _Requeue():
                self._schedule("requeue", self.config.requeue_every_s, _Requeue())
                self._guarded(self._on_requeue)
            case GetClaimerStatistics():
                return self.statistics()
            case _:
                return super().on_receive(message)
        return None

    def _guarded(self, work: Any) -> None:
        """Run `work`; a store error degrades the claimer (see "Failures") instead of crashing it."""
        drains = self._counts.drains
        try:
            work()
        except StoreError as exc:
            self._seen_version = None  # the next tick drains again, whether or not anyone commits
            if self.health.failing("signals", exc):
                log.warning(
                    "%s: %s; signals wait in the queue, trying again every %g s",
                    self.claimer_id,
                    exc,
                    self.config.tick_s,
                )
            return
        if self._counts.drains > drains and self.health.is_failing("signals"):  # a drain committed
            self.health.recovered("signals")
            log.warning("%s: the database can be written again; applying signals", self.claimer_id)

    def _wake(self) -> None:
        self._bridge_sentinels()
        self._drain()

    def statistics(self) -> ClaimerStatistics:
        wake = self._listener.statistics() if self._listener is not None else None
        counts = msgspec.structs.asdict(self._counts)
        return ClaimerStatistics(
            claimer_id=self.claimer_id, last_drain_ms=self._last_drain_ms, wake=wake, **counts
        )

    def _poked(self) -> None:
        """The wake listener heard pokes (its thread): queue one Wake unless one is queued already."""
        with self._flag:
            if self._wake_queued:
                return
            self._wake_queued = True
        self._tell_self(Wake())

    def _on_tick(self) -> None:
        self._counts.ticks += 1
        bridged = self._bridge_sentinels()
        if bridged or self._data_version() != self._seen_version:
            self._drain()
        else:
            self._counts.idle_ticks += 1

    def _on_requeue(self) -> None:
        store = self._require_store()
        requeued = store.requeue_stale(self.config.stale_after_s)
        self._counts.requeued += requeued
        if requeued:
            log.warning("%s: requeued %d signal(s) claimed by a claimer that died", self.claimer_id, requeued)
            self._drain()

    # -- draining -------------------------------------------------------------------------------------------

    def _drain(self, *, continued: bool = False) -> None:
        """Apply one batch; a full batch asks for another after whatever else is in the inbox.

        `data_version` is read before the first batch of a run only: a commit after that read already makes
        the next tick look again, and on a long queue the read costs a tenth of a batch.
        """
        store = self._require_store()
        if not continued:
            self._seen_version = self._data_version()  # before reading the queue: see "Lost wake-ups"
        start = time.perf_counter()
        outcomes = store.apply_pending(self.claimer_id, limit=self.config.batch)
        self._last_drain_ms = (time.perf_counter() - start) * 1000
        self._counts.drains += 1
        if outcomes:
            self._publish(outcomes)
        if len(outcomes) >= self.config.batch:
            self._tell_self(_Continue())

    def _data_version(self) -> int:
        self._require_store()
        assert self._watch is not None
        try:
            return int(self._watch.execute("PRAGMA data_version").get)
        except apsw.Error as exc:
            raise StoreError(f"cannot read the corral database {self._require_store().path}: {exc}") from exc

    def _publish(self, outcomes: list[SignalOutcome]) -> None:
        env = self.ctx.env
        ts = env.clock.now().timestamp()
        events: list[Any] = []
        for outcome in outcomes:
            signal = outcome.signal
            project = self._project_name(signal.project_id)
            if outcome.applied:
                self._counts.applied += 1
            else:
                self._counts.failed += 1
            events.append(
                SignalProcessed(
                    project=project,
                    task=signal.task,
                    signal_id=signal.id,
                    signal_type=signal.signal_type,
                    status="done" if outcome.applied else "failed",
                    result=signal.result,
                    ts=ts,
                )
            )
            change = outcome.transition
            if change is not None:
                events.append(
                    TaskTransitioned(
                        project=project,
                        task=signal.task,
                        from_status=str(change.from_status),
                        event=str(change.event),
                        to_status=str(change.to_status),
                        source=signal.source,
                        signal_id=signal.id,
                        ts=ts,
                    )
                )
        env.publish_many(events)
        applied = tuple(o for o in outcomes if o.applied)
        if applied:
            self._notify(applied)

    def _notify(self, applied: tuple[SignalOutcome, ...]) -> None:
        target = self.config.on_applied
        if target is None:
            return
        if isinstance(target, str):
            # Nobody there (a restart in progress): the outbox items wait in the store all the same.
            self.ctx.env.directory.tell(target, OutboxReady(applied))
            return
        if isinstance(target, pykka.ActorRef):
            _tell(target, OutboxReady(applied))
            return
        try:
            target(applied)
        except Exception:
            log.exception("%s: on_applied hook %r failed", self.claimer_id, target)

    def _project_name(self, project_id: int) -> str:
        name = self._projects.get(project_id)
        if name is None:
            self._projects = {p.id: p.name for p in self._require_store().list_projects()}
            name = self._projects.get(project_id, str(project_id))
        return name

    # -- sentinels ------------------------------------------------------------------------------------------

    def _repos(self) -> list[tuple[int, Path]]:
        repos = self.config.repos
        if repos is None:
            return [(p.id, Path(p.root)) for p in self._require_store().list_projects()]
        if callable(repos):
            repos = repos()
        return [(int(project_id), Path(root)) for project_id, root in repos]

    def _bridge_sentinels(self) -> int:
        """Bridge every sentinel file of every repository; the number of signals emitted."""
        store = self._require_store()
        emitted = 0
        for project_id, root in self._repos():
            results: list[BridgeResult] = []
            try:
                if root not in self._recovered:
                    results.extend(recover_in_flight(store, project_id, root))
                    self._recovered.add(root)
                for sentinel in scan(root, settle_s=self.config.settle_s):
                    results.append(bridge(store, project_id, sentinel))
            except (OSError, CorralError) as exc:
                if isinstance(exc, StoreError):
                    raise
                # One repository's unreadable directory must neither stop the others nor crash-loop the
                # claimer; what was bridged before the error still counts.
                log.warning("%s: sentinels of %s: %s", self.claimer_id, root, exc)
            emitted += self._count_sentinels(store, project_id, results)
        return emitted

    def _count_sentinels(self, store: Store, project_id: int, results: list[BridgeResult]) -> int:
        emitted = 0
        for result in results:
            if result.status == "bridged":
                self._counts.sentinels_bridged += 1
                emitted += 1
            elif result.status == "duplicate":
                self._counts.sentinels_duplicate += 1
            elif result.status == "failed":
                self._counts.sentinels_failed += 1
                where = result.failed_path or result.sentinel.path
                try:
                    store.record_audit(
                        project_id,
                        "sentinel_failed",
                        f"sentinel {result.sentinel.where} moved to {where}: {result.reason}",
                        task=result.sentinel.task,
                        level="warn",
                        detail={"sentinel": result.sentinel.where, "reason": result.reason},
                    )
                except NotFoundError:
                    pass  # the project was deleted meanwhile: the .reason file is the record
        return emitted

    # -- plumbing -------------------------------------------------------------------------------------------

    def _open(self) -> Store:
        cfg = self.config
        store = Store.open(cfg.db_path, clock=self.ctx.env.clock, busy_timeout_ms=cfg.busy_timeout_ms)
        try:
            self._watch = connect(store.path, busy_timeout_ms=cfg.busy_timeout_ms)
        except BaseException:
            store.close()
            raise
        self._store = store
        return store

    def _require_store(self) -> Store:
        """The store, opened now if it could not be before (StoreError, handled by `_guarded`, if not)."""
        return self._store if self._store is not None else self._open()

    def _tell_self(self, message: Any) -> None:
        _tell(self.actor_ref, message)

    def _schedule(self, name: str, delay_s: float, message: Any) -> None:
        scheduler = self.ctx.env.scheduler
        if scheduler is None:
            return
        previous = self._timers.pop(name, None)
        if previous is not None:
            previous.cancel()
        self._timers[name] = scheduler.call_later(delay_s, functools.partial(_tell, self.actor_ref, message))


def _tell(ref: pykka.ActorRef[Any], message: Any) -> None:
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        pass
