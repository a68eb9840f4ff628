"""The preview pane's content: the selected agent's screen, its diff, its info; or the selected task.

Each function returns exactly `height` lines of exactly `width` cells. Only the agent tab draws text with
the agent's own colours (sanitize.screen_lines keeps SGR and nothing else, and `cells.cut` closes every
line's colours at the pane's edge); everything else the daemon or an agent wrote is drawn as plain text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from frontends.dashboard.cells import cut, wrap
from frontends.dashboard.model import State, WaveProgress
from frontends.dashboard.sanitize import plain, screen_lines
from frontends.dashboard.theme import STATUS_ORDER, Theme
from protocols.instances import FINISHED, InstanceView
from protocols.observer import SupervisionNode
from protocols.records import TaskSummary

Piece = tuple[str, str]  # (role, plain text)


def _pad(lines: list[str], theme: Theme, width: int, height: int) -> list[str]:
    blank = " " * width
    return (lines + [blank] * height)[:height]


def _tail(text: str, lines: int) -> str:
    """The last `lines` lines of `text` that hold something (and a margin), so a transcript of thousands
    of lines is not sanitized whole for a pane that shows forty."""
    keep = lines + 20
    parts = text.rstrip("\r\n\t ").rsplit("\n", keep)
    return text if len(parts) <= keep else "\n".join(parts[-keep:])


def agent(state: State, inst: InstanceView, theme: Theme, width: int, height: int) -> list[str]:
    """The agent's screen (tmux, pty) or transcript (sdk), its last lines, scrolled back `view.scroll`."""
    pane = state.pane
    if pane.title != inst.title or not pane.screen:
        note = "the screen is on its way…" if inst.status not in ("paused",) else "paused: nothing runs"
        if inst.status in FINISHED and pane.title == inst.title:
            note = "the agent ended with an empty screen"
        return _pad([theme.line([("dim", note)], width)], theme, width, height)
    lines = screen_lines(_tail(pane.screen, height + state.view.scroll), theme.colors)
    end = max(min(len(lines), len(lines) - state.view.scroll), min(height, len(lines)))
    shown = lines[max(0, end - height) : end]
    return _pad([cut(line, 0, width) for line in shown], theme, width, height)


def _diff_role(line: str) -> str:
    if line.startswith(("+++", "---", "diff --git", "index ")):
        return "diff_file"
    if line.startswith("+"):
        return "diff_add"
    if line.startswith("-"):
        return "diff_del"
    if line.startswith("@@"):
        return "diff_hunk"
    return "text"


def diff(state: State, inst: InstanceView, theme: Theme, width: int, height: int) -> list[str]:
    """The instance's diff against its base: added lines green, removed red, hunks cyan, files bold."""
    pane = state.pane
    if pane.title != inst.title or not pane.diff:
        note = "no changes against the base" if pane.title == inst.title else "the diff is on its way…"
        return _pad([theme.line([("dim", note)], width)], theme, width, height)
    lines = screen_lines(pane.diff, 0)  # plain text: a diff's colours are ours, whatever the file held
    start = min(state.view.scroll, max(0, len(lines) - height))
    return _pad(
        [theme.line([(_diff_role(line), line)], width) for line in lines[start : start + height]],
        theme,
        width,
        height,
    )


def duration(seconds: float) -> str:
    """4s, 3m05s, 2h07m, 3d04h."""
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def metrics_text(metrics: Any) -> str:
    """ "cpu 0.3% · mem 30.0 MiB · up 12s" from an InstanceView's metrics (absent parts left out)."""
    if not metrics:
        return ""
    parts = []
    cpu = _get(metrics, "cpu_percent")
    if isinstance(cpu, int | float) and math.isfinite(cpu):
        parts.append(f"cpu {cpu:.1f}%")
    rss = _get(metrics, "rss_bytes")
    if isinstance(rss, int | float) and rss >= 0:
        parts.append(f"mem {size(rss)}")
    up = _get(metrics, "uptime_s")
    if isinstance(up, int | float) and math.isfinite(up):
        parts.append(f"up {duration(up)}")
    return " · ".join(parts)


def tree_node(tree: SupervisionNode | None, project: str, title: str) -> SupervisionNode | None:
    """The supervision view's node of instance `title` of `project` (its Instance supervisor), if known."""
    path = f"/project:{project}/{title}"
    stack = [tree] if tree is not None else []
    while stack:
        node = stack.pop()
        if node.path.endswith(path):
            return node
        stack.extend(node.children)
    return None


def wave_label(wave: WaveProgress | None) -> str:
    """ "W2 3/5" (and "✗1" when tasks of the wave failed)."""
    if wave is None:
        return ""
    text = f"W{wave.wave} {wave.done}/{wave.total}"
    return f"{text} ✗{wave.failed}" if wave.failed else text


