"""The simulated agent's command line and environment, read into one frozen `Options`.

    corral-sim [PROMPT…] [--no-trust] [--crash-after 2 --exit-status 3] …     interactive
    corral-sim app-server [--listen stdio://] [-c key=value]…                   codex app-server
    corral-sim -p --input-format stream-json --output-format stream-json --verbose [--resume ID]

Every fault and sim switch can also come from the environment (`CORRAL_SIM_CRASH_AFTER=2`…, table `ENV`), so
a test can inject a fault into an agent whose command line corral builds itself; a flag wins over its
variable. Options of the real CLIs that change nothing here (`--model`, `--allowedTools`, `--listen`…) are
accepted and ignored, so corral's real argv runs unchanged; an unknown option is a usage error (exit 2), as in
the real CLIs.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["ENV", "Options", "UsageError", "parse_options", "version"]

_FALLBACK_VERSION = "0.1.0"


def version() -> str:
    """corral's installed version (the sim ships with it), or the version this source was cut as."""
    from importlib import metadata

    try:
        return metadata.version("corral")
    except metadata.PackageNotFoundError:
        return _FALLBACK_VERSION


class UsageError(Exception):
    """The command line does not parse; `main` prints it after the usage and exits 2."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.usage = usage


# dest → environment variable. Read only for options not given on the command line.
ENV: dict[str, str] = {
    "scenario": "CORRAL_SIM_SCENARIO",
    "record": "CORRAL_SIM_RECORD",
    "think": "CORRAL_SIM_THINK",
    "state_dir": "CORRAL_SIM_STATE",
    "task": "CORRAL_TASK",
    "no_trust": "CORRAL_SIM_NO_TRUST",
    "auto_approve": "CORRAL_SIM_AUTO_APPROVE",
    "crash_after": "CORRAL_SIM_CRASH_AFTER",
    "exit_status": "CORRAL_SIM_EXIT_STATUS",
    "crash_signal": "CORRAL_SIM_CRASH_SIGNAL",
    "hang": "CORRAL_SIM_HANG",
    "flood": "CORRAL_SIM_FLOOD",
    "slow_start": "CORRAL_SIM_SLOW_START",
    "ignore_input": "CORRAL_SIM_IGNORE_INPUT",
    "spawn_grandchild": "CORRAL_SIM_SPAWN_GRANDCHILD",
    "exit_after_signal": "CORRAL_SIM_EXIT_AFTER_SIGNAL",
    "not_logged_in": "CORRAL_SIM_NOT_LOGGED_IN",
    "offline": "CORRAL_SIM_OFFLINE",
}

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class Options:
    """What the sim was asked to be. `mode` is "interactive", "app-server" or "print" (claude's `-p`)."""

    mode: str = "interactive"
    prompt: str = ""
    trust: bool = True
    skip_permissions: bool = False
    auto_approve: bool = False
    scenario: str = ""
    record: str = ""
    think_s: float = 0.2
    task: str = ""
    state_dir: str = ""
    # launch-time faults
    crash_after_s: float | None = None
    exit_status: int = 1
    crash_signal: str = ""
    hang: bool = False
    flood_mb: float = 0.0
    slow_start_s: float = 0.0
    ignore_input: bool = False
    spawn_grandchild: bool = False
    exit_after_signal: bool = False
    not_logged_in: bool = False
    offline: bool = False
    # sessions
    resume: str = ""
    continue_last: bool = False
    session_id: str = ""
    # claude print mode
    input_format: str = "text"
    output_format: str = "text"
    verbose: bool = False
    include_partial_messages: bool = False
    replay_user_messages: bool = False
    permission_mode: str = "default"
    permission_prompt_tool: str = ""
    model: str = ""

    def state_path(self, cwd: str | Path | None = None) -> Path:
        """Where sessions are kept: $CORRAL_SIM_STATE, else `<cwd>/.corral-sim/`."""
        if self.state_dir:
            return Path(self.state_dir)
        return Path(cwd if cwd is not None else os.getcwd()) / ".corral-sim"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.format_usage())


