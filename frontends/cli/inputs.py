"""Reading the text a command is given by path (`--file`, a plan file) or on stdin, with the errors a user can
act on, and never more than a cap into memory: a plan over `MAX_CONTENT_BYTES` is refused with its size."""

from __future__ import annotations

import os
import sys
from typing import BinaryIO

from protocols.errors import TooLargeError, UsageError

__all__ = ["read_file", "read_stdin", "read_text"]

_CHUNK = 65536


def read_text(path: str, *, limit: int | None = None) -> str:
    """The text at `path`; "-" reads stdin."""
    if path == "-":
        return read_stdin(limit=limit)
    return read_file(path, limit=limit)


def read_file(path: str, *, limit: int | None = None) -> str:
    """A UTF-8 file's text; a missing, unreadable or binary file is a usage error naming it (exit 2), and so
    is one over `limit` bytes (TooLargeError, with its size), which is not read into memory."""
    try:
        with open(path, "rb") as handle:
            return _decode(_read(handle, path, limit), path)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_stdin(*, limit: int | None = None) -> str:
    """All of stdin as UTF-8 text, refused past `limit` bytes (the rest is read and counted, not kept)."""
    return _decode(_read(sys.stdin.buffer, "the text read from stdin", limit), "stdin")


def _read(stream: BinaryIO, name: str, limit: int | None) -> bytes:
    if limit is None:
        return stream.read()
    data = stream.read(limit + 1)
    if len(data) <= limit:
        return data
    try:
        size = os.fstat(stream.fileno()).st_size
    except (OSError, ValueError, AttributeError):
        size = 0
    if size <= limit:  # a pipe, or a file still growing: count what is left without keeping it
        size = len(data) + sum(len(chunk) for chunk in iter(lambda: stream.read(_CHUNK), b""))
    raise TooLargeError(name, size, limit)


def _decode(data: bytes, name: str) -> str:
    """As text mode would read it: UTF-8, with universal newlines."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {name}: it is not UTF-8 text") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")
