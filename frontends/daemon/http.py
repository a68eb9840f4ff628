"""What every route of the control API shares: JSON answers, the error shape, reading a body, and waiting
for work done on a daemon thread without blocking the loop.

    return json_response(task, 201)
    return error_response(404, 'no task named "x" in project app')    # {"error": ..., "detail": ""}
    body = await read_body(request, NewTask)                           # ClientMistake (400, 408, 413…)
    project = await answer(control.register_project(path))             # TimeoutError past ANSWER_TIMEOUT_S

**Errors are always `{"error": "...", "detail": "..."}`** (`ApiError`): `error` says what was wrong and,
where there is something to do, what to do, in one line (the CLI prints it as it is); `detail` adds what is
known beyond that — the bytes a malformed request was refused for, the exception behind an internal error —
or is empty.

**Integers in a body** are checked before the body is decoded into its Struct: one beyond SQLite's 64 bits
(`{"wave": 99999999999999999999}`, which JSON allows and Python would carry on with until the store raised
OverflowError) is a 400 naming where it is, whatever the route.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from frontends.daemon.schema import ApiError
from protocols.records import INT64_MAX, INT64_MIN

__all__ = [
    "ANSWER_TIMEOUT_S",
    "BODY_TIMEOUT_S",
    "ClientMistake",
    "answer",
    "error_response",
    "json_response",
    "read_body",
    "route",
]

ANSWER_TIMEOUT_S = 5.0
"""How long a handler waits for the store or an actor before answering 503."""

BODY_TIMEOUT_S = 10.0
"""How long a request's body may take to arrive once its head has (a client that stalls half-way gets 408)."""

_T = TypeVar("_T")


class ClientMistake(Exception):
    """A request the API refuses, with its status; the middleware turns it into the JSON error."""

    def __init__(self, status: int, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


def route(template: str) -> str:
    """`template` with each `{name}` matching any one path segment. aiohttp's default refuses `{` and `}` in
    a segment, so an instance titled `x@{1}` (a valid title) could be started but never addressed."""
    return re.sub(r"\{(\w+)\}", r"{\1:[^/]+}", template)


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(value), status=status, content_type="application/json")


def error_response(status: int, error: str, detail: str = "") -> web.Response:
    return json_response(ApiError(error=error, detail=detail), status)


async def answer(future: concurrent.futures.Future[_T], timeout: float | None = None) -> _T:
    """The result of work done on a daemon thread, without blocking the loop; TimeoutError past `timeout`
    (default ANSWER_TIMEOUT_S). Giving up does not cancel the work (shield): the daemon may already be
    doing it, and would find its reply future cancelled under it."""
    limit = ANSWER_TIMEOUT_S if timeout is None else timeout
    try:
        return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), limit)
    except TimeoutError:
        raise TimeoutError(f"the daemon did not answer within {limit:g} s; see its log") from None


async def read_body(request: web.Request, kind: type[_T]) -> _T:
    """The body decoded into `kind`; ClientMistake 400 for a body that is not JSON, does not fit or holds an
    integer beyond 64 bits, 408 for one that does not arrive in time (a 413 past the size limit and a bad
    Content-Encoding come from aiohttp and are mapped by the middleware)."""
    try:
        data = await asyncio.wait_for(request.read(), BODY_TIMEOUT_S)
    except TimeoutError:
        raise ClientMistake(408, f"the request body did not arrive within {BODY_TIMEOUT_S:g} s") from None
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise ClientMistake(400, f"the request body is not valid JSON: {exc}") from None
    where = _huge_int(raw, "$")
    if where:
        raise ClientMistake(
            400, f"the request body does not fit: {where} is beyond the 64-bit integers (at most {INT64_MAX})"
        )
    try:
        return msgspec.convert(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise ClientMistake(400, f"the request body does not fit: {exc}") from None


def _huge_int(value: Any, path: str) -> str:
    """The JSON path of the first integer outside INT64_MIN..INT64_MAX in `value`, or ""."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return path if not INT64_MIN <= value <= INT64_MAX else ""
    if isinstance(value, dict):
        for key, item in value.items():
            if found := _huge_int(item, f"{path}.{key}"):
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if found := _huge_int(item, f"{path}[{index}]"):
                return found
    return ""
