"""`corral signal …`: emit a signal (what agents call when they finish a step), list signals, and apply them
without the daemon.

A signal is a durable request to move a task, written to the store as `pending` and applied exactly once by
the daemon's signal claimer, which `emit` wakes with a poke on its socket (docs/signals.md); with no daemon,
`emit` starts one (`autostart.py`: a person's emit waits for it, an agent's does not). `emit` is on the
agents' hot path: it imports the store, the signal table and the poke, nothing else while a daemon runs.
`process` is the claimer's work done in the foreground, for scripts, CI and debugging: it imports the
sentinels and the daemon client inside its handler.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from frontends.cli.context import add_project_option, open_project
from frontends.cli.output import (
    HelpFormatter,
    format_table,
    positive_int,
    print_json,
    short_stamp,
    terminal_safe,
)
from protocols.errors import ConflictError, UsageError

if TYPE_CHECKING:
    from actors.sentinels import BridgeResult
    from actors.store import Store
    from protocols.records import SignalOutcome

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
  corral signal list --task fix-login --limit 10 --json
  corral signal process --once         # apply the pending signals without the daemon (CI, debugging)"""

_POLL_S = 0.5
"""How often `signal process` looks for new signals and sentinels between pokes."""
_SETTLE_S = 0.2
"""A sentinel younger than this may still be being written: left for the next look (as by the claimer)."""


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
        f"checked now; the signal is applied by the daemon, exactly once. With {MANAGED_ENV}=1 in the "
        'environment (set in the sessions corral starts) the source is "agent", which may not send user-only '
        'events; otherwise it is "user". Types take hyphens or underscores. If no daemon runs, emit starts '
        'one ("started the corral daemon, pid N" on stderr); an agent\'s emit does not wait for it. '
        "CORRAL_AUTOSTART=0: the signal waits for the daemon's next start.",
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
    add_project_option(p)
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
    add_project_option(p)
    p.set_defaults(handler=_list)

    p = sub.add_parser(
        "process",
        help="apply this project's pending signals without the daemon (scripts, CI, debugging)",
        description="Apply this project's pending signals here, without the daemon: first the sentinel files "
        "in .corral/signals/ of the repository and of its worktrees are bridged into signals, then every "
        "pending signal is applied, oldest first, each exactly once, printing one line per signal "
        "(signal 12 done: ready → planning / signal 13 failed: <why>) and a summary. Without --once it "
        "keeps going until Ctrl-C (exit 0): it is woken by `corral signal emit` and otherwise looks every "
        f"{_POLL_S:g} s (a poll: this is a tool for debugging and CI, not the daemon). Applying a signal "
        "moves the task and records the side effects it asks for (start an agent, a wave) in the outbox; "
        "only the daemon carries them out, when it next runs. Refuses while a daemon runs: the daemon "
        "applies signals itself. A failed signal is an outcome, not an error: the exit status is 0.",
        epilog="examples:\n  corral signal process --once\n  corral signal process --once --json\n"
        "  corral signal process              # until Ctrl-C",
        formatter_class=raw,
    )
    p.add_argument(
        "--once", action="store_true", help="stop when no signal is pending instead of waiting for more"
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the outcomes as JSON: with --once a list; otherwise one object per line as they come",
    )
    add_project_option(p)
    p.set_defaults(handler=_process)


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
    print(f"signal {signal.id} {signal.status}: {signal.signal_type} {signal.task}", flush=True)
    from frontends.cli.autostart import act_on_change, wake_or_start_detached

    if source is Source.AGENT:
        wake_or_start_detached()  # never waits: agents call this all the time
    else:
        act_on_change()
    return 0


def _list(args: argparse.Namespace) -> int:
    statuses = [
        part.strip().lower() for text in args.status or () for part in text.split(",") if part.strip()
    ]
    unknown = [s for s in statuses if s not in SIGNAL_STATUSES]
    if unknown:
        raise UsageError(f'unknown signal status "{unknown[0]}"; statuses are: {", ".join(SIGNAL_STATUSES)}')
    with open_project(args.project) as (store, project):
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


# -- process -----------------------------------------------------------------------------------------------


