"""The SDK modes' transport: one JSON object per line, read from stdin on a thread, written to stdout whole.

    channel = JsonLines()
    channel.start()
    message = channel.get()          # a dict, or EOF, or a ParseError for a line that is no JSON object
    channel.send({"id": 1, "result": {}})

Both real protocols (codex app-server, claude stream-json) put one message on one line, so a reader never
needs more than `readline`. Writes hold a lock so that two threads (the turn's and the main loop's) never
interleave half lines. Faults: `freeze()` makes every later `send` block for ever and the reader stop
delivering (a hang), `ignore()` makes the reader drop everything it reads (an agent that stopped listening).
Internal events (a worker asking the main thread to hang) go through the same queue with `post`.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, BinaryIO

__all__ = ["EOF", "JsonLines", "ParseError"]

_SLICE_S = 0.2


class _Eof:
    def __repr__(self) -> str:
        return "EOF"


EOF = _Eof()
"""What `get` returns once stdin is closed."""


@dataclass(frozen=True, slots=True)
class ParseError:
    """A line that is not a JSON object."""

    line: str
    reason: str


class JsonLines:
    """JSON lines over a pair of binary streams (stdin and stdout by default)."""

    def __init__(self, reader: BinaryIO | None = None, writer: BinaryIO | None = None) -> None:
        self._reader = reader if reader is not None else sys.stdin.buffer
        self._writer = writer if writer is not None else sys.stdout.buffer
        self._queue: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._frozen = threading.Event()
        self._ignoring = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._read, name="corral-sim-stdin", daemon=True).start()

    def _read(self) -> None:
        while True:
            line = self._reader.readline()
            if self._frozen.is_set():
                threading.Event().wait()  # hung: read nothing more, for ever
            if not line:
                self._queue.put(EOF)
                return
            if self._ignoring.is_set() or not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError as exc:
                self._queue.put(ParseError(line.decode(errors="replace").rstrip("\n"), str(exc)))
                continue
            if isinstance(message, dict):
                self._queue.put(message)
            else:
                self._queue.put(ParseError(line.decode(errors="replace").rstrip("\n"), "not a JSON object"))

    def get(self, timeout: float | None = None) -> Any:
        """The next message (dict), `EOF`, a `ParseError`, or a posted event; None after `timeout`.

        Waits in slices of `_SLICE_S`: a signal that lands just before a wait starts is handled at the end of
        the slice, not never (Python runs handlers between bytecodes of the main thread)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = _SLICE_S if deadline is None else min(_SLICE_S, deadline - time.monotonic())
            try:
                return self._queue.get(timeout=max(0.0, left))
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    return None

    def post(self, event: Any) -> None:
        """Queue an internal event for the thread that calls `get`."""
        self._queue.put(event)

    def send(self, message: dict[str, Any]) -> None:
        """Write `message` as one line and flush; blocks for ever once frozen."""
        data = (json.dumps(message, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._frozen.is_set():
                threading.Event().wait()
            self._writer.write(data)
            self._writer.flush()

    def write_raw(self, data: bytes) -> None:
        """Write bytes that are not a message (a flood of noise), under the same lock."""
        with self._lock:
            self._writer.write(data)
            self._writer.flush()

    def freeze(self) -> None:
        """Stop writing and reading for ever (a hang)."""
        self._frozen.set()

    def ignore(self) -> None:
        """Read everything from now on and deliver nothing."""
        self._ignoring.set()
