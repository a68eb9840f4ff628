"""The control API: JSON over HTTP on the daemon's Unix socket, and its event stream (SSE).

    GET  /v1/ping        Pong                       the daemon is up
    GET  /v1/status      DaemonStatus               pid, uptime, socket, database, repos, supervision
    GET  /v1/repos       [Project]                  registered repositories
    POST /v1/repos       {path} → Project           register (201; 200 if it already was; 400 if not a repo)
    POST /v1/reload      ReloadReport               re-read the configuration (as SIGHUP does)
    POST /v1/shutdown    Stopping (202)             orderly shutdown (as SIGTERM does)
    GET  /v1/events      text/event-stream          every event published in the daemon, `data: <json>`
    GET  /v1/tree        SupervisionNode            the supervision tree, live (protocols/observer.py)

Under /v1/repos/{project}/, the routes of two more modules (their docstrings have the details):

    …/instances[/{title}[/{action}]], /v1/orphans…   the agents                      instances.py
    …/instances/{title}/{diff,push,pr,checkout}      an instance's branch            branches.py
    GET  …/tasks[?status=…&topic=…&all=1]            [TaskSummary] (no contents)     tasks.py
    POST …/tasks                                     NewTask → Task (201)
    GET  …/tasks/{name}                              TaskDetail (the task and its wave tasks)
    POST …/tasks/{name}/transition                   {event, payload?} → TransitionResult
    POST …/signals                                   {task, signal_type, payload?} → Signal (202)
    GET  …/signals[?status=…&task=…&limit=N]         [Signal], newest first
    GET  …/audit[?task=…&instance=…&level=…&limit=N] [AuditEvent], newest first

Bodies are the Structs of `frontends.daemon.schema` and `protocols.records`; docs/api.md lists every route,
docs/daemon.md shows the daemon's own bodies.

**The loop never blocks.** The handlers run on the server's own event loop (see `server.py`). Everything that
touches the store or an actor comes from the daemon (`DaemonControl`) as a `concurrent.futures.Future`,
awaited through `asyncio.wrap_future` with a timeout. A pykka future is never awaited here: its `__await__`
calls `get()`, which would freeze every connection until the actor answers.

**Errors** are `{"error": "...", "detail": "..."}` (see `http.py`) with 4xx for a client's mistake (bad
JSON, an integer beyond 64 bits, a NUL byte in a path, a bad Content-Encoding, a path that is not a
repository, an unknown route), 503 when the daemon does not answer in time, and 500 — logged with its
traceback — only for a bug. Bad input never produces a 500. A `CorralError` raised by the work maps by its
kind: UsageError and PayloadError 400, NotFoundError 404, ConflictError and TransitionError (a move the
lifecycle refuses) 409, TooLargeError 413, ToolError (a program such as gh missing or not logged in) 424,
DiskFullError 507, any other StoreError 503. A request aiohttp cannot parse gets the same JSON
(`connection.py`). A client that goes away before its answer is no error: it is logged at debug level.

**The event stream** subscribes to the EventHub with `on_ready` bridged by `call_soon_threadsafe`, so a
publisher (any actor thread) wakes the stream without the loop polling. The subscription's queue is bounded:
a client too slow to read gets a `{"type": "lagged", "missed": N}` event in place of what it missed. The
first thing sent is the comment `: subscribed`, after which no event is missed. On shutdown, `on_shutdown`
wakes every stream to end it at once; without that, aiohttp would wait its whole shutdown timeout for them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
from aiohttp import web

from actors.eventbus import EventHub, Subscription
from actors.supervision import SupervisorStats
from frontends.daemon.http import (
    ANSWER_TIMEOUT_S,
    ClientMistake,
    answer,
    error_response,
    json_response,
    read_body,
)
from frontends.daemon.schema import DaemonStatus, Pong, RegisterRepo, ReloadReport, Stopping
from protocols.errors import (
    ConflictError,
    CorralError,
    DiskFullError,
    NotFoundError,
    PayloadError,
    StoreError,
    SupervisionError,
    TooLargeError,
    ToolError,
    TransitionError,
    UsageError,
)
from protocols.health import WriteFaults
from protocols.heart import HeartReport
from protocols.messages import encode
from protocols.observer import SupervisionNode
from protocols.records import Project

if TYPE_CHECKING:
    from frontends.daemon.branches import BranchDesk
    from frontends.daemon.instances import InstanceDesk
    from frontends.daemon.tasks import TaskDesk

__all__ = ["ANSWER_TIMEOUT_S", "CONTROL", "KEEPALIVE_S", "DaemonControl", "DaemonInfo", "make_app"]

log = logging.getLogger(__name__)

KEEPALIVE_S = 15.0
"""An idle event stream sends a comment this often, so a vanished client is noticed and its queue freed."""

_STREAM_QUEUE = 1024
_STREAM_BATCH = 256


class DaemonInfo(msgspec.Struct, frozen=True):
    """What does not change during a daemon's life."""

    pid: int
    version: str
    started_at: str
    socket: str
    runtime_dir: str
    database: str


