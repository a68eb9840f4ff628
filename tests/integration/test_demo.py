"""`corral demo` as a user runs it: a real process, outside any repository, with its own daemon, tmux server,
database and scratch repository, and corral-sim in every role. The demo must carry its task to done, report
it, and leave nothing behind — and never touch the user's CORRAL_HOME, runtime directory or tmux server,
which the tests point at places of their own to check."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.runtimes.tmux_server import TmuxServer
from frontends.cli.demo_report import Progress, Snapshot
from frontends.daemon.lock import pid_alive
from protocols.records import AuditEvent, Task, WaveTaskRecord
from tests.conftest import git
from tests.integration.cli_kit import CORRAL, clean_env
from tests.unit.actor_kit import wait_until

pytestmark = pytest.mark.timeout(240)

WAVE_TASKS = [(1, 1), (1, 2), (1, 3), (2, 4), (2, 5), (2, 6)]


class User:
    """Where the user's own corral lives: the demo must leave all of it alone."""

    def __init__(self, home: Path, tmp_path: Path) -> None:
        self.home = home
        self.runtime = tmp_path / "user-run"
        self.tmux = TmuxServer(f"corral-test-{uuid.uuid4().hex[:8]}")
        self.cwd = tmp_path / "elsewhere"  # not a git repository
        self.cwd.mkdir()

    def env(self) -> dict[str, str]:
        return clean_env() | {"CORRAL_RUNTIME_DIR": str(self.runtime), "CORRAL_TMUX_SOCKET": self.tmux.socket}

    def untouched(self) -> None:
        assert list(self.home.iterdir()) == []
        assert not self.runtime.exists()
        assert not self.tmux.is_running()


@pytest.fixture
def user(corral_home: Path, tmp_path: Path) -> Iterator[User]:
    made = User(corral_home, tmp_path)
    yield made
    made.tmux.kill()


def demo(user: User, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CORRAL, "demo", "--headless", *args],
        cwd=user.cwd,
        env=user.env(),
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )


def gone(summary: dict[str, Any]) -> None:
    """The demo's daemon and its heart, tmux server and (unless kept) scratch directory are gone."""
    assert summary["daemon_pid"] and not pid_alive(summary["daemon_pid"])
    assert summary["heart_pid"] and not pid_alive(summary["heart_pid"])
    server = TmuxServer(summary["tmux_socket"])
    assert not server.is_running()
    assert not server.socket_path.exists() and not server.run_dir.exists()


def test_the_demo_plans_implements_two_waves_reviews_and_verifies_a_task_then_removes_everything(
    user: User,
) -> None:
    result = demo(user, "--json", "--timeout", "150")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr

    summary = json.loads(result.stdout)
    assert (summary["ok"], summary["status"], summary["problem"]) == (True, "done", "")
    assert [(w["wave"], w["task"], w["status"]) for w in summary["wave_tasks"]] == [
        (wave, task, "complete") for wave, task in WAVE_TASKS
    ]
    roles = {a["title"]: a["role"] for a in summary["agents"]}
    assert {roles["demo-plan"], roles["demo-review-1"], roles["demo-verify-1"]} == {
        "planner",
        "reviewer",
        "readiness",
    }
    for wave, task in WAVE_TASKS:
        agent = next(a for a in summary["agents"] if a["title"] == f"demo-W{wave}-T{task}")
        assert (agent["role"], agent["wave"], len(agent["commits"])) == ("coder", wave, 1)
        assert agent["commits"][0].split(" ", 1)[1].startswith(f"Task {task}: ")
    assert all(a["status"] == "exited" for a in summary["agents"])
    subjects = sorted(c["subject"].split(":")[0] for c in summary["commits"])
    assert subjects == [f"Task {n}" for n in range(1, 7)]

    progress = result.stderr  # with --json, the progress lines go to stderr
    for line in ("started demo-plan (planner)", "wave 2 of 2 started", "verifying → done"):
        assert line in progress
    assert not Path(summary["scratch"]).exists() and summary["kept"] is False
    assert summary["next_steps"] == [
        "corral setup",
        'corral task create fix-typos --content "Fix the typos in README.md"',
        "corral task implement fix-typos",
    ]
    gone(summary)
    user.untouched()


