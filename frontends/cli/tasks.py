"""`corral task …`: create, register, list, show, edit, delete and move tasks, straight on the store.

A task moves by events (`corral task transition NAME EVENT`), checked against the lifecycle table in
`protocols.fsm`; `set-status --force` is the escape hatch that skips it. `implement` and `start-over` are the
everyday events with a name of their own; `push` pushes the task's branch. A command that moves a task asks
the daemon to carry the move out (start the next agent…): it pokes a running daemon, or starts one
(`autostart.act_on_change`).
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frontends.cli.autostart import act_on_change
from frontends.cli.context import add_project_option, open_project
from frontends.cli.inputs import read_file, read_stdin, read_text
from frontends.cli.output import (
    HelpFormatter,
    format_fields,
    format_table,
    positive_int,
    print_json,
    short_stamp,
    terminal_safe,
)
from protocols.errors import NotFoundError, TransitionError, UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from actors.git import GitError
    from protocols.plan import Plan
    from protocols.records import Project, Task, TaskSummary, TransitionResult, WaveTaskRecord

__all__ = ["register"]

_DESCRIPTION = """\
Tasks are the unit of work: a name (a slug such as fix-login), a title, an optional topic (at most one task
per topic is implementing at a time), a branch (default corral/<name>) and content (the plan, in markdown).

lifecycle (events in between):
  ready ──plan_start──▶ planning ──planner_finished──▶ ready, shown as "planned"
    └──implement_start──▶ implementing ──implement_finished──▶ reviewing ──review_approved──▶ verifying
  reviewing ──review_changes_requested──▶ implementing;  verifying ──verify_failed──▶ implementing
  verifying ──verify_approved──▶ done
  done: start_over → planning, reimplement → implementing, request_review → reviewing
  any live status: cancel → cancelled;  cancelled: reopen → planning
  start_over, reimplement, request_review, cancel and reopen are user-only: agents may not send them"""

_EPILOG = """\
examples:
  corral task create fix-login --title "Fix the login form" --topic auth
  corral task create fix-login --file plans/fix-login.md
  corral task register plans/fix-login.md --topic auth
  corral task update-content fix-login --file plans/fix-login.md
  corral task delete fix-login --yes
  corral task list --status planning --status implementing
  corral task list --all --json
  corral task show fix-login
  corral task transition fix-login plan_start
  corral task transition fix-login review-changes --payload "tests fail on empty input"
  corral task set-status fix-login done --force --reason "merged by hand"
  corral task implement fix-login --wave 2
  corral task start-over fix-login --yes
  corral task push fix-login --remote origin
  corral task list --project app            # from anywhere: a project's name, or a path in its repository"""