class DaemonControl(Protocol):
    """What the API needs from the daemon. Every method is thread-safe and returns at once; the work is done
    on the daemon's threads and its result delivered through the future."""

    @property
    def info(self) -> DaemonInfo: ...

    @property
    def hub(self) -> EventHub: ...

    def uptime_s(self) -> float: ...

    def write_faults(self) -> WriteFaults: ...
    def heart(self) -> HeartReport: ...

    def supervision(self) -> concurrent.futures.Future[SupervisorStats]: ...

    def supervision_tree(self) -> concurrent.futures.Future[SupervisionNode]: ...

    def list_projects(self) -> concurrent.futures.Future[list[Project]]: ...

    def register_project(self, path: str) -> concurrent.futures.Future[tuple[Project, bool]]: ...

    def request_reload(self, source: str) -> concurrent.futures.Future[ReloadReport]: ...

    def request_stop(self, reason: str) -> None: ...

    @property
    def instances(self) -> InstanceDesk: ...

    @property
    def tasks(self) -> TaskDesk: ...

    @property
    def branches(self) -> BranchDesk: ...


class _Streams:
    """The wake-up events of the open event streams, and whether the server is closing."""

    def __init__(self) -> None:
        self.wakes: set[asyncio.Event] = set()
        self.closing = False


CONTROL = web.AppKey("control", DaemonControl)
STREAMS = web.AppKey("streams", _Streams)


def make_app(control: DaemonControl) -> web.Application:
    """The aiohttp application serving `control`."""
    app = web.Application(middlewares=[_errors, _no_nul_in_path])
    app[CONTROL] = control
    app[STREAMS] = _Streams()
    app.router.add_get("/v1/ping", _ping)
    app.router.add_get("/v1/status", _status)
    app.router.add_get("/v1/repos", _list_repos)
    app.router.add_post("/v1/repos", _register_repo)
    app.router.add_post("/v1/reload", _reload)
    app.router.add_post("/v1/shutdown", _shutdown)
    app.router.add_get("/v1/events", _events)
    app.router.add_get("/v1/tree", _tree)
    from frontends.daemon.branches import add_branch_routes  # they import this module's helpers
    from frontends.daemon.instances import add_instance_routes
    from frontends.daemon.tasks import add_task_routes

    add_branch_routes(app)  # first: …/{title}/push is a branch route, not an instance action
    add_instance_routes(app)
    add_task_routes(app)
    from frontends.daemon.attach import add_attach_route  # a pty agent's terminal, proxied (websocket)

    add_attach_route(app)
    app.on_shutdown.append(_end_streams)
    return app


# -- routes, responses and errors --------------------------------------------------------------------------


_STATUS_OF: tuple[tuple[type[CorralError], int], ...] = (
    (TooLargeError, 413),
    (UsageError, 400),
    (PayloadError, 400),
    (NotFoundError, 404),
    (ConflictError, 409),
    (TransitionError, 409),
    (ToolError, 424),
    (DiskFullError, 507),
    (StoreError, 503),
)


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> Any:
    try:
        return await handler(request)
    except ClientMistake as exc:
        log.debug("%s %s: %d %s", request.method, request.path, exc.status, exc)
        return error_response(exc.status, str(exc), exc.detail)
    except web.HTTPException as exc:  # the router's 404 and 405, the body-size limit's 413
        if exc.status < 400:
            raise
        return _http_error(request, exc)
    except web.RequestPayloadError as exc:  # a body aiohttp could not read: a bad Content-Encoding, say
        detail = " ".join(str(exc).split())
        return error_response(400, "the request body cannot be read (a bad Content-Encoding?)", detail)
    except CorralError as exc:
        status = next((code for kind, code in _STATUS_OF if isinstance(exc, kind)), 500)
        if status == 500:
            log.error("%s %s failed: %s", request.method, request.path, exc)
        return error_response(status, str(exc), type(exc).__name__ if status == 500 else "")
    except TimeoutError as exc:
        return error_response(503, str(exc) or "the daemon did not answer in time; see its log")
    except ConnectionError as exc:  # the client went away mid-request: nobody is left to answer
        log.debug("%s %s: the client went away (%s)", request.method, request.path, exc)
        return error_response(499, "the client closed the connection")
    except Exception as exc:
        log.exception("%s %s: unexpected error", request.method, request.path)
        return error_response(
            500,
            f"internal error: {type(exc).__name__}: {exc} (a bug in corral; see the daemon's log)",
            f"{request.method} {request.path} raised {type(exc).__name__}; the traceback is in the log",
        )


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusals (unknown route, wrong method, body too large) in the API's shape."""
    if isinstance(exc, web.HTTPNotFound):
        return error_response(404, f"no such route: {request.method} {request.path}", "see docs/api.md")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return error_response(
            405, f"{request.path} does not take {request.method} (it takes {allowed})", f"allowed: {allowed}"
        )
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return error_response(413, f"the request body is too large: {exc.text}", "bodies are at most 1 MiB")
    text = exc.text if exc.text and exc.text != f"{exc.status}: {exc.reason}" else ""
    return error_response(exc.status, exc.reason or f"HTTP {exc.status}", text or "")


