"""The names of what a person can do from the dashboard, as menus, confirmations and the help show them.

An action is an id (`kill`, `transition:cancel`, `signal:retry_wave`); actions.py decides which apply to a row
and what each does, render draws their labels. Keeping the words here means the menu, the key help and
docs/dashboard.md say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

INSTANCE_LABELS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "open": ("open (attach fullscreen)", "enter"),
        "focus": ("focus agent (interactive)", "i"),
        "yes": ("answer yes to its prompt", "y"),
        "pause": ("pause (branch kept)", "K"),
        "resume": ("resume", "r"),
        "restart": ("restart", "R"),
        "kill": ("kill (the row stays)", "k"),
        "checkout": ("checkout (pause, copy branch)", "c"),
        "rename": ("rename", "e"),
        "push": ("push branch", "p"),
        "pr": ("create pull request", "P"),
        "mark": ("mark wave task complete", "m"),
        "delete": ("delete (row, worktree, branch)", "D"),
        "plan": ("open the task's plan", ""),
        "copy_branch": ("copy branch name", ""),
        "copy_worktree": ("copy worktree path", ""),
    }
)
"""Instance action → (menu label, its key)."""

EVENT_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "plan_start": "plan (start the planner)",
        "planner_finished": "the plan is written",
        "implement_start": "implement (start the coders)",
        "implement_finished": "implementation finished",
        "review_approved": "approve the review",
        "review_changes_requested": "request changes",
        "verify_approved": "verified: done",
        "verify_failed": "verification failed",
        "start_over": "start over (plan again)",
        "reimplement": "implement again",
        "request_review": "review (request a review)",
        "cancel": "cancel the task",
        "reopen": "reopen",
    }
)

TASK_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "signal:retry_wave": "retry the failed wave tasks",
        "signal:advance_wave": "go on to the next wave",
        "spawn": "spawn an agent for it",
        "view_plan": "view plan",
        "copy_branch": "copy branch name",
    }
)

SPAWN_MODES: tuple[str, ...] = ("tmux", "pty", "sdk", "sdk-fast")
SPAWN_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "tmux": "tmux — a terminal session (attach, interactive)",
        "pty": "pty — a terminal the daemon holds (attach through it)",
        "sdk": "sdk — the harness's structured protocol (transcript)",
        "sdk-fast": "sdk-fast — codex only: the fast service tier",
    }
)

ORPHAN_LABELS: Mapping[str, str] = MappingProxyType(
    {"adopt": "adopt (a new instance)", "attach": "attach without adopting", "kill": "kill the session"}
)


def label(action: str) -> str:
    """The words a menu shows for `action`."""
    if action.startswith("transition:"):
        event = action.split(":", 1)[1]
        return EVENT_LABELS.get(event, event.replace("_", " "))
    if action in TASK_LABELS:
        return TASK_LABELS[action]
    if action in INSTANCE_LABELS:
        text, key = INSTANCE_LABELS[action]
        return f"{text}  [{key}]" if key else text
    if action in SPAWN_LABELS:
        return SPAWN_LABELS[action]
    if action.startswith("orphan:"):
        return ORPHAN_LABELS.get(action.split(":", 1)[1], action)
    return action.replace("_", " ")
