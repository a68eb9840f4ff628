"""One frame of the dashboard, drawn from a State: `frame(state, width, height, colors=256) -> lines`.

    ┌ status bar: project, agents by status, tasks waiting, sort/filter/search, live or offline ─────────┐
    │ banner (only while the daemon cannot be reached: why, and that it reconnects by itself)            │
    │ sidebar: topics ▸ tasks ▸ their agents;  │ tabs: Agent  Diff  Info             title ● status      │
    │ standalone agents; the legend            │ the selected agent's screen / diff / info, or the task │
    │ audit pane (L)                                                                                    │
    └ one line of key help for what is selected ────────────────────────────────────────────────────────┘

Pure: no terminal, no clock, no IO — the State carries `now` — so a frame is a value a test compares, and
drawing 200 agents costs only string work. Exactly `height` lines come back, each exactly `width` cells
(SGR sequences included but taking no cells); the only text with colours of its own is the agent's screen,
cut to the preview pane's width with its colours closed at the edge (panes.py, sanitize.py).
"""

from __future__ import annotations

from collections import Counter

from frontends.dashboard import overlays, panes, sidebar
from frontends.dashboard.cells import RESET, cut, visible_width, wrap
from frontends.dashboard.model import State
from frontends.dashboard.sanitize import plain
from frontends.dashboard.sidebar import Row
from frontends.dashboard.theme import GLYPHS, LEGEND, Theme, theme_for

TABS = (("agent", "Agent"), ("diff", "Diff"), ("info", "Info"))
MIN_SIDEBAR, MAX_SIDEBAR = 24, 56
TOAST_MARKS = {"info": "»", "warn": "!", "error": "✗"}


