"""`corral dashboard` (and `corral` alone, on a terminal): the live view of a project's tasks and agents.

The dashboard is a client of the daemon like every other command (it starts the daemon when none runs, as
they do); quitting it leaves every agent running, and several dashboards may run at once. Everything heavy
(blessed, pykka) is imported only when it opens.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from frontends.cli.context import add_project_option
from frontends.cli.output import HelpFormatter

__all__ = ["register"]

_DESCRIPTION = """\
Open the dashboard on this repository's project: its tasks (grouped by topic) with their agents, each
agent's live screen, its diff and its details, and every action on them from the keyboard (? lists the
keys). It talks to the daemon only through its control API and event stream; when the daemon is lost, a
banner says so and the dashboard reconnects by itself. q quits; the agents keep running. `corral` with no
command opens it too, when run on a terminal."""

_EPILOG = """\
examples:
  corral                                  the dashboard of the repository at the current directory
  corral dashboard --project ~/src/api    the dashboard of another repository
  corral dashboard --no-notify            no desktop notifications this time

In the dashboard: enter attaches to an agent, ctrl-q comes back; i types to it; ? shows every key.
Desktop notifications are on unless [ui] notifications = false in .corral/config.toml."""


def register(groups: Any, summary: str) -> None:
    """Add `dashboard` to the top-level sub-parsers."""
    parser = groups.add_parser(
        "dashboard", help=summary, description=_DESCRIPTION, epilog=_EPILOG, formatter_class=HelpFormatter
    )
    add_project_option(parser)
    parser.add_argument(
        "--no-notify", action="store_true", help="no desktop notifications or bell (whatever the config says)"
    )
    parser.set_defaults(handler=_dashboard)


def _dashboard(args: argparse.Namespace) -> int:
    from protocols.errors import UsageError

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "the dashboard needs a terminal: run it in one (corral instance list shows the agents)"
        )
    from pathlib import Path

    from frontends.cli.autostart import daemon_client
    from frontends.project import find_project_root
    from protocols.config import load_config
    from protocols.errors import NotFoundError

    root: Path | None = None
    if not args.project or "/" in args.project:  # the repository is found before any daemon is started
        start = Path(args.project).expanduser().resolve() if args.project else None
        root = find_project_root(start) if start else find_project_root()
    client = daemon_client()
    if root is None:  # a registered project's name, else a directory named without a slash (".")
        known = {p["name"]: p["root"] for p in client.call("GET", "/v1/repos")}
        if args.project in known:
            root = Path(known[args.project])
        elif Path(args.project).is_dir():
            root = find_project_root(Path(args.project).resolve())
        else:
            names = ", ".join(sorted(known)) or "none yet"
            raise NotFoundError(f"no project {args.project} (projects: {names}); or give a path inside it")
    project = str(client.call("POST", "/v1/repos", json={"path": str(root)})["name"])
    notify = load_config(root).ui.notifications if root.is_dir() else True
    from frontends.dashboard.app import run

    return run(client, project, notifications=notify and not args.no_notify)
