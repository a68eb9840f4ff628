"""The person a chaos campaign plays: which command answers a task that waits for someone.

    person_command(task.waiting)   # ["corral", "signal", "emit", "retry_wave", "chaos-3"], or None

Some faults leave a task waiting for a person by design: a wave task whose agent failed past its restarts asks
whether to retry the wave; an agent that ended without its signal asks for a restart. The campaign answers as
a person would who trusts corral's advice: with the command the wait itself lists (`TaskWaiting.commands`),
the one that puts the agents back to work — never a manual finish, which would skip the agent's work. An
agent that waits or sits idle at its prompt is restarted (`corral instance restart`), which gives it its task
again. A wait no command of the list can answer here (the review-cycle limit, a plan that does not parse) gets
None: the task stays waiting, and the campaign reports it when the task does not finish.

Pure: the wait in, an argv out (parsed from the listed command with shlex, as a shell would split it, and run
without a shell).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from protocols.records import TaskWaiting

__all__ = ["ANSWERS", "person_command"]

ANSWERS: Mapping[str, tuple[str, ...]] = {
    "wave_decision": ("corral signal emit retry_wave",),
    "wave_confirmation": ("corral signal emit advance_wave",),
    "agent_ended": ("corral instance restart",),
    "agent_lost": ("corral instance restart",),
    "agent_paused": ("corral instance resume", "corral instance restart"),
    "start_failed": ("corral task retry",),
    "no_step": ("corral task retry",),
}
"""For each kind of wait, the commands (by their first words) a person answers it with, in order of choice."""

_RESTARTED = frozenset({"agent_idle", "agent_waiting"})
"""Waits about a live agent whose listed commands need a terminal (attach) or words (send): restarted."""


def person_command(waiting: TaskWaiting | None) -> list[str] | None:
    """The argv that answers `waiting`, or None when nothing should be run for it."""
    if waiting is None:
        return None
    for prefix in ANSWERS.get(waiting.kind, ()):
        for command in waiting.commands:
            if command == prefix or command.startswith(prefix + " "):
                return shlex.split(command)
    if waiting.kind in _RESTARTED and waiting.agent:
        return ["corral", "instance", "restart", waiting.agent]
    return None