def register(groups: Any, summary: str) -> None:
    """Add `task` and its sub-commands to the top-level sub-parsers."""
    raw = HelpFormatter
    parser = groups.add_parser(
        "task",
        help=summary,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=raw,
    )
    sub = parser.add_subparsers(title="task commands", metavar="COMMAND", dest="task_command")
    sub.required = True

    p = sub.add_parser(
        "list",
        help="list the project's tasks",
        description="List the tasks of this project: NAME STATUS TOPIC BRANCH UPDATED (UTC). Cancelled "
        "tasks are hidden unless --all is given or --status asks for them. A ready task with a plan shows "
        'as "planned".',
        epilog="examples:\n  corral task list\n  corral task list --status planned --topic auth\n"
        "  corral task list --all --json | jq '.[].name'",
        formatter_class=raw,
    )
    p.add_argument(
        "--status",
        action="append",
        metavar="STATUS",
        help="only tasks in STATUS (ready, planned, planning, implementing, reviewing, verifying, done, "
        "cancelled); repeat or separate with commas for several",
    )
    p.add_argument("--topic", metavar="TOPIC", default="", help="only tasks of TOPIC")
    p.add_argument("--all", action="store_true", help="include cancelled tasks")
    p.add_argument("--json", action="store_true", help="print a JSON list of task records")
    p.set_defaults(handler=_list)

    p = sub.add_parser(
        "create",
        help="create a task (status ready)",
        description="Create a task in status ready. NAME is a slug: lowercase letters, digits, '.', '_', '-' "
        '(a trailing ".md" is dropped). The title defaults to the first "# " heading of the content.',
        epilog="examples:\n  corral task create fix-login --title 'Fix the login form' --topic auth\n"
        "  corral task create fix-login --file plans/fix-login.md\n"
        "  generate-plan | corral task create fix-login --file -",
        formatter_class=raw,
    )
    p.add_argument("name", metavar="NAME", help="the task's name")
    p.add_argument("--title", default="", help="a one-line title")
    p.add_argument("--topic", default="", help="a topic: at most one task per topic is implementing")
    p.add_argument("--branch", default="", help="the git branch (default corral/NAME)")
    content = p.add_mutually_exclusive_group()
    content.add_argument("--content", metavar="TEXT", help="the content (markdown)")
    content.add_argument("--file", metavar="PATH", help="read the content from PATH ('-' for stdin)")
    p.set_defaults(handler=_create)

    p = sub.add_parser(
        "register",
        help="register a plan file as a task (status ready)",
        description="Register PLAN_FILE as a task in status ready: the content is the file, the title its "
        '"# Title" line, the name its file name without ".md", made a slug (lowercase letters, digits, '
        "'.', '_', '-'). A plan that does not parse is registered anyway, with a warning on stderr naming "
        "the line and the problem.",
        epilog="examples:\n  corral task register plans/fix-login.md\n"
        "  corral task register 'plans/Fix Login.md' --topic auth   # name: fix-login\n"
        "  corral task register draft.md --name add-sso --branch feature/sso",
        formatter_class=raw,
    )
    p.add_argument("plan_file", metavar="PLAN_FILE", help="the plan (markdown)")
    p.add_argument("--name", default="", help="the task's name (default: from the file name)")
    p.add_argument("--topic", default="", help="a topic: at most one task per topic is implementing")
    p.add_argument("--branch", default="", help="the git branch (default corral/NAME)")
    p.set_defaults(handler=_register)

    p = sub.add_parser(
        "show",
        help="show one task: its fields, then its content",
        description="Show a task: its fields and the time it entered each status (UTC), the status and "
        "attempts of each wave task when its plan runs in waves, then its content.",
        epilog="examples:\n  corral task show fix-login\n  corral task show fix-login --json",
        formatter_class=raw,
    )
    p.add_argument("name", metavar="NAME", help="the task's name")
    p.add_argument("--json", action="store_true", help="print the task record, with its wave_tasks, as JSON")
    p.set_defaults(handler=_show)

    p = sub.add_parser(
        "update-content",
        help="replace a task's content (its plan) from a file or stdin",
        description="Replace the content of a task with PATH, or with stdin when --file is not given (not "
        "from a terminal: pipe it in). The status and the title are left as they are. A plan that does not "
        "parse is stored anyway, with a warning on stderr naming the line and the problem. Empty content "
        "(nothing but whitespace: an empty file, a generator that failed) is refused and the content kept, "
        "unless --allow-empty says to clear it.",
        epilog="examples:\n  corral task update-content fix-login --file plans/fix-login.md\n"
        "  generate-plan | corral task update-content fix-login\n"
        "  corral task update-content fix-login --allow-empty < /dev/null   # clear it",
        formatter_class=raw,
    )
    p.add_argument("name", metavar="NAME", help="the task's name")
    p.add_argument("--file", metavar="PATH", help="read the content from PATH (default: stdin)")
    p.add_argument(
        "--allow-empty", action="store_true", help="store empty content (clear it) instead of refusing"
    )
    p.set_defaults(handler=_update_content)

    p = sub.add_parser(
        "delete",
        help="delete a task and its wave tasks (needs --yes)",
        description="Delete a task and its wave tasks, for good; its signals and audit events stay, naming "
        "it. Without --yes nothing is deleted: the error says what would be.",
        epilog="examples:\n  corral task delete fix-login --yes",
        formatter_class=raw,
    )
    p.add_argument("name", metavar="NAME", help="the task's name")
    p.add_argument("--yes", action="store_true", help="required: confirm the deletion")
    p.set_defaults(handler=_delete)

    p = sub.add_parser(
        "transition",
        help="apply a lifecycle event to a task",
        description="Apply EVENT to a task, as the user: the lifecycle decides the new status, or refuses "
        "naming the task's status and the events it allows. Events: plan_start, planner_finished, "
        "implement_start, implement_finished, review_approved, review_changes_requested (or review_changes), "
        "verify_approved, verify_failed, start_over, reimplement, request_review, cancel, reopen; "
        "hyphens work as well as underscores. The daemon then carries the move out (starts the planner, "
        "the coders…); it is started if it is not running (CORRAL_AUTOSTART=0: not).",
        epilog="examples:\n  corral task transition fix-login plan_start\n"
        "  corral task transition fix-login review-changes --payload 'handle empty input'",
        formatter_class=raw,
    )
    p.add_argument("name", metavar="NAME", help="the task's name")
    p.add_argument("event", metavar="EVENT", help="the event, e.g. plan_start or implement-finished")
    p.add_argument(
        "--payload",
        metavar="TEXT",
        default="",
        help='feedback or review text, or a JSON object such as {"body": "…"}',
    )
    p.set_defaults(handler=_transition)

    p = sub.add_parser(
        "set-status",
        help="force a task into a status, bypassing the lifecycle (needs --force)",
        description="Put a task in STATUS without checking the lifecycle and without side effects; the "
        "change is audited as a warning. STATUS: ready, planned (ready with a plan), planning, implementing, "
        "reviewing, verifying, done, cancelled. Prefer `corral task transition`. The daemon is started if it "
        "is not running, so that it sees the new status.",
        epilog="examples:\n  corral task set-status fix-login done --force --reason 'merged by hand'",
        formatter_class=raw,
    )
    p.add_argument("name", metavar="NAME", help="the task's name")
    p.add_argument("status", metavar="STATUS", help="the status to force")
    p.add_argument("--force", action="store_true", help="required: confirm that the lifecycle is bypassed")
    p.add_argument("--reason", default="", help="why, for the audit log")
    p.set_defaults(handler=_set_status)

    p = sub.add_parser(
        "implement",
        help="start implementing a ready task (implement_start)",
        description="Move a ready task (planned or not) to implementing, as `corral task transition NAME "
        "implement_start` does, and wake the daemon so it starts the coders at once — starting the daemon if "
        "it is not running. Refused from any "
        "other status, saying what to do instead, and while another task of the same topic is implementing. "
        "--wave N also asks the daemon's wave scheduler to start wave N (an implement_wave signal).",
        epilog="examples:\n  corral task implement fix-login\n  corral task implement fix-login --wave 2",
        formatter_class=raw,
    )
    p.add_argument("name", metavar="NAME", help="the task's name")
    p.add_argument("--wave", metavar="N", type=positive_int, help="also request wave N (N ≥ 1)")
    p.set_defaults(handler=_implement)

    p = sub.add_parser(
        "start-over",
        help="send a done task back to planning (start_over; needs --yes)",
        description="Apply the user-only event start_over to a done task: it goes back to planning, a "
        "planner writes a new plan, and the new plan replaces the task's content when the planner finishes. "
        "The branch and its commits are left as they are. Without --yes nothing changes: the error says "
        "what would. The daemon is started if it is not running.",
        epilog="examples:\n  corral task start-over fix-login --yes",
        formatter_class=raw,
    )
    p.add_argument("name", metavar="NAME", help="the task's name")
    p.add_argument("--yes", action="store_true", help="required: confirm that the task is planned again")
    p.set_defaults(handler=_start_over)

    p = sub.add_parser(
        "push",
        help="push a task's branch to a remote",
        description="Push the task's branch (its shared worktree's branch, `branch` in `corral task show`) "
        "from the main repository: git push --set-upstream REMOTE BRANCH. Commits only: uncommitted work "
        "in the worktree stays where it is. The branch must exist (it is made when the task starts "
        "implementing).",
        epilog="examples:\n  corral task push fix-login\n  corral task push fix-login --remote upstream",
        formatter_class=raw,
    )
    p.add_argument("name", metavar="NAME", help="the task's name")
    p.add_argument("--remote", default="origin", help="the remote to push to (default origin)")
    p.set_defaults(handler=_push)

    p = sub.add_parser(
        "retry",
        help="run a task's current step again after it failed to start",
        description="When the daemon could not carry out a task's step — its agent could not start (a "
        "program not installed, a broken config), its worktree could not be made — the task waits for you "
        "(corral task list shows why). Fix the cause, then retry: the step is carried out again, as if the "
        "task had just entered its status. Nothing else changes; an agent of the step that runs is left "
        "alone. For an agent that ended without signalling, restart it instead (corral instance restart).",
        epilog="examples:\n  corral task retry fix-login",
        formatter_class=raw,
    )
    p.add_argument("name", metavar="NAME", help="the task's name")
    p.set_defaults(handler=_retry)

    for command in sub.choices.values():
        add_project_option(command)


