"""What happens when a task enters a status: which agents stop, which one starts, or why a person must act.

    plan = read_plan(task.content, task.name)          # None for a plain brief
    for action in on_enter(task, change, plan, config):
        ...                                            # the Task actor carries each one out, in order

`on_enter` is the Task actor's whole decision, pure: it gets the task as the store left it after the
transition (so `review_cycle` already counts this round: the store adds one on review_changes_requested and
verify_failed), the transition, the parsed plan and the config, and returns actions. Nothing here starts a
process, reads a clock or touches the store.

    entering      via                          actions
    planning      plan_start, start_over, …    stop the task's agents; start <task>-plan (no worktree)
    ready         planner_finished             stop the task's agents (the planner); wait if the plan is bad
    implementing  implement_start, reimplement stop; ≤ blueprint_skip_threshold tasks (or no plan):
                                               start <task>-coder, else StartWaves
    implementing  review_changes, verify_failed stop; start <task>-fix-<n>, or wait for a person (limit
                                               reached, or auto_review_fix off)
    reviewing     implement_finished, …        stop; start <task>-review-<n>
    verifying     review_approved              stop; start <task>-verify-<n>, or Transition(verify_approved)
                                               when ui.auto_readiness_review is off
    done          verify_approved              stop the task's agents
    cancelled     cancel                       stop the task's agents

Round `n` is `review_cycle + 1` for reviewer and readiness agents and `review_cycle` for a fixer, so round k
reads review-k → fix-k → review-(k+1). Every agent but the planner works in the task's shared worktree (branch
`<branch_prefix><task>`); the planner works in the repository itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

import msgspec

from protocols import prompts
from protocols.config import Config, resolve_resources
from protocols.errors import PlanError
from protocols.fsm import Event, Status
from protocols.fsm import Transition as FsmTransition
from protocols.plan import Plan, parse_plan
from protocols.records import Task

__all__ = [
    "AGENT_KINDS",
    "FEEDBACK_EVENTS",
    "Action",
    "AgentKind",
    "PlanIntake",
    "StartAgent",
    "StartWaves",
    "StopAgents",
    "Transition",
    "WaitForPerson",
    "WorktreeUse",
    "accept_plan",
    "agent_env",
    "coder_title",
    "fixer_title",
    "on_enter",
    "planner_title",
    "read_plan",
    "readiness_title",
    "reviewer_title",
    "task_branch",
    "wave_task_agent",
    "wave_task_title",
]

WorktreeUse = Literal["shared", "own", "none"]
"""Where an agent works: the task's shared worktree, a worktree of its own, or the repository itself."""


class AgentKind(msgspec.Struct, frozen=True):
    """One kind of agent: its CORRAL_AGENT_TYPE, the `[phases]` key whose role runs it, where it works."""

    agent_type: str
    phase: str
    worktree: WorktreeUse


AGENT_KINDS: Mapping[str, AgentKind] = MappingProxyType(
    {
        "planner": AgentKind("planner", "planning", "none"),
        "coder": AgentKind("coder", "implementing", "shared"),
        "reviewer": AgentKind("reviewer", "quality_review", "shared"),
        "fixer": AgentKind("fixer", "fixer", "shared"),
        "readiness": AgentKind("readiness", "readiness_review", "shared"),
    }
)
"""The agents of the lifecycle. `phase` is resolved to a program by `Config.profile_for_phase`."""

FEEDBACK_EVENTS: frozenset[Event] = frozenset({Event.REVIEW_CHANGES_REQUESTED, Event.VERIFY_FAILED})
"""Events that send a task back to implementing with feedback; each one counts a review cycle."""


# --- actions ----------------------------------------------------------------------------------------------


