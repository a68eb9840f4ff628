"""A Project: the supervisor of one registered repository, holding its Instances as dynamic children.

    Root (one_for_one)
    └── project:<name>   Project (a Supervisor, one_for_one, 5 restarts in 60 s), started on first use
        ├── fix-login    Instance (restart transient): the child id is the instance's title
        └── …

    ref = tree.start_child(project_child(ProjectSpec(name="app", root="/src/app", tmux_server=server)))
    entry = ref.ask(StartInstance(title="fix-login", program="claude", prompt="fix the login form"))
    entry = ref.ask(ResolveTitle("fix"))           # exact, else a unique prefix, else a unique substring

The Project decides what only it can know: whether a title is free, which instance a partial title names,
and how a request becomes an InstanceSpec — the repository's `.corral/config.toml` and its resource controls
are re-read at every start, so an edited config applies to the next agent without a reload.

It does not relay requests to its Instances. Whoever asks (the daemon's API threads) resolves the title
here and then asks the Instance at its stable path (`entry.path`) directly: a pause of one agent (git commit,
worktree removal: seconds) never holds up a capture of another, and the Project's inbox stays free for the
starts and lookups only it can answer.

Recovery. With `ProjectSpec.store_path` every Instance records itself in the store's `instances` table, and
a Project that starts (the daemon's first, or after a crash of the daemon or of the Project) first brings
back every recorded instance that was neither exited nor failed, before it answers anything else: the same
spec, so a tmux agent's runtime adopts its live session (same pane, no second agent) or, if the session is
gone, starts it with the harness's continue arguments; pty agents are started again the same way and sdk
agents resume their conversation by its stored id. Paused ones come back paused. A title that is already
running is never started twice. `AdoptSession` makes an instance of a tmux session nobody recorded.

Tasks. With a store, the Project also carries out its tasks' outbox (`actors/tasks.py`): on `OutboxReady`
(a signal was applied), every `OUTBOX_TICK_S` (a person's `corral task transition` pokes nobody) and at start,
after recovery (items a killed daemon left pending), on its own thread, so starting a task's agent is the same
call as any other start.
"""

from __future__ import annotations

import functools
import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import msgspec

from actors.claimer import OutboxReady
from actors.clock import utc_stamp
from actors.instance import AgentEnded, Instance, InstanceInfo, InstanceSpec
from actors.launcher import AgentRequest, prepare_instance
from actors.resources import ResourceControls
from actors.supervision import (
    BackoffSpec,
    ChildSpec,
    Restart,
    StartChild,
    Supervisor,
    SupervisorFlags,
    TerminateChild,
)
from actors.supervision.context import ChildContext
from protocols.config import ResourceSettings, load_config, resolve_resources
from protocols.errors import ConfigError, ConflictError, NotFoundError, SupervisionError, UsageError
from protocols.records import InstanceRecord
from protocols.titles import AmbiguousTitle, check_title, match_title

__all__ = [
    "FINISHED",
    "MODES",
    "PROJECT_FLAGS",
    "AdoptSession",
    "AmbiguousTitle",
    "InstanceEntry",
    "InstanceView",
    "ListEntries",
    "Project",
    "ProjectSpec",
    "RecoverInstances",
    "ResolveTitle",
    "StartInstance",
    "check_title",
    "instance_view",
    "match_title",
    "project_child",
    "project_id",
]

log = logging.getLogger(__name__)

PROJECT_FLAGS = SupervisorFlags(max_restarts=5, period_s=60.0)
"""An Instance actor that crashes (not its agent: the Instance restarts that itself) is restarted; past 5 in
60 s the Project gives up and its own supervisor, the root, restarts it."""

MODES = ("tmux", "pty", "sdk", "headless")
FINISHED = frozenset({"exited", "failed"})
"""Recorded statuses a restarted daemon leaves alone: the agent ended (or was killed by request) or failed."""
WORKTREE_MODES = ("own", "branch", "shared", "none")
OUTBOX_TICK_S = 1.0
"""How often a Project looks for outbox items nobody told it about (a transition made by the CLI)."""


