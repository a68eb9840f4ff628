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
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec

from actors.instance import Instance, InstanceInfo
from actors.launcher import AgentRequest, prepare_instance
from actors.resources import ResourceControls
from actors.runtimes.tmux_server import session_name
from actors.supervision import BackoffSpec, ChildSpec, Restart, StartChild, Supervisor, SupervisorFlags
from actors.supervision.context import ChildContext
from protocols.config import ResourceSettings, load_config, resolve_resources
from protocols.errors import ConfigError, ConflictError, NotFoundError, SupervisionError, UsageError

__all__ = [
    "MODES",
    "PROJECT_FLAGS",
    "AmbiguousTitle",
    "InstanceEntry",
    "InstanceView",
    "ListEntries",
    "Project",
    "ProjectSpec",
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
WORKTREE_MODES = ("own", "branch", "shared", "none")
TITLE_MAX = 100
_TITLE_BAD = re.compile(r"[/\x00-\x1f\x7f]")


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


class AmbiguousTitle(UsageError):
    """A partial title names several instances; `matches` are their titles."""

    def __init__(self, project: str, query: str, matches: Sequence[str]) -> None:
        self.matches = tuple(matches)
        super().__init__(
            f'"{query}" matches {len(self.matches)} instances of project {project}: '
            f"{', '.join(self.matches)}; give more of the title"
        )


# -- decisions ----------------------------------------------------------------------------------------------


def check_title(title: str) -> str:
    """`title` if it can name an instance (it is the child id, the branch's and the session's source)."""
    if not title.strip():
        raise UsageError("an instance needs a title, e.g. fix-login")
    if title != title.strip():
        raise UsageError(f"instance title {title!r} starts or ends with whitespace")
    if len(title) > TITLE_MAX:
        raise UsageError(f"instance title is {len(title)} characters long; at most {TITLE_MAX}")
    if _TITLE_BAD.search(title):
        raise UsageError(f"instance title {title!r} may not contain '/' or control characters")
    if title.startswith("-"):
        raise UsageError(f"instance title {title!r} may not start with '-'")
    return title


def match_title(query: str, titles: Iterable[str]) -> list[str]:
    """The titles `query` names: the exact one; else those it begins; else those containing it (case-blind
    from the prefix step on). One result is a match, several an ambiguity, none a miss."""
    known = list(titles)
    if query in known:
        return [query]
    folded = query.casefold()
    for test in (str.startswith, str.__contains__):
        found = [t for t in known if test(t.casefold(), folded)]
        if found:
            return found
    return []


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

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, StartInstance):
            return self._start_instance(message)
        if isinstance(message, ListEntries):
            return self._live_entries()
        if isinstance(message, ResolveTitle):
            return self._resolve(message.query)
        return super().on_receive(message)

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

    def _start_instance(self, request: StartInstance) -> InstanceEntry:
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
        agent = AgentRequest(
            project=self.spec.name,
            repo_root=self.spec.root,
            title=title,
            program=request.program,
            mode=request.mode,
            prompt=request.prompt,
            task=request.task,
            agent_type=request.agent_type,
            worktree=_worktree_mode(request),
            branch=request.branch,
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
        wt = prepared.worktree
        entry = InstanceEntry(
            project=self.spec.name,
            title=title,
            path=f"{self.ctx.path}/{title}",
            program=request.program or config.default_program,
            mode=spec.mode,
            branch=wt.branch if wt is not None else "",
            worktree=wt.path if wt is not None else "",
            task=request.task,
            agent_type=request.agent_type,
            session=session_name(self.spec.name, title),
            created_at=self.ctx.env.clock.now().timestamp(),
            notes=prepared.notes,
        )
        self._entries[title] = entry
        log.info("project %s: started instance %s (%s, %s)", self.spec.name, title, entry.mode, entry.program)
        return entry

    def _controls_for(self, settings: ResourceSettings) -> ResourceControls:
        """One ResourceControls while the settings stay the same (it warns once about a missing wrapper)."""
        if self._controls is None or self._controls.settings != settings:
            self._controls = ResourceControls(settings)
        return self._controls


def _innermost(message: str) -> str:
    """The reason at the bottom of nested "failed to start: …" messages."""
    return re.sub(r"^\w+(Error|Exception|Failure): ", "", message.rsplit("failed to start: ", 1)[-1])
