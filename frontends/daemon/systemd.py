"""The systemd user unit that runs the daemon: `corral daemon install` writes it, a person enables it.

    path = install_unit()            # ~/.config/systemd/user/corral.service (or under $XDG_CONFIG_HOME)
    print(ENABLE_COMMAND)            # corral never runs systemctl itself

The unit runs `<absolute corral> daemon start --foreground` (Type=simple: systemd tracks the process it
started), restarts it when it fails (Restart=on-failure: an orderly stop exits 0 and stays stopped), and
carries the environment the daemon depends on: CORRAL_HOME and CORRAL_RUNTIME_DIR when they are set (so the
CLI and the service agree on the database and the socket), and PATH, because the user manager's PATH is
minimal and the agents the daemon starts (claude, codex…) usually live in ~/.local/bin or a node manager's
directory. Re-run `corral daemon install` after changing any of them.

`KillMode=process`: on `systemctl stop`, systemd signals only the daemon, which stops its pty and sdk agents
itself. Agents in corral's tmux server are meant to outlive the daemon and be adopted by the next one; with
the default (control-group) systemd would kill them together with the daemon.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["ENABLE_COMMAND", "UNIT_NAME", "corral_argv", "install_unit", "render_unit", "unit_path"]

UNIT_NAME = "corral.service"
ENABLE_COMMAND = "systemctl --user daemon-reload && systemctl --user enable --now corral"
_CARRIED_ENV = ("CORRAL_HOME", "CORRAL_RUNTIME_DIR", "PATH")


def unit_path(env: Mapping[str, str] | None = None) -> Path:
    """$XDG_CONFIG_HOME/systemd/user/corral.service, else ~/.config/systemd/user/corral.service."""
    env = os.environ if env is None else env
    config = (
        Path(env["XDG_CONFIG_HOME"]).expanduser() if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    )
    return config / "systemd" / "user" / UNIT_NAME


def corral_argv() -> list[str]:
    """An absolute command that runs this corral: its console script next to the interpreter when there is
    one, else the interpreter running the CLI module."""
    script = Path(sys.executable).with_name("corral")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script.absolute())]
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == "corral" and argv0.is_file():
        return [str(argv0.absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "frontends.cli.main"]


def _quote(word: str) -> str:
    """One word of a systemd command line or assignment: `%` doubled (systemd expands %-specifiers), then
    quoted if it has a space, a quote or a backslash. (ExecStart also expands `$`: render_unit doubles it.)"""
    word = word.replace("%", "%%")
    if any(c in word for c in " \t\"'\\"):
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


def render_unit(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The unit file's text for the daemon started by `argv` (+ `daemon start --foreground`)."""
    exec_start = " ".join(_quote(w.replace("$", "$$")) for w in [*argv, "daemon", "start", "--foreground"])
    lines = [
        "# Written by `corral daemon install`; re-run it after moving corral or changing its environment.",
        "[Unit]",
        "Description=corral daemon: supervises fleets of AI coding agents",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={exec_start}",
        "Restart=on-failure",
        "RestartSec=2",
        "KillMode=process",
        "TimeoutStopSec=90",
    ]
    for name in _CARRIED_ENV:
        if value := env.get(name):
            if name != "PATH":
                value = str(Path(value).expanduser().absolute())
            lines.append(f"Environment={_quote(f'{name}={value}')}")
    lines += ["", "[Install]", "WantedBy=default.target", ""]
    return "\n".join(lines)


def install_unit(env: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """Write the unit for this corral; returns its path and whether it changed (False: already the same)."""
    env = os.environ if env is None else env
    path = unit_path(env)
    text = render_unit(corral_argv(), env)
    try:
        if path.read_text(encoding="utf-8") == text:
            return path, False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path, True
