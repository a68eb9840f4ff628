"""How the CLI writes: aligned tables and `key: value` blocks for people, JSON for programs, errors on stderr.

    print(format_table(("NAME", "STATUS"), [("fix-login", "planning")]))
    NAME       STATUS
    fix-login  planning

Errors are one line on stderr, `corral: error: <what was wrong and what to do>`; stdout stays clean so that
`corral task list --json | jq` never sees a message meant for a person.

Text that agents wrote — titles, plans, reasons, payloads, audit messages — reaches a person's terminal only
through `terminal_safe`: a plan holding `\x1b]0;pwned\x07` must not retitle the window, nor a reason move the
cursor and rewrite the lines above it. Tables, `key: value` blocks and error lines apply it themselves; text
printed another way (a task's content, a captured screen) must be passed through it. JSON needs nothing: its
encoder escapes every control character.
"""

from __future__ import annotations

import argparse
import os
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

__all__ = [
    "BUG_HINT",
    "ERROR_PREFIX",
    "HelpFormatter",
    "display_width",
    "format_error",
    "format_fields",
    "format_table",
    "print_error",
    "print_json",
    "short_stamp",
    "terminal_columns",
    "terminal_safe",
    "to_json",
]

ERROR_PREFIX = "corral: error: "
_INT64_MAX = 2**63 - 1  # protocols.records.INT64_MAX, not imported: output.py is on every command's path
BUG_HINT = "this is a bug in corral; rerun with CORRAL_DEBUG=1 to see the traceback, and report it"


def terminal_columns() -> int:
    """The terminal's width as `shutil.get_terminal_size()` finds it — $COLUMNS, else the width of the
    terminal on stdout, else 80 — without importing shutil, which costs a command ~5 ms (bz2 and lzma)."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help text as written, except that a long unindented line (prose) is wrapped to the terminal.

    Diagrams, tables and examples are indented, so they keep their layout; descriptions can be written as
    one long line per paragraph. argparse makes one of these for every argument it adds (to check its
    metavar): the width is found without shutil (see `terminal_columns`).
    """

    def __init__(
        self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None
    ) -> None:
        width = terminal_columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        lines = []
        for line in text.splitlines():
            if line.startswith(" ") or display_width(line) <= width:
                lines.append(indent + line)
            else:
                lines.extend(textwrap.wrap(line, width, initial_indent=indent, subsequent_indent=indent))
        return "\n".join(lines)


def positive_int(text: str, low: int = 1) -> int:
    """An argparse `type` for counts such as `--limit N`: a whole number from `low` (1) to 2**63 - 1, the
    largest the store keeps (a larger one would be an OverflowError at the query, not a usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
    if value > _INT64_MAX:
        raise argparse.ArgumentTypeError(f"must be at most {_INT64_MAX}, got {text}")
    return value


def _control_names() -> dict[int, str]:
    """Every character a terminal may act on, and how it is shown instead: C0 controls (but newline and tab)
    in caret notation (ESC is `^[`, BEL `^G`, CR `^M`), DEL as `^?`, C1 controls (a one-character CSI, OSC…)
    and the bidirectional overrides that can make text read differently from what it is (`\u202e`) as
    escapes."""
    names = {code: f"^{chr(code + 64)}" for code in range(0x20) if chr(code) not in "\n\t"}
    names[0x7F] = "^?"
    names.update({code: f"\\x{code:02x}" for code in range(0x80, 0xA0)})
    for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)):
        names[code] = f"\\u{code:04x}"
    return names


_CONTROLS = _control_names()


def terminal_safe(text: str) -> str:
    """`text` with nothing a terminal would act on: every control character except newline and tab is shown
    as visible characters (`\x1b[2J` becomes `^[[2J`). For any text corral did not write itself."""
    return text.translate(_CONTROLS)


def display_width(text: str) -> int:
    """Columns `text` takes in a terminal: wide (CJK) characters count two, combining marks none."""
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, gap: int = 2) -> str:
    """Columns aligned to their widest cell, separated by `gap` spaces; the last column is not padded."""
    cells = [tuple(headers), *(tuple(terminal_safe(_one_line(str(c))) for c in row) for row in rows)]
    widths = [max(display_width(row[i]) for row in cells) for i in range(len(headers))]
    sep = " " * gap
    lines = []
    for row in cells:
        padded = [_pad(cell, widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append(sep.join([*padded, row[-1]]).rstrip())
    return "\n".join(lines)


def format_fields(fields: Iterable[tuple[str, str]]) -> str:
    """A `key: value` block with the values aligned; multi-line values are indented under their key."""
    pairs = list(fields)
    width = max((display_width(key) for key, _ in pairs), default=0) + 2
    lines = []
    for key, value in pairs:
        first, *rest = terminal_safe(str(value)).splitlines() or [""]
        lines.append(_pad(f"{key}:", width) + first)
        lines.extend(" " * width + line for line in rest)
    return "\n".join(line.rstrip() for line in lines)


def _one_line(text: str) -> str:
    return " ".join(text.split()) if ("\n" in text or "\t" in text) else text


def short_stamp(stamp: str) -> str:
    """`2026-11-21T15:01:59.123456Z` → `2026-11-21 15:01:59` (still UTC); "" stays ""."""
    if not stamp:
        return ""
    return stamp[:19].replace("T", " ")


def to_json(value: Any) -> str:
    """Records (msgspec Structs), lists of them or plain data as indented JSON, keys in declaration order."""
    import msgspec

    encoded = msgspec.json.encode(msgspec.to_builtins(value))
    return msgspec.json.format(encoded, indent=2).decode("utf-8")


def print_json(value: Any, stream: TextIO | None = None) -> None:
    print(to_json(value), file=stream or sys.stdout)


def format_error(message: str) -> str:
    """`corral: error: <message>`; continuation lines of a long message are indented under the first."""
    first, *rest = terminal_safe(str(message)).strip().splitlines() or ["unknown error"]
    return "\n".join([ERROR_PREFIX + first, *("  " + line for line in rest)])


def print_error(message: str, stream: TextIO | None = None) -> None:
    print(format_error(message), file=stream or sys.stderr)
