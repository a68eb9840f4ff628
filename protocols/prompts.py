"""The prompts corral's agents start with: what to do, and the exact command that says it is done.

    planner_prompt("fix-login", "Fix the login form", brief)          # → plan + planner_finished
    coder_prompt("fix-login", plan, brief)                             # one coder, the whole plan
    wave_task_prompt("fix-login", plan, wave_number=1, task_number=2, peers=3)
    reviewer_prompt("fix-login", "corral/fix-login", cycle=1, brief=…)  # → review_approved | review_changes
    fixer_prompt("fix-login", feedback, cycle=1, source="review")      # → implement_finished
    readiness_prompt("fix-login", "corral/fix-login", cycle=1)         # → verify_approved | verify_failed

Every prompt ends with the `corral signal emit …` command that finishes the step, spelt out with the task's
name (and, for a wave task, its wave and task numbers), because an agent that signals the wrong thing stalls
the task. Prompts are long on purpose: the launcher sends a long prompt through a file.

How a plan reaches the task: the planner writes it to `.corral/plans/<task>.md` and emits
`planner_finished` with the file's text as the payload (`--payload "$(cat .corral/plans/<task>.md)"`), so the
plan travels inside the durable signal; the daemon stores a non-empty payload body as the task's content
(`protocols.stages.accept_plan`). The file stays behind for people to read. One mechanism, no second copy
to go stale: the task's content is what the coders get.
"""

from __future__ import annotations

import shlex
from typing import Literal

from protocols.plan import Plan, render_plan

__all__ = [
    "PLAN_DIR",
    "coder_prompt",
    "finish_commands",
    "fixer_prompt",
    "nudge_prompt",
    "plan_path",
    "planner_prompt",
    "readiness_prompt",
    "restart_prompt",
    "reviewer_prompt",
    "signal_command",
    "wave_task_prompt",
]

PLAN_DIR = ".corral/plans"
"""Where a planner writes its plan, relative to the repository root (the planner's working directory)."""


def plan_path(task: str) -> str:
    """The file a planner writes the plan of `task` to: `.corral/plans/<task>.md`."""
    return f"{PLAN_DIR}/{task}.md"


def signal_command(signal_type: str, task: str, payload: str = "") -> str:
    """The shell command that emits `signal_type` for `task`, quoted so that it can be pasted as is."""
    command = f"corral signal emit {signal_type} {shlex.quote(task)}"
    return f"{command} --payload {payload}" if payload else command


def _wave_payload(wave_number: int, task_number: int) -> str:
    return shlex.quote(f'{{"wave_number": {wave_number}, "task_number": {task_number}}}')


def _section(title: str, text: str) -> str:
    return f"## {title}\n\n{text.strip()}" if text.strip() else ""


def _join(*parts: str) -> str:
    return "\n\n".join(part for part in parts if part) + "\n"


_MANAGED = (
    "You are running under corral, a supervisor for coding agents. Work on your own: nobody is watching this "
    "session. When the step is done, run the signal command below exactly once; it is how corral learns that "
    "you are finished."
)

_PLAN_FORMAT = """\
Write the plan in exactly this format (corral's parser is strict: a heading it cannot read is an error):

```markdown
# <title of the work>

**Goal:** <one line: what the change achieves>
**Architecture:** <one line: the shape of the solution>
**Tech Stack:** <one line: languages, libraries, tools>

## Wave 1: <title>

### Task 1: <title>

<the brief for one agent: files to change, what to do, how to test it>

### Task 2: <title>

<…>

## Wave 2: <title>

### Task 3: <title>

<…>
```

Rules:
- The first line is `# <title>`. Goal, Architecture and Tech Stack are optional, one line each.
- Waves are `## Wave N` (numbered 1, 2, 3, … in order); every wave has at least one task.
- Tasks are `### Task N: Title`, with the colon and a title; task numbers are unique across the whole plan.
- A task's body is everything up to the next task or wave heading; use `####` for sub-headings inside it.
- Waves run one after another. The tasks of one wave run at the same time, each in its own agent, in one
  shared worktree: tasks of the same wave must not edit the same files. Put work that depends on another
  task in a later wave.
- A small change can be one wave with one or two tasks; corral then gives it to a single coder."""


