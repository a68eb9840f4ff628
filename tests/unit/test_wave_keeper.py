"""The wave keeper on a real store: waves run from the plan's rows, tasks complete by signal or by their
agent's end, the cap promotes pending tasks, decisions retry or advance, and a keeper rebuilt from the rows
(a restarted daemon) starts no agent twice and misses no end."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.instance import AgentEnded
from actors.store import Store
from actors.tasks import OutboxRunner, RunnerProject
from protocols.errors import StoreError
from protocols.records import InstanceRecord, Project
from tests.unit.task_kit import FakeAgents

PLAN = """# Two waves

## Wave 1: Parts

### Task 1: One

Edit one.

### Task 2: Two

Edit two.

### Task 3: Three

Edit three.

## Wave 2: Glue

### Task 4: Four

Edit four.

### Task 5: Five

Edit five.

### Task 6: Six

Edit six.
"""


@pytest.fixture
def agents(store: Store, project: Project) -> FakeAgents:
    return FakeAgents(store, project.name)


def _runner(store: Store, project: Project, agents: FakeAgents) -> OutboxRunner:
    return OutboxRunner(store, RunnerProject(project.id, project.name, project.root), agents)


@pytest.fixture
def runner(store: Store, project: Project, agents: FakeAgents) -> OutboxRunner:
    return _runner(store, project, agents)


def _config(project: Project, text: str) -> None:
    path = Path(project.root) / ".corral" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _implement(store: Store, project: Project, runner: OutboxRunner) -> int:
    task = store.create_task(project.id, "t", content=PLAN)
    store.transition_task(project.id, "t", "implement_start")
    runner.drain()
    return task.id


def _signal(store: Store, project: Project, runner: OutboxRunner, kind: str, payload: str = "") -> str:
    signal = store.emit_signal(project.id, "t", kind, payload)
    store.apply_next("test")
    runner.drain()
    return store.get_signal(signal.id).result


def _finish(store: Store, project: Project, runner: OutboxRunner, wave: int, number: int) -> str:
    payload = f'{{"wave_number": {wave}, "task_number": {number}}}'
    return _signal(store, project, runner, "implement_task_finished", payload)


def _rows(store: Store, task_id: int) -> dict[int, str]:
    return {row.task_number: row.status for row in store.list_wave_tasks(task_id)}


def _status(store: Store, project: Project) -> str:
    return store.get_task(project.id, "t").status


def _news(
    record: InstanceRecord, status: str, reason: str, *, worked: bool = True, killed: bool = False
) -> AgentEnded:
    """What the Instance of task t's agent (recorded as `record`) tells the Project when it ends."""
    return AgentEnded(
        title=record.title,
        task="t",
        status=status,
        reason=reason,
        worked=worked,
        killed=killed,
        created_at=record.created_at,
        attempt_key=record.attempt_key,
    )


def _end(agents: FakeAgents, runner: OutboxRunner, title: str, reason: str, *, worked: bool = True) -> None:
    record = agents.end(title, "exited" if "status 0" in reason else "failed", reason, worked=worked)
    runner.waves.agent_ended(_news(record, record.status, reason, worked=worked))
    runner.drain()


def test_two_waves_run_one_after_the_other_and_the_task_goes_to_review(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents
) -> None:
    task_id = _implement(store, project, runner)
    assert agents.started == ["t-W1-T1", "t-W1-T2", "t-W1-T3"]
    first = agents.running["t-W1-T2"]
    assert (first.wave, first.peers, first.worktree, first.agent_type) == (1, 3, "shared", "coder")
    assert "Wave 1 of 2" in first.prompt and "Edit two." in first.prompt
    for number in (1, 2, 3):
        assert "running → complete" in _finish(store, project, runner, 1, number)
    assert agents.started[3:] == ["t-W2-T4", "t-W2-T5", "t-W2-T6"]
    assert {"t-W1-T1", "t-W1-T2", "t-W1-T3"} <= set(agents.stopped)  # wave 1's agents are let go
    assert _rows(store, task_id) == {
        1: "complete",
        2: "complete",
        3: "complete",
        4: "running",
        5: "running",
        6: "running",
    }
    for number in (4, 5, 6):
        _finish(store, project, runner, 2, number)
    assert _status(store, project) == "reviewing"
    assert agents.started[-1] == "t-review-1"
    kinds = [e.kind for e in store.list_audit(project.id, task="t")]
    assert kinds.count("wave_started") == 2 and kinds.count("wave_done") == 2 and "waves_done" in kinds
    [moved] = [e.message for e in store.list_audit(project.id, task="t") if "implement_finished" in e.message]
    assert moved.endswith("(implement_finished, by corral)")  # corral's own move, not a person's