def test_keep_keeps_the_repository_with_one_commit_per_wave_task_on_the_task_branch(user: User) -> None:
    result = demo(user, "--keep", "--timeout", "150")
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"^kept (\S+):$", result.stdout, re.MULTILINE)
    assert found, result.stdout
    scratch = Path(found.group(1))
    try:
        repo = scratch / "repo"
        assert f"git -C {repo} log --oneline --all" in result.stdout
        assert re.search(r"^demo-W2-T5\s+coder\s+exited\s+1$", result.stdout, re.MULTILINE)
        assert "commits on corral/demo: 6" in result.stdout
        subjects = git(repo, "log", "--format=%s", "main..corral/demo").splitlines()
        assert sorted(s.split(":")[0] for s in subjects) == [f"Task {n}" for n in range(1, 7)]
        assert git(repo, "log", "--format=%s", "main").splitlines() == ["Initial commit"]
        started = re.search(r"daemon started \(pid (\d+), under its heart, pid (\d+)\)", result.stdout)
        socket = re.search(r"tmux server (\S+)", result.stdout).group(1)
        gone({"daemon_pid": int(started.group(1)), "heart_pid": int(started.group(2)), "tmux_socket": socket})
        user.untouched()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_the_demo_ends_with_three_commands_to_try_next_and_they_work_on_a_repository(
    user: User, tmp_path: Path
) -> None:
    result = demo(user, "--timeout", "150")
    assert result.returncode == 0, result.stdout + result.stderr
    tail = result.stdout.split("\nnext, on your own repository (run these in its directory):\n", 1)
    assert len(tail) == 2, result.stdout
    lines = tail[1].splitlines()
    commands = [line.strip() for line in lines if line.startswith("  corral ")]
    assert commands == [
        "corral setup",
        'corral task create fix-typos --content "Fix the typos in README.md"',
        "corral task implement fix-typos",
    ]
    assert all(line.startswith(("  # ", "  corral ", "  export PATH=")) for line in lines), lines
    assert lines[-1] == "  corral task implement fix-typos"  # the demo's last words

    # Run them as a person would, in a repository of their own (here with a database of its own and without
    # starting a daemon: the commands are what is checked, not the agent).
    repo = tmp_path / "mine"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "initial")
    env = user.env() | {"CORRAL_HOME": str(tmp_path / "my-home"), "CORRAL_AUTOSTART": "0"}
    for command in commands:
        done = subprocess.run(
            [CORRAL, *shlex.split(command)[1:]], cwd=repo, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    assert (repo / ".corral" / "config.toml").is_file()
    shown = subprocess.run(
        [CORRAL, "task", "show", "fix-typos", "--json"], cwd=repo, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    task = json.loads(shown.stdout)
    assert (task["status"], task["content"]) == ("implementing", "Fix the typos in README.md")
    user.untouched()


def test_a_timeout_says_what_the_demo_waited_for_shows_the_audit_and_cleans_up(user: User) -> None:
    result = demo(user, "--json", "--timeout", "0.5")
    assert result.returncode == 1, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] is False
    assert summary["problem"].startswith("timed out after 0.5 s: task demo is ")
    assert summary["audit_tail"] and any("task_created" in row for row in summary["audit_tail"])
    assert "Traceback" not in result.stderr
    error = result.stderr[result.stderr.index("corral: error: ") :]
    assert error.startswith("corral: error: the demo did not finish: timed out after 0.5 s")
    assert "audit rows:" in error
    assert not Path(summary["scratch"]).exists()
    gone(summary)
    user.untouched()


def test_ctrl_c_stops_the_demo_and_cleans_up_everything(user: User) -> None:
    proc = subprocess.Popen(
        [CORRAL, "demo", "--headless"],
        cwd=user.cwd,
        env=user.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen = []
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if "started demo-W1-T1" in line:
                break
        text = "".join(seen)
        assert "started demo-W1-T1" in text, text
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.rstrip().endswith("corral: error: interrupted") and "Traceback" not in err
    scratch = Path(re.search(r"scratch repository (\S+)/repo", text).group(1))
    started = re.search(r"daemon started \(pid (\d+), under its heart, pid (\d+)\)", text)
    socket = re.search(r"tmux server (\S+)", text).group(1)
    wait_until(lambda: not scratch.exists(), 10, "the scratch directory to be removed")
    gone({"daemon_pid": int(started.group(1)), "heart_pid": int(started.group(2)), "tmux_socket": socket})
    user.untouched()


# --- progress, without a daemon --------------------------------------------------------------------------


def _task(status: str, phase: str = "") -> Task:
    stamps = dict.fromkeys(
        (
            "ready_at",
            "planning_at",
            "implementing_at",
            "reviewing_at",
            "verifying_at",
            "done_at",
            "cancelled_at",
        ),
        "",
    )
    return Task(1, 1, "demo", "", status, phase, "", "corral/demo", "", 0, "", "t", "t", **stamps)


def _audit(id_: int, ts: str, kind: str, message: str, *, level: str = "info", wave: int | None = None):
    return AuditEvent(id_, ts, 1, kind, level, message, "demo", "", wave, None, "")


def _wave(number: int, status: str, attempts: int, at: str) -> WaveTaskRecord:
    return WaveTaskRecord(number, 1, 1, number, f"demo-W1-T{number}", status, "", attempts, at)


def test_progress_tells_each_thing_once_in_order_with_the_status_it_happened_in() -> None:
    progress = Progress()
    first = Snapshot(
        _task("implementing"),
        (
            _audit(1, "10", "transition", "demo: ready → planning (plan_start, by user)"),
            _audit(2, "11", "task_agent_started", "demo: started demo-plan (planner, /bin/corral-sim)"),
            _audit(3, "12", "transition", "demo: planning → planned (planner_finished, by agent)"),
            _audit(4, "13", "transition", "demo: planned → implementing (implement_start, by user)"),
            _audit(5, "14", "wave_started", "demo: wave 1 of 1 started (2 tasks)", wave=1),
            _audit(6, "15", "instance_status", "demo-W1-T1: loading → running"),
        ),
        (_wave(1, "complete", 1, "16"), _wave(2, "running", 1, "14")),
        (),
    )
    assert progress.lines(first) == [
        ("planning", "ready → planning (plan_start, by user)"),
        ("planning", "started demo-plan (planner)"),
        ("planned", "planning → planned (planner_finished, by agent)"),
        ("implementing", "planned → implementing (implement_start, by user)"),
        ("implementing", "wave 1 of 1 started (2 tasks)"),
        ("implementing", "task 1 of wave 1 complete"),
    ]
    again = Snapshot(
        _task("implementing"),
        (*first.audit, _audit(7, "17", "task_waiting", "demo waits for you: wave 1 failed", level="warn")),
        (_wave(1, "complete", 1, "16"), _wave(2, "running", 2, "17")),
        (),
    )
    assert progress.lines(again) == [
        ("implementing", "warning: demo waits for you: wave 1 failed"),
        ("implementing", "task 2 of wave 1 running again (demo-W1-T2, attempt 2)"),
    ]
    assert progress.stuck == "demo waits for you: wave 1 failed"


# --- the first minute: what make says while it makes the environment ----------------------------------------

_STUB_PYTHON = """#!/bin/sh
# Stands in for python3 -m venv DIR: makes DIR/bin/python and DIR/bin/corral, which only echo.
mkdir -p "$3/bin"
printf '#!/bin/sh\\necho "python $*"\\n' > "$3/bin/python"
printf '#!/bin/sh\\necho "corral $*"\\n' > "$3/bin/corral"
chmod +x "$3/bin/python" "$3/bin/corral"
"""


def test_make_demo_says_what_it_does_before_the_quiet_install_and_before_the_demo(tmp_path: Path) -> None:
    """The real Makefile, run by make, with a stand-in Python: the quiet minute of pip is announced."""
    python = tmp_path / "python3"
    python.write_text(_STUB_PYTHON)
    python.chmod(0o755)
    venv = tmp_path / "venv"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(root), "demo", f"VENV={venv}", f"PYTHON={python}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines == [
        f"corral: creating a Python virtual environment in {venv}…",
        f"corral: installing corral and its dependencies into {venv} (about a minute the first time)…",
        f"{venv}/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'",
        "python -m pip install --quiet --disable-pip-version-check -e .[test]",
        f"corral: ready: {venv}/bin/corral",
        "corral: running the demo: one task planned, implemented in waves, reviewed and verified by "
        "simulated agents",
        f"{venv}/bin/corral demo --headless",
        "corral demo --headless",
    ]
