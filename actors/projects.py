"""Projects: the supervisor of every repository's Project, started when a repository needs one.

    Root (one_for_one)
    ├── signals                    the claimer: applied signals → OutboxReady told to root/projects
    └── projects   Projects        one_for_one, 20 restarts in 60 s
        ├── project:app            Project (permanent, 1 s → 30 s backoff): its Instances, its tasks
        └── project:api

    path = projects.ask(EnsureProject("app"))   # started if it is not running → root/projects/project:app
    projects.tell(WakeProjects((3, 7)))         # carry out these projects' outbox now (starting them)

A repository's Project runs when something needs it, and only then: a person's request (the control API asks
`EnsureProject`), a signal the claimer applied (`OutboxReady`, told by the claimer as to any actor path), a
transition committed through the API (`WakeProjects`), and — checked every `sweep_s` and once at start — work
that nobody announced: outbox items left pending (a killed daemon, `corral task transition` with no daemon),
tasks in a live lifecycle step (planning, implementing, reviewing, verifying: their agents must be watched),
and recorded agents that were running when the daemon stopped (brought back by their Project as it starts).

Why an actor and not the daemon's threads: actors never call into frontends/ (DESIGN.md), and "which
projects have work, start them, tell them" is one decision about this supervisor's own children, made on its
own thread with a store connection of its own — the claimer and the API only tell it what happened.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import msgspec

from actors.claimer import OutboxReady
from actors.project import ProjectSpec, project_child
from actors.project_inbox import DrainOutbox, project_id
from actors.supervision import BackoffSpec, ChildSpec, Restart, StartChild, Supervisor, SupervisorFlags
from actors.supervision.context import ChildContext
from protocols.errors import NotFoundError, SupervisionError

__all__ = [
    "PROJECTS",
    "PROJECTS_FLAGS",
    "EnsureProject",
    "Projects",
    "ProjectsConfig",
    "WakeProjects",
    "projects_child",
]

log = logging.getLogger(__name__)

PROJECTS = "projects"
"""The supervisor's child id under the root: every Project lives at root/projects/project:<name>."""

PROJECTS_FLAGS = SupervisorFlags(max_restarts=20, period_s=60.0)
"""A Project restarts with its own backoff (1 s → 30 s): twenty in a minute means something is broken in
every repository at once, and the root decides."""


class ProjectsConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What every Project is started with: the database its tasks and instances live in, corral's tmux
    server (a live TmuxServer; None: the runtime's default) and how often unannounced work is looked for."""

    store_path: str
    tmux_server: Any = None
    sweep_s: float = 2.0
    recorder: Any = None  # InstanceSpec.recorder for every Instance (None: each opens its own Store)
    board: Any = None  # actors.board.InstanceBoard every Project posts its instances' rows on (None: none)


class EnsureProject(msgspec.Struct, frozen=True):
    """Start the Project of the registered repository `name` (a name or a root path) unless it runs → its
    actor path. NotFoundError for a repository that is not registered."""

    name: str


class WakeProjects(msgspec.Struct, frozen=True):
    """Carry out the outbox of these projects (store ids) now, starting any that is not running."""

    project_ids: tuple[int, ...]


class _Sweep(msgspec.Struct, frozen=True):
    """Look for work nobody announced (told to itself on a timer; `first` at start, when agents recorded
    running must be brought back too)."""

    first: bool = False


def projects_child(config: ProjectsConfig) -> ChildSpec:
    """The Projects' child spec under the root: permanent; it takes as long as its Projects to stop."""
    return ChildSpec(
        id=PROJECTS,
        start=functools.partial(_start_projects, config),
        restart=Restart.PERMANENT,
        shutdown_s=None,
        kind="supervisor",
        backoff=BackoffSpec(min_s=0.5, max_s=10.0),
        start_timeout_s=30.0,
    )


def _start_projects(config: ProjectsConfig, ctx: ChildContext) -> Any:
    return Projects.start(ctx, config)


class Projects(Supervisor):
    """The Projects. Runs on its own thread, with its own store connection."""

    def __init__(
        self, ctx: ChildContext, config: ProjectsConfig, flags: SupervisorFlags = PROJECTS_FLAGS
    ) -> None:
        super().__init__(ctx, flags)
        self.config = config
        self._store: Any = None
        self._timer: Any = None

    def started(self) -> None:
        super().started()
        self.actor_ref.tell(_Sweep(first=True))  # first thing: bring back recorded agents and unfinished work

    def stopping(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().stopping()
        self._close_store()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, EnsureProject):
            return self._ensure(message.name)
        if isinstance(message, WakeProjects):
            return self._wake(frozenset(message.project_ids))
        if isinstance(message, OutboxReady):
            return self._wake(frozenset(outcome.signal.project_id for outcome in message.outcomes))
        if isinstance(message, _Sweep):
            return self._sweep(message.first)
        return super().on_receive(message)

    # -- decisions -------------------------------------------------------------------------------------------

    def _ensure(self, name: str) -> str:
        record = self._store_call(lambda store: store.get_project(name))
        return self._running(record)

    def _wake(self, ids: frozenset[int]) -> None:
        """Tell each project to drain its outbox; one that is not running is started (and drains as it
        starts). Never raises: it runs in tell handlers."""
        if not ids:
            return
        try:
            projects = [p for p in self._store_call(lambda store: store.list_projects()) if p.id in ids]
        except Exception as exc:
            log.error("cannot list the projects to carry out their outbox: %s", exc)
            return
        for record in projects:
            child = self._children.get(project_id(record.name))
            if child is not None and child.ref is not None:
                try:
                    child.ref.tell(DrainOutbox())
                    continue
                except Exception:  # it is going away: start it below
                    pass
            try:
                self._running(record)
            except Exception as exc:
                log.error("cannot start the supervisor of project %s: %s", record.name, exc)

    def _sweep(self, first: bool) -> None:
        """Start the projects with work and no running supervisor; then look again in `sweep_s`."""
        try:
            ids = self._store_call(functools.partial(_projects_with_work, agents=first))
        except Exception as exc:
            log.error("cannot look for projects with work: %s", exc)
        else:
            not_running = set()
            for record in self._store_call(lambda store: store.list_projects()):
                child = self._children.get(project_id(record.name))
                if record.id in ids and (child is None or child.ref is None):
                    not_running.add(record.id)
            self._wake(frozenset(not_running))
        scheduler = self.ctx.env.scheduler
        if scheduler is not None and self.config.sweep_s > 0:
            ref = self.actor_ref
            self._timer = scheduler.call_later(self.config.sweep_s, functools.partial(_tell, ref, _Sweep()))

    def _running(self, record: Any) -> str:
        """The path of `record`'s running Project, started now if needed."""
        child_id = project_id(record.name)
        path = f"{self.ctx.path}/{child_id}"
        child = self._children.get(child_id)
        if child is not None and child.ref is not None:
            return path
        if child is not None and child.state == "restarting":
            raise SupervisionError(
                f"the supervisor of project {record.name} is restarting; try again in a moment"
            )
        if child is not None:  # stopped (it shut down): start it again from its spec
            self._restart_child(child_id)
            return path
        spec = ProjectSpec(
            name=record.name,
            root=record.root,
            tmux_server=self.config.tmux_server,
            store_path=self.config.store_path,
            recorder=self.config.recorder,
            board=self.config.board,
        )
        self._on_start_child(StartChild(project_child(spec)))
        log.info("started the supervisor of project %s", record.name)
        return path

    # -- the store, on this thread ---------------------------------------------------------------------------

    def _store_call(self, work: Any) -> Any:
        if self._store is None:
            from actors.store import Store

            self._store = Store.open(Path(self.config.store_path))
        try:
            return work(self._store)
        except NotFoundError:
            raise
        except Exception:
            self._close_store()  # opened again next time: a store error may have left it unusable
            raise

    def _close_store(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            try:
                store.close()
            except Exception as exc:
                log.warning("closing the projects' store: %s", exc)


def _projects_with_work(store: Any, agents: bool) -> set[int]:
    """Projects with pending outbox items or a task in a step with an agent (unfinished waves among them);
    with `agents`, also those with recorded agents that were running (at start: their Project brings them
    back; later a running Project keeps them)."""
    ids = {item.project_id for item in store.pending_outbox(limit=1000)} | store.projects_with_live_steps()
    if agents:
        names = {r.project for r in store.list_instances() if r.status not in ("exited", "failed")}
        ids |= {p.id for p in store.list_projects() if p.name in names}
    return ids


def _tell(ref: Any, message: Any) -> None:
    try:
        ref.tell(message)
    except Exception:  # stopped meanwhile
        pass
