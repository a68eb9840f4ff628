"""The daemon's log handler: a stream handler that counts the lines it could not write, and says so later.

    handler = DaemonLogHandler(sys.stderr)        # installed by frontends/daemon/main.py
    handler.health = daemon.health                # the count shows in `corral daemon status`

The daemon's log is a file (`daemon.log`, or the journal under systemd). On a full disk a write fails; the
standard handler would then print a traceback about it — to the same full file — for every line. This one
counts the line as dropped instead (in `WriteHealth`, when one is attached), and with the first line it can
write again it first writes how many were dropped, so the gap in the log is explained where it is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import TextIO

from actors.health import WriteHealth

__all__ = ["DaemonLogHandler"]


class DaemonLogHandler(logging.StreamHandler[TextIO]):
    """A StreamHandler that survives a stream it cannot write (ENOSPC, EIO, a closed pipe).

    Each line goes to the stream's file descriptor in one `os.write` loop, not through Python's buffer: a
    buffered stream would keep a failed line and write it, or part of it, whenever space came back, so the
    count of dropped lines would be wrong and lines would arrive cut and out of order.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self.health: WriteHealth | None = None
        self.dropped = 0  # lines dropped since the last line written
        self._cut = False  # the last failed write left part of a line in the file

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):  # not a file (a test's StringIO): the standard way
            super().emit(record)
            return
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        if self.dropped:  # first, where the gap is, how many lines are missing from it
            note = logging.LogRecord(
                "corral.daemon", logging.WARNING, __file__, 0,
                "%d log line(s) could not be written before this one (the log's disk was full or failing)",
                (self.dropped,), None,
            )  # fmt: skip
            note.created, note.msecs = record.created, record.msecs
            if not self._write(fd, self.format(note) + self.terminator):
                self._drop()
                return
            self.dropped = 0
        if not self._write(fd, line):
            self._drop()

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            self._drop()
            return
        super().handleError(record)

    def _write(self, fd: int, text: str) -> bool:
        with contextlib.suppress(OSError, ValueError):
            self.stream.flush()  # whatever else was printed to the stream goes first
        data = memoryview((("\n" if self._cut else "") + text).encode("utf-8", "backslashreplace"))
        whole = len(data)
        try:
            while data:
                data = data[os.write(fd, data) :]
        except OSError:
            self._cut = self._cut or len(data) < whole  # nothing written: the file ends as it did
            return False
        self._cut = False
        return True

    def _drop(self) -> None:
        self.dropped += 1
        if self.health is not None:
            self.health.dropped_log_lines(1)
