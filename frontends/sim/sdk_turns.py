"""What the two SDK modes share: a surface whose turns run on a worker thread, can be interrupted from the
main loop, and wait for the client's answer to a request (an approval) without blocking that loop.

The main thread owns stdin: it reads every message and routes it (a new turn, an interrupt, the answer to a
pending request). The turn's thread only writes. So an interrupt or an approval answer is always read, even
while a turn waits; and a worker that must hang hands that to the main thread (`hang`), the only one allowed
to change signal handlers.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any, NoReturn

from frontends.sim.jsonlines import JsonLines

__all__ = [
    "API_RETRIES",
    "HANG",
    "NETWORK_WAIT_S",
    "RETRY_S",
    "PendingRequests",
    "SdkSurface",
    "chunks",
    "start_turn",
]

HANG = "corral-sim:hang"
"""The event a worker posts to the main loop: (HANG, hard)."""

_POLL_S = 0.05

# `/offline`: the real CLIs back off for seconds to minutes between retries; the sim keeps the shape, short.
RETRY_S = 0.2
"""Between two retries of the model API."""
NETWORK_WAIT_S = 2.0
"""Between two "Reconnecting... waiting for network" of codex, once its retries are spent."""
API_RETRIES = {"codex": 5, "claude": 10}


class PendingRequests:
    """Requests the sim sent to the client, by id, until the client answers them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[Any, _Slot] = {}

    def open(self, request_id: Any) -> _Slot:
        """Register `request_id` before sending it (the answer may come before `wait` starts)."""
        slot = _Slot()
        with self._lock:
            self._waiting[request_id] = slot
        return slot

    def resolve(self, request_id: Any, answer: Any) -> bool:
        """Deliver the client's answer; False for an id nobody waits for."""
        with self._lock:
            slot = self._waiting.pop(request_id, None)
        if slot is None:
            return False
        slot.answer = answer
        slot.done.set()
        return True

    def wait(self, request_id: Any, slot: _Slot, interrupt: threading.Event) -> Any:
        """The answer in `slot`, or None when `interrupt` is set first."""
        while not slot.done.wait(_POLL_S):
            if interrupt.is_set():
                with self._lock:
                    self._waiting.pop(request_id, None)
                return None
        return slot.answer


class _Slot:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.answer: Any = None


class SdkSurface:
    """The parts of a `Surface` that are the same for codex and claude."""

    def __init__(self, channel: JsonLines) -> None:
        self.channel = channel
        self.interrupt = threading.Event()

    def sleep(self, seconds: float) -> bool:
        if seconds <= 0:
            return not self.interrupt.is_set()
        return not self.interrupt.wait(seconds)

    def interrupted(self) -> bool:
        return self.interrupt.is_set()

    def hang(self, hard: bool) -> NoReturn:
        self.channel.freeze()
        self.channel.post((HANG, hard))  # the main thread hangs the process (faults.hang)
        while True:
            threading.Event().wait()

    def ignore_input(self) -> None:
        self.channel.ignore()


def start_turn(run: Callable[[], object], name: str) -> threading.Thread:
    """Run a turn on a daemon thread (the main thread goes on reading stdin)."""
    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def chunks(text: str, size: int = 12) -> list[str]:
    """`text` cut after words into pieces of about `size` characters, as a model streams its reply;
    joined, the pieces are `text` exactly."""
    pieces, current = [], ""
    for token in re.findall(r"\S+\s*|\s+", text):
        current += token
        if len(current) >= size:
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    return pieces or [""]
