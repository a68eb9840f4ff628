"""Terminal cells: how wide text is on screen, and cutting lines that carry SGR colours to an exact width.

A frame's contract is "each line exactly `width` cells", so every piece of text is measured in cells, not in
characters, and cut between grapheme clusters, as a terminal draws them: a CJK character takes two, a
combining accent none, an emoji with its variation selector (❤️) or a ZWJ sequence (👩‍💻) two, an escape
sequence none (wcwidth's tables, which blessed's own `length` uses). The strings handled
here hold printable text and SGR sequences (`ESC [ … m`) only — sanitize.py makes agent text so before it
gets here — which is what lets `cut` re-open the colours in force at its start and close them at its end.

    width("漢字 ok")              # 7
    fit("a long title", 6)        # "a lon…"  (exactly 6 cells, padded when shorter)
    cut(line, 10, 30)             # cells 10..30 of a coloured line, colours re-opened, reset at the end
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from wcwidth import iter_graphemes, wcswidth

RESET = "\x1b[0m"
ELLIPSIS = "…"
SGR = re.compile(r"\x1b\[[0-9;:]*m")
_ASCII_PRINTABLE = re.compile(r"[ -~]*")


@functools.lru_cache(maxsize=8192)
def cluster_width(cluster: str) -> int:
    """Cells one grapheme cluster takes: 0 (a lone combining mark), 1, or 2 (wide, emoji). Unprintables
    count 0; sanitize drops them before text gets here."""
    return max(wcswidth(cluster), 0)


def clusters(text: str) -> Iterator[tuple[str, int]]:
    """(cluster, cells) for each grapheme cluster of plain `text`."""
    if _ASCII_PRINTABLE.fullmatch(text):
        for ch in text:
            yield ch, 1
        return
    for cluster in iter_graphemes(text):
        yield cluster, cluster_width(cluster)


def width(text: str) -> int:
    """Cells `text` (plain, no escapes) takes on screen."""
    if _ASCII_PRINTABLE.fullmatch(text):
        return len(text)
    return max(wcswidth(text), 0)


def visible_width(line: str) -> int:
    """Cells a line holding SGR sequences takes on screen."""
    return width(SGR.sub("", line))


def fit(text: str, cells: int, *, ellipsis: bool = True) -> str:
    """`text` (plain) made exactly `cells` wide: cut (ending in "…") when longer, padded with spaces when
    shorter. A wide character that would straddle the edge becomes a space."""
    if cells <= 0:
        return ""
    if _ASCII_PRINTABLE.fullmatch(text):
        if len(text) <= cells:
            return text + " " * (cells - len(text))
        return text[: cells - 1] + ELLIPSIS if ellipsis else text[:cells]
    used = 0
    out: list[str] = []
    total = width(text)
    limit = cells - 1 if (total > cells and ellipsis) else cells
    for cluster, w in clusters(text):
        if used + w > limit:
            break
        out.append(cluster)
        used += w
    if total > cells and ellipsis:
        out.append(ELLIPSIS)
        used += 1
    return "".join(out) + " " * (cells - used)


def cut(line: str, start: int, end: int) -> str:
    """Cells [start, end) of `line` (text and SGR sequences only), exactly `end - start` cells: padded with
    spaces when the line is shorter; the SGR sequences in force at `start` re-emitted first, and a reset at
    the end when any colour was opened, so nothing bleeds into what is drawn next to it. A wide character
    cut in half by either edge becomes a space."""
    if end <= start:
        return ""
    out: list[str] = []
    before: list[str] = []  # SGR in force at `start`, re-emitted with the first cell
    styled = False
    col = pos = 0
    n = len(line)
    while pos < n and col < end:
        if line[pos] == "\x1b":
            m = SGR.match(line, pos)
            pos = m.end() if m else pos + 1
            if m is None:
                continue
            seq = m.group()
            if col < start:
                before = [] if seq in ("\x1b[0m", "\x1b[m") else [*before, seq]
            else:
                out.append(seq)
                styled = True
            continue
        nxt = line.find("\x1b", pos)
        if nxt < 0:
            nxt = n
        for cluster, w in clusters(line[pos:nxt]):
            if col + w > end:  # a wide character at the right edge
                out.append(" " * (end - col))
                col = end
                break
            if col >= start:
                out.append(cluster)
            elif col + w > start:  # a wide character at the left edge
                out.append(" " * (col + w - start))
            col += w
            if col >= end:
                break
        pos = nxt
    if col < end:
        out.append(" " * (end - max(col, start)))
    if before:
        out.insert(0, "".join(before))
        styled = True
    return "".join(out) + RESET if styled else "".join(out)


def wrap(text: str, cells: int) -> list[str]:
    """Plain `text` broken into lines of at most `cells` cells, at spaces where it can (a word longer than
    a line is cut). Always at least one line."""
    if cells <= 0:
        return [""]
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if width(candidate) <= cells:
            current = candidate
            continue
        if current:
            lines.append(current)
        while width(word) > cells:
            head = fit(word, cells, ellipsis=False)
            lines.append(head)
            word = word[len(head.rstrip(" ")) :] or word[1:]
        current = word
    lines.append(current)
    return lines
