"""The daemon's log handler on a real, small disk that fills up: it drops and counts, and explains the gap."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from actors.health import WriteHealth
from frontends.daemon.logsink import DaemonLogHandler
from tests.disk_kit import SmallDisk


@pytest.fixture
def log_stream(disk: SmallDisk) -> Iterator[TextIO]:
    """A text stream on a file on the small disk, as the daemon's stderr is on daemon.log."""
    with open(disk.path / "daemon.log", "a", encoding="utf-8") as stream:
        yield stream


def test_a_full_disk_drops_and_counts_log_lines_and_the_next_line_says_how_many(
    disk: SmallDisk, log_stream: TextIO
) -> None:
    health = WriteHealth()
    handler = DaemonLogHandler(log_stream)
    handler.health = health
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("test.daemon.log")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("before")
        disk.fill()
        for n in range(200):  # the file's last page takes a few; then the disk refuses
            logger.warning("during %d %s", n, "y" * 100)
        dropped = health.view().log_lines_dropped
        assert dropped > 0 and handler.dropped == dropped
        disk.free()
        logger.warning("after")
    finally:
        logger.removeHandler(handler)
    lines = Path(disk.path / "daemon.log").read_text().splitlines()
    written = [line for line in lines if re.fullmatch(r"WARNING during \d+ y{100}", line)]
    assert len(written) + dropped == 200  # every line is either in the file, whole, or counted
    assert lines[0] == "WARNING before" and lines[-1] == "WARNING after"
    assert lines[-2] == (
        f"WARNING {dropped} log line(s) could not be written before this one (the log's disk was full or "
        "failing)"
    )


def test_a_stream_that_is_not_a_file_is_written_the_standard_way() -> None:
    import io

    stream = io.StringIO()
    handler = DaemonLogHandler(stream)
    handler.emit(logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("there",), None))
    assert stream.getvalue() == "hello there\n"
