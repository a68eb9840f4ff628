"""Driving the real dashboard the way a person does: `corral dashboard` in a terminal (a private tmux server,
never corral's own and never the person's), keys by `send-keys`, the screen by `capture-pane`.

    with Dashboard.open(repo, env) as dash:        # env: the corral variables of the test's daemon
        dash.wait_for("fix-login")                 # polls the screen until the text shows (fails with it)
        dash.keys("j", "Enter")
        dash.screen()                              # the screen as plain text

The daemon and corral's tmux server are the test's (CORRAL_RUNTIME_DIR, CORRAL_TMUX_SOCKET); the dashboard's
terminal is a second tmux server on a socket of its own, killed on exit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.integration.cli_kit import CORRAL, clean_env

__all__ = ["SIM", "Dashboard", "wait_for"]

SIM = str(Path(sys.executable).with_name("corral-sim"))
_TMUX_TIMEOUT_S = 10.0
_POLL_S = 0.02


def wait_for(
    predicate: Callable[[], Any], timeout: float, what: str, shown: Callable[[], str] | None = None
) -> Any:
    """Poll `predicate` until it is truthy; fail naming `what` (and the screen, `shown`) after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            screen = f"\n--- the screen ---\n{shown()}" if shown is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{screen}")
        time.sleep(_POLL_S)


class Dashboard:
    """One `corral dashboard` running in a tmux session of a private server."""

    def __init__(self, socket: str, session: str) -> None:
        self.socket = socket
        self.session = session

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=_TMUX_TIMEOUT_S,
            check=check,
        )

    @classmethod
    @contextmanager
    def open(
        cls,
        repo: Path,
        *,
        width: int = 160,
        height: int = 45,
        outer_tmux: bool = True,
        args: tuple[str, ...] = (),
        extra_env: dict[str, str] | None = None,
    ) -> Iterator[Dashboard]:
        """Start `corral dashboard ARGS` in `repo`. `outer_tmux` False runs it as if in a plain terminal
        ($TMUX unset); True leaves $TMUX set, as for a person who runs corral inside their own tmux."""
        socket = f"corral-dash-{uuid.uuid4().hex[:8]}"
        dash = cls(socket, "dash")
        env = clean_env() | (extra_env or {})
        env.pop("TMUX", None)
        env.pop("TMUX_PANE", None)
        env["TERM"] = "xterm-256color"
        script = Path(tempfile.mkdtemp(prefix="crl-dash-", dir="/tmp")) / "run.sh"
        # The session's command: the dashboard, then a marker so a test can tell it exited (and how).
        unset = "" if outer_tmux else "unset TMUX TMUX_PANE; "
        argv = " ".join(_shell_quote(a) for a in (CORRAL, "dashboard", *args))
        script.write_text(f'{unset}{argv}; echo "[dashboard exited: $?]"; sleep 600\n')
        command = ["tmux", "-L", socket, "-f", "/dev/null", "new-session", "-d", "-s", "dash"]
        command += ["-x", str(width), "-y", str(height), "-c", str(repo)]
        for key, value in env.items():
            command += ["-e", f"{key}={value}"]
        command += ["sh", str(script)]
        subprocess.run(command, env=env, capture_output=True, text=True, timeout=_TMUX_TIMEOUT_S, check=True)
        try:
            yield dash
        finally:
            dash.tmux("kill-server", check=False)
            shutil.rmtree(script.parent, ignore_errors=True)

    def screen(self, ansi: bool = False) -> str:
        args = ["capture-pane", "-p", "-t", self.session] + (["-e"] if ansi else [])
        return self.tmux(*args).stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        """Press `keys` (tmux key names: "j", "Enter", "C-q", "Escape"); `literal`: type the text as is."""
        self.tmux("send-keys", "-t", self.session, *(["-l"] if literal else []), *keys)

    def type(self, text: str) -> None:
        self.keys(text, literal=True)

    def wait_for(self, text: str | Callable[[str], Any], timeout: float = 30.0, what: str = "") -> Any:
        """Wait until the screen shows `text` (or `text(screen)` is truthy); returns the screen (or that)."""
        if isinstance(text, str):

            def shows() -> str | None:
                screen = self.screen()
                return screen if text in screen else None

            return wait_for(shows, timeout, what or repr(text), self.screen)
        return wait_for(lambda: text(self.screen()), timeout, what or "the screen", self.screen)

    def wait_gone(self, text: str, timeout: float = 30.0) -> str:
        return self.wait_for(lambda s: s if text not in s else None, timeout, f"{text!r} to go away")

    def exited(self) -> str | None:
        """The dashboard's exit status line, once it has exited."""
        for line in self.screen().splitlines():
            if line.startswith("[dashboard exited:"):
                return line
        return None

    def resize(self, width: int, height: int) -> None:
        self.tmux("resize-window", "-t", self.session, "-x", str(width), "-y", str(height))


def _shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def corral_env() -> dict[str, str]:
    """The corral variables of the test (its home, runtime dir, tmux socket, autostart)."""
    keys = ("CORRAL_HOME", "CORRAL_RUNTIME_DIR", "CORRAL_TMUX_SOCKET", "CORRAL_AUTOSTART")
    return {k: os.environ[k] for k in keys if k in os.environ}
