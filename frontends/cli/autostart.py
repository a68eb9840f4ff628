"""The daemon is always there: a command that asks it to act starts it when it is not running, as tmux starts
its server, and says so once on stderr.

    client = daemon_client()       # `instance …`: the daemon answers (started now if it was not)
    act_on_change()                # `task implement | transition | start-over | set-status`, a person's
                                   # `signal emit`: the change is committed; the daemon carries it out
    wake_or_start_detached()       # an agent's `signal emit`: poke; no daemon → start one, never wait for it

What a command prints when it started the daemon: `started the corral daemon, pid N`, with `(it had been
stopped with `corral daemon stop` at …)` when someone had stopped it on purpose. A command that finds the
daemon running says nothing.

An agent's emit is on the hot path and must stay fast: it pokes the wake socket (~20 µs), and only when
nothing listens there *and* no daemon holds the pid lock does it start a heart (which starts the daemon),
detached — its own session, stdin from /dev/null, output to the daemon's log, none of the agent's descriptors
— and returns without waiting. The daemon finds the signal pending when it starts and applies it.

CORRAL_AUTOSTART=0 turns all of this off (for machines where systemd runs the daemon, or scripts that only
queue work): task and signal commands record their change for the daemon's next start, and `instance …`
commands say the daemon is not running.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from frontends.daemon import DaemonClient

__all__ = ["AUTOSTART_ENV", "act_on_change", "autostart_enabled", "daemon_client", "wake_or_start_detached"]

AUTOSTART_ENV = "CORRAL_AUTOSTART"
"""Set to 0 and no command starts the daemon by itself (`corral daemon start` still does)."""


def autostart_enabled() -> bool:
    """False when CORRAL_AUTOSTART is 0 (or false, no, off)."""
    return os.environ.get(AUTOSTART_ENV, "").strip().lower() not in ("0", "false", "no", "off")


def daemon_client() -> DaemonClient:
    """A client of a daemon that answers: started (under its heart) if none did, which stderr says once.
    DaemonStartError if it cannot start; DaemonNotRunning if it is not running and CORRAL_AUTOSTART=0."""
    from frontends.daemon import DaemonClient, DaemonNotRunning

    client = DaemonClient()
    if not autostart_enabled():
        if client.ping() is None:
            raise DaemonNotRunning(str(client.socket), why=f"{AUTOSTART_ENV}=0: commands do not start it")
        return client
    started = client.autostart()
    if started.started:
        print(started.notice, file=sys.stderr, flush=True)
    return client


def act_on_change() -> None:
    """A person's change (a transition, a signal) is committed: wake the daemon so it acts now, starting it
    first if it is not running. A poke that reaches a listener means a daemon runs: nothing else to do."""
    from actors.wake import poke

    if poke():
        return
    from frontends.daemon.errors import DaemonError

    if not autostart_enabled():
        return
    try:
        daemon_client()
    except DaemonError as exc:
        raise DaemonError(
            f"the change is recorded, but nothing carries it out until the daemon runs: {exc}"
        ) from None


def wake_or_start_detached() -> None:
    """An agent's signal is committed: poke the daemon; if none listens and none holds the pid lock, start one
    without waiting for it. Never raises: the signal is safe in the store whatever happens here."""
    try:
        from actors.wake import NO_LISTENER, poke_status

        if poke_status() not in NO_LISTENER or not autostart_enabled():
            return
        from frontends.daemon.lock import lock_holder
        from frontends.daemon.paths import RuntimePaths

        paths = RuntimePaths.resolve()
        if lock_holder(paths.pid_file) is None:
            from frontends.daemon.spawn import spawn_heart

            spawn_heart(paths)
    except Exception:
        pass
