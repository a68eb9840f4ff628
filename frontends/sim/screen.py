"""The interactive screen: what a claude-like CLI draws, and the widgets that read answers from the keyboard.

The strings below are a contract: corral's harness patterns for the sim match them, byte for byte.

    corral-sim 0.1.0 — simulated coding agent          BANNER, then a blank line
    Do you trust the files in this folder?             TRUST_QUESTION + menu TRUST_OPTIONS
    ❯ 1. Yes, proceed
      2. No, exit
    > ▌                                                 PROMPT: the last line while idle
    ✻ Working… (esc to interrupt)                       WORKING, redrawn with \\r, glyph cycling SPINNER
    ⏺ Update(sim/x.txt)                                 a tool call; ⎿ its result
      ⎿  Added 1 line
    Do you want to make this edit to sim/x.txt?         EDIT_QUESTION + menu EDIT_OPTIONS
    Would you like to proceed? (Y)es/(N)o               agent.QUESTION
    ⏺ Done. edited sim/x.txt; committed 1a2b3c4.        the end of a turn

A menu is erased once answered (a real CLI closes its dialog), so a screen scraper never sees an answered
question. Output is written with `os.write` under a lock; the spinner line stays the last line while output
scrolls above it.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence

from frontends.sim.terminal import Key, KeyReader

__all__ = [
    "BANNER",
    "COMMAND_OPTIONS",
    "COMMAND_QUESTION",
    "CONNECTION_ERROR",
    "EDIT_OPTIONS",
    "EDIT_QUESTION",
    "NOT_LOGGED_IN",
    "OFFLINE_AT_START",
    "PROMPT",
    "SPINNER",
    "TRUST_OPTIONS",
    "TRUST_QUESTION",
    "WORKING",
    "Choice",
    "LineEditor",
    "Output",
    "Spinner",
    "menu",
    "rate_limit_text",
    "yes_no",
]

BANNER = "corral-sim {version} — simulated coding agent"
TRUST_QUESTION = "Do you trust the files in this folder?"
TRUST_OPTIONS = ("Yes, proceed", "No, exit")
PROMPT = "> "
SPINNER = "✢✳✶✻✽"
WORKING = "{glyph} Working… (esc to interrupt)"
SPINNER_PERIOD_S = 0.1
EDIT_QUESTION = "Do you want to make this edit to {path}?"
EDIT_OPTIONS = (
    "Yes",
    "Yes, allow all edits during this session",
    "No, and tell Claude what to do differently (esc)",
)
COMMAND_QUESTION = "Do you want to proceed?"
COMMAND_OPTIONS = (
    "Yes",
    "Yes, and don't ask again for commands during this session",
    "No, and tell Claude what to do differently (esc)",
)
NOT_LOGGED_IN = "Not logged in · Please run /login"
OFFLINE_AT_START = (  # what Claude Code prints, and exits 1, when it cannot reach its API at start
    "Unable to connect to Anthropic services",
    "Failed to connect to api.anthropic.com: ENOTFOUND",
    "Please check your internet connection and network settings.",
)
CONNECTION_ERROR = "API Error: Connection error."


def rate_limit_text(resets_at: float) -> str:
    """What claude says when a usage limit refuses a turn; `resets_at` in seconds since the epoch."""
    at = time.strftime("%H:%M", time.gmtime(resets_at))
    return f"Claude usage limit reached. Your limit will reset at {at} UTC."


BRACKETED_PASTE_ON = "\x1b[?2004h"
BRACKETED_PASTE_OFF = "\x1b[?2004l"
_CLEAR_LINE = "\r\x1b[2K"


class Output:
    """The terminal's output: whole writes under a lock, and one live status line kept at the bottom."""

    def __init__(self, fd: int = 1) -> None:
        self.fd = fd
        self.lock = threading.RLock()
        self._status = ""

    def raw(self, data: bytes) -> None:
        """Write all of `data` (blocking while the reader does not read)."""
        with self.lock:
            view = memoryview(data)
            while view:
                written = os.write(self.fd, view)
                view = view[written:]

    def write(self, text: str) -> None:
        self.raw(text.encode("utf-8", errors="replace"))

    def line(self, text: str) -> None:
        """Print `text` and a newline above the status line (if one is shown)."""
        with self.lock:
            self.write((_CLEAR_LINE if self._status else "") + text + "\n" + self._status)

    def status(self, text: str) -> None:
        """Show `text` as the bottom line, redrawn in place ("" removes it)."""
        with self.lock:
            if text or self._status:
                self.write(_CLEAR_LINE + text)
            self._status = text

    def columns(self) -> int:
        try:
            return os.get_terminal_size(self.fd).columns or 80
        except OSError:
            return shutil.get_terminal_size().columns or 80

    def erase_lines(self, texts: Sequence[str]) -> None:
        """Erase the lines just printed (`texts`, each ended by a newline), wrapping counted."""
        width = self.columns()
        rows = sum(max(1, -(-len(text) // width)) for text in texts)
        self.write(f"\x1b[{rows}A\r\x1b[J")


class Spinner:
    """`✻ Working… (esc to interrupt)` redrawn every 100 ms on a thread that also watches the keyboard:
    Esc or Ctrl-C interrupts the turn; other keys are kept (typed ahead) for the next prompt."""

    def __init__(self, out: Output, keys: KeyReader, on_interrupt: Callable[[], None]) -> None:
        self.out = out
        self.keys = keys
        self.on_interrupt = on_interrupt
        self.typeahead: list[Key] = []
        self.eof = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._frame = 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._draw()
        self._thread = threading.Thread(target=self._run, name="corral-sim-spinner", daemon=True)
        self._thread.start()

    def stop(self, clear: bool = True) -> None:
        """Stop the thread (and so the reading of keys); `clear` removes the line."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()
        if clear:
            self.out.status("")

    def _draw(self) -> None:
        self.out.status(WORKING.format(glyph=SPINNER[self._frame % len(SPINNER)]))
        self._frame += 1

    def _run(self) -> None:
        next_frame = time.monotonic() + SPINNER_PERIOD_S
        while not self._stop.is_set():
            key = None if self.eof else self.keys.read(timeout=max(0.0, next_frame - time.monotonic()))
            if self.eof:
                self._stop.wait(SPINNER_PERIOD_S)
            if key is not None:
                if key.kind in ("esc", "ctrl-c"):
                    self.on_interrupt()
                elif key.kind == "eof":
                    self.eof = True
                else:
                    self.typeahead.append(key)
            if time.monotonic() >= next_frame and not self._stop.is_set():
                self._draw()
                next_frame = time.monotonic() + SPINNER_PERIOD_S


class Choice:
    """What a menu or question returned when the answer is not an option: Ctrl-C, or end of input."""

    CANCEL = -1
    EOF = -2


def menu(out: Output, keys: KeyReader, question: str, options: Sequence[str], esc: int | None = None) -> int:
    """Draw `question` and numbered `options` (❯ marks the selection) and return the chosen index.

    A digit chooses at once, Enter chooses the marked option, ↑/↓ move the mark, Esc chooses `esc` (when
    given). Returns Choice.CANCEL on Ctrl-C and Choice.EOF at the end of input. Erases itself when done.
    """
    selected = 0

    def lines() -> list[str]:
        return [f"{'❯' if i == selected else ' '} {i + 1}. {text}" for i, text in enumerate(options)]

    head = question.splitlines()
    drawn = [*head, *lines()]
    out.write("".join(line + "\n" for line in drawn))
    while True:
        key = keys.read()
        assert key is not None
        choice: int | None = None
        if key.kind == "text" and key.text.strip().isdigit() and 1 <= int(key.text.strip()) <= len(options):
            choice = int(key.text.strip()) - 1
        elif key.kind == "enter":
            choice = selected
        elif key.kind == "esc" and esc is not None:
            choice = esc
        elif key.kind == "ctrl-c":
            choice = Choice.CANCEL
        elif key.kind == "eof":
            choice = Choice.EOF
        elif key.kind in ("up", "down"):
            selected = (selected + (1 if key.kind == "down" else -1)) % len(options)
            out.write(f"\x1b[{len(options)}A" + "".join(_CLEAR_LINE + line + "\n" for line in lines()))
            drawn = [*head, *lines()]
        if choice is not None:
            out.erase_lines(drawn)
            return choice


def yes_no(out: Output, keys: KeyReader, question: str) -> int:
    """Ask `question` (ending in `(Y)es/(N)o`): 1 for y or Enter, 0 for n or Esc, or a `Choice` value."""
    out.write(question + " ")
    while True:
        key = keys.read()
        assert key is not None
        answer = {"y": 1, "n": 0}.get(key.text.strip().lower()[:1]) if key.kind == "text" else None
        if key.kind == "enter":
            answer = 1
        elif key.kind == "esc":
            answer = 0
        elif key.kind == "ctrl-c":
            answer = Choice.CANCEL
        elif key.kind == "eof":
            answer = Choice.EOF
        if answer is not None:
            out.write(_CLEAR_LINE)
            return answer


class LineEditor:
    """The prompt line: `> `, typed text echoed, pastes kept whole (a multi-line or long paste shows as
    `[Pasted text #1 +3 lines]`), Backspace, Ctrl-U (clear), a trailing `\\` + Enter for a newline."""

    PASTE_SHOWN_MAX = 800

    def __init__(self, out: Output, keys: KeyReader) -> None:
        self.out = out
        self.keys = keys
        self._pastes = 0

    def read(self, typeahead: list[Key]) -> str | None:
        """A submitted prompt; None at the end of input (Ctrl-D on an empty line, EOF). An empty Enter is
        ignored. Ctrl-C clears the line; twice in a row on an empty line it raises KeyboardInterrupt."""
        segments: list[tuple[str, str]] = []  # (text, as shown)
        ctrl_c = False
        self.out.write(PROMPT)
        while True:
            key = typeahead.pop(0) if typeahead else self.keys.read()
            assert key is not None
            if key.kind == "ctrl-c":
                if not segments and ctrl_c:
                    raise KeyboardInterrupt
                ctrl_c = not segments
                segments.clear()
                self.out.write(_CLEAR_LINE + PROMPT)
                continue
            ctrl_c = False
            if key.kind == "text":
                segments.append((key.text, key.text))
                self.out.write(key.text)
            elif key.kind == "paste":
                shown = key.text
                if "\n" in key.text or len(key.text) > self.PASTE_SHOWN_MAX:
                    self._pastes += 1
                    extra = key.text.count("\n")
                    shown = f"[Pasted text #{self._pastes} +{extra} lines]"
                segments.append((key.text, shown))
                self.out.write(shown)
            elif key.kind == "backspace" and segments:
                text, shown = segments.pop()
                if text == shown and len(text) > 1:
                    segments.append((text[:-1], shown[:-1]))
                    shown = shown[-1]
                self.out.write("\b \b" * len(shown))
            elif key.kind == "ctrl-u":
                segments.clear()
                self.out.write(_CLEAR_LINE + PROMPT)
            elif key.kind in ("ctrl-d", "eof") and (key.kind == "eof" or not segments):
                self.out.write("\n")
                return None
            elif key.kind == "enter":
                text = "".join(t for t, _ in segments)
                if text.endswith("\\"):
                    segments = [(text[:-1] + "\n", "".join(s for _, s in segments)[:-1])]
                    self.out.write("\b \n  ")
                    continue
                if not text.strip():
                    continue
                self.out.write("\n")
                return text
