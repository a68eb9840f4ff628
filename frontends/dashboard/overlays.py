"""Modal boxes drawn over the dashboard: help, confirm, menus and pickers, inputs, the tmux orphan browser,
the supervision tree, checkout commands, the plan, the first-attach help.

`box(state, theme, width, height)` returns where the box goes and its lines; render.py splices them over the
frame. The box's size follows its content, within the screen less a margin, so it fits at 80×24 and does
not sprawl at 300×100; a list longer than the box scrolls to keep the cursor in view.
"""

from __future__ import annotations

from frontends.dashboard import labels
from frontends.dashboard.cells import fit, wrap
from frontends.dashboard.cells import width as cells_width
from frontends.dashboard.model import Overlay, State
from frontends.dashboard.panes import duration
from frontends.dashboard.sanitize import plain
from frontends.dashboard.theme import Theme
from protocols.observer import SupervisionNode

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


def tree_lines(tree: SupervisionNode | None) -> list[str]:
    """The supervision view (GET /v1/tree) as indented lines: each supervisor and child with its state,
    restarts, intensity used (a supervisor's restarts in its window of its maximum), backoff due, last exit
    reason and generation."""
    if tree is None:
        return ["asking the daemon for the supervision tree…"]
    out: list[str] = []

    def walk(node: SupervisionNode, depth: int) -> None:
        head = f"{'  ' * depth}{'└ ' if depth else ''}{plain(node.kind)} {plain(node.id)}"
        out.append(f"{head}   {' · '.join(node_facts(node))}")
        for child in node.children:
            walk(child, depth + 1)

    walk(tree, 0)
    return out


def node_facts(node: SupervisionNode) -> list[str]:
    """What the tree view says of one node, in a fixed order."""
    facts = [plain(node.state)] if node.state != "running" else []
    facts.append(f"restarts {node.restarts}")
    if node.kind == "supervisor" and node.max_restarts:
        facts.append(f"intensity {node.restarts_in_window}/{node.max_restarts} in {node.period_s:g} s")
    if node.backoff_due_s:
        facts.append(f"backoff {node.backoff_due_s:.1f} s")
    if node.last_exit:
        facts.append(f"last exit: {plain(node.last_exit)}")
    facts.append(f"gen {node.generation}")
    if node.error:
        facts.append(plain(node.error))
    return facts


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