_EPILOG = """\
directives (one a line in a prompt; plain text does the default work): see --directives or docs/sim.md
environment: CORRAL_TASK (the task /signal names), CORRAL_SIM_STATE (session files), and CORRAL_SIM_<FLAG>
for every fault switch (CORRAL_SIM_CRASH_AFTER=2, CORRAL_SIM_HANG=1, …); CORRAL_AGENT_TYPE (planner, coder,
reviewer, fixer, readiness) makes the sim play that role of corral's lifecycle (CORRAL_SIM_PLAN,
CORRAL_SIM_REVIEW: see docs/sim.md)

examples:
  corral-sim --no-trust "add a note"
  corral-sim --crash-after 1.5 --exit-status 3
  corral-sim app-server
  corral-sim -p --input-format stream-json --output-format stream-json --verbose"""


def _build_parser(app_server: bool) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="corral-sim app-server" if app_server else "corral-sim",
        description="corral's simulated coding agent: a claude-like screen, codex app-server or claude "
        "stream-json, driven by prompts of directives, with real faults.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("prompt_words", nargs="*", metavar="PROMPT", help="a first prompt, as real CLIs take one")
    add("--prompt", default=None, metavar="TEXT", help="a first prompt")
    add("--prompt-file", default=None, metavar="FILE", help="read the first prompt from FILE")
    add("--version", action="store_true", help="print the version and exit")
    add("--directives", action="store_true", help="list the directives and exit")

    sim = parser.add_argument_group("simulation")
    sim.add_argument("--no-trust", action="store_true", help="skip the trust screen")
    sim.add_argument(
        "--skip-permissions",
        "--dangerously-skip-permissions",
        dest="skip_permissions",
        action="store_true",
        help="never ask permission (and no trust screen)",
    )
    sim.add_argument("--auto-approve", action="store_true", help="never ask permission to edit or run")
    sim.add_argument("--scenario", metavar="FILE", help="steps and scripted turns (JSON or TOML)")
    sim.add_argument("--record", metavar="FILE", help="append every prompt received (JSON lines)")
    sim.add_argument("--think", type=float, metavar="S", help="seconds of work before a turn's output")
    sim.add_argument("--task", metavar="NAME", help="the task /signal names (default $CORRAL_TASK)")
    sim.add_argument("--state-dir", metavar="DIR", help="where sessions are kept (default .corral-sim/)")

    faults = parser.add_argument_group("faults at launch")
    faults.add_argument("--crash-after", type=float, metavar="S", help="crash S seconds after launch")
    faults.add_argument("--exit-status", type=int, metavar="N", help="status of a crash (default 1)")
    faults.add_argument("--crash-signal", metavar="SIG", help="crash by killing itself with SIG (KILL…)")
    faults.add_argument("--hang", action="store_true", help="hang after the banner")
    faults.add_argument("--flood", type=float, metavar="MB", help="write MB megabytes of output at launch")
    faults.add_argument("--slow-start", type=float, metavar="S", help="wait S seconds before the banner")
    faults.add_argument("--ignore-input", action="store_true", help="read input and never act on it")
    faults.add_argument(
        "--spawn-grandchild", action="store_true", help="start a setsid child that sleeps (escapes killpg)"
    )
    faults.add_argument("--exit-after-signal", action="store_true", help="exit 0 once a signal is emitted")
    faults.add_argument("--not-logged-in", action="store_true", help="fail like a CLI that is not logged in")
    faults.add_argument(
        "--offline",
        action="store_true",
        help="no network: exit 1 at start (interactive), fail every turn (sdk)",
    )

    real = parser.add_argument_group("options of the real CLIs")
    if app_server:
        real.add_argument("--listen", default="stdio://", help="only stdio:// is served")
        real.add_argument("-c", "--config", action="append", metavar="KEY=VALUE", help="ignored")
    else:
        real.add_argument("-p", "--print", dest="print_mode", action="store_true", help="print mode")
        real.add_argument("--input-format", choices=("text", "stream-json"), default="text")
        real.add_argument("--output-format", choices=("text", "json", "stream-json"), default="text")
        real.add_argument("--verbose", action="store_true")
        real.add_argument("--include-partial-messages", action="store_true")
        real.add_argument("--replay-user-messages", action="store_true")
        real.add_argument("-r", "--resume", default="", metavar="SESSION_ID")
        real.add_argument("-c", "--continue", dest="continue_last", action="store_true")
        real.add_argument("--session-id", default="", metavar="UUID")
        real.add_argument("--fork-session", action="store_true", help="ignored")
        real.add_argument("--permission-mode", default="default", metavar="MODE")
        real.add_argument("--permission-prompt-tool", default="", metavar="TOOL")
        for ignored in (
            "--allowedTools",
            "--allowed-tools",
            "--disallowedTools",
            "--disallowed-tools",
            "--append-system-prompt",
            "--system-prompt",
            "--max-turns",
            "--mcp-config",
            "--add-dir",
            "--fallback-model",
            "--settings",
        ):
            real.add_argument(ignored, action="append", metavar="VALUE", help=argparse.SUPPRESS)
    real.add_argument("-m", "--model", default="", metavar="MODEL")
    return parser


