"""The composition root: what one daemon process is made of, started in order and stopped in reverse.

    daemon = Daemon(DaemonConfig.load(paths))
    daemon.start()                      # the supervision tree (root_children), the store thread, the API
    code = daemon.run_until_stopped()   # on the main thread: reloads, until a stop or the root's failure
    daemon.stop()                       # the API first, then the tree (children in reverse start order)

The root supervisor's children come from `root_children(config)`: the place a new always-running actor is
added, as one line (actors/ never imports frontends/, so it is here that frontends' actors meet the tree).
`Daemon(config, extra_children=...)` appends more, which is how a test runs a daemon with an actor of its own.

The control server is not a child of the tree: it reports on the tree, must outlive any restart inside it,
and must stop *before* it — a request in flight asking the root for statistics while the root is busy
stopping the server would otherwise wait on itself. It is started after the tree is up and stopped first.

Threads: the main thread runs `run_until_stopped()` and is the only one that stops anything. Requests reach
it through a `queue.SimpleQueue`, whose `put` is safe to call from a signal handler (it takes no lock a
handler could find already held by the thread it interrupted). The store is used from one thread of its
own (apsw connections belong to one thread); the API waits on the futures of both, never on a pykka one.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pykka

from actors.board import InstanceBoard
from actors.clock import utc_stamp
from actors.eventbus import EventBus, EventHub
from actors.health import WriteHealth
from actors.store import Store
from actors.supervision import (
    BackoffSpec,
    ChildSpec,
    GetStatistics,
    Strategy,
    SupervisionTree,
    SupervisorFlags,
    SupervisorStats,
    observe,
)
from frontends.daemon.api import DaemonInfo, make_app
from frontends.daemon.branches import BranchDesk
from frontends.daemon.chaos import add_chaos_routes
from frontends.daemon.config import DaemonConfig, check_repo_configs
from frontends.daemon.heartlink import HeartLink
from frontends.daemon.instances import InstanceDesk
from frontends.daemon.logsink import DaemonLogHandler
from frontends.daemon.schema import ReloadReport
from frontends.daemon.server import ControlServer
from frontends.daemon.tasks import TaskDesk
from protocols.errors import NotFoundError, NotInRepoError, StoreError, SupervisionError, UsageError
from protocols.health import WriteFaults
from protocols.heart import HeartReport
from protocols.messages import DaemonReloaded, DaemonStopping, ExitReason, RepoRegistered
from protocols.observer import SupervisionNode
from protocols.records import Project

__all__ = ["ROOT_FLAGS", "Daemon", "root_children"]

log = logging.getLogger(__name__)

ROOT_ID = "root"
ROOT_FLAGS = SupervisorFlags(Strategy.ONE_FOR_ONE, max_restarts=3, period_s=5.0)
"""More than 3 restarts among the root's children within 5 s: the root gives up and the daemon exits 1
(systemd's Restart=on-failure then starts a fresh one)."""

_STATS_TIMEOUT_S = 2.0
_T = TypeVar("_T")


def root_children(
    config: DaemonConfig,
    *,
    tmux_server: Any = None,
    health: WriteHealth | None = None,
    recorder: Any = None,
    board: InstanceBoard | None = None,
) -> list[ChildSpec]:
    """The root supervisor's children, in start order (they stop in reverse): the actors every daemon runs.

    The claimer tells the Projects supervisor (`root/projects`) about applied signals; the Projects start
    the repositories' supervisors that carry out their outbox. `tmux_server` is corral's tmux server, the
    one every tmux agent runs in (None: the runtime's default). `health` is where the claimer and the audit
    recorder report a store they cannot write (they degrade and retry; they do not crash). `recorder` writes
    an Instance's row on a thread that owns a connection (`InstanceSpec.recorder`). `board` is where the
    Projects post their instances' rows, which the instance list reads (actors/board.py)."""
    from actors.audit import AuditConfig, AuditFeed, AuditRecorder
    from actors.claimer import ClaimerConfig, SignalClaimer
    from actors.projects import PROJECTS, ProjectsConfig, projects_child
    from actors.wake import WAKE_SOCKET

    health = health or WriteHealth()
    claimer = ClaimerConfig(
        db_path=Path(config.database),
        wake_path=config.paths.dir / WAKE_SOCKET,
        on_applied=f"{ROOT_ID}/{PROJECTS}",
    )
    return [
        ChildSpec.worker("eventbus", EventBus),
        # Backoff, for a bug: the root gives up past 3 restarts in 5 s. A store fault does not crash it.
        ChildSpec.worker(
            "signals", SignalClaimer, claimer, health, backoff=BackoffSpec(min_s=0.5, max_s=10.0)
        ),
        # The feed keeps the recorder's subscription across its restarts: its own crash is recorded too.
        ChildSpec.worker(
            "audit",
            AuditRecorder,
            AuditConfig(db_path=Path(config.database)),
            AuditFeed(),
            health,
            backoff=BackoffSpec(min_s=0.5, max_s=10.0),
        ),
        projects_child(
            ProjectsConfig(
                store_path=config.database, tmux_server=tmux_server, recorder=recorder, board=board
            )
        ),
    ]


class _Stop(msgspec.Struct, frozen=True):
    reason: str


class _Failed(msgspec.Struct, frozen=True):
    reason: str


class _Reload(msgspec.Struct, frozen=True):
    source: str
    reply: Any  # concurrent.futures.Future[ReloadReport]


class Daemon:
    """One daemon: its supervision tree, its store thread and its control server. Implements the API's
    `DaemonControl`: every method of that protocol is thread-safe and returns at once."""

    def __init__(
        self,
        config: DaemonConfig,
        *,
        extra_children: Sequence[ChildSpec] = (),
        heart: HeartLink | None = None,
    ) -> None:
        from frontends.daemon.instances import daemon_tmux_server

        self.config = config
        self.heart_link = heart if heart is not None else HeartLink(config.paths, under_heart=False)
        self.tmux = daemon_tmux_server()
        self.health = WriteHealth()
        for handler in logging.getLogger().handlers:  # the daemon's log counts its dropped lines here
            if isinstance(handler, DaemonLogHandler):
                handler.health = self.health
        self.board = InstanceBoard()
        self.children = [
            *root_children(
                config,
                tmux_server=self.tmux,
                health=self.health,
                recorder=self._record_instance,
                board=self.board,
            ),
            *extra_children,
        ]
        self.tree: SupervisionTree | None = None
        self.server: ControlServer | None = None
        self._inbox: queue.SimpleQueue[_Stop | _Failed | _Reload] = queue.SimpleQueue()
        self._store_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="corral-store")
        self._ask_pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="corral-ask")
        self._local = threading.local()
        self._stores: list[Store] = []
        self._started_mono = time.monotonic()
        self._stopped = False
        self._upkeep_stop = threading.Event()
        self.instances = InstanceDesk(
            lambda: self.tree,
            self.tmux,
            list_records=lambda: self._store_call(lambda s: s.list_instances()),
            board=self.board,
        )
        self.branches = BranchDesk(self.instances, self._store_call)
        self.tasks = TaskDesk(
            self._store_call,
            publish=self.publish,
            wake_project=self._outbox_written,
            wake_claimer=self._poke_claimer,
        )
        self._info = DaemonInfo(
            pid=os.getpid(),
            version=config.version,
            started_at=utc_stamp(datetime.now(UTC)),
            socket=str(config.paths.socket),
            runtime_dir=config.runtime_dir,
            database=config.database,
        )

    # -- lifecycle (main thread) ---------------------------------------------------------------------------

    def start(self) -> None:
        """Open the store, start the tree, then serve the API. CorralError if any of them cannot start;
        whatever did start is stopped again by `stop()`."""
        self._store_call(lambda store: None).result()  # fail now, with the path, if the database is unusable
        self.tree = SupervisionTree.start(ROOT_FLAGS, self.children, root_id=ROOT_ID)
        threading.Thread(
            target=self._watch_tree, args=(self.tree,), name="corral-root-watch", daemon=True
        ).start()
        app = make_app(self)
        if add_chaos_routes(app, lambda: self.tree.env.directory if self.tree is not None else None):
            log.warning("chaos routes on (CORRAL_CHAOS=1): /v1/chaos/crash crashes actors on request")
        self.server = ControlServer(app, self.config.paths.socket, on_exit=self._server_exited)
        self.server.start()
        threading.Thread(target=self._upkeep, name="corral-upkeep", daemon=True).start()
        self.heart_link.start()  # under a heart: watch it, and replace it if it is killed
        log.info(
            "corral daemon %s started: pid %d, socket %s, database %s",
            self._info.version,
            self._info.pid,
            self._info.socket,
            self._info.database,
        )

    def run_until_stopped(self) -> int:
        """Serve requests on this (the main) thread until a stop (→ 0) or the root's failure (→ 1)."""
        while True:
            request = self._inbox.get()
            if isinstance(request, _Stop):
                log.info("orderly shutdown (%s)", request.reason)
                # Straight to the hub, not through the bus: queued for every stream before the server stops
                # and the streams drain what they hold and end.
                self.hub.fan_out(DaemonStopping(reason=request.reason, ts=time.time()))
                return 0
            if isinstance(request, _Failed):
                log.error("the daemon is stopping on a failure: %s", request.reason)
                return 1
            if not request.reply.set_running_or_notify_cancel():
                continue  # whoever asked has given up
            try:
                report = self._reload(request.source)
            except Exception as exc:  # a bug: report it, and keep the daemon serving
                log.exception("reload (%s) failed", request.source)
                request.reply.set_exception(exc)
            else:
                request.reply.set_result(report)

    def stop(self) -> None:
        """The API first (its socket disappears), then the tree (children in reverse start order), then the
        store. Safe after a partial start, and idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._upkeep_stop.set()
        self.heart_link.close()  # a heart that ends after us must not be replaced
        if self.server is not None:
            self.server.stop()
        if self.tree is not None:
            self.tree.stop()
        self.instances.close()
        self.branches.close()
        self._ask_pool.shutdown(wait=False, cancel_futures=True)
        self._store_pool.submit(self._close_stores)
        self._store_pool.shutdown(wait=True)
        log.info("corral daemon stopped")

    # -- requests from other threads and signal handlers --------------------------------------------------

    def request_stop(self, reason: str) -> None:
        """Ask for an orderly shutdown. Safe in a signal handler."""
        self._inbox.put(_Stop(reason))

    def request_reload(self, source: str) -> concurrent.futures.Future[ReloadReport]:
        """Ask the main thread to reload; the future gets the report. Safe in a signal handler (a new
        Future acquires no lock)."""
        reply: concurrent.futures.Future[ReloadReport] = concurrent.futures.Future()
        self._inbox.put(_Reload(source, reply))
        return reply

    def _watch_tree(self, tree: SupervisionTree) -> None:
        tree.exited.wait()
        reason: ExitReason | None = tree.exit_reason
        if tree.failed:
            self._inbox.put(_Failed(f"the root supervisor failed: {reason}"))

    def _server_exited(self, reason: str) -> None:
        self._inbox.put(_Failed(reason))

    # -- DaemonControl --------------------------------------------------------------------------------------

    @property
    def info(self) -> DaemonInfo:
        return self._info

    @property
    def hub(self) -> EventHub:
        assert self.tree is not None and self.tree.env.hub is not None
        return self.tree.env.hub

    def uptime_s(self) -> float:
        return time.monotonic() - self._started_mono

    def write_faults(self) -> WriteFaults:
        return self.health.view()

    def heart(self) -> HeartReport:
        return self.heart_link.report()

    def publish(self, event: Any) -> None:
        """Publish an event on the bus, stamped now. Thread-safe."""
        if self.tree is not None:
            self.tree.env.publish(msgspec.structs.replace(event, ts=time.time()))

    def supervision(self) -> concurrent.futures.Future[SupervisorStats]:
        return self._ask_pool.submit(self._root_statistics)

    def supervision_tree(self) -> concurrent.futures.Future[SupervisionNode]:
        return self._ask_pool.submit(self._observe)

    def list_projects(self) -> concurrent.futures.Future[list[Project]]:
        return self._store_call(lambda store: store.list_projects())

    def register_project(self, path: str) -> concurrent.futures.Future[tuple[Project, bool]]:
        return self._store_call(lambda store: self._register(store, path))

    # -- work done on the daemon's threads -----------------------------------------------------------------

    def _outbox_written(self, project_id: int) -> None:
        """A transition through the API committed an outbox item (on the store thread: return at once): the
        project's supervisor carries it out now, rather than at the next sweep."""
        from actors.projects import PROJECTS, WakeProjects

        if self.tree is not None:
            self.tree.env.directory.tell(f"{ROOT_ID}/{PROJECTS}", WakeProjects((project_id,)))

    def _record_instance(self, row: Any) -> concurrent.futures.Future[Any]:
        """An Instance's row, written on the store thread: one connection for every Instance (SQLite keeps a
        closed connection's file open while others of the process hold locks, so one per Instance would
        leave a descriptor behind each)."""
        return self._store_call(lambda store: store.upsert_instance(row))

    def _poke_claimer(self) -> None:
        """A signal was committed through the API: wake the claimer, as `corral signal emit` does (~20 µs,
        never blocks, never raises)."""
        from actors.wake import WAKE_SOCKET, poke

        poke(self.config.paths.dir / WAKE_SOCKET)

    def _upkeep(self) -> None:
        """Every `checkpoint_every_s`, the WAL is checkpointed on the store thread (see `_checkpoint`)."""
        while not self._upkeep_stop.wait(self.config.checkpoint_every_s):
            if self._stopped:
                return
            try:
                self._store_call(_checkpoint)
            except RuntimeError:  # the pool was shut down: the daemon is stopping
                return

    def _observe(self) -> SupervisionNode:
        if self.tree is None:
            raise SupervisionError("the supervision tree is not running")
        return observe(self.tree.env.directory, self.tree.root_id, timeout=_STATS_TIMEOUT_S)

    def _root_statistics(self) -> SupervisorStats:
        if self.tree is None:
            raise SupervisionError("the supervision tree is not running")
        try:
            return self.tree.ask(GetStatistics(), timeout=_STATS_TIMEOUT_S)
        except pykka.Timeout:
            raise TimeoutError(f"the root supervisor did not answer within {_STATS_TIMEOUT_S:g} s") from None
        except pykka.ActorDeadError:
            raise SupervisionError("the root supervisor is not running") from None

    def _register(self, store: Store, path: str) -> tuple[Project, bool]:
        from frontends.project import find_project_root

        directory = Path(path)
        if "\x00" in path:
            raise UsageError(f"the path contains a NUL byte: {path!r}")
        if not directory.is_absolute():
            raise UsageError(f"the path must be absolute, got {path!r}")
        try:
            if not directory.is_dir():
                raise UsageError(f"{path} is not a directory")
            root = find_project_root(directory)
        except OSError as exc:  # a name too long, a loop of symlinks, a directory we may not read
            raise UsageError(f"{path!r} cannot be a project: {exc.strerror or exc}") from None
        except NotInRepoError:
            raise UsageError(
                f"{path} is not inside a git repository (a project is a git work tree)"
            ) from None
        try:
            return store.get_project(str(root)), False
        except NotFoundError:
            pass
        project = store.ensure_project(root)
        log.info("registered %s as project %s", project.root, project.name)
        self.publish(RepoRegistered(project=project.name, root=project.root))
        return project, True

    def _reload(self, source: str) -> ReloadReport:
        try:
            projects = self._store_call(lambda store: store.list_projects()).result(timeout=30)
        except Exception as exc:
            report = ReloadReport(source=source, repos=0, problems=(f"cannot list the repositories: {exc}",))
        else:
            report = ReloadReport(
                source=source, repos=len(projects), problems=tuple(check_repo_configs(projects))
            )
        log.info(
            "reload (%s): configuration of %d %s re-read, %s",
            source,
            report.repos,
            "repository" if report.repos == 1 else "repositories",
            f"{len(report.problems)} problem(s)" if report.problems else "no problems",
        )
        for problem in report.problems:
            log.warning("reload: %s", problem)
        self.publish(DaemonReloaded(source=source, repos=report.repos, problems=report.problems))
        return report

    def _store_call(self, work: Callable[[Store], _T]) -> concurrent.futures.Future[_T]:
        return self._store_pool.submit(lambda: work(self._store()))

    def _store(self) -> Store:
        store = getattr(self._local, "store", None)
        if store is None:
            # The first open, at start: the whole file is checked once (a damaged one is refused now, with
            # the way out, rather than failing some write later).
            store = Store.open(Path(self.config.database), check=not self._stores)
            self._local.store = store
            self._stores.append(store)
        return store

    def _close_stores(self) -> None:
        for store in self._stores:
            try:
                store.checkpoint("TRUNCATE", wait_ms=1000)  # leave no -wal behind, where it can
            except StoreError as exc:
                log.warning("the last checkpoint failed: %s", exc)
            store.close()
        self._stores.clear()


