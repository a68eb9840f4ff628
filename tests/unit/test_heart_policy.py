"""The heart's decisions, without a process or a clock: backoff, intensity, exit reasons, what status says;
and the two small primitives it stands on, the lock table reader and the poke's errno."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

import pytest

from actors.wake import NO_LISTENER, poke_status
from frontends.daemon.lock import PidLock, lock_holder
from protocols.heart import (
    DaemonExit,
    HeartPolicy,
    HeartState,
    decode_state,
    describe_exit,
    encode,
    heart_problem,
)


def test_the_first_restart_is_at_once_then_the_backoff_doubles_up_to_its_cap() -> None:
    policy = HeartPolicy()
    assert [policy.delay(n) for n in range(8)] == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert policy.delay(1000) == 10.0


def test_more_than_max_restarts_within_the_period_is_past_the_intensity() -> None:
    policy = HeartPolicy(max_restarts=5, period_s=30.0)
    assert not policy.exceeded(5)  # OTP: at most max_restarts; the next one is too many
    assert policy.exceeded(6)
    assert HeartPolicy(max_restarts=0).exceeded(1)  # 0: never restart


def test_the_intensity_comes_from_the_environment_and_a_bad_value_is_named_not_used() -> None:
    policy, problems = HeartPolicy.from_env(
        {"CORRAL_HEART_MAX_RESTARTS": "2", "CORRAL_HEART_PERIOD_S": "5.5"}
    )
    assert (policy.max_restarts, policy.period_s, problems) == (2, 5.5, [])
    policy, problems = HeartPolicy.from_env(
        {"CORRAL_HEART_MAX_RESTARTS": "many", "CORRAL_HEART_PERIOD_S": "-1"}
    )
    assert (policy.max_restarts, policy.period_s) == (5, 30.0)
    assert problems == [
        "CORRAL_HEART_MAX_RESTARTS='many' is not an integer >= 0: using 5",
        "CORRAL_HEART_PERIOD_S='-1' is not a number of seconds > 0: using 30",
    ]
    assert HeartPolicy.from_env({"CORRAL_HEART_PERIOD_S": "nan"})[1] != []


@pytest.mark.parametrize(
    ("code", "line", "reason"),
    [
        (-9, "", "killed by SIGKILL"),
        (-11, "", "killed by SIGSEGV"),
        (1, "cannot start: the database is locked", "exit status 1: cannot start: the database is locked"),
        (3, "", "exit status 3"),
        (None, "", "ended without an exit status (killed by a signal: SIGKILL or the out-of-memory killer?)"),
    ],
)
def test_an_exit_is_described_as_a_person_reads_it(code: int | None, line: str, reason: str) -> None:
    assert describe_exit(code, line) == reason


def _state(state: str, gave_up: str = "") -> HeartState:
    return HeartState(pid=1, state=state, gave_up=gave_up)  # type: ignore[arg-type]


def test_status_names_a_problem_only_when_a_dying_daemon_would_not_be_restarted() -> None:
    assert heart_problem("heart", True, _state("running")) == ""
    assert heart_problem("systemd", False, None) == ""  # systemd is the heart
    assert heart_problem("foreground", False, None) == ""  # asked for: said as a fact, not a problem
    lost = heart_problem("heart", False, _state("running"), "3 new hearts ended within 60 s")
    assert lost == (
        "the daemon's heart is not running and could not start a new one: 3 new hearts ended within 60 s: "
        "the daemon will not be restarted if it dies; put it under a new heart with: corral daemon restart"
    )
    assert heart_problem(None, False, _state("gave_up", "it gave up: why")) == "it gave up: why"
    assert heart_problem(None, False, _state("stopped")) == ""


def test_the_state_file_round_trips_and_a_foreign_one_reads_as_none() -> None:
    state = HeartState(
        pid=7,
        state="restarting",
        restarts=2,
        last_exit=DaemonExit(pid=8, at="2026-01-01T00:00:00Z", reason="x"),
    )
    assert decode_state(encode(state)) == state
    assert decode_state(b"") is None and decode_state(b'{"pid": "seven"}') is None


def test_the_lock_holder_is_read_from_the_kernel_not_guessed_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "heart.pid"
    assert lock_holder(path) is None  # no file
    path.write_text("999999\n")  # what a heart killed with -9 leaves: a pid, no lock
    assert lock_holder(path) is None
    with PidLock.acquire(path) as lock:
        assert lock.held
        assert lock_holder(path) == os.getpid()
    assert lock_holder(path) is None


def test_a_poke_with_no_listener_says_so(tmp_path: Path) -> None:
    assert poke_status(tmp_path / "wake.sock") == errno.ENOENT
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(tmp_path / "stale.sock"))
    stale.close()  # what a killed daemon leaves: the file, nobody reading
    assert poke_status(tmp_path / "stale.sock") in NO_LISTENER
    live = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    live.bind(str(tmp_path / "live.sock"))
    try:
        assert poke_status(tmp_path / "live.sock") == 0
    finally:
        live.close()
