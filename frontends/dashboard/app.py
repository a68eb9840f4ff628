"""The dashboard's loop: the only code that touches the terminal. It runs in the main thread (it owns the tty
and its signals), takes keys, asks the pure parts what they mean and what to draw, and carries out effects
without ever waiting on the daemon.

    run(client, "my-repo")      # returns the exit code when the person quits; every agent keeps running

One turn of the loop:
1. `term.inkey(timeout=IDLE_S)`: a key, or nothing after IDLE_S (the loop then looks at its queues anyway);
2. `keys.handle(state, key)` → the new state and the effects the key asks for;
3. the newest `Fleet` and `Pane` the bridge offered (queues of one: latest wins), the outcomes of effects
   (toasts) and the bridge's notices (toasts, and a desktop notification or the bell);
4. only if the state or the terminal's size changed: `render.frame(state, width, height)`, and only the lines
   that differ from the last frame are written (in one synchronized update, so nothing flickers);
5. the effects: API calls and typed keys go to the EffectRunner's threads; attach hands the terminal over
   (the loop waits: it has nothing to draw on meanwhile); copy writes OSC 52; quit ends the loop.

An idle dashboard wakes every IDLE_S to look at three queues and goes back to sleep: it draws nothing while
nothing changes, which is what keeps it near 0 % of a core with 200 agents.
"""

from __future__ import annotations

import queue
import signal
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

import msgspec

from frontends.daemon.client import DaemonClient
from frontends.dashboard import sidebar
from frontends.dashboard.bridge import Bridge, Focus, Notice, Refresh, stop_bridge
from frontends.dashboard.effects import EffectRunner, Outcome, osc52
from frontends.dashboard.model import Attach, Call, Copy, Fleet, Pane, Quit, SendKeys, State, Toast, View
from protocols.instances import InstanceView

__all__ = ["IDLE_S", "TOAST_S", "Painter", "colors_of", "focus_of", "key_name", "run"]

IDLE_S = 0.2
"""The longest the loop sleeps without a key: how late a new Fleet, Pane or toast can be drawn."""
INTERACTIVE_IDLE_S = 0.05
"""…while the person types to an agent (interactive mode): its echo should show at once."""
TOAST_S = 4.0
"""How long a toast stays."""
ESC_DELAY_S = 0.05
"""How long a lone ESC waits for the rest of a key sequence: short, so escape closes an overlay at once."""
SYNC_START, SYNC_END = "\x1b[?2026h", "\x1b[?2026l"  # synchronized output (ignored where unsupported)


def key_name(key: str, name: str | None, is_sequence: bool) -> str:
    """The key as `keys.handle` takes it: blessed's name for a key sequence (KEY_UP, KEY_ENTER…), else the
    character itself — a control character too (ctrl-q is "\\x11", ctrl+space "\\x00"), even where blessed
    names it (KEY_CTRL_Q)."""
    return name if is_sequence and name else str(key)


def colors_of(number_of_colors: int) -> int:
    """256, 16 or 0, what `render.frame` draws with, from what the terminal says it has."""
    if number_of_colors >= 256:
        return 256
    return 16 if number_of_colors >= 8 else 0


def focus_of(state: State) -> Focus:
    """What the bridge must fetch for this state: the selected instance's pane (the row the sidebar shows
    selected: the first one while nothing was chosen), the audit pane, the orphan browser's and the tree
    view's lists."""
    view = state.view
    kind = view.overlay.kind if view.overlay is not None else ""
    row = sidebar.selected_row(sidebar.rows(state.fleet, view), view)
    title = row.instance.title if row is not None and row.instance is not None else ""
    return Focus(
        title=title,
        tab=view.tab,
        interactive=view.interactive,
        audit=view.audit_open,
        orphans=kind == "tmux",
        tree=kind == "tree" or view.tab == "info",  # the Info tab shows restarts and backoff from it
    )


