"""`corral-model`: read the command line, load the scenario, serve on 127.0.0.1 until told to stop.

    corral-model [--port PORT] [--scenario FILE|lifecycle] [--fault SPEC] [--log FILE]

The server's URL is the first line of stdout (flushed at once), so a test or a script reads it and goes
on; what it serves is said on stderr. Exit codes: 0 after SIGTERM or SIGINT, 1 when it cannot serve (the
port is taken, the log cannot be opened), 2 for a usage error or a bad scenario or fault.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from frontends.model.faults import FAULTS, FaultError, FaultSwitch, parse_fault
from frontends.model.requestlog import RequestLog
from frontends.model.scenario import Scenario, ScenarioError, load_scenario

__all__ = ["main"]

_EPILOG = f"""\
faults (--fault, or `fault = "…"` on a scenario turn): {", ".join(FAULTS)}
  with parameters after commas: rate-limit,retry-after=2,times=3 · slow,delay=0.5 · stall,seconds=10
examples:
  corral-model --port 0                                   # lifecycle scenario, a free port
  ANTHROPIC_BASE_URL=http://127.0.0.1:PORT ANTHROPIC_API_KEY=any claude -p "…" --allowedTools "Bash Write"
  corral-model --scenario my.toml --fault rate-limit,times=2 --log requests.jsonl
docs/model.md has the scenario format and what each fault looks like to a client."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corral-model",
        description="A scripted local model server: the Anthropic Messages API and the OpenAI Responses API, "
        "answered from a scenario, so real Claude Code and Codex CLIs work offline. Binds 127.0.0.1 only.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--port", type=int, default=0, help="the TCP port on 127.0.0.1 (default 0: a free one)"
    )
    parser.add_argument(
        "--scenario",
        default="lifecycle",
        metavar="FILE|lifecycle",
        help="a scenario file (TOML or .json), or lifecycle (default): play each corral role from its prompt",
    )
    parser.add_argument(
        "--fault", default="none", metavar="SPEC", help="a fault on every model request (default none)"
    )
    parser.add_argument("--log", type=Path, metavar="FILE", help="append a JSON line per request to FILE")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 2
    if not 0 <= args.port <= 65535:
        return _usage(parser, f"--port {args.port}: expected 0 (a free port) to 65535")
    try:
        fault = parse_fault(args.fault)
        scenario = Scenario.lifecycle() if args.scenario == "lifecycle" else load_scenario(args.scenario)
    except (FaultError, ScenarioError) as exc:
        return _usage(parser, str(exc) if isinstance(exc, ScenarioError) else f"--fault: {exc}")
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", args.port))
        sock.listen(128)
    except OSError as exc:
        sys.stderr.write(f"corral-model: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}\n")
        return 1
    try:
        log = RequestLog(args.log)
    except OSError as exc:
        sys.stderr.write(f"corral-model: cannot open the log {args.log}: {exc.strerror}\n")
        sock.close()
        return 1
    try:
        asyncio.run(_serve(sock, scenario, FaultSwitch(fault), log))
    finally:
        log.close()
    return 0


def _usage(parser: argparse.ArgumentParser, message: str) -> int:
    parser.print_usage(sys.stderr)
    sys.stderr.write(f"corral-model: error: {message}\n")
    return 2


async def _serve(sock: socket.socket, scenario: Scenario, faults: FaultSwitch, log: RequestLog) -> None:
    from aiohttp import web

    from frontends.model.server import ModelState, make_app

    state = ModelState(scenario, faults, log)
    runner = web.AppRunner(make_app(state), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock, shutdown_timeout=1.0).start()
    port = sock.getsockname()[1]
    print(f"http://127.0.0.1:{port}", flush=True)
    fault = faults.global_fault
    sys.stderr.write(
        f"corral-model: serving the {scenario.source or 'lifecycle'} scenario on http://127.0.0.1:{port}"
        f"{f' with fault {fault.spec}' if fault else ''}"
        f"{f', logging to {log.path}' if log.path else ''} (Ctrl-C stops it)\n"
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    state.stopping = True
    await runner.cleanup()


if __name__ == "__main__":
    raise SystemExit(main())
