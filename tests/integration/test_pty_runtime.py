"""PtyRuntime with real PTYs and real processes, supervised the way an Instance supervises it.

Each test runs a real supervision tree: root → "inst" (a Supervisor standing in for the Instance, which
records the runtime's activity notices) → "rt" (the PtyRuntime, transient). Agents are small Python
scripts, `sh`, and corral's simulated agent when it is installed. Every wait is on a condition; every
process a test starts is killed in teardown.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sys
import threading
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
from actors.runtimes.pty import PtyRuntime, encode_text, key_bytes
from actors.runtimes.reactor import default_reactor
from actors.supervision import (
    BackoffSpec,
    ChildSpec,
    Restart,
    SupervisionEnv,
    SupervisionTree,
    Supervisor,
    SupervisorFlags,
)
from protocols.errors import ConflictError, SupervisionError
from protocols.messages import ChildExited, ChildRestarting, ChildStarted, SupervisorGaveUp
from tests.unit.actor_kit import expect_event, wait_until

pytestmark = pytest.mark.usefixtures("stop_actors")

PY = sys.executable
SIM = shutil.which("corral-sim", path=str(Path(sys.executable).parent))
RT = "root/inst/rt"


def alive(pid: int) -> bool:
    st = read_stat(pid)
    return st is not None and st.state != "Z"


def tagged_pids(token: str) -> list[int]:
    """Processes whose environment carries `token` (what the runtime's sweep looks for)."""
    needle = f"{TOKEN_VAR}={token}\0".encode()
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                environ = Path(f"/proc/{name}/environ").read_bytes()
            except OSError:
                continue
            if needle in environ and alive(int(name)):
                found.append(int(name))
    return found


class Agents:
    """Starts PtyRuntimes under a stand-in Instance and cleans up every process and tree afterwards."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.trees: list[SupervisionTree] = []
        self.pids: set[int] = set()
        self.activity: list[RuntimeActivity] = []

    def spec(self, *argv: str, name: str = "agent", **kw: Any) -> RuntimeSpec:
        return RuntimeSpec(
            name=name, argv=argv, cwd=str(self.tmp), log_path=str(self.tmp / "logs" / f"{name}.log"), **kw
        )

    def start(
        self,
        spec: RuntimeSpec,
        *,
        clock: FakeClock | SystemClock | None = None,
        flags: SupervisorFlags | None = None,
        backoff: BackoffSpec | None = None,
        runtime_class: type[PtyRuntime] = PtyRuntime,
        **runtime_kw: Any,
    ) -> SupervisionTree:
        activity = self.activity

        class Instance(Supervisor):
            """Stands in for the Instance: supervises the runtime, records its activity notices."""

            def on_receive(self, message: Any) -> Any:
                if isinstance(message, RuntimeActivity):
                    activity.append(message)
                    return None
                return super().on_receive(message)

        runtime = ChildSpec.worker(
            "rt", runtime_class, spec, restart=Restart.TRANSIENT, backoff=backoff, **runtime_kw
        )
        inst = ChildSpec.supervisor(
            "inst",
            flags or SupervisorFlags(max_restarts=5, period_s=60),
            [runtime],
            restart=Restart.TEMPORARY,  # when it gives up, the test sees why; nobody restarts it
            supervisor_class=Instance,
        )
        env = SupervisionEnv.create(clock or FakeClock(), seed=3)
        tree = SupervisionTree.start(SupervisorFlags(max_restarts=0, period_s=1), [inst], env=env)
        self.trees.append(tree)
        return tree

    def ref(self, tree: SupervisionTree) -> pykka.ActorRef[Any]:
        return wait_until(lambda: alive_ref(tree), what="the runtime running")

    def pid(self, tree: SupervisionTree) -> int:
        pid = self.ref(tree).proxy().statistics().get(timeout=5).pid
        self.pids.add(pid)
        return pid

    def close(self) -> None:
        for tree in self.trees:
            tree.stop(timeout=20)
        for pid in self.pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def alive_ref(tree: SupervisionTree) -> pykka.ActorRef[Any] | None:
    ref = tree.env.directory.get(RT)
    return ref if ref is not None and ref.is_alive() else None


def screen(tree: SupervisionTree, lines: int | None = 50, ansi: bool = False) -> str:
    ref = alive_ref(tree)
    return "" if ref is None else ref.ask(Capture(lines=lines, ansi=ansi), timeout=10)


def wait_screen(tree: SupervisionTree, text: str, timeout: float = 10.0, lines: int | None = 50) -> str:
    """Wait until `text` is on the screen; return the screen."""

    def shown() -> str:
        s = screen(tree, lines)
        return s if text in s else ""

    return wait_until(shown, timeout, what=f"{text!r} on the screen")


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Agents]:
    kit = Agents(tmp_path)
    yield kit
    kit.close()


def script(body: str) -> tuple[str, ...]:
    return (PY, "-c", body)


# -- output -------------------------------------------------------------------------------------------------


def test_output_reaches_capture_and_coalesced_activity_reaches_the_instance(agents: Agents) -> None:
    tree = agents.start(agents.spec("sh", "-c", "for i in 1 2 3; do echo line $i; done; exec cat"))
    assert wait_screen(tree, "line 3").splitlines() == ["line 1", "line 2", "line 3"]
    wait_until(lambda: sum(a.nbytes for a in agents.activity) == 24, what="notices for all 24 bytes")
    assert {(a.child_id, a.generation) for a in agents.activity} == {("rt", 1)}
    stats = agents.ref(tree).proxy().statistics().get(timeout=5)
    assert stats.alive and stats.kind == "pty" and not stats.adopted
    assert stats.bytes_read == 24 and stats.last_output_at == agents.activity[-1].at


def test_capture_strips_ansi_and_spinner_redraws_unless_asked_to_keep_ansi(agents: Agents) -> None:
    body = r"printf '\033[1;32mgreen\033[0m\r\nworking |\rworking /\r\033[2Kdone\r\n'; exec cat"
    tree = agents.start(agents.spec("sh", "-c", body))
    assert wait_screen(tree, "done") == "green\ndone"
    assert screen(tree, ansi=True).startswith("\x1b[1;32mgreen\x1b[0m\n")
    assert screen(tree, lines=1) == "done"


def test_capture_of_the_full_history_is_bounded_by_the_ring(agents: Agents) -> None:
    body = "import sys\nfor n in range(5000): print(f'line {n:05d}')\nsys.stdin.read()"
    tree = agents.start(agents.spec(*script(body), ring_bytes=16 * 1024))
    wait_screen(tree, "line 04999", lines=1)
    everything = screen(tree, lines=None).splitlines()
    assert everything[-1] == "line 04999"
    assert 16 * 1024 // 13 - 2 <= len(everything) <= 16 * 1024 // 12  # "line 00000\r\n" is 12 bytes
    assert everything == [f"line {n:05d}" for n in range(5000 - len(everything), 5000)]  # whole lines only
    assert screen(tree, lines=3).splitlines() == ["line 04997", "line 04998", "line 04999"]


def test_the_log_gets_every_byte_and_rotates(agents: Agents) -> None:
    body = "import sys\nfor n in range(3000): print(f'{n:09d}')\nsys.stdin.read()"
    spec = agents.spec(*script(body), log_max_bytes=8192, log_backups=2)
    tree = agents.start(spec)
    wait_screen(tree, "000002999", lines=1)
    log = Path(spec.log_path)
    wait_until(lambda: log.exists() and log.read_bytes().endswith(b"000002999\r\n"), what="the log flushed")
    files = [log, log.with_name("agent.log.1"), log.with_name("agent.log.2")]
    assert all(f.exists() and f.stat().st_size <= 8192 for f in files)
    assert not log.with_name("agent.log.3").exists()
    kept = b"".join(f.read_bytes() for f in reversed(files))
    assert kept == b"".join(f"{n:09d}\r\n".encode() for n in range(3000))[-len(kept) :]


def test_every_pty_in_the_process_is_read_by_one_reactor_thread(agents: Agents) -> None:
    trees = [
        agents.start(agents.spec("sh", "-c", f"echo agent {n}; exec cat", name=f"a{n}")) for n in range(3)
    ]
    for n, tree in enumerate(trees):
        wait_screen(tree, f"agent {n}")
    readers = [t for t in threading.enumerate() if t.name == "corral-pty-reactor"]
    assert len(readers) == 1 and readers[0].daemon
    assert default_reactor().channels() >= 3


# -- input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "sent"),
    [
        (("Enter", "enter", "Escape", "Tab", "BSpace", "Space"), b"\r\r\x1b\t\x7f "),
        (
            ("Up", "Down", "Right", "Left", "Home", "End", "PPage", "NPage"),
            b"\x1b[A\x1b[B\x1b[C\x1b[D\x1b[H\x1b[F\x1b[5~\x1b[6~",
        ),
        (("C-c", "C-u", "^D", "C-[", "C-Space", "M-x", "C-M-a"), b"\x03\x15\x04\x1b\x00\x1bx\x1b\x01"),
        (
            ("C-Up", "S-Left", "M-Delete", "S-Tab", "F1", "F12"),
            b"\x1b[1;5A\x1b[1;2D\x1b[3;3~\x1b[Z\x1bOP\x1b[24~",
        ),
        (("y", "hello", "Entre", "é"), "yhelloEntreé".encode()),  # not a key name: sent as text, like tmux
    ],
)
def test_tmux_key_names_become_what_an_xterm_sends(keys: tuple[str, ...], sent: bytes) -> None:
    assert b"".join(key_bytes(k) for k in keys) == sent


def test_text_is_typed_when_short_and_pasted_when_long_or_multi_line() -> None:
    assert encode_text("fix the bug") == b"fix the bug"
    assert encode_text("a\r\nb\nc") == b"\x1b[200~a\rb\rc\x1b[201~"
    assert encode_text("a\nb", bracketed=False) == b"a\rb"
    assert encode_text("x" * 201) == b"\x1b[200~" + b"x" * 201 + b"\x1b[201~"
    assert encode_text("end early\x1b[201~\nrm -rf /") == b"\x1b[200~end early\rrm -rf /\x1b[201~"


RAW_READER = r"""
import hashlib, os, sys, tty
tty.setraw(0)
if sys.argv[1] == "bracketed":
    os.write(1, b"\x1b[?2004h")
os.write(1, b"ready\r\n")
data = b""
while not (data.endswith(b"\r") and (b"\x1b[200~" not in data or b"\x1b[201~\r" in data)):
    data += os.read(0, 65536)
with open(sys.argv[2] + ".tmp", "wb") as f:
    f.write(data)
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
os.write(1, f"got {len(data)} bytes sha256 {hashlib.sha256(data).hexdigest()}\r\n".encode())
sys.stdin.read(1)
"""

TRICKY = 'say "hi" it\'s $HOME `whoami` \\n %s ü 🐎 — '


@pytest.mark.parametrize(
    ("mode", "text", "sent"),
    [
        ("bracketed", (TRICKY * 400)[:10_000], "\x1b[200~{}\x1b[201~"),
        ("bracketed", "\n".join([TRICKY * 3] * 60)[:10_000], "\x1b[200~{}\x1b[201~"),
        ("plain", (TRICKY * 400)[:10_000], "{}"),
        ("plain", "\n".join([TRICKY * 3] * 60)[:10_000], "{}"),
        ("plain", "short and sweet $x `y`", "{}"),
    ],
    ids=["long-line-pasted", "multi-line-pasted", "long-line-bare", "multi-line-bare", "short-typed"],
)
def test_sent_text_arrives_intact_at_a_raw_mode_agent(
    agents: Agents, mode: str, text: str, sent: str
) -> None:
    out = agents.tmp / "received"
    tree = agents.start(agents.spec(*script(RAW_READER), mode, str(out), settle_s=0.05))
    wait_screen(tree, "ready")
    agents.ref(tree).ask(Send(text), timeout=5)
    wait_screen(tree, "sha256")
    expected = b"\x15" + sent.format(text.replace("\n", "\r")).encode() + b"\r"
    got = out.read_bytes()
    assert len(got) == len(expected) and hashlib.sha256(got).digest() == hashlib.sha256(expected).digest()
    assert f"got {len(expected)} bytes sha256 {hashlib.sha256(expected).hexdigest()}" in screen(tree)


def test_a_line_mode_terminal_takes_a_short_line_but_refuses_one_it_would_cut(agents: Agents) -> None:
    body = (
        "import termios\n"
        "mode = termios.tcgetattr(0); mode[3] &= ~termios.ECHO; termios.tcsetattr(0, termios.TCSANOW, mode)\n"
        "print('ready', flush=True)\n"
        "while True: print('got', repr(input()), flush=True)"
    )  # line mode without echo: with echo, the kernel itself loses lines of a burst (docs/runtimes.md)
    tree = agents.start(agents.spec(*script(body), settle_s=0.02))
    rt = agents.ref(tree)
    wait_screen(tree, "ready")
    assert rt.ask(IsAlive(), timeout=5)
    rt.ask(SendKeys(("h", "a", "l", "f")), timeout=5)  # half-typed: C-u must clear it
    rt.ask(Send("hello world"), timeout=5)
    wait_screen(tree, "got 'hello world'")
    rt.ask(Send("\n".join(["x" * 1300] * 3)), timeout=5)  # 3.9 KB in all: fine
    wait_until(lambda: screen(tree).count("got 'xxxx") == 3, what="three long lines")
    for text in ("y" * 4096, "\n".join(["z" * 2000] * 3)):
        with pytest.raises(ConflictError, match=r"line mode, which holds 4095 bytes.* would arrive cut"):
            rt.ask(Send(text), timeout=5)


def test_send_keys_sends_what_a_terminal_sends_for_tmux_key_names(agents: Agents) -> None:
    out = agents.tmp / "keys"
    tree = agents.start(agents.spec(*script(RAW_READER), "plain", str(out)))
    wait_screen(tree, "ready")
    keys = ("Up", "C-c", "Escape", "y", "BSpace", "Tab", "C-Up", "M-x", "F5", "hi", "Enter")
    agents.ref(tree).ask(SendKeys(keys), timeout=5)
    wait_screen(tree, "sha256")
    assert out.read_bytes() == b"\x1b[A\x03\x1by\x7f\t\x1b[1;5A\x1bx\x1b[15~hi\r"


def test_resize_is_seen_by_the_agent(agents: Agents) -> None:
    body = (
        "import os, signal\n"
        "def show(*_): print('size', *os.get_terminal_size(0), os.environ['COLUMNS'], flush=True)\n"
        "signal.signal(signal.SIGWINCH, show); show()\n"
        "while True: signal.pause()"
    )
    tree = agents.start(agents.spec(*script(body), cols=132, rows=43))
    wait_screen(tree, "size 132 43 132")
    agents.ref(tree).ask(Resize(cols=90, rows=21), timeout=5)
    wait_screen(tree, "size 90 21")
    assert "90x21" in agents.ref(tree).ask(GetAttachInfo(), timeout=5).detail


# -- exits and restarts -------------------------------------------------------------------------------------


def test_an_agent_killed_is_restarted_with_backoff_until_the_intensity_gives_up(agents: Agents) -> None:
    clock = FakeClock()
    backoff = BackoffSpec(min_s=2, max_s=8, jitter=0, reset_after_s=100)
    tree = agents.start(
        agents.spec("sh", "-c", "echo up; exec cat"),
        clock=clock,
        flags=SupervisorFlags(max_restarts=2, period_s=60),
        backoff=backoff,
    )
    sub = tree.env.hub.subscribe()
    pids = []
    for attempt in range(3):
        wait_screen(tree, "up")
        pids.append(agents.pid(tree))
        os.kill(pids[-1], signal.SIGKILL)
        exited = expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "rt")
        assert (exited.reason.error_type, exited.reason.message) == ("AgentKilled", "killed by SIGKILL")
        if attempt == 2:
            break
        restarting = expect_event(sub, lambda e: isinstance(e, ChildRestarting))
        assert restarting.delay_s == [2, 4][attempt]
        clock.advance(restarting.delay_s - 0.1)
        assert alive_ref(tree) is None  # not a moment early
        clock.advance(0.1)
        expect_event(sub, lambda e: isinstance(e, ChildStarted) and e.child_id == "rt" and e.restarted)
    gave_up = expect_event(sub, lambda e: isinstance(e, SupervisorGaveUp))
    assert gave_up.supervisor == "root/inst" and gave_up.reason.message == "killed by SIGKILL"
    assert len(set(pids)) == 3 and not any(alive(p) for p in pids)


def test_exit_status_zero_ends_normal_and_is_not_restarted(agents: Agents) -> None:
    tree = agents.start(agents.spec("sh", "-c", "echo bye"))
    sub = tree.env.hub.subscribe()
    exited = expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "rt")
    assert exited.reason.kind == "normal" and not exited.restarting
    assert alive_ref(tree) is None


def test_a_failing_exit_status_is_an_error_and_the_runtime_restarts(agents: Agents) -> None:
    tree = agents.start(agents.spec("sh", "-c", "echo oops; exit 3"), flags=SupervisorFlags(1, 60))
    sub = tree.env.hub.subscribe()
    exited = expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "rt")
    assert str(exited.reason) == "AgentExited: exit status 3" and exited.restarting


def test_a_command_that_does_not_exist_fails_the_start_with_the_reason(agents: Agents) -> None:
    with pytest.raises(SupervisionError, match="command not found: 'no-such-agent-cli'"):
        agents.start(agents.spec("no-such-agent-cli"))


# -- killing ------------------------------------------------------------------------------------------------

GRANDPARENT = r"""
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import os, time; os.setsid(); time.sleep(600)"])
subprocess.Popen(["sleep", "600"])  # an ordinary child, in the agent's group
print("grandchild", child.pid, flush=True)
time.sleep(600)
"""


def test_destroy_kills_the_agent_its_children_and_a_setsid_grandchild(agents: Agents) -> None:
    tree = agents.start(agents.spec(*script(GRANDPARENT)))
    sub = tree.env.hub.subscribe()
    grandchild = int(wait_screen(tree, "grandchild").split()[-1])
    agents.pids.add(grandchild)
    pid = agents.pid(tree)
    wait_until(lambda: read_stat(grandchild).sid == grandchild, what="the grandchild in its own session")
    family = [st.pid for st in _tree(pid)]
    assert len(family) == 3
    survivors = agents.ref(tree).ask(Destroy(), timeout=20)
    assert survivors == []
    assert not any(alive(p) for p in family)
    exited = expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "rt")
    assert exited.reason.kind == "normal" and not exited.restarting


def test_a_setsid_grandchild_orphaned_by_a_crashed_agent_is_swept_when_the_runtime_ends(
    agents: Agents,
) -> None:
    tree = agents.start(agents.spec(*script(GRANDPARENT)), flags=SupervisorFlags(0, 60))
    sub = tree.env.hub.subscribe()
    grandchild = int(wait_screen(tree, "grandchild").split()[-1])
    agents.pids.add(grandchild)
    pid = agents.pid(tree)
    token = agents.ref(tree).proxy().token.get(timeout=5)
    assert grandchild in tagged_pids(token)
    os.kill(pid, signal.SIGKILL)  # the grandchild is reparented: no parent chain, another session
    exited = expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "rt")
    assert exited.reason.message == "killed by SIGKILL"
    assert not alive(grandchild) and tagged_pids(token) == []


def test_stopping_the_tree_kills_the_agent_even_when_it_ignores_sighup_and_sigterm(agents: Agents) -> None:
    body = (
        "import signal, time\n"
        "for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT): signal.signal(s, signal.SIG_IGN)\n"
        "print('stubborn', flush=True)\n"
        "while True: time.sleep(1)"
    )
    tree = agents.start(agents.spec(*script(body)), stop_grace_s=0.3)
    wait_screen(tree, "stubborn")
    pid = agents.pid(tree)
    tree.stop(timeout=20)
    assert not alive(pid)
    assert read_stat(pid) is None  # reaped, not left a zombie


def test_a_runtime_that_hangs_in_its_stop_has_its_agent_killed_by_the_kill_hook(agents: Agents) -> None:
    release = threading.Event()

    class Hanging(PtyRuntime):
        def stopping(self) -> None:
            release.wait(30)  # a hung actor: its supervisor gives up on it after shutdown_s
            super().stopping()

    spec = agents.spec("sh", "-c", "echo up; exec sleep 600")
    tree = agents.start(spec, runtime_class=Hanging, shutdown_s=0.5)
    sub = tree.env.hub.subscribe()
    wait_screen(tree, "up")
    pid = agents.pid(tree)
    try:
        tree.stop(timeout=20)
        exited = expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "rt")
        assert exited.reason.error_type == "ShutdownTimeout"
        assert not alive(pid)
    finally:
        release.set()  # the abandoned thread finishes its stop: reaps the agent
    wait_until(lambda: read_stat(pid) is None, what="the agent reaped")


# -- metrics and memory -------------------------------------------------------------------------------------


def test_metrics_cover_the_agent_process_tree(agents: Agents) -> None:
    tree = agents.start(agents.spec("sh", "-c", "sleep 600 & echo up; exec cat"))
    wait_screen(tree, "up")
    metrics = agents.ref(tree).ask(GetMetrics(), timeout=5)
    assert metrics.pid == agents.pid(tree) and metrics.processes == 2 and metrics.rss_bytes > 0


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


FLOODER = r"""
import os, sys, tty
tty.setraw(0)
os.write(1, b"ready\r\n")
os.read(0, 1)
line = b"flood " + b"x" * 121 + b"\n"
chunk = line * 512
left = int(sys.argv[1]) * 1_000_000
while left > 0:
    left -= os.write(1, chunk[:left])
os.write(1, b"\r\nflood done\r\n")
os.read(0, 1)
"""


def test_a_50_mb_flood_costs_no_more_memory_than_the_ring(agents: Agents) -> None:
    ring = 4 * 1024 * 1024
    spec = agents.spec(*script(FLOODER), "50", ring_bytes=ring, log_max_bytes=1 << 20, log_backups=1)
    tree = agents.start(spec, clock=SystemClock())
    wait_screen(tree, "ready")
    before = _rss()
    agents.ref(tree).ask(SendKeys(("g",)), timeout=5)
    wait_screen(tree, "flood done", timeout=120, lines=1)
    grown = _rss() - before
    runtime = agents.ref(tree).proxy()
    assert runtime.ring.get(timeout=5).__len__() == ring
    assert runtime.statistics().get(timeout=5).bytes_read >= 50_000_000
    print(f"RSS grew {grown / 2**20:.1f} MiB over a 50 MB flood ({len(agents.activity)} notices)")
    assert grown < ring + 12 * 1024 * 1024, (
        f"RSS grew {grown / 2**20:.1f} MiB for a {ring / 2**20:.0f} MiB ring"
    )
    assert sum(a.nbytes for a in agents.activity) <= runtime.statistics().get(timeout=5).bytes_read
    assert len(agents.activity) < 50_000_000 / 65536 + 200  # coalesced, not one notice per read


# -- the simulated agent ------------------------------------------------------------------------------------


needs_sim = pytest.mark.skipif(SIM is None, reason="corral-sim is not installed")


@needs_sim
def test_the_simulated_agent_takes_a_prompt_and_answers(agents: Agents) -> None:
    tree = agents.start(agents.spec(SIM, "--no-trust"), clock=SystemClock())
    wait_screen(tree, "> ")
    agents.ref(tree).ask(Send("/echo hello from corral"), timeout=5)
    wait_screen(tree, "⏺ hello from corral")


@needs_sim
def test_a_dialog_the_agent_erased_is_gone_from_the_capture(agents: Agents) -> None:
    tree = agents.start(agents.spec(SIM), clock=SystemClock())
    wait_screen(tree, "Do you trust the files in this folder?")
    assert "❯ 1. Yes, proceed" in screen(tree)
    agents.ref(tree).ask(SendKeys(("Enter",)), timeout=5)
    wait_until(lambda: screen(tree).endswith("> "), what="the prompt")
    assert "trust" not in screen(tree) and "Yes, proceed" not in screen(tree, lines=None)
    assert "trust the files" in screen(tree, ansi=True)  # the output as written still has it


@needs_sim
def test_destroy_sweeps_the_simulated_agents_setsid_grandchild(agents: Agents) -> None:
    tree = agents.start(agents.spec(SIM, "--no-trust", "--spawn-grandchild"))
    wait_screen(tree, "> ")
    pid = agents.pid(tree)
    family = wait_until(lambda: [st.pid for st in _tree(pid)] if len(_tree(pid)) == 2 else None)
    agents.pids.update(family)
    assert agents.ref(tree).ask(Destroy(), timeout=20) == []
    assert not any(alive(p) for p in family)


def _tree(pid: int) -> list[Any]:
    from actors.runtimes.procinfo import tree

    return tree(pid)
