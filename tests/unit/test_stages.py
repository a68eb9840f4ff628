"""on_enter: which agents stop and start when a task enters a status; titles, environment, plan intake."""

from __future__ import annotations

import msgspec
import pytest

from protocols.config import MANAGED_ENV_KEYS, Config, parse_config
from protocols.errors import PlanError
from protocols.fsm import TRANSITIONS, Event, Status, transition
from protocols.plan import Plan, PlanTask, Wave
from protocols.records import Task
from protocols.stages import (
    Action,
    StartAgent,
    StartWaves,
    StopAgents,
    Transition,
    WaitForPerson,
    accept_plan,
    agent_env,
    on_enter,
    read_plan,
    wave_task_agent,
)

PLAN_TEXT = """# Rate limiting

**Goal:** throttle clients

## Wave 1: Base

### Task 1: Bucket

Write the bucket.

### Task 2: Config

Add config keys.

## Wave 2: Wire

### Task 3: Middleware

Use it.
"""


def make_task(status: str = "implementing", *, review_cycle: int = 0, content: str = "", **kw: str) -> Task:
    fields = dict.fromkeys(Task.__struct_fields__, "")
    fields.update(
        id=1,
        project_id=1,
        name="auth",
        title="Auth flow",
        status=status,
        review_cycle=review_cycle,
        content=content,
        **kw,
    )
    return Task(**fields)  # type: ignore[arg-type]


def plan_of(*sizes: int) -> Plan:
    waves, n = [], 0
    for w, size in enumerate(sizes, start=1):
        tasks = []
        for _ in range(size):
            n += 1
            tasks.append(PlanTask(n, f"T{n}", f"body {n}", wave_number=w))
        waves.append(Wave(w, "", tuple(tasks)))
    return Plan("P", waves=tuple(waves))


def config(**ui: object) -> Config:
    return msgspec.structs.replace(Config(), ui=msgspec.structs.replace(Config().ui, **ui))


def enter(
    status: str,
    event: Event,
    *,
    plan: Plan | None = None,
    cfg: Config | None = None,
    cycle: int = 0,
    problem: str = "",
    **kw: str,
) -> tuple[Action, ...]:
    change = transition(status, event)
    task = make_task(change.to_status, review_cycle=cycle, **kw)
    return on_enter(task, change, plan, cfg or Config(), plan_problem=problem)


def started(actions: tuple[Action, ...]) -> list[tuple[str, str, str, str]]:
    return [(a.title, a.agent_type, a.phase, a.worktree) for a in actions if isinstance(a, StartAgent)]


# --- the table ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "event", "cycle", "expected"),
    [
        ("ready", Event.PLAN_START, 0, [("auth-plan", "planner", "planning", "none")]),
        ("planning", Event.PLAN_START, 0, [("auth-plan", "planner", "planning", "none")]),
        ("done", Event.START_OVER, 0, [("auth-plan", "planner", "planning", "none")]),
        ("cancelled", Event.REOPEN, 0, [("auth-plan", "planner", "planning", "none")]),
        (
            "implementing",
            Event.IMPLEMENT_FINISHED,
            0,
            [("auth-review-1", "reviewer", "quality_review", "shared")],
        ),
        (
            "implementing",
            Event.IMPLEMENT_FINISHED,
            2,
            [("auth-review-3", "reviewer", "quality_review", "shared")],
        ),
        ("done", Event.REQUEST_REVIEW, 1, [("auth-review-2", "reviewer", "quality_review", "shared")]),
        ("reviewing", Event.REVIEW_CHANGES_REQUESTED, 1, [("auth-fix-1", "fixer", "fixer", "shared")]),
        ("verifying", Event.VERIFY_FAILED, 2, [("auth-fix-2", "fixer", "fixer", "shared")]),
        (
            "reviewing",
            Event.REVIEW_APPROVED,
            0,
            [("auth-verify-1", "readiness", "readiness_review", "shared")],
        ),
        ("planning", Event.PLANNER_FINISHED, 0, []),
        ("verifying", Event.VERIFY_APPROVED, 0, []),
        ("implementing", Event.CANCEL, 0, []),
    ],
)
def test_entering_a_status_starts_the_agent_of_its_stage(
    status: str, event: Event, cycle: int, expected: list
) -> None:  # type: ignore[type-arg]
    actions = enter(status, event, cycle=cycle)
    assert started(actions) == expected
    assert isinstance(actions[0], StopAgents) and actions[0].task == "auth" and actions[0].titles == ()