def planner_prompt(task: str, title: str, brief: str) -> str:
    """The planner's prompt: study the repository, write the plan file, emit planner_finished with it."""
    path = plan_path(task)
    done = signal_command("planner_finished", task, f'"$(cat {shlex.quote(path)})"')
    return _join(
        f"# Plan task {task}: {title}",
        _MANAGED,
        _section("What to plan", brief or title),
        "## Your job\n\nRead the code this touches and write an implementation plan that other coding agents "
        "will carry out task by task. Do not implement anything yourself and do not commit.",
        _section("Plan format", _PLAN_FORMAT),
        f"## When the plan is written\n\nSave it to `{path}` (create `{PLAN_DIR}/` if it is missing), then "
        f"send it to corral, which stores it as the task's plan:\n\n```sh\n{done}\n```",
    )


def coder_prompt(task: str, plan: Plan | None, brief: str = "") -> str:
    """The single coder's prompt: the whole plan (a plan small enough to skip waves), or the brief alone."""
    work = _section("The plan", render_plan(plan)) if plan is not None else _section("What to do", brief)
    heading = plan.title if plan is not None else task
    return _join(
        f"# Implement task {task}: {heading}",
        _MANAGED,
        "This is a small change, so one agent implements all of it (no waves, no other agents in this "
        "worktree).",
        work,
        "## How to work\n\n- Implement every task of the plan, in order, with tests.\n"
        "- Run the project's tests and linters before you finish.\n"
        "- Commit your work on this branch with clear messages.",
        "## When you are done\n\nWhen everything is committed, run:\n\n"
        f"```sh\n{signal_command('implement_finished', task)}\n```",
    )


def _peer_rules(task_number: int, peers: int) -> str:
    others = peers - 1
    agents = "agent works" if others == 1 else "agents work"
    return f"""\
## You share this worktree

{others} other {agents} on other tasks of this wave in this same worktree and branch, at the same time.
- Touch only the files your task needs. Never `git add .`, `git add -A` or `git commit -a`: stage your own
  files by name.
- Never `git stash`, `git reset`, `git checkout`/`git restore` or `git clean` files you did not change;
  another agent's half-done work is not a mistake to tidy up.
- Run formatters and linters on your own files only, not on the whole tree.
- Commit only your files, with the task number in the message: `Task {task_number}: <what changed>`.
- A failing test in a file another task is changing may be work in progress: do not fix their files."""


def wave_task_prompt(task: str, plan: Plan, wave_number: int, task_number: int, peers: int) -> str:
    """A wave coder's prompt: its task of the plan, "Wave w of W", and the shared-worktree rules when it
    has peers (more than one task in the wave). Raises NotFoundError for a task the plan does not have."""
    item = plan.task(task_number)
    done = signal_command("implement_task_finished", task, _wave_payload(wave_number, task_number))
    finish = (
        "commit your files (see above)"
        if peers > 1
        else "commit your work with the task number in the message"
    )
    return _join(
        f"# Implement Task {task_number}: {item.title}",
        _MANAGED,
        f"You implement one task of the plan for {task}: **{plan.title}**. "
        f"This is Wave {wave_number} of {len(plan.waves)}"
        + ("; earlier waves are done and committed on this branch." if wave_number > 1 else "."),
        _section("Plan context", plan.header_context()),
        _peer_rules(task_number, peers) if peers > 1 else "",
        _section(f"Task {task_number}: {item.title}", item.body or item.title),
        f"## When you are done\n\nRun the tests that cover your change, {finish}, then run:\n\n"
        f"```sh\n{done}\n```\n\nDo not start other tasks of the plan: corral runs them.",
    )


def reviewer_prompt(task: str, branch: str, cycle: int, brief: str = "") -> str:
    """The reviewer's prompt: review the branch's changes since its base; approve or request changes."""
    base = f'"$(git config --get {shlex.quote(f"branch.{branch}.corral-base")})"'
    approve = signal_command("review_approved", task, '"<your review>"')
    changes = signal_command("review_changes", task, '"<what must change, file by file>"')
    return _join(
        f"# Review task {task} (round {cycle})",
        _MANAGED,
        _section("What was asked", brief),
        f"## What to review\n\nEvery change on branch `{branch}` since it left its base, committed and "
        "not:\n\n"
        f"```sh\ngit diff {base}\n```\n\n(corral records the commit the branch started from in git config; "
        "if that prints nothing, diff against the merge base with the main branch.) Read the changed code in "
        "context, run the tests, and check that the work does what was asked, is tested, and breaks nothing.",
        "## Your verdict\n\nDo not change code yourself. Run exactly one of:\n\n"
        f"- the work is good:\n\n  ```sh\n  {approve}\n  ```\n\n"
        f"- it needs changes (be specific: a fixer agent gets only this text):\n\n"
        f"  ```sh\n  {changes}\n  ```",
    )


