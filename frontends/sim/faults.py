"""Real faults, and leaving the process: this is how corral's tests break an agent on purpose.

    crash(3)                  exit 3 at once (the terminal restored first, as a program that fails would)
    crash(signal_name="KILL") die by SIGKILL (nothing restored: the process is gone)
    hang(hard=False)          stop reading and writing, stay alive; SIGTERM still ends the process
    hang(hard=True)           the same, and SIGTERM, SIGINT and SIGHUP are ignored: only SIGKILL ends it
    flood(write, 5)           write 5 MB as fast as the reader takes them
    spawn_grandchild(600)     a child in a new session (setsid): killpg of the agent's group misses it

`quit(status)` is the one way out of the program (directives `/exit`, SIGTERM, EOF): it runs the hooks
registered with `on_exit` (restore the tty) and `os._exit`s, so no thread or buffered write holds the exit up.
A hang or crash asked for by a worker thread is carried out there too: `os._exit` and `kill` work from any
thread; a hard hang installs its handlers on the main thread (`hang_requested` tells the main loop).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import NoReturn

__all__ = [
    "FLOOD_CHUNK",
    "crash",
    "crash_later",
    "drain_wakeup",
    "dying_by",
    "flood",
    "hang",
    "install_wakeup",
    "on_exit",
    "parse_crash",
    "quit",
    "signal_number",
    "spawn_grandchild",
]

FLOOD_CHUNK = 64 * 1024
_hooks: list[Callable[[], None]] = []
_dying_by: list[int] = []
_children: list[subprocess.Popen[bytes]] = []


def on_exit(hook: Callable[[], None]) -> None:
    """Run `hook` (restore the terminal…) before the process exits by `quit` or `crash(status)`."""
    _hooks.append(hook)


def _run_hooks() -> None:
    while _hooks:
        hook = _hooks.pop()
        with contextlib.suppress(Exception):  # leaving anyway: a failed restore must not keep us alive
            hook()


def quit(status: int) -> NoReturn:
    """Run the exit hooks, flush, and end the process with `status`, whatever thread calls it."""
    _run_hooks()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def signal_number(name: str) -> int:
    """`KILL`, `SIGKILL`, `kill` or `9` → 9; raises ValueError for anything else."""
    text = name.strip().upper()
    if text.isdigit():
        return int(text)
    text = text if text.startswith("SIG") else f"SIG{text}"
    try:
        return int(signal.Signals[text])
    except KeyError:
        raise ValueError(f"unknown signal {name!r}") from None


def parse_crash(arg: str, default_status: int = 1) -> tuple[int, str]:
    """The argument of `/crash`: a status (`137`) or a signal name (`KILL`, `SIGSEGV`) → (status, name)."""
    text = arg.strip()
    if not text:
        return default_status, ""
    if text.lstrip("-").isdigit():
        return int(text), ""
    signal_number(text)  # raises for a name that is no signal
    return default_status, text


def dying_by() -> int | None:
    """The signal the process is killing itself with, for the main thread's handler to re-raise."""
    return _dying_by[0] if _dying_by else None


def crash(status: int = 1, signal_name: str = "", *, quiet: bool = False) -> NoReturn:
    """Crash now: exit with `status`, or die by `signal_name` (then no hook runs: the process just dies)."""
    if not quiet:
        how = f"signal {signal_name}" if signal_name else f"exit {status}"
        with contextlib.suppress(Exception):
            os.write(2, f"corral-sim: simulated crash ({how})\n".encode())
    if signal_name:
        number = signal_number(signal_name)
        _dying_by.append(number)
        if threading.current_thread() is threading.main_thread():
            signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
        time.sleep(1.0)  # a catchable signal goes through the main thread's handler, which re-raises it
        os._exit(128 + number)
    quit(status)


def crash_later(seconds: float, status: int = 1, signal_name: str = "") -> threading.Thread:
    """Crash `seconds` from now, whatever the agent is doing then (a daemon thread)."""

    def run() -> None:
        time.sleep(seconds)
        crash(status, signal_name)

    thread = threading.Thread(target=run, name="corral-sim-crash", daemon=True)
    thread.start()
    return thread


_wakeup: list[int] = []


def install_wakeup() -> int:
    """Make every signal also write a byte to a pipe, and return its read end (main thread only).

    Why: Python runs a signal's handler between two bytecodes of the main thread. A signal that lands after
    the last check and before a blocking `select` starts is noticed only when the select returns, which for
    an idle agent may be never: SIGTERM would not end it. A select that also watches this pipe returns at
    once, and the handler runs.
    """
    if not _wakeup:
        read, write = os.pipe()
        os.set_blocking(write, False)
        os.set_blocking(read, False)
        signal.set_wakeup_fd(write)
        _wakeup.append(read)
    return _wakeup[0]


def drain_wakeup() -> None:
    """Empty the wake-up pipe (its bytes have done their job once the select returned)."""
    if _wakeup:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while os.read(_wakeup[0], 512):
                pass


def hang(hard: bool = False) -> NoReturn:
    """Stay alive doing nothing, for ever. Call on the main thread (a hard hang changes signal handlers)."""
    if hard:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
    import select

    wakeup = install_wakeup()
    while True:  # each signal wakes the select; its handler (SIGTERM: exit) runs when the loop goes on
        select.select([wakeup], [], [])
        drain_wakeup()


def flood(write: Callable[[bytes], object], megabytes: float) -> int:
    """Write `megabytes` MB (10⁶ bytes) of numbered lines through `write`; returns the bytes written."""
    total = int(megabytes * 1_000_000)
    line = b"flood " + b"x" * 121 + b"\n"  # 128 bytes a line
    chunk = line * (FLOOD_CHUNK // len(line))
    written = 0
    while written < total:
        piece = chunk[: total - written]
        write(piece)
        written += len(piece)
    return written


_GRANDCHILD = "import sys, time; time.sleep(float(sys.argv[1]))"


def spawn_grandchild(seconds: float = 600.0, cwd: str | None = None) -> subprocess.Popen[bytes]:
    """Start a child that calls setsid and sleeps `seconds`: it leaves the agent's process group and
    session (killpg misses it), keeps the agent as its parent while the agent lives, and inherits the
    environment and working directory (marks a sweep can recognise). Its argv ends in
    `corral-sim-grandchild`."""
    child = subprocess.Popen(
        [sys.executable, "-c", _GRANDCHILD, str(seconds), "corral-sim-grandchild"],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    _children.append(child)  # keep the Popen: it reaps the child if it ends first
    return child
