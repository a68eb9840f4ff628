"""`corral signal …`: emit a signal (what agents call when they finish a step) and list signals.

A signal is a durable request to move a task, written to the store as `pending` and applied exactly once by
the daemon's signal claimer, which `emit` wakes with a poke on its socket (docs/signals.md). `emit` is on the
agents' hot path: it imports the store, the signal table and the poke, nothing else.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from frontends.cli.context import open_project
from frontends.cli.output import HelpFormatter, format_table, positive_int, print_json, short_stamp
from protocols.errors import UsageError

__all__ = ["MANAGED_ENV", "SIGNAL_STATUSES", "register"]

MANAGED_ENV = "CORRAL_MANAGED"
"""Set to 1 in every session corral starts: a signal emitted there comes from an agent, not a person."""

SIGNAL_STATUSES = ("pending", "processing", "done", "failed")

_DESCRIPTION = """\
Signals are durable requests to move a task, stored as pending and applied exactly once. Agents emit them
when they finish a step; people can too. Every lifecycle event is a signal type (see `corral task --help`),
plus the wave signals:
  implement_task_finished  a wave task is finished: {"wave_number": W, "task_number": T}
  implement_wave           start a wave: {"wave_number": N}
  retry_wave               retry the failed tasks of a finished wave (optional {"wave_number": N})
  advance_wave             go on to the next wave (optional {"wave_number": N})
Aliases: review_changes = review_changes_requested, readiness_approved = verify_approved."""

_EPILOG = """\
examples:
  corral signal emit planner_finished fix-login
  corral signal emit review-changes fix-login --payload "tests fail on empty input"
  corral signal emit implement_task_finished fix-login --payload '{"wave_number": 1, "task_number": 2}'
  corral signal list --status pending
  corral signal list --task fix-login --limit 10 --json"""


def register(groups: Any, summary: str) -> None:
    """Add `signal` and its sub-commands to the top-level sub-parsers."""
    raw = HelpFormatter
    parser = groups.add_parser(
        "signal",
        help=summary,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=raw,
    )
    sub = parser.add_subparsers(title="signal commands", metavar="COMMAND", dest="signal_command")
    sub.required = True

    p = sub.add_parser(
        "emit",
        help="store a pending signal for a task",
        description="Store a pending signal of TYPE for TASK and print its id. The type and payload are "
        f"checked now; the signal is applied later, exactly once. With {MANAGED_ENV}=1 in the environment "
        '(set in the sessions corral starts) the source is "agent", which may not send user-only events; '
        'otherwise it is "user". Types take hyphens or underscores.',
        epilog="examples:\n  corral signal emit planner_finished fix-login\n"
        "  corral signal emit review_approved fix-login --payload 'looks good'\n"
        "  corral signal emit implement_wave fix-login --payload '{\"wave_number\": 2}'\n"
        "  corral signal emit plan_start fix-login --project api   # from outside the repository",
        formatter_class=raw,
    )
    p.add_argument("type", metavar="TYPE", help="the signal type, e.g. planner_finished")
    p.add_argument("task", metavar="TASK", help="the task's name")
    p.add_argument(
        "--payload",
        metavar="JSON|TEXT",
        default="",
        help='a JSON object, or for lifecycle signals free text (stored as {"body": TEXT})',
    )
    p.add_argument(
        "--project",
        metavar="NAME",
        default="",
        help="the project's name (or root path) instead of the repository at the current directory",
    )
    p.set_defaults(handler=_emit)

    p = sub.add_parser(
        "list",
        help="list the project's signals, newest first",
        description="List this project's signals, newest first: ID STATUS TYPE TASK SOURCE CREATED (UTC) "
        "RESULT. A done signal's result is the move it made (ready → planning); a failed one's, why.",
        epilog="examples:\n  corral signal list\n  corral signal list --status pending --status failed\n"
        "  corral signal list --task fix-login --json",
        formatter_class=raw,
    )
    p.add_argument(
        "--status",
        action="append",
        metavar="STATUS",
        help="only signals in STATUS (pending, processing, done, failed); repeat or separate with commas",
    )
    p.add_argument("--task", metavar="TASK", default="", help="only signals for TASK")
    p.add_argument(
        "--limit", metavar="N", type=positive_int, default=100, help="at most N signals (default 100)"
    )
    p.add_argument("--json", action="store_true", help="print a JSON list of signal records")
    p.set_defaults(handler=_list)


def _emit(args: argparse.Namespace) -> int:
    from protocols.errors import TransitionError
    from protocols.fsm import USER_ONLY, Source
    from protocols.signals import normalize_payload, parse_signal_type

    source = Source.AGENT if os.environ.get(MANAGED_ENV) == "1" else Source.USER
    signal_type = parse_signal_type(args.type)
    normalize_payload(signal_type, args.payload)  # refuse a bad payload before touching the database
    if source is Source.AGENT and signal_type.event in USER_ONLY:
        raise TransitionError(
            f'signal "{signal_type.name}" is user-only: an agent may not send it '
            f"(emitted with {MANAGED_ENV}=1)"
        )
    with open_project(args.project) as (store, project):
        task = store.get_task(project.id, args.task)
        signal = store.emit_signal(
            project.id, task.name, signal_type.name, args.payload or None, source=source
        )
    _wake_daemon()
    print(f"signal {signal.id} {signal.status}: {signal.signal_type} {signal.task}")
    return 0


def _wake_daemon() -> None:
    """The signal is committed: poke the daemon so it applies it now. Without a daemon nothing happens (it
    will find the signal pending when it starts), and nothing here can fail the emit."""
    try:
        from actors.wake import poke

        poke()
    except Exception:
        pass


def _list(args: argparse.Namespace) -> int:
    statuses = [
        part.strip().lower() for text in args.status or () for part in text.split(",") if part.strip()
    ]
    unknown = [s for s in statuses if s not in SIGNAL_STATUSES]
    if unknown:
        raise UsageError(f'unknown signal status "{unknown[0]}"; statuses are: {", ".join(SIGNAL_STATUSES)}')
    with open_project() as (store, project):
        signals = store.list_signals(project.id, statuses=statuses, task=args.task, limit=args.limit)
    if args.json:
        print_json(signals)
        return 0
    if not signals:
        print(f"no signals in project {project.name}")
        return 0
    rows = [
        (str(s.id), s.status, s.signal_type, s.task, s.source, short_stamp(s.created_at), s.result or "-")
        for s in signals
    ]
    print(format_table(("ID", "STATUS", "TYPE", "TASK", "SOURCE", "CREATED", "RESULT"), rows))
    return 0
