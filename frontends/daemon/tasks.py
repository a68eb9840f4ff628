"""The task routes of the control API: tasks, the signals that move them, and the audit log that records both.

    GET  /v1/repos/{project}/tasks[?status=…&topic=…&all=1]     [TaskSummary]    as `corral task list --json`
    POST /v1/repos/{project}/tasks                              NewTask → Task (201)
    GET  /v1/repos/{project}/tasks/{name}                       TaskDetail       as `corral task show --json`
    POST /v1/repos/{project}/tasks/{name}/transition            {event, payload?} → TransitionResult
    POST /v1/repos/{project}/signals                            {task, signal_type, payload?} → Signal (202)
    GET  /v1/repos/{project}/signals[?status=…&task=…&limit=N]  [Signal], newest first
    GET  /v1/repos/{project}/audit[?task=…&instance=…&level=…&limit=N]   [AuditEvent], newest first

The bodies are the store's own records (`protocols.records`) and the Structs of `frontends.daemon.schema`, so
the API, `corral … --json` and the web admin read one schema. Everything sent here is sent **as the user** (a
person at a UI, source `user`): user-only events such as `cancel` are allowed, as from `corral` in a shell.

**What follows a commit.** A transition commits its outbox item (`enter_<status>`) with the task's move;
the desk then wakes the project's supervisor (starting it if it is not running), which carries the item out
at once — after `corral task transition`, which pokes nobody, the item waits for the supervisor's look once a
second, or for the daemon's 2 s sweep when no supervisor runs. An emitted signal is committed `pending`, and
the desk pokes the signal claimer's wake socket (as `corral signal emit` does), so it is applied within
milliseconds rather than at the claimer's next one-second tick. Each change is also published on the event
bus (`task_created`, `task_transitioned`, `signal_emitted`) for the event stream.

**Errors**, mapped by the API's middleware: 404 for an unknown project (naming the registered ones) or task
(naming the project's tasks); 400 for a bad name, status, event, signal type, payload, query parameter or
body field, with the parser's message; 409 for a name that is taken, a transition the lifecycle refuses
(with the FSM's message: the status and the events it allows) or the topic rule; 413 for content or a
payload over the 1 MiB cap; 507 when the disk holding the database is full; 503 when the store does not
answer within the API's timeout.

**Threads.** Parsing and validating happen on the loop (pure functions, no I/O). The store work runs on the
daemon's store thread (`Daemon._store_call`: one apsw connection, one thread) and comes back as a
`concurrent.futures.Future`, awaited with the API's timeout; the hooks after a commit only hand work on
(a tell, a datagram, a submit), so the store thread never waits on anything but SQLite.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from aiohttp import web

from frontends.daemon.api import CONTROL
from frontends.daemon.http import answer, json_response, read_body, route
from frontends.daemon.schema import EmitSignal, NewTask, Payload, TaskDetail, TransitionRequest
from protocols.errors import NotFoundError, UsageError
from protocols.fsm import Event, Source, parse_event, parse_status
from protocols.messages import SignalEmitted, TaskCreated, TaskTransitioned
from protocols.records import (
    AuditEvent,
    AuditLevel,
    Project,
    Signal,
    SignalStatus,
    Task,
    TaskSummary,
    TransitionResult,
    default_task_title,
    task_name,
)
from protocols.signals import SIGNAL_TYPES, normalize_payload, parse_signal_type

if TYPE_CHECKING:
    from multidict import MultiMapping

    from actors.store import Store

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "StoreCall", "TaskDesk", "add_task_routes"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

StoreCall = Callable[[Callable[["Store"], _T]], concurrent.futures.Future[_T]]
"""Runs `work(store)` on the daemon's store thread; the future gets its result or its exception."""

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
"""`limit=N` of the signal and audit listings: 1 to MAX_LIMIT, DEFAULT_LIMIT when not given."""

_NAMED = 20  # a 404 names at most this many tasks
_LEVELS = tuple(level.value for level in AuditLevel)  # in rising order: level=warn means warn and error
_SIGNAL_STATUSES = tuple(status.value for status in SignalStatus)
_encode = msgspec.json.Encoder().encode


def _nothing(*_: Any) -> None:
    pass


# -- the daemon's side --------------------------------------------------------------------------------------


