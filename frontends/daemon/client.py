"""A small blocking client of the control API, for the CLI (and the dashboard): HTTP over the Unix socket.

    client = DaemonClient()                     # the default runtime directory, or DaemonClient(runtime_dir)
    client.ensure_running()                     # start a daemon if none answers, and wait until it does
    status, body = client.request("GET", "/v1/status")
    with client.events() as stream:             # the SSE stream, subscribed once this returns
        event = stream.next(timeout=5)          # a decoded dict, or None at the end of the stream

It uses `http.client` with a connection class that dials the socket: no aiohttp, so a command that talks to
the daemon starts as fast as one that does not. One connection per request (the daemon is local; keeping
connections alive would buy microseconds and cost a reconnect path).

**Autostart.** `ensure_running()` starts the daemon as `corral daemon start` does (`spawn.py`: a heart, which
starts the daemon) when nothing answers; `autostart()` also says whether this call started it. Several clients
may do so at once: each spawns a heart, the heart lock lets exactly one live, and the others exit at once with
status 0 ("already running"); every client then simply waits for the socket to answer.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from frontends.daemon.errors import DaemonError, DaemonNotRunning, RuntimeDirError
from frontends.daemon.lock import lock_holder, pid_alive
from frontends.daemon.paths import RuntimePaths

if TYPE_CHECKING:
    from frontends.daemon.spawn import Started

__all__ = ["DEFAULT_TIMEOUT_S", "DaemonClient", "EventStream", "Stopped"]

DEFAULT_TIMEOUT_S = 5.0


class Stopped(NamedTuple):
    """What `DaemonClient.stop` stopped: the daemon's pid and its heart's (None: it was not running)."""

    daemon_pid: int | None
    heart_pid: int | None


def _terminate(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


class _UnixConnection(http.client.HTTPConnection):
    """An HTTP/1.1 connection to a Unix socket (the Host header says `localhost`)."""

    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class DaemonClient:
    """Requests to the daemon of one runtime directory. Holds no connection between calls; thread-safe."""

    def __init__(self, runtime_dir: Path | str | None = None) -> None:
        self.paths = RuntimePaths.resolve(runtime_dir)

    @property
    def socket(self) -> Path:
        return self.paths.socket

    def _connect(self, timeout: float | None) -> _UnixConnection:
        self.paths.check()  # never talk to a socket someone else could have planted
        conn = _UnixConnection(str(self.paths.socket), timeout)
        try:
            conn.connect()
        except (FileNotFoundError, ConnectionRefusedError):
            conn.close()
            raise DaemonNotRunning(str(self.paths.socket)) from None
        except OSError as exc:
            conn.close()
            raise DaemonError(f"cannot connect to the corral daemon at {self.paths.socket}: {exc}") from None
        return conn

    def request(
        self, method: str, path: str, json: Any = None, timeout: float = DEFAULT_TIMEOUT_S
    ) -> tuple[int, Any]:
        """Send one request; returns (status, body decoded from JSON, or the text when it is not JSON).

        DaemonNotRunning when nothing listens on the socket; DaemonError when the daemon does not answer
        within `timeout` or the connection breaks.
        """
        conn = self._connect(timeout)
        try:
            headers = {"Accept": "application/json", "Connection": "close"}
            body = None
            if json is not None:
                body = msgspec.json.encode(json)
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            kind = response.getheader("Content-Type", "")
        except TimeoutError:
            raise DaemonError(
                f"the corral daemon did not answer {method} {path} within {timeout:g} s"
            ) from None
        except (ConnectionError, http.client.HTTPException) as exc:
            raise DaemonError(
                f"the connection to the corral daemon broke during {method} {path}: {exc}"
            ) from None
        finally:
            conn.close()
        if kind.startswith("application/json"):
            return response.status, msgspec.json.decode(data)
        return response.status, data.decode("utf-8", errors="replace")

    def call(self, method: str, path: str, json: Any = None, timeout: float = DEFAULT_TIMEOUT_S) -> Any:
        """`request`, raising DaemonError with the daemon's message unless the status is 2xx."""
        status, body = self.request(method, path, json=json, timeout=timeout)
        if not 200 <= status < 300:
            message = body.get("error") if isinstance(body, dict) else None
            raise DaemonError(f"the corral daemon refused {method} {path} ({status}): {message or body}")
        return body

    def ping(self, timeout: float = 1.0) -> dict[str, Any] | None:
        """The daemon's `{pid, version}` if it answers, else None (not running, or not answering in time)."""
        try:
            status, body = self.request("GET", "/v1/ping", timeout=timeout)
        except RuntimeDirError:
            raise  # not "not running": a problem the user must fix
        except DaemonError:
            return None
        return body if status == 200 and isinstance(body, dict) else None

    def ensure_running(self, start_timeout: float = 20.0) -> dict[str, Any]:
        """Return the ping of the running daemon, starting one first if none answers (see the module doc).
        DaemonStartError, with the last lines of its log, if it does not answer within `start_timeout`."""
        started = self.autostart(start_timeout)
        return {"pid": started.pid, "version": started.version}

    def autostart(self, start_timeout: float = 20.0) -> Started:
        """`ensure_running`, saying whether this call started the daemon (and whether it had been stopped on
        purpose before): what a command prints once on stderr."""
        from frontends.daemon.spawn import Started, start_daemon

        pong = self.ping()
        if pong is not None:
            return Started(pid=int(pong["pid"]), version=str(pong.get("version", "")))
        return start_daemon(self, timeout=start_timeout)

    def shutdown(self, timeout: float = 60.0) -> int | None:
        """Stop the daemon in order and its heart with it; returns the daemon's pid, or None if it was not
        running. See `stop`."""
        return self.stop(timeout).daemon_pid

    def stop(self, timeout: float = 60.0) -> Stopped:
        """Ask for an orderly shutdown — through the API, or through the heart (SIGTERM, which it passes on)
        while the daemon does not answer (starting, or between two restarts) — and wait until the socket is
        gone and the daemon and its heart have exited. DaemonError if one is still there after `timeout`."""
        heart = lock_holder(self.paths.heart_pid_file) if self.paths.dir.exists() else None
        daemon: int | None = None
        try:
            daemon = int(self.call("POST", "/v1/shutdown")["pid"])
        except DaemonNotRunning:
            if heart is not None:
                daemon = lock_holder(self.paths.pid_file)
                _terminate(heart)
        deadline = time.monotonic() + timeout
        delay = 0.002
        while (daemon is not None and (self.paths.socket.exists() or pid_alive(daemon))) or (
            heart is not None and pid_alive(heart)
        ):
            if time.monotonic() > deadline:
                alive = [f"{name} (pid {pid})" for name, pid in (("daemon", daemon), ("heart", heart))
                         if pid is not None and pid_alive(pid)]  # fmt: skip
                raise DaemonError(
                    f"the corral {' and its '.join(alive) or 'daemon'} did not stop within {timeout:g} s; "
                    f"see {self.paths.log_file}, or kill them: kill "
                    + " ".join(str(pid) for pid in (heart, daemon) if pid is not None)
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return Stopped(daemon_pid=daemon, heart_pid=heart)

    @contextlib.contextmanager
    def events(self, timeout: float | None = None) -> Iterator[EventStream]:
        """The daemon's event stream (`GET /v1/events`), subscribed once this returns. `timeout` bounds each
        read (None: wait forever)."""
        conn = self._connect(timeout)
        try:
            conn.request("GET", "/v1/events", headers={"Accept": "text/event-stream"})
            sock = conn.sock
            response = conn.getresponse()
            if response.status != 200:
                raise DaemonError(f"the corral daemon refused the event stream ({response.status})")
            stream = EventStream(response, sock)
            stream.wait_subscribed()
            yield stream
        finally:
            conn.close()


class EventStream:
    """Server-sent events read from one response: `next()` returns each event's decoded JSON."""

    def __init__(self, response: http.client.HTTPResponse, sock: socket.socket) -> None:
        self._response = response
        self._socket = sock

    def _line(self) -> bytes | None:
        line = self._response.readline()
        return line.rstrip(b"\r\n") if line else None

    def wait_subscribed(self) -> None:
        """Read up to the daemon's `: subscribed` comment: from then on no event is missed."""
        while (line := self._line()) is not None:
            if line == b": subscribed":
                return
        raise DaemonError("the event stream ended before it was subscribed")

    def next(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next event, or None when the stream ended (the daemon stopped). `timeout` (seconds), if
        given, becomes the stream's read timeout from now on; TimeoutError when a read waits longer."""
        if timeout is not None:
            self._socket.settimeout(timeout)
        data: list[bytes] = []
        while (line := self._line()) is not None:
            if line.startswith(b"data:"):
                data.append(line[5:].lstrip(b" "))
            elif not line and data:
                return msgspec.json.decode(b"\n".join(data))
        return None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while (event := self.next()) is not None:
            yield event

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._response.close()