def test_planner_prompt_gets_the_task_brief() -> None:
    actions = enter("ready", Event.PLAN_START, content="Users cannot log in with SSO")
    agent = actions[-1]
    assert isinstance(agent, StartAgent) and "Users cannot log in with SSO" in agent.prompt


# --- implementing -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "threshold", "expect_waves"),
    [
        (None, 2, False),  # a plain brief: one coder
        (plan_of(1), 2, False),
        (plan_of(2), 2, False),
        (plan_of(2, 1), 2, True),
        (plan_of(1, 1), 0, True),  # 0 = never skip
        (plan_of(3), 3, False),
    ],
)
def test_implement_start_skips_waves_for_small_plans(
    plan: Plan | None, threshold: int, expect_waves: bool
) -> None:
    cfg = parse_config(f"[orchestration]\nblueprint_skip_threshold = {threshold}\n", "config.toml")
    actions = enter("ready", Event.IMPLEMENT_START, plan=plan, cfg=cfg)
    if expect_waves:
        assert plan is not None
        assert actions[-1] == StartWaves(
            task="auth", waves=len(plan.waves), tasks=plan.task_count, cap=0, auto_advance=True
        )
    else:
        assert started(actions) == [("auth-coder", "coder", "implementing", "shared")]


def test_start_waves_takes_the_cap_from_the_resource_profile() -> None:
    cfg = parse_config(
        '[resources]\nprofile = "interactive"\n[ui]\nauto_advance_waves = false\n', "config.toml"
    )
    actions = enter("done", Event.REIMPLEMENT, plan=plan_of(2, 2), cfg=cfg)
    assert actions[-1] == StartWaves(task="auth", waves=2, tasks=4, cap=1, auto_advance=False)


def test_an_unreadable_plan_waits_for_a_person_instead_of_implementing() -> None:
    actions = enter("ready", Event.IMPLEMENT_START, problem="line 3: bad heading")
    assert isinstance(actions[-1], WaitForPerson) and "line 3: bad heading" in actions[-1].reason
    assert started(actions) == []


@pytest.mark.parametrize(
    ("limit", "cycle", "waits"), [(3, 1, False), (3, 3, False), (3, 4, True), (0, 50, False)]
)
def test_review_fix_cycles_stop_at_the_limit(limit: int, cycle: int, waits: bool) -> None:
    actions = enter(
        "reviewing", Event.REVIEW_CHANGES_REQUESTED, cfg=config(max_review_fix_cycles=limit), cycle=cycle
    )
    if waits:
        assert isinstance(actions[-1], WaitForPerson)
        assert f"{limit} review → fix cycles" in actions[-1].reason
        assert actions[-1].kind == "review_limit"
        assert actions[-1].commands == (
            "corral task show auth",
            "corral task transition auth implement_finished",
            "corral task transition auth cancel",
        )
    else:
        assert started(actions) == [(f"auth-fix-{cycle}", "fixer", "fixer", "shared")]


def test_without_auto_review_fix_feedback_waits_for_a_person() -> None:
    actions = enter("verifying", Event.VERIFY_FAILED, cfg=config(auto_review_fix=False), cycle=1)
    assert isinstance(actions[-1], WaitForPerson) and "auto_review_fix is off" in actions[-1].reason
    assert actions[-1].commands[-1] == "corral task transition auth implement_finished"


