"""`corral audit` as a real process on a real git repository and a private database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors.store import Store
from tests.integration.cli_kit import fails, ok


@pytest.fixture
def repo(corral_home: Path, git_repo: Path) -> Path:
    ok(git_repo, "task", "create", "fix-login")
    ok(git_repo, "task", "create", "other")
    ok(git_repo, "task", "transition", "fix-login", "plan_start")
    return git_repo


def test_the_table_shows_the_rows_of_the_project_newest_first(repo: Path) -> None:
    lines = ok(repo, "audit").splitlines()
    assert lines[0].split() == ["TIME", "LEVEL", "KIND", "TASK", "INSTANCE", "MESSAGE"]
    kinds = [line.split()[3:5] for line in lines[1:]]
    assert kinds == [["transition", "fix-login"], ["task_created", "other"], ["task_created", "fix-login"]]
    assert "fix-login: ready → planning" in lines[1]


def test_json_prints_the_records_and_the_filters_narrow_them(repo: Path) -> None:
    rows = json.loads(ok(repo, "audit", "--json"))
    assert [(r["kind"], r["task"]) for r in rows] == [
        ("transition", "fix-login"),
        ("task_created", "other"),
        ("task_created", "fix-login"),
    ]
    assert set(rows[0]) >= {
        "id",
        "ts",
        "project_id",
        "kind",
        "level",
        "message",
        "task",
        "instance",
        "detail",
    }
    by_task = json.loads(ok(repo, "audit", "--task", "fix-login", "--json"))
    assert [r["kind"] for r in by_task] == ["transition", "task_created"]
    assert len(json.loads(ok(repo, "audit", "--limit", "1", "--json"))) == 1
    assert json.loads(ok(repo, "audit", "--level", "warn", "--json")) == []
    assert json.loads(ok(repo, "audit", "--instance", "nobody", "--json")) == []


def test_level_means_that_level_and_above_and_instance_filters(repo: Path, corral_home: Path) -> None:
    ok(repo, "task", "set-status", "other", "done", "--force", "--reason", "by hand")
    with Store.open(corral_home / "corral.db") as store:
        project = store.list_projects()[0]
        store.record_audit(
            project.id, "instance_status", "coder: running → failed", instance="coder", level="error"
        )
        store.record_audit(None, "daemon_stopping", "daemon stopping (SIGTERM)")
    warn = json.loads(ok(repo, "audit", "--level", "warn", "--json"))
    assert [(r["kind"], r["level"]) for r in warn] == [
        ("instance_status", "error"),
        ("status_forced", "warn"),
    ]
    coder = json.loads(ok(repo, "audit", "--instance", "coder", "--json"))
    assert [r["message"] for r in coder] == ["coder: running → failed"]


def test_project_less_rows_show_only_with_all_projects_which_works_anywhere(
    repo: Path, corral_home: Path, tmp_path: Path
) -> None:
    with Store.open(corral_home / "corral.db") as store:
        store.record_audit(None, "daemon_stopping", "daemon stopping (SIGTERM)")
    assert "daemon_stopping" not in ok(repo, "audit")
    outside = tmp_path / "outside"
    outside.mkdir()
    table = ok(outside, "audit", "--all-projects").splitlines()
    assert table[0].split() == ["TIME", "LEVEL", "PROJECT", "KIND", "TASK", "INSTANCE", "MESSAGE"]
    assert "daemon_stopping" in table[1] and f" {repo.name} " in table[2]


def test_messages_are_cut_to_the_terminal_width(repo: Path) -> None:
    lines = ok(repo, "audit", COLUMNS="90").splitlines()
    assert all(len(line) <= 90 for line in lines)
    assert lines[1].endswith("…")
    assert "fix-login: ready → planning (plan_start, by user)" in ok(repo, "audit")  # a pipe: whole


def test_errors_outside_a_repository_and_bad_arguments(
    corral_home: Path, tmp_path: Path, git_repo: Path
) -> None:
    assert "within a git repository" in fails(tmp_path, 2, "audit")
    assert "unknown level" in fails(git_repo, 2, "audit", "--level", "loud")
    assert "--limit" in fails(git_repo, 2, "audit", "--limit", "0")
    assert "invalid task name" in fails(git_repo, 2, "audit", "--task", "Bad Name")
    assert ok(git_repo, "audit") == f"no audit events in project {git_repo.name}\n"
