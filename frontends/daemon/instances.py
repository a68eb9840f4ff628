"""The instance routes of the control API, and the daemon's side of them.

    GET  /v1/repos/{project}/instances[?status=ready,waiting]   [InstanceView]
    POST /v1/repos/{project}/instances                          StartInstance → InstanceView (201)
    GET  /v1/repos/{project}/instances/{title}                  InstanceView
    POST /v1/repos/{project}/instances/{title}/send             {text, enter?} → InstanceView
    POST /v1/repos/{project}/instances/{title}/send-keys        {keys: [...]} → InstanceView
    POST /v1/repos/{project}/instances/{title}/capture          {lines?, ansi?} → Captured
    POST /v1/repos/{project}/instances/{title}/{pause|resume|restart|kill}   → InstanceView
    POST /v1/repos/{project}/instances/{title}/answer           {answer?: yes|no} → InstanceView
    POST /v1/repos/{project}/instances/{title}/rename           {title} → InstanceView (under its new title)
    DELETE /v1/repos/{project}/instances/{title}[?force=true&dry_run=true]   → InstanceDeleted
    GET  …/instances/{title}/diff, POST …/{push|pr|checkout}  its branch: branches.py
    GET  /v1/orphans                                            [Orphan]
    POST /v1/repos/{project}/orphans/{session}/adopt            {title?} → InstanceView (201)
    POST /v1/orphans/{session}/kill                             → KilledOrphan

`{title}` is an exact title, or enough of one to name a single instance (a prefix, else a substring): an
ambiguous one is a 400 whose body lists the `matches`. 404: no such project or instance; 409: a title that
is taken, or an action the instance's state does not allow (resume of a running one, send to a paused one).
Restart of a paused instance resumes it.

**Ended instances.** An agent that exits or is killed ends its Instance actor (actors/instance.py): the
Project keeps it as an ended entry with its last info and screen (after a daemon restart, from its row). Kill
again changes nothing, restart is the Project's `RestartEnded` (a fresh Instance continuing the
conversation), capture shows its last screen, and the other actions are a 409 that says to restart it.
DELETE removes it — its row, its worktree and its branch (actors/instance_removal.py) — and needs the exact
title: a destructive request is not guessed from a prefix.

The work happens on `InstanceDesk`'s own threads, handed to the loop as `concurrent.futures.Future`s (the
loop never waits on a pykka future). The desk finds the repository in the store, starts its Project
supervisor (`project:<name>` under the root) on first use, resolves the title there and then asks the
Instance at its stable path directly, so a slow pause of one agent never delays a capture of another.

**Recovery.** Every Instance records itself in the store. At startup `recover()` starts the Project of
every repository with a recorded instance that was still running; the Project brings those back before it
answers anything (see actors/project.py). **Orphans** are sessions on corral's tmux server (`corral_…`) that
no recorded instance claims: listed, and each can be adopted (an instance that adopts the session), attached
(the argv is in the listing) or killed (the session and every process of its agent).

**The tmux server** is `tmux -L corral`, or the socket named by `CORRAL_TMUX_SOCKET` (read here and only
here): tests and a second corral on the same machine use their own.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import msgspec
import pykka
from aiohttp import web

from actors.board import InstanceBoard
from actors.instance import (
    GetInstanceInfo,
    InstanceAnswer,
    InstanceCapture,
    InstanceKill,
    InstancePause,
    InstanceRestart,
    InstanceResume,
    InstanceSend,
    InstanceSendKeys,
)
from actors.project_inbox import (
    AdoptSession,
    DeleteInstance,
    InstanceEntry,
    RenameInstance,
    ResolveTitle,
    RestartEnded,
    instance_view,
)
from actors.projects import PROJECTS, EnsureProject
from actors.runtimes.procinfo import FleetMetrics, kill_tree
from actors.runtimes.procinfo import tree as tree_of
from actors.runtimes.tmux import TmuxError, TmuxServer, default_server
from actors.runtimes.tmux_server import SESSION_PREFIX
from actors.supervision import SupervisionTree
from frontends.daemon.api import CONTROL
from frontends.daemon.http import answer, error_response, json_response, read_body, route
from protocols.errors import ConflictError, NotFoundError, SupervisionError, UsageError
from protocols.instances import FINISHED, InstanceDeleted, InstanceView, RenameRequest, StartInstance
from protocols.records import InstanceRecord
from protocols.titles import AmbiguousTitle

__all__ = [
    "ACTIONS",
    "TMUX_SOCKET_ENV",
    "Captured",
    "InstanceDesk",
    "KilledOrphan",
    "NoBody",
    "Orphan",
    "add_instance_routes",
    "daemon_tmux_server",
    "settle",
]

TMUX_SOCKET_ENV = "CORRAL_TMUX_SOCKET"
LIST_TIMEOUT_S = 5.0
ACTION_TIMEOUT_S = 60.0  # a start makes a worktree and waits for the runtime; a pause commits and removes it
_T = TypeVar("_T")
log = logging.getLogger(__name__)
_ORPHAN_FIELDS = (
    "#{session_name}\t#{session_created}\t#{pane_pid}\t#{pane_current_command}\t#{pane_current_path}"
)


def daemon_tmux_server() -> TmuxServer:
    """The daemon's tmux server: `tmux -L $CORRAL_TMUX_SOCKET` when set, else the default (`-L corral`)."""
    socket = os.environ.get(TMUX_SOCKET_ENV, "")
    return TmuxServer(socket) if socket else default_server()


