"""The outbox runner on a real store: each transition's effects performed once, settled only after they
succeeded, and a re-run after a crash (the item still pending) doing nothing twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.clock import FakeClock
from actors.store import Store
from actors.tasks import OutboxRunner, RunnerProject
from protocols.records import Project
from tests.unit.task_kit import FakeAgents

PLAN_1 = """# Typo

## Wave 1: Fix

### Task 1: Fix the typo

Fix it.
"""

PLAN_3 = """# Big

## Wave 1: A

### Task 1: One

x

### Task 2: Two

y

## Wave 2: B

### Task 3: Three

z
"""


@pytest.fixture
def agents(store: Store, project: Project) -> FakeAgents:
    return FakeAgents(store, project.name)


@pytest.fixture
def runner(store: Store, project: Project, agents: FakeAgents) -> OutboxRunner:
    return OutboxRunner(store, RunnerProject(project.id, project.name, project.root), agents)


def _config(project: Project, text: str) -> None:
    path = Path(project.root) / ".corral" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _statuses(store: Store) -> list[tuple[str, str]]:
    rows = store._conn.execute("SELECT kind, status FROM outbox ORDER BY id")
    return [(kind, status) for kind, status in rows]


def test_implement_start_starts_one_coder_in_the_shared_worktree_and_settles_the_item(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents
) -> None:
    store.create_task(project.id, "t", content=PLAN_1)
    store.transition_task(project.id, "t", "implement_start")
    assert runner.drain() == 1
    assert agents.started == ["t-coder"]
    coder = agents.running["t-coder"]
    assert (coder.agent_type, coder.worktree, coder.program, coder.mode) == (
        "coder",
        "shared",
        "claude",
        "tmux",
    )
    assert "implement_finished" in coder.prompt and "Fix the typo" in coder.prompt
    assert _statuses(store) == [("enter_implementing", "done")]
    assert runner.drain() == 0 and agents.started == ["t-coder"]


def test_a_rerun_of_a_pending_item_starts_no_second_agent(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents
) -> None:
    store.create_task(project.id, "t")
    store.transition_task(project.id, "t", "implement_start")
    [item] = store.pending_outbox()
    runner.perform(item)  # the daemon is killed here, before the item is marked
    runner.run(item)
    assert agents.started == ["t-coder"]
    assert store.get_outbox(item.id).status == "done"


def test_the_program_comes_from_the_phase_profile(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents
) -> None:
    _config(project, 'default_program = "/opt/sim"\n[agents.reviewer]\nprogram = "codex"\n')
    store.create_task(project.id, "t")
    store.transition_task(project.id, "t", "implement_start")
    store.transition_task(project.id, "t", "implement_finished")
    runner.drain()
    assert agents.started == ["t-review-1"]  # the coder's item is stale: the task is reviewing now
    assert agents.running["t-review-1"].program == "codex"


def test_a_stale_item_does_nothing(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents
) -> None:
    store.create_task(project.id, "t")
    store.transition_task(project.id, "t", "implement_start")
    store.transition_task(project.id, "t", "cancel")
    runner.drain()
    assert agents.started == []
    assert _statuses(store) == [("enter_implementing", "done"), ("enter_cancelled", "done")]


def test_review_then_verify_stop_the_previous_agent_and_start_the_next(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents, clock: FakeClock
) -> None:
    store.create_task(project.id, "t")
    for event in ("implement_start", "implement_finished", "review_approved"):
        clock.advance(1)
        store.transition_task(project.id, "t", event)
        runner.drain()
    assert agents.started == ["t-coder", "t-review-1", "t-verify-1"]
    assert agents.stopped == ["t-coder", "t-review-1"]
    clock.advance(1)
    store.transition_task(project.id, "t", "verify_approved")
    runner.drain()
    assert agents.running == {}


def test_a_chained_transition_is_made_once_even_when_its_item_is_run_again(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents
) -> None:
    _config(project, "[ui]\nauto_readiness_review = false\n")
    store.create_task(project.id, "t")
    for event in ("implement_start", "implement_finished", "review_approved"):
        store.transition_task(project.id, "t", event)
    verifying = store.pending_outbox()[-1]
    runner.drain()
    assert store.get_task(project.id, "t").status == "done"
    assert [k for k, s in _statuses(store)][-2:] == ["enter_verifying", "enter_done"]
    runner.perform(verifying)  # a re-run after a crash: the task has moved on, nothing happens
    transitions = [a for a in store.list_audit(project.id, task="t") if "verify_approved" in a.message]
    assert len(transitions) == 1
    assert all(status == "done" for _, status in _statuses(store))


def test_a_failing_effect_fails_its_item_with_the_reason_and_the_next_items_still_run(
    store: Store, project: Project
) -> None:
    agents = FakeAgents(fail_on="a-coder")
    runner = OutboxRunner(store, RunnerProject(project.id, project.name, project.root), agents)
    store.create_task(project.id, "a")
    store.create_task(project.id, "b")
    store.transition_task(project.id, "a", "implement_start")
    store.transition_task(project.id, "b", "implement_start")
    runner.drain()
    first, second = store._conn.execute("SELECT status, last_error FROM outbox ORDER BY id").fetchall()
    assert first == ("failed", "tmux: cannot start a-coder") and second == ("done", "")
    assert agents.started == ["b-coder"]
    [error] = store.list_audit(project.id, levels=("error",))
    assert error.kind == "outbox_failed" and "a-coder" in error.message


def test_the_planners_plan_becomes_the_tasks_content(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents, clock: FakeClock
) -> None:
    store.create_task(project.id, "t", content="fix the typo")
    store.transition_task(project.id, "t", "plan_start")
    runner.drain()
    assert agents.started == ["t-plan"] and agents.running["t-plan"].worktree == "none"
    clock.advance(1)
    store.emit_signal(project.id, "t", "planner_finished", PLAN_1)
    store.apply_next("test")
    runner.drain()
    task = store.get_task(project.id, "t")
    assert (task.display_status, task.content) == ("planned", PLAN_1)
    assert agents.stopped == ["t-plan"]


def test_a_plan_that_does_not_parse_waits_for_a_person(
    store: Store, project: Project, runner: OutboxRunner, clock: FakeClock
) -> None:
    store.create_task(project.id, "t")
    store.transition_task(project.id, "t", "plan_start")
    store.emit_signal(project.id, "t", "planner_finished", "## Wave 1\n\n### Task one\n")
    store.apply_next("test")
    runner.drain()
    [warn] = store.list_audit(project.id, levels=("warn",))
    assert warn.kind == "task_waiting" and "cannot be read" in warn.message


def test_a_plan_over_the_threshold_runs_in_waves(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents
) -> None:
    task = store.create_task(project.id, "t", content=PLAN_3)
    store.transition_task(project.id, "t", "implement_start")
    runner.drain()
    assert agents.started == ["t-W1-T1", "t-W1-T2"]  # wave 1 only, no single coder
    rows = [(r.wave_number, r.task_number, r.status) for r in store.list_wave_tasks(task.id)]
    assert rows == [(1, 1, "running"), (1, 2, "running"), (2, 3, "pending")]
    assert _statuses(store) == [("enter_implementing", "done")]


def test_a_wave_signal_for_a_task_without_waves_fails_its_item_with_the_reason(
    store: Store, project: Project, runner: OutboxRunner
) -> None:
    store.create_task(project.id, "t", content=PLAN_1)
    store.transition_task(project.id, "t", "implement_start")
    runner.drain()
    store.emit_signal(project.id, "t", "retry_wave", "")
    store.apply_next("test")
    runner.drain()
    assert _statuses(store)[-1] == ("retry_wave", "failed")
    last_error = store._conn.execute("SELECT last_error FROM outbox ORDER BY id DESC LIMIT 1").get
    assert "t: it is not running waves" in last_error.replace("retry wave for ", "")


def test_a_cancel_committed_while_the_planner_starts_stops_that_planner(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents
) -> None:
    """The race seen with API requests sent back to back: the planner's item is current when it is read, the
    cancel commits while the planner starts, and the planner's row is stamped after the cancel's item."""
    store.create_task(project.id, "t", content="Plan it.")
    store.transition_task(project.id, "t", "plan_start")
    real_start = agents.start_task_agent

    def cancel_then_start(agent, since):  # type: ignore[no-untyped-def]
        store.transition_task(project.id, "t", "cancel")
        return real_start(agent, since)

    agents.start_task_agent = cancel_then_start  # type: ignore[method-assign]
    runner.drain()
    assert agents.started == ["t-plan"]
    assert "t-plan" not in agents.running  # stopped: its step was over, whenever it started
    assert store.get_instance(project.name, "t-plan").status == "exited"
    assert store.pending_outbox(project_id=project.id) == []


def test_a_stop_spares_only_the_agent_the_same_item_started(
    store: Store, project: Project, runner: OutboxRunner, agents: FakeAgents
) -> None:
    store.create_task(project.id, "t", content=PLAN_1)
    store.transition_task(project.id, "t", "implement_start")
    runner.drain()
    assert agents.running.keys() == {"t-coder"}
    # A re-run of the same item (a daemon killed before it was marked done) keeps its own coder.
    key = agents.running["t-coder"].attempt_key
    assert key.startswith("step:")
    assert runner.agents.task_agent_titles("t", lambda k: k == key) == ()
    assert runner.agents.task_agent_titles("t", lambda k: False) == ("t-coder",)