def test_a_cap_of_one_promotes_the_pending_tasks_one_by_one(
    store: Store, project: Project, agents: FakeAgents
) -> None:
    _config(project, '[resources]\nprofile = "custom"\nmax_parallel_wave_tasks = 1\n')
    runner = _runner(store, project, agents)
    task_id = _implement(store, project, runner)
    assert agents.started == ["t-W1-T1"]
    assert _rows(store, task_id)[2] == "pending"
    _finish(store, project, runner, 1, 1)
    assert agents.started == ["t-W1-T1", "t-W1-T2"]
    _end(agents, runner, "t-W1-T2", "exit status 0")  # a clean exit after work completes it too
    assert agents.started[-1] == "t-W1-T3"
    assert list(_rows(store, task_id).values()).count("running") == 1


def test_a_failed_task_waits_for_a_decision_then_retry_runs_it_again(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents
) -> None:
    task_id = _implement(store, project, runner)
    _finish(store, project, runner, 1, 1)
    _finish(store, project, runner, 1, 2)
    _end(agents, runner, "t-W1-T3", "exit status 0", worked=False)  # quit before doing anything
    assert _rows(store, task_id)[3] == "failed"
    [waiting] = [e for e in store.list_audit(project.id, task="t") if e.kind == "task_waiting"]
    assert "retry_wave t" in waiting.message and waiting.level == "warn"
    question = store.get_task(project.id, "t").waiting  # where a person looks: task list, show, the API
    assert question is not None and question.kind == "wave_decision"
    assert "1 failed (task 3)" in question.reason
    assert question.commands[:2] == ("corral signal emit retry_wave t", "corral signal emit advance_wave t")
    assert "t-W2-T4" not in agents.started  # wave 2 waits for the decision
    # The fake clock never moves here: the retry's agent is told from the first by its attempt key alone.
    assert "retry_wave requested" in _signal(store, project, runner, "retry_wave")
    assert store.get_task(project.id, "t").waiting is None  # answered
    assert agents.started.count("t-W1-T3") == 2
    [row] = [r for r in store.list_wave_tasks(task_id) if r.task_number == 3]
    assert (row.status, row.attempts) == ("running", 2)
    _finish(store, project, runner, 1, 3)
    assert agents.started[-3:] == ["t-W2-T4", "t-W2-T5", "t-W2-T6"]


def test_advance_goes_on_past_a_failed_task(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents
) -> None:
    task_id = _implement(store, project, runner)
    _end(agents, runner, "t-W1-T1", "exit status 3 after 3 restarts; gave up")
    _finish(store, project, runner, 1, 2)
    _finish(store, project, runner, 1, 3)
    _signal(store, project, runner, "advance_wave", '{"wave_number": 1}')
    assert _rows(store, task_id)[1] == "failed"
    assert agents.started[-3:] == ["t-W2-T4", "t-W2-T5", "t-W2-T6"]


def test_with_auto_advance_off_the_next_wave_waits_for_confirmation(
    store: Store, project: Project, agents: FakeAgents
) -> None:
    _config(project, "[ui]\nauto_advance_waves = false\n")
    runner = _runner(store, project, agents)
    _implement(store, project, runner)
    for number in (1, 2, 3):
        _finish(store, project, runner, 1, number)
    assert "t-W2-T4" not in agents.started
    assert any("Start wave 2?" in e.message for e in store.list_audit(project.id, levels=("warn",)))
    _signal(store, project, runner, "advance_wave")
    assert agents.started[-3:] == ["t-W2-T4", "t-W2-T5", "t-W2-T6"]


def test_a_finished_signal_for_a_pending_task_is_failed_with_the_reason(
    store: Store, project: Project, agents: FakeAgents
) -> None:
    _config(project, '[resources]\nprofile = "custom"\nmax_parallel_wave_tasks = 1\n')
    runner = _runner(store, project, agents)
    _implement(store, project, runner)
    assert _finish(store, project, runner, 1, 2) == "wave task 2 of t is pending, not running"
    assert _finish(store, project, runner, 2, 1) == "wave task 1 of t is in wave 1, not wave 2"