# -- bodies -------------------------------------------------------------------------------------------------


class SendText(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    text: str
    enter: bool = True


class SendKeys(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    keys: tuple[str, ...]


class CaptureRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    lines: int | None = 50  # None: the whole history
    ansi: bool = False


class NoBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class AnswerRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    answer: Literal["yes", "no"] = "yes"


class Captured(msgspec.Struct, frozen=True):
    """`POST …/capture`: the screen (and history) of an instance."""

    project: str
    title: str
    lines: int | None
    text: str


class AdoptRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    title: str = ""  # "" → the session's name without `corral_<project>_`


class Orphan(msgspec.Struct, frozen=True, kw_only=True):
    """A session on corral's tmux server that no recorded instance claims."""

    session: str
    created_at: float  # when tmux created the session (Unix time)
    pid: int  # the pane's process: the agent
    command: str  # what the pane runs now (tmux's pane_current_command)
    cwd: str
    attach: tuple[str, ...]  # the argv that attaches to it


class KilledOrphan(msgspec.Struct, frozen=True):
    session: str
    pid: int
    survivors: tuple[int, ...]


class Ambiguous(msgspec.Struct, frozen=True):
    """The 400 of a title that names several instances: the API's error, and the titles it matches."""

    error: str
    matches: tuple[str, ...]
    detail: str = ""


# action → (request body, the Instance message it becomes)
ACTIONS: dict[str, tuple[type[Any], Callable[[Any], Any]]] = {
    "send": (SendText, lambda b: InstanceSend(b.text, b.enter)),
    "send-keys": (SendKeys, lambda b: InstanceSendKeys(b.keys)),
    "capture": (CaptureRequest, lambda b: InstanceCapture(b.lines, b.ansi)),
    "pause": (NoBody, lambda b: InstancePause()),
    "resume": (NoBody, lambda b: InstanceResume()),
    "restart": (NoBody, lambda b: InstanceRestart()),
    "kill": (NoBody, lambda b: InstanceKill()),
    "answer": (AnswerRequest, lambda b: InstanceAnswer(b.answer == "yes")),
}


# -- the daemon's side --------------------------------------------------------------------------------------


class InstanceDesk:
    """Answers instance requests on threads of its own. Every public method is thread-safe and returns a
    `concurrent.futures.Future` at once."""

    def __init__(
        self,
        tree: Callable[[], SupervisionTree | None],
        tmux_server: TmuxServer,
        *,
        board: InstanceBoard,
        list_records: Callable[[], concurrent.futures.Future[list[InstanceRecord]]] | None = None,
    ) -> None:
        self._tree = tree
        self._board = board
        self._metrics = FleetMetrics()
        self.tmux_server = tmux_server
        self._list_records = list_records
        self._pool = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="corral-instances")

    def close(self) -> None:
        """After the tree stopped: drop queued work, stop reading agents' output (the agents live on)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.tmux_server.close()

    def list(self, project: str, statuses: frozenset[str] = frozenset()) -> concurrent.futures.Future[Any]:
        return self._pool.submit(self._list, project, statuses)

    def start(self, project: str, request: StartInstance) -> concurrent.futures.Future[Any]:
        return self._pool.submit(self._start, project, request)

    def get(self, project: str, title: str) -> concurrent.futures.Future[Any]:
        return self._pool.submit(self._get, project, title)

    def act(self, project: str, title: str, message: Any) -> concurrent.futures.Future[Any]:
        return self._pool.submit(self._act, project, title, message)

    def rename(self, project: str, title: str, new_title: str) -> concurrent.futures.Future[Any]:
        return self._pool.submit(self._rename, project, title, new_title)

    def delete(
        self, project: str, title: str, *, force: bool = False, dry_run: bool = False
    ) -> concurrent.futures.Future[Any]:
        return self._pool.submit(self._delete, project, title, force, dry_run)

    def orphans(self) -> concurrent.futures.Future[Any]:
        return self._pool.submit(self._orphans)

    def adopt(self, project: str, session: str, title: str) -> concurrent.futures.Future[Any]:
        return self._pool.submit(self._adopt, project, session, title)

    def kill_orphan(self, session: str) -> concurrent.futures.Future[Any]:
        return self._pool.submit(self._kill_orphan, session)

    # -- on the desk's threads --------------------------------------------------------------------------

    def _running_tree(self) -> SupervisionTree:
        tree = self._tree()
        if tree is None:
            raise SupervisionError("the supervision tree is not running")
        return tree

    def _project(self, name: str) -> tuple[SupervisionTree, pykka.ActorRef[Any]]:
        """The tree and the project's supervisor, started now if it is not running yet (by the Projects)."""
        tree = self._running_tree()
        projects = tree.env.directory.get(f"{tree.root_id}/{PROJECTS}")
        if projects is None:
            raise SupervisionError("the projects' supervisor is restarting; try again in a moment")
        path = _ask(projects, EnsureProject(name), ACTION_TIMEOUT_S, "the projects' supervisor")
        ref = tree.env.directory.get(path)
        if ref is None:
            raise SupervisionError(f"the supervisor of project {name} is restarting; try again in a moment")
        return tree, ref

    def _list(self, project: str, statuses: frozenset[str]) -> list[InstanceView]:
        """The project's instances from the board its Project keeps (actors/board.py): no actor is asked,
        except an Instance that has not told its Project anything yet (just started, or restarting)."""
        rows = self._board.rows(project)
        if rows is None:  # its Project is not running yet, or still bringing its instances back
            self._project(project)  # starts it; NotFoundError for a project nobody registered
            if not self._board.wait_ready(project, LIST_TIMEOUT_S * 2):
                raise TimeoutError(
                    f"project {project} did not list its instances within {LIST_TIMEOUT_S * 2:g} s (it may "
                    "still be bringing its agents back); try again in a moment, or see the daemon's log"
                )
            rows = self._board.rows(project)
            if rows is None:
                raise ConflictError(f"project {project} is restarting; try again in a moment")
        tree = self._running_tree()
        now = tree.env.clock.monotonic()
        agents = {r.entry.title: (r.pid, r.started_at) for r in rows if r.pid and r.entry.final is None}
        metrics = self._metrics.sample(project, agents)
        views = []
        for row in rows:
            if row.info is None:
                view = self._asked_view(tree, row.entry)
            else:
                info = row.info
                if row.entry.final is None:
                    info = msgspec.structs.replace(info, metrics=metrics.get(row.entry.title))
                view = instance_view(row.entry, info, now)
            if not statuses or view.status in statuses:
                views.append(view)
        return views

    def _asked_view(self, tree: SupervisionTree, entry: InstanceEntry) -> InstanceView:
        """An instance the board has no info for, asked itself; unknown, with why, if it cannot answer."""
        now = tree.env.clock.monotonic()
        try:
            return self._view(tree, entry)
        except TimeoutError:
            return instance_view(entry, None, now, f"the instance did not answer within {LIST_TIMEOUT_S:g} s")
        except (ConflictError, NotFoundError):  # its actor restarting, or it ended and went meanwhile
            return instance_view(entry, None, now, "the instance is restarting (its actor failed)")

    def _start(self, project: str, request: StartInstance) -> InstanceView:
        tree, ref = self._project(project)
        entry: InstanceEntry = _ask(ref, request, ACTION_TIMEOUT_S, project)
        return self._view(tree, entry)

    def _get(self, project: str, title: str) -> InstanceView:
        tree, ref = self._project(project)
        return self._view(tree, _ask(ref, ResolveTitle(title), LIST_TIMEOUT_S, project))

    def _act(self, project: str, title: str, message: Any) -> Any:
        tree, ref = self._project(project)
        entry: InstanceEntry = _ask(ref, ResolveTitle(title), LIST_TIMEOUT_S, project)
        if entry.final is not None:
            return self._act_ended(tree, ref, entry, message)
        target = self._instance(tree, entry)
        if isinstance(message, InstanceRestart):
            info = _ask(target, GetInstanceInfo(), LIST_TIMEOUT_S, entry.title)
            if info.status == "paused":
                message = InstanceResume()  # what a person means by restarting a paused agent
        result = _ask(target, message, ACTION_TIMEOUT_S, entry.title)
        if isinstance(message, InstanceCapture):
            return Captured(project=entry.project, title=entry.title, lines=message.lines, text=result)
        return self._view(tree, entry)

    def _act_ended(
        self, tree: SupervisionTree, project: pykka.ActorRef[Any], entry: InstanceEntry, message: Any
    ) -> Any:
        """An action on an instance whose agent ended (its Instance shut down): restart starts a fresh one,
        capture shows its last screen, kill has nothing left to do; the rest need a running agent."""
        final = entry.final
        assert final is not None
        if isinstance(message, InstanceRestart):
            entry = _ask(project, RestartEnded(entry.title), ACTION_TIMEOUT_S, entry.project)
            return self._view(tree, entry)
        if isinstance(message, InstanceCapture):
            text = entry.last_screen
            if message.lines is not None:
                text = "\n".join(text.splitlines()[-message.lines :]) if message.lines > 0 else ""
            return Captured(project=entry.project, title=entry.title, lines=message.lines, text=text)
        if isinstance(message, InstanceKill):
            return self._view(tree, entry)
        raise ConflictError(
            f'instance "{entry.title}" has ended ({final.status}: {final.reason}); restart it: '
            f"corral instance restart {entry.title}"
        )

    def _rename(self, project: str, title: str, new_title: str) -> InstanceView:
        tree, ref = self._project(project)
        entry: InstanceEntry = _ask(ref, ResolveTitle(title), LIST_TIMEOUT_S, project)
        message = RenameInstance(title=entry.title, new_title=new_title)
        renamed: InstanceEntry = _ask(ref, message, ACTION_TIMEOUT_S, project)
        return self._view(tree, renamed)

    def _delete(self, project: str, title: str, force: bool, dry_run: bool) -> InstanceDeleted:
        _, ref = self._project(project)
        entry: InstanceEntry = _ask(ref, ResolveTitle(title), LIST_TIMEOUT_S, project)
        if entry.title != title:
            raise UsageError(
                f'delete needs the exact title; "{title}" only abbreviates "{entry.title}": '
                f"corral instance delete {entry.title}"
            )
        message = DeleteInstance(title=title, force=force, dry_run=dry_run)
        deleted: InstanceDeleted = _ask(ref, message, ACTION_TIMEOUT_S, project)
        return deleted

    def resolve(self, project: str, title: str) -> InstanceEntry:
        """The entry `title` names in `project` (its Project started if need be), on the caller's thread."""
        _, ref = self._project(project)
        entry: InstanceEntry = _ask(ref, ResolveTitle(title), LIST_TIMEOUT_S, project)
        return entry

    def record(self, entry: InstanceEntry) -> InstanceRecord | None:
        """The instance's row as the store has it now (None: not recorded), on the caller's thread."""
        return next(
            (r for r in self._records() if (r.project, r.title) == (entry.project, entry.title)), None
        )

    def _records(self) -> list[InstanceRecord]:
        if self._list_records is None:
            return []
        return self._list_records().result(timeout=LIST_TIMEOUT_S)

    def _orphans(self) -> list[Orphan]:
        # A session whose instance has ended (exited, failed) is nobody's: its runtime removes the session of
        # an agent that ended; one still there leaked, and must be killable.
        claimed = {r.session for r in self._records() if r.status not in FINISHED}
        server = self.tmux_server
        try:
            out = server.run(["list-panes", "-a", "-F", _ORPHAN_FIELDS])
        except TmuxError as exc:
            if exc.gone:
                return []
            raise
        found: dict[str, Orphan] = {}
        for line in out.splitlines():
            name, created, pid, command, cwd = line.split("\t", 4)
            if not name.startswith(SESSION_PREFIX) or name in claimed or name in found:
                continue
            found[name] = Orphan(
                session=name,
                created_at=float(created or 0),
                pid=int(pid),
                command=command,
                cwd=cwd,
                attach=(server.tmux, "-L", server.socket, "attach-session", "-t", f"={name}"),
            )
        return sorted(found.values(), key=lambda o: o.session)

    def _orphan(self, session: str) -> Orphan:
        for orphan in self._orphans():
            if orphan.session == session:
                return orphan
        claimed = any(r.session == session and r.status not in FINISHED for r in self._records())
        if claimed:
            raise ConflictError(f"tmux session {session} belongs to an instance: use corral instance kill")
        raise NotFoundError(f"no orphan tmux session {session} (corral instance orphans lists them)")

    def _adopt(self, project: str, session: str, title: str) -> InstanceView:
        orphan = self._orphan(session)
        tree, ref = self._project(project)
        title = title or _title_of(session, project)
        message = AdoptSession(session=session, title=title, program=orphan.command, cwd=orphan.cwd)
        entry: InstanceEntry = _ask(ref, message, ACTION_TIMEOUT_S, project)
        return self._view(tree, entry)

    def _kill_orphan(self, session: str) -> KilledOrphan:
        orphan = self._orphan(session)
        sids = {st.sid for st in tree_of(orphan.pid)} | {orphan.pid}
        self.tmux_server.kill_session(session)
        survivors = kill_tree(orphan.pid, sids=sids)
        log.info("killed orphan tmux session %s (pid %d)", session, orphan.pid)
        return KilledOrphan(session=session, pid=orphan.pid, survivors=tuple(survivors))

    def _instance(self, tree: SupervisionTree, entry: InstanceEntry) -> pykka.ActorRef[Any]:
        target = tree.env.directory.get(entry.path)
        if target is None:
            raise ConflictError(
                f'instance "{entry.title}" is restarting (its actor failed); try again in a moment'
            )
        return target

    def _view(self, tree: SupervisionTree, entry: InstanceEntry) -> InstanceView:
        info = entry.final
        if info is None:
            try:
                info = _ask(self._instance(tree, entry), GetInstanceInfo(), LIST_TIMEOUT_S, entry.title)
            except ConflictError:  # it ended meanwhile: its Project has its last info
                project = tree.env.directory.get(entry.path.rpartition("/")[0])
                if project is None:
                    raise
                entry = _ask(project, ResolveTitle(entry.title), LIST_TIMEOUT_S, entry.project)
                info = entry.final
                if info is None:
                    raise
        return instance_view(entry, info, tree.env.clock.monotonic())


def _title_of(session: str, project: str) -> str:
    """An adopted session's default title: its name without `corral_<project>_` (or `corral_`)."""
    rest = session.removeprefix(SESSION_PREFIX)
    for part in (f"{project}_", f"{project.replace('_', '-')}_"):
        if rest.startswith(part) and len(rest) > len(part):
            return rest[len(part) :]
    return rest or session


def _ask(ref: pykka.ActorRef[Any], message: Any, timeout: float, who: str) -> Any:
    try:
        return ref.ask(message, timeout=timeout)
    except pykka.Timeout:
        raise TimeoutError(f"{who} did not answer within {timeout:g} s; see the daemon's log") from None
    except pykka.ActorDeadError:
        raise ConflictError(f"{who} is restarting; try again in a moment") from None


# -- routes -------------------------------------------------------------------------------------------------


def add_instance_routes(app: web.Application) -> None:
    app.router.add_get(route("/v1/repos/{project}/instances"), _list)
    app.router.add_post(route("/v1/repos/{project}/instances"), _start)
    app.router.add_get(route("/v1/repos/{project}/instances/{title}"), _get)
    app.router.add_delete(route("/v1/repos/{project}/instances/{title}"), _delete)
    app.router.add_post(route("/v1/repos/{project}/instances/{title}/rename"), _rename)
    app.router.add_post(route("/v1/repos/{project}/instances/{title}/{action}"), _act)
    app.router.add_get("/v1/orphans", _orphans)
    app.router.add_post(route("/v1/repos/{project}/orphans/{session}/adopt"), _adopt)
    app.router.add_post(route("/v1/orphans/{session}/kill"), _kill_orphan)


async def settle(future: concurrent.futures.Future[_T], timeout: float) -> _T | web.Response:
    """The answer, or the response for the errors the shared middleware does not map this way."""
    try:
        return await answer(future, timeout)
    except AmbiguousTitle as exc:
        return json_response(Ambiguous(error=str(exc), matches=exc.matches), 400)
    except SupervisionError as exc:
        return error_response(503, str(exc))


async def _list(request: web.Request) -> web.Response:
    statuses = frozenset(
        s.strip() for value in request.query.getall("status", []) for s in value.split(",") if s.strip()
    )
    desk = request.app[CONTROL].instances
    result = await settle(desk.list(request.match_info["project"], statuses), LIST_TIMEOUT_S * 3)
    return result if isinstance(result, web.Response) else json_response(result)


async def _start(request: web.Request) -> web.Response:
    body = await read_body(request, StartInstance)
    desk = request.app[CONTROL].instances
    result = await settle(desk.start(request.match_info["project"], body), ACTION_TIMEOUT_S + 10)
    return result if isinstance(result, web.Response) else json_response(result, 201)


async def _get(request: web.Request) -> web.Response:
    desk = request.app[CONTROL].instances
    future = desk.get(request.match_info["project"], request.match_info["title"])
    result = await settle(future, LIST_TIMEOUT_S * 3)
    return result if isinstance(result, web.Response) else json_response(result)


async def _act(request: web.Request) -> web.Response:
    action = request.match_info["action"]
    if action not in ACTIONS:
        known = ", ".join(ACTIONS)
        return error_response(
            404,
            f"no such instance action: {action} (actions: {known}, rename, push, pr, checkout; an ended "
            "instance is deleted with DELETE /v1/repos/{project}/instances/{title})",
        )
    kind, to_message = ACTIONS[action]
    body = _defaults(kind) if not request.can_read_body else None
    if body is None:
        body = await read_body(request, kind)
    desk = request.app[CONTROL].instances
    future = desk.act(request.match_info["project"], request.match_info["title"], to_message(body))
    result = await settle(future, ACTION_TIMEOUT_S + 10)
    return result if isinstance(result, web.Response) else json_response(result)


def _defaults(kind: type[Any]) -> Any:
    """The body an action takes when none is sent: every field's default; None when a field has none."""
    try:
        return kind()
    except TypeError:
        return None


async def _rename(request: web.Request) -> web.Response:
    body = await read_body(request, RenameRequest)
    desk = request.app[CONTROL].instances
    future = desk.rename(request.match_info["project"], request.match_info["title"], body.title)
    result = await settle(future, ACTION_TIMEOUT_S + 10)
    return result if isinstance(result, web.Response) else json_response(result)


async def _delete(request: web.Request) -> web.Response:
    flags = _flags(request, "force", "dry_run")
    desk = request.app[CONTROL].instances
    project, title = request.match_info["project"], request.match_info["title"]
    future = desk.delete(project, title, force=flags["force"], dry_run=flags["dry_run"])
    result = await settle(future, ACTION_TIMEOUT_S + 10)
    return result if isinstance(result, web.Response) else json_response(result)


_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


def _flags(request: web.Request, *names: str) -> dict[str, bool]:
    """The route's boolean query parameters (`?force=true`); a 400 for any other parameter, a repeated one
    or a value that is not a boolean, so that a misspelt `?forse=true` never deletes as if it were not."""
    flags = dict.fromkeys(names, False)
    for key in dict.fromkeys(request.query):
        values = request.query.getall(key)
        if key not in flags:
            takes = ", ".join(names)
            raise UsageError(f'unknown query parameter "{key}" for {request.method} (it takes {takes})')
        if len(values) > 1:
            raise UsageError(f"give {key} once, not {len(values)} times")
        value = values[0].strip().lower()
        if value not in _TRUE + _FALSE:
            raise UsageError(f"{key} must be true or false, got {values[0]!r}")
        flags[key] = value in _TRUE
    return flags


async def _orphans(request: web.Request) -> web.Response:
    result = await settle(request.app[CONTROL].instances.orphans(), LIST_TIMEOUT_S * 3)
    return result if isinstance(result, web.Response) else json_response(result)


async def _adopt(request: web.Request) -> web.Response:
    body = AdoptRequest() if not request.can_read_body else await read_body(request, AdoptRequest)
    desk = request.app[CONTROL].instances
    future = desk.adopt(request.match_info["project"], request.match_info["session"], body.title)
    result = await settle(future, ACTION_TIMEOUT_S + 10)
    return result if isinstance(result, web.Response) else json_response(result, 201)


async def _kill_orphan(request: web.Request) -> web.Response:
    future = request.app[CONTROL].instances.kill_orphan(request.match_info["session"])
    result = await settle(future, ACTION_TIMEOUT_S)
    return result if isinstance(result, web.Response) else json_response(result)