class TaskDesk:
    """Does the store work of the task, signal and audit routes, and what must follow a commit.

    `store_call` runs work on the daemon's store thread. The hooks run on that thread right after a commit
    and must return at once: `publish(event)` puts an event on the bus, `wake_project(project_id)` has the
    project's supervisor carry out its outbox (starting it if it is not running), `wake_claimer()` pokes
    the signal claimer. A hook that raises is logged: the change is committed, and the request succeeds.

    Every public method is thread-safe and returns a `concurrent.futures.Future` at once; its inputs are
    already parsed (the routes do that on the loop), its errors are the store's `CorralError`s.
    """

    def __init__(
        self,
        store_call: StoreCall[Any],
        *,
        publish: Callable[[Any], None] = _nothing,
        wake_project: Callable[[int], None] = _nothing,
        wake_claimer: Callable[[], None] = _nothing,
    ) -> None:
        self._store_call = store_call
        self._publish = publish
        self._wake_project = wake_project
        self._wake_claimer = wake_claimer

    def list_tasks(
        self, project: str, statuses: Sequence[str] = (), topic: str = "", include_cancelled: bool = False
    ) -> concurrent.futures.Future[list[TaskSummary]]:
        """The project's tasks in creation order, without their contents (`content_bytes` says how big);
        cancelled ones only if `include_cancelled` or asked for by status (`statuses` may hold "planned":
        ready with a plan)."""

        def work(store: Store) -> list[TaskSummary]:
            record = store.get_project(project)
            return store.list_task_summaries(
                record.id, statuses=statuses, topic=topic, include_cancelled=include_cancelled
            )

        return self._store_call(work)

    def create_task(self, project: str, request: NewTask) -> concurrent.futures.Future[Task]:
        """A new task in status ready; ConflictError if the name is taken."""

        def work(store: Store) -> Task:
            record = store.get_project(project)
            task = store.create_task(
                record.id,
                request.name,
                title=request.title or default_task_title(request.content),
                topic=request.topic,
                content=request.content,
                branch=request.branch,
            )
            self._after("create", lambda: self._publish(_created(record, task)))
            return task

        return self._store_call(work)

    def show_task(self, project: str, name: str) -> concurrent.futures.Future[TaskDetail]:
        """The task and its wave tasks; NotFoundError naming the project's tasks."""

        def work(store: Store) -> TaskDetail:
            record = store.get_project(project)
            task = _find_task(store, record, name)
            waves = store.list_wave_tasks(task.id)
            return TaskDetail(**msgspec.structs.asdict(task), wave_tasks=tuple(waves))

        return self._store_call(work)

    def transition(
        self, project: str, name: str, event: Event, payload: str = ""
    ) -> concurrent.futures.Future[TransitionResult]:
        """Apply `event` as the user (one transaction: status, audit row, outbox item), then wake the
        project's supervisor to carry the item out. TransitionError when the lifecycle refuses,
        ConflictError for the topic rule."""

        def work(store: Store) -> TransitionResult:
            record = store.get_project(project)
            task = _find_task(store, record, name)
            result = store.transition_task(record.id, task.name, event, source=Source.USER, payload=payload)
            self._after("transition", lambda: self._publish(_transitioned(record, result)))
            self._after("transition", lambda: self._wake_project(record.id))
            return result

        return self._store_call(work)

    def emit_signal(
        self, project: str, task: str, signal_type: str, payload: str = ""
    ) -> concurrent.futures.Future[Signal]:
        """Store a pending signal from the user for an existing task, then poke the claimer."""

        def work(store: Store) -> Signal:
            record = store.get_project(project)
            found = _find_task(store, record, task)
            signal = store.emit_signal(
                record.id, found.name, signal_type, payload or None, source=Source.USER
            )
            self._after("emit", lambda: self._publish(_emitted(record, signal)))
            self._after("emit", self._wake_claimer)
            return signal

        return self._store_call(work)

    def list_signals(
        self, project: str, statuses: Sequence[str] = (), task: str = "", limit: int = DEFAULT_LIMIT
    ) -> concurrent.futures.Future[list[Signal]]:
        """The project's signals, newest first."""

        def work(store: Store) -> list[Signal]:
            record = store.get_project(project)
            return store.list_signals(record.id, statuses=statuses, task=task, limit=limit)

        return self._store_call(work)

    def list_audit(
        self,
        project: str,
        *,
        task: str = "",
        instance: str = "",
        levels: tuple[str, ...] = (),
        limit: int = DEFAULT_LIMIT,
    ) -> concurrent.futures.Future[list[AuditEvent]]:
        """The project's audit events, newest first (the machine-wide rows belong to no project)."""

        def work(store: Store) -> list[AuditEvent]:
            record = store.get_project(project)
            return store.list_audit(record.id, task=task, instance=instance, levels=levels, limit=limit)

        return self._store_call(work)

    def _after(self, what: str, hook: Callable[[], Any]) -> None:
        try:
            hook()
        except Exception:
            log.exception("after the %s was committed, a follow-up failed (the change stands)", what)


