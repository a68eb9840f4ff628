"""A wave decision taken from the dashboard: a plan of two waves whose second task fails once (a sim fault),
the task row showing its wave progress and its question, and "retry the failed wave tasks" from the task's
menu running the task to done. A real daemon, tmux, git; corral-sim plays every role."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.integration.cli_kit import ok
from tests.integration.dashboard_kit import SIM, Dashboard, wait_for
from tests.integration.test_dashboard import env, sidebar
from tests.integration.test_instances_api import Env

__all__ = ["env"]

PLAN = """# Notes

## Wave 1: Part 1

### Task 1: Note 1

Add a line to notes/n1.txt.

### Task 2: Note 2

Add a line to notes/n2.txt.
sim-fault: fail-once

## Wave 2: Part 2

### Task 3: Note 3

Add a line to notes/n3.txt.
"""


def task_row(repo: Path) -> dict[str, object]:
    (row,) = [t for t in json.loads(ok(repo, "task", "list", "--json")) if t["name"] == "notes"]
    return row


def test_a_failed_wave_waits_and_retry_from_the_task_menu_finishes_it(
    env: Env, git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    said = tmp_path / "notified.txt"
    (bin_dir / "notify-send").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {said}\n')  # a stand-in
    (bin_dir / "notify-send").chmod(0o755)
    config = git_repo / ".corral" / "config.toml"
    config.parent.mkdir(exist_ok=True)
    config.write_text(f'default_program = "{SIM}"\n')
    monkeypatch.setenv("CORRAL_SIM_AUTO_APPROVE", "1")  # the sim plays every role and never asks
    ok(git_repo, "instance", "list")  # the daemon runs (with this environment)
    ok(git_repo, "task", "create", "notes", "--content", PLAN, "--topic", "docs")
    ok(git_repo, "task", "transition", "notes", "implement_start")
    with Dashboard.open(git_repo, extra_env={"PATH": f"{bin_dir}:{os.environ['PATH']}"}) as dash:
        wait_for(lambda: (task_row(git_repo).get("waiting") or {}).get("kind") == "wave_decision", 90,
                 "the wave decision")  # fmt: skip
        screen = dash.wait_for("W1 1/2", what="the wave's progress on the task row")
        assert "✗1" in screen
        dash.wait_for("↳ notes — wave 1", what="the task's question under its row")
        wait_for(lambda: said.exists() and "task notes waits for you: notes — wave 1" in said.read_text(), 20,
                 "the desktop notification of the question")  # fmt: skip
        for _ in range(20):  # up to the task's row
            if "notes" in next((r for r in sidebar(dash.screen()) if r.startswith("›")), ""):
                break
            dash.keys("Up")
        dash.keys("Enter")  # a task's menu
        dash.wait_for("retry the failed wave tasks")
        dash.keys(
            "Enter"
        )  # its first entry: the signal is emitted (a decision can be taken again: no confirm)
        dash.wait_for("notes: retry the failed wave tasks", what="the toast of the emitted signal")
        wait_for(lambda: task_row(git_repo)["status"] == "done", 180, "the task to be done after the retry")
        dash.wait_for(lambda s: any("notes" in r and "done" in r for r in sidebar(s)) or "W2" in s or None,
                      30, "the task shown done")  # fmt: skip