def test_a_restarted_keeper_starts_the_agent_a_crash_left_unstarted_exactly_once(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents
) -> None:
    task_id = _implement(store, project, runner)
    # The daemon is killed after task 4..6 went running in the store but before any of their agents started.
    store.save_wave_tasks(task_id, [(n, "complete", 1, f"t-W1-T{n}") for n in (1, 2, 3)])
    store.save_wave_tasks(task_id, [(n, "running", 1, f"t-W2-T{n}") for n in (4, 5, 6)])
    fresh = FakeAgents(store, project.name)
    restarted = _runner(store, project, fresh)
    restarted.waves.reconcile()
    restarted.waves.reconcile()
    assert sorted(fresh.started) == ["t-W2-T4", "t-W2-T5", "t-W2-T6"]


def test_an_agent_that_ended_while_the_daemon_was_down_is_settled_at_reconcile(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents
) -> None:
    task_id = _implement(store, project, runner)
    agents.end("t-W1-T1", "exited", "exit status 0", worked=True)
    agents.end("t-W1-T2", "failed", "exit status 1 after 3 restarts; gave up")
    fresh = FakeAgents(store, project.name)
    fresh.running["t-W1-T3"] = agents.running["t-W1-T3"]  # brought back by the Project's recovery
    fresh.since["t-W1-T3"] = agents.since["t-W1-T3"]
    restarted = _runner(store, project, fresh)
    restarted.waves.reconcile()
    assert _rows(store, task_id) == {
        1: "complete",
        2: "failed",
        3: "running",
        4: "pending",
        5: "pending",
        6: "pending",
    }
    assert fresh.started == []  # no second agent for any task


def test_the_end_of_an_earlier_attempts_agent_changes_nothing(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents
) -> None:
    task_id = _implement(store, project, runner)
    old = agents.recorded("t-W1-T1")
    assert old is not None
    _finish(store, project, runner, 1, 2)
    _finish(store, project, runner, 1, 3)
    _end(agents, runner, "t-W1-T1", "exit status 0", worked=False)
    _signal(store, project, runner, "retry_wave")
    assert _rows(store, task_id)[1] == "running"
    runner.waves.agent_ended(_news(old, "failed", "late", worked=False))
    assert _rows(store, task_id)[1] == "running"


def test_a_person_marks_a_failed_task_complete_and_the_wave_goes_on(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents
) -> None:
    task_id = _implement(store, project, runner)
    _finish(store, project, runner, 1, 1)
    _finish(store, project, runner, 1, 2)
    _end(agents, runner, "t-W1-T3", "exit status 0", worked=False)
    assert _rows(store, task_id)[3] == "failed"
    agent_says = store.emit_signal(
        project.id, "t", "implement_task_finished", '{"wave_number": 1, "task_number": 3}'
    )
    store.apply_next("test")
    assert store.get_signal(agent_says.id).result == "wave task 3 of t is failed, not running"
    person = store.emit_signal(
        project.id, "t", "implement_task_finished", '{"wave_number": 1, "task_number": 3}', source="user"
    )
    store.apply_next("test")
    runner.drain()
    assert store.get_signal(person.id).result == "wave 1 task 3: mark complete requested"
    assert _rows(store, task_id)[3] == "complete"
    assert agents.started[-3:] == ["t-W2-T4", "t-W2-T5", "t-W2-T6"]


def test_an_agent_that_cannot_start_fails_its_task_with_the_reason(store: Store, project: Project) -> None:
    agents = FakeAgents(store, project.name, fail_on="t-W1-T2")
    runner = _runner(store, project, agents)
    task_id = _implement(store, project, runner)
    assert _rows(store, task_id) == {
        1: "running",
        2: "failed",
        3: "running",
        4: "pending",
        5: "pending",
        6: "pending",
    }
    [error] = store.list_audit(project.id, levels=("error",))
    assert error.kind == "task_agent_failed" and "tmux: cannot start t-W1-T2" in error.message
    _finish(store, project, runner, 1, 1)
    _finish(store, project, runner, 1, 3)
    [waiting] = [e for e in store.list_audit(project.id, task="t") if e.kind == "task_waiting"]
    assert "1 failed (task 2)" in waiting.message


def test_an_agent_killed_by_a_person_fails_its_task(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents
) -> None:
    task_id = _implement(store, project, runner)
    record = agents.end("t-W1-T1", "exited", "killed by SIGTERM")
    runner.waves.agent_ended(_news(record, "exited", "killed by SIGTERM", killed=True))
    assert _rows(store, task_id)[1] == "failed"