def test_fixer_prompt_carries_the_latest_feedback() -> None:
    actions = enter(
        "reviewing", Event.REVIEW_CHANGES_REQUESTED, cycle=1, latest_feedback="handle empty input"
    )
    assert isinstance(actions[-1], StartAgent) and "handle empty input" in actions[-1].prompt


def test_review_cycle_argument_overrides_the_record() -> None:
    change = transition("implementing", Event.IMPLEMENT_FINISHED)
    actions = on_enter(make_task("reviewing"), change, None, Config(), review_cycle=4)
    assert started(actions)[0][0] == "auth-review-5"


# --- verifying ----------------------------------------------------------------------------------------------


def test_without_readiness_review_approval_chains_verify_approved() -> None:
    actions = enter("reviewing", Event.REVIEW_APPROVED, cfg=config(auto_readiness_review=False))
    assert started(actions) == []
    assert isinstance(actions[-1], Transition) and actions[-1].event is Event.VERIFY_APPROVED
    assert transition(Status.VERIFYING, actions[-1].event).to_status is Status.DONE


def test_reviewer_reviews_the_task_branch() -> None:
    actions = enter("implementing", Event.IMPLEMENT_FINISHED)
    assert isinstance(actions[-1], StartAgent) and "corral/auth" in actions[-1].prompt
    actions = enter("implementing", Event.IMPLEMENT_FINISHED, branch="feature/x")
    assert isinstance(actions[-1], StartAgent) and "feature/x" in actions[-1].prompt


def test_every_transition_has_a_decision_that_first_stops_the_previous_stage() -> None:
    for status, events in TRANSITIONS.items():
        for event in events:
            actions = enter(status, event, plan=plan_of(1, 1, 1))
            assert actions and isinstance(actions[0], StopAgents), (status, event)


# --- waves, env, plans ----------------------------------------------------------------------------


def test_wave_task_agent_names_its_wave_task_and_peers() -> None:
    agent = wave_task_agent("auth", plan_of(3, 1), 1, 2)
    assert (agent.title, agent.wave, agent.task_number, agent.peers) == ("auth-W1-T2", 1, 2, 3)
    assert (agent.agent_type, agent.phase, agent.worktree) == ("coder", "implementing", "shared")


def test_agent_env_sets_every_managed_variable() -> None:
    env = agent_env(
        project="app",
        task="auth",
        title="auth-W2-T5",
        agent_type="coder",
        wave=2,
        peers=3,
        resource_profile="interactive",
    )
    assert set(env) == MANAGED_ENV_KEYS
    assert env["CORRAL_MANAGED"] == "1" and env["CORRAL_WAVE"] == "2" and env["CORRAL_PEERS"] == "3"
    assert env["CORRAL_RESOURCE_PROFILE"] == "interactive"
    assert agent_env(project="app", task="auth", title="auth-plan", agent_type="planner")["CORRAL_WAVE"] == ""


@pytest.mark.parametrize(
    ("content", "expected"),
    [("", None), ("Fix the typo in the README", None), ("# Title\nno waves here", None)],
)
def test_read_plan_treats_a_plain_brief_as_no_plan(content: str, expected: None) -> None:
    assert read_plan(content, "auth") is expected


def test_read_plan_reads_a_plan_and_raises_for_a_broken_one() -> None:
    plan = read_plan(PLAN_TEXT, "auth")
    assert plan is not None and plan.task_count == 3
    with pytest.raises(PlanError):
        read_plan("# T\n## Wave 1\n### Task one: x\n", "auth")


def test_accept_plan_stores_the_body_and_reports_problems() -> None:
    intake = accept_plan("auth", PLAN_TEXT)
    assert intake.content == PLAN_TEXT and intake.plan is not None and not intake.problem
    broken = accept_plan("auth", "# T\n## Wave 1\n")
    assert broken.content and broken.plan is None and "wave 1 has no tasks" in broken.problem
    empty = accept_plan("auth", "  ")
    assert empty.content == "" and "carried no plan" in empty.problem
