"""corral's own tmux server, at the level of argv: `tmux -L <socket> -f /dev/null …`, never through a shell.

    server = TmuxServer("corral")            # the daemon's; each test uses TmuxServer(f"corral-test-{hex}")
    pane = server.new_session("corral_web_fix-login", ("claude", "--model", "x"), cwd="/src/wt",
                              env=(("CORRAL_TASK", "7"),), pipe_to=fifo)
    server.send_text(pane.pane_id, "a long prompt…")
    server.capture(pane.pane_id, lines=50)
    server.kill()                            # kill-server (tests); the daemon never does this

Every call is one `tmux` process with an argv list, a timeout (5 s) and, on failure, a `TmuxError` that
quotes tmux's stderr. Several commands go in one process when they must happen together (`a ; b`), which
also makes them atomic with respect to the tmux event loop. `calls` counts the processes, so a test can
prove that an idle agent costs none.

tmux 3.3a behaviours this module works around (each one measured):

- tmux parses its argv too: an argument ending in ';' ends a command, so an agent argv element `"x;"`
  followed by `"kill-server"` would run kill-server. `run()` escapes every such argument (`x\\;`, which tmux
  turns back into `x;`); that is the only place a separator can come from.
- `new-session -c DIR` is a format: `#{…}` would be expanded and `#(…)` would run a shell command, so
  '#' is doubled (`format_literal`). `-e` values and `send-keys -l` text are taken literally.
- A target name matches by prefix (`-t corral_a` finds `corral_ab`), so sessions are addressed as `=NAME`
  (exact) and panes by id (`%12`).
- `display-message -t X` succeeds with empty output when X does not exist; existence is read from
  `list-panes`, which fails.
- `set-option -g status off` with no session yet crashes the server (segfault): session options are set
  per session, after `new-session`, in the same call.
- `history-limit` applies to panes created after it is set, so it is set (globally, on corral's own
  server) in the call that creates the pane, before `new-session`.
- A single-element argv is run by `/bin/sh -c`; more elements are exec'd directly. A lone program is
  therefore run as `env -- PROG` (and `env` execs it), so nothing user-controlled reaches a shell.
- `pipe-pane` cannot act on a dead pane ("target pane has exited"), and with `remain-on-exit` the pipe of a
  dead pane stays open (no EOF); the `pane-died` hook is unreliable where tmux links libutempter: the end
  of an agent is seen through its pid instead (tmux_output.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import tempfile
import threading
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import msgspec

from actors.clock import Recent
from protocols.errors import CorralError, UsageError
from protocols.instances import DETACH_KEYS

__all__ = [
    "PaneInfo",
    "SessionExists",
    "TmuxError",
    "TmuxServer",
    "TmuxServerStats",
    "format_literal",
    "list_sessions",
    "session_name",
]

DEFAULT_SOCKET = "corral"
DEFAULT_TIMEOUT_S = 5.0
RECENT_SESSIONS_S = 2.0
"""How old the session snapshot behind `recent_session` may be (agents brought back after a restart)."""
SESSION_PREFIX = "corral_"
_PART_MAX = 40
_SAFE = re.compile(r"[a-zA-Z0-9_-]+")
_PANE_FIELDS = (
    "#{pane_id}\t#{session_name}\t#{session_id}\t#{pane_pid}\t#{pane_dead}\t#{pane_dead_status}\t"
    "#{pane_dead_signal}\t#{window_activity}"
)
_GONE = (
    "can't find",
    "no server running",
    "error connecting",
    "no such session",
    "session not found",
    "server exited unexpectedly",
    "no current target",  # a pane id asked for while its session is being destroyed
)


class TmuxError(CorralError):
    """A tmux command failed: which one, its exit status and what tmux said on stderr.

    `gone` is true when tmux said the target (or the whole server) does not exist.
    """

    def __init__(self, command: Sequence[str], returncode: int | None, stderr: str) -> None:
        self.command = tuple(command)
        self.returncode = returncode
        self.stderr = stderr.strip()
        self.gone = any(marker in self.stderr for marker in _GONE)
        shown = " ".join(shlex.quote(a) for a in self.command)
        if len(shown) > 300:
            shown = shown[:300] + "…"
        status = "timed out" if returncode is None else f"exit status {returncode}"
        super().__init__(f"tmux failed ({status}): {shown}: {self.stderr or 'no message'}")


class SessionExists(TmuxError):
    """`new-session` found a session of that name already."""


class PaneInfo(msgspec.Struct, frozen=True):
    """What tmux says about one pane (the agent's)."""

    pane_id: str  # "%12": how corral addresses the pane from then on
    session: str
    session_id: str  # "$3"
    pid: int  # the agent's pid (tmux makes it a session leader: its sid is its pid)
    dead: bool
    dead_status: int | None
    dead_signal: int | None
    activity: float | None = None
    """When the pane last wrote output (epoch seconds, 1 s resolution; tmux's window_activity): how long an
    adopted agent has been quiet."""

    @classmethod
    def parse(cls, line: str) -> PaneInfo:
        pane_id, session, session_id, pid, dead, status, sig, *rest = line.split("\t")
        activity = rest[0] if rest else ""
        return cls(
            pane_id=pane_id,
            session=session,
            session_id=session_id,
            pid=int(pid),
            dead=dead == "1",
            dead_status=int(status) if status else None,
            dead_signal=int(sig) if sig else None,
            activity=float(activity) if activity.isdigit() else None,
        )


class TmuxServerStats(msgspec.Struct, frozen=True):
    socket: str
    calls: int  # tmux processes run so far
    errors: int
    taps: int  # agents whose output is being read
    bytes_read: int


def format_literal(text: str) -> str:
    """`text` as a tmux format that expands to itself ('#' doubled)."""
    return text.replace("#", "##")


def _arg(text: str) -> str:
    """One argv element as tmux will read it back: a trailing ';' escaped so it does not end a command."""
    return text[:-1] + "\\;" if text.endswith(";") else text


def _slug(part: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", part).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", ascii_text).strip("-")[:_PART_MAX].strip("-")
    if slug != part or not slug:
        # Two titles that slug alike ("a b", "a/b") must not share a session: the second would adopt the
        # first one's agent. The suffix is a hash of the original, so the name is stable across restarts.
        digest = hashlib.sha1(part.encode()).hexdigest()[:6]
        slug = f"{slug}-{digest}" if slug else digest
    return slug


def session_name(project: str, title: str) -> str:
    """`corral_<project>_<title>`: each part slugged to [a-zA-Z0-9-] ('_' separates the parts only).

    A part that had to change gets a short hash of its original, so distinct titles never collide:
    `session_name("web", "fix login")` → `corral_web_fix-login-<6 hex>`.
    """
    return f"{SESSION_PREFIX}{_slug(project)}_{_slug(title)}"


def _runtime_dir(socket: str) -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"corral-{os.getuid()}" / "tmux" / socket


class TmuxServer:
    """One tmux server (`tmux -L socket`), always started with `-f config_file` so no user config applies.

    Thread-safe: any actor may call it. The output reader for its agents (`pump`) is started on first use.
    """

    def __init__(
        self,
        socket: str = DEFAULT_SOCKET,
        *,
        config_file: str = "/dev/null",
        tmux: str = "tmux",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        run_dir: Path | None = None,
    ) -> None:
        if not _SAFE.fullmatch(socket):
            raise UsageError(f"invalid tmux socket name {socket!r}: use letters, digits, '_' and '-' only")
        self.socket = socket
        self.config_file = config_file
        self.tmux = tmux
        self.timeout_s = timeout_s
        self.run_dir = run_dir or _runtime_dir(socket)  # FIFOs live here (mode 0700)
        self._lock = threading.Lock()
        self._calls = 0
        self._errors = 0
        self._pump = None
        self._sessions = Recent(self._first_panes, RECENT_SESSIONS_S)

    def __repr__(self) -> str:
        return f"TmuxServer({self.socket!r})"

    # -- running commands ---------------------------------------------------------------------------------

    def argv(self, *args: str) -> list[str]:
        return [self.tmux, "-L", self.socket, "-f", self.config_file, *args]

    def count_call(self) -> None:
        with self._lock:
            self._calls += 1

    @property
    def calls(self) -> int:
        """How many tmux processes corral has run on this server."""
        with self._lock:
            return self._calls

    def run(self, *commands: Sequence[str], input: str | None = None, timeout_s: float | None = None) -> str:
        """Run one or more tmux commands in one tmux process; return stdout. Raises TmuxError."""
        args: list[str] = []
        for command in commands:
            if args:
                args.append(";")
            args.extend(_arg(str(a)) for a in command)
        argv = self.argv(*args)
        self.count_call()
        stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                encoding="utf-8",
                errors="replace",
                timeout=timeout_s or self.timeout_s,
                **stdin,  # type: ignore[call-overload]
            )
        except subprocess.TimeoutExpired as exc:
            self._failed()
            raise TmuxError(argv, None, f"no answer within {exc.timeout:g} s") from exc
        except FileNotFoundError as exc:
            self._failed()
            raise TmuxError(argv, None, f"{self.tmux} is not installed (or not on PATH)") from exc
        if done.returncode != 0:
            self._failed()
            raise TmuxError(argv, done.returncode, done.stderr)
        return done.stdout

    def _failed(self) -> None:
        with self._lock:
            self._errors += 1

    # -- sessions and panes -------------------------------------------------------------------------------

    def new_session(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cwd: str,
        env: Sequence[tuple[str, str]] = (),
        cols: int = 200,
        rows: int = 50,
        history_lines: int = 10_000,
        pipe_to: Path | None = None,
    ) -> PaneInfo:
        """Create session `name` running `argv` (exec'd, no shell), in one tmux call; SessionExists if
        there is one of that name already (nothing else is changed then).

        Before the pane: history-limit and remain-on-exit (the exit status and last screen stay readable),
        and ctrl-q / ctrl+space bound to detach (`DETACH_KEYS`), all global on corral's own server. After
        it: status off, window-size manual (the size stays cols×rows whoever attaches), and the output pipe
        into `pipe_to` — armed before tmux reads a byte of the agent's output, so the log misses nothing.
        """
        if len(argv) == 1:
            argv = ("env", "--", argv[0])
        target = f"={name}:"
        new = ["new-session", "-d", "-P", "-F", _PANE_FIELDS, "-s", name, "-x", str(cols), "-y", str(rows)]
        new += ["-c", format_literal(cwd)]
        for key, value in env:
            new += ["-e", f"{key}={value}"]
        commands: list[Sequence[str]] = [
            ["set-option", "-g", "history-limit", str(history_lines)],
            ["set-option", "-g", "remain-on-exit", "on"],
            *(["bind-key", "-n", key, "detach-client"] for key in DETACH_KEYS),
            [*new, "--", *argv],
            ["set-option", "-t", target, "status", "off"],
            ["set-option", "-w", "-t", target, "window-size", "manual"],
        ]
        if pipe_to is not None:
            commands.append(["pipe-pane", "-O", "-t", target, pipe_command(pipe_to)])
        try:
            out = self.run(*commands)
        except TmuxError as exc:
            if exc.stderr.startswith("duplicate session"):
                raise SessionExists(exc.command, exc.returncode, exc.stderr) from exc
            raise
        return PaneInfo.parse(out.splitlines()[0])

    def find_session(self, name: str) -> PaneInfo | None:
        """The first pane of session `name` (exact name), or None when there is no such session."""
        try:
            out = self.run(["list-panes", "-s", "-t", f"={name}", "-F", _PANE_FIELDS])
        except TmuxError as exc:
            if exc.gone:
                return None
            raise
        lines = out.splitlines()
        return PaneInfo.parse(lines[0]) if lines else None

    def pane_info(self, pane_id: str, session: str | None = None) -> PaneInfo | None:
        """Pane `pane_id`, or None when it (or its session `session`, if given) no longer exists."""
        try:
            out = self.run(["list-panes", "-t", pane_id, "-F", _PANE_FIELDS])
        except TmuxError as exc:
            if exc.gone:
                return None
            raise
        for line in out.splitlines():
            info = PaneInfo.parse(line)
            if info.pane_id == pane_id:
                # Pane ids restart at %0 with a new server: a stale id may name somebody else's pane.
                return info if session is None or info.session == session else None
        return None

    def recent_session(self, name: str) -> PaneInfo | None:
        """The first pane of session `name` from one `list-panes -a` shared by every caller within
        RECENT_SESSIONS_S: a daemon bringing back 50 agents asks tmux once, not 50 times. It may be stale: use
        it only as a hint, and check what it says (a dead pane, a session gone since)."""
        return self._sessions.get().get(name)

    def _first_panes(self) -> dict[str, PaneInfo]:
        panes: dict[str, PaneInfo] = {}
        for pane in self.all_panes():
            panes.setdefault(pane.session, pane)
        return panes

    def all_panes(self) -> list[PaneInfo]:
        """Every pane of the server ([] when no server runs)."""
        try:
            out = self.run(["list-panes", "-a", "-F", _PANE_FIELDS])
        except TmuxError as exc:
            if exc.gone:
                return []
            raise
        return [PaneInfo.parse(line) for line in out.splitlines() if line]

    def kill_session(self, name: str) -> bool:
        """Kill session `name`; False when it did not exist."""
        try:
            self.run(["kill-session", "-t", f"={name}"])
        except TmuxError as exc:
            if exc.gone:
                return False
            raise
        return True

    def pipe_pane(self, pane_id: str, fifo: Path | None) -> None:
        """Pipe the pane's output into `fifo` (replacing any previous pipe), or close the pipe (None)."""
        command = ["pipe-pane", "-O", "-t", pane_id]
        self.run([*command, pipe_command(fifo)] if fifo is not None else command)

    def list_sessions(self, prefix: str = SESSION_PREFIX) -> list[str]:
        """Names of the sessions that start with `prefix` ([] when no server runs)."""
        try:
            out = self.run(["list-sessions", "-F", "#{session_name}"])
        except TmuxError as exc:
            if exc.gone:
                return []
            raise
        return sorted(n for n in out.splitlines() if n.startswith(prefix))

    # -- input and screen ---------------------------------------------------------------------------------

    def send_text(self, pane_id: str, text: str, *, clear_line: bool = True, paste_over: int = 200) -> None:
        """Type `text` into the pane: C-u first (clears a half-typed line), then the text.

        Up to `paste_over` characters without control characters go as literal keys; anything longer or
        with a newline is pasted: `load-buffer` from stdin into a uniquely named buffer, then
        `paste-buffer -p -d` (bracketed if the application asked for it; the buffer deleted). One call.
        """
        clear = [["send-keys", "-t", pane_id, "C-u"]] if clear_line else []
        if len(text) <= paste_over and text.isprintable():
            if text:
                self.run(*clear, ["send-keys", "-t", pane_id, "-l", "--", text])
            elif clear:
                self.run(*clear)
            return
        buffer = f"corral-{os.urandom(8).hex()}"
        try:
            self.run(
                ["load-buffer", "-b", buffer, "-"],
                *clear,
                ["paste-buffer", "-p", "-d", "-b", buffer, "-t", pane_id],
                input=text,
            )
        except TmuxError:
            try:
                self.run(["delete-buffer", "-b", buffer])
            except TmuxError:
                pass  # never loaded, or already deleted by the paste
            raise

    def send_keys(self, pane_id: str, keys: Sequence[str]) -> None:
        """Keys by tmux name ("Enter", "Escape", "C-c", "y"), not literal text."""
        for key in keys:
            if not key or not key.isprintable() or " " in key:
                raise UsageError(f"send-keys: {key!r} is not a key name")
        if keys:
            self.run(["send-keys", "-t", pane_id, *keys])

    def capture(self, pane_id: str, lines: int | None = 50, *, ansi: bool = False) -> str:
        """The last `lines` lines of the pane (visible screen and history, wrapped lines joined), or the
        whole history for None; trailing blank lines dropped."""
        if lines is not None and lines < 0:
            raise UsageError(f"capture: lines must be >= 0 or None, got {lines}")
        if lines == 0:
            return ""
        command = ["capture-pane", "-p", "-J", "-t", pane_id, "-S", "-" if lines is None else f"-{lines}"]
        if ansi:
            command.insert(2, "-e")
        out = self.run(command).split("\n")
        while out and not _visible(out[-1], ansi):
            out.pop()
        if lines is None or len(out) <= lines:
            return "\n".join(out)
        kept = out[-lines:]
        if ansi:
            # `-e` writes an attribute where it changes, not on every line: carry what the cut lines set.
            sgr = _SGR.findall("".join(out[:-lines]))
            resets = [i for i, seq in enumerate(sgr) if seq in ("\x1b[0m", "\x1b[m")]
            kept[0] = "".join(sgr[resets[-1] + 1 if resets else 0 :]) + kept[0]
        return "\n".join(kept)

    def resize(self, pane_id: str, cols: int, rows: int) -> None:
        self.run(["resize-window", "-t", pane_id, "-x", str(cols), "-y", str(rows)])

    # -- the server ---------------------------------------------------------------------------------------

    def is_running(self) -> bool:
        try:
            self.run(["list-sessions", "-F", "#{session_id}"])
        except TmuxError as exc:
            if exc.gone:
                return False
            raise
        return True

    @property
    def socket_path(self) -> Path:
        """Where tmux puts this server's socket (as tmux computes it: $TMUX_TMPDIR or /tmp)."""
        return Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}" / self.socket

    def kill(self) -> None:
        """kill-server: every session on this socket ends, and the socket file is removed (tmux 3.3a leaves
        it behind, also when the server ends by itself with its last session). For tests only."""
        try:
            self.run(["kill-server"])
        except TmuxError as exc:
            if not exc.gone:
                raise
        path = self.socket_path
        if path.is_socket() and not self.is_running():
            path.unlink(missing_ok=True)

    @property
    def pump(self):  # -> OutputPump (imported lazily: tmux_output imports this module)
        with self._lock:
            if self._pump is None:
                from actors.runtimes.tmux_output import OutputPump

                self._pump = OutputPump(self)
            return self._pump

    def close(self) -> None:
        """Stop reading agents' output (corral's side only: the tmux server and its agents live on)."""
        with self._lock:
            pump, self._pump = self._pump, None
        if pump is not None:
            pump.close()

    def statistics(self) -> TmuxServerStats:
        with self._lock:
            pump = self._pump
            calls, errors = self._calls, self._errors
        taps, nbytes = pump.totals() if pump is not None else (0, 0)
        return TmuxServerStats(self.socket, calls, errors, taps, nbytes)


def pipe_command(fifo: Path) -> str:
    """The pipe-pane command: tmux always runs it with /bin/sh -c, so it is a fixed text around a path that
    corral chose (its own 0700 directory), quoted for the shell and then for tmux's format expansion."""
    return format_literal(f"exec cat >> {shlex.quote(str(fifo))}")


_SGR = re.compile(r"\x1b\[[0-9;:]*m")
_CSI = re.compile(r"\x1b\[[0-9;:?]*[ -/]*[@-~]")


def _visible(line: str, ansi: bool) -> bool:
    return bool((_CSI.sub("", line) if ansi else line).strip())


def list_sessions(server: TmuxServer, prefix: str = SESSION_PREFIX) -> list[str]:
    """corral's sessions on `server` (orphan discovery: sessions no instance claims)."""
    return server.list_sessions(prefix)
