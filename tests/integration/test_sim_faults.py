"""corral-sim's faults are real: crashes exit or die by a signal, hangs go silent, floods write megabytes, a
grandchild escapes the process group. Driven in a real PTY."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontends.sim.screen import NOT_LOGGED_IN
from frontends.sim.testing import SIM, SimPty
from tests.conftest import GIT_ENV

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def spawn(git_repo: Path, tmp_path: Path) -> Iterator[object]:
    """spawn(*args, **env) → a SimPty (no trust screen) in the repository; killed at teardown."""
    started: list[SimPty] = []
    env = {**os.environ, **GIT_ENV, "CORRAL_SIM_STATE": str(tmp_path / "state"), "CORRAL_SIM_THINK": "0"}

    def start(*args: str, **extra: str) -> SimPty:
        sim = SimPty([SIM, "--no-trust", *args], cwd=git_repo, env=env | extra)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.close()


def stat(pid: int) -> dict[str, int]:
    """ppid, pgid and sid of a live process, from /proc."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rfind(")") + 2 :].split()
    return {"ppid": int(fields[1]), "pgid": int(fields[2]), "sid": int(fields[3])}


def cmdline(pid: int, timeout: float = 5.0) -> str:
    """The process's argv (read again while it is still empty: the exec may be finishing)."""
    deadline = time.monotonic() + timeout
    while not (text := Path(f"/proc/{pid}/cmdline").read_text()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return text


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_crash_after_exits_with_the_status_asked_for(spawn) -> None:
    sim = spawn("--crash-after", "0.3", "--exit-status", "3")
    # No wait for the prompt first: on a loaded machine the crash may come before the prompt is drawn.
    assert sim.wait() == 3
    assert "corral-sim: simulated crash (exit 3)" in sim.output


def test_crash_from_the_environment_by_sigkill(spawn) -> None:
    sim = spawn(CORRAL_SIM_CRASH_AFTER="0.2", CORRAL_SIM_CRASH_SIGNAL="KILL")
    assert sim.wait() == 128 + signal.SIGKILL
    assert sim.proc.signalstatus == signal.SIGKILL


def test_crash_directive_exits_with_a_status(spawn) -> None:
    sim = spawn()
    sim.expect("> ")
    sim.paste("/echo going down\n/crash 137")
    sim.send("\r")
    sim.expect("⏺ going down")
    assert sim.wait() == 137
    assert sim.proc.signalstatus is None


def test_crash_directive_with_a_catchable_signal_really_dies_by_it(spawn) -> None:
    sim = spawn()
    sim.expect("> ")
    sim.send("/crash TERM\r")
    sim.wait()
    assert sim.proc.signalstatus == signal.SIGTERM


def test_hang_goes_silent_and_stays_alive_until_sigterm(spawn) -> None:
    sim = spawn()
    sim.expect("> ")
    sim.send("/hang\r")
    sim.expect("Working…")
    assert sim.settles(quiet=0.5)  # the spinner stopped: no output at all
    sim.send("/echo are you there\r")
    assert sim.quiet_for(0.3)
    assert sim.alive()
    os.kill(sim.pid, signal.SIGTERM)
    assert sim.wait() == 143


def test_a_hard_hang_ignores_sigterm(spawn) -> None:
    sim = spawn()
    sim.expect("> ")
    sim.send("/hang hard\r")
    sim.expect("Working…")
    assert sim.settles()
    os.kill(sim.pid, signal.SIGTERM)
    assert sim.quiet_for(0.3)
    assert sim.alive()
    os.kill(sim.pid, signal.SIGKILL)
    assert sim.wait() == 137


def test_hang_at_launch_shows_the_banner_and_nothing_more(spawn) -> None:
    sim = spawn("--hang")
    sim.expect("simulated coding agent")
    assert sim.settles(quiet=0.5)
    assert "> " not in sim.output
    assert sim.alive()


def test_flood_writes_megabytes_then_goes_back_to_the_prompt(spawn) -> None:
    sim = spawn()
    sim.expect("> ")
    sim.send("/flood 3\r")
    assert sim.wait_for_bytes(3_000_000, timeout=30) >= 3_000_000
    sim.expect("⏺ Done.", timeout=30)
    assert sim.output.count("flood ") >= 3_000_000 // 128 - 1


def test_flood_at_launch(spawn) -> None:
    sim = spawn("--flood", "1")
    sim.expect("> ", timeout=30)
    assert sim.size >= 1_000_000


def test_slow_start_delays_the_banner(spawn) -> None:
    started = time.monotonic()
    sim = spawn("--slow-start", "0.5")
    sim.expect("simulated coding agent")
    assert time.monotonic() - started >= 0.5


def test_ignore_input_reads_prompts_and_never_answers(spawn) -> None:
    sim = spawn("--ignore-input")
    sim.expect("> ")
    sim.send("/echo hello\r")
    assert sim.quiet_for(0.5)
    assert "⏺ hello" not in sim.output
    assert sim.alive()


def test_ignore_input_directive(spawn) -> None:
    sim = spawn()
    sim.expect("> ")
    sim.send("/ignore-input\r")
    sim.expect("⏺ Done.")
    sim.expect("\r\n> ")
    assert sim.settles()
    sim.send("/echo hello\r")
    assert sim.quiet_for(0.5)
    assert "⏺ hello" not in sim.output


def test_spawn_grandchild_escapes_killpg_of_the_agent(spawn) -> None:
    sim = spawn()
    sim.expect("> ")
    sim.send("/spawn-grandchild 60\r")
    pid = int(sim.expect(re.compile(r"Spawned grandchild pid (\d+)")).group(1))
    try:
        child = stat(pid)
        assert child["ppid"] == sim.pid
        assert child["sid"] == pid and child["pgid"] == pid  # setsid: its own session and group
        assert stat(sim.pid)["pgid"] != pid
        assert "corral-sim-grandchild" in cmdline(pid)
        os.killpg(sim.pid, signal.SIGKILL)
        assert sim.wait() == 137
        assert alive(pid)  # killpg missed it
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(pid)


def test_spawn_grandchild_at_launch(spawn) -> None:
    sim = spawn("--spawn-grandchild")
    sim.expect("> ")
    children = [
        int(name)
        for name in os.listdir("/proc")
        if name.isdigit() and alive(int(name)) and stat(int(name))["ppid"] == sim.pid
    ]
    try:
        assert len(children) == 1
        assert stat(children[0])["sid"] == children[0]
    finally:
        for pid in children:
            os.kill(pid, signal.SIGKILL)


def test_not_logged_in_exits_1(spawn) -> None:
    sim = spawn("--not-logged-in")
    sim.expect(NOT_LOGGED_IN)
    assert sim.wait() == 1


def test_error_directive_fails_the_turn_and_returns_to_the_prompt(spawn) -> None:
    sim = spawn()
    sim.expect("> ")
    sim.paste("/error overloaded\n/echo not reached")
    sim.send("\r")
    sim.expect("⎿  API Error: overloaded")
    sim.expect("\r\n> ")
    sim.send("/echo still here\r")
    sim.expect("⏺ still here")
    assert "⏺ not reached" not in sim.output


def test_offline_at_start_says_it_cannot_connect_and_exits_1(spawn) -> None:
    sim = spawn(CORRAL_SIM_OFFLINE="1")
    sim.expect("Please check your internet connection and network settings.")
    assert sim.wait() == 1
    assert "Unable to connect to Anthropic services" in sim.output and "corral-sim 0" not in sim.output


def test_offline_directive_retries_then_fails_the_turn(spawn) -> None:
    sim = spawn()
    sim.expect("> ")
    sim.send("/offline\r")
    sim.expect("(attempt 10/10)")
    sim.expect("⎿  API Error: Connection error.")
    sim.expect("\r\n> ")
