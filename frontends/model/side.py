"""The requests the agent CLIs make besides asking the model for a turn, answered so that they go on.

    HEAD /  GET /                    Claude Code's pre-connect check: any 200
    GET /v1/models                   Claude Code, once on a fresh home: the models it may pick
    POST /v1/messages/count_tokens   a rough count (never seen from the pinned CLIs, cheap to answer)

A model request that is a side request (a title, a quota check: see each API module) gets `SIDE_TURN`, a
short text that never counts as a turn of the scenario.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from frontends.model.scenario import Turn

__all__ = ["MODELS", "SIDE_TURN", "routes"]

SIDE_TURN = Turn(say="corral-model")

MODELS = ("claude-opus-4-8", "claude-sonnet-4-6", "claude-haiku-4-5", "gpt-5.5")
"""The model ids `GET /v1/models` lists; any id is accepted in a request and echoed back."""

routes = web.RouteTableDef()


@routes.get("/")  # aiohttp answers HEAD / with it too
async def root(request: web.Request) -> web.Response:
    return web.Response(text="corral-model: a scripted model server (docs/model.md)\n")


@routes.get("/v1/models")
async def models(request: web.Request) -> web.Response:
    data: list[dict[str, Any]] = [
        {"type": "model", "id": name, "display_name": name, "created_at": "2026-01-01T00:00:00Z"}
        for name in MODELS
    ]
    return web.json_response({"data": data, "has_more": False, "first_id": MODELS[0], "last_id": MODELS[-1]})


@routes.post("/v1/messages/count_tokens")
async def count_tokens(request: web.Request) -> web.Response:
    return web.json_response({"input_tokens": max(1, len(await request.read()) // 4)})