def _find_task(store: Store, project: Project, name: str) -> Task:
    """The task, or NotFoundError naming the project's tasks, so a typo is fixed from the message alone."""
    try:
        return store.get_task(project.id, name)
    except NotFoundError as exc:
        names = [t.name for t in store.list_tasks(project.id, include_cancelled=True)]
        raise NotFoundError(f"{exc} ({_named('task', names)})") from None


def _named(kind: str, names: Sequence[str]) -> str:
    if not names:
        return f"it has no {kind}s yet"
    shown = ", ".join(names[:_NAMED])
    more = f", … ({len(names)} in all)" if len(names) > _NAMED else ""
    return f"{kind}s: {shown}{more}"


def _created(project: Project, task: Task) -> TaskCreated:
    return TaskCreated(project=project.name, task=task.name, status=task.status)


def _transitioned(project: Project, result: TransitionResult) -> TaskTransitioned:
    change = result.transition
    return TaskTransitioned(
        project=project.name,
        task=result.task.name,
        from_status=str(change.from_status),
        event=str(change.event),
        to_status=str(change.to_status),
        source=Source.USER.value,
    )


def _emitted(project: Project, signal: Signal) -> SignalEmitted:
    return SignalEmitted(
        project=project.name, task=signal.task, signal_id=signal.id, signal_type=signal.signal_type
    )


# -- parsing requests (on the loop: pure) -------------------------------------------------------------------


def _query(request: web.Request, *accepted: str) -> MultiMapping[str]:
    """The query, refusing a parameter the route does not take: a misspelt filter must not list everything."""
    unknown = [key for key in dict.fromkeys(request.query) if key not in accepted]
    if unknown:
        takes = ", ".join(accepted) if accepted else "no parameters"
        raise UsageError(
            f'unknown query parameter "{unknown[0]}" for {request.method} {request.path} (it takes {takes})'
        )
    return request.query


def _values(query: MultiMapping[str], key: str) -> list[str]:
    """Every value of a repeatable parameter, each also split at commas: `status=a&status=b,c`."""
    return [part.strip() for value in query.getall(key, []) for part in value.split(",") if part.strip()]


def _one(query: MultiMapping[str], key: str) -> str:
    values = query.getall(key, [])
    if len(values) > 1:
        raise UsageError(f"give {key} once, not {len(values)} times")
    return values[0].strip() if values else ""


def _limit(query: MultiMapping[str]) -> int:
    text = _one(query, "limit")
    if not text:
        return DEFAULT_LIMIT
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"invalid limit {text!r}: give a whole number from 1 to {MAX_LIMIT}")
    return limit


def _flag(query: MultiMapping[str], key: str) -> bool:
    """A yes/no parameter: absent is no; `?all`, `all=1`, `all=true` are yes; `all=0`, `all=false` no."""
    if key not in query:
        return False
    text = _one(query, key).lower()
    if text in ("", "1", "true", "yes"):
        return True
    if text in ("0", "false", "no"):
        return False
    raise UsageError(f"invalid {key} {text!r}: give {key}=1 or {key}=0")


def _task_statuses(values: Iterable[str]) -> list[str]:
    """Canonical status names ("planned" stays: ready with a plan); UsageError naming the valid ones."""
    names = []
    for value in values:
        status, phase = parse_status(value)
        names.append(phase or status.value)
    return list(dict.fromkeys(names))