def test_an_agent_that_signals_and_exits_at_once_completes_by_its_signal_not_its_exit(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents
) -> None:
    task_id = _implement(store, project, runner)
    done = store.emit_signal(
        project.id, "t", "implement_task_finished", '{"wave_number": 1, "task_number": 2}'
    )
    _end(agents, runner, "t-W1-T2", "exit status 0", worked=False)  # quiet: never seen working
    assert _rows(store, task_id)[2] == "running"  # not failed: its signal is queued
    runner.waves.reconcile()
    assert _rows(store, task_id)[2] == "running"
    store.apply_next("test")
    runner.drain()
    assert store.get_signal(done.id).status == "done"
    assert _rows(store, task_id)[2] == "complete"


def test_an_end_lost_while_its_instance_shut_down_is_settled_at_reconcile(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents
) -> None:
    task_id = _implement(store, project, runner)
    agents.end("t-W1-T1", "failed", "exit status 1 after 3 restarts; gave up")  # its AgentEnded was lost
    agents.end("t-W1-T2", "exited", "exit status 3")  # crashed: its Instance restarts it after a backoff
    assert not agents.running_agent("t-W1-T1")  # its Instance shut down with it
    assert agents.running_agent("t-W1-T2")  # restarting
    runner.waves.reconcile()
    assert _rows(store, task_id)[1] == "failed"
    assert _rows(store, task_id)[2] == "running"


def test_a_failed_implement_finished_is_made_again_at_the_next_reconcile(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create_task(project.id, "t", content=PLAN.split("## Wave 2")[0])
    store.transition_task(project.id, "t", "implement_start")
    runner.drain()
    real = store.transition_task

    def busy(*args: object, **kwargs: object) -> object:
        raise StoreError("database is locked")

    for number in (1, 2, 3):
        if number == 3:
            monkeypatch.setattr(store, "transition_task", busy)
        payload = f'{{"wave_number": 1, "task_number": {number}}}'
        store.emit_signal(project.id, "t", "implement_task_finished", payload)
        store.apply_next("test")
        runner.drain()  # the last one's implement_finished fails: its item is failed, the task stays
    assert _status(store, project) == "implementing"
    monkeypatch.setattr(store, "transition_task", real)
    runner.waves.reconcile()
    assert _status(store, project) == "reviewing"


def test_agents_of_a_wave_that_is_over_are_stopped_at_reconcile(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents
) -> None:
    task_id = _implement(store, project, runner)
    # Killed after wave 1's rows completed and wave 2's were written, before StopTasks: wave 1 lives on.
    store.save_wave_tasks(task_id, [(n, "complete", 1, f"t-W1-T{n}") for n in (1, 2, 3)])
    store.save_wave_tasks(task_id, [(n, "running", 1, f"t-W2-T{n}") for n in (4, 5, 6)])
    fresh = FakeAgents(store, project.name)
    for title in ("t-W1-T1", "t-W1-T2", "t-W1-T3"):
        fresh.running[title], fresh.since[title] = agents.running[title], agents.since[title]
    _runner(store, project, fresh).waves.reconcile()
    assert sorted(fresh.stopped) == ["t-W1-T1", "t-W1-T2", "t-W1-T3"]
    assert sorted(fresh.started) == ["t-W2-T4", "t-W2-T5", "t-W2-T6"]


def test_a_restarted_keeper_asks_its_question_again_without_writing_it_twice(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents
) -> None:
    _implement(store, project, runner)
    _finish(store, project, runner, 1, 1)
    _finish(store, project, runner, 1, 2)
    _end(agents, runner, "t-W1-T3", "exit status 0", worked=False)
    before = [e.kind for e in store.list_audit(project.id, task="t")]
    assert before.count("task_waiting") == 1 and before.count("wave_failed") == 1
    restarted = _runner(store, project, FakeAgents(store, project.name))
    restarted.waves.reconcile()  # rebuilt from the rows: still awaiting the decision
    after = [e.kind for e in store.list_audit(project.id, task="t")]
    assert after.count("task_waiting") == 1 and after.count("wave_failed") == 1
    _signal(store, project, restarted, "retry_wave")
    assert restarted.agents.started == ["t-W1-T3"]  # type: ignore[attr-defined]