def _checkpoint(store: Store) -> None:
    """One round of WAL upkeep, on the store thread. SQLite checkpoints by itself after commits (PASSIVE,
    every 1000 pages), but a checkpoint cannot finish while a reader holds an older snapshot, and the log
    only restarts from its beginning once one has: with agents, the CLI and the daemon reading all the time
    the -wal file can grow with every write. So: PASSIVE (never waits); then, when everything is copied
    (the daemon is idle) or the file is past its limit, TRUNCATE, which waits briefly for old readers and
    brings the file back to 0 bytes."""
    from actors.store.db import JOURNAL_SIZE_LIMIT

    try:
        done = store.checkpoint("PASSIVE")
        if done.wal_bytes and (done.copied >= done.wal_frames or done.wal_bytes > JOURNAL_SIZE_LIMIT):
            done = store.checkpoint("TRUNCATE", wait_ms=250)
    except StoreError as exc:
        log.warning("WAL checkpoint: %s", exc)
        return
    if done.wal_bytes > JOURNAL_SIZE_LIMIT:
        log.warning(
            "the database's -wal file is %.1f MiB and could not be truncated: a reader holds an old "
            "snapshot (%d of %d frames copied)",
            done.wal_bytes / 2**20,
            done.copied,
            done.wal_frames,
        )
