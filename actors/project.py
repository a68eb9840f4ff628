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

Ended instances (exited, failed) stay listed across a restart, as they do while the daemon runs: a recorded
one comes back as an ended entry — its status, reason and time from its row, no actor — until a person
restarts it (`RestartEnded`: a fresh Instance continuing the conversation) or deletes it (`DeleteInstance`:
its worktree, branch and row). Both live in the EndedInstances mixin (actors/project_ended.py).

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
from typing import Any

import msgspec

from actors.board import BoardRow, InstanceBoard
from actors.claimer import OutboxReady
from actors.clock import utc_stamp
from actors.instance import AgentEnded, Instance, InstanceSpec, StatusNotice
from actors.instance_specs import adopted, recovered, restarted
from actors.launcher import AgentRequest, prepare_instance
from actors.project_ended import EndedInstances, request_of
from actors.project_inbox import (
    AdoptSession,
    DeleteInstance,
    DrainOutbox,
    InstanceEntry,
    ListEntries,
    RecoverInstances,
    RenameInstance,
    ResolveTitle,
    RestartEnded,
    project_id,
)
from actors.project_rename import Renames
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
from actors.task_host import TaskHost
from protocols.config import ResourceSettings, load_config, resolve_resources
from protocols.errors import ConfigError, ConflictError, NotFoundError, SupervisionError, UsageError
from protocols.instances import FINISHED, MODES, StartInstance
from protocols.records import InstanceRecord
from protocols.titles import AmbiguousTitle, check_title, match_title

__all__ = ["PROJECT_FLAGS", "Project", "ProjectSpec", "project_child"]

log = logging.getLogger(__name__)

PROJECT_FLAGS = SupervisorFlags(max_restarts=5, period_s=60.0)
"""An Instance actor that crashes (not its agent: the Instance restarts that itself) is restarted; past 5 in
60 s the Project gives up and its own supervisor, the Projects, restarts it."""


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
    board: InstanceBoard | None = None  # where it posts its instances' rows for lists (None: nowhere)


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


