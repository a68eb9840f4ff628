"""One connection to the control API: aiohttp's protocol, with a deadline for the request's head and errors in
the API's own JSON shape even when aiohttp answers by itself.

    connection = ApiConnection(runner.server, loop=loop, head_timeout_s=HEAD_TIMEOUT_S, access_log=None)

**The head's deadline.** aiohttp reads a request's line and headers with no time limit of its own (its
keep-alive timer, in recent versions, is an hour by default and is not meant for this): a client that sends
half a request line and then nothing holds a connection, a file descriptor and a parser forever, and a
thousand of them hold a thousand. So every connection gets `head_timeout_s` from its start to the blank line
that ends its first request's head; past it, the connection is closed without an answer (there is no
request to answer). Counting bytes up to the blank line here, rather than asking the parser, keeps this off
aiohttp's private state; a client that trickles a byte a second is closed all the same. Later requests on a
kept-alive connection fall under aiohttp's keep-alive timeout, which the server sets to a few seconds.

**aiohttp's own errors.** A request that does not parse (a malformed request line, a bad header, a line too
long) never reaches the application: aiohttp answers it from `handle_error`, as `text/plain`. Here that
answer is `{"error": ..., "detail": ...}` like every other error of the API, and a client's malformed request
is logged at debug level: it is not corral's failure; so is the error of a refused body that aiohttp reads
to its end after the answer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from frontends.daemon.http import error_response

__all__ = ["HEAD_TIMEOUT_S", "ApiConnection"]

log = logging.getLogger(__name__)

HEAD_TIMEOUT_S = 10.0
"""How long a new connection may take to send its first request's line and headers."""

_HEAD_ENDS = (b"\r\n\r\n", b"\n\n")
_KEEP = 3  # bytes of the previous chunk kept, so a head end split across two reads is still seen


class ApiConnection(web.RequestHandler):
    """aiohttp's RequestHandler with the head deadline and JSON errors (see the module docstring)."""

    def __init__(
        self, manager: web.Server, *, loop: asyncio.AbstractEventLoop, head_timeout_s: float, **kwargs: Any
    ) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self._head_loop = loop
        self._head_timeout_s = head_timeout_s
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._head_timer = self._head_loop.call_later(self._head_timeout_s, self._head_expired)

    def data_received(self, data: bytes) -> None:
        if self._head_timer is not None:
            seen = self._head_tail + data
            if any(end in seen for end in _HEAD_ENDS):
                self._head_timer.cancel()
                self._head_timer = None
            else:
                self._head_tail = seen[-_KEEP:]
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _head_expired(self) -> None:
        self._head_timer = None
        log.debug("closing a connection that sent no whole request head within %g s", self._head_timeout_s)
        self.force_close()

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        """aiohttp reads what is left of a refused body after the answer, and logs the body's own error
        (a bad Content-Encoding) once more as "Unhandled exception": a client's mistake, already answered."""
        exc = kwargs.get("exc_info")
        if isinstance(exc, web.RequestPayloadError | ConnectionError):
            log.debug("after the answer: %s", " ".join(str(exc).split()))
            return
        super().log_exception(*args, **kwargs)

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's own answer to a request it could not parse or handle, as the API's JSON error."""
        if status >= 500:
            log.error("aiohttp could not handle a request (%s)", status, exc_info=exc)
            error, detail = "internal error (a bug in corral; see the daemon's log)", repr(exc or message)
        else:
            log.debug("malformed request (%s): %s", status, message or exc)
            error, detail = _parse_error(message or (str(exc) if exc else ""))
        if request.writer.output_size > 0:  # the answer has begun: nothing can be added to it
            raise ConnectionError("an answer was already under way; the connection is closed")
        response = error_response(status, error, detail)
        response.force_close()
        return response


def _parse_error(message: str) -> tuple[str, str]:
    """aiohttp's parser message (`Invalid method encountered:\\n\\n  b'GARBAGE'\\n     ^`) as (error, detail):
    its first line, and the bytes it quotes without the caret line."""
    first, _, rest = message.strip().partition("\n")
    detail = " ".join(
        line.strip() for line in rest.splitlines() if line.strip() and set(line.strip()) != {"^"}
    )
    return f"malformed HTTP request: {first.rstrip(':') or 'it does not parse'}", detail
