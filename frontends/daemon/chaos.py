"""The chaos routes: what `corral chaos` needs from a daemon that no other daemon offers.

    GET  /v1/chaos/actors    [ActorEntry]             every live supervised actor: its path and generation urn
    POST /v1/chaos/crash     {path} → ActorEntry      that actor raises InjectedFault in a tell handler

They exist only in a daemon started with CORRAL_CHAOS=1 in its environment (`corral chaos` starts its private
daemon so); in any other daemon they are not routes at all, and answer 404 as every unknown path does. The
crash is a real one: the actor raises while handling a message, as a bug would, and its supervisor restarts it
(or gives up past its intensity) exactly as it would for a bug. Nothing here reaches into an actor's state.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from actors.supervision import ActorDirectory
from frontends.daemon.http import ClientMistake, json_response, read_body
from protocols.chaos import ActorEntry, CrashRequest, InjectedCrash, chaos_enabled

__all__ = ["add_chaos_routes"]

_Directory = Callable[[], ActorDirectory | None]
_DIRECTORY: web.AppKey[_Directory] = web.AppKey("chaos_directory")


def add_chaos_routes(app: web.Application, directory: _Directory) -> bool:
    """Add the chaos routes to `app` when CORRAL_CHAOS=1; True if they were added. `directory` gives the
    supervision tree's actor directory (None while there is no tree)."""
    if not chaos_enabled():
        return False
    app[_DIRECTORY] = directory
    app.router.add_get("/v1/chaos/actors", _actors)
    app.router.add_post("/v1/chaos/crash", _crash)
    return True


def _live(request: web.Request) -> dict[str, ActorEntry]:
    directory = request.app[_DIRECTORY]()
    if directory is None:
        raise ClientMistake(503, "the supervision tree is not running")
    entries = {}
    for path in directory.paths():
        ref = directory.get(path)
        if ref is not None and ref.is_alive():
            entries[path] = ActorEntry(path=path, urn=ref.actor_urn)
    return entries


async def _actors(request: web.Request) -> web.Response:
    return json_response(sorted(_live(request).values(), key=lambda e: e.path))


async def _crash(request: web.Request) -> web.Response:
    body = await read_body(request, CrashRequest)
    entry = _live(request).get(body.path)
    if entry is None:
        raise ClientMistake(404, f"no live actor at {body.path!r}: GET /v1/chaos/actors lists them")
    directory = request.app[_DIRECTORY]()
    if directory is None or not directory.tell(body.path, InjectedCrash(reason=f"chaos: crash {body.path}")):
        raise ClientMistake(404, f"the actor at {body.path!r} ended before it could be crashed")
    return json_response(entry)
