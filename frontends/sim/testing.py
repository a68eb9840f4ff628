"""Drivers for the simulated agent in tests: a real PTY (`SimPty`) and real pipes of JSON lines (`SimPipe`).

    with SimPty([SIM, "--no-trust"], cwd=repo) as sim:
        sim.expect("> ")                      # waits (with a deadline) for the text, never sleeps blindly
        sim.send("add a note\\r")
        sim.expect("⏺ Done.")

    with SimPipe([SIM, "app-server"], cwd=repo) as codex:
        codex.send({"method": "initialize", "id": 0, "params": {"clientInfo": {"name": "t"}}})
        codex.recv(lambda m: m.get("id") == 0)

Both drain the process's output on a thread from the first byte, so a test that writes 10 KB into the sim
cannot deadlock against a sim blocked writing its echo. Both start the sim in a new session and kill its whole
process group when they close (SIGKILL, then a wait): a test leaves nothing behind, whatever it did.
Not imported by the sim itself; uses `ptyprocess` (a corral dependency) for the PTY.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["SIM", "SimPipe", "SimPty", "strip_ansi"]

SIM = str(Path(sys.executable).with_name("corral-sim"))
"""The installed `corral-sim` next to this Python."""

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z~]|\r")


def strip_ansi(text: str) -> str:
    """`text` without escape sequences and carriage returns (what a person would read, roughly)."""
    return _ANSI.sub("", text)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class SimPty:
    """The sim in a real pseudo-terminal of `cols`×`rows`, its own session and process group."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: str | Path,
        env: Mapping[str, str] | None = None,
        cols: int = 120,
        rows: int = 40,
    ) -> None:
        from ptyprocess import PtyProcess

        self.proc = PtyProcess.spawn(
            list(argv), cwd=str(cwd), env=dict(env or os.environ), dimensions=(rows, cols)
        )
        self.pid = self.proc.pid
        self._data = bytearray()
        self._cond = threading.Condition()
        self._eof = False
        self._mark = 0
        self._reader = threading.Thread(target=self._read, name="simpty-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.proc.fd, 65536)
            except OSError:
                chunk = b""
            with self._cond:
                if not chunk:
                    self._eof = True
                    self._cond.notify_all()
                    return
                self._data += chunk
                self._cond.notify_all()

    @property
    def output(self) -> str:
        """Everything the sim wrote so far, decoded."""
        with self._cond:
            return self._data.decode("utf-8", errors="replace")

    @property
    def size(self) -> int:
        """Bytes the sim wrote so far."""
        with self._cond:
            return len(self._data)

    def expect(self, pattern: str | re.Pattern[str], timeout: float = 10.0) -> re.Match[str]:
        """Wait until `pattern` (a plain string, or a regex) appears after the previous match; return it."""
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                text = self._data.decode("utf-8", errors="replace")
                found = regex.search(text, self._mark)
                if found:
                    self._mark = found.end()
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    tail = strip_ansi(text[-1500:])
                    how = "the sim closed its terminal" if self._eof else f"{timeout} s passed"
                    raise AssertionError(f"{regex.pattern!r} not seen ({how}); output ends with:\n{tail}")
                self._cond.wait(min(left, 0.5))

    def wait_for_bytes(self, count: int, timeout: float = 10.0) -> int:
        """Wait until the sim has written at least `count` bytes; returns how many it wrote."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._data) < count and not self._eof and time.monotonic() < deadline:
                self._cond.wait(0.2)
            return len(self._data)

    def quiet_for(self, seconds: float) -> bool:
        """True when the sim writes nothing at all for `seconds` (used to check a hang)."""
        before = self.size
        with self._cond:
            self._cond.wait_for(lambda: len(self._data) != before or self._eof, timeout=seconds)
            return len(self._data) == before

    def settles(self, quiet: float = 0.3, timeout: float = 5.0) -> bool:
        """Wait until the sim has been silent for `quiet` s; False if it still writes at `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.quiet_for(quiet):
                return True
        return False

    def mark(self) -> None:
        """Make later `expect` calls look only at output from now on."""
        with self._cond:
            self._mark = len(self._data.decode("utf-8", errors="replace"))

    def send(self, text: str | bytes) -> None:
        """Type `text` (all of it: a long write blocks until the sim has read enough)."""
        data = text.encode() if isinstance(text, str) else text
        view = memoryview(data)
        while view:
            view = view[os.write(self.proc.fd, view) :]

    def paste(self, text: str) -> None:
        """Paste `text` as a terminal does in bracketed-paste mode (newlines sent as CR)."""
        self.send(b"\x1b[200~" + text.replace("\n", "\r").encode() + b"\x1b[201~")

    def alive(self) -> bool:
        return self.proc.isalive()

    def wait(self, timeout: float = 10.0) -> int:
        """The exit status (128 + N for a death by signal N, as a shell reports it)."""
        deadline = time.monotonic() + timeout
        while self.proc.isalive():
            if time.monotonic() > deadline:
                raise AssertionError(f"the sim (pid {self.pid}) is still running after {timeout} s")
            time.sleep(0.02)
        if self.proc.signalstatus is not None:
            return 128 + self.proc.signalstatus
        return int(self.proc.exitstatus or 0)

    def close(self) -> None:
        _kill_group(self.pid)
        deadline = time.monotonic() + 5.0
        with contextlib.suppress(Exception):
            while self.proc.isalive() and time.monotonic() < deadline:  # isalive() reaps it
                time.sleep(0.01)
        self.proc.delayafterclose = 0.0  # dead and reaped: no need for ptyprocess's naps
        with contextlib.suppress(Exception):
            self.proc.close(force=True)
        self._reader.join(timeout=5)

    def __enter__(self) -> SimPty:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SimPipe:
    """The sim on pipes, speaking JSON lines (the SDK modes); stderr is kept in `stderr`."""

    def __init__(self, argv: Sequence[str], *, cwd: str | Path, env: Mapping[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            list(argv),
            cwd=str(cwd),
            env=dict(env or os.environ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self.messages: list[dict[str, Any]] = []  # every message received, in order
        self.raw_lines: list[bytes] = []
        self._stderr = bytearray()
        self._cond = threading.Condition()
        self._eof = False
        self._seen = 0  # messages before this index have all been returned by recv
        self._taken: set[int] = set()
        threading.Thread(target=self._read, name="simpipe-stdout", daemon=True).start()
        threading.Thread(target=self._read_stderr, name="simpipe-stderr", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.raw_lines.append(line)
                with contextlib.suppress(ValueError):
                    message = json.loads(line)
                    if isinstance(message, dict):
                        self.messages.append(message)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := self.proc.stderr.read1(65536):  # type: ignore[attr-defined]
            with self._cond:
                self._stderr += chunk
                self._cond.notify_all()

    @property
    def stderr(self) -> str:
        with self._cond:
            return self._stderr.decode(errors="replace")

    def stderr_bytes(self, count: int, timeout: float = 10.0) -> int:
        """Wait until at least `count` bytes came on stderr; returns how many came."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._stderr) < count and time.monotonic() < deadline:
                self._cond.wait(0.2)
            return len(self._stderr)

    def send(self, message: dict[str, Any] | str) -> None:
        """Write one message (a dict as JSON, a str as it is) and a newline."""
        assert self.proc.stdin is not None
        line = message if isinstance(message, str) else json.dumps(message)
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def recv(
        self, match: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        """The oldest message not yet returned for which `match` is true (or just the oldest). Messages
        that do not match stay for later calls: waiting for a response never loses a notification."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for index in range(self._seen, len(self.messages)):
                    if index not in self._taken and (match is None or match(self.messages[index])):
                        self._taken.add(index)
                        while self._seen in self._taken:
                            self._seen += 1
                        return self.messages[index]
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    how = "the sim closed stdout" if self._eof else f"{timeout} s passed"
                    last = [json.dumps(m)[:200] for m in self.messages[-5:]]
                    raise AssertionError(
                        f"no matching message ({how}); last: {last}; stderr: {self.stderr[-500:]}"
                    )
                self._cond.wait(min(left, 0.5))

    def wait(self, timeout: float = 10.0) -> int:
        """The exit status (128 + N for a death by signal N)."""
        status = self.proc.wait(timeout)
        return 128 - status if status < 0 else status

    def close(self) -> None:
        _kill_group(self.pid)
        with contextlib.suppress(Exception):
            self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(Exception):
                stream.close()  # type: ignore[union-attr]

    def __enter__(self) -> SimPipe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
