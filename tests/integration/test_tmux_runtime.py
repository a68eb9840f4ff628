"""TmuxRuntime on a real tmux server, supervised the way an Instance supervises it.

Each test has its own tmux server (`-L corral-test-<hex>`, killed in teardown) and a real supervision tree:
root → "inst" (a Supervisor standing in for the Instance, which records the runtime's activity notices) →
"rt" (the TmuxRuntime, transient). Agents are small Python scripts, `cat`, `sh`, and corral's simulated
agent when it is installed. Every wait is on a condition.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors.clock import FakeClock, SystemClock
from actors.runtimes.base import (
    Capture,
    Destroy,
    GetAttachInfo,
    GetMetrics,
    IsAlive,
    Resize,
    RuntimeActivity,
    RuntimeSpec,
    Send,
    SendKeys,
)
from actors.runtimes.procinfo import TOKEN_VAR, read_stat
from actors.runtimes.tmux import TmuxRuntime
from actors.runtimes.tmux_server import TmuxServer
from actors.supervision import (
    BackoffSpec,
    ChildSpec,
    Restart,
    SupervisionEnv,
    SupervisionTree,
    Supervisor,
    SupervisorFlags,
)
from protocols.errors import SupervisionError, UsageError
from protocols.messages import ChildExited, ChildRestarting, ChildStarted, SupervisorGaveUp
from tests.unit.actor_kit import expect_event, wait_until

pytestmark = pytest.mark.usefixtures("stop_actors")

PY = sys.executable
SIM = shutil.which("corral-sim", path=str(Path(sys.executable).parent))
RT = "root/inst/rt"
NAME = "corral_proj_task-1"


def alive(pid: int) -> bool:
    st = read_stat(pid)
    return st is not None and st.state != "Z"


def marked_pids(marker: str) -> list[int]:
    """Live processes whose last argument is `marker`."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.split(b"\0")[-2:-1] == [marker.encode()] and alive(int(name)):
                found.append(int(name))
    return found


def tagged_pids(socket: str) -> list[int]:
    """Processes started by any agent of the tmux server `socket` (they carry its runtimes' token)."""
    needle = f"{TOKEN_VAR}=tmux-{socket}-".encode()
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                environ = Path(f"/proc/{name}/environ").read_bytes()
            except OSError:
                continue
            if needle in environ and alive(int(name)):
                found.append(int(name))
    return found


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TmuxServer]:
    srv = TmuxServer(f"corral-test-{secrets.token_hex(4)}", run_dir=tmp_path / "run" / "tmux" / "s")
    yield srv
    srv.close()
    srv.kill()
    for pid in tagged_pids(srv.socket):  # what agents left behind (an orderly stop leaves them running)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Harness:
    """A supervision tree running one TmuxRuntime, plus what its Instance was told."""

    def __init__(self, server: TmuxServer, tmp_path: Path, clock: Any = None) -> None:
        self.server = server
        self.tmp = tmp_path
        self.clock = clock or SystemClock()
        self.activity: list[RuntimeActivity] = []
        self.trees: list[SupervisionTree] = []
        self.tree: SupervisionTree | None = None
        self.sub: Any = None

    def spec(self, argv: tuple[str, ...], **kw: Any) -> RuntimeSpec:
        kw.setdefault("name", NAME)
        kw.setdefault("cwd", str(self.tmp))
        kw.setdefault("log_path", str(self.tmp / "logs" / f"{kw['name']}.log"))
        kw.setdefault("settle_s", 0.05)
        return RuntimeSpec(argv=argv, **kw)

    def start(
        self,
        spec: RuntimeSpec,
        *,
        flags: SupervisorFlags | None = None,
        backoff: BackoffSpec | None = None,
        runtime_class: type[TmuxRuntime] = TmuxRuntime,
    ) -> SupervisionTree:
        activity = self.activity

        class Instance(Supervisor):
            def on_receive(self, message: Any) -> Any:
                if isinstance(message, RuntimeActivity):
                    activity.append(message)
                    return None
                return super().on_receive(message)

        runtime = ChildSpec.worker(
            "rt", runtime_class, spec, self.server, restart=Restart.TRANSIENT, backoff=backoff
        )
        inst = ChildSpec.supervisor(
            "inst",
            flags or SupervisorFlags(max_restarts=5, period_s=60),
            [runtime],
            supervisor_class=Instance,
            restart=Restart.TEMPORARY,
        )
        env = SupervisionEnv.create(self.clock, seed=3)
        self.sub = env.hub.subscribe()
        self.tree = SupervisionTree.start(SupervisorFlags(max_restarts=0, period_s=60), [inst], env=env)
        self.trees.append(self.tree)
        return self.tree

    def ask(self, message: Any, timeout: float = 10.0) -> Any:
        assert self.tree is not None
        return self.tree.ask(message, path=RT, timeout=timeout)

    def ref(self) -> pykka.ActorRef[Any] | None:
        assert self.tree is not None
        ref = self.tree.env.directory.get(RT)
        return ref if ref is not None and ref.is_alive() else None

    def screen(self, lines: int | None = 50) -> str:
        return self.ask(Capture(lines=lines))

    def wait_screen(self, text: str, timeout: float = 10.0) -> str:
        return wait_until(lambda: text in (s := self.screen()) and s, timeout, f"{text!r} on the screen")

    def pane(self) -> Any:
        return self.server.find_session(NAME)

    def stop(self) -> None:
        for tree in self.trees:
            tree.stop(timeout=15)
        self.trees.clear()


