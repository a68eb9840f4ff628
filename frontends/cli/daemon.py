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
directory), with its pid in daemon.pid and its log in daemon.log beside it. A command that needs the daemon
and finds none starts it (CORRAL_AUTOSTART=0: not). It runs under its heart, a small watchdog process that
restarts it after an abnormal exit (kill -9, a crash, the out-of-memory killer); under the systemd unit,
systemd is the heart. SIGTERM stops it in order; SIGHUP reloads the configuration."""

_EPILOG = """\
examples:
  corral daemon start
  corral daemon status --json | jq .heart
  corral daemon restart
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
        help="start the daemon in the background, under its heart (or --foreground)",
        description="Start the daemon's heart detached from this terminal, which starts the daemon and "
        "restarts it after an abnormal exit; their output is appended to daemon.log. Wait until the daemon "
        "answers. If one already runs, say so and exit 0. With --foreground the daemon runs in this process, "
        "with no heart, until SIGTERM or SIGINT (for systemd, which is then its heart, CI and debugging); "
        "its log goes to stderr.",
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
        help="stop the daemon in order, and its heart",
        description="Ask the daemon for an orderly shutdown and wait until it and its heart have exited: "
        "its socket disappears, pty and sdk agents are stopped (to be resumed at the next start), tmux "
        "agents keep running. The next command that starts it again says that it had been stopped. Exit 0 "
        "also when it was not running.",
        epilog="examples:\n  corral daemon stop",
        formatter_class=raw,
    )
    p.add_argument("--timeout", type=float, default=60.0, metavar="S", help="how long to wait (60)")
    p.set_defaults(handler=_stop)

    p = sub.add_parser(
        "restart",
        help="stop the daemon in order, then start it again under a new heart",
        description="`corral daemon stop`, then `corral daemon start`: a new daemon under a new heart (after "
        "the heart gave up and the cause is fixed, or to put a daemon whose heart is gone under one again). "
        "tmux agents keep running and are adopted by the new daemon.",
        epilog="examples:\n  corral daemon restart",
        formatter_class=raw,
    )
    p.add_argument("--timeout", type=float, default=60.0, metavar="S", help="how long to wait each way (60)")
    p.set_defaults(handler=_restart)

    p = sub.add_parser(
        "status",
        help="is the daemon running: pid, uptime, its heart, socket, repos, supervision",
        description="Show whether the daemon runs and, if it does, its pid, version, uptime, socket, "
        "database, repositories and the root supervisor's children; and its heart: whether it runs, how "
        "often it restarted the daemon, the daemon's last abnormal exit and why, and — if the heart gave up "
        "— why, and what to type. Exit 0 when the daemon runs, 1 when it does not.",
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
    started = start_daemon(client, timeout=args.timeout)
    heart = f", under its heart, pid {started.heart_pid}" if started.heart_pid else ""
    print(
        f"corral daemon started (pid {started.pid}{heart}) in {time.monotonic() - began:.2f} s; "
        f"socket {client.socket}, log {client.paths.log_file}"
    )
    return 0


def _stop(args: argparse.Namespace) -> int:
    from protocols.heart import utc_now

    client = _client()
    stopped = client.stop(timeout=args.timeout)
    if client.paths.dir.is_dir():  # the next autostart says the daemon had been stopped on purpose
        from frontends.daemon.heartfile import write_atomically

        write_atomically(client.paths.stopped_file, f"{utc_now()}\n".encode())
    print(_stopped_line(stopped.daemon_pid, stopped.heart_pid))
    return 0


def _stopped_line(daemon: int | None, heart: int | None) -> str:
    if daemon is None and heart is None:
        return "corral daemon is not running"
    if daemon is None:
        return f"corral daemon was not running; its heart (pid {heart}) stopped"
    return f"corral daemon stopped (pid {daemon})" + (f", and its heart (pid {heart})" if heart else "")


def _restart(args: argparse.Namespace) -> int:
    from frontends.daemon.spawn import start_daemon

    client = _client()
    stopped = client.stop(timeout=args.timeout)
    print(_stopped_line(stopped.daemon_pid, stopped.heart_pid))
    began = time.monotonic()
    started = start_daemon(client, timeout=args.timeout)
    heart = f", under its heart, pid {started.heart_pid}" if started.heart_pid else ""
    print(f"corral daemon started (pid {started.pid}{heart}) in {time.monotonic() - began:.2f} s")
    return 0


def _status(args: argparse.Namespace) -> int:
    from frontends.daemon import DaemonNotRunning

    client = _client()
    try:
        status = client.call("GET", "/v1/status")
    except DaemonNotRunning:
        return _status_not_running(client, as_json=args.json)
    if args.json:
        print_json({"running": True, **status})
        return 0
    repos = status["repos"]
    names = ", ".join(r["name"] for r in repos)
    fields = [
        ("pid", str(status["pid"])),
        ("version", status["version"]),
        ("started", f"{short_stamp(status['started_at'])} UTC (up {_duration(status['uptime_s'])})"),
        *_heart_fields(status.get("heart")),
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


def _status_not_running(client: DaemonClient, *, as_json: bool) -> int:
    """No daemon answers: say so, and what its heart left behind (restarting it, or why it gave up)."""
    import msgspec

    from frontends.daemon.heartfile import heart_report

    report = heart_report(client.paths, None)
    heart = msgspec.to_builtins(report)
    if as_json:
        print_json({"running": False, "socket": str(client.socket), "runtime_dir": str(client.paths.dir),
                    "heart": heart})  # fmt: skip
        return 1
    state = heart["state"]
    if report.running and state is not None and state["state"] in ("starting", "restarting"):
        print(f"corral daemon: not running — its heart (pid {report.pid}) is starting it again")
    else:
        print("corral daemon: not running")
    fields = [*_heart_fields(heart), ("socket", str(client.socket)), ("log", str(client.paths.log_file))]
    print(format_fields(fields))
    return 1


def _heart_fields(heart: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The heart, for people: who restarts the daemon, how often it did, the last abnormal exit, a problem."""
    if heart is None:
        return []
    state = heart["state"]
    fields: list[tuple[str, str]] = []
    by = heart["supervised_by"]
    if heart["running"]:
        restarts = state["restarts"] if state else 0
        line = f"pid {heart['pid']}, running; {restarts} restart{'s' if restarts != 1 else ''} of the daemon"
        if state:
            line += f" (gives up past {state['max_restarts']} within {state['period_s']:g} s)"
            if state["adopted"]:
                line += "; adopted this daemon after its previous heart was lost"
            if state["state"] == "restarting" and state["next_restart_in_s"] is not None:
                line += f"; restarting it in {state['next_restart_in_s']:g} s"
        fields.append(("heart", line))
    elif by == "systemd":
        fields.append(("heart", "systemd (the user unit restarts the daemon if it fails)"))
    elif by == "foreground":
        fields.append(("heart", "none: started with --foreground, nothing restarts the daemon if it dies"))
    elif state is not None and state["state"] == "gave_up":
        fields.append(("heart", f"gave up: {state['gave_up']}"))
    elif by == "heart":
        fields.append(("heart", f"not running: {heart['problem']}"))
    else:
        fields.append(("heart", "not running"))
    if state is not None and state["last_exit"] is not None:
        last = state["last_exit"]
        fields.append(("last exit", f"{last['reason']} at {short_stamp(last['at'])} UTC (pid {last['pid']})"))
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
