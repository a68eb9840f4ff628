"""The corral daemon: hosts the supervision tree and serves the control API on a Unix socket.

    corral daemon start        spawn.start_daemon  → python -m frontends.daemon.heart (detached)
    heart.main()               the watchdog: runs the daemon as its child, restarts it after an abnormal exit
    main.run()                 the foreground process: pid lock, signals, Daemon (root.py), exit status
    root.Daemon                the composition root: tree (root_children), store thread, ControlServer
    server.ControlServer       aiohttp on the socket, in its own thread and loop; routes in api.py
    client.DaemonClient        blocking HTTP over the socket for the CLI; ensure_running() autostarts

This package's `__init__` imports nothing: the names below are loaded when first used (PEP 562), so the heart,
which imports `frontends.daemon.heart`, does not pay for the client's http.client, and the CLI imports the
client only when it talks to the daemon. None of the modules the names come from imports aiohttp or pykka;
`main`, `root`, `server` and `api` are imported only by the daemon process. See docs/daemon.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from frontends.daemon.client import DaemonClient, EventStream
    from frontends.daemon.errors import (
        AlreadyRunning,
        DaemonError,
        DaemonNotRunning,
        DaemonStartError,
        RuntimeDirError,
    )
    from frontends.daemon.paths import RUNTIME_ENV, RuntimePaths

__all__ = [
    "RUNTIME_ENV",
    "AlreadyRunning",
    "DaemonClient",
    "DaemonError",
    "DaemonNotRunning",
    "DaemonStartError",
    "EventStream",
    "RuntimeDirError",
    "RuntimePaths",
]

_WHERE = {
    "DaemonClient": "client",
    "EventStream": "client",
    "AlreadyRunning": "errors",
    "DaemonError": "errors",
    "DaemonNotRunning": "errors",
    "DaemonStartError": "errors",
    "RuntimeDirError": "errors",
    "RUNTIME_ENV": "paths",
    "RuntimePaths": "paths",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
