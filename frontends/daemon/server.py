"""The control server: the aiohttp application of `api.py` on the daemon's Unix socket, in a thread of its
own with an event loop of its own.

    server = ControlServer(make_app(control), paths.socket, on_exit=...)
    server.start()          # returns once the socket accepts connections
    server.stop()           # the socket disappears first, then open requests and streams end

Why its own thread and loop: the daemon's main thread belongs to signals (SIGTERM, SIGHUP) and the actors
have threads of their own; aiohttp's runner is set up with `handle_signals=False` so it never touches them.

How the socket appears: it is bound under a temporary name, given mode 0600, set listening, and only then
renamed to `daemon.sock` — atomically replacing a stale socket that a killed daemon left behind. A client
that sees the path can connect at once (the backlog holds it until the loop accepts), and nobody else can
connect between the bind and the chmod. Only the holder of the pid lock gets here, so the rename never
takes the place of a live daemon's socket.

Each connection is served by `ApiConnection` (connection.py): a request's head must arrive within
HEAD_TIMEOUT_S of the connection's start, an idle kept-alive connection is closed after KEEPALIVE_IDLE_S, and
what aiohttp answers by itself (a request that does not parse) is the API's JSON error too. The socket is
served through `loop.create_server` with that protocol rather than through an aiohttp site, whose protocol is
fixed; the runner still owns the application's start-up, shutdown and the open connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from frontends.daemon.connection import HEAD_TIMEOUT_S, ApiConnection
from frontends.daemon.errors import DaemonError

__all__ = ["ControlServer"]

log = logging.getLogger(__name__)

_BACKLOG = 128
KEEPALIVE_IDLE_S = 15.0
"""A kept-alive connection with no request for this long is closed (corral's own clients close at once)."""


class ControlServer:
    """One aiohttp application served on a Unix socket by a dedicated thread. `start` and `stop` are called
    from one thread (the daemon's main thread); `on_exit` is told if the server ends without being asked."""

    def __init__(
        self,
        app: web.Application,
        socket_path: Path,
        *,
        shutdown_timeout_s: float = 5.0,
        head_timeout_s: float = HEAD_TIMEOUT_S,
        on_exit: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.socket_path = socket_path
        self.shutdown_timeout_s = shutdown_timeout_s
        self.head_timeout_s = head_timeout_s
        self._on_exit = on_exit
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._stopping = False
        self._inode: int | None = None
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="corral-control-api", daemon=True)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> None:
        """Bind the socket and serve it; DaemonError if that fails or does not happen within `timeout`."""
        self._sock = self._bind()
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise DaemonError(f"the control server did not start within {timeout:g} s")
        if self._failure is not None:
            self._sock.close()
            self._unlink_socket()
            raise DaemonError(f"the control server failed to start: {self._failure}") from self._failure
        self._publish_socket()

    def stop(self, timeout: float = 15.0) -> None:
        """Remove the socket, stop accepting, end the event streams, wait (up to the shutdown timeout) for
        requests in flight, and close the loop. Idempotent."""
        if self._stopping:
            return
        self._stopping = True
        self._unlink_socket()
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the control server did not stop within %g s; abandoning its thread", timeout)

    # -- the socket ----------------------------------------------------------------------------------------

    def _temporary_path(self) -> Path:
        return self.socket_path.with_name(f".s.{os.getpid()}")

    def _bind(self) -> socket.socket:
        tmp = self._temporary_path()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(tmp))
            os.chmod(tmp, 0o600)
            sock.listen(_BACKLOG)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise DaemonError(f"cannot listen on {self.socket_path}: {exc.strerror or exc}") from None
        return sock

    def _publish_socket(self) -> None:
        tmp = self._temporary_path()
        self._inode = os.stat(tmp).st_ino
        os.replace(tmp, self.socket_path)

    def _unlink_socket(self) -> None:
        """Remove the socket path if it is still ours (never a successor's)."""
        try:
            if self._inode is not None and os.stat(self.socket_path).st_ino == self._inode:
                self.socket_path.unlink()
        except FileNotFoundError:
            pass
        with contextlib.suppress(OSError):
            self._temporary_path().unlink()

    # -- the thread ----------------------------------------------------------------------------------------

    def _run(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(self.app, handle_signals=False, shutdown_timeout=self.shutdown_timeout_s)
        listener: asyncio.Server | None = None
        try:
            try:
                loop.run_until_complete(runner.setup())
                listener = loop.run_until_complete(self._listen(runner))
            except BaseException as exc:
                self._failure = exc
                loop.run_until_complete(runner.cleanup())
                return
            finally:
                self._ready.set()
            loop.run_forever()  # until stop() stops it
            listener.close()  # no new connections; the runner ends the open ones
            loop.run_until_complete(runner.cleanup())
        except BaseException:
            log.exception("the control server failed")
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            if not self._stopping and self._on_exit is not None:
                self._on_exit("the control server stopped unexpectedly")

    async def _listen(self, runner: web.AppRunner) -> asyncio.Server:
        manager = runner.server
        assert manager is not None and self._sock is not None
        loop = asyncio.get_running_loop()

        def connection() -> ApiConnection:
            return ApiConnection(
                manager,
                loop=loop,
                head_timeout_s=self.head_timeout_s,
                keepalive_timeout=KEEPALIVE_IDLE_S,
                access_log=None,
            )

        return await loop.create_server(connection, sock=self._sock, backlog=_BACKLOG)