def _list(args: argparse.Namespace) -> int:
    from protocols.fsm import PHASE_PLANNED, Status, parse_status

    wanted = [parse_status(part) for text in args.status or () for part in text.split(",") if part.strip()]
    plain = {status.value for status, phase in wanted if not phase}
    want_planned = any(phase for _, phase in wanted)
    include_cancelled = args.all or Status.CANCELLED.value in plain
    with open_project(args.project) as (store, project):
        tasks = store.list_task_summaries(
            project.id,
            statuses=sorted({status.value for status, _ in wanted}),
            topic=args.topic,
            include_cancelled=include_cancelled,
        )
    if wanted:  # "planned" is ready + phase planned: the store filters on status, the phase is ours
        tasks = [
            t for t in tasks if t.status in plain or (want_planned and t.display_status == PHASE_PLANNED)
        ]
    if args.json:
        print_json(tasks)
        return 0
    if not tasks:
        hidden = "" if include_cancelled else " (cancelled tasks are hidden: --all shows them)"
        what = "no tasks match" if (wanted or args.topic) else "no tasks"
        print(f"{what} in project {project.name}{hidden}")
        return 0
    rows = [
        (
            t.name,
            t.display_status,
            t.topic or "-",
            t.branch or "-",
            short_stamp(t.updated_at),
            _clip(t.waiting.reason, 60) if t.waiting else "-",
        )
        for t in tasks
    ]
    print(format_table(("NAME", "STATUS", "TOPIC", "BRANCH", "UPDATED", "WAITING FOR YOU"), rows))
    waiting = [t for t in tasks if t.waiting]
    if waiting:
        print()
        for task in waiting:
            print(_waiting_lines(task))
    return 0


