"""Server-sent events: the encoding (pure), and a streamed reply carried out with its fault.

    encode("message_stop", {"type": "message_stop"})   # → b'event: message_stop\\ndata: {…}\\n\\n'
    await stream(request, events, fault)                # slow, stall and cut happen here

Faults, as a client sees them: `slow` — each event `delay` seconds after the one before; `stall` — a 200
with the stream's headers, then nothing until `seconds` pass (then the reply goes on) or the client gives
up; `cut` — the events up to the first delta, then the connection closes with the message unfinished.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from frontends.model.faults import Fault

__all__ = ["Event", "chunks", "cut_point", "encode", "gone", "hold", "stream"]

Event = tuple[str, dict[str, Any]]

_POLL_S = 0.1


def encode(name: str, data: dict[str, Any]) -> bytes:
    """One SSE event: its name and its JSON data on one line."""
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def chunks(text: str, size: int = 24) -> list[str]:
    """`text` in pieces of about `size` characters, as a model streams it (one empty piece for "")."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def cut_point(events: Sequence[Event]) -> int:
    """How many events a `cut` stream sends: up to and with the first delta (the message begun, never
    ended), at least one, never all."""
    for index, (name, _) in enumerate(events):
        if "delta" in name:
            return min(index + 1, len(events) - 1)
    return max(1, len(events) // 2)


def gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def hold(request: web.Request, seconds: float | None, stopping: Callable[[], bool]) -> bool:
    """Send nothing for `seconds` (None: for ever); True when the reply should then go on, False when the
    client went away or the server is stopping."""
    deadline = None if seconds is None else time.monotonic() + seconds
    while not gone(request) and not stopping() and (deadline is None or time.monotonic() < deadline):
        await asyncio.sleep(_POLL_S)
    return not gone(request) and not stopping()


async def stream(
    request: web.Request,
    events: Sequence[Event],
    fault: Fault | None,
    stopping: Callable[[], bool] = lambda: False,
) -> web.StreamResponse:
    """Send `events` as an SSE response, with `fault` (slow, stall or cut; others are not a stream's); a
    stall also ends when `stopping()` (the server shuts down)."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    kind = fault.kind if fault is not None else ""
    if kind == "stall" and fault is not None and not await hold(request, fault.seconds, stopping):
        return response
    count = cut_point(events) if kind == "cut" else len(events)
    for name, data in events[:count]:
        if kind == "slow":
            assert fault is not None
            await asyncio.sleep(fault.delay)
        await response.write(encode(name, data))
    if kind == "cut":
        assert request.transport is not None
        request.transport.close()  # no final chunk: the client sees the stream end mid-message
        return response
    await response.write_eof()
    return response