@pytest.fixture
def harness(server: TmuxServer, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(server, tmp_path)
    yield h
    h.stop()


@pytest.fixture
def fake_harness(server: TmuxServer, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(server, tmp_path, FakeClock())
    yield h
    h.stop()


def logged(path: str | Path) -> bytes:
    """The log's bytes; empty for the instant a rotation has moved it away."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return b""


def script(code: str, *args: str) -> tuple[str, ...]:
    return (PY, "-c", code, *args)


ECHO_LINES = script(
    "import sys\nprint('ready', flush=True)\nfor line in sys.stdin: print('got', line.strip(), flush=True)"
)


# -- creating -----------------------------------------------------------------------------------------------


def test_agent_runs_exec_with_env_from_dash_e_and_literal_args(harness: Harness) -> None:
    code = (
        "import os, sys\nprint('FOO=' + os.environ['FOO'])\nprint('ARGS=' + '|'.join(sys.argv[1:]))\ninput()"
    )
    tricky = ("x;", "kill-server", "$HOME", "`id`", "#{pane_id}", "a b", "y\\;")
    harness.start(harness.spec(script(code, *tricky), env=(("FOO", "a b;$x `y` #{z}"),)))
    screen = harness.wait_screen("ARGS=")
    assert "FOO=a b;$x `y` #{z}" in screen
    assert "ARGS=" + "|".join(tricky) in screen
    assert harness.server.list_sessions() == [NAME]  # kill-server was an argument, not a command


def test_session_options_history_status_remain_on_exit_and_size(harness: Harness) -> None:
    harness.start(harness.spec(("cat",), cols=120, rows=40, history_lines=10_000))
    pane = harness.pane()
    fmt = "#{history_limit} #{status} #{remain-on-exit} #{window-size} #{window_width}x#{window_height}"
    out = harness.server.run(["display-message", "-p", "-t", pane.pane_id, fmt]).split()
    assert out == ["10000", "off", "on", "manual", "120x40"]
    assert harness.ask(GetAttachInfo()).argv == (
        "tmux",
        "-L",
        harness.server.socket,
        "attach-session",
        "-t",
        f"={NAME}",
    )


def test_a_cwd_that_does_not_exist_or_an_unknown_command_fails_the_start(
    harness: Harness, tmp_path: Path
) -> None:
    with pytest.raises(SupervisionError, match="not found on PATH"):
        harness.start(harness.spec(("no-such-agent-cli", "--x")))
    with pytest.raises(SupervisionError, match="does not exist"):
        harness.start(harness.spec(("cat",), cwd=str(tmp_path / "missing")))
    assert harness.server.list_sessions() == []


def test_a_working_directory_is_taken_literally_not_as_a_format(harness: Harness, tmp_path: Path) -> None:
    odd = tmp_path / "wt #{pane_id} #(touch pwned) $HOME"
    odd.mkdir()
    harness.start(harness.spec(script("import os\nprint('CWD=' + os.getcwd())\ninput()"), cwd=str(odd)))
    assert f"CWD={odd}" in harness.wait_screen("CWD=")
    assert not list(tmp_path.rglob("pwned")) and not (Path.home() / "pwned").exists()


def test_a_lone_program_is_not_run_by_a_shell(harness: Harness, tmp_path: Path) -> None:
    odd = tmp_path / "agent;echo pwned"
    odd.write_text(f"#!{PY}\nimport os\nprint('argv0 ok', os.getppid() > 0)\ninput()\n")
    odd.chmod(0o755)
    harness.start(harness.spec((str(odd),)))
    screen = harness.wait_screen("argv0 ok")
    assert "pwned" not in screen


# -- output -------------------------------------------------------------------------------------------------


def test_output_is_pushed_to_the_instance_and_appended_to_the_log(harness: Harness) -> None:
    spec = harness.spec(ECHO_LINES)
    harness.start(spec)
    wait_until(lambda: harness.activity, what="the first activity notice")
    harness.ask(Send("hello log"))
    wait_until(lambda: b"got hello log" in logged(spec.log_path), what="the echo in the log")
    log = logged(spec.log_path)
    wait_until(lambda: sum(a.nbytes for a in harness.activity) == len(log), what="every byte notified")
    assert {(a.child_id, a.generation) for a in harness.activity} == {("rt", 1)}
    ref = harness.ref()
    assert ref is not None
    st = ref.proxy().statistics().get(timeout=5)
    assert st.bytes_read == len(log) and st.alive and not st.adopted and st.last_output_at is not None


def test_a_burst_of_output_is_coalesced_into_few_notices(harness: Harness) -> None:
    code = "import sys\ninput()\nfor i in range(2000): sys.stdout.write(f'line {i}\\n'); sys.stdout.flush()\n"
    harness.start(harness.spec(script(code + "print('end')\ninput()")))
    t0 = time.monotonic()
    harness.ask(Send(""))
    harness.wait_screen("end")
    elapsed = time.monotonic() - t0
    wait_until(lambda: sum(a.nbytes for a in harness.activity) > 2000 * 8, what="the burst notified")
    # One notice per 20 ms at most (+1 for the tail and one for the echo of Enter).
    assert len(harness.activity) <= elapsed / 0.02 + 3


def test_the_log_is_rotated_past_its_cap(harness: Harness) -> None:
    code = "input()\nfor i in range(600): print(f'{i:05d} ' + 'x' * 40)\nprint('done')\ninput()"
    spec = harness.spec(script(code), log_max_bytes=4096, log_backups=2)
    harness.start(spec)
    harness.ask(Send(""))
    harness.wait_screen("done")
    log = Path(spec.log_path)
    wait_until(lambda: b"done" in logged(log), what="the end of the output in the log")
    files = [log, log.with_name(log.name + ".1"), log.with_name(log.name + ".2")]
    assert all(f.exists() and f.stat().st_size <= 4096 for f in files)
    assert not log.with_name(log.name + ".3").exists()


def test_capture_gives_the_last_lines_the_full_history_or_colours(harness: Harness) -> None:
    code = "input()\nfor i in range(300): print(f'\\x1b[32mrow {i}\\x1b[0m')\nprint('end')\ninput()"
    harness.start(harness.spec(script(code)))
    harness.ask(Send(""))
    harness.wait_screen("end")
    last = harness.ask(Capture(lines=3)).split("\n")
    assert last == ["row 298", "row 299", "end"]
    full = harness.ask(Capture(lines=None))
    assert "row 0\n" in full and full.endswith("end")
    coloured = harness.ask(Capture(lines=3, ansi=True))
    assert coloured.startswith("\x1b[32mrow 298\n")  # the colour set on an earlier line is carried over
    assert "row 299" in coloured


# -- input --------------------------------------------------------------------------------------------------


RAW_PASTE = r"""
import hashlib, os, sys, tty
out = sys.argv[1]
tty.setraw(0)
os.write(1, b"\x1b[?2004hREADY\r\n")     # ask for bracketed paste, as agent TUIs do
buf = b""
while b"\x1b[201~" not in buf:
    buf += os.read(0, 65536)
start, end = buf.index(b"\x1b[200~"), buf.index(b"\x1b[201~")
rest = buf[end + 6:]
while b"\r" not in rest:
    rest += os.read(0, 1024)
body = buf[start + 6:end].replace(b"\r", b"\n")  # a paste turns LF into CR, as a terminal does
with open(out, "w") as f:
    f.write(hashlib.sha256(body).hexdigest() + "\n" + repr(buf[:start]) + "\n" + repr(rest))
os.write(1, b"WROTE\r\n")
os.read(0, 1)
"""


def test_a_long_multiline_send_arrives_intact_as_one_bracketed_paste(
    harness: Harness, tmp_path: Path
) -> None:
    line = "quotes ' \" and $HOME `uname` \\ back; semi; tab\there unicode é ✓ 日本 #{pane_id} ~"
    text = "\n".join(f"{i:04d} {line}" for i in range(120))
    assert len(text.encode()) > 10_000
    out = tmp_path / "paste.txt"
    harness.start(harness.spec(script(RAW_PASTE, str(out))))
    harness.wait_screen("READY")
    harness.ask(Send(text))
    harness.wait_screen("WROTE")
    digest, before, after = out.read_text().split("\n")
    assert digest == hashlib.sha256(text.encode()).hexdigest()
    assert before == repr(b"\x15")  # C-u, then the paste
    assert after == repr(b"\r")  # Enter, sent on its own after the settle delay
    assert not harness.server.run(["list-buffers"]).strip()  # the paste buffer was deleted


def test_ctrl_u_clears_a_half_typed_line_before_the_text(harness: Harness, tmp_path: Path) -> None:
    out = tmp_path / "typed.txt"
    harness.start(harness.spec(("sh", "-c", 'cat > "$1"', "sh", str(out))))
    harness.ask(Send("half-typed garbage", enter=False))
    harness.wait_screen("half-typed garbage")
    harness.ask(Send("the real line"))
    harness.ask(Send("second; line with $x;"))
    wait_until(
        lambda: out.read_text() == "the real line\nsecond; line with $x;\n", what="both lines, in order"
    )
    harness.ask(SendKeys(("C-d",)))
    expect_event(harness.sub, lambda e: isinstance(e, ChildExited) and e.child_id == "rt")


def test_enter_is_pressed_only_after_the_settle_delay(fake_harness: Harness, tmp_path: Path) -> None:
    out = tmp_path / "typed.txt"
    h = fake_harness
    h.start(h.spec(("sh", "-c", 'cat > "$1"', "sh", str(out)), settle_s=2.0))
    h.ask(Send("first"))
    h.ask(Send("second"))  # queued behind the first one's Enter: its C-u must not wipe "first"
    h.wait_screen("first")
    time.sleep(0.2)  # a negative check: nothing may arrive while the clock stands still
    assert out.read_text() == "" and "second" not in h.screen()
    assert isinstance(h.clock, FakeClock)
    h.clock.advance(2.0)
    wait_until(lambda: out.read_text() == "first\n", what="the first Enter")
    h.wait_screen("second")  # typed once the first Enter went; its own Enter is 2 s (fake) later

    def advanced() -> bool:
        assert isinstance(h.clock, FakeClock)
        h.clock.advance(0.5)  # the Enter may be scheduled a moment after the text shows
        return out.read_text() == "first\nsecond\n"

    wait_until(advanced, what="the second Enter")


def test_send_keys_sends_key_names_and_refuses_text(harness: Harness) -> None:
    harness.start(harness.spec(ECHO_LINES))
    harness.wait_screen("ready")
    harness.ask(SendKeys(("a", "b", "Enter")))
    harness.wait_screen("got ab")
    with pytest.raises(UsageError):
        harness.ask(SendKeys(("not a key",)))
    assert harness.ask(IsAlive())


def test_resize_changes_the_window(harness: Harness) -> None:
    harness.start(harness.spec(("cat",)))
    harness.ask(Resize(100, 30))
    pane = harness.pane()
    out = harness.server.run(
        ["display-message", "-p", "-t", pane.pane_id, "#{window_width}x#{window_height}"]
    )
    assert out.strip() == "100x30"


# -- exits and restarts -------------------------------------------------------------------------------------


def test_kill_9_restarts_with_backoff_until_the_supervisor_gives_up(fake_harness: Harness) -> None:
    h = fake_harness
    assert isinstance(h.clock, FakeClock)
    h.start(
        h.spec(("cat",)),
        flags=SupervisorFlags(max_restarts=2, period_s=600),
        backoff=BackoffSpec(min_s=1.0, max_s=10.0, jitter=0.0),
    )
    pids = [h.pane().pid]
    for attempt, delay in ((1, 1.0), (2, 2.0)):
        os.kill(pids[-1], signal.SIGKILL)
        exited = expect_event(h.sub, lambda e: isinstance(e, ChildExited) and e.child_id == "rt")
        assert str(exited.reason) == "AgentKilled: killed by SIGKILL" and exited.restarting
        restarting = expect_event(h.sub, lambda e: isinstance(e, ChildRestarting))
        assert (restarting.attempt, restarting.delay_s) == (attempt, delay)
        assert h.server.find_session(NAME) is None  # the dead session was removed before the restart
        h.clock.advance(delay)
        expect_event(h.sub, lambda e: isinstance(e, ChildStarted) and e.child_id == "rt" and e.restarted)
        pids.append(h.pane().pid)
        assert alive(pids[-1]) and pids[-1] != pids[-2]
    os.kill(pids[-1], signal.SIGKILL)
    gave_up = expect_event(h.sub, lambda e: isinstance(e, SupervisorGaveUp) and e.supervisor == "root/inst")
    assert "SIGKILL" in str(gave_up.reason) and gave_up.last_child == "rt"
    wait_until(lambda: h.server.list_sessions() == [], what="no session left")


def test_exit_status_zero_ends_the_runtime_normally_and_it_stays_down(harness: Harness) -> None:
    harness.start(harness.spec(("sh", "-c", "read x; exit 0")))
    harness.ask(Send("bye"))
    exited = expect_event(harness.sub, lambda e: isinstance(e, ChildExited) and e.child_id == "rt")
    assert exited.reason.kind == "normal" and not exited.restarting
    wait_until(lambda: harness.server.list_sessions() == [], what="the dead session removed")


def test_a_nonzero_exit_status_is_the_reason_and_the_agent_is_restarted(harness: Harness) -> None:
    harness.start(harness.spec(("sh", "-c", "echo up; read x; exit 3")))
    first = harness.pane().pid
    harness.wait_screen("up")
    harness.ask(Send("bye"))
    exited = expect_event(harness.sub, lambda e: isinstance(e, ChildExited) and e.child_id == "rt")
    assert str(exited.reason) == "AgentExited: exit status 3" and exited.restarting
    expect_event(harness.sub, lambda e: isinstance(e, ChildStarted) and e.child_id == "rt" and e.restarted)
    assert harness.pane().pid != first and not harness.pane().dead


def test_a_session_killed_outside_corral_ends_the_runtime_with_session_gone(harness: Harness) -> None:
    harness.start(harness.spec(("cat",)))
    harness.server.run(["kill-session", "-t", f"={NAME}"])
    exited = expect_event(harness.sub, lambda e: isinstance(e, ChildExited) and e.child_id == "rt")
    assert exited.reason.error_type == "SessionGone"


def test_a_pipe_closed_by_someone_else_is_re_armed(harness: Harness) -> None:
    spec = harness.spec(ECHO_LINES)
    harness.start(spec)
    harness.wait_screen("ready")
    pane_id = harness.pane().pane_id
    harness.server.run(["pipe-pane", "-t", pane_id])  # a person toggles pipe-pane off
    piped = ["display-message", "-p", "-t", pane_id, "#{pane_pipe}"]
    wait_until(lambda: harness.server.run(piped).strip() == "1", what="the pipe re-armed")
    harness.ask(Send("still logged"))
    wait_until(lambda: b"got still logged" in logged(spec.log_path), what="output after the re-arm")
    assert harness.ask(IsAlive())


def test_output_written_just_before_the_exit_is_in_the_log(harness: Harness) -> None:
    code = "input()\nprint('last words ' * 50, flush=True)\nraise SystemExit(4)"
    spec = harness.spec(script(code))
    harness.start(spec)
    harness.ask(Send(""))
    expect_event(harness.sub, lambda e: isinstance(e, ChildExited) and e.child_id == "rt")
    assert b"last words " * 50 in logged(spec.log_path).replace(b"\r\n", b"")


# -- destroy and adoption -----------------------------------------------------------------------------------


GRANDCHILD = r"""
import subprocess, sys, time
gc = sys.argv[1] + "-gc"  # built here, so only the grandchild's own command line ends with it
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", gc], start_new_session=True)
subprocess.Popen(["sleep", "600"])
print("spawned", flush=True)
time.sleep(600)
"""


def test_destroy_leaves_no_process_behind_not_even_a_setsid_grandchild(harness: Harness) -> None:
    marker = f"corral-gc-{secrets.token_hex(4)}"
    harness.start(harness.spec(script(GRANDCHILD, marker)))
    harness.wait_screen("spawned")
    agent = harness.pane().pid
    grandchild = wait_until(lambda: marked_pids(marker + "-gc"), what="the setsid grandchild")[0]
    assert read_stat(grandchild).sid != read_stat(agent).sid  # it escaped the agent's session
    assert harness.ask(Destroy(), timeout=20) == []
    assert not alive(agent) and not alive(grandchild) and marked_pids(marker + "-gc") == []
    assert harness.server.list_sessions() == []
    exited = expect_event(harness.sub, lambda e: isinstance(e, ChildExited) and e.child_id == "rt")
    assert exited.reason.kind == "normal" and not exited.restarting


def test_an_orphaned_setsid_grandchild_is_swept_before_the_restart(harness: Harness) -> None:
    marker = f"corral-gc-{secrets.token_hex(4)}"
    harness.start(harness.spec(script(ORPHANER, marker)))
    harness.wait_screen("spawned")
    grandchild = wait_until(lambda: marked_pids(marker + "-gc"), what="the setsid grandchild")[0]
    assert f"{TOKEN_VAR}=".encode() in Path(f"/proc/{grandchild}/environ").read_bytes()
    harness.ask(Send(""))
    expect_event(harness.sub, lambda e: isinstance(e, ChildStarted) and e.child_id == "rt" and e.restarted)
    assert not alive(grandchild)


ORPHANER = r"""
import subprocess, sys
gc = sys.argv[1] + "-gc"
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", gc], start_new_session=True)
print("spawned", flush=True)
input()
raise SystemExit(9)
"""


@pytest.mark.skipif(SIM is None, reason="corral-sim is not installed")
def test_destroy_kills_the_simulated_agent_and_its_grandchild(harness: Harness) -> None:
    assert SIM is not None
    harness.start(harness.spec((SIM, "--no-trust", "--spawn-grandchild")))
    grandchild = wait_until(lambda: marked_pids("corral-sim-grandchild"), what="the sim's grandchild")[0]
    agent = harness.pane().pid
    assert harness.ask(Destroy(), timeout=20) == []
    assert not alive(agent) and not alive(grandchild)


def test_an_orderly_stop_leaves_the_agent_running_and_the_next_generation_adopts_it(
    server: TmuxServer, tmp_path: Path
) -> None:
    first = Harness(server, tmp_path)
    spec = first.spec(ECHO_LINES)
    first.start(spec)
    first.wait_screen("ready")
    pid = first.pane().pid
    first.stop()  # the daemon shuts down
    assert alive(pid) and server.find_session(NAME).pid == pid
    pipe = server.run(["display-message", "-p", "-t", server.find_session(NAME).pane_id, "#{pane_pipe}"])
    assert pipe.strip() == "0"  # corral's pipe was closed (its cat ended)
    second = Harness(server, tmp_path)
    try:
        second.start(spec)
        ref = second.ref()
        assert ref is not None
        stats = ref.proxy().statistics().get(timeout=5)
        assert stats.adopted and stats.pid == pid and stats.alive
        second.ask(Send("after the restart"))
        wait_until(lambda: b"got after the restart" in logged(spec.log_path), what="output logged")
        wait_until(lambda: second.activity, what="activity of the adopted agent")
        assert second.ask(GetMetrics()).pid == pid
    finally:
        second.stop()


def test_a_dead_session_found_at_start_is_replaced(harness: Harness, tmp_path: Path) -> None:
    harness.server.new_session(NAME, ("sh", "-c", "exit 5"), cwd=str(tmp_path))
    wait_until(lambda: (p := harness.pane()) is not None and p.dead, what="the old agent dead")
    harness.start(harness.spec(ECHO_LINES))
    harness.wait_screen("ready")
    ref = harness.ref()
    assert ref is not None
    stats = ref.proxy().statistics().get(timeout=5)
    assert not stats.adopted and not harness.pane().dead


def test_a_kill_hook_closes_corrals_side_only(harness: Harness) -> None:
    runtimes: list[TmuxRuntime] = []

    class Kept(TmuxRuntime):
        def started(self) -> None:
            super().started()
            runtimes.append(self)

    harness.start(harness.spec(("cat",)), runtime_class=Kept)
    runtime = runtimes[0]
    assert runtime._tap is not None
    fifo, pid = runtime._tap.fifo, harness.pane().pid
    hook = threading.Thread(target=runtime._close_tap)  # what a supervisor's brutal kill runs, on its thread
    hook.start()
    hook.join(10)
    assert not fifo.exists() and alive(pid) and harness.server.list_sessions() == [NAME]


# -- cost ---------------------------------------------------------------------------------------------------


def test_idle_agents_cost_no_tmux_calls(server: TmuxServer, tmp_path: Path) -> None:
    harnesses = []
    try:
        for i in range(5):
            h = Harness(server, tmp_path)
            h.start(h.spec(("cat",), name=f"corral_proj_idle-{i}"))
            harnesses.append(h)
        calls = server.calls
        time.sleep(1.0)  # the point of the test: a second of idleness
        assert server.calls == calls
        assert server.statistics().taps == 5
    finally:
        for h in harnesses:
            h.stop()
