"""`corral-sim`: read the command line, arm the launch-time faults, run the mode asked for.

    corral-sim [PROMPT]                       interactive (interactive.py)
    corral-sim app-server                     codex app-server JSON-RPC (sdk_codex.py)
    corral-sim -p [--input-format stream-json --output-format stream-json --verbose]   claude (sdk_claude.py)

Exit codes: what the agent was told (`/exit N`, `--crash-after S --exit-status N`), 0 at the end of input,
1 for a refused trust screen or "not logged in", 2 for a usage error, 143 on SIGTERM, 129 on SIGHUP, 130 on
SIGINT. Start-up imports only the standard library and this package (it runs once per agent restart).
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType

from frontends.sim import faults
from frontends.sim.options import Options, UsageError, parse_options, version
from frontends.sim.scenario import Scenario, ScenarioError, load_scenario

__all__ = ["main"]

_EXIT_ON = {signal.SIGTERM: 143, signal.SIGHUP: 129, signal.SIGINT: 130}


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """Leave quietly with 128 + the signal, the terminal restored; or re-raise a signal the process is
    killing itself with (`/crash TERM`), so it really dies by it."""
    if faults.dying_by() == signum:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
        return
    faults.quit(_EXIT_ON[signum])


def _arm(options: Options) -> None:
    """The launch-time faults that are the same in every mode."""
    if options.crash_after_s is not None:
        faults.crash_later(options.crash_after_s, options.exit_status, options.crash_signal)
    if options.slow_start_s:
        time.sleep(options.slow_start_s)
    if options.spawn_grandchild:
        faults.spawn_grandchild()


def _print_directives() -> None:
    from frontends.sim.directives import DIRECTIVES

    width = max(len(f"/{name} {d.usage}") for name, d in DIRECTIVES.items())
    for name, directive in DIRECTIVES.items():
        print(f"  {f'/{name} {directive.usage}':<{width}}  {directive.summary}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulated agent; returns only for --help, --version, --directives and usage errors."""
    try:
        options, actions = parse_options(sys.argv[1:] if argv is None else argv)
    except SystemExit as done:  # --help
        return done.code if isinstance(done.code, int) else 0
    except UsageError as exc:
        sys.stderr.write(exc.usage)
        sys.stderr.write(f"corral-sim: error: {exc}\n")
        return 2
    if actions["version"]:
        print(f"corral-sim {version()}")
        return 0
    if actions["directives"]:
        _print_directives()
        return 0
    try:
        scenario = load_scenario(options.scenario) if options.scenario else Scenario()
    except ScenarioError as exc:
        sys.stderr.write(f"corral-sim: error: {exc}\n")
        return 2
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # a reader that went away ends us, as it would a C program
    for signum in _EXIT_ON:
        signal.signal(signum, _on_signal)
    faults.install_wakeup()
    _arm(options)
    if options.mode == "app-server":
        from frontends.sim import sdk_codex

        sdk_codex.run(options, scenario)
    elif options.mode == "print":
        from frontends.sim import sdk_claude

        sdk_claude.run(options, scenario)
    else:
        from frontends.sim import interactive

        interactive.run(options, scenario)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
