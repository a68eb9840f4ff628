"""The agents a task starts, and what the Project must offer to start and stop them.

Shared by the outbox runner (`actors/tasks.py`: one agent per stage) and the wave keeper (`actors/waves.py`:
one agent per wave task). Both run on the Project's thread and call the Project directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import msgspec

from protocols import stages
from protocols.config import Config

__all__ = ["AgentStart", "RunnerProject", "TaskAgents", "step_key"]


def step_key(item_key: str) -> str:
    """The attempt key of a stage's agent: the outbox item that started it (`step:<item key>`). Agents are
    told apart by equal keys, never by comparing stamps, so a late start, a re-run of the item after a
    crash, or a wall clock that steps back cannot make one step's agent look like another's."""
    return f"step:{item_key}"


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
    """Which attempt of its work it is: a wave task's `<implementing_at>#<n>`; a stage's `step:<item key>`."""

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
        """Start `agent` unless an instance with its title was started for it (the same `attempt_key`;
        without a key, at or after `since`, a stamp): True if started now. An older instance with the title
        (an earlier round or attempt) is stopped first."""
        ...

    def task_agent_titles(self, task: str, keep: Callable[[str], bool]) -> tuple[str, ...]:
        """The titles of the task's instances (running or ended) except those whose attempt key `keep`
        accepts: the agents the item being performed starts itself (a re-run must not stop what its first
        run started). Every other agent of the task is returned, whenever it started — also one started
        late, for a step that was already over."""
        ...

    def stop_task_agent(self, title: str, reason: str) -> bool:
        """Kill the agent and forget its instance; False if there was none."""
        ...

    def running_agent(self, title: str) -> bool:
        """True while an instance called `title` is a live child of the Project."""
        ...