def _clip(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _waiting_lines(task: Task | TaskSummary) -> str:
    """A waiting task's question and the exact commands that answer it, one per line."""
    assert task.waiting is not None
    lines = [f"{task.name} waits for you: {task.waiting.reason}"]
    lines += [f"  {command}" for command in task.waiting.commands]
    return terminal_safe("\n".join(lines))


def _create(args: argparse.Namespace) -> int:
    from protocols.records import MAX_CONTENT_BYTES, default_task_title

    content = args.content or ""
    if args.file:
        content = read_text(args.file, limit=MAX_CONTENT_BYTES)
    title = args.title or default_task_title(content)
    with open_project(args.project) as (store, project):
        task = store.create_task(
            project.id, args.name, title=title, topic=args.topic, content=content, branch=args.branch
        )
    print(f"created: {task.name} → {task.display_status}")
    return 0


def _register(args: argparse.Namespace) -> int:
    from protocols.records import MAX_CONTENT_BYTES, default_task_title

    content = read_file(args.plan_file, limit=MAX_CONTENT_BYTES)
    name = args.name or _name_from_path(args.plan_file)
    plan, problem = _check_plan(content, args.plan_file)
    title = plan.title if plan is not None else default_task_title(content)
    with open_project(args.project) as (store, project):
        task = store.create_task(
            project.id, name, title=title, topic=args.topic, content=content, branch=args.branch
        )
    if problem:
        _warn(
            f"{problem}; registered anyway: fix the plan, then "
            f"corral task update-content {task.name} --file {shlex.quote(args.plan_file)}"
        )
    print(f"registered: {task.name} → {task.display_status}")
    return 0


def _update_content(args: argparse.Namespace) -> int:
    from protocols.records import MAX_CONTENT_BYTES

    if args.file and args.file != "-":
        content, source = read_file(args.file, limit=MAX_CONTENT_BYTES), args.file
    else:
        if sys.stdin is None or sys.stdin.isatty():
            raise UsageError(
                "update-content reads the new content from stdin, which is a terminal: pipe it in "
                f"(generate-plan | corral task update-content {args.name}) or give --file PATH"
            )
        content, source = read_stdin(limit=MAX_CONTENT_BYTES), "<stdin>"
    if not content.strip() and not args.allow_empty:
        raise UsageError(
            f"the new content of task {args.name} from {source} is empty; nothing was changed. To clear the "
            f"content, add --allow-empty: corral task update-content {args.name} --allow-empty"
        )
    _, problem = _check_plan(content, source)
    with open_project(args.project) as (store, project):
        task = store.update_content(project.id, args.name, content)
    if problem:
        _warn(f"{problem}; stored anyway: fix the plan before implementing")
    print(f"updated: {task.name} ({len(content.splitlines())} lines)")
    return 0


def _delete(args: argparse.Namespace) -> int:
    with open_project(args.project) as (store, project):
        task = store.get_task(project.id, args.name)
        if not args.yes:
            count = len(store.list_wave_tasks(task.id))
            waves = {0: "no wave tasks", 1: "1 wave task"}.get(count, f"{count} wave tasks")
            raise UsageError(
                f'delete removes task "{task.name}" (status {task.display_status}, {waves}) for good; its '
                f"signals and audit events stay. Nothing was deleted. To delete it, add --yes: "
                f"corral task delete {task.name} --yes"
            )
        store.delete_task(project.id, task.name)
    print(f"deleted: {task.name}")
    return 0


def _show(args: argparse.Namespace) -> int:
    with open_project(args.project) as (store, project):
        task = store.get_task(project.id, args.name)
        waves = store.list_wave_tasks(task.id)
    if args.json:
        import msgspec

        print_json({**msgspec.to_builtins(task), "wave_tasks": msgspec.to_builtins(waves)})
        return 0
    print(_describe(task, project, waves))
    return 0


def _transition(args: argparse.Namespace) -> int:
    from protocols.fsm import Source, parse_event
    from protocols.signals import SIGNAL_TYPES, normalize_payload

    event = parse_event(args.event)
    payload = normalize_payload(SIGNAL_TYPES[event.value], args.payload) if args.payload.strip() else ""
    with open_project(args.project) as (store, project):
        before = store.get_task(project.id, args.name)
        result = store.transition_task(project.id, args.name, event, source=Source.USER, payload=payload)
    print(_moved(before, result), flush=True)
    act_on_change()
    return 0


def _set_status(args: argparse.Namespace) -> int:
    from protocols.fsm import parse_status

    status, phase = parse_status(args.status)
    target = phase or status.value
    if not args.force:
        raise UsageError(
            f'set-status bypasses the task lifecycle: no check that "{target}" may follow the current '
            f"status, no side effects. To do it anyway, add --force: "
            f"corral task set-status {args.name} {target} --force; to move the task by an event, use "
            f"corral task transition {args.name} EVENT"
        )
    with open_project(args.project) as (store, project):
        before = store.get_task(project.id, args.name)
        task = store.set_status(project.id, args.name, target, reason=args.reason)
    print(f"{task.name}: {before.display_status} → {task.display_status} (forced)", flush=True)
    act_on_change()
    return 0


# What to do instead of `implement`, by the status the task is in (ready is the one it starts from).
_IMPLEMENT_INSTEAD = {
    "planning": "wait for the planner to finish (planner_finished), then implement it",
    "implementing": "it is implementing already",
    "reviewing": "it has been implemented and is being reviewed",
    "verifying": "it has been implemented and reviewed, and is being verified",
    "done": "to implement it again: corral task transition {name} reimplement",
    "cancelled": "reopen it first (corral task transition {name} reopen), then let it be planned",
}


def _implement(args: argparse.Namespace) -> int:
    from protocols.fsm import Event, Source, Status

    with open_project(args.project) as (store, project):
        task = store.get_task(project.id, args.name)
        if task.status != Status.READY:
            instead = _IMPLEMENT_INSTEAD.get(task.status, "").format(name=task.name)
            raise TransitionError(
                f'cannot implement task "{task.name}": it is {task.display_status}, and implement starts '
                f"a ready task" + (f"; {instead}" if instead else "")
            )
        # The topic rule (one implementing task per topic) is the store's: its ConflictError is the message.
        result = store.transition_task(project.id, task.name, Event.IMPLEMENT_START, source=Source.USER)
        signal = None
        if args.wave is not None:  # after the transition: applied before it, the wave would find it ready
            payload = f'{{"wave_number": {args.wave}}}'
            signal = store.emit_signal(project.id, task.name, "implement_wave", payload, source=Source.USER)
    print(_moved(task, result))
    if signal is not None:
        print(f"{result.task.name}: wave {args.wave} requested (signal {signal.id})")
    sys.stdout.flush()
    act_on_change()
    return 0


def _start_over(args: argparse.Namespace) -> int:
    from protocols.fsm import Event, Source, transition

    with open_project(args.project) as (store, project):
        task = store.get_task(project.id, args.name)
        transition(task.status, Event.START_OVER, Source.USER)  # a wrong status: --yes would not help
        if not args.yes:
            raise UsageError(
                f'start-over sends task "{task.name}" (status {task.display_status}) back to planning: a '
                "planner writes a new plan, which replaces the task's content when it finishes; the branch "
                f"{task.branch or '-'} and its commits stay. Nothing was changed. To do it, add --yes: "
                f"corral task start-over {task.name} --yes"
            )
        result = store.transition_task(project.id, task.name, Event.START_OVER, source=Source.USER)
    print(_moved(task, result), flush=True)
    act_on_change()
    return 0


def _retry(args: argparse.Namespace) -> int:
    from protocols.errors import ConflictError

    with open_project(args.project) as (store, project):
        task = store.get_task(project.id, args.name)
        since = getattr(task, f"{task.status}_at")
        failed = store.failed_outbox(project.id, task.name, since)
        unstarted = not failed and store.step_item(project.id, task.name, task.status, since) is None
        # No transition began this step (its status was set by hand): begin it now.
        if unstarted and store.start_step(project.id, task.name, task.status, since, "user"):
            store.set_task_waiting(task, None, replacing=frozenset({"no_step"}))
            print(f"{task.name}: starting its {task.status} step")
            sys.stdout.flush()
            act_on_change()
            return 0
        if not failed:
            hint = "corral task list shows what each task waits on"
            if task.waiting:
                hint = f"it waits for you: {task.waiting.reason}"
                if task.waiting.commands:
                    hint += f"; answer with: {'; '.join(task.waiting.commands)}"
            raise ConflictError(
                f'task "{task.name}" ({task.display_status}) has no failed step to retry; {hint}'
            )
        store.retry_outbox(project.id, task.name, since)
        store.set_task_waiting(task, None, replacing=frozenset({"start_failed"}))
    for item in failed:
        print(f"{task.name}: retrying {item.kind} (it failed: {item.last_error})")
    sys.stdout.flush()
    act_on_change()
    return 0


def _push(args: argparse.Namespace) -> int:
    from actors.git import GitError, NoRemoteError, Worktree, push_branch, worktree_path
    from actors.git.runner import git_succeeds

    with open_project(args.project) as (store, project):
        task = store.get_task(project.id, args.name)
    if not task.branch:
        raise NotFoundError(f'task "{task.name}" has no branch: nothing to push')
    root = project.root
    if not git_succeeds(
        root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"refs/heads/{task.branch}"
    ):
        raise NotFoundError(
            f'cannot push task "{task.name}": its branch {task.branch} does not exist in {root} yet (it is '
            f"made when the task starts implementing); nothing was pushed"
        )
    wt = Worktree(
        repo_root=root, path=str(worktree_path(root, task.branch)), branch=task.branch, base_commit=""
    )
    try:
        commit = push_branch(wt, args.remote)
    except NoRemoteError:
        raise
    except GitError as exc:
        raise GitError(f"cannot push {task.branch} to {args.remote}: {_git_reason(exc)}") from None
    print(f"pushed {task.branch} to {args.remote} (commit {commit[:7]})")
    return 0


def _git_reason(exc: GitError) -> str:
    """What git said, on one line: its first paragraph without hints (the rest is boilerplate advice)."""
    paragraph = (exc.stderr or str(exc)).strip().split("\n\n", 1)[0]
    lines = [line.strip() for line in paragraph.splitlines()]
    return "; ".join(line for line in lines if line and not line.startswith("hint:"))


def _moved(before: Task, result: TransitionResult) -> str:
    """`fix-login: planned → implementing`: both sides as `task list` shows them (`shown_status`)."""
    from_phase = before.phase if before.status == result.transition.from_status else ""
    return f"{result.task.name}: {result.transition.describe(from_phase)}"


def _name_from_path(path: str) -> str:
    """`plans/Fix Login.md` → `fix-login`: the file name without ".md", made a task-name slug."""
    from protocols.records import MAX_TASK_NAME

    stem = Path(path).name.removesuffix(".md")
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9._-]+", "-", ascii_stem.lower()).lstrip("._-")
    slug = slug[:MAX_TASK_NAME].rstrip("-")
    if not slug:
        raise UsageError(f'cannot make a task name from "{path}": give one with --name NAME')
    return slug


