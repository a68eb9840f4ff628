"""The corral daemon: hosts the supervision tree and serves the control API on a Unix socket.

    corral daemon start        spawn.start_daemon  → python -m frontends.daemon.main (detached)
    main.run()                 the foreground process: pid lock, signals, Daemon (root.py), exit status
    root.Daemon                the composition root: tree (root_children), store thread, ControlServer
    server.ControlServer       aiohttp on the socket, in its own thread and loop; routes in api.py
    client.DaemonClient        blocking HTTP over the socket for the CLI; ensure_running() autostarts

This package's `__init__` and the modules it re-exports import neither aiohttp nor pykka: the CLI imports
the client and starts fast. `main`, `root`, `server` and `api` are imported only by the daemon process.
See docs/daemon.md.
"""

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