def _field_lines(fields: Iterable[tuple[str, str, str]], theme: Theme, width: int) -> list[str]:
    """ "name   value" rows, the value wrapped under itself when long."""
    out: list[str] = []
    label_w = 12
    for name, value, role in fields:
        chunks = wrap(plain(value), max(1, width - label_w)) if value else [""]
        for n, chunk in enumerate(chunks):
            out.append(theme.line([("dim", (name if n == 0 else "").ljust(label_w)), (role, chunk)], width))
    return out


def info(state: State, inst: InstanceView, theme: Theme, width: int, height: int) -> list[str]:
    """Status and its reason, where the agent works, how it runs, and how it has fared."""
    status = f"{theme.glyph(inst.status)} {inst.status}"
    if inst.status_age_s is not None:
        status += f" for {duration(inst.status_age_s)}"
    fields: list[tuple[str, str, str]] = [
        ("status", status, theme.status_role(inst.status)),
        ("reason", inst.reason or "-", "text"),
        ("branch", inst.branch or "-", "text"),
        ("worktree", inst.worktree or "-", "text"),
        ("program", inst.program or "-", "text"),
    ]
    mode = "sdk" if inst.mode == "sdk-fast" else inst.mode
    fields.append(("mode", mode, "text"))
    if inst.mode == "sdk-fast":
        fields.append(("speed tier", "fast", "accent"))
    if inst.task:
        wave = state.fleet.waves.get(inst.task)
        task_text = inst.task + (f" · {inst.agent_type}" if inst.agent_type else "")
        if wave is not None and "-W" in inst.title:
            task_text += f" · wave {wave.wave} of {wave.waves}"
        fields.append(("task", task_text, "text"))
    if inst.resource_profile and inst.resource_profile != "normal":
        fields.append(("profile", inst.resource_profile, "question"))
    usage = metrics_text(inst.metrics)
    if usage:
        fields.append(("usage", usage, "text"))
    restarts = str(inst.restarts)
    node = tree_node(state.fleet.tree, state.fleet.project, inst.title)
    if node is not None:
        runtime = next((child for child in node.children if child.id == "runtime"), None)
        backoff = runtime.backoff_due_s if runtime is not None else None
        if backoff:
            restarts += f" · next restart in {duration(backoff)}"
        if node.max_restarts:
            restarts += f" · intensity {node.restarts_in_window}/{node.max_restarts} in {node.period_s:g} s"
    fields.append(("restarts", restarts, "text"))
    if inst.conversation_id:
        fields.append(("conversation", inst.conversation_id, "text"))
    if inst.session:
        fields.append(("session", inst.session, "dim"))
    for note in inst.notes:
        fields.append(("note", note, "question"))
    lines = _field_lines(fields, theme, width)
    start = min(state.view.scroll, max(0, len(lines) - height))
    return _pad(lines[start:], theme, width, height)


def task(state: State, t: TaskSummary, theme: Theme, width: int, height: int) -> list[str]:
    """A task: its status, waves, what it waits for (with the commands and the menu that answer it), its
    agents."""
    fleet = state.fleet
    fields: list[tuple[str, str, str]] = [
        ("task", f"{t.name} — {t.title}" if t.title and t.title != t.name else t.name, "bold"),
        ("status", t.display_status, "text"),
        ("topic", t.topic or "-", "text"),
        ("branch", t.branch or "-", "text"),
    ]
    wave = fleet.waves.get(t.name)
    if wave is not None:
        text = f"wave {wave.wave} of {wave.waves}: {wave.done}/{wave.total} done"
        fields.append(("waves", text + (f", {wave.failed} failed" if wave.failed else ""), "text"))
    if t.review_cycle:
        fields.append(("review", f"cycle {t.review_cycle}", "text"))
    if t.latest_feedback:
        fields.append(("feedback", t.latest_feedback, "dim"))
    if t.waiting is not None:
        fields.append(("waits for", f"{theme.glyph('waiting')} {t.waiting.reason}", "waiting"))
        for command in t.waiting.commands:
            fields.append(("", f"$ {command}", "dim"))
        fields.append(("", "enter or space: answer it from the task menu", "key"))
    agents = sorted(
        (i for i in fleet.instances if i.task == t.name),
        key=lambda i: (STATUS_ORDER.get(i.status, 5), i.title),
    )
    fields.append(("agents", str(len(agents)) if agents else "none yet (s spawns one)", "text"))
    lines = _field_lines(fields, theme, width)
    for inst in agents:
        role = theme.status_role(inst.status)
        lines.append(
            theme.line(
                [
                    ("text", " " * 12),
                    (role, theme.glyph(inst.status)),
                    ("text", f" {inst.title}  "),
                    ("dim", plain(inst.reason or inst.status)),
                ],
                width,
            )
        )
    start = min(state.view.scroll, max(0, len(lines) - height))
    return _pad(lines[start:], theme, width, height)
