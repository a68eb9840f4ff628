"""The dashboard's glyphs and colours, for a terminal of 256 colours, of 16, or of none.

Every style is a plain SGR string (no terminal is asked: a frame is drawn without one), chosen once per
colour depth. With no colour the dashboard still reads: every status has its own glyph, and the selection,
bars and banner use reverse video and bold, which are attributes, not colours.

    theme = THEMES[16]
    theme.paint("running", "●")     # "\\x1b[32m●\\x1b[0m"
    theme.glyph("waiting")         # "◆"
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from frontends.dashboard.cells import RESET, fit, width

GLYPHS: Mapping[str, str] = MappingProxyType(
    {
        "running": "●",
        "loading": "◌",
        "ready": "○",
        "waiting": "◆",
        "paused": "‖",
        "exited": "□",
        "failed": "✗",
        "unknown": "?",
    }
)
"""An instance's status as one narrow glyph (the legend lists them in this order)."""

LEGEND: tuple[tuple[str, str], ...] = (
    ("running", "run"),
    ("loading", "start"),
    ("ready", "idle"),
    ("waiting", "needs you"),
    ("paused", "paused"),
    ("exited", "ended"),
    ("failed", "failed"),
)

STATUS_ORDER: Mapping[str, int] = MappingProxyType(
    {
        "waiting": 0,
        "failed": 1,
        "running": 2,
        "loading": 3,
        "ready": 4,
        "unknown": 5,
        "paused": 6,
        "exited": 7,
    }
)
"""Sort by status: what needs a person first, what ended last."""

# role → (256-colour SGR parameters, 16-colour parameters, no-colour parameters: attributes only)
_ROLES: Mapping[str, tuple[str, str, str]] = MappingProxyType(
    {
        "running": ("38;5;78", "32", ""),
        "loading": ("38;5;80", "36", ""),
        "ready": ("38;5;75", "34", ""),
        "waiting": ("1;38;5;220", "1;33", "1"),
        "paused": ("38;5;245", "90", ""),
        "exited": ("38;5;244", "90", ""),
        "failed": ("1;38;5;203", "1;31", "1"),
        "unknown": ("38;5;170", "35", ""),
        "accent": ("1;38;5;141", "1;35", "1"),
        "dim": ("38;5;244", "90", ""),
        "text": ("", "", ""),
        "bold": ("1", "1", "1"),
        "header": ("1;38;5;153", "1;36", "1"),
        "selected": ("1;48;5;238;38;5;255", "7", "7"),
        "bar": ("48;5;236;38;5;252", "7", "7"),
        "bar_key": ("1;48;5;236;38;5;141", "1;7", "1;7"),
        "banner": ("1;48;5;124;38;5;231", "1;41;97", "1;7"),
        "tab": ("38;5;246", "90", ""),
        "tab_active": ("1;48;5;60;38;5;231", "1;7", "1;7"),
        "key": ("1;38;5;141", "1;35", "1"),
        "question": ("38;5;220", "33", ""),
        "diff_add": ("38;5;78", "32", ""),
        "diff_del": ("38;5;203", "31", ""),
        "diff_hunk": ("38;5;80", "36", ""),
        "diff_file": ("1", "1", "1"),
        "border": ("38;5;141", "35", ""),
        "toast_info": ("48;5;24;38;5;231", "44;97", "7"),
        "toast_warn": ("1;48;5;136;38;5;231", "1;43;30", "1;7"),
        "toast_error": ("1;48;5;124;38;5;231", "1;41;97", "1;7"),
        "audit_warn": ("38;5;220", "33", ""),
        "audit_error": ("38;5;203", "31", "1"),
    }
)


class Theme:
    """The SGR string of every role for one colour depth. Immutable after construction."""

    __slots__ = ("_sgr", "colors")

    def __init__(self, colors: int) -> None:
        self.colors = colors
        column = 0 if colors >= 256 else 1 if colors >= 8 else 2
        self._sgr = {
            role: (f"\x1b[{codes[column]}m" if codes[column] else "") for role, codes in _ROLES.items()
        }

    def sgr(self, role: str) -> str:
        """The SGR string that starts `role` ("" when it has none at this depth)."""
        return self._sgr.get(role, "")

    def paint(self, role: str, text: str) -> str:
        """`text` in `role`'s style, reset after."""
        start = self._sgr.get(role, "")
        return f"{start}{text}{RESET}" if start and text else text

    def glyph(self, status: str) -> str:
        return GLYPHS.get(status, GLYPHS["unknown"])

    def status_role(self, status: str) -> str:
        return status if status in GLYPHS else "unknown"

    def line(self, pieces: Iterable[tuple[str, str]], cells: int, fill: str = "") -> str:
        """Plain-text `pieces` (role, text) laid out left to right in exactly `cells` cells: the piece that
        overflows is cut with "…", the rest padded in the `fill` role."""
        out: list[str] = []
        used = 0
        fill_sgr = self._sgr.get(fill, "")
        for role, text in pieces:
            if used >= cells:
                break
            w = width(text)
            if used + w > cells:
                text = fit(text, cells - used)
                w = cells - used
            start = self._sgr.get(role, "")
            out.append(f"{start}{text}{RESET}{fill_sgr}" if start else text)
            used += w
        pad = " " * (cells - used)
        if fill_sgr:
            return f"{fill_sgr}{''.join(out)}{pad}{RESET}"
        return "".join(out) + pad


THEMES: Mapping[int, Theme] = MappingProxyType({256: Theme(256), 16: Theme(16), 0: Theme(0)})


def theme_for(colors: int) -> Theme:
    """The theme for a terminal of `colors` colours: 256 and more, 8 to 255 (the 16 basic), or none."""
    return THEMES[256 if colors >= 256 else 16 if colors >= 8 else 0]


__all__ = ["GLYPHS", "LEGEND", "STATUS_ORDER", "THEMES", "Theme", "theme_for"]
