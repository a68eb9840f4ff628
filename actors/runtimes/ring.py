"""A PTY agent's recent output: a bounded byte ring, and how its bytes become lines of text.

    ring = RingBuffer(4 * 1024 * 1024)     # written by the reader thread, read by the runtime actor
    ring.append(chunk)                     # keeps the newest `capacity` bytes; older ones fall off
    screen_lines(ring.tail(64 * 1024), complete=False)   # → the last lines, ANSI stripped

The ring is raw bytes, not a screen: an agent's output is appended as it comes, and `screen_lines` turns it
into text cheaply — UTF-8 with replacement, CSI/OSC/charset escapes removed, and a carriage return taken as
"the line starts over", which is what spinners and progress bars mean by it. Cursor addressing (full-screen
redraws) is not emulated: that would take a terminal emulator (pyte runs ~150× slower than the PTY itself,
notes/libraries.md §5.3), and none is ever run on the reader's path.
"""

from __future__ import annotations

import re
import threading

__all__ = ["RingBuffer", "screen_lines", "stream_lines", "strip_ansi"]


class RingBuffer:
    """The newest `capacity` bytes appended to it. Thread-safe; memory grows with use up to `capacity`.

    `append` copies at most `capacity` bytes whatever it is given, so a writer flooding it costs no more
    memory than an idle one that filled it once.
    """

    __slots__ = ("_buf", "_lock", "_pos", "capacity", "total")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"ring capacity must be at least 1 byte, got {capacity}")
        self.capacity = capacity
        self.total = 0  # bytes ever appended
        self._buf = bytearray()  # grows until it holds `capacity` bytes, then wraps
        self._pos = 0  # once full: where the oldest byte is, and the next write goes
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buf)

    def append(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        n = len(view)
        if not n:
            return
        cap = self.capacity
        with self._lock:
            self.total += n
            buf = self._buf
            if n >= cap:
                buf[:] = view[n - cap :]
                self._pos = 0
                return
            room = cap - len(buf)
            if room > 0:  # still filling: a plain append
                take = min(room, n)
                buf += view[:take]
                view = view[take:]
                n -= take
                if not n:
                    return
            pos = self._pos
            first = min(n, cap - pos)
            buf[pos : pos + first] = view[:first]
            if first < n:
                buf[: n - first] = view[first:]
            self._pos = (pos + n) % cap

    def tail(self, nbytes: int | None = None) -> bytes:
        """The newest `nbytes` bytes (all of them when None), oldest first."""
        return self.snapshot(nbytes)[0]

    def snapshot(self, nbytes: int | None = None) -> tuple[bytes, bool]:
        """`tail(nbytes)`, and whether it starts at the first byte ever appended (nothing before it)."""
        with self._lock:
            buf, pos = self._buf, self._pos
            size = len(buf)
            want = size if nbytes is None else max(0, min(nbytes, size))
            whole = want == self.total
            if size < self.capacity or pos == 0:
                return bytes(buf[size - want :]), whole
            # Full and wrapped: the oldest byte is at `pos`; the newest `want` end just before it.
            start = pos - want
            if start >= 0:
                return bytes(buf[start:pos]), whole
            return bytes(buf[start:]) + bytes(buf[:pos]), whole

    def clear(self) -> None:
        with self._lock:
            self._buf = bytearray()
            self._pos = 0


# -- bytes → text -------------------------------------------------------------------------------------------

# CSI (ESC [ … final), OSC (ESC ] … BEL or ST), DCS/SOS/PM/APC strings (ESC P|X|^|_ … ST), charset
# designations (ESC ( B), and the remaining two-byte escapes (ESC 7, ESC =, ESC M …). Then the C0 controls a
# line of text cannot show (BEL, BS, SO/SI …), keeping tab, newline and carriage return.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[()*+\-./][ -~]"
    r"|\x1b[ -~]?"
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]"
)


def strip_ansi(text: str) -> str:
    """`text` without terminal escape sequences or invisible control characters (tab, \\n, \\r stay)."""
    return _ANSI.sub("", text)


def stream_lines(raw: bytes, *, complete: bool = True, ansi: bool = False) -> list[str]:
    """The lines of `raw` output as they were written, escapes kept when `ansi` (a log viewer's view).

    `complete=False` says `raw` was cut from a longer history, so its first line is partial (it may start
    inside a UTF-8 character or an escape sequence): it is dropped. A final newline ends the last line rather
    than starting an empty one. A carriage return starts its line over (spinners), so only the text after a
    line's last one is kept. Cursor movement is not followed: `screen_lines` does that.
    """
    text = _decode(raw, complete)
    if not ansi:
        text = strip_ansi(text)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r").rpartition("\r")[2] if "\r" in line else line for line in lines]


