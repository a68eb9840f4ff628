"""TmuxRuntime benchmarks (make bench: pytest -q -s tests/perf): printed tables, no timing asserts.

1. Spawning 50 tmux agents with worktrees as corral does (`create_worktree`, then a TmuxRuntime), next to the
   same `git worktree add` + `tmux new-session` commands run by a shell loop in the same run. Goal: ratio
   <= 1.3. A reference side runs corral's runtime after the shell loop's plain `git worktree add`, to tell
   what create_worktree costs from what the runtime costs.
2. Idle cost: CPU spent by corral for 50 idle tmux agents, next to a poller that runs `capture-pane` every
   200 ms for each (as kasmos and claude-squad do). Goal: ratio <= 0.05. The window is CORRAL_BENCH_IDLE_S
   (default 20 s instead of 60 s) for both sides.
3. Restart after kill -9 (first restart, no backoff): from SIGKILL of the agent to the new agent's pane
   alive (the new generation's ChildStarted). Goal: median <= 200 ms.
4. The experiment behind the choice of pipe-pane over control mode (actors/runtimes/tmux.py): the same 50
   agents read through `pipe-pane` into FIFOs and through one control-mode client per session, one selector
   thread each time: idle CPU, output → reader latency, CPU per MB, processes per agent.

Every side gets its own tmux server (`-L corral-bench-<hex>`), killed at the end with what its agents left.
"""

from __future__ import annotations

import codecs
import os
import re
import secrets
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.clock import SystemClock
from actors.runtimes.base import RuntimeSpec
from actors.runtimes.procinfo import read_stat
from actors.runtimes.tmux import TOKEN_VAR, TmuxRuntime
from actors.runtimes.tmux_server import TmuxServer
from actors.supervision import ChildSpec, Restart, SupervisionEnv, SupervisionTree, SupervisorFlags
from protocols.messages import ChildStarted
from tests.perf.report import median, percentile, print_table

pytestmark = pytest.mark.bench

AGENTS = 50
IDLE_S = float(os.environ.get("CORRAL_BENCH_IDLE_S", "20"))
RESTARTS = 20
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@corral.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@corral.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}
_CLK = os.sysconf("SC_CLK_TCK")


def new_server(tmp: Path) -> TmuxServer:
    socket = f"corral-bench-{secrets.token_hex(4)}"
    return TmuxServer(socket, run_dir=tmp / f"run-{socket}" / "tmux" / "s")


def cleanup(server: TmuxServer) -> None:
    """Kill the server and every process its agents started (they carry the runtimes' token)."""
    server.close()
    server.kill()
    needle = f"{TOKEN_VAR}=tmux-{server.socket}-".encode()
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                if needle in Path(f"/proc/{name}/environ").read_bytes():
                    os.kill(int(name), signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[TmuxServer]]:
    made: list[TmuxServer] = []
    yield made
    for server in made:
        cleanup(server)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=True, timeout=60
    ).stdout


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("bench\n")
    git(path, "add", "README.md")
    git(path, "commit", "-q", "-m", "initial")
    return path


def cpu_s(pid: int) -> float:
    st = read_stat(pid)
    return st.cpu_s if st is not None else 0.0


def server_pid(server: TmuxServer) -> int:
    return int(server.run(["display-message", "-p", "#{pid}"]))


def children(pid: int, comm: str) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := read_stat(int(name))) is not None and st.ppid == pid:
            try:
                if Path(f"/proc/{name}/comm").read_text().strip() == comm:
                    out.append(int(name))
            except OSError:
                pass
    return out


def runtime_spec(name: str, cwd: str, logs: Path, argv: tuple[str, ...] = ("sleep", "3600")) -> RuntimeSpec:
    return RuntimeSpec(name=name, argv=argv, cwd=cwd, log_path=str(logs / f"{name}.log"))