def sidebar_width(width: int) -> int:
    """A third of the screen, between 24 and 56 cells; all of it when the screen is too narrow for two."""
    if width < MIN_SIDEBAR + 20:
        return width
    return max(MIN_SIDEBAR, min(MAX_SIDEBAR, width // 3))


def frame(state: State, width: int, height: int, *, colors: int = 256) -> list[str]:
    """The whole screen: exactly `height` lines of exactly `width` cells."""
    if width <= 0 or height <= 0:
        return [""] * max(height, 0)
    theme = theme_for(colors)
    view = state.view
    all_rows = sidebar.rows(state.fleet, view)
    selected = sidebar.selected_row(all_rows, view)

    top = [_status_bar(state, theme, width)]
    if not state.fleet.connected:
        top.append(_banner(state, theme, width))
    bottom = [_key_help(state, selected, theme, width)]
    room = height - len(top) - len(bottom)
    audit: list[str] = []
    if view.audit_open and room >= 6:
        audit = _audit(state, theme, width, max(3, min(12, room // 3)))
    body_h = max(0, room - len(audit))
    body = _body(state, all_rows, selected, theme, width, body_h)
    lines = (top + body + audit + bottom)[:height]
    if len(lines) < height:  # a terminal too short for the chrome: what fits, padded
        lines += [" " * width] * (height - len(lines))
    lines = _toasts(state, theme, lines, width, len(top) + body_h)
    if view.overlay is not None:
        lines = _splice_overlay(state, theme, lines, width, height)
    return lines


# -- the bars ------------------------------------------------------------------------------------------


def _status_bar(state: State, theme: Theme, width: int) -> str:
    """Project, what the view narrows to, agents by status, tasks waiting, sort; live or offline."""
    fleet, view = state.fleet, state.view
    counts = Counter(i.status for i in fleet.instances)
    pieces: list[tuple[str, str]] = [("bar_key", " corral "), ("bar", f" {plain(fleet.project)} ")]
    if view.interactive:
        pieces += [("toast_warn", f" INTERACTIVE → {plain(view.selected.split(':', 1)[-1])} "), ("bar", " ")]
    if view.search or view.searching:
        pieces.append(("bar_key", f" /{plain(view.search)}{'▏' if view.searching else ''} "))
    if view.filter == "active":
        pieces.append(("bar_key", " active only "))
    for status in GLYPHS:
        if counts.get(status):
            pieces.append(("bar", f" {GLYPHS[status]} {counts[status]}"))
    if not fleet.instances:
        pieces.append(("bar", " no agents"))
    waiting = sum(1 for t in fleet.tasks if t.waiting is not None)
    pieces.append(("bar", f"  │ {len(fleet.tasks)} task{'' if len(fleet.tasks) == 1 else 's'}"))
    if waiting:
        pieces.append(("bar_key", f", {waiting} wait{'s' if waiting == 1 else ''} for you"))
    pieces.append(("bar", f"  │ sort: {view.sort}"))
    live = " live " if fleet.connected else " offline "
    if width <= 60:
        return theme.line(pieces, width, fill="bar")
    left = theme.line(pieces, width - len(live), fill="bar")
    return left + theme.paint("bar_key" if fleet.connected else "banner", live)


def _banner(state: State, theme: Theme, width: int) -> str:
    problem = plain(state.fleet.problem) or "connecting to the daemon…"
    text = f" ⚠ {problem} — showing the last known state; reconnecting by itself"
    return theme.line([("banner", text)], width, fill="banner")


def _key_help(state: State, row: Row | None, theme: Theme, width: int) -> str:
    view = state.view
    if view.overlay is not None:
        keys = [("esc", "close"), ("?", "help")]
    elif view.interactive:
        keys = [
            ("ctrl+space", "leave"),
            ("ctrl+enter", "send and leave"),
            ("", "every other key goes to the agent"),
        ]
    elif view.searching:
        keys = [("", "type to filter by title or task"), ("enter", "keep"), ("esc", "clear")]
    elif row is not None and row.kind == "task":
        keys = [
            ("enter", "menu"),
            ("s", "spawn"),
            ("n", "new task"),
            ("N", "new agent"),
            ("↑↓", "move"),
            ("/", "search"),
            ("L", "audit"),
            ("?", "help"),
            ("q", "quit"),
        ]
    elif row is not None:
        keys = [
            ("enter", "attach"),
            ("i", "type"),
            ("tab", "agent/diff/info"),
            ("space", "menu"),
            ("k", "kill"),
            ("K", "pause"),
            ("r", "resume"),
            ("R", "restart"),
            ("D", "delete"),
            ("?", "help"),
            ("q", "quit"),
        ]
    else:
        keys = [
            ("n", "new task"),
            ("N", "new agent"),
            ("T", "tmux orphans"),
            ("t", "tree"),
            ("?", "help"),
            ("q", "quit"),
        ]
    pieces: list[tuple[str, str]] = [("text", " ")]
    for key, what in keys:
        if key:
            pieces.append(("key", key))
        pieces.append(("dim", f" {what}  "))
    return theme.line(pieces, width)


# -- the body: sidebar and preview ----------------------------------------------------------------------


def _body(
    state: State, all_rows: tuple[Row, ...], selected: Row | None, theme: Theme, width: int, height: int
) -> list[str]:
    if height <= 0:
        return []
    side_w = sidebar_width(width)
    left = _sidebar(state, all_rows, selected, theme, side_w, height)
    if side_w >= width:
        return left
    sep = theme.paint("dim", "│")
    right = _preview(state, selected, theme, width - side_w - 1, height)
    return [f"{a}{sep}{b}" for a, b in zip(left, right, strict=True)]


def _row_lines(state: State, row: Row, theme: Theme, width: int, selected: bool) -> list[str]:
    fill = "selected" if selected else ""
    text_role = "selected" if selected else "text"
    if row.kind in ("topic", "section"):
        marker = "▾ " if row.kind == "topic" else "◇ "
        return [theme.line([("header", marker + plain(row.label))], width)]
    if row.kind == "task" and row.task is not None:
        t = row.task
        wave = panes.wave_label(state.fleet.waves.get(t.name))
        marker = (theme.glyph("waiting"), "waiting") if t.waiting else ("▸", "dim")
        pieces = [
            (text_role, "›" if selected else " "),
            (marker[1], marker[0]),
            (text_role, " " + plain(t.name)),
        ]
        if wave:
            pieces.append(("accent", " " + wave))
        pieces.append(("dim", " " + t.display_status))
        lines = [theme.line(pieces, width, fill=fill)]
        if t.waiting is not None:
            lines.append(
                theme.line(
                    [(text_role, "   "), ("question", "↳ " + plain(t.waiting.reason))], width, fill=fill
                )
            )
        return lines
    inst = row.instance
    assert inst is not None
    indent = ("  " if row.depth else "") + ("›" if selected else " ")
    pieces = [
        (text_role, indent),
        (theme.status_role(inst.status), theme.glyph(inst.status)),
        (text_role, " " + plain(inst.title)),
    ]
    if inst.mode not in ("tmux", ""):
        pieces.append(("dim", f" {inst.mode}"))
    return [theme.line(pieces, width, fill=fill)]


def _legend(theme: Theme, width: int) -> list[str]:
    lines: list[list[tuple[str, str]]] = [[]]
    used = 0
    for status, word in LEGEND:
        cost = len(word) + 3
        if used and used + cost > width:
            lines.append([])
            used = 0
        lines[-1] += [(status, f" {GLYPHS[status]}"), ("dim", f" {word}")]
        used += cost
    return [theme.line(pieces, width) for pieces in lines]


def _sidebar(
    state: State, all_rows: tuple[Row, ...], selected: Row | None, theme: Theme, width: int, height: int
) -> list[str]:
    legend = _legend(theme, width) if height >= 12 else []
    room = height - len(legend) - (1 if legend else 0)
    lines: list[str] = []
    sel_line = 0
    for row in all_rows:
        is_sel = selected is not None and row.key == selected.key and bool(row.key)
        if is_sel:
            sel_line = len(lines)
        lines.extend(_row_lines(state, row, theme, width, is_sel))
    if not all_rows:
        if state.view.search or state.view.filter == "active":
            note = "nothing matches: 1 shows all, esc clears the search"
        else:
            note = "no tasks or agents yet: n makes a new task, N a new agent"
        lines = [theme.line([("dim", " " + chunk)], width) for chunk in wrap(note, width - 2)]
    first = 0
    if len(lines) > room > 0:
        first = max(0, min(sel_line - room // 2, len(lines) - room))
    shown = lines[first : first + max(room, 0)]
    shown += [" " * width] * (max(room, 0) - len(shown))
    if legend:
        shown.append(theme.line([("dim", "─" * width)], width))
        shown.extend(legend)
    return shown[:height]


def _tab_line(state: State, row: Row | None, theme: Theme, width: int) -> str:
    pieces: list[tuple[str, str]] = []
    if row is not None and row.kind == "task":
        pieces.append(("tab_active", " Task "))
    else:
        for tab, name in TABS:
            pieces.append(("tab_active" if state.view.tab == tab else "tab", f" {name} "))
            pieces.append(("text", " "))
    if row is not None and row.instance is not None:
        inst = row.instance
        pieces += [
            ("dim", "  "),
            (theme.status_role(inst.status), f"{theme.glyph(inst.status)} {inst.status}"),
            ("text", " " + plain(inst.title)),
        ]
        if inst.reason:
            pieces.append(("dim", " — " + plain(inst.reason)))
    return theme.line(pieces, width)


def _preview(state: State, row: Row | None, theme: Theme, width: int, height: int) -> list[str]:
    head = _tab_line(state, row, theme, width)
    room = height - 1
    if row is None or row.kind in ("topic", "section"):
        content = [theme.line([("dim", "select a task or an agent (↑↓)")], width)]
        content += [" " * width] * (room - 1)
    elif row.task is not None:
        content = panes.task(state, row.task, theme, width, room)
    else:
        assert row.instance is not None
        draw = {"agent": panes.agent, "diff": panes.diff, "info": panes.info}[state.view.tab]
        content = draw(state, row.instance, theme, width, room)
    return [head, *content][:height]


# -- what goes over the body ----------------------------------------------------------------------------


def _audit(state: State, theme: Theme, width: int, height: int) -> list[str]:
    head = theme.line([("header", "─ audit "), ("dim", "(L hides) " + "─" * width)], width)
    rows = state.fleet.audit[-(height - 1) :] if height > 1 else ()
    out = [head]
    for line in rows:
        role = {"warn": "audit_warn", "error": "audit_error"}.get(line.level, "text")
        ts = line.ts[11:19] if len(line.ts) >= 19 else line.ts
        who = line.instance or line.task
        out.append(
            theme.line(
                [
                    ("dim", f" {ts} "),
                    ("accent", plain(line.kind)),
                    ("dim", f" {plain(who)} " if who else " "),
                    (role, plain(line.message)),
                ],
                width,
            )
        )
    out += [" " * width] * (height - len(out))
    return out[:height]


def _toasts(state: State, theme: Theme, lines: list[str], width: int, bottom: int) -> list[str]:
    """The live toasts, newest lowest, over the bottom right of the body."""
    live = [t for t in state.view.toasts if t.until > state.now][-3:]
    if not live or bottom <= 0:
        return lines
    lines = list(lines)
    for n, toast in enumerate(reversed(live)):
        y = bottom - 1 - n
        if y < 1:
            break
        text = f" {TOAST_MARKS.get(toast.level, '»')} {plain(toast.text)} "
        w = min(width, max(len(text), 1))
        painted = theme.line([(f"toast_{toast.level}", text)], w, fill=f"toast_{toast.level}")
        x = width - w
        lines[y] = cut(lines[y], 0, x) + painted + (RESET if theme.colors else "")
    return lines


def _splice_overlay(state: State, theme: Theme, lines: list[str], width: int, height: int) -> list[str]:
    top, left, box = overlays.box(state, theme, width, height)
    lines = list(lines)
    for n, box_line in enumerate(box):
        y = top + n
        if y >= height:
            break
        box_w = min(width - left, visible_width(box_line))
        right = left + box_w
        lines[y] = cut(lines[y], 0, left) + cut(box_line, 0, box_w) + cut(lines[y], right, width)
    return lines