def _process(args: argparse.Namespace) -> int:
    import threading
    from pathlib import Path

    from actors.sentinels import bridge, recover_in_flight, scan
    from actors.store.db import connect
    from actors.wake import WakeListener
    from frontends.daemon.client import DaemonClient

    pong = DaemonClient().ping()
    if pong is not None:
        raise ConflictError(_daemon_running(pong.get("pid", "?")))
    report = _Report(as_json=args.json, stream=not args.once)
    woken = threading.Event()
    with open_project(args.project) as (store, project):
        root = Path(project.root)
        claimer = f"cli:{os.getpid()}"
        # The wake socket's lock is what makes this the only applier and sentinel bridger here (a daemon
        # that starts meanwhile, another `signal process`); holding the socket also lets `emit` wake us.
        try:
            listener = WakeListener(woken.set).start()
        except ConflictError as exc:
            raise ConflictError(f"cannot process signals: {exc}") from None
        watch = connect(store.path, busy_timeout_ms=5000)
        try:
            report.sentinels(store, project.id, recover_in_flight(store, project.id, root))
            while True:
                woken.clear()
                seen = watch.execute("PRAGMA data_version").get  # before reading: a later commit shows
                settle = 0.0 if args.once else _SETTLE_S
                results = [bridge(store, project.id, s) for s in scan(root, settle_s=settle)]
                report.sentinels(store, project.id, results)
                while outcomes := store.apply_pending(claimer, project_id=project.id):
                    report.outcomes(outcomes)
                if args.once:
                    break
                report.waiting(project.name)
                while (
                    not woken.wait(_POLL_S)
                    and watch.execute("PRAGMA data_version").get == seen
                    and not scan(root, settle_s=settle)
                ):
                    pass
        except KeyboardInterrupt:
            pass  # Ctrl-C is how the watch ends: a transaction it cut short rolled back, nothing is lost
        finally:
            watch.close()
            listener.close()
        report.summary(project.name)
    return 0


def _daemon_running(pid: object) -> str:
    return (
        f"the daemon is running (pid {pid}): it applies signals itself; stop it first (corral daemon stop) "
        "or just wait. (Applying here would be safe, each signal is one transaction, but the daemon also "
        "carries out the side effects signals ask for, such as starting agents, which "
        "`corral signal process` does not.)"
    )


class _Report:
    """What `signal process` prints: a line per signal or a JSON outcome, sentinel problems, a summary."""

    def __init__(self, *, as_json: bool, stream: bool) -> None:
        self.as_json = as_json
        self.stream = stream  # without --once: print (and flush) as outcomes come, JSON one per line
        self.kept: list[SignalOutcome] = []
        self.done = self.failed = self.bridged = self.bad_sentinels = 0
        self.said_waiting = False

    def outcomes(self, outcomes: list[SignalOutcome]) -> None:
        import sys

        for outcome in outcomes:
            signal = outcome.signal
            if outcome.applied:
                self.done += 1
            else:
                self.failed += 1
            if self.as_json and self.stream:
                import msgspec

                print(msgspec.json.encode(msgspec.to_builtins(outcome)).decode())
            elif self.as_json:
                self.kept.append(outcome)
            else:
                print(terminal_safe(f"signal {signal.id} {signal.status}: {signal.result}"))
        sys.stdout.flush()

    def sentinels(self, store: Store, project_id: int, results: list[BridgeResult]) -> None:
        """Count the bridged files; report the failed ones (stderr, and a warn audit event, as the daemon)."""
        import sys

        for result in results:
            if result.status == "bridged":
                self.bridged += 1
            elif result.status == "failed":
                self.bad_sentinels += 1
                where = result.failed_path or result.sentinel.path
                message = f"sentinel {result.sentinel.where} moved to {where}: {result.reason}"
                print(terminal_safe(f"corral: warning: {message}"), file=sys.stderr)
                store.record_audit(
                    project_id,
                    "sentinel_failed",
                    message,
                    task=result.sentinel.task,
                    level="warn",
                    detail={"sentinel": result.sentinel.where, "reason": result.reason},
                )

    def waiting(self, project: str) -> None:
        import sys

        if not self.said_waiting:
            print(f"waiting for signals of project {project} (Ctrl-C to stop)", file=sys.stderr, flush=True)
            self.said_waiting = True

    def summary(self, project: str) -> None:
        if self.as_json:
            if not self.stream:
                print_json(self.kept)
            return
        total = self.done + self.failed
        if total:
            line = f"{_count(total, 'signal')} in project {project}: {self.done} done, {self.failed} failed"
        else:
            line = f"no pending signals in project {project}"
        if self.bridged or self.bad_sentinels:
            line += f"; {_count(self.bridged, 'sentinel file')} bridged"
            if self.bad_sentinels:
                line += f", {self.bad_sentinels} moved to failed/"
        if self.done:
            line += " (their side effects, such as starting agents, wait for the daemon)"
        print(line)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
