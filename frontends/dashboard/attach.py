"""Handing the terminal to an agent until the person detaches with ctrl-q (or ctrl+space).

    result = attach(view, sys.stdout)      # blocks until detached; "" or what went wrong (a toast)

**tmux agents** are attached with tmux itself, on corral's tmux server (the argv the daemon gives in
`InstanceView.attach`). Before attaching, ctrl-q and ctrl+space are bound to `detach-client` in the root key
table of *corral's* server — never the person's own tmux server — so they detach at once, wherever this
runs. Inside the person's own tmux (`$TMUX` set), the nested client is started without `$TMUX` (tmux refuses
to nest otherwise); the outer tmux does not bind ctrl-q, so the key reaches the inner client, which detaches,
and the outer session is left alone (`C-b d` would have detached the outer one).

**pty agents** are the daemon's children: their terminal is proxied by the daemon over a websocket
(frontends/daemon/attach.py). Here, the terminal is put in raw mode, every byte typed is sent on, ctrl-q
(0x11) and ctrl+space (0x00) detach, and each screen the daemon sends is drawn whole.

**sdk agents** have no terminal: `attach` says so (the person types to them with `i`).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import termios
import tty
from collections.abc import Iterator
from typing import Any, TextIO

from frontends.daemon.client import DaemonClient
from protocols.instances import DETACH_KEYS

__all__ = ["DETACH_BYTES", "DETACH_KEYS", "attach", "attach_env", "attach_session", "detach_bindings"]

DETACH_BYTES = frozenset({0x11, 0x00})
"""What those keys send on a terminal: ctrl-q and ctrl+space."""
_TMUX_TIMEOUT_S = 5.0


def attach_env(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """The environment of the nested tmux client: the person's, without the variables that make tmux
    refuse to attach from inside another tmux session."""
    return {k: v for k, v in environ.items() if k not in ("TMUX", "TMUX_PANE")}


def detach_bindings(server_argv: tuple[str, ...]) -> list[list[str]]:
    """The tmux commands that make ctrl-q and ctrl+space detach on the server `server_argv` names
    (`("tmux", "-L", "corral")`)."""
    return [[*server_argv, "bind-key", "-n", key, "detach-client"] for key in DETACH_KEYS]


def attach(view: Any, out: TextIO, client: DaemonClient | None = None) -> str:
    """Attach this terminal to the instance `view` (an InstanceView) until detached. Returns "" when it
    went as planned, else what went wrong (shown as a toast by the caller)."""
    if view.status in ("paused", "exited", "failed"):
        hint = "r resumes it" if view.status == "paused" else "R restarts it"
        return f"{view.title} is {view.status}: there is nothing to attach to ({hint})"
    info = view.attach or {}
    kind = info.get("kind") if isinstance(info, dict) else None
    if view.mode == "tmux" and kind == "tmux" and info.get("argv"):
        return _attach_tmux(tuple(str(a) for a in info["argv"]))
    if view.mode == "pty":
        if client is None:
            return "cannot attach: no daemon client"
        return _attach_pty(client, view.project, view.title, out)
    return f"{view.title} runs in {view.mode} mode and has no terminal to attach: i types to it"


def attach_session(client: DaemonClient, session: str) -> str:
    """Attach to an orphan tmux session on corral's server (the T browser), as `attach` does a tmux agent."""
    from frontends.daemon.errors import DaemonError

    try:
        orphans = client.call("GET", "/v1/orphans", timeout=_TMUX_TIMEOUT_S)
    except DaemonError as exc:
        return f"cannot list the orphan sessions: {exc}"
    argv = next((o.get("attach") for o in orphans if o.get("session") == session), None)
    if not argv:
        return f"no orphan tmux session {session} (any more)"
    return _attach_tmux(tuple(str(a) for a in argv))


def _attach_tmux(argv: tuple[str, ...]) -> str:
    server = argv[: argv.index("attach-session")] if "attach-session" in argv else argv[:3]
    for command in detach_bindings(server):
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=_TMUX_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"cannot reach corral's tmux server: {exc}"
        if done.returncode != 0:
            return f"cannot reach corral's tmux server: {done.stderr.strip() or done.returncode}"
    # An interactive attach has no timeout: the person holds it, and ends it by detaching.
    try:
        done = subprocess.run(argv, env=attach_env(os.environ), check=False)
    except OSError as exc:
        return f"cannot run {argv[0]}: {exc.strerror or exc}"
    if done.returncode != 0:
        return f"tmux could not attach (exit status {done.returncode}): has the agent ended?"
    return ""


@contextlib.contextmanager
def _raw(fd: int) -> Iterator[None]:
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _attach_pty(client: DaemonClient, project: str, title: str, out: TextIO) -> str:
    """The websocket client: runs an asyncio loop of its own for the attach's length (the dashboard's loop
    is suspended meanwhile: it owns nothing else)."""
    import asyncio

    try:
        return asyncio.run(_pty_session(client, project, title, out))
    except OSError as exc:
        return f"cannot attach to {title}: {exc}"


async def _pty_session(client: DaemonClient, project: str, title: str, out: TextIO) -> str:
    import asyncio
    from urllib.parse import quote

    import aiohttp
    import msgspec

    path = f"/v1/repos/{quote(project, safe='')}/instances/{quote(title, safe='')}/attach"
    connector = aiohttp.UnixConnector(path=str(client.socket))
    fd = sys.stdin.fileno()
    loop = asyncio.get_running_loop()
    typed: asyncio.Queue[bytes] = asyncio.Queue()
    async with aiohttp.ClientSession(connector=connector) as session:
        try:
            ws = await session.ws_connect(f"http://localhost{path}", heartbeat=30.0)
        except aiohttp.WSServerHandshakeError as exc:
            return f"cannot attach to {title}: {exc.message}"
        except aiohttp.ClientError as exc:
            return f"cannot attach to {title}: {exc}"
        out.write("\x1b[2J\x1b[H")
        out.flush()
        ended = ""
        with _raw(fd):
            loop.add_reader(fd, lambda: typed.put_nowait(os.read(fd, 4096)))
            try:
                reader = asyncio.ensure_future(ws.receive())
                while True:
                    keys = asyncio.ensure_future(typed.get())
                    done, _ = await asyncio.wait({reader, keys}, return_when=asyncio.FIRST_COMPLETED)
                    if keys in done:
                        data = keys.result()
                        cut = next((i for i, b in enumerate(data) if b in DETACH_BYTES), -1)
                        if cut >= 0:
                            if cut:
                                await ws.send_bytes(data[:cut])
                            break
                        await ws.send_bytes(data)
                    else:
                        keys.cancel()
                    if reader in done:
                        message = reader.result()
                        if message.type != aiohttp.WSMsgType.TEXT:
                            ended = ended or "the daemon closed the attach"
                            break
                        frame = msgspec.json.decode(message.data)
                        if frame.get("screen") is not None:
                            _draw(out, frame["screen"])
                        if frame.get("ended"):
                            ended = f"{title} ended: {frame['ended']}"
                            break
                        reader = asyncio.ensure_future(ws.receive())
            finally:
                loop.remove_reader(fd)
                await ws.close()
    return ended


def _draw(out: TextIO, screen: str) -> None:
    rows = os.get_terminal_size(out.fileno()).lines if out.isatty() else 24
    lines = screen.split("\n")[-rows:]
    body = "\r\n".join(line + "\x1b[K" for line in lines)
    out.write("\x1b[H" + body + "\x1b[J")
    out.flush()
