"""Reading the text a command is given by path (`--file`, a plan file), with the errors a user can act on."""

from __future__ import annotations

import sys

from protocols.errors import UsageError

__all__ = ["read_file", "read_text"]


def read_text(path: str) -> str:
    """The text at `path`; "-" reads stdin."""
    if path == "-":
        return sys.stdin.read()
    return read_file(path)


def read_file(path: str) -> str:
    """A UTF-8 file's text; a missing, unreadable or binary file is a usage error naming it (exit 2)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {path}: it is not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
