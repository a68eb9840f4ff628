"""Modal boxes drawn over the dashboard: help, confirm, menus and pickers, inputs, the tmux orphan browser,
the supervision tree, checkout commands, the plan, the first-attach help.

`box(state, theme, width, height)` returns where the box goes and its lines; render.py splices them over the
frame. The box's size follows its content, within the screen less a margin, so it fits at 80×24 and does
not sprawl at 300×100; a list longer than the box scrolls to keep the cursor in view.
"""

from __future__ import annotations

from typing import Any

from frontends.dashboard import labels
from frontends.dashboard.cells import fit, wrap
from frontends.dashboard.cells import width as cells_width
from frontends.dashboard.model import Overlay, State
from frontends.dashboard.panes import duration
from frontends.dashboard.sanitize import plain
from frontends.dashboard.theme import Theme

FOOTERS = {
    "help": "↑↓ scroll · esc close",
    "confirm": "y or enter: yes · n or esc: no",
    "menu": "↑↓ choose · enter do it · esc close",
    "picker": "↑↓ choose · enter pick · esc cancel",
    "input": "enter: ok · esc: cancel",
    "tmux": "a adopt · enter attach · k kill · esc close",
    "tree": "↑↓ scroll · esc close (live)",
    "checkout": "esc close (then r resumes the agent)",
    "plan": "↑↓ scroll · esc close",
    "attach_help": "any key: attach",
}


def _orphan_rows(state: State) -> list[str]:
    rows = []
    for o in state.fleet.orphans:
        age = f"  {duration(state.wall - o.created)} old" if o.created and state.wall else ""
        rows.append(f"{plain(o.session)}  {plain(o.command)}{age}")
    return rows or ["no orphan sessions: every tmux session on corral's server belongs to an instance"]


def tree_lines(tree: Any) -> list[str]:
    """The supervision view (GET /v1/tree) as indented lines: each supervisor and child with its restarts,
    intensity used, backoff due, last exit reason and generation."""
    if tree is None:
        return ["asking the daemon for the supervision tree…"]
    out: list[str] = []

    def walk(node: Any, depth: int) -> None:
        if not isinstance(node, dict):
            return
        name = plain(str(node.get("name") or node.get("path") or "?"))
        kind = plain(str(node.get("kind") or ""))
        facts = []
        if node.get("status"):
            facts.append(plain(str(node["status"])))
        if node.get("restarts") is not None:
            facts.append(f"restarts {node['restarts']}")
        intensity = node.get("intensity")
        if isinstance(intensity, list | tuple) and len(intensity) == 2:
            facts.append(f"intensity {intensity[0]}/{intensity[1]}")
        elif intensity is not None:
            facts.append(f"intensity {plain(str(intensity))}")
        backoff = node.get("backoff_s", node.get("backoff_due_s"))
        if isinstance(backoff, int | float) and backoff > 0:
            facts.append(f"backoff {backoff:.1f}s")
        if node.get("last_exit"):
            facts.append(f"last exit: {plain(str(node['last_exit']))}")
        if node.get("generation") is not None:
            facts.append(f"gen {node['generation']}")
        head = f"{'  ' * depth}{'└ ' if depth else ''}{kind + ' ' if kind else ''}{name}"
        out.append(f"{head}   {' · '.join(facts)}" if facts else head)
        for child in node.get("children") or ():
            walk(child, depth + 1)

    for root in tree if isinstance(tree, list | tuple) else [tree]:
        walk(root, 0)
    return out or ["the supervision tree is empty"]


def _content(state: State, overlay: Overlay) -> tuple[list[str], list[str], int | None]:
    """(text lines above, list items, cursor index or None) of an overlay."""
    kind = overlay.kind
    lines = [plain(line) for line in overlay.lines]
    if kind in ("menu", "picker"):
        return lines, [labels.label(item) for item in overlay.items], overlay.cursor
    if kind == "tmux":
        return lines, _orphan_rows(state), overlay.cursor if state.fleet.orphans else None
    if kind == "tree":
        return lines, tree_lines(state.fleet.tree), None
    if kind in ("help", "checkout", "plan", "attach_help", "confirm"):
        return lines, [plain(item) for item in overlay.items], None
    return lines, [], None


def _edge(theme: Theme, start: str, text: str, role: str, end: str, cells: int) -> str:
    """A box's top or bottom border, `cells` wide, with `text` set into it."""
    rule = "─" * max(0, cells - 3 - cells_width(text))
    return theme.paint("border", start) + theme.paint(role, text) + theme.paint("border", rule + end)


def box(state: State, theme: Theme, width: int, height: int) -> tuple[int, int, list[str]]:
    """(top row, left column, lines) of the open overlay; every line the same width."""
    overlay = state.view.overlay
    assert overlay is not None
    text, items, cursor = _content(state, overlay)
    inner_max = max(10, width - 6)
    want = max(
        [cells_width(plain(overlay.title)) + 4, cells_width(FOOTERS.get(overlay.kind, "")) + 4, 36]
        + [cells_width(line) for line in text]
        + [cells_width(item) + 2 for item in items]
    )
    inner = min(inner_max, want)
    body: list[str] = []
    for line in text:
        body.extend(theme.line([("text", chunk)], inner) for chunk in wrap(line, inner))
    if overlay.kind == "input":
        shown = plain(overlay.text)
        room = inner - 3
        tail = shown[-room:] if cells_width(shown) > room else shown
        body.append(theme.line([("accent", "> "), ("bold", tail), ("selected", " ")], inner))
    room = max(1, height - 4 - len(body))
    if len(items) > room:
        room = max(1, room - 1)  # a line says how many more there are
    first = 0
    if cursor is not None and cursor >= room:
        first = cursor - room + 1
    elif cursor is None and overlay.kind in ("help", "tree", "plan"):
        first = max(0, min(overlay.cursor, len(items) - room))
    shown = items[first : first + room]
    for n, item in enumerate(shown, start=first):
        if cursor is not None:
            role = "selected" if n == cursor else "text"
            body.append(theme.line([(role, ("▸ " if n == cursor else "  ") + item)], inner))
        else:
            body.append(theme.line([("text", item)], inner))
    if len(items) > room:
        after = len(items) - first - len(shown)
        note = f"↓ {after} more" if after else f"↑ {first} above"
        body.append(theme.line([("dim", note)], inner))
    body = body[: max(1, height - 4)]
    border = theme.sgr("border")
    reset = "\x1b[0m" if border else ""
    title = fit(f" {plain(overlay.title)} ", inner - 2, ellipsis=True).rstrip() + " " if overlay.title else ""
    footer = fit(f" {FOOTERS.get(overlay.kind, 'esc close')} ", inner - 2).rstrip() + " "
    top = _edge(theme, "╭─", title, "accent", "╮", inner + 4)
    bottom = _edge(theme, "╰─", footer, "dim", "╯", inner + 4)
    side = f"{border}│{reset}"
    lines = [top, *(f"{side} {line} {side}" for line in body), bottom]
    box_w = inner + 4
    left = max(0, (width - box_w) // 2)
    top_row = max(0, (height - len(lines)) // 2)
    return top_row, left, lines