def project_id(name: str) -> str:
    """The Project's child id under the root: `project:<name>`."""
    return f"project:{name}"


# -- what the Project is asked ---------------------------------------------------------------------------


class StartInstance(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Start an agent called `title`: the body of `POST /v1/repos/{project}/instances`.

    `worktree` is own (a new branch `<branch_prefix><title>`; the default), branch (work on `branch`; the
    default when `branch` is given), shared (the task's worktree, needs `task`) or none (the repository).
    """

    title: str
    program: str = ""  # "" → the config's default_program
    mode: str = "tmux"
    prompt: str = ""
    task: str = ""
    agent_type: str = ""
    branch: str = ""
    worktree: str = ""
    model: str = ""  # "" → the harness's default
    flags: tuple[str, ...] = ()  # extra arguments for the program
    skip_permissions: bool = False
    wave: int | None = None  # a wave task's agent: its wave (CORRAL_WAVE) and the tasks in it (CORRAL_PEERS)
    peers: int = 0
    attempt_key: str = ""  # a wave task's agent: which attempt of it this is (actors/waves.py)


class AdoptSession(msgspec.Struct, frozen=True, kw_only=True):
    """Make an instance called `title` of the tmux session `session` that no instance claims (an orphan): it
    runs `program` in `cwd`; its runtime adopts the live session → InstanceEntry."""

    session: str
    title: str
    program: str
    cwd: str


class RecoverInstances(msgspec.Struct, frozen=True):
    """Bring back the project's recorded instances that were running (told by the Project to itself when it
    starts) → the titles brought back."""


class DrainOutbox(msgspec.Struct, frozen=True):
    """Perform the project's pending outbox items now (told on a timer, and by the daemon)."""


class ListEntries(msgspec.Struct, frozen=True):
    """Every instance of the project, in start order → tuple[InstanceEntry, ...]."""


class ResolveTitle(msgspec.Struct, frozen=True):
    """The instance `query` names (see `match_title`) → InstanceEntry; NotFoundError or AmbiguousTitle."""

    query: str


class InstanceEntry(msgspec.Struct, frozen=True, kw_only=True):
    """What the Project knows of one of its instances: how it was launched and where its actor lives."""

    project: str
    title: str
    path: str  # the Instance's actor path, e.g. root/project:app/fix-login
    program: str
    mode: str
    branch: str
    worktree: str
    task: str
    agent_type: str
    session: str  # the tmux session, or the pty/sdk runtime's name
    created_at: float
    notes: tuple[str, ...] = ()


class InstanceView(msgspec.Struct, frozen=True, kw_only=True):
    """One instance as the API shows it: the Project's entry and the Instance's live info, together."""

    project: str
    title: str
    status: str
    reason: str
    status_age_s: float | None
    mode: str
    program: str
    branch: str
    worktree: str
    task: str
    agent_type: str
    restarts: int
    resource_profile: str
    session: str
    created_at: float
    attach: Any = None
    metrics: Any = None
    notes: tuple[str, ...] = ()


# -- decisions ----------------------------------------------------------------------------------------------


def instance_view(entry: InstanceEntry, info: InstanceInfo | None, now: float, why: str = "") -> InstanceView:
    """The entry with the Instance's info (`now` on the same monotonic clock as `info.since`); without info
    the status is `unknown` and `why` says why."""
    if info is None:
        status, reason, age, restarts, profile = "unknown", why, None, 0, ""
        attach = metrics = None
    else:
        status, reason, restarts, profile = info.status, info.reason, info.restarts, info.resource_profile
        age = round(max(0.0, now - info.since), 3)
        attach, metrics = info.attach, info.metrics
    return InstanceView(
        project=entry.project,
        title=entry.title,
        status=status,
        reason=reason,
        status_age_s=age,
        mode=entry.mode,
        program=entry.program,
        branch=entry.branch,
        worktree=entry.worktree,
        task=entry.task,
        agent_type=entry.agent_type,
        restarts=restarts,
        resource_profile=profile,
        session=entry.session,
        created_at=entry.created_at,
        attach=attach,
        metrics=metrics,
        notes=entry.notes,
    )


def _worktree_mode(request: StartInstance) -> Literal["own", "branch", "shared", "none"]:
    mode = request.worktree or ("branch" if request.branch else "own")
    if mode not in WORKTREE_MODES:
        raise UsageError(f"worktree must be one of {', '.join(WORKTREE_MODES)}, got {mode!r}")
    if mode == "branch" and not request.branch:
        raise UsageError('worktree "branch" needs the branch to work on')
    if mode == "shared" and not request.task:
        raise UsageError('worktree "shared" needs the task whose worktree to share')
    return mode  # type: ignore[return-value]


# -- the actor ----------------------------------------------------------------------------------------------


class ProjectSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One repository's supervisor: its name and root; the tmux server its agents run in (None: the
    runtime's default); the Instances' own flags and backoff (None: the launcher's)."""

    name: str
    root: str
    tmux_server: Any = None
    flags: SupervisorFlags = PROJECT_FLAGS
    instance_flags: SupervisorFlags | None = None
    backoff: BackoffSpec | None = None
    instance_shutdown_s: float = 15.0
    store_path: str = ""  # the database its instances are recorded in and recovered from ("": neither)
    recorder: Any = None  # InstanceSpec.recorder for its instances (None: each opens a Store)


def _start_project(spec: ProjectSpec, ctx: ChildContext) -> Any:
    return Project.start(ctx, spec)


def project_child(spec: ProjectSpec) -> ChildSpec:
    """The Project's child spec under the root: permanent, 1 s → 30 s backoff, 60 s to stop its agents."""
    return ChildSpec(
        id=project_id(spec.name),
        start=functools.partial(_start_project, spec),
        restart=Restart.PERMANENT,
        shutdown_s=60.0,
        kind="supervisor",
        backoff=BackoffSpec(min_s=1.0, max_s=30.0),
        start_timeout_s=30.0,
    )


class Project(Supervisor):
    """One repository's instances. Runs on its own thread; every message is answered there."""

    def __init__(self, ctx: ChildContext, spec: ProjectSpec) -> None:
        super().__init__(ctx, spec.flags)
        self.spec = spec
        self._entries: dict[str, InstanceEntry] = {}
        self._controls: ResourceControls | None = None
        self._outbox: Any = None  # actors.tasks.OutboxRunner, made on this thread at the first drain
        self._outbox_timer: Any = None

    def started(self) -> None:
        super().started()
        if self.spec.store_path:
            self.actor_ref.tell(RecoverInstances())  # first in the inbox: before any request is answered
            self.actor_ref.tell(
                DrainOutbox()
            )  # after recovery: a recovered agent is found, not started again

    def stopping(self) -> None:
        if self._outbox_timer is not None:
            self._outbox_timer.cancel()
            self._outbox_timer = None
        super().stopping()
        self._drop_runner()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, StartInstance):
            return self._start_instance(message)
        if isinstance(message, DrainOutbox | OutboxReady):
            return self._drain_outbox()
        if isinstance(message, AgentEnded):
            return self._agent_ended(message)
        if isinstance(message, RecoverInstances):
            return self._recover_all()
        if isinstance(message, AdoptSession):
            return self._adopt(message)
        if isinstance(message, ListEntries):
            return self._live_entries()
        if isinstance(message, ResolveTitle):
            return self._resolve(message.query)
        return super().on_receive(message)

    # -- tasks: the outbox (actors/tasks.py) -----------------------------------------------------------------

    def _drain_outbox(self) -> int:
        """Perform the pending outbox items and check the running waves against their agents; never raises
        (a bad item is failed, a store error logged)."""
        settled = 0
        try:
            runner = self._outbox_runner()
            if runner is not None:
                settled = runner.drain()
                runner.waves.reconcile()
                settled += runner.drain()  # what the reconciliation applied (implement_finished)
        except Exception as exc:
            log.error("project %s: cannot carry out the outbox: %s", self.spec.name, exc)
            self._drop_runner()
        scheduler = self.ctx.env.scheduler
        if self.spec.store_path and scheduler is not None:
            if self._outbox_timer is not None:
                self._outbox_timer.cancel()
            ref = self.actor_ref
            self._outbox_timer = scheduler.call_later(
                OUTBOX_TICK_S, functools.partial(_tell, ref, DrainOutbox())
            )
        return settled

    def _agent_ended(self, ended: AgentEnded) -> None:
        """A task's agent ended: its wave task completes or fails now, and what follows is carried out."""
        try:
            runner = self._outbox_runner()
            if runner is not None:
                runner.waves.agent_ended(ended)
                runner.drain()
        except Exception as exc:  # the wave keeper's reconciliation settles it within a second
            log.error("project %s: after %s ended: %s", self.spec.name, ended.title, exc)
            self._drop_runner()

    def _drop_runner(self) -> None:
        runner, self._outbox = self._outbox, None  # opened again at the next drain
        if runner is not None:
            try:
                runner.store.close()
            except Exception as exc:  # never out of a tell handler: that would stop the Project
                log.warning("project %s: closing the outbox's store: %s", self.spec.name, exc)

    def _outbox_runner(self) -> Any:
        if self._outbox is None and self.spec.store_path:
            from actors.store import Store
            from actors.tasks import OutboxRunner, RunnerProject

            store = Store.open(Path(self.spec.store_path))
            try:
                record = store.get_project(self.spec.name)
            except Exception:
                store.close()
                raise
            self._outbox = OutboxRunner(store, RunnerProject(record.id, record.name, self.spec.root), self)
        return self._outbox

    def start_task_agent(self, agent: Any, since: str) -> bool:
        """`TaskAgents.start_task_agent`: never a second agent with a title, nor one already started for the
        item or attempt being performed (recorded at or after `since`); an older one is stopped first."""
        try:
            recorded = self._outbox.store.get_instance(self.spec.name, agent.title)
        except NotFoundError:
            recorded = None
        if recorded is not None and (
            recorded.attempt_key == agent.attempt_key if agent.attempt_key else recorded.created_at >= since
        ):
            return False
        if agent.title in self._children:
            if recorded is None:
                return False  # running, but unrecorded: nothing tells which round it belongs to
            self.stop_task_agent(agent.title, "replaced by a new attempt")
        request = StartInstance(**msgspec.structs.asdict(agent))  # an AgentStart is a StartInstance's subset
        self._start_instance(request)
        return True

    def running_agent(self, title: str) -> bool:
        return title in self._children

    def task_agent_titles(self, task: str, started_before: str) -> tuple[str, ...]:
        titles = []
        for title, entry in self._entries.items():
            if entry.task != task or title not in self._children:
                continue
            try:
                created = self._outbox.store.get_instance(self.spec.name, title).created_at
            except NotFoundError:
                created = ""
            if created < started_before:
                titles.append(title)
        return tuple(titles)

    def stop_task_agent(self, title: str, reason: str) -> bool:
        """Kill the agent, forget its instance, and record it exited (so no restart brings it back)."""
        if title not in self._children:
            return False
        ref = self.ctx.env.directory.get(f"{self.ctx.path}/{title}")
        if ref is not None:
            from actors.instance import InstanceKill

            try:
                ref.ask(InstanceKill(), timeout=self.spec.instance_shutdown_s)
            except Exception as exc:  # the child is stopped below all the same
                log.warning("project %s: kill of %s: %s", self.spec.name, title, exc)
                self._kill_session(title)
        self._terminate_child_now(title)
        self._entries.pop(title, None)
        if self._outbox is not None:
            self._outbox.store.set_instance_status(self.spec.name, title, "exited", f"stopped: {reason}")
        return True

    def _kill_session(self, title: str) -> None:
        """The Instance did not kill its agent in time: an orderly stop would leave a tmux agent running (for
        the next generation to adopt), so kill its session here, and the next attempt starts afresh."""
        entry = self._entries.get(title)
        server = self.spec.tmux_server
        if entry is None or entry.mode != "tmux" or server is None or not entry.session:
            return
        try:
            server.kill_session(entry.session)
        except Exception as exc:
            log.warning("project %s: killing the session of %s: %s", self.spec.name, title, exc)

    def _terminate_child_now(self, title: str) -> None:
        super().on_receive(TerminateChild(title))

    def _live_entries(self) -> tuple[InstanceEntry, ...]:
        return tuple(entry for title, entry in self._entries.items() if title in self._children)

    def _resolve(self, query: str) -> InstanceEntry:
        live = {entry.title: entry for entry in self._live_entries()}
        found = match_title(query, live)
        if not found:
            known = ", ".join(live) or "none yet"
            raise NotFoundError(f'no instance "{query}" in project {self.spec.name} (instances: {known})')
        if len(found) > 1:
            raise AmbiguousTitle(self.spec.name, query, found)
        return live[found[0]]

    def _start_instance(
        self,
        request: StartInstance,
        recorded: InstanceRecord | None = None,
        adopt: AdoptSession | None = None,
    ) -> InstanceEntry:
        """Start a new instance; or, with `recorded`, bring back a recorded one; or, with `adopt`, make one
        of an orphan session."""
        title = check_title(request.title)
        if title in self._children:
            raise ConflictError(
                f'instance "{title}" already exists in project {self.spec.name}; choose another title, '
                f"or restart it: corral instance restart {title}"
            )
        if request.mode not in MODES:
            raise UsageError(f"mode must be tmux, pty or sdk, got {request.mode!r}")
        try:
            config = load_config(Path(self.spec.root))
        except ConfigError as exc:
            raise UsageError(f'cannot start "{title}": {exc}') from None
        paused = recorded is not None and recorded.status == "paused"
        worktree_mode = _worktree_mode(request)
        if recorded is not None and worktree_mode == "own" and recorded.branch:
            worktree_mode = "branch"  # its branch as recorded, whatever the branch prefix is now
        agent = AgentRequest(
            project=self.spec.name,
            repo_root=self.spec.root,
            title=title,
            program=request.program,
            mode=request.mode,
            prompt=request.prompt,
            task=request.task,
            agent_type=request.agent_type,
            model=request.model,
            flags=request.flags,
            skip_permissions=request.skip_permissions,
            wave=request.wave,
            peers=request.peers,
            worktree="none" if paused or adopt is not None else worktree_mode,
            branch=recorded.branch if recorded is not None and recorded.branch else request.branch,
            auto_yes=config.auto_yes,
        )
        try:
            prepared = prepare_instance(
                agent,
                config,
                self._controls_for(resolve_resources(config.resources)),
                tmux_server=self.spec.tmux_server,
                flags=self.spec.instance_flags,
                backoff=self.spec.backoff,
            )
        except ValueError as exc:
            raise UsageError(f'cannot start "{title}": {exc}') from None
        spec = prepared.spec
        wt = prepared.worktree
        if recorded is not None:
            spec, wt = _recovered(spec, recorded, wt)
        elif adopt is not None:
            spec = _adopted(spec, adopt)
        record = self._record(request, spec, wt, recorded, adopt)
        if self.spec.store_path:
            spec = msgspec.structs.replace(
                spec, record=record, store_path=self.spec.store_path, recorder=self.spec.recorder
            )
        child = ChildSpec.worker(
            title,
            Instance,
            spec,
            restart=Restart.TRANSIENT,
            shutdown_s=self.spec.instance_shutdown_s,
            start_timeout_s=30.0,
        )
        try:
            self._on_start_child(StartChild(child))
        except SupervisionError as exc:
            raise UsageError(f'cannot start "{title}": {_innermost(str(exc))}') from None
        entry = InstanceEntry(
            project=self.spec.name,
            title=title,
            path=f"{self.ctx.path}/{title}",
            program=request.program or config.default_program,
            mode=spec.mode,
            branch=record.branch,
            worktree=record.worktree_path if record.worktree_mode != "none" else "",
            task=request.task,
            agent_type=request.agent_type,
            session=record.session,
            created_at=datetime.fromisoformat(record.created_at).timestamp(),
            notes=prepared.notes,
        )
        self._entries[title] = entry
        log.info("project %s: started instance %s (%s, %s)", self.spec.name, title, entry.mode, entry.program)
        return entry

    def _record(
        self,
        request: StartInstance,
        spec: InstanceSpec,
        wt: Any,
        recorded: InstanceRecord | None,
        adopt: AdoptSession | None,
    ) -> InstanceRecord:
        """The instance's row: the spec essentials (its status and pid are the Instance's to fill in)."""
        created = recorded.created_at if recorded is not None else utc_stamp(self.ctx.env.clock.now())
        mode = request.worktree or ("branch" if request.branch else "own")
        return InstanceRecord(
            project=self.spec.name,
            title=request.title,
            program=request.program or (recorded.program if recorded is not None else ""),
            mode=spec.mode,
            prompt=request.prompt,
            task=request.task,
            agent_type=request.agent_type,
            wave=request.wave,
            attempt_key=request.attempt_key,
            branch=wt.branch if wt is not None else "",
            worktree_mode="none" if adopt is not None else mode,
            worktree_path=wt.path if wt is not None else (adopt.cwd if adopt is not None else ""),
            base_commit=wt.base_commit if wt is not None else "",
            session=_runtime_spec(spec.runtime).name,
            resource_profile=spec.resource_profile,
            sdk_session_id=recorded.sdk_session_id if recorded is not None else "",
            status=recorded.status if recorded is not None else "loading",
            reason=recorded.reason if recorded is not None else "",
            restarts=recorded.restarts if recorded is not None else 0,
            worked=recorded.worked if recorded is not None else False,
            created_at=created,
        )

    # -- recovery and adoption ----------------------------------------------------------------------------

    def _recover_all(self) -> tuple[str, ...]:
        from actors.store import Store

        try:
            with Store.open(Path(self.spec.store_path)) as store:
                records = store.list_instances(self.spec.name)
        except Exception as exc:
            log.error("project %s: cannot read its recorded instances: %s", self.spec.name, exc)
            return ()
        brought = []
        for record in records:
            if record.status in FINISHED or record.title in self._children:
                continue  # ended, or already running: never a second agent with the same title
            try:
                self._recover(record)
            except Exception as exc:
                log.error("project %s: cannot bring back instance %s: %s", self.spec.name, record.title, exc)
                continue
            brought.append(record.title)
        if brought:
            log.info("project %s: brought back %s", self.spec.name, ", ".join(brought))
        return tuple(brought)

    def _recover(self, record: InstanceRecord) -> InstanceEntry:
        request = StartInstance(
            title=record.title,
            program=record.program,
            mode=record.mode,
            prompt=record.prompt,
            task=record.task,
            agent_type=record.agent_type,
            wave=record.wave,
            attempt_key=record.attempt_key,
            branch=record.branch if record.worktree_mode == "branch" else "",
            worktree=record.worktree_mode,
        )
        return self._start_instance(request, recorded=record)

    def _adopt(self, message: AdoptSession) -> InstanceEntry:
        request = StartInstance(title=message.title, program=message.program, mode="tmux", worktree="none")
        return self._start_instance(request, adopt=message)

    def _controls_for(self, settings: ResourceSettings) -> ResourceControls:
        """One ResourceControls while the settings stay the same (it warns once about a missing wrapper)."""
        if self._controls is None or self._controls.settings != settings:
            self._controls = ResourceControls(settings)
        return self._controls


def _tell(ref: Any, message: Any) -> None:
    try:
        ref.tell(message)
    except Exception:  # the Project stopped meanwhile
        pass


def _innermost(message: str) -> str:
    """The reason at the bottom of nested "failed to start: …" messages."""
    return re.sub(r"^\w+(Error|Exception|Failure): ", "", message.rsplit("failed to start: ", 1)[-1])


# -- rewriting a prepared spec for recovery and adoption ----------------------------------------------------


def _runtime_spec(child: ChildSpec) -> Any:
    """The RuntimeSpec inside a runtime's ChildSpec (`ChildSpec.worker(RUNTIME, cls, spec, …)`)."""
    return child.start.args[1][0]  # type: ignore[attr-defined]


def _with_runtime(child: ChildSpec | None, *, sdk_session_id: str | None = None, **changes: Any) -> Any:
    """The runtime ChildSpec with its RuntimeSpec changed (name, cwd…) and, for sdk, a fresh memo holding
    `sdk_session_id`, so the agent resumes that conversation."""
    if child is None:
        return None
    start = child.start
    actor_class, args, kwargs = start.args  # type: ignore[attr-defined]
    runtime = _runtime_spec(child)
    if "name" in changes:
        changes["log_path"] = str(Path(runtime.log_path).with_name(f"{changes['name']}.log"))
    kwargs = dict(kwargs)
    if sdk_session_id is not None:
        from actors.runtimes.sdk import SessionMemo

        changes["sdk_session_id"] = sdk_session_id
        if "memo" in kwargs:
            kwargs["memo"] = SessionMemo(sdk_session_id)
    new = msgspec.structs.replace(runtime, **changes)
    return msgspec.structs.replace(
        child,
        start=functools.partial(start.func, actor_class, (new, *args[1:]), kwargs),  # type: ignore[attr-defined]
    )


def _recovered(spec: InstanceSpec, record: InstanceRecord, wt: Any) -> tuple[InstanceSpec, Any]:
    """The spec of a recorded instance brought back: same session; tmux/pty start with the continue
    arguments (a live tmux session is adopted whatever the argv), sdk resumes its conversation; the first
    prompt is not sent again. A paused one gets its recorded worktree back only when it is resumed."""
    from actors.git import Worktree

    if wt is None and record.worktree_mode not in ("", "none") and record.worktree_path:
        wt = Worktree(
            repo_root=str(Path(record.worktree_path).parents[1]),
            path=record.worktree_path,
            branch=record.branch,
            base_commit=record.base_commit,
            shared=record.worktree_mode == "shared",
        )
    cwd = wt.path if wt is not None else (record.worktree_path or spec.cwd)
    session = record.sdk_session_id if spec.mode == "sdk" else None
    first = spec.runtime if spec.mode == "sdk" else (spec.restart_runtime or spec.runtime)
    runtime = _with_runtime(
        first,
        name=record.session or _runtime_spec(first).name,
        cwd=cwd,
        sdk_session_id=session,
        adopt_first=spec.mode == "tmux",
    )
    again = _with_runtime(
        spec.restart_runtime, name=_runtime_spec(runtime).name, cwd=cwd, sdk_session_id=session
    )
    resend = spec.mode == "sdk" and not record.sdk_session_id  # it never got going: start the task again
    spec = msgspec.structs.replace(
        spec,
        runtime=runtime,
        restart_runtime=again,
        cwd=cwd,
        worktree=wt,
        first_prompt=spec.first_prompt if resend else "",
        prompt_file_text=spec.prompt_file_text if resend else "",
        start_paused=record.status == "paused",
        notes=(*spec.notes, "brought back after a daemon restart"),
    )
    return spec, wt


def _adopted(spec: InstanceSpec, adopt: AdoptSession) -> InstanceSpec:
    """The spec of an instance made of an orphan session: its runtime adopts `adopt.session`."""
    runtime = _with_runtime(spec.runtime, name=adopt.session, cwd=adopt.cwd)
    again = _with_runtime(spec.restart_runtime, name=adopt.session, cwd=adopt.cwd)
    return msgspec.structs.replace(
        spec, runtime=runtime, restart_runtime=again, cwd=adopt.cwd, first_prompt="", prompt_file_text=""
    )