class Project(EndedInstances, Renames, TaskHost, Supervisor):
    """One repository's instances, its ended ones (EndedInstances), their renaming (Renames) and its tasks'
    agents (TaskHost). Runs on its own thread; every message is answered there, and after each one the
    instances' rows are posted on the instance board that lists read (actors/board.py)."""

    def __init__(self, ctx: ChildContext, spec: ProjectSpec) -> None:
        super().__init__(ctx, spec.flags)
        self.spec = spec
        self._entries: dict[str, InstanceEntry] = {}
        self._specs: dict[str, InstanceSpec] = {}  # what each Instance was started with (to restart it)
        self._statuses: dict[str, StatusNotice] = {}  # what each Instance last said of its agent
        self._rows: dict[str, InstanceRecord] = {}  # each instance's row as it was started or loaded
        self._ended_before: set[str] = set()  # titles that had ended before this Project started: no child
        self._controls: ResourceControls | None = None
        self._outbox: Any = None  # actors.tasks.OutboxRunner, made on this thread at the first drain
        self._outbox_timer: Any = None
        self._posted: tuple[BoardRow, ...] | None = None  # the rows last posted on the board
        self._board_live = not spec.store_path  # after recovery: rows posted earlier would show a part

    def started(self) -> None:
        if self.spec.board is not None:
            self.spec.board.reset(self.spec.name)
        super().started()
        self._post_board()
        if self.spec.store_path:
            self.actor_ref.tell(RecoverInstances())  # first in the inbox: before any request is answered
            # After recovery: a recovered agent is found, not started again.
            self.actor_ref.tell(DrainOutbox())

    def stopping(self) -> None:
        if self._outbox_timer is not None:
            self._outbox_timer.cancel()
            self._outbox_timer = None
        super().stopping()
        self._drop_runner()
        if self.spec.board is not None:
            self.spec.board.down(self.spec.name)

    def on_receive(self, message: Any) -> Any:
        try:
            return self._on_message(message)
        finally:
            self._post_board()

    def _post_board(self) -> None:
        """Post the rows a list shows, when they changed (after every message: whatever it changed)."""
        board = self.spec.board
        if board is None or not self._board_live:
            return
        try:
            rows = tuple(self._board_row(entry) for entry in self._listed_entries())
            if rows != self._posted:
                board.post(self.spec.name, rows)
                self._posted = rows
        except Exception:  # a bug here must not take the Project down: lists then show older rows
            log.exception("project %s: cannot post its rows on the instance board", self.spec.name)

    def _board_row(self, entry: InstanceEntry) -> BoardRow:
        if entry.final is not None:
            return BoardRow(entry=entry, info=entry.final)
        notice = self._statuses.get(entry.title)
        if notice is None or notice.info is None or not self._from_current(entry.title, notice.urn):
            return BoardRow(entry=entry)  # nothing from this Instance yet: a list asks it
        return BoardRow(entry=entry, info=notice.info, pid=notice.pid, started_at=notice.started_at)

    def _on_message(self, message: Any) -> Any:
        if isinstance(message, StartInstance):
            return self._start_requested(message)
        if isinstance(message, DrainOutbox | OutboxReady):
            return self._drain_outbox()
        if isinstance(message, StatusNotice):
            if self._from_current(message.title, message.urn):
                self._statuses[message.title] = message
            return None
        if isinstance(message, AgentEnded):
            return self._agent_ended(message)
        if isinstance(message, RecoverInstances):
            try:
                return self._recover_all()
            finally:
                self._board_live = True
        if isinstance(message, AdoptSession):
            return self._adopt(message)
        if isinstance(message, ListEntries):
            return self._listed_entries()
        if isinstance(message, ResolveTitle):
            return self._resolve(message.query)
        if isinstance(message, RestartEnded):
            return self._restart_ended(message.title)
        if isinstance(message, DeleteInstance):
            return self._delete(message)
        if isinstance(message, RenameInstance):
            return self._rename(message)
        return super().on_receive(message)

    def child_exited(self, child_id: str, generation: int, reason: Any, restarting: bool) -> None:
        """An Instance *actor* crashed (a bug, not its agent's end): its next generation must take its agent
        back — a tmux session lives on and is adopted; pty and sdk agents continue their conversation —
        rather than send the task's first prompt again."""
        spec = self._specs.get(child_id)
        child = self._children.get(child_id)
        if not restarting or spec is None or child is None:
            return
        revived = restarted(
            spec, self._conversation(child_id), reason=f"its Instance restarted after {reason}", adopt=True
        )
        self._specs[child_id] = revived
        child.spec = self._instance_child(child_id, revived)

    def _from_current(self, title: str, urn: str) -> bool:
        """Whether a message about `title` comes from the Instance that holds the title now (not from one
        stopped and replaced since: its late notice would be taken for the new one's)."""
        child = self._children.get(title)
        return not urn or (child is not None and child.ref is not None and child.ref.actor_urn == urn)

    def _agent_ended(self, ended: AgentEnded) -> None:
        """An agent ended and its Instance is shutting down: keep what shows it; then the task's side (the
        wave keeper tells rounds and attempts apart by their keys)."""
        entry = self._entries.get(ended.title)
        if entry is not None and ended.info is not None and self._from_current(ended.title, ended.urn):
            self._entries[ended.title] = msgspec.structs.replace(
                entry, final=ended.info, last_screen=ended.last_screen
            )
        if ended.task:
            self._task_agent_ended(ended)

    def _terminate_child_now(self, title: str) -> None:
        super().on_receive(TerminateChild(title))

    def _listed_entries(self) -> tuple[InstanceEntry, ...]:
        """Every instance a person sees: a child (running, or ended and kept), or ended before this start."""
        return tuple(
            entry
            for title, entry in self._entries.items()
            if title in self._children or title in self._ended_before
        )

    def _resolve(self, query: str) -> InstanceEntry:
        live = {entry.title: entry for entry in self._listed_entries()}
        found = match_title(query, live)
        if not found:
            known = ", ".join(live) or "none yet"
            raise NotFoundError(f'no instance "{query}" in project {self.spec.name} (instances: {known})')
        if len(found) > 1:
            raise AmbiguousTitle(self.spec.name, query, found)
        return live[found[0]]

    def _start_requested(self, request: StartInstance) -> InstanceEntry:
        """A person's start: refused for a title an ended instance still holds (restart or delete it)."""
        title = check_title(request.title)
        if title in self._ended_before:
            raise self._taken(title)
        return self._start_instance(request)

    def _taken(self, title: str) -> ConflictError:
        ended = self._entries.get(title)
        if ended is not None and ended.final is not None:
            return ConflictError(
                f'instance "{title}" already exists in project {self.spec.name} (it has ended: '
                f"{ended.final.status}); choose another title, restart it (corral instance restart {title}) "
                f"or delete it (corral instance delete {title})"
            )
        return ConflictError(
            f'instance "{title}" already exists in project {self.spec.name}; choose another title, or '
            f"restart it: corral instance restart {title}"
        )

    def _start_instance(
        self,
        request: StartInstance,
        recorded: InstanceRecord | None = None,
        adopt: AdoptSession | None = None,
        *,
        again: bool = False,
        renamed_from: str = "",
    ) -> InstanceEntry:
        """Start a new instance; or, with `recorded`, bring back a recorded one (with `again`: an ended one a
        person restarts; with `renamed_from`: a renamed one taken back under its new title); or, with `adopt`,
        make one of an orphan session. A task's agent may take the title of an instance that ended before
        this Project started: the new one replaces it."""
        title = check_title(request.title)
        if title in self._children:
            raise self._taken(title)
        if request.mode not in MODES:
            raise UsageError(f"mode must be tmux, pty or sdk, got {request.mode!r}")
        try:
            config = load_config(Path(self.spec.root))
        except ConfigError as exc:
            raise UsageError(f'cannot start "{title}": {exc}') from None
        paused = recorded is not None and recorded.status == "paused"
        worktree_mode = request.worktree_mode()
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
            spec, wt = recovered(spec, recorded, wt)
            if again:
                spec = restarted(spec, recorded.sdk_session_id)
            if renamed_from:
                why = f"renamed from {renamed_from}"
                spec = msgspec.structs.replace(spec, notes=(*prepared.spec.notes, why), comeback=why)
        elif adopt is not None:
            spec = adopted(spec, adopt.session, adopt.cwd)
        record = self._record(request, spec, wt, recorded, adopt)
        if self.spec.store_path:
            spec = msgspec.structs.replace(
                spec, record=record, store_path=self.spec.store_path, recorder=self.spec.recorder
            )
        try:
            self._on_start_child(StartChild(self._instance_child(title, spec)))
        except SupervisionError as exc:
            raise UsageError(f'cannot start "{title}": {_innermost(str(exc))}') from None
        self._specs[title] = spec
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
            notes=(*prepared.notes, f"renamed from {renamed_from}") if renamed_from else prepared.notes,
        )
        self._entries[title] = entry
        self._rows[title] = record
        self._ended_before.discard(title)
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
            session=spec.runtime.name,
            resource_profile=spec.resource_profile,
            sdk_session_id=recorded.sdk_session_id if recorded is not None else "",
            status=recorded.status if recorded is not None else "loading",
            reason=recorded.reason if recorded is not None else "",
            restarts=recorded.restarts if recorded is not None else 0,
            worked=recorded.worked if recorded is not None else False,
            created_at=created,
        )

    def _instance_child(self, title: str, spec: InstanceSpec) -> ChildSpec:
        """An Instance's child spec: transient (it shuts down when its agent ends, and stays down)."""
        return ChildSpec.worker(
            title,
            Instance,
            spec,
            restart=Restart.TRANSIENT,
            shutdown_s=self.spec.instance_shutdown_s,
            start_timeout_s=30.0,
        )

    def _restart_ended(self, title: str) -> InstanceEntry:
        """A person restarts an ended instance: the same title, session name and worktree, a fresh Instance
        continuing the conversation (OTP's restart_child, with the spec made to continue)."""
        if title in self._ended_before and title not in self._children:
            return self._restart_recorded(title)
        entry = self._entries.get(title)
        child = self._children.get(title)
        spec = self._specs.get(title)
        if entry is None or child is None or spec is None:
            raise NotFoundError(f'no instance "{title}" in project {self.spec.name}')
        if child.state != "stopped":
            raise ConflictError(f'instance "{title}" is running: restart it through the instance itself')
        conversation = entry.final.conversation_id if entry.final is not None else ""
        again = restarted(spec, conversation or self._conversation(title))
        wt = spec.worktree
        if wt is not None and not wt.shared and not Path(wt.path).exists():  # killed while paused
            from actors.git import resume_worktree

            resume_worktree(wt.repo_root, wt.branch, wt.path, base_commit=wt.base_commit)
        child.spec = self._instance_child(title, again)
        self._specs[title] = again
        try:
            self._restart_child(title)
        except SupervisionError as exc:
            raise UsageError(f'cannot restart "{title}": {_innermost(str(exc))}') from None
        self._entries[title] = msgspec.structs.replace(entry, final=None, last_screen="")
        log.info("project %s: restarted ended instance %s", self.spec.name, title)
        return self._entries[title]

    def _conversation(self, title: str) -> str:
        """The agent's conversation id as last recorded in the store ("" without a store)."""
        if not self.spec.store_path:
            return ""
        from actors.store import Store

        try:
            with Store.open(Path(self.spec.store_path)) as store:
                return store.get_instance(self.spec.name, title).sdk_session_id
        except Exception:  # not recorded, or the store is unreachable: continue without it
            return ""

    # -- recovery and adoption ----------------------------------------------------------------------------

    def _recover_all(self) -> tuple[str, ...]:
        from actors.store import Store

        try:
            with Store.open(Path(self.spec.store_path)) as store:
                records = store.list_instances(self.spec.name)
                over = _tasks_over(store, self.spec.name, records)
        except Exception as exc:
            log.error("project %s: cannot read its recorded instances: %s", self.spec.name, exc)
            return ()
        sessions = self._live_sessions() if over else None
        brought = []
        for record in records:
            if record.title in self._children:
                continue  # already running: never a second agent with the same title
            if record.status in FINISHED:
                self._keep_ended(record)
                continue
            why = over.get(record.title)
            if why is not None and sessions is not None and record.session not in sessions:
                ended = self._record_ended(record.title, f"not brought back: {why}")
                if ended is not None:
                    self._keep_ended(ended)
                continue
            try:
                self._recover(record)
            except Exception as exc:
                log.error("project %s: cannot bring back instance %s: %s", self.spec.name, record.title, exc)
                continue
            if why is not None:  # alive, for a task that is over: adopted only to be stopped for good
                self.stop_task_agent(record.title, why)
                self._record_ended(record.title, f"stopped: {why}")
                continue
            brought.append(record.title)
        if brought:
            log.info("project %s: brought back %s", self.spec.name, ", ".join(brought))
        return tuple(brought)

    def _live_sessions(self) -> set[str] | None:
        """The tmux sessions alive now; None when that cannot be told (then a recorded agent is brought back
        and stopped, rather than guessed dead)."""
        server = self.spec.tmux_server
        if server is None:
            return None
        try:
            return set(server.list_sessions(prefix=""))
        except Exception as exc:
            log.warning("project %s: cannot list the tmux sessions: %s", self.spec.name, exc)
            return None

    def _record_ended(self, title: str, reason: str) -> InstanceRecord | None:
        """Record `title` as ended with `reason`: its row as stored now, None if it could not be written."""
        from actors.store import Store

        try:
            with Store.open(Path(self.spec.store_path)) as store:
                store.set_instance_status(self.spec.name, title, "exited", reason, pid=None)
                return store.get_instance(self.spec.name, title)
        except Exception as exc:
            log.error("project %s: cannot record %s as ended: %s", self.spec.name, title, exc)
            return None

    def _recover(self, record: InstanceRecord) -> InstanceEntry:
        return self._start_instance(request_of(record), recorded=record)

    def _adopt(self, message: AdoptSession) -> InstanceEntry:
        request = StartInstance(title=message.title, program=message.program, mode="tmux", worktree="none")
        return self._start_instance(request, adopt=message)

    def _controls_for(self, settings: ResourceSettings) -> ResourceControls:
        """One ResourceControls while the settings stay the same (it warns once about a missing wrapper)."""
        if self._controls is None or self._controls.settings != settings:
            self._controls = ResourceControls(settings)
        return self._controls


def _tasks_over(store: Any, project: str, records: list[InstanceRecord]) -> dict[str, str]:
    """For each recorded-live task agent whose task is over (done or cancelled): why it must not work on.
    Its end was not recorded (a write lost to a full disk, a daemon killed before the task's end stopped it):
    brought back as it is, it would run for a task nobody works on any more, and nothing would stop it."""
    from protocols.errors import NotFoundError

    over = {}
    project_id = store.get_project(project).id
    for record in records:
        if not record.task or record.status in FINISHED:
            continue
        try:
            status = store.get_task(project_id, record.task).status
        except NotFoundError:
            continue
        if status in ("done", "cancelled"):
            over[record.title] = f"its task {record.task} is {status}"
    return over


def _tell(ref: Any, message: Any) -> None:
    try:
        ref.tell(message)
    except Exception:  # the Project stopped meanwhile
        pass


def _innermost(message: str) -> str:
    """The reason at the bottom of nested "failed to start: …" messages."""
    return re.sub(r"^\w+(Error|Exception|Failure): ", "", message.rsplit("failed to start: ", 1)[-1])