@web.middleware
async def _no_nul_in_path(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> Any:
    """A NUL byte in a path segment (`/v1/repos/%00/tasks`) names nothing: refuse it here, once, before any
    route hands it to the store or the file system (which raise ValueError on it)."""
    for key, value in request.match_info.items():
        if "\x00" in value:
            raise ClientMistake(400, f"the {key} in the path contains a NUL byte: {value!r}")
    return await handler(request)


# -- handlers ----------------------------------------------------------------------------------------------


async def _ping(request: web.Request) -> web.Response:
    info = request.app[CONTROL].info
    return json_response(Pong(pid=info.pid, version=info.version))


async def _status(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    info = control.info
    repos = await answer(control.list_projects())
    try:
        stats: dict[str, Any] | None = msgspec.to_builtins(await answer(control.supervision()))
    except (TimeoutError, CorralError) as exc:
        log.warning("status: the root supervisor did not answer: %s", exc or "timeout")
        stats = None
    status = DaemonStatus(
        pid=info.pid,
        version=info.version,
        started_at=info.started_at,
        uptime_s=round(control.uptime_s(), 3),
        socket=info.socket,
        runtime_dir=info.runtime_dir,
        database=info.database,
        repos=tuple(repos),
        supervision=stats,
        writes=control.write_faults(),
        heart=control.heart(),
    )
    return json_response(status)


async def _tree(request: web.Request) -> web.Response:
    """The supervision tree, read live from every supervisor (actors/supervision/observer.py)."""
    try:
        node = await answer(request.app[CONTROL].supervision_tree())
    except SupervisionError as exc:  # the tree is starting or stopping
        return error_response(503, str(exc))
    return json_response(node)


async def _list_repos(request: web.Request) -> web.Response:
    return json_response(await answer(request.app[CONTROL].list_projects()))


async def _register_repo(request: web.Request) -> web.Response:
    body = await read_body(request, RegisterRepo)
    project, created = await answer(request.app[CONTROL].register_project(body.path))
    return json_response(project, 201 if created else 200)


async def _reload(request: web.Request) -> web.Response:
    return json_response(await answer(request.app[CONTROL].request_reload("api"), timeout=30.0))


async def _shutdown(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    control.request_stop("api")
    return json_response(Stopping(pid=control.info.pid), 202)


async def _events(request: web.Request) -> web.StreamResponse:
    control, streams = request.app[CONTROL], request.app[STREAMS]
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    def on_ready() -> None:  # on a publisher's thread
        try:
            loop.call_soon_threadsafe(wake.set)
        except RuntimeError:
            pass  # the loop closed between the stream's end and this event: nobody is listening

    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    sub = control.hub.subscribe(maxsize=_STREAM_QUEUE, on_ready=on_ready)
    streams.wakes.add(wake)
    try:
        await response.write(b": subscribed\n\n")
        while True:
            wake.clear()  # before taking: an event put after this sets it again, so no wake-up is lost
            batch = _take(sub, _STREAM_BATCH)
            if batch:
                await response.write(b"".join(b"data: " + encode(event) + b"\n\n" for event in batch))
                continue
            if streams.closing:  # what was queued before the shutdown has been sent
                break
            try:
                await asyncio.wait_for(wake.wait(), KEEPALIVE_S)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
    except ConnectionError:
        pass  # the client went away: let go of its subscription
    finally:
        streams.wakes.discard(wake)
        sub.close()
    return response


def _take(sub: Subscription, limit: int) -> list[Any]:
    batch = []
    while len(batch) < limit and (event := sub.get(timeout=0)) is not None:
        batch.append(event)
    return batch


async def _end_streams(app: web.Application) -> None:
    streams = app[STREAMS]
    streams.closing = True
    for wake in list(streams.wakes):
        wake.set()