class StartAgent(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Start one agent. The launcher resolves `phase` → role → profile (program, model, mode) from the config
    and builds the CORRAL_* environment from these fields (see `agent_env`)."""

    title: str
    task: str
    agent_type: str
    phase: str
    prompt: str
    worktree: WorktreeUse
    wave: int | None = None
    task_number: int | None = None
    peers: int = 0


class StopAgents(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Stop agents of `task`: those named in `titles`, or every one of the task's agents when `titles` is
    empty. Stopping an agent that is not running is not an error."""

    task: str
    titles: tuple[str, ...] = ()
    reason: str = ""


class StartWaves(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Run the plan wave by wave (`protocols.waves.WaveRun.begin(...)`, then `start_wave(1)`)."""

    task: str
    waves: int
    tasks: int
    cap: int
    """At most this many wave tasks run at once; 0 = every task of the wave."""
    auto_advance: bool


class WaitForPerson(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Start nothing: a person decides what happens next. `reason` says why; `commands` are the exact
    commands that answer it; `kind` names the wait (see `protocols.records.TaskWaiting`)."""

    task: str
    reason: str
    commands: tuple[str, ...] = ()
    kind: str = ""


class Transition(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Apply `event` to the task at once, as corral (a chained transition), with `body` as its payload."""

    task: str
    event: Event
    body: str = ""


Action = StartAgent | StopAgents | StartWaves | WaitForPerson | Transition


# --- titles, environment ----------------------------------------------------------------------------------


def planner_title(task: str) -> str:
    return f"{task}-plan"


def coder_title(task: str) -> str:
    return f"{task}-coder"


def wave_task_title(task: str, wave: int, task_number: int) -> str:
    """`<task>-W<w>-T<t>`. Task names are lower case, so `<task>-W` is a prefix no other task's agent has."""
    return f"{task}-W{wave}-T{task_number}"


def reviewer_title(task: str, cycle: int) -> str:
    return f"{task}-review-{cycle}"


def fixer_title(task: str, cycle: int) -> str:
    return f"{task}-fix-{cycle}"


def readiness_title(task: str, cycle: int) -> str:
    return f"{task}-verify-{cycle}"


def task_branch(task: Task, config: Config) -> str:
    """The branch of the task's shared worktree: the task's own, else `<branch_prefix><task>`."""
    return task.branch or f"{config.branch_prefix}{task.name}"


def agent_env(
    *,
    project: str,
    task: str,
    title: str,
    agent_type: str,
    wave: int | None = None,
    peers: int = 0,
    resource_profile: str = "normal",
) -> dict[str, str]:
    """The CORRAL_* variables every agent gets (config.MANAGED_ENV_KEYS, which [resources.env] cannot
    override). CORRAL_WAVE is "" outside a wave; CORRAL_PEERS counts the tasks of the agent's wave."""
    return {
        "CORRAL_MANAGED": "1",
        "CORRAL_PROJECT": project,
        "CORRAL_TASK": task,
        "CORRAL_WAVE": "" if wave is None else str(wave),
        "CORRAL_PEERS": str(peers),
        "CORRAL_INSTANCE_TITLE": title,
        "CORRAL_AGENT_TYPE": agent_type,
        "CORRAL_RESOURCE_PROFILE": resource_profile,
    }


def _agent(
    kind: str,
    *,
    title: str,
    task: str,
    prompt: str,
    wave: int | None = None,
    task_number: int | None = None,
    peers: int = 0,
) -> StartAgent:
    spec = AGENT_KINDS[kind]
    return StartAgent(
        title=title,
        task=task,
        agent_type=spec.agent_type,
        phase=spec.phase,
        prompt=prompt,
        worktree=spec.worktree,
        wave=wave,
        task_number=task_number,
        peers=peers,
    )


def wave_task_agent(task: str, plan: Plan, wave: int, task_number: int) -> StartAgent:
    """The agent for task `task_number` of wave `wave`; its peers are the other tasks of that wave."""
    peers = len(plan.wave(wave).tasks)
    return _agent(
        "coder",
        title=wave_task_title(task, wave, task_number),
        task=task,
        prompt=prompts.wave_task_prompt(task, plan, wave, task_number, peers),
        wave=wave,
        task_number=task_number,
        peers=peers,
    )


# --- plans ------------------------------------------------------------------------------------------------

# A line that tries to be a wave heading: content with one is meant as a plan, so a parse error matters.
_LOOKS_LIKE_PLAN = re.compile(r"^ {0,3}#{1,3}[ \t]*wave\b", re.IGNORECASE | re.MULTILINE)


def read_plan(content: str, task: str, source: str = "") -> Plan | None:
    """The task's plan, or None when its content is a plain brief (empty, or no `## Wave` heading).

    `source` names where the content came from in an error (default: "the plan of task <task>").

    Raises PlanError when the content is meant as a plan (it has a wave heading) but cannot be read: a
    plan that silently turned into a brief would hand a whole plan's work to one coder.
    """
    if not content.strip():
        return None
    try:
        return parse_plan(content, source or f"the plan of task {task}")
    except PlanError:
        if _LOOKS_LIKE_PLAN.search(content) is None:
            return None
        raise


class PlanIntake(msgspec.Struct, frozen=True):
    """What a `planner_finished` payload does to the task: the content to store ("" = leave it as it is),
    the plan it reads as, and the problem a person should see (the plan is stored anyway, to be fixed)."""

    content: str
    plan: Plan | None
    problem: str = ""


def accept_plan(task: str, body: str) -> PlanIntake:
    """Decide what to store from the body of a planner_finished signal (see protocols.prompts)."""
    text = body.strip()
    if not text:
        return PlanIntake(
            "", None, f"planner_finished for {task} carried no plan: the task's content is unchanged"
        )
    try:
        return PlanIntake(text + "\n", parse_plan(text, f"the plan of task {task}"))
    except PlanError as err:
        return PlanIntake(text + "\n", None, f"{err}; fix the plan before implementing")


# --- on_enter ---------------------------------------------------------------------------------------------


def on_enter(
    task: Task,
    change: FsmTransition,
    plan: Plan | None,
    config: Config,
    *,
    review_cycle: int | None = None,
    plan_problem: str = "",
) -> tuple[Action, ...]:
    """The actions for `task` having just made `change`, in the order to carry them out.

    `task` is the record after the transition; `review_cycle` overrides `task.review_cycle` (the review
    → fix rounds counted so far, this one included). `plan` is `read_plan(task.content)`; pass the
    PlanError's text as `plan_problem` when the content could not be read, and the task waits for a person
    instead of implementing a plan nobody can parse.
    """
    cycle = task.review_cycle if review_cycle is None else review_cycle
    handler = _ENTER[change.to_status]
    return handler(task, change, plan, config, cycle, plan_problem)


def _stop(task: str, reason: str) -> StopAgents:
    return StopAgents(task=task, reason=reason)


def _enter_planning(
    task: Task, change: FsmTransition, plan: Plan | None, config: Config, cycle: int, problem: str
) -> tuple[Action, ...]:
    prompt = prompts.planner_prompt(task.name, task.title, task.content)
    return (
        _stop(task.name, f"{change.event}: planning {task.name} again"),
        _agent("planner", title=planner_title(task.name), task=task.name, prompt=prompt),
    )


def _enter_ready(
    task: Task, change: FsmTransition, plan: Plan | None, config: Config, cycle: int, problem: str
) -> tuple[Action, ...]:
    actions: tuple[Action, ...] = (_stop(task.name, f"{change.event}: the plan is written"),)
    if problem:
        reason = f"the plan of {task.name} cannot be read: {problem}"
        commands = (f"corral task update-content {task.name} --file PLAN.md", f"corral task show {task.name}")
        actions += (WaitForPerson(task=task.name, reason=reason, commands=commands, kind="plan_unreadable"),)
    return actions


def _enter_implementing(
    task: Task, change: FsmTransition, plan: Plan | None, config: Config, cycle: int, problem: str
) -> tuple[Action, ...]:
    stop = _stop(task.name, f"{change.event}: implementing")
    if change.event in FEEDBACK_EVENTS:
        return (stop, _fix(task, change, config, cycle))
    if problem:
        reason = f"{task.name} cannot start implementing: its plan cannot be read: {problem}"
        commands = (
            f"corral task update-content {task.name} --file PLAN.md",
            f"corral task set-status {task.name} planned --force",
            f"corral task implement {task.name}",
        )
        return (stop, WaitForPerson(task=task.name, reason=reason, commands=commands, kind="plan_unreadable"))
    threshold = config.orchestration.blueprint_skip_threshold
    if plan is None or (threshold > 0 and plan.task_count <= threshold):
        prompt = prompts.coder_prompt(task.name, plan, task.content)
        return (stop, _agent("coder", title=coder_title(task.name), task=task.name, prompt=prompt))
    cap = resolve_resources(config.resources).max_parallel_wave_tasks
    waves = StartWaves(
        task=task.name,
        waves=len(plan.waves),
        tasks=plan.task_count,
        cap=cap,
        auto_advance=config.ui.auto_advance_waves,
    )
    return (stop, waves)


def _fix(task: Task, change: FsmTransition, config: Config, cycle: int) -> Action:
    source: Literal["review", "readiness"] = (
        "review" if change.event is Event.REVIEW_CHANGES_REQUESTED else "readiness"
    )
    limit = config.ui.max_review_fix_cycles
    if not config.ui.auto_review_fix:
        reason = (
            f"{task.name} got changes requested ({source}), and ui.auto_review_fix is off: read the "
            "feedback, fix it yourself, then tell corral it is implemented"
        )
        commands = (f"corral task show {task.name}", f"corral task transition {task.name} implement_finished")
        return WaitForPerson(task=task.name, reason=reason, commands=commands, kind="review_fix_off")
    if limit and cycle > limit:
        reason = (
            f"{task.name} has been through {limit} review → fix cycles (ui.max_review_fix_cycles = {limit}) "
            "and changes are still requested: read the latest feedback, fix it yourself and tell corral it "
            "is implemented, or cancel the task"
        )
        commands = (
            f"corral task show {task.name}",
            f"corral task transition {task.name} implement_finished",
            f"corral task transition {task.name} cancel",
        )
        return WaitForPerson(task=task.name, reason=reason, commands=commands, kind="review_limit")
    round_number = max(cycle, 1)
    prompt = prompts.fixer_prompt(task.name, task.latest_feedback, round_number, source)
    return _agent("fixer", title=fixer_title(task.name, round_number), task=task.name, prompt=prompt)


def _enter_reviewing(
    task: Task, change: FsmTransition, plan: Plan | None, config: Config, cycle: int, problem: str
) -> tuple[Action, ...]:
    round_number = cycle + 1
    prompt = prompts.reviewer_prompt(task.name, task_branch(task, config), round_number, task.content)
    return (
        _stop(task.name, f"{change.event}: reviewing"),
        _agent("reviewer", title=reviewer_title(task.name, round_number), task=task.name, prompt=prompt),
    )


def _enter_verifying(
    task: Task, change: FsmTransition, plan: Plan | None, config: Config, cycle: int, problem: str
) -> tuple[Action, ...]:
    stop = _stop(task.name, f"{change.event}: verifying")
    if not config.ui.auto_readiness_review:
        body = "ui.auto_readiness_review is off: approved without a readiness review"
        return (stop, Transition(task=task.name, event=Event.VERIFY_APPROVED, body=body))
    round_number = cycle + 1
    prompt = prompts.readiness_prompt(task.name, task_branch(task, config), round_number, task.content)
    return (
        stop,
        _agent("readiness", title=readiness_title(task.name, round_number), task=task.name, prompt=prompt),
    )


def _enter_final(
    task: Task, change: FsmTransition, plan: Plan | None, config: Config, cycle: int, problem: str
) -> tuple[Action, ...]:
    return (_stop(task.name, f"{change.event}: the task is {change.to_status}"),)


_ENTER = MappingProxyType(
    {
        Status.PLANNING: _enter_planning,
        Status.READY: _enter_ready,
        Status.IMPLEMENTING: _enter_implementing,
        Status.REVIEWING: _enter_reviewing,
        Status.VERIFYING: _enter_verifying,
        Status.DONE: _enter_final,
        Status.CANCELLED: _enter_final,
    }
)
