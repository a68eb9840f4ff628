"""Which corral role a prompt is for, read from the prompt alone (the model never sees the agent's
environment): the role of the `corral signal emit` command the prompt ends with.

    role_of(planner_prompt("fix-login", "Fix it", brief))   # → "planner"
    role_of("hello")                                          # → ""
    is_nudge(nudge_prompt(commands))                          # → True

Every prompt corral gives an agent ends with the command that finishes its step (protocols.prompts), so
the last such command names the role; a fixer's prompt ends with a coder's signal and is told apart by its
heading. A restart prompt holds the task's prompt again, so it is read as that role. Pure.
"""

from __future__ import annotations

import re

from frontends.sim.directives import find_signal_instructions

__all__ = ["ROLES", "is_nudge", "role_of"]

ROLES = ("planner", "coder", "fixer", "reviewer", "readiness")

SIGNAL_ROLES = {
    "planner_finished": "planner",
    "implement_task_finished": "coder",
    "implement_finished": "coder",
    "review_approved": "reviewer",
    "review_changes": "reviewer",
    "verify_approved": "readiness",
    "verify_failed": "readiness",
}
"""The role whose prompt ends with each signal (implement_finished: a coder's or a fixer's)."""

_FIX_HEADING = re.compile(r"^#\s+Fix task\b", re.MULTILINE)
_NUDGE_HEADING = re.compile(r"^#\s+corral is still waiting for you", re.MULTILINE)


def role_of(prompt: str) -> str:
    """The corral role `prompt` was written for, or "" when it is no role's prompt."""
    roles = [
        SIGNAL_ROLES[c.signal_type] for c in find_signal_instructions(prompt) if c.signal_type in SIGNAL_ROLES
    ]
    if not roles:
        return ""
    if roles[-1] == "coder" and _FIX_HEADING.search(prompt):
        return "fixer"
    return roles[-1]


def is_nudge(prompt: str) -> bool:
    """Is `prompt` corral's nudge to an idle agent that has not signalled (protocols.prompts.nudge_prompt)?"""
    return _NUDGE_HEADING.search(prompt) is not None