def fixer_prompt(task: str, feedback: str, cycle: int, source: Literal["review", "readiness"]) -> str:
    """The fixer's prompt: the latest feedback, to address and then hand back for review."""
    who = "the reviewer" if source == "review" else "the readiness check"
    return _join(
        f"# Fix task {task} (round {cycle})",
        _MANAGED,
        f"{who.capitalize()} asked for changes to the work on this branch. Address every point, run the "
        "tests, and commit your fixes.",
        _section(f"Feedback from {who}", feedback or "(no feedback text was given: ask `corral task show`)"),
        "## When you are done\n\nWhen the fixes are committed, run:\n\n"
        f"```sh\n{signal_command('implement_finished', task)}\n```\n\nThe work then goes back to review.",
    )


def readiness_prompt(task: str, branch: str, cycle: int, brief: str = "") -> str:
    """The readiness agent's prompt: a holistic last check before the task is done."""
    approve = signal_command("verify_approved", task)
    failed = signal_command("verify_failed", task, '"<what is missing or broken>"')
    return _join(
        f"# Readiness check for task {task} (round {cycle})",
        _MANAGED,
        _section("What was asked", brief),
        f"## Your job\n\nThe review approved branch `{branch}`. Check, as a whole, that it is ready to "
        "merge: the tests and linters pass, the change is complete (docs, migrations, config), nothing "
        "unrelated slipped in, and nothing is left half done. Do not change code yourself.",
        "## Your verdict\n\nRun exactly one of:\n\n"
        f"- ready:\n\n  ```sh\n  {approve}\n  ```\n\n"
        f"- not ready (a fixer agent gets this text):\n\n  ```sh\n  {failed}\n  ```",
    )


def finish_commands(
    agent_type: str, task: str, wave: int | None = None, task_number: int | None = None
) -> tuple[str, ...]:
    """The commands that finish an agent's step — what its prompt ends with — for a nudge or a person."""
    if agent_type == "planner":
        path = shlex.quote(plan_path(task))
        return (signal_command("planner_finished", task, f'"$(cat {path})"'),)
    if agent_type == "coder" and wave is not None and task_number is not None:
        return (signal_command("implement_task_finished", task, _wave_payload(wave, task_number)),)
    if agent_type in ("coder", "fixer"):
        return (signal_command("implement_finished", task),)
    if agent_type == "reviewer":
        return (
            signal_command("review_approved", task, '"<your review>"'),
            signal_command("review_changes", task, '"<what must change>"'),
        )
    if agent_type == "readiness":
        return (signal_command("verify_approved", task), signal_command("verify_failed", task, '"<why>"'))
    return ()


def restart_prompt(why: str, task_prompt: str) -> str:
    """What an agent of a task is told after corral started it again (its process had died, the daemon
    lost it, a person restarted it): that it was restarted, and its task again, which ends with the exact
    command that finishes the step. Its conversation was continued where the harness can; this makes sure
    it does not sit at its prompt, forgetting to finish."""
    return _join(
        f"# corral restarted you ({why})",
        "Your earlier work is in this directory: check `git status` and `git log` before you go on, and do "
        "not redo what is already committed. Then finish your task — here it is again — and end with its "
        "signal command, exactly once.",
        task_prompt,
    )


def nudge_prompt(commands: tuple[str, ...]) -> str:
    """What an agent that sits idle at its prompt without having signalled is told, once."""
    listed = "\n".join(commands)
    return _join(
        "# corral is still waiting for you",
        "You are idle, but your step is not finished: corral has not received your signal. If your work is "
        "done and committed, run the command that says so now:",
        f"```sh\n{listed}\n```",
        "If you are stuck, say why in one short paragraph: a person will read it.",
    )
