"""The agents a task starts, and what the Project must offer to start and stop them.

Shared by the outbox runner (`actors/tasks.py`: one agent per stage) and the wave keeper (`actors/waves.py`:
one agent per wave task). Both run on the Project's thread and call the Project directly.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from protocols import stages
from protocols.config import Config

__all__ = ["AgentStart", "RunnerProject", "TaskAgents"]


class AgentStart(msgspec.Struct, frozen=True, kw_only=True):
    """One agent to start for a task: `stages.StartAgent` with its phase resolved through `[phases]` and
    `[agents.<role>]` to a program, model, flags, permission mode and execution mode."""

    title: str
    task: str
    agent_type: str
    program: str
    mode: str
    prompt: str
    worktree: str  # "shared" (the task's worktree), "own" or "none" (the repository)
    model: str = ""
    flags: tuple[str, ...] = ()
    skip_permissions: bool = False
    wave: int | None = None
    peers: int = 0
    attempt_key: str = ""
    """A wave task's agent: which attempt it is (`<implementing_at>#<attempt>`); "" for a stage's agent."""

    @classmethod
    def of(cls, action: stages.StartAgent, config: Config) -> AgentStart:
        profile = config.profile_for_phase(action.phase)
        return cls(
            title=action.title,
            task=action.task,
            agent_type=action.agent_type,
            program=profile.program,
            mode=profile.execution_mode,
            prompt=action.prompt,
            worktree=action.worktree,
            model=profile.model,
            flags=profile.flags,
            skip_permissions=profile.skip_permissions,
            wave=action.wave,
            peers=action.peers,
        )


class RunnerProject(msgspec.Struct, frozen=True):
    """The project whose tasks are run: its store id, name and repository root."""

    id: int
    name: str
    root: str


class TaskAgents(Protocol):
    """What the runner and the keeper need from the Project (called on the Project's thread)."""

    def start_task_agent(self, agent: AgentStart, since: str) -> bool:
        """Start `agent` unless an instance with its title was started for it — with its `attempt_key`, or
        (a stage's agent) at or after `since`, a stamp: True if started now. An older instance with the title
        (an earlier round or attempt) is stopped first."""
        ...

    def task_agent_titles(self, task: str, started_before: str) -> tuple[str, ...]:
        """The titles of the task's live instances started before `started_before` (a re-run of an item must
        not stop the agent it started itself the first time)."""
        ...

    def stop_task_agent(self, title: str, reason: str) -> bool:
        """Kill the agent and forget its instance; False if there was none."""
        ...

    def running_agent(self, title: str) -> bool:
        """True while an instance called `title` is a live child of the Project."""
        ...