def _from_env(dest: str, env: Mapping[str, str]) -> str | None:
    name = ENV.get(dest)
    value = env.get(name, "") if name else ""
    return value if value != "" else None


def parse_options(
    argv: Sequence[str], env: Mapping[str, str] | None = None
) -> tuple[Options, dict[str, Any]]:
    """Options from `argv` (without the program name) and `env`; the second value holds the actions
    (`version`, `directives`) that end the program before it starts. Raises UsageError."""
    env = os.environ if env is None else env
    args_list = list(argv)
    app_server = bool(args_list) and args_list[0] == "app-server"
    parser = _build_parser(app_server)
    ns = parser.parse_args(args_list[1:] if app_server else args_list)
    actions = {"version": ns.version, "directives": ns.directives}

    def pick(dest: str, cast: Any, default: Any) -> Any:
        given = getattr(ns, dest, None)
        if given not in (None, False):
            return given
        raw = _from_env(dest, env)
        if raw is None:
            return default
        if cast is bool:
            return raw.strip().lower() in _TRUE
        try:
            return cast(raw)
        except ValueError:
            raise UsageError(f"{ENV[dest]}={raw!r} is not a valid value", parser.format_usage()) from None

    prompt = " ".join(ns.prompt_words)
    if ns.prompt is not None:
        prompt = ns.prompt
    if ns.prompt_file is not None:
        try:
            prompt = Path(ns.prompt_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read --prompt-file {ns.prompt_file}: {exc.strerror}") from None

    print_mode = getattr(ns, "print_mode", False)
    mode = "app-server" if app_server else "print" if print_mode else "interactive"
    options = Options(
        mode=mode,
        prompt=prompt,
        trust=not (pick("no_trust", bool, False) or ns.skip_permissions),
        skip_permissions=ns.skip_permissions,
        auto_approve=pick("auto_approve", bool, False),
        scenario=pick("scenario", str, ""),
        record=pick("record", str, ""),
        think_s=max(0.0, pick("think", float, 0.2)),
        task=pick("task", str, ""),
        state_dir=pick("state_dir", str, ""),
        crash_after_s=pick("crash_after", float, None),
        exit_status=pick("exit_status", int, 1),
        crash_signal=pick("crash_signal", str, ""),
        hang=pick("hang", bool, False),
        flood_mb=max(0.0, pick("flood", float, 0.0)),
        slow_start_s=max(0.0, pick("slow_start", float, 0.0)),
        ignore_input=pick("ignore_input", bool, False),
        spawn_grandchild=pick("spawn_grandchild", bool, False),
        exit_after_signal=pick("exit_after_signal", bool, False),
        not_logged_in=pick("not_logged_in", bool, False),
        offline=pick("offline", bool, False),
        resume=getattr(ns, "resume", ""),
        continue_last=getattr(ns, "continue_last", False),
        session_id=getattr(ns, "session_id", ""),
        input_format=getattr(ns, "input_format", "text"),
        output_format=getattr(ns, "output_format", "text"),
        verbose=getattr(ns, "verbose", False),
        include_partial_messages=getattr(ns, "include_partial_messages", False),
        replay_user_messages=getattr(ns, "replay_user_messages", False),
        permission_mode=getattr(ns, "permission_mode", "default"),
        permission_prompt_tool=getattr(ns, "permission_prompt_tool", ""),
        model=ns.model,
    )
    return options, actions