def start_tree(children_specs: list[ChildSpec] | None = None, **flags: Any) -> SupervisionTree:
    env = SupervisionEnv.create(SystemClock(), seed=1)
    return SupervisionTree.start(
        SupervisorFlags(**(flags or {"max_restarts": 1000, "period_s": 600})), children_specs or [], env=env
    )


# -- 1. spawning 50 agents with worktrees -------------------------------------------------------------------

SHELL_LOOP = r"""
for i in $(seq 0 $(($3 - 1))); do
  git -C "$1" worktree add -q -b "shell/agent-$i" "$1/.worktrees/agent-$i" HEAD &&
  tmux -L "$2" -f /dev/null new-session -d -s "shell_agent-$i" -x 200 -y 50 -c "$1/.worktrees/agent-$i" \
    -- sleep 3600 || exit 1
done
"""


def spawn_shell(repo: Path, server: TmuxServer) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        ["bash", "-c", SHELL_LOOP, "loop", str(repo), server.socket, str(AGENTS)],
        env=GIT_ENV,
        check=True,
        timeout=300,
    )
    return time.perf_counter() - t0


def spawn_corral(repo: Path, server: TmuxServer, logs: Path, *, plain_git: bool) -> tuple[float, float, Any]:
    """Start the agents as corral does: `create_worktree`, then a supervised TmuxRuntime. `plain_git` puts
    the shell loop's `git worktree add` in create_worktree's place (the reference side). Returns the time
    in all, the time spent making worktrees, and the tree."""
    from actors.git import create_worktree

    tree = start_tree()
    in_git = 0.0
    t0 = time.perf_counter()
    for i in range(AGENTS):
        t1 = time.perf_counter()
        if plain_git:
            cwd = str(repo / ".worktrees" / f"agent-{i}")
            git(repo, "worktree", "add", "-q", "-b", f"raw/agent-{i}", cwd, "HEAD")
        else:
            cwd = create_worktree(repo, f"agent {i}").path
        in_git += time.perf_counter() - t1
        spec = runtime_spec(f"corral_bench_agent-{i}", cwd, logs)
        tree.start_child(ChildSpec.worker(f"rt{i}", TmuxRuntime, spec, server, restart=Restart.TRANSIENT))
    elapsed = time.perf_counter() - t0
    return elapsed, in_git, tree


