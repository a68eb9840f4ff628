"""`corral daemon …`: start, stop, inspect, reload and install the daemon; list the repositories it serves.

Everything here talks to the daemon through `frontends.daemon.DaemonClient` (HTTP over the Unix socket, no
aiohttp); only `start --foreground` imports the daemon itself. None of these commands needs a git repository.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from frontends.cli.output import HelpFormatter, format_fields, format_table, print_json, short_stamp

if TYPE_CHECKING:
    from frontends.daemon import DaemonClient

__all__ = ["register"]

_DESCRIPTION = """\
The daemon hosts corral's actors and keeps agents alive. It serves its control API on a Unix socket,
$XDG_RUNTIME_DIR/corral/daemon.sock (else /tmp/corral-<uid>/daemon.sock; CORRAL_RUNTIME_DIR overrides the
directory), with its pid in daemon.pid and its log in daemon.log beside it. A client that needs the daemon
and finds none starts it. SIGTERM stops it in order; SIGHUP reloads the configuration."""

_EPILOG = """\
examples:
  corral daemon start
  corral daemon status --json | jq .uptime_s
  corral daemon reload
  corral daemon install      # then: systemctl --user daemon-reload && systemctl --user enable --now corral"""


def register(groups: Any, summary: str) -> None:
    """Add `daemon` and its sub-commands to the top-level sub-parsers."""
    raw = HelpFormatter
    parser = groups.add_parser(
        "daemon", help=summary, description=_DESCRIPTION, epilog=_EPILOG, formatter_class=raw
    )
    sub = parser.add_subparsers(title="daemon commands", metavar="COMMAND", dest="daemon_command")
    sub.required = True

    p = sub.add_parser(
        "start",
        help="start the daemon in the background (or --foreground)",
        description="Start the daemon detached from this terminal, its output appended to daemon.log, and "
        "wait until it answers. If one already runs, say so and exit 0. With --foreground it runs in this "
        "process until SIGTERM or SIGINT (for systemd, CI and debugging); its log goes to stderr.",
        epilog="examples:\n  corral daemon start\n  corral daemon start --foreground",
        formatter_class=raw,
    )
    p.add_argument("--foreground", action="store_true", help="run in this process, logging to stderr")
    p.add_argument(
        "--timeout", type=float, default=20.0, metavar="S", help="how long to wait for it to answer (20)"
    )
    p.set_defaults(handler=_start)

    p = sub.add_parser(
        "stop",
        help="stop the daemon in order",
        description="Ask the daemon for an orderly shutdown and wait until it has exited: its socket "
        "disappears, pty and sdk agents are stopped (to be resumed at the next start), tmux agents keep "
        "running. Exit 0 also when it was not running.",
        epilog="examples:\n  corral daemon stop",
        formatter_class=raw,
    )
    p.add_argument("--timeout", type=float, default=60.0, metavar="S", help="how long to wait (60)")
    p.set_defaults(handler=_stop)

    p = sub.add_parser(
        "status",
        help="is the daemon running: pid, uptime, socket, repos, supervision",
        description="Show whether the daemon runs and, if it does, its pid, version, uptime, socket, "
        "database, repositories and the root supervisor's children. Exit 0 when it runs, 1 when it does not.",
        epilog="examples:\n  corral daemon status\n  corral daemon status --json | jq .supervision.children",
        formatter_class=raw,
    )
    p.add_argument("--json", action="store_true", help='print the status as JSON ({"running": false, …})')
    p.set_defaults(handler=_status)

    p = sub.add_parser(
        "reload",
        help="make the daemon re-read its configuration (as SIGHUP does)",
        description="Make the running daemon re-read the configuration of every repository it serves "
        "(.corral/config.toml) and report each problem. Exit 1 if there were problems (the daemon keeps "
        "running with what it had) or if it is not running.",
        epilog="examples:\n  corral daemon reload\n  kill -HUP $(cat $XDG_RUNTIME_DIR/corral/daemon.pid)",
        formatter_class=raw,
    )
    p.add_argument("--json", action="store_true", help="print the reload report as JSON")
    p.set_defaults(handler=_reload)

    p = sub.add_parser(
        "install",
        help="write the systemd user unit corral.service",
        description="Write ~/.config/systemd/user/corral.service (under $XDG_CONFIG_HOME if set), which runs "
        "this corral's `daemon start --foreground` and restarts it on failure, with CORRAL_HOME, "
        "CORRAL_RUNTIME_DIR and PATH as they are now. It does not run systemctl: it prints the command that "
        "enables the unit.",
        epilog="examples:\n  corral daemon install\n"
        "  systemctl --user daemon-reload && systemctl --user enable --now corral",
        formatter_class=raw,
    )
    p.set_defaults(handler=_install)

    p = sub.add_parser(
        "repos",
        help="list the repositories corral knows (projects)",
        description="List the registered repositories: NAME ROOT REGISTERED (UTC). A repository registers "
        "itself the first time a corral command runs in it. Asks the daemon when it runs, else reads the "
        "database.",
        epilog="examples:\n  corral daemon repos\n  corral daemon repos --json | jq '.[].root'",
        formatter_class=raw,
    )
    p.add_argument("--json", action="store_true", help="print a JSON list of project records")
    p.set_defaults(handler=_repos)


def _client() -> DaemonClient:
    from frontends.daemon import DaemonClient

    return DaemonClient()