def screen_lines(raw: bytes, *, cols: int = 200, rows: int = 50, complete: bool = True) -> list[str]:
    """The text a terminal of `cols` × `rows` would show for `raw` output, scrollback included, ANSI-free.

    Lines wrapped by the terminal are joined again and trailing blank lines dropped (as `tmux capture-pane
    -J` gives them). `complete=False`: as for `stream_lines`, the partial first line is dropped.
    """
    screen = _Screen(cols, rows)
    screen.feed(_decode(raw, complete))
    return screen.lines()


def _decode(raw: bytes, complete: bool) -> str:
    text = raw.decode("utf-8", errors="replace")
    if not complete:
        cut = text.find("\n")
        text = "" if cut < 0 else text[cut + 1 :]
    return text


# One token of terminal output that is not text: a CSI sequence (its private marker, parameters and final
# byte captured), an OSC or other string sequence, another escape (its byte captured), or a C0 control.
_TOKEN = re.compile(
    r"\x1b\[(?P<priv>[?>=<]?)(?P<params>[0-9;:]*)[ -/]*(?P<csi>[@-~])"
    r"|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[()*+\-./][ -~]"
    r"|\x1b(?P<esc>[ -~])?"
    r"|(?P<ctl>[\x00-\x1f\x7f])"
)
_ALT_SCREEN = {"1049", "1047", "47"}