def _signal_statuses(values: Iterable[str]) -> list[str]:
    wanted = [value.lower() for value in values]
    for status in wanted:
        if status not in _SIGNAL_STATUSES:
            raise UsageError(f'unknown signal status "{status}"; statuses are: {", ".join(_SIGNAL_STATUSES)}')
    return list(dict.fromkeys(wanted))


def _levels(text: str) -> tuple[str, ...]:
    """`level=warn`: warn and error, the rows at that level or above (as `corral audit --level`)."""
    if not text:
        return ()
    level = text.lower()
    if level not in _LEVELS:
        raise UsageError(f'unknown level "{text}"; levels are: {", ".join(_LEVELS)}')
    return _LEVELS[_LEVELS.index(level) :]


def _payload_text(payload: Payload) -> str:
    """A body's payload as the command line gives it: text as it is, an object as its JSON."""
    if payload is None:
        return ""
    if isinstance(payload, str):
        return payload
    return _encode(payload).decode()


# -- routes -------------------------------------------------------------------------------------------------


def add_task_routes(app: web.Application) -> None:
    app.router.add_get(route("/v1/repos/{project}/tasks"), _list_tasks)
    app.router.add_post(route("/v1/repos/{project}/tasks"), _create_task)
    app.router.add_get(route("/v1/repos/{project}/tasks/{name}"), _show_task)
    app.router.add_post(route("/v1/repos/{project}/tasks/{name}/transition"), _transition)
    app.router.add_post(route("/v1/repos/{project}/signals"), _emit_signal)
    app.router.add_get(route("/v1/repos/{project}/signals"), _list_signals)
    app.router.add_get(route("/v1/repos/{project}/audit"), _list_audit)


async def _list_tasks(request: web.Request) -> web.Response:
    query = _query(request, "status", "topic", "all")
    statuses = _task_statuses(_values(query, "status"))
    topic, include_cancelled = _one(query, "topic"), _flag(query, "all")
    desk = request.app[CONTROL].tasks
    future = desk.list_tasks(request.match_info["project"], statuses, topic, include_cancelled)
    return json_response(await answer(future))


async def _create_task(request: web.Request) -> web.Response:
    _query(request)
    body = await read_body(request, NewTask)
    task = await answer(request.app[CONTROL].tasks.create_task(request.match_info["project"], body))
    return json_response(task, 201)


async def _show_task(request: web.Request) -> web.Response:
    _query(request)
    name = task_name(request.match_info["name"])
    return json_response(
        await answer(request.app[CONTROL].tasks.show_task(request.match_info["project"], name))
    )


async def _transition(request: web.Request) -> web.Response:
    _query(request)
    name = task_name(request.match_info["name"])
    body = await read_body(request, TransitionRequest)
    event = parse_event(body.event)
    text = _payload_text(body.payload)
    payload = normalize_payload(SIGNAL_TYPES[event.value], text) if text.strip() else ""
    desk = request.app[CONTROL].tasks
    return json_response(await answer(desk.transition(request.match_info["project"], name, event, payload)))


async def _emit_signal(request: web.Request) -> web.Response:
    _query(request)
    body = await read_body(request, EmitSignal)
    task = task_name(body.task)
    signal_type = parse_signal_type(body.signal_type)
    payload = normalize_payload(signal_type, _payload_text(body.payload))
    desk = request.app[CONTROL].tasks
    future = desk.emit_signal(request.match_info["project"], task, signal_type.name, payload)
    return json_response(await answer(future), 202)


async def _list_signals(request: web.Request) -> web.Response:
    query = _query(request, "status", "task", "limit")
    statuses = _signal_statuses(_values(query, "status"))
    task = _one(query, "task")
    task = task_name(task) if task else ""
    desk = request.app[CONTROL].tasks
    future = desk.list_signals(request.match_info["project"], statuses, task, _limit(query))
    return json_response(await answer(future))


async def _list_audit(request: web.Request) -> web.Response:
    query = _query(request, "task", "instance", "level", "limit")
    task = _one(query, "task")
    task = task_name(task) if task else ""
    desk = request.app[CONTROL].tasks
    future = desk.list_audit(
        request.match_info["project"],
        task=task,
        instance=_one(query, "instance"),
        levels=_levels(_one(query, "level")),
        limit=_limit(query),
    )
    return json_response(await answer(future))
