"""The interactive mode's input: the tty put in non-canonical mode, and the bytes read as keys.

    with RawMode(0):                        # no-op when fd 0 is not a tty (a pipe in a test)
        keys = KeyReader(0)
        key = keys.read(timeout=0.1)        # Key("text", "héllo"), Key("paste", "a\\nb"), Key("enter")…

Why non-canonical: in canonical mode the Linux tty driver holds at most 4096 bytes of an unfinished line and
drops the rest, so a 10 KB prompt would arrive cut. With ICANON off the sim gets every byte and does its own
echo and line editing; ISIG and IXON are off too, so Ctrl-C, Ctrl-S and Ctrl-Q arrive as keys.

Bracketed paste (`ESC[200~ … ESC[201~`, enabled on screen with `ESC[?2004h`) arrives as one `paste` key, its
newlines kept: a multi-line paste is one prompt, submitted by the Enter that follows. A lone ESC is told from
the start of an escape sequence by waiting `ESC_WAIT_S` for the next byte.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import select
import termios
import time
from dataclasses import dataclass

__all__ = ["ESC_WAIT_S", "Key", "KeyReader", "RawMode"]

ESC_WAIT_S = 0.05
PASTE_START = b"\x1b[200~"
PASTE_END = b"\x1b[201~"
_CONTROL_KEYS = {0x03: "ctrl-c", 0x04: "ctrl-d", 0x15: "ctrl-u", 0x7F: "backspace", 0x08: "backspace"}
_ARROWS = {ord("A"): "up", ord("B"): "down", ord("C"): "right", ord("D"): "left"}


@dataclass(frozen=True, slots=True)
class Key:
    """One key (or paste). `kind`: text, paste, enter, backspace, esc, up, down, left, right, ctrl-c,
    ctrl-d, ctrl-u, other (an escape sequence the sim ignores), eof."""

    kind: str
    text: str = ""


class RawMode:
    """Non-canonical, no-echo, no-signal input on `fd` while inside the `with`; restored on exit (also by
    `restore()`, which the exit hooks call from a signal handler)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._saved: list | None = None  # type: ignore[type-arg]

    def __enter__(self) -> RawMode:
        if not os.isatty(self.fd):
            return self
        self._saved = termios.tcgetattr(self.fd)
        mode = termios.tcgetattr(self.fd)
        mode[0] &= ~(termios.IXON | termios.IXOFF)  # iflag: Ctrl-S/Ctrl-Q are keys; ICRNL stays (Enter → \n)
        mode[3] &= ~(termios.ICANON | termios.ECHO | termios.ISIG | termios.IEXTEN)  # lflag
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        termios.tcsetattr(self.fd, termios.TCSANOW, mode)
        return self

    def restore(self) -> None:
        if self._saved is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(self.fd, termios.TCSANOW, self._saved)
            self._saved = None

    def __exit__(self, *exc: object) -> None:
        self.restore()


class KeyReader:
    """Keys from `fd`, read on one thread at a time. Bytes read but not yet parsed stay buffered, so input
    typed while the agent works is kept for the next prompt."""

    def __init__(self, fd: int, wakeup: int | None = None) -> None:
        self.fd = fd
        self.wakeup = wakeup  # a pipe that signals write to (faults.install_wakeup): selected with fd
        self._buf = bytearray()
        self._eof = False
        self._skip_lf = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def read(self, timeout: float | None = None) -> Key | None:
        """The next key; None when `timeout` seconds pass without one (None: wait for ever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            key, need_more = self._parse()
            if key is not None:
                return key
            if need_more == "esc" and not self._fill(ESC_WAIT_S):
                del self._buf[:1]
                return Key("esc")
            if self._eof:
                return self._drain_at_eof()
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if need_more != "esc" and not self._fill(remaining) and not self._eof:
                return None

    def discard(self) -> None:
        """Read and drop whatever input is waiting (and mark EOF if the input closed)."""
        while self._fill(0):
            pass
        self._buf.clear()

    @property
    def at_eof(self) -> bool:
        return self._eof and not self._buf

    def _fill(self, timeout: float | None) -> bool:
        """Read what is available within `timeout`; False when nothing came (or the input closed)."""
        if self._eof:
            return False
        deadline = None if timeout is None else time.monotonic() + timeout
        watched = [self.fd] if self.wakeup is None else [self.fd, self.wakeup]
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                ready, _, _ = select.select(watched, [], [], left)
            except InterruptedError:
                ready = []
            if self.fd in ready:
                break
            if not ready:
                return False
            _drain(self.wakeup)  # a signal came: going round the loop runs its Python handler
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the other side of the PTY is gone
            data = b""
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def _drain_at_eof(self) -> Key:
        if self._buf.startswith(PASTE_START):  # a paste cut by EOF: deliver what came
            text = _paste_text(bytes(self._buf[len(PASTE_START) :]))
            self._buf.clear()
            return Key("paste", text)
        self._buf.clear()
        return Key("eof")

    def _parse(self) -> tuple[Key | None, str]:
        """(key, "") for a complete key; (None, "bytes" | "esc") when more input is needed."""
        buf = self._buf
        while buf:
            first = buf[0]
            if first == 0x0A and self._skip_lf:  # the LF of a CR LF pair
                self._skip_lf = False
                del buf[:1]
                continue
            self._skip_lf = False
            if first == 0x1B:
                return self._parse_escape()
            if first in (0x0D, 0x0A):
                del buf[:1]
                if first == 0x0D:
                    if buf[:1] == b"\n":
                        del buf[:1]
                    else:
                        self._skip_lf = True
                return Key("enter"), ""
            if first in _CONTROL_KEYS:
                del buf[:1]
                return Key(_CONTROL_KEYS[first]), ""
            if first == 0x09:
                del buf[:1]
                return Key("text", "\t"), ""
            if first < 0x20:
                del buf[:1]
                continue
            end = 1
            while end < len(buf) and buf[end] >= 0x20 and buf[end] != 0x7F:
                end += 1
            text = self._decoder.decode(bytes(buf[:end]))
            del buf[:end]
            if text:
                return Key("text", text), ""
        return None, "bytes"

    def _parse_escape(self) -> tuple[Key | None, str]:
        buf = self._buf
        if buf.startswith(PASTE_START):
            end = buf.find(PASTE_END, len(PASTE_START))
            if end < 0:
                return None, "bytes"
            text = _paste_text(bytes(buf[len(PASTE_START) : end]))
            del buf[: end + len(PASTE_END)]
            return Key("paste", text), ""
        if PASTE_START.startswith(bytes(buf)) and len(buf) > 1:
            return None, "bytes"  # maybe the start of a paste
        if len(buf) == 1:
            return None, "esc"
        if buf[1] == ord("["):
            for at in range(2, len(buf)):
                if 0x40 <= buf[at] <= 0x7E:
                    final = buf[at]
                    del buf[: at + 1]
                    return Key(_ARROWS.get(final, "other")), ""
            return None, "bytes"
        if buf[1] == ord("O"):
            if len(buf) < 3:
                return None, "bytes"
            final = buf[2]
            del buf[:3]
            return Key(_ARROWS.get(final, "other")), ""
        del buf[:1]  # ESC then an ordinary key (Alt-x): the ESC alone
        return Key("esc"), ""


def _drain(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while os.read(fd, 512):
                pass


def _paste_text(data: bytes) -> str:
    """Pasted bytes as text, a terminal's CR line ends turned into newlines."""
    return data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