def _check_plan(content: str, source: str) -> tuple[Plan | None, str]:
    """The plan `content` reads as (None for a plain brief, which is fine: one coder does it), or None and
    the PlanError's message (source:line: problem) when it is meant as a plan but cannot be read."""
    from protocols.errors import PlanError
    from protocols.stages import read_plan

    try:
        return read_plan(content, "", source), ""
    except PlanError as err:
        return None, str(err)


def _warn(message: str) -> None:
    print(terminal_safe(f"corral: warning: {message}"), file=sys.stderr)


_STAMPS = ("ready", "planning", "implementing", "reviewing", "verifying", "done", "cancelled")


def _describe(task: Task, project: Project, waves: Sequence[WaveTaskRecord] = ()) -> str:
    status = task.display_status
    if task.phase and status != task.status:
        status = f"{status} (status {task.status}, phase {task.phase})"
    elif task.phase:
        status = f"{status} (phase {task.phase})"
    fields = [
        ("name", task.name),
        ("title", task.title or "-"),
        ("project", project.name),
        ("status", status),
        ("topic", task.topic or "-"),
        ("branch", task.branch or "-"),
        ("review cycle", str(task.review_cycle)),
        ("created", short_stamp(task.created_at)),
        ("updated", short_stamp(task.updated_at)),
    ]
    fields += [
        (f"{name} at", short_stamp(stamp)) for name in _STAMPS if (stamp := getattr(task, f"{name}_at", ""))
    ]
    if task.latest_feedback:
        fields.append(("latest feedback", task.latest_feedback))
    if task.waiting:
        fields.append(("waiting for you", f"{task.waiting.reason} (since {short_stamp(task.waiting.since)})"))
        if task.waiting.commands:
            fields.append(("answer with", "\n".join(task.waiting.commands)))
    body = terminal_safe(task.content.rstrip("\n")) if task.content else "(no content)"
    return f"{format_fields(fields)}{_wave_lines(waves)}\n\n{body}"


def _wave_lines(waves: Sequence[WaveTaskRecord]) -> str:
    """The plan's wave tasks as the daemon last recorded them: one line each."""
    if not waves:
        return ""
    lines = ["", "", "wave tasks:"]
    for row in waves:
        tries = f"{row.attempts} attempt{'s' if row.attempts != 1 else ''}"
        title = terminal_safe(" ".join(row.title.split()))
        lines.append(f"  W{row.wave_number} T{row.task_number}  {row.status:<8}  {tries:<10}  {title}")
    return "\n".join(lines)