class Painter:
    """Writes frames to the terminal, only the lines that changed since the last one."""

    def __init__(self, out: TextIO, move: Callable[[int, int], str]) -> None:
        self.out = out
        self.move = move
        self.size: tuple[int, int] = (0, 0)
        self._prev: list[str] = []

    @property
    def blank(self) -> bool:
        """Nothing drawn since the last `invalidate`."""
        return not self._prev

    def invalidate(self) -> None:
        """Forget what is on screen (after a resize or an attach): the next frame is written whole."""
        self._prev = []
        self.out.write("\x1b[H\x1b[2J")

    def paint(self, lines: list[str]) -> int:
        """Write `lines`; returns how many were written."""
        parts = [
            self.move(y, 0) + line + "\x1b[m"
            for y, line in enumerate(lines)
            if y >= len(self._prev) or self._prev[y] != line
        ]
        self._prev = list(lines)
        if parts:
            self.out.write(SYNC_START + "".join(parts) + SYNC_END)
            self.out.flush()
        return len(parts)


def _with_toasts(state: State, toasts: Iterable[Toast]) -> State:
    added = tuple(toasts)
    now = state.now
    kept = tuple(t for t in state.view.toasts if t.until > now)
    if not added and len(kept) == len(state.view.toasts):
        return state
    return msgspec.structs.replace(state, view=msgspec.structs.replace(state.view, toasts=kept + added))


