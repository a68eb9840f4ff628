"""`corral chaos`: run tasks under a private daemon while injecting faults, and check that nothing is lost.

    corral chaos                          # 30 faults of every kind, a random seed (printed)
    corral chaos --faults 200 --seed 7    # a campaign that can be replayed
    corral chaos --kinds agent-kill,daemon-kill --json

The campaign runs in a sandbox as `corral demo` does (`frontends.cli.sandbox`: a scratch repository, database,
runtime directory and tmux server of its own, removed at the end unless --keep), with the chaos routes of its
daemon turned on (CORRAL_CHAOS=1) and a heart that outlasts every daemon-kill. The run is
`frontends.cli.chaos_run`; the faults `chaos_faults`, their schedule `chaos_schedule`, the invariants
`chaos_invariants`, the report `chaos_report`. docs/chaos.md explains each fault and invariant.

Exit 0 when every invariant held; 1 when one broke (or something unexpected happened), with the seed and the
command that replays the campaign; 2 for a usage error.
"""

from __future__ import annotations

import argparse
import secrets
import shlex
import sys
import time
from typing import Any

from frontends.cli.output import HelpFormatter, print_error, print_json, terminal_safe

__all__ = ["DEFAULT_FAULTS", "register"]

DEFAULT_FAULTS = 30

_DESCRIPTION = (
    "Fault injection, as a first-class use: run a task (the demo's plan by default) again and again in a "
    "private corral — a scratch repository, a daemon under its heart, a tmux server, all of its own — and "
    "inject faults from a seeded schedule at random moments: kill -9 of an agent, of the tmux server and of "
    "the daemon; SIGSTOP of an agent (a hang, released after a while); an exception inside an actor; "
    "malformed and duplicate signals; an output flood; and, when run as root, a full disk (a small tmpfs as "
    "CORRAL_HOME). When a task waits for a person by design (a failed wave, an agent that ended), the "
    "campaign answers as a person would, with the command the wait lists, and counts it.\n\n"
    "It stops once N faults were injected and the task in progress ended, and reports the faults by kind "
    "with their recovery times (p50, p99: from the fault to the system moving again), the tasks done, and "
    "the invariants: 0 lost signals, 0 doubled transitions, 0 duplicate agents, 0 leaked processes, 0 tasks "
    "stuck. docs/chaos.md says what each fault does, what recovery means, and how each invariant is "
    "checked.\n\n"
    "Exit 0 when every invariant held; 1 when one broke, printing the seed and the command that replays it."
)

_EPILOG = """\
examples:
  corral chaos
  corral chaos --faults 200 --seed 7
  corral chaos --kinds agent-kill,tmux-kill,daemon-kill --json | jq .invariants
  corral chaos --plan my-plan.md --keep

fault kinds: agent-kill, tmux-kill, daemon-kill, agent-stop, actor-crash,
  bad-signal, duplicate-signal, flood, disk-full (root only)"""


def register(groups: Any, summary: str) -> None:
    """Add `chaos` to the top-level sub-parsers."""
    parser = groups.add_parser(
        "chaos", help=summary, description=_DESCRIPTION, epilog=_EPILOG, formatter_class=HelpFormatter
    )
    parser.add_argument(
        "--faults",
        type=_positive_int,
        default=DEFAULT_FAULTS,
        metavar="N",
        help=f"inject N faults (default {DEFAULT_FAULTS})",
    )
    parser.add_argument(
        "--seed",
        type=_seed,
        default=None,
        metavar="S",
        help="the schedule's seed, to replay a campaign (default: a random one, printed)",
    )
    parser.add_argument(
        "--kinds",
        metavar="K1,K2…",
        help="inject only these kinds of fault (default: every kind; see below)",
    )
    parser.add_argument(
        "--plan",
        metavar="FILE",
        help="the task's content: a brief for the planner, or a plan (default: the demo's, 2 waves × 3)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON (progress on stderr)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch repository, database and daemon log"
    )
    parser.add_argument(
        "--think",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="how long each turn of a simulated agent takes (default 1): faults meet agents at work",
    )
    parser.add_argument(
        "--stall",
        type=_seconds,
        default=15.0,
        metavar="SECONDS",
        help="a task that does not move for this long with no waiting reason shown is stuck (default 15)",
    )
    parser.set_defaults(handler=_chaos)


def _chaos(args: argparse.Namespace) -> int:
    from frontends.cli.chaos_report import format_report
    from frontends.cli.chaos_run import Campaign, Options
    from frontends.cli.chaos_schedule import ALL_KINDS, parse_kinds
    from frontends.cli.demo import BRIEF
    from frontends.cli.inputs import read_file
    from frontends.cli.sandbox import (
        Sandbox,
        Scratch,
        corral_sim,
        private_environment,
        require_tools,
        terminate_as_interrupt,
    )
    from protocols.records import MAX_CONTENT_BYTES

    kinds = parse_kinds(args.kinds) if args.kinds is not None else ALL_KINDS
    content = read_file(args.plan, limit=MAX_CONTENT_BYTES) if args.plan else BRIEF
    sim = corral_sim()
    require_tools("corral chaos")
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    replay = ["corral", "chaos", "--faults", str(args.faults), "--seed", str(seed)]
    if args.kinds is not None:
        replay += ["--kinds", ",".join(kinds)]
    if args.plan:
        replay += ["--plan", args.plan]
    if args.think != 1.0:
        replay += ["--think", f"{args.think:g}"]
    options = Options(
        faults=args.faults,
        seed=seed,
        kinds=kinds,
        content=content,
        replay=shlex.join(replay),
        keep=args.keep,
        think_s=args.think,
        stall_s=args.stall,
    )
    stream = sys.stderr if args.json else sys.stdout
    began = time.monotonic()

    def say(text: str) -> None:
        try:
            print(terminal_safe(f"{time.monotonic() - began:7.1f}s  {text}"), file=stream, flush=True)
        except OSError:  # the reader went away: the campaign goes on, and cleans up
            pass

    say(f"chaos: {args.faults} faults, seed {seed}, kinds {','.join(kinds)}")
    sandbox = Sandbox(Scratch.make("corral-chaos-"), sim, name="chaos")
    campaign = Campaign(sandbox, options, say)
    changes = {**sandbox.scratch.environment(), **campaign.environment()}
    with private_environment(changes), terminate_as_interrupt():
        report = campaign.run()
    if args.json:
        print_json(report)
    else:
        print(format_report(report))
    if campaign.interrupted:
        print_error("interrupted")
        return 130
    if not report.ok:
        print_error(f"the campaign broke corral's promises (seed {seed}); replay it with: {report.replay}")
    return 0 if report.ok else 1


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"must be from 1 to 1000000, got {text}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be from 0 to 2**63-1, got {text}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 3600 seconds, got {text}")
    return value
