"""The Project's side of the outbox runner and the wave keeper, for unit tests on a real store.

`FakeAgents` keeps what a Project keeps: a child per title (running, or ended: an Instance whose agent
exited 0 or failed for good shuts down and stays a stopped child), and an `instances` row per start (written
with the store's clock, as the Instance writes it), so the keeper's rules — an attempt's agent is the one
created at or after its row — are tested against real rows.
"""

from __future__ import annotations

from collections.abc import Callable

from actors.store import Store
from actors.task_agents import AgentStart
from protocols.records import InstanceRecord


class FakeAgents:
    """A title runs at most once; `end()` plays an agent ending, as the Instance records and reports it."""

    def __init__(self, store: Store | None = None, project: str = "", fail_on: str = "") -> None:
        self.store = store
        self.project = project
        self.running: dict[str, AgentStart] = {}
        self.since: dict[str, str] = {}
        self.started: list[str] = []
        self.stopped: list[str] = []
        self.ended: set[str] = set()
        self.fail_on = fail_on

    def start_task_agent(self, agent: AgentStart, since: str) -> bool:
        if agent.title == self.fail_on:
            raise RuntimeError(f"tmux: cannot start {agent.title}")
        recorded = self.recorded(agent.title)
        if recorded is not None and (
            recorded.attempt_key == agent.attempt_key if agent.attempt_key else recorded.created_at >= since
        ):
            return False
        if agent.title in self.running:
            if recorded is None:
                return False
            self.stop_task_agent(agent.title, "replaced")
        self.running[agent.title] = agent
        self.ended.discard(agent.title)
        self.since[agent.title] = since
        self.started.append(agent.title)
        if self.store is not None:
            self.store.upsert_instance(
                InstanceRecord(
                    project=self.project,
                    title=agent.title,
                    task=agent.task,
                    attempt_key=agent.attempt_key,
                    status="running",
                    created_at=self.store._now(),
                )
            )
        return True

    def task_agent_titles(self, task: str, keep: Callable[[str], bool]) -> tuple[str, ...]:
        return tuple(t for t, a in self.running.items() if a.task == task and not keep(a.attempt_key))

    def stop_task_agent(self, title: str, reason: str) -> bool:
        if self.running.pop(title, None) is None:
            return False
        self.stopped.append(title)
        if self.store is not None:
            self.store.set_instance_status(self.project, title, "exited", f"stopped: {reason}")
        return True

    def running_agent(self, title: str) -> bool:
        return title in self.running and title not in self.ended

    def recorded(self, title: str) -> InstanceRecord | None:
        if self.store is None:
            return None
        try:
            return self.store.get_instance(self.project, title)
        except Exception:
            return None

    def end(self, title: str, status: str, reason: str, *, worked: bool = True) -> InstanceRecord:
        """The agent ended: its row says so; for good (failed, exit 0, killed) its Instance shuts down and
        stays a stopped child; after a crash it is restarting (still running). The record."""
        assert self.store is not None
        record = self.recorded(title)
        assert record is not None, f"{title} was never started"
        if status == "failed" or reason.startswith(("exit status 0", "killed by request")):
            self.ended.add(title)
        ended = self.store.upsert_instance(
            InstanceRecord(**{**_fields(record), "status": status, "reason": reason, "worked": worked})
        )
        return ended


def _fields(record: InstanceRecord) -> dict[str, object]:
    return {f: getattr(record, f) for f in record.__struct_fields__}