class _Loop:
    """The loop's state between turns (one per `run`)."""

    def __init__(
        self,
        client: DaemonClient,
        project: str,
        term: Any,
        *,
        notifications: bool,
        frame: Callable[..., list[str]],
        handle: Callable[[State, str], tuple[State, tuple[Any, ...]]],
        on_reply: Callable[[State, Call, Any], State],
    ) -> None:
        self.client = client
        self.project = project
        self.base = f"/v1/repos/{_quote(project)}"
        self.term = term
        self.notifications = notifications
        self.frame = frame
        self.handle = handle
        self.on_reply = on_reply
        self.fleets: queue.Queue[Fleet] = queue.Queue(maxsize=1)
        self.panes: queue.Queue[Pane] = queue.Queue(maxsize=1)
        self.notices: queue.Queue[Notice] = queue.Queue()
        self.outcomes: queue.Queue[Outcome] = queue.Queue()
        self.runner = EffectRunner(client, self.outcomes)
        self.painter = Painter(sys.stdout, term.move_yx)
        self.state = State(
            fleet=Fleet(project=project, problem="connecting to the corral daemon…"),
            view=View(),
            now=time.monotonic(),
        )
        self.focus = Focus()
        self.bridge: Any = None

    def run(self) -> int:
        self.bridge = Bridge.start(self.client, self.project, self.fleets, self.panes, self.notices)
        term = self.term
        # SIGTERM and SIGHUP (the terminal closed) end the loop like q does: the terminal is given back
        # (cursor, screen, line mode) by the context managers below, instead of left in cbreak mode.
        for number in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, _end_loop)
        try:
            with term.fullscreen(), term.cbreak(), term.hidden_cursor():
                self.painter.invalidate()
                while True:
                    idle = INTERACTIVE_IDLE_S if self.state.view.interactive else IDLE_S
                    key = term.inkey(timeout=idle, esc_delay=ESC_DELAY_S)
                    effects: tuple[Any, ...] = ()
                    state = msgspec.structs.replace(self.state, now=time.monotonic(), wall=time.time())
                    if key:
                        state, effects = self.handle(state, key_name(key, key.name, key.is_sequence))
                    state = self._take_updates(state)
                    self._draw(state)
                    if not self._carry_out(effects):
                        return 0
        except (KeyboardInterrupt, _Ended):
            return 0
        finally:
            stop_bridge(self.bridge)
            self.runner.close()

    # -- one turn -----------------------------------------------------------------------------------------

    def _take_updates(self, state: State) -> State:
        try:
            state = msgspec.structs.replace(state, fleet=self.fleets.get_nowait())
        except queue.Empty:
            pass
        try:
            pane = self.panes.get_nowait()
        except queue.Empty:
            pass
        else:
            state = msgspec.structs.replace(state, pane=pane)
        toasts = []
        until = state.now + TOAST_S
        while True:
            try:
                outcome = self.outcomes.get_nowait()
            except queue.Empty:
                break
            if outcome.text:
                toasts.append(Toast(outcome.text, outcome.level, until))
            if outcome.refresh:
                self.bridge.tell(Refresh())
            if outcome.call is not None and outcome.call.reply:
                state = self.on_reply(state, outcome.call, outcome.answer)
        while True:
            try:
                notice = self.notices.get_nowait()
            except queue.Empty:
                break
            level = notice.level if notice.level in ("info", "warn", "error") else "warn"
            toasts.append(Toast(notice.text, level, until))  # type: ignore[arg-type]
            if self.notifications and not self.runner.notify(notice.text, notice.level):
                sys.stdout.write("\a")
        return _with_toasts(state, toasts)

    def _draw(self, state: State) -> None:
        term = self.term
        size = (term.width, term.height)
        resized = size != self.painter.size
        if resized:
            self.painter.size = size
            self.painter.invalidate()
        changed = state.fleet is not self.state.fleet or state.pane is not self.state.pane
        changed = changed or state.view != self.state.view
        if resized or changed or self.painter.blank:
            width, height = size
            self.painter.paint(self.frame(state, width, height, colors=colors_of(term.number_of_colors)))
        self.state = state
        if changed:
            focus = focus_of(state)
            if focus != self.focus:
                self.focus = focus
                self.bridge.tell(focus)

    def _carry_out(self, effects: tuple[Any, ...]) -> bool:
        """Carry out `effects`; False when one is Quit."""
        for effect in effects:
            if isinstance(effect, Quit):
                return False
            if isinstance(effect, Call):
                self.runner.call(effect)
            elif isinstance(effect, SendKeys):
                self.runner.send_keys(effect, self.base)
            elif isinstance(effect, Copy):
                sys.stdout.write(osc52(effect.text))
                sys.stdout.flush()
            elif isinstance(effect, Attach):
                self._attach(effect)
        return True

    def _instance(self, title: str) -> InstanceView | None:
        return next((v for v in self.state.fleet.instances if v.title == title), None)

    def _attach(self, effect: Attach) -> None:
        """Hand the terminal over until the person detaches; the loop waits (it has nothing to draw on)."""
        from frontends.dashboard.attach import attach, attach_session

        view = self._instance(effect.title) if effect.title else None
        if effect.title and view is None:
            problem = f"no instance {effect.title} (any more)"
        else:
            term = self.term
            sys.stdout.write(term.exit_fullscreen + term.normal_cursor)
            sys.stdout.flush()
            try:
                if view is not None:
                    problem = attach(view, sys.stdout, self.client)
                else:
                    problem = attach_session(self.client, effect.session)
            finally:
                sys.stdout.write(term.enter_fullscreen + term.hide_cursor)
                self.painter.invalidate()
                self.bridge.tell(Refresh())
        if problem:
            toast = Toast(problem, "warn", time.monotonic() + TOAST_S)
            self.state = _with_toasts(self.state, [toast])
        colors = colors_of(self.term.number_of_colors)
        self.painter.paint(self.frame(self.state, *self.painter.size, colors=colors))


class _Ended(Exception):
    """Raised in the main thread by SIGTERM or SIGHUP."""


def _end_loop(number: int, frame: Any) -> None:
    raise _Ended(signal.Signals(number).name)


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def run(client: DaemonClient, project: str, *, notifications: bool = True, term: Any = None) -> int:
    """Run the dashboard on this terminal until the person quits; returns the exit code (0)."""
    import blessed

    from frontends.dashboard.keys import handle, on_reply
    from frontends.dashboard.render import frame

    terminal = term if term is not None else blessed.Terminal()
    loop = _Loop(
        client, project, terminal, notifications=notifications, frame=frame, handle=handle, on_reply=on_reply
    )
    return loop.run()