class _Screen:
    """Just enough of a terminal to read what it shows: a grid of rows, a cursor, and what moves or erases.

    Why: agent UIs redraw in place — a spinner with `\\r`, a dialog erased once answered (cursor up, erase
    down), a status line rewritten — and a scraper that reads the output as lines would still see the dialog.
    This follows the cursor (CR, LF, BS, TAB, CUU/CUD/CUF/CUB, CNL/CPL, CHA/HPA, CUP/VPA, save/restore),
    erasing (EL, ED, ECH, DCH, ICH, IL, DL), wrapping at `cols`, scrolling past `rows`, and the alternate
    screen; it ignores colours, scroll regions, and the width of wide characters (one column each). It runs
    only when a capture is asked for, over the ring's tail: never on the reader's path.
    """

    __slots__ = ("alt", "buf", "c", "cols", "height", "r", "saved", "wrapped")

    def __init__(self, cols: int, rows: int) -> None:
        self.cols, self.height = max(1, cols), max(1, rows)
        self.buf = [""]  # the rows, scrollback first; the screen is the last `height` of them
        self.wrapped = [False]  # row i continues on row i + 1 (the terminal wrapped it)
        self.r = self.c = 0
        self.saved = (0, 0)
        self.alt: tuple[list[str], list[bool], int, int] | None = None  # the main screen, while on alt

    def lines(self) -> list[str]:
        out: list[str] = []
        joined = ""
        for row, wraps in zip(self.buf, self.wrapped, strict=True):
            joined += row
            if not wraps:
                out.append(joined)
                joined = ""
        if joined:
            out.append(joined)
        while out and not out[-1].strip():
            out.pop()
        return out

    def feed(self, text: str) -> None:
        at = 0
        for m in _TOKEN.finditer(text):
            if m.start() > at:
                self._write(text[at : m.start()])
            at = m.end()
            if (final := m.group("csi")) is not None:
                self._csi(m.group("priv"), m.group("params"), final)
            elif (ctl := m.group("ctl")) is not None:
                self._control(ctl)
            elif (esc := m.group("esc")) is not None:
                self._escape(esc)
        if at < len(text):
            self._write(text[at:])

    # -- geometry -----------------------------------------------------------------------------------------

    @property
    def _top(self) -> int:
        return max(0, len(self.buf) - self.height)

    def _ensure(self, row: int) -> None:
        grow = row + 1 - len(self.buf)
        if grow > 0:
            self.buf += [""] * grow
            self.wrapped += [False] * grow

    def _goto(self, row: int) -> None:
        top = self._top
        self.r = max(top, min(row, top + self.height - 1))
        self._ensure(self.r)

    def _linefeed(self) -> None:
        if self.r + 1 < len(self.buf):
            self.r += 1
        elif self.alt is not None and len(self.buf) >= self.height:  # the alternate screen has no scrollback
            del self.buf[0], self.wrapped[0]
            self.buf.append("")
            self.wrapped.append(False)
        else:
            self.buf.append("")
            self.wrapped.append(False)
            self.r += 1

    # -- text and controls --------------------------------------------------------------------------------

    def _write(self, run: str) -> None:
        cols, buf = self.cols, self.buf
        while run:
            if self.c >= cols:  # the previous character filled the row: this one wraps
                self.wrapped[self.r] = True
                self._linefeed()
                self.c = 0
            c = self.c
            piece, run = run[: cols - c], run[cols - c :]
            row = buf[self.r]
            if len(row) < c:
                row += " " * (c - len(row))
            buf[self.r] = row[:c] + piece + row[c + len(piece) :]
            self.c = c + len(piece)

    def _control(self, ch: str) -> None:
        if ch == "\r":
            self.c = 0
        elif ch in "\n\x0b\x0c":
            self._linefeed()
        elif ch == "\b":
            self.c = max(0, min(self.c, self.cols - 1) - 1)
        elif ch == "\t":
            self.c = min(self.cols - 1, (self.c // 8 + 1) * 8)

    def _escape(self, ch: str) -> None:
        if ch == "7":
            self.saved = (self.r, self.c)
        elif ch == "8":
            self._goto(self.saved[0])
            self.c = min(self.saved[1], self.cols - 1)
        elif ch == "M":  # reverse index
            self._goto(self.r - 1)
        elif ch == "D":
            self._linefeed()
        elif ch == "E":
            self._linefeed()
            self.c = 0
        elif ch == "c":  # full reset
            self.buf, self.wrapped, self.alt = [""], [False], None
            self.r = self.c = 0

    def _csi(self, priv: str, params: str, final: str) -> None:
        if priv:
            if priv == "?" and final in "hl" and _ALT_SCREEN & set(params.split(";")):
                self._alternate(final == "h")
            return
        ps = [int(p) if p.isdigit() else 0 for p in params.split(";")] if params else []
        first = ps[0] if ps else 0
        n = max(1, first)
        if final in "AF":
            self._goto(self.r - n)
            if final == "F":
                self.c = 0
        elif final in "BE":
            self._goto(self.r + n)
            if final == "E":
                self.c = 0
        elif final == "C":
            self.c = min(self.cols - 1, min(self.c, self.cols - 1) + n)
        elif final == "D":
            self.c = max(0, min(self.c, self.cols - 1) - n)
        elif final in "G`":
            self.c = min(self.cols - 1, n - 1)
        elif final in "Hf":
            self._goto(self._top + n - 1)
            self.c = min(self.cols - 1, max(1, ps[1] if len(ps) > 1 else 1) - 1)
        elif final == "d":
            self._goto(self._top + n - 1)
        elif final == "J":
            self._erase_display(first)
        elif final == "K":
            self._erase_line(first)
        elif final in "XP@":
            row, c = self.buf[self.r], self.c
            if final == "X":
                self.buf[self.r] = row[:c] + " " * min(n, max(0, len(row) - c)) + row[c + n :]
            elif final == "P":
                self.buf[self.r] = row[:c] + row[c + n :]
            else:
                self.buf[self.r] = (row[:c] + " " * n + row[c:])[: self.cols] if len(row) > c else row
        elif final in "LM":
            bottom = self._top + self.height
            if final == "L":
                self.buf[self.r : self.r] = [""] * n
                self.wrapped[self.r : self.r] = [False] * n
                del self.buf[bottom : bottom + n], self.wrapped[bottom : bottom + n]
            else:
                del self.buf[self.r : self.r + n], self.wrapped[self.r : self.r + n]
                self._ensure(bottom - 1)
            self._ensure(self.r)
        elif final == "s":
            self.saved = (self.r, self.c)
        elif final == "u":
            self._escape("8")

    def _erase_line(self, mode: int) -> None:
        row, c = self.buf[self.r], self.c
        if mode == 0:
            self.buf[self.r] = row[:c]
            self.wrapped[self.r] = False
        elif mode == 1:
            self.buf[self.r] = " " * min(c + 1, self.cols) + row[c + 1 :]
        elif mode == 2:
            self.buf[self.r] = ""
            self.wrapped[self.r] = False

    def _erase_display(self, mode: int) -> None:
        top = self._top
        if mode == 0:
            self._erase_line(0)
            below = range(self.r + 1, len(self.buf))
        elif mode == 1:
            self._erase_line(1)
            below = range(top, self.r)
        elif mode == 2:
            below = range(top, len(self.buf))
        elif mode == 3:  # the scrollback
            del self.buf[:top], self.wrapped[:top]
            self.r = max(0, self.r - top)
            return
        else:
            return
        for i in below:
            self.buf[i] = ""
            self.wrapped[i] = False

    def _alternate(self, enter: bool) -> None:
        if enter and self.alt is None:
            self.alt = (self.buf, self.wrapped, self.r, self.c)
            self.buf, self.wrapped = [""] * self.height, [False] * self.height
            self.r = self.c = 0
        elif not enter and self.alt is not None:
            self.buf, self.wrapped, self.r, self.c = self.alt
            self.alt = None