def test_bench_spawn_50_agents_with_worktrees(
    tmp_path: Path, servers: list[TmuxServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in GIT_ENV.items():
        if key.startswith("GIT_"):
            monkeypatch.setenv(key, value)
    shell: list[float] = []
    sides: dict[str, tuple[list[float], list[float]]] = {"corral": ([], []), "plain": ([], [])}
    for run in range(3):
        srv = new_server(tmp_path)
        servers.append(srv)
        shell.append(spawn_shell(make_repo(tmp_path / f"shell-{run}"), srv))
        cleanup(srv)
        for kind, (totals, in_git) in sides.items():
            srv = new_server(tmp_path)
            servers.append(srv)
            repo = make_repo(tmp_path / f"{kind}-{run}")
            elapsed, git_s, tree = spawn_corral(repo, srv, tmp_path / "logs", plain_git=kind == "plain")
            assert len(srv.list_sessions()) == AGENTS
            totals.append(elapsed)
            in_git.append(git_s)
            tree.stop(timeout=60)
            cleanup(srv)
    sh = median(shell)
    co, co_git = (median(v) for v in sides["corral"])
    plain, plain_git = (median(v) for v in sides["plain"])

    def per_agent(*seconds: float) -> str:
        return " / ".join(f"{s / AGENTS * 1000:.1f}" for s in seconds) + " ms"

    def each_run(side: list[float], reference: list[float]) -> str:  # how much the machine's load moved
        return ", ".join(f"{a / b:.2f}" for a, b in zip(side, reference, strict=True))

    print_table(
        f"spawn {AGENTS} tmux agents with worktrees (median of 3, sequential)",
        [
            ("shell loop: git worktree add + tmux new-session", f"{sh:.2f} s", "", None),
            ("corral: create_worktree + TmuxRuntime", f"{co:.2f} s", "", None),
            ("ratio corral / shell", f"{co / sh:.2f}", "<= 1.3", co / sh <= 1.3),
            ("ratio corral / shell, run by run", each_run(sides["corral"][0], shell), "", None),
            ("per agent: shell / corral", per_agent(sh, co), "", None),
            ("per agent: create_worktree / plain git worktree add", per_agent(co_git, plain_git), "", None),
            ("reference: plain git worktree add + TmuxRuntime", f"{plain:.2f} s", "", None),
            ("reference: ratio with plain git worktree add / shell", f"{plain / sh:.2f}", "", None),
            ("reference: ratio, run by run", each_run(sides["plain"][0], shell), "", None),
        ],
    )


# -- 2. idle cost -------------------------------------------------------------------------------------------

POLLER = r"""
import resource, subprocess, sys, time
socket, seconds, names = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
end = time.monotonic() + seconds
calls = 0
while time.monotonic() < end:
    tick = time.monotonic()
    for name in names:
        subprocess.run(["tmux", "-L", socket, "capture-pane", "-p", "-e", "-J", "-t", f"={name}:"],
                       capture_output=True)
        calls += 1
    time.sleep(max(0.0, 0.2 - (time.monotonic() - tick)))
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime, calls)
"""


def test_bench_idle_cost_next_to_a_capture_pane_poller(tmp_path: Path, servers: list[TmuxServer]) -> None:
    srv = new_server(tmp_path)
    servers.append(srv)
    specs = [runtime_spec(f"corral_bench_idle-{i}", str(tmp_path), tmp_path / "logs") for i in range(AGENTS)]
    tree = start_tree([ChildSpec.worker(f"rt{i}", TmuxRuntime, s, srv) for i, s in enumerate(specs)])
    try:
        tmux = server_pid(srv)
        cats = children(tmux, "cat")
        assert len(cats) == AGENTS
        time.sleep(1.0)  # let start-up settle
        calls0, cpu0, cats0, tmux0 = srv.calls, time.process_time(), sum(map(cpu_s, cats)), cpu_s(tmux)
        time.sleep(IDLE_S)  # the measure: corral left alone with 50 idle agents
        calls = srv.calls - calls0
        corral_cpu = time.process_time() - cpu0 + sum(map(cpu_s, cats)) - cats0
        tmux_corral = cpu_s(tmux) - tmux0

        tmux0 = cpu_s(tmux)
        out = subprocess.run(
            [sys.executable, "-c", POLLER, srv.socket, str(IDLE_S), *(s.name for s in specs)],
            capture_output=True,
            text=True,
            check=True,
            timeout=IDLE_S * 3 + 60,
        ).stdout.split()
        poller_cpu = float(out[0]) + float(out[1])
        tmux_poller = cpu_s(tmux) - tmux0
    finally:
        tree.stop(timeout=60)
    ratio = corral_cpu / poller_cpu
    print_table(
        f"idle cost: {AGENTS} idle tmux agents for {IDLE_S:g} s (sleep 3600)",
        [
            ("corral: process CPU + its 50 cat helpers", f"{corral_cpu * 1000:.1f} ms", "", None),
            ("corral: tmux calls while idle", str(calls), "0", calls == 0),
            ("poller: capture-pane every 200 ms each (self + children)", f"{poller_cpu:.2f} s", "", None),
            ("poller: capture-pane calls", out[2], "", None),
            ("tmux server CPU: corral / poller window", f"{tmux_corral:.2f} / {tmux_poller:.2f} s", "", None),
            ("ratio corral / poller", f"{ratio:.4f}", "<= 0.05", ratio <= 0.05),
        ],
    )


# -- 3. restart after kill -9 -------------------------------------------------------------------------------


def test_bench_restart_after_kill_9(tmp_path: Path, servers: list[TmuxServer]) -> None:
    srv = new_server(tmp_path)
    servers.append(srv)
    spec = runtime_spec("corral_bench_restart", str(tmp_path), tmp_path / "logs", ("cat",))
    tree = start_tree([ChildSpec.worker("rt", TmuxRuntime, spec, srv, restart=Restart.TRANSIENT)])
    assert tree.env.hub is not None
    sub = tree.env.hub.subscribe()
    times = []
    try:
        for generation in range(2, RESTARTS + 2):
            pane = srv.find_session(spec.name)
            assert pane is not None and not pane.dead
            t0 = time.perf_counter()
            os.kill(pane.pid, signal.SIGKILL)
            while True:
                event = sub.get(timeout=10)
                assert event is not None, "no restart within 10 s"
                if (
                    isinstance(event, ChildStarted)
                    and event.child_id == "rt"
                    and event.generation == generation
                ):
                    break
            times.append(time.perf_counter() - t0)
            new = srv.find_session(spec.name)
            assert new is not None and new.pid != pane.pid and not new.dead
    finally:
        tree.stop(timeout=30)
    med = median(times)
    print_table(
        f"restart after kill -9 (tmux, {RESTARTS} runs, no backoff): SIGKILL → new pane alive",
        [
            ("median", f"{med * 1000:.1f} ms", "<= 200 ms", med <= 0.2),
            ("p95", f"{percentile(times, 95) * 1000:.1f} ms", "", None),
            ("max", f"{max(times) * 1000:.1f} ms", "", None),
        ],
    )


# -- 4. pipe-pane vs control mode ---------------------------------------------------------------------------

PUSH_AGENT = r"""
import os, sys, time
mode = sys.argv[1]
sys.stdin.readline()
if mode == "latency":
    for i in range(100):
        os.write(1, b"T%d\r\n" % time.monotonic_ns())
        time.sleep(0.03)
elif mode == "flood":
    line = b"\x1b[32mline %08d\x1b[0m the quick brown fox jumps over the lazy dog 0123456789\r\n"
    sys.stdout.buffer.write(b"".join(line % i for i in range(300_000)))
    sys.stdout.flush()
    os.write(1, b"DONE\r\n")
time.sleep(3600)
"""
_OUTPUT = re.compile(rb"%output %\d+ (.*)")
_STAMP = re.compile(rb"T(\d+)\r")


class PushReader:
    """One selector thread over every agent's stream: FIFO bytes, or control-mode lines to unescape."""

    def __init__(self, control: bool) -> None:
        self.control = control
        self.sel = selectors.DefaultSelector()
        self.partial: dict[int, bytes] = {}
        self.latency_ms: list[float] = []
        self.flood_bytes = 0
        self.flood_done = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def add(self, fd: int, role: str) -> None:
        os.set_blocking(fd, False)
        self.partial[fd] = b""
        self.sel.register(fd, selectors.EVENT_READ, role)

    def run(self) -> None:
        while not self.stop.is_set():
            for key, _ in self.sel.select(0.5):
                try:
                    data = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                if not data:
                    self.sel.unregister(key.fd)
                    continue
                if self.control:
                    lines = (self.partial[key.fd] + data).split(b"\n")
                    self.partial[key.fd] = lines.pop()
                    data = b"".join(
                        codecs.escape_decode(m.group(1))[0]  # type: ignore[attr-defined]
                        for line in lines
                        if (m := _OUTPUT.match(line))
                    )
                now = time.monotonic_ns()
                if key.data == "latency":
                    self.latency_ms += [(now - int(m.group(1))) / 1e6 for m in _STAMP.finditer(data)]
                elif key.data == "flood":
                    self.flood_bytes += len(data)
                    if b"DONE" in data:
                        self.flood_done.set()


def measure_push(tmp: Path, control: bool) -> dict[str, float]:
    srv = new_server(tmp)
    try:
        roles = ["latency", "flood"] + ["idle"] * (AGENTS - 2)
        for i, role in enumerate(roles):
            srv.run(
                ["set-option", "-g", "remain-on-exit", "on"],
                [
                    "new-session",
                    "-d",
                    "-s",
                    f"push-{i}",
                    "-x",
                    "200",
                    "-y",
                    "50",
                    "--",
                    sys.executable,
                    "-c",
                    PUSH_AGENT,
                    role,
                ],
                ["set-option", "-w", "-t", f"=push-{i}:", "window-size", "manual"],
            )
        tmux = server_pid(srv)
        reader = PushReader(control)
        helpers: list[subprocess.Popen[bytes]] = []
        fifo_dir = tmp / f"fifos-{srv.socket}"
        fifo_dir.mkdir()
        for i, role in enumerate(roles):
            if control:
                client = subprocess.Popen(
                    srv.argv("-C", "attach-session", "-t", f"=push-{i}"),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
                helpers.append(client)
                assert client.stdout is not None
                reader.add(client.stdout.fileno(), role)
            else:
                fifo = fifo_dir / f"{i}.fifo"
                os.mkfifo(fifo)
                reader.add(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK), role)
                srv.run(["pipe-pane", "-O", "-t", f"=push-{i}:", f"exec cat >> {fifo}"])
        reader.thread.start()
        time.sleep(1.0)
        helper_pids = [h.pid for h in helpers] if control else children(tmux, "cat")
        rss = sum((read_stat(p).rss_bytes if read_stat(p) else 0) for p in helper_pids) / len(helper_pids)

        def snap() -> tuple[float, float, float]:
            return cpu_s(tmux), sum(map(cpu_s, helper_pids)), time.process_time()

        a = snap()
        time.sleep(5.0)
        b = snap()
        idle = sum(y - x for x, y in zip(a, b, strict=True))
        srv.run(["send-keys", "-t", "=push-0:", "Enter"])
        deadline = time.monotonic() + 10
        while len(reader.latency_ms) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        a = snap()
        srv.run(["send-keys", "-t", "=push-1:", "Enter"])
        assert reader.flood_done.wait(120)
        b = snap()
        mb = reader.flood_bytes / 1e6
        reader.stop.set()
        reader.thread.join(5)
        for h in helpers:
            h.kill()
            h.wait()
        return {
            "idle_s": idle,
            "lat_med": median(reader.latency_ms),
            "lat_p95": percentile(reader.latency_ms, 95),
            "server_ms_mb": (b[0] - a[0]) / mb * 1000,
            "helper_ms_mb": (b[1] - a[1]) / mb * 1000,
            "corral_ms_mb": (b[2] - a[2]) / mb * 1000,
            "mb": mb,
            "rss_mb": rss / 1e6,
        }
    finally:
        cleanup(srv)


def test_bench_output_push_pipe_pane_vs_control_mode(tmp_path: Path) -> None:
    pipe, ctl = measure_push(tmp_path, control=False), measure_push(tmp_path, control=True)

    def both(key: str, fmt: str) -> str:
        return f"{fmt.format(pipe[key])} / {fmt.format(ctl[key])}"

    print_table(
        f"output push, {AGENTS} agents: pipe-pane → FIFO / one control-mode client per session",
        [
            ("idle CPU over 5 s (server + helpers + reader)", both("idle_s", "{:.3f} s"), "", None),
            ("latency output → reader, median", both("lat_med", "{:.2f} ms"), "", None),
            ("latency output → reader, p95", both("lat_p95", "{:.2f} ms"), "", None),
            (f"tmux server CPU per MB ({pipe['mb']:.0f} MB)", both("server_ms_mb", "{:.1f} ms"), "", None),
            ("helper CPU per MB (cat / tmux client)", both("helper_ms_mb", "{:.1f} ms"), "", None),
            ("reader process CPU per MB", both("corral_ms_mb", "{:.1f} ms"), "", None),
            ("helper RSS per agent", both("rss_mb", "{:.1f} MB"), "", None),
        ],
    )
