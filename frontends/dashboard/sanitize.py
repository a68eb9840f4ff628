"""Agent-written text made safe to draw: colours kept (inside the preview only), every other control gone.

An agent's screen, transcript, diff, title, status reason or task question is text a program we do not
control wrote. Printed as is, a clear-screen, a cursor move, an OSC title or a DCS string would escape the
preview pane and repaint (or retitle, or reprogram) the person's terminal. So every string from the daemon
passes through here before it is drawn:

    screen_lines(pane.screen, colors=256)   # lines of text + SGR (re-degraded to 16 colours or none)
    plain(instance.reason)                  # one line of printable text, no escapes at all

Kept: printable text and SGR (`ESC [ … m`, colours and attributes), re-written for the terminal's colours.
Dropped: every other CSI (cursor moves, erase, scroll regions, modes), OSC (titles, clipboard, hyperlinks),
DCS/SOS/PM/APC strings, two-byte escapes (ESC 7, ESC c, charset selects), C1 controls, C0 controls but tab
(expanded) and newline, the bidirectional overrides that would reorder the text around them, and the emoji
joiner and variation selectors whose width terminals disagree on.
"""

from __future__ import annotations

import functools
import re

from frontends.dashboard.cells import SGR, width

# One alternation, tried in order at every ESC: a sequence is consumed whole, even when unterminated.
_ESCAPES = re.compile(
    r"""
    \x1b\[ (?P<csi_params>[0-?]*) [ -/]* (?P<csi_final>[@-~])?   # CSI … final (SGR when final is m)
  | \x1b\] [^\x07\x1b]* (?:\x07|\x1b\\)?                          # OSC … BEL or ST (or cut off)
  | \x1b[PX^_] .*? (?:\x1b\\|\x07|\Z)                             # DCS, SOS, PM, APC … ST
  | \x1b[ -/]* [0-~]?                                             # ESC 7, ESC c, ESC ( B, a lone ESC
    """,
    re.VERBOSE | re.DOTALL,
)
# ESC is not here: _ESCAPES has consumed every ESC the text held, so one left is an SGR we wrote. The
# variation selectors and the zero-width joiner go too: terminals disagree on how wide ❤️ or 👩‍💻 is (one
# cell or two, two or four), and a line one cell wider than counted wraps and breaks the layout; without
# them every terminal draws ❤ and 👩💻 the same width.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f-\x9f\u200d\u202a-\u202e\u2066-\u2069\ufe0e\ufe0f]")
_SGR_PARAMS = re.compile(r"[0-9;:]*")


def _sgr(params: str, colors: int) -> str:
    """An SGR sequence with `params`, rewritten for a terminal of `colors` (256, 16 or 0: none)."""
    if colors == 0:
        return ""
    if colors >= 256:
        return f"\x1b[{params}m"
    return f"\x1b[{';'.join(_to_16(params))}m"


def _to_16(params: str) -> list[str]:
    """The SGR parameters with 256-colour and true-colour selections replaced by the nearest of 16."""
    parts = params.replace(":", ";").split(";")
    out: list[str] = []
    i = 0
    while i < len(parts):
        p = parts[i]
        if p in ("38", "48") and i + 1 < len(parts):
            base = 30 if p == "38" else 40
            if parts[i + 1] == "5" and i + 2 < len(parts):
                n = _index_to_16(_int(parts[i + 2]))
                out.append(str(base + n) if n < 8 else str(base + 60 + n - 8))
                i += 3
                continue
            if parts[i + 1] == "2" and i + 4 < len(parts):
                n = _rgb_to_16(_int(parts[i + 2]), _int(parts[i + 3]), _int(parts[i + 4]))
                out.append(str(base + n) if n < 8 else str(base + 60 + n - 8))
                i += 5
                continue
        out.append(p)
        i += 1
    return out


def _int(text: str) -> int:
    try:
        return max(0, min(255, int(text or 0)))
    except ValueError:
        return 0


_CUBE = (0, 95, 135, 175, 215, 255)
_BASIC = (
    (0, 0, 0),
    (205, 0, 0),
    (0, 205, 0),
    (205, 205, 0),
    (0, 0, 238),
    (205, 0, 205),
    (0, 205, 205),
    (229, 229, 229),
    (127, 127, 127),
    (255, 0, 0),
    (0, 255, 0),
    (255, 255, 0),
    (92, 92, 255),
    (255, 0, 255),
    (0, 255, 255),
    (255, 255, 255),
)


def _rgb_to_16(r: int, g: int, b: int) -> int:
    return min(
        range(16), key=lambda i: (r - _BASIC[i][0]) ** 2 + (g - _BASIC[i][1]) ** 2 + (b - _BASIC[i][2]) ** 2
    )


def _index_to_16(n: int) -> int:
    """A 256-colour index as the nearest of the 16 basic colours (0–15)."""
    if n < 16:
        return n
    if n < 232:
        n -= 16
        return _rgb_to_16(_CUBE[n // 36], _CUBE[(n // 6) % 6], _CUBE[n % 6])
    level = 8 + (n - 232) * 10
    return _rgb_to_16(level, level, level)


def _clean(line: str, colors: int) -> str:
    """One line (no newline) with every escape but SGR removed and SGR re-written for `colors`."""

    def keep(m: re.Match[str]) -> str:
        if m.group("csi_final") == "m" and _SGR_PARAMS.fullmatch(m.group("csi_params") or ""):
            return _sgr(m.group("csi_params"), colors)
        return ""

    if "\r" in line:  # a carriage return: what follows overwrote the line (near enough for a preview)
        tail = line.rstrip("\r")
        line = tail[tail.rfind("\r") + 1 :]
    if "\x1b" in line:
        line = _ESCAPES.sub(keep, line)
    if "\t" in line:
        line = _expand_tabs(line)
    return _CONTROLS.sub("", line)


def _expand_tabs(line: str) -> str:
    out: list[str] = []
    col = 0
    for i, chunk in enumerate(line.split("\t")):
        if i:
            pad = 8 - col % 8
            out.append(" " * pad)
            col += pad
        out.append(chunk)
        col += width(SGR.sub("", chunk))
    return "".join(out)


@functools.lru_cache(maxsize=32)
def screen_lines(text: str, colors: int = 256) -> tuple[str, ...]:
    """An agent's screen (or transcript) as lines of printable text and SGR only, trailing blank lines
    dropped. Cached: the same capture is drawn many times between fetches."""
    lines = [_clean(line, colors) for line in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    return tuple(lines)


@functools.lru_cache(maxsize=4096)
def plain(text: str) -> str:
    """Agent- or daemon-written text for one line of the dashboard's own chrome: no escapes, no controls,
    newlines and tabs as spaces."""
    if "\x1b" in text:
        text = _ESCAPES.sub("", text)
    return _CONTROLS.sub("", text.replace("\r\n", " ").replace("\n", " ").replace("\t", " "))
