"""The HTTP server: the model routes of both APIs, the side routes, and a small control surface for tests.

    app = make_app(ModelState(scenario, FaultSwitch(fault), RequestLog(path)))

    POST /v1/messages          Anthropic Messages (streamed or not)      anthropic.py
    POST /v1/responses         OpenAI Responses (streamed)                openai.py
    HEAD / · GET /v1/models …  side requests                              side.py
    GET  /_model/requests      the request log, as JSON
    GET|PUT /_model/fault      the global fault: {"fault": "rate-limit,times=2"} or {"fault": "none"}

A model request is read into a Conversation, its turn chosen (`script.choose`), its fault decided
(`FaultSwitch.fire`: the global fault before the turn's), logged, then answered: an error status, a
stream with its fault (`sse.stream`), or a whole message. A body the server cannot read is a 400 that
says why; an unknown path a 404 that names it. Every request is logged.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from frontends.model import anthropic, openai, side, sse
from frontends.model.conversation import Conversation, RequestError
from frontends.model.faults import Fault, FaultError, FaultSwitch, parse_fault
from frontends.model.requestlog import RequestLog
from frontends.model.scenario import Scenario, Turn
from frontends.model.script import choose

__all__ = ["ModelState", "make_app"]

_STATUS_FAULTS = ("rate-limit", "overloaded", "server-error")


@dataclass
class ModelState:
    """What the server runs on: the scenario, the fault switch, the log; `stopping` ends stalls."""

    scenario: Scenario
    faults: FaultSwitch
    log: RequestLog
    stopping: bool = False


_STATE = web.AppKey("state", ModelState)
routes = web.RouteTableDef()


def make_app(state: ModelState) -> web.Application:
    app = web.Application(middlewares=[_logged])
    app[_STATE] = state
    app.add_routes(routes)
    app.add_routes(side.routes)

    async def stop(app: web.Application) -> None:
        state.stopping = True

    app.on_shutdown.append(stop)
    return app


@web.middleware
async def _logged(request: web.Request, handler: Any) -> web.StreamResponse:
    """Log every request that is not a model request (those log themselves, with their turn); an unknown
    path or method is a JSON error that names it."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status == 404:
            response = _error(
                404, f"corral-model has no route {request.method} {request.path} (docs/model.md)"
            )
        elif exc.status == 405:
            response = _error(
                405, f"corral-model does not answer {request.method} {request.path} (docs/model.md)"
            )
        else:
            response = _error(exc.status, exc.reason)
    if request.path not in ("/v1/messages", "/v1/responses"):
        request.app[_STATE].log.record(
            {"method": request.method, "path": request.path, "status": response.status}
        )
    return response


def _error(status: int, message: str) -> web.Response:
    return web.json_response(
        {"type": "error", "error": {"type": "invalid_request_error", "message": message}}, status=status
    )


@dataclass(frozen=True, slots=True)
class _Api:
    """What the server needs of one model API's module."""

    read_request: Callable[[Any], Conversation]
    stream_events: Callable[[Turn, Conversation, bool], list[sse.Event]]
    whole: Callable[[Turn, Conversation, bool], dict[str, Any]]
    error_body: Callable[[str], tuple[int, dict[str, Any]]]


_ANTHROPIC = _Api(
    anthropic.read_request, anthropic.stream_events, anthropic.message_json, anthropic.error_body
)
_OPENAI = _Api(openai.read_request, openai.stream_events, openai.response_json, openai.error_body)


@routes.post("/v1/messages")
async def messages(request: web.Request) -> web.StreamResponse:
    return await _model(request, _ANTHROPIC)


@routes.post("/v1/responses")
async def responses(request: web.Request) -> web.StreamResponse:
    return await _model(request, _OPENAI)


async def _model(request: web.Request, api: _Api) -> web.StreamResponse:
    state = request.app[_STATE]
    entry: dict[str, Any] = {"method": request.method, "path": request.path}
    try:
        conversation = api.read_request(json.loads(await request.read()))
    except (ValueError, RequestError) as exc:
        message = str(exc) if isinstance(exc, RequestError) else f"the body is not JSON: {exc}"
        state.log.record({**entry, "status": 400, "error": message})
        return _error(400, message)
    if conversation.side:
        turn, fault = side.SIDE_TURN, None
        entry.update(side=conversation.side)
    else:
        choice = choose(state.scenario, conversation)
        turn = choice.turn
        fault = state.faults.fire(choice.key, turn.fault)
        entry.update(role=choice.role, script=choice.source, turn=conversation.turn)
    failure = api.error_body(fault.kind) if fault is not None and fault.kind in _STATUS_FAULTS else None
    state.log.record(
        {
            **entry,
            "api": conversation.api,
            "model": conversation.model,
            "stream": conversation.stream,
            "prompt": conversation.prompt.strip().split("\n", 1)[0][:200],
            "cwd": conversation.cwd,
            "say": turn.say[:200],
            "tool": _tool_entry(turn),
            "fault": fault.spec if fault is not None else None,
            "status": failure[0] if failure is not None else 200,
        }
    )
    if failure is not None:
        assert fault is not None
        headers = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        return web.json_response(failure[1], status=failure[0], headers=headers)
    bad_tool = fault is not None and fault.kind == "bad-tool"
    if conversation.stream:
        events = api.stream_events(turn, conversation, bad_tool)
        return await sse.stream(request, events, fault, lambda: state.stopping)
    return await _whole(request, api.whole(turn, conversation, bad_tool), fault, state)


async def _whole(
    request: web.Request, reply: dict[str, Any], fault: Fault | None, state: ModelState
) -> web.StreamResponse:
    """A non-streamed reply, with the faults that make sense for one: slow (late once), stall, cut."""
    kind = fault.kind if fault is not None else ""
    if kind == "slow" and fault is not None:
        await asyncio.sleep(fault.delay)
    if kind == "stall" and fault is not None:
        await sse.hold(request, fault.seconds, lambda: state.stopping)
    if kind == "cut" and request.transport is not None:
        request.transport.close()  # no reply at all: the client sees the connection end
    return web.json_response(reply)


def _tool_entry(turn: Turn) -> dict[str, str] | None:
    tool = turn.tool
    if tool is None:
        return None
    return {"kind": tool.kind, "path": tool.path, "command": tool.command}


@routes.get("/_model/requests")
async def requests_log(request: web.Request) -> web.Response:
    return web.json_response(request.app[_STATE].log.entries())


@routes.get("/_model/fault")
async def get_fault(request: web.Request) -> web.Response:
    fault = request.app[_STATE].faults.global_fault
    return web.json_response({"fault": fault.spec if fault is not None else "none"})


@routes.put("/_model/fault")
async def put_fault(request: web.Request) -> web.Response:
    try:
        body = json.loads(await request.read())
        spec = body["fault"] if isinstance(body, dict) else None
        if not isinstance(spec, str):
            raise ValueError('expected {"fault": "NAME[,KEY=VALUE…]"} or {"fault": "none"}')
        fault = parse_fault(spec)
    except (ValueError, KeyError, FaultError) as exc:
        return _error(400, str(exc) if not isinstance(exc, KeyError) else 'expected {"fault": "…"}')
    request.app[_STATE].faults.set_global(fault)
    return web.json_response({"fault": fault.spec if fault is not None else "none"})
