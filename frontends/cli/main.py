"""`corral`: the entry point. Builds the argument parser, runs one command, turns errors into exit codes.

    corral task list --json
    corral signal emit planner_finished my-task

Every command group is a module of its own (`tasks`, `signals`, `doctor`) with a `register()` function.
`main()` imports only the module of the group named on the command line (`corral --help` lists the groups
from a table without importing any), and each module imports the store, subprocess or msgspec inside the
function that runs its command. Agents call `corral signal emit` all the time: it must not pay for the
dashboard, the web server or the actors (no command of this package imports aiohttp, pykka or blessed).

Exit codes: 0 success; 1 a failure (`CorralError`, or a bug: an unexpected exception, reported as such);
2 a usage error (bad arguments, an unknown name, not in a git repository); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import import_module
from typing import Any, NoReturn

from frontends.cli.output import BUG_HINT, HelpFormatter, print_error
from protocols.errors import CorralError, UsageError

__all__ = ["build_parser", "main", "version"]

_FALLBACK_VERSION = "0.1.0"
_PROG = "corral"

_EPILOG = """\
examples:
  corral                                     the dashboard of this repository (on a terminal)
  corral doctor                              check git, tmux, the data directory and the database
  corral task create fix-login --title "Fix the login form" --topic auth
  corral task list
  corral task transition fix-login plan_start
  corral signal emit planner_finished fix-login
  corral demo                                plan, implement in waves, review and verify a task, simulated

Run inside a git repository: the project is the main repository's root (also from a linked worktree).
The database lives in $CORRAL_HOME (default: $XDG_DATA_HOME/corral, else ~/.local/share/corral).
Set CORRAL_DEBUG=1 to see the traceback of an unexpected error."""


class ArgumentError(UsageError):
    """The command line does not parse; carries the usage of the (sub)command that refused it."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.usage = usage


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting, so `main()` reports every error the same way.

    A sub-command refuses an argument it does not know itself, with its own usage: argparse would hand it up
    to the top-level parser, which knows nothing of the sub-command and prints `corral [-h] COMMAND`.
    """

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("corral").strip()
        raise ArgumentError(f"{command}: {message}" if command else message, self.format_usage())

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras and self.prog != _PROG:  # a sub-command's: everything after its name was its to parse
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


class _VersionAction(argparse.Action):
    """`--version`, computed only when asked for (importlib.metadata costs milliseconds)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> NoReturn:
        print(f"corral {version()}")
        raise SystemExit(0)


def version() -> str:
    """The installed distribution's version; when corral runs uninstalled, the version this source was cut as
    (a test keeps `_FALLBACK_VERSION` equal to pyproject.toml's)."""
    from importlib import metadata

    try:
        return metadata.version("corral")
    except metadata.PackageNotFoundError:
        return _FALLBACK_VERSION


# name → (module, one-line help). Data, so that `corral --help` lists every group while a command imports one.
_GROUPS: dict[str, tuple[str, str]] = {
    "task": ("frontends.cli.tasks", "create, list, show and move tasks"),
    "signal": ("frontends.cli.signals", "emit, list and process signals (requests to move a task)"),
    "doctor": ("frontends.cli.doctor", "check that this machine can run corral, and how to fix it"),
    "daemon": ("frontends.cli.daemon", "start, stop and inspect the daemon; list its repositories"),
    "audit": ("frontends.cli.audit", "show the audit log: transitions, agents, restarts, daemon events"),
    "setup": ("frontends.cli.setup", "write .corral/config.toml with the agent program found on PATH"),
    "instance": ("frontends.cli.instances", "start, list and steer agents (through the daemon)"),
    "demo": ("frontends.cli.demo", "run one task end to end with simulated agents, in a scratch repository"),
    "chaos": ("frontends.cli.chaos", "inject faults while tasks run in a scratch corral: is anything lost?"),
    "dashboard": ("frontends.cli.dashboard", "the live view of tasks and agents (also `corral` alone)"),
}


def _group_named(argv: Sequence[str]) -> str | None:
    """The command group argv names: its first word that is not an option (corral's own take no value)."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in _GROUPS else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser, complete for the group `only` and without the others (a command line that names a group
    needs no other: `corral signal emit` is on agents' hot path); without `only`, every group is listed, its
    module not imported."""
    parser = _Parser(
        prog=_PROG,
        description="corral supervises fleets of AI coding agents. Tasks move through a lifecycle\n"
        "(ready → planning → implementing → reviewing → verifying → done), driven by signals.",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    groups = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    groups.required = True
    for name, (module, summary) in _GROUPS.items():
        if name == only:
            import_module(module).register(groups, summary)
        elif only is None:  # enough for `corral --help` and for argparse to name the choices
            groups.add_parser(name, help=summary, formatter_class=HelpFormatter)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one corral command; returns the exit code (the console script passes it to `sys.exit`)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list and sys.stdin.isatty() and sys.stdout.isatty():
        args_list = ["dashboard"]  # `corral` alone, on a terminal: the dashboard (elsewhere: the usage)
    try:
        parser = build_parser(only=_group_named(args_list))
        try:
            args = parser.parse_args(args_list)
        except SystemExit as done:  # --help and --version end here
            return done.code if isinstance(done.code, int) else 0
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # inside the try: a closed pipe is reported here, not at interpreter exit
        return code
    except ArgumentError as exc:
        sys.stderr.write(exc.usage)
        print_error(str(exc))
        return exc.exit_code
    except CorralError as exc:
        print_error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        print_error("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (`corral task list | head`): no error, and no complaint from Python at exit.
        _silence_stdout()
        return 0
    except Exception as exc:
        if os.environ.get("CORRAL_DEBUG") == "1":
            import traceback

            traceback.print_exc()
        print_error(f"unexpected {type(exc).__name__}: {exc}\n{BUG_HINT}")
        return 1


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    raise SystemExit(main())
