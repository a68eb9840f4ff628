"""`corral audit`: the audit log, newest first, read straight from the store (no daemon needed).

    TIME                 LEVEL  KIND             TASK       INSTANCE  MESSAGE
    2026-11-21 15:01:59  info   transition       fix-login  -         fix-login: ready → planning (user)

Inside a repository it shows that project's rows; `--all-projects` shows every project's and the machine-wide
rows (the daemon's, which belong to no project), and works anywhere. See docs/audit.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from frontends.cli.context import PROJECT_HELP
from frontends.cli.output import (
    HelpFormatter,
    display_width,
    format_table,
    positive_int,
    print_json,
    short_stamp,
)
from protocols.errors import UsageError

if TYPE_CHECKING:
    from pathlib import Path

    from protocols.records import AuditEvent

__all__ = ["register"]

_LEVELS = ("debug", "info", "warn", "error")
_MIN_MESSAGE = 20  # never truncate a message to fewer columns than this


def register(groups: Any, summary: str) -> None:
    parser = groups.add_parser(
        "audit",
        help=summary,
        description="Show the audit log, newest first: TIME (UTC) LEVEL KIND TASK INSTANCE MESSAGE. Inside a "
        "repository, the rows of that project; with --all-projects, every project's rows and the daemon's "
        "machine-wide ones (works anywhere). Task transitions and signals are written by the store as they "
        "happen; agents' status changes, supervision (starts, exits, restarts) and daemon events by the "
        "running daemon. Long messages are cut to the terminal width; --json prints them whole.",
        epilog="examples:\n  corral audit\n  corral audit --task fix-login --limit 20\n"
        "  corral audit --level warn\n  corral audit --instance fix-login-coder --json | jq '.[].message'\n"
        "  corral audit --all-projects --level error\n  corral audit --project app --task fix-login",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--task", metavar="TASK", default="", help="only rows about TASK")
    parser.add_argument("--instance", metavar="TITLE", default="", help="only rows about the agent TITLE")
    parser.add_argument(
        "--level",
        metavar="LEVEL",
        default="",
        help="only rows at LEVEL or above: debug, info, warn, error",
    )
    parser.add_argument(
        "--limit", metavar="N", type=positive_int, default=100, help="at most N rows (default 100)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list of audit event records")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--all-projects",
        action="store_true",
        help="every project's rows and the machine-wide ones; no repository needed",
    )
    scope.add_argument("--project", metavar="NAME|PATH", default="", help=PROJECT_HELP)
    parser.set_defaults(handler=_audit)


def _audit(args: argparse.Namespace) -> int:
    from protocols.records import task_name

    task = task_name(args.task) if args.task else ""
    if args.level and args.level not in _LEVELS:
        raise UsageError(f'unknown level "{args.level}"; levels are: {", ".join(_LEVELS)}')
    levels = _LEVELS[_LEVELS.index(args.level) :] if args.level else ()
    names: dict[int, str] = {}
    if args.all_projects:
        from frontends.cli.context import open_store

        with open_store() as store:
            names = {p.id: p.name for p in store.list_projects()}
            rows = _select(store.path, None, task, args.instance, levels, args.limit)
        scope = "any project"
    else:
        from frontends.cli.context import open_project

        with open_project(args.project) as (store, project):
            rows = _select(store.path, project.id, task, args.instance, levels, args.limit)
        scope = f"project {project.name}"
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        filtered = task or args.instance or levels
        print(f"{'no audit events match' if filtered else 'no audit events'} in {scope}")
        return 0
    print(_table(rows, names if args.all_projects else None))
    return 0


def _select(
    path: Path, project_id: int | None, task: str, instance: str, levels: tuple[str, ...], limit: int
) -> list[AuditEvent]:
    """The rows, newest first; `project_id` None = every row, project-less ones included."""
    from actors.store import Store

    with Store.open(path) as store:
        return store.list_audit(project_id, task=task, instance=instance, levels=levels, limit=limit)


def _table(rows: list[AuditEvent], projects: dict[int, str] | None) -> str:
    headers: tuple[str, ...] = ("TIME", "LEVEL", "KIND", "TASK", "INSTANCE", "MESSAGE")
    cells = []
    for r in rows:
        row = [
            short_stamp(r.ts),
            r.level,
            r.kind,
            r.task or "-",
            r.instance or "-",
            " ".join(r.message.split()),
        ]
        if projects is not None:
            row.insert(2, projects.get(r.project_id, "-") if r.project_id is not None else "-")
        cells.append(row)
    if projects is not None:
        headers = (*headers[:2], "PROJECT", *headers[2:])
    width = _terminal_width()
    if width is not None:
        gap = 2
        used = sum(max(display_width(c[i]) for c in [headers, *cells]) + gap for i in range(len(headers) - 1))
        room = max(_MIN_MESSAGE, width - used)
        for row in cells:
            row[-1] = _clip(row[-1], room)
    return format_table(headers, cells)


def _terminal_width() -> int | None:
    """The width to cut messages to: the terminal's, or $COLUMNS; None when writing to a pipe or file."""
    import shutil

    if not sys.stdout.isatty() and "COLUMNS" not in os.environ:
        return None
    return shutil.get_terminal_size().columns


def _clip(text: str, width: int) -> str:
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for char in text:
        w = display_width(char)
        if used + w > width - 1:
            break
        out.append(char)
        used += w
    return "".join(out) + "…"