def _start(args: argparse.Namespace) -> int:
    if args.foreground:
        from frontends.daemon.main import run

        return run()
    from frontends.daemon.spawn import start_daemon

    client = _client()
    pong = client.ping()
    if pong is not None:
        print(f"corral daemon already running (pid {pong['pid']}); socket {client.socket}")
        return 0
    began = time.monotonic()
    pong = start_daemon(client, timeout=args.timeout)
    print(
        f"corral daemon started (pid {pong['pid']}) in {time.monotonic() - began:.2f} s; "
        f"socket {client.socket}, log {client.paths.log_file}"
    )
    return 0


def _stop(args: argparse.Namespace) -> int:
    client = _client()
    pid = client.shutdown(timeout=args.timeout)
    print("corral daemon is not running" if pid is None else f"corral daemon stopped (pid {pid})")
    return 0


def _status(args: argparse.Namespace) -> int:
    from frontends.daemon import DaemonNotRunning

    client = _client()
    try:
        status = client.call("GET", "/v1/status")
    except DaemonNotRunning:
        if args.json:
            print_json({"running": False, "socket": str(client.socket), "runtime_dir": str(client.paths.dir)})
        else:
            print("corral daemon: not running")
            print(format_fields([("socket", str(client.socket)), ("log", str(client.paths.log_file))]))
        return 1
    if args.json:
        print_json({"running": True, **status})
        return 0
    repos = status["repos"]
    names = ", ".join(r["name"] for r in repos)
    fields = [
        ("pid", str(status["pid"])),
        ("version", status["version"]),
        ("started", f"{short_stamp(status['started_at'])} UTC (up {_duration(status['uptime_s'])})"),
        ("socket", status["socket"]),
        ("log", str(client.paths.log_file)),
        ("database", status["database"]),
        ("repos", f"{len(repos)} ({names})" if repos else "none yet"),
        ("supervision", _supervision_line(status["supervision"])),
        *_writes_fields(status.get("writes") or {}),
    ]
    print("corral daemon: running")
    print(format_fields(fields))
    stats = status["supervision"]
    if stats and stats["children"]:
        rows = [
            (c["id"], c["kind"], c["state"], str(c["generation"]), str(c["restarts"]))
            for c in stats["children"]
        ]
        print()
        print(format_table(("CHILD", "KIND", "STATE", "GENERATION", "RESTARTS"), rows))
    return 0


def _writes_fields(writes: dict[str, Any]) -> list[tuple[str, str]]:
    """`writes: ok`, or what cannot be written since when; and what a full disk made it drop, if anything."""
    problems = writes.get("problems") or []
    fields = [("writes", "ok")]
    if problems:
        since = short_stamp(writes.get("since", ""))
        fields = [
            ("writes", f"FAILING since {since} UTC (the daemon retries by itself)\n" + "\n".join(problems))
        ]
    dropped = [
        f"{writes[key]} {what}"
        for key, what in (("audit_rows_dropped", "audit rows"), ("log_lines_dropped", "log lines"))
        if writes.get(key)
    ]
    if dropped:
        fields.append(("dropped", ", ".join(dropped) + " (since the daemon started)"))
    return fields


def _supervision_line(stats: dict[str, Any] | None) -> str:
    if stats is None:
        return "the root supervisor did not answer (see the log)"
    running = sum(1 for c in stats["children"] if c["state"] == "running")
    return (
        f"{stats['path']} ({stats['strategy']}): {running} of {len(stats['children'])} children running; "
        f"{stats['restarts_in_window']} restarts in the last {stats['period_s']:g} s "
        f"(gives up past {stats['max_restarts']}), {stats['total_restarts']} in all"
    )


def _duration(seconds: float) -> str:
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{seconds:.1f}s"


def _reload(args: argparse.Namespace) -> int:
    report = _client().call("POST", "/v1/reload", timeout=35.0)
    if args.json:
        print_json(report)
    else:
        problems = report["problems"]
        count = report["repos"]
        print(
            f"reloaded: {count} {'repository' if count == 1 else 'repositories'} re-read, "
            + (f"{len(problems)} problem(s):" if problems else "no problems")
        )
        for problem in problems:
            print(f"  {problem}")
    return 1 if report["problems"] else 0


def _install(args: argparse.Namespace) -> int:
    from frontends.daemon.systemd import ENABLE_COMMAND, install_unit

    path, changed = install_unit()
    print(f"{'wrote' if changed else 'unchanged:'} {path}")
    print(f"enable and start it with:\n  {ENABLE_COMMAND}")
    return 0


def _repos(args: argparse.Namespace) -> int:
    from frontends.daemon import DaemonNotRunning

    try:
        projects = _client().call("GET", "/v1/repos")
    except DaemonNotRunning:
        from frontends.cli.context import open_store

        with open_store() as store:
            projects = [_builtins(p) for p in store.list_projects()]
    if args.json:
        print_json(projects)
    elif not projects:
        print("no repositories yet: a repository registers itself when a corral command runs in it")
    else:
        rows = [(p["name"], p["root"], short_stamp(p["created_at"])) for p in projects]
        print(format_table(("NAME", "ROOT", "REGISTERED"), rows))
    return 0


def _builtins(record: Any) -> Any:
    import msgspec

    return msgspec.to_builtins(record)
