"""Attaching a person's terminal to a pty agent, proxied by the daemon (a pty agent is the daemon's child:
nothing else can reach its terminal).

    GET /v1/repos/{project}/instances/{title}/attach     websocket

The client sends what the person types as binary messages (the bytes their terminal produced); the daemon
types them to the agent (`send-keys`, one key per character, in order, in one write). The daemon sends the
agent's screen as text messages, `{"screen": "..."}` (plain text, the screen as the ring's terminal model
plays it), whenever it changed, checked every `FRAME_S` while someone is attached; when the agent ends,
`{"ended": "<status>: <reason>"}` and the socket closes. Detaching is the client's business (it closes).

A tmux agent is attached with tmux itself (its `attach.argv`), an sdk agent has no terminal: both are a
409 here, saying so, before the upgrade.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from actors.instance import InstanceCapture, InstanceSendKeys
from frontends.daemon.api import CONTROL
from frontends.daemon.http import answer, error_response, route
from protocols.errors import CorralError
from protocols.instances import FINISHED, InstanceView

__all__ = ["FRAME_S", "add_attach_route"]

log = logging.getLogger(__name__)

FRAME_S = 0.05
"""How often an attached agent's screen is compared with what the client has: the most typing waits to
show (a local capture of the ring costs well under a millisecond)."""
SCREEN_LINES = 200
_STATUS_EVERY = 10  # frames between two looks at the instance's status (has it ended?)
_TIMEOUT_S = 10.0


class Screen(msgspec.Struct, frozen=True, omit_defaults=True):
    """What the daemon sends an attached client."""

    screen: str | None = None
    ended: str | None = None


def add_attach_route(app: web.Application) -> None:
    app.router.add_get(route("/v1/repos/{project}/instances/{title}/attach"), _attach)


async def _attach(request: web.Request) -> web.StreamResponse:
    desk = request.app[CONTROL].instances
    project, title = request.match_info["project"], request.match_info["title"]
    view: InstanceView = await answer(desk.get(project, title), _TIMEOUT_S)
    if view.mode != "pty":
        how = "attach it with tmux (corral instance attach)" if view.mode == "tmux" else "it has no terminal"
        return error_response(409, f"instance {view.title} runs in {view.mode} mode: {how}")
    if view.status in FINISHED or view.status == "paused":
        hint = "resume" if view.status == "paused" else "restart"
        return error_response(
            409, f"instance {view.title} is {view.status}: corral instance {hint} {view.title} first"
        )
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    title = view.title
    sender = asyncio.create_task(_send_screens(ws, desk, project, title))
    try:
        async for message in ws:
            if message.type == WSMsgType.BINARY and message.data:
                keys = tuple(bytes(message.data).decode("utf-8", errors="replace"))
                try:
                    await answer(desk.act(project, title, InstanceSendKeys(keys)), _TIMEOUT_S)
                except (CorralError, TimeoutError) as exc:
                    log.info("attach %s/%s: keys not sent: %s", project, title, exc)
            elif message.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
    finally:
        sender.cancel()
        await ws.close()
    return ws


async def _send_screens(ws: web.WebSocketResponse, desk: Any, project: str, title: str) -> None:
    last = None
    frame = 0
    while not ws.closed:
        ended = ""
        try:
            captured = await answer(
                desk.act(project, title, InstanceCapture(SCREEN_LINES, False)), _TIMEOUT_S
            )
            if captured.text != last:
                last = captured.text
                await ws.send_str(_encode(Screen(screen=last)))
            if frame % _STATUS_EVERY == 0:
                view: InstanceView = await answer(desk.get(project, title), _TIMEOUT_S)
                if view.status in FINISHED or view.status == "paused":
                    ended = f"{view.status}: {view.reason}"
        except (CorralError, TimeoutError) as exc:
            ended = str(exc) or "the daemon did not answer in time"
        if ended:
            await ws.send_str(_encode(Screen(ended=ended)))
            await ws.close()
            return
        frame += 1
        await asyncio.sleep(FRAME_S)


def _encode(message: Screen) -> str:
    return msgspec.json.encode(message).decode()
