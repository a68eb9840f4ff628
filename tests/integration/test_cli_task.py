"""`corral task …` as a real process in a real git repository, on a private database."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.cli_kit import CORRAL, clean_env, fails, ok


@pytest.fixture
def repo(corral_home: Path, git_repo: Path) -> Path:
    return git_repo


def tasks_json(repo: Path, *args: str) -> list[dict[str, object]]:
    return json.loads(ok(repo, "task", "list", "--json", *args))


# --- create -----------------------------------------------------------------------------------------


def test_create_prints_the_name_and_ready(repo: Path) -> None:
    assert ok(repo, "task", "create", "fix-login") == "created: fix-login → ready\n"


def test_create_stores_title_topic_branch_and_content(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login", "--title", "Fix login", "--topic", "auth", "--branch", "b/x",
       "--content", "the plan")  # fmt: skip
    task = json.loads(ok(repo, "task", "show", "fix-login", "--json"))
    assert (task["title"], task["topic"], task["branch"], task["content"]) == (
        "Fix login",
        "auth",
        "b/x",
        "the plan",
    )
    assert task["status"] == "ready"


def test_create_defaults_branch_and_takes_the_title_from_the_first_heading(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login", "--content", "intro\n# Fix the login form\n\nbody")
    task = json.loads(ok(repo, "task", "show", "fix-login", "--json"))
    assert task["title"] == "Fix the login form"
    assert task["branch"] == "corral/fix-login"


def test_create_reads_the_content_from_a_file_and_drops_a_trailing_md(repo: Path, tmp_path: Path) -> None:
    plan = tmp_path / "fix-login.md"
    plan.write_text("# Fix login\n\n## Wave 1\n")
    assert ok(repo, "task", "create", "fix-login.md", "--file", str(plan)) == "created: fix-login → ready\n"
    assert (
        json.loads(ok(repo, "task", "show", "fix-login", "--json"))["content"] == "# Fix login\n\n## Wave 1\n"
    )


def test_create_reads_the_content_from_stdin_with_file_dash(repo: Path) -> None:
    ok(repo, "task", "create", "piped", "--file", "-", stdin="from a pipe\n")
    assert json.loads(ok(repo, "task", "show", "piped", "--json"))["content"] == "from a pipe\n"


def test_create_with_a_missing_file_is_a_usage_error_naming_it(repo: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.md"
    message = fails(repo, 2, "task", "create", "x", "--file", str(missing))
    assert message == f"cannot read {missing}: No such file or directory"


def test_create_refuses_content_and_file_together(repo: Path) -> None:
    message = fails(repo, 2, "task", "create", "x", "--content", "a", "--file", "b")
    assert "argument --file: not allowed with argument --content" in message


def test_create_with_a_branch_git_would_refuse_is_a_usage_error(repo: Path) -> None:
    message = fails(repo, 2, "task", "create", "x", "--branch", "bad..branch")
    assert message == "the task's branch 'bad..branch' is not a valid git branch name: it contains '..'"
    assert fails(repo, 1, "task", "show", "x").startswith('no task named "x"')  # nothing half-made


def test_create_an_existing_task_fails_naming_it(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    message = fails(repo, 1, "task", "create", "fix-login")
    assert "fix-login" in message and "already exists" in message


def test_create_with_an_invalid_name_is_a_usage_error(repo: Path) -> None:
    message = fails(repo, 2, "task", "create", "Not A Slug")
    assert "Not A Slug" in message


# --- list ------------------------------------------------------------------------------------------------


def test_list_prints_an_aligned_table_with_planned_for_a_planned_ready_task(repo: Path) -> None:
    ok(repo, "task", "create", "a-task", "--topic", "auth")
    ok(repo, "task", "create", "b")
    ok(repo, "task", "transition", "a-task", "plan_start")
    ok(repo, "task", "transition", "a-task", "planner_finished")
    lines = ok(repo, "task", "list").splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "TOPIC", "BRANCH", "UPDATED", "WAITING", "FOR", "YOU"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["a-task"][1:4] == ["planned", "auth", "corral/a-task"]
    assert rows["b"][1:4] == ["ready", "-", "corral/b"]
    assert lines[1].index("planned") == lines[0].index("STATUS") == lines[2].index("ready")


def test_list_hides_cancelled_tasks_unless_all_or_asked_for(repo: Path) -> None:
    ok(repo, "task", "create", "live")
    ok(repo, "task", "create", "gone")
    ok(repo, "task", "transition", "gone", "cancel")
    assert [t["name"] for t in tasks_json(repo)] == ["live"]
    assert sorted(t["name"] for t in tasks_json(repo, "--all")) == ["gone", "live"]
    assert [t["name"] for t in tasks_json(repo, "--status", "cancelled")] == ["gone"]


def test_list_filters_by_several_statuses_and_by_topic(repo: Path) -> None:
    for name, topic in (("one", "auth"), ("two", "auth"), ("three", "ui")):
        ok(repo, "task", "create", name, "--topic", topic)
    ok(repo, "task", "transition", "one", "plan_start")
    ok(repo, "task", "transition", "two", "implement_start")
    assert sorted(
        t["name"] for t in tasks_json(repo, "--status", "planning", "--status", "implementing")
    ) == [
        "one",
        "two",
    ]
    assert sorted(t["name"] for t in tasks_json(repo, "--status", "planning,ready")) == ["one", "three"]
    assert sorted(t["name"] for t in tasks_json(repo, "--topic", "auth")) == ["one", "two"]


def test_list_status_planned_shows_only_planned_ready_tasks(repo: Path) -> None:
    ok(repo, "task", "create", "planned-one")
    ok(repo, "task", "create", "plain-ready")
    ok(repo, "task", "transition", "planned-one", "plan_start")
    ok(repo, "task", "transition", "planned-one", "planner_finished")
    assert [t["name"] for t in tasks_json(repo, "--status", "planned")] == ["planned-one"]
    assert sorted(t["name"] for t in tasks_json(repo, "--status", "ready")) == ["plain-ready", "planned-one"]


def test_list_json_is_a_list_of_task_summaries_without_their_contents(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login", "--content", "# Fix it\n" + "é" * 1000)
    (task,) = tasks_json(repo)
    assert {"id", "project_id", "name", "status", "phase", "topic", "branch", "ready_at"} <= set(task)
    assert "content" not in task and task["content_bytes"] == len("# Fix it\n") + 2000  # UTF-8 bytes
    assert task["title"] == "Fix it"
    shown = json.loads(ok(repo, "task", "show", "fix-login", "--json"))
    assert shown["content"] == "# Fix it\n" + "é" * 1000  # show still has it
    assert tasks_json(repo, "--status", "done") == []


def test_list_of_an_empty_project_says_so(repo: Path) -> None:
    assert ok(repo, "task", "list").startswith(f"no tasks in project {repo.name}")


def test_list_with_an_unknown_status_is_a_usage_error_listing_the_statuses(repo: Path) -> None:
    message = fails(repo, 2, "task", "list", "--status", "finished")
    assert message.startswith('unknown status "finished"; statuses are: ready, planning')


# --- show ------------------------------------------------------------------------------------------------


def test_show_prints_fields_timestamps_then_the_content(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login", "--topic", "auth", "--content", "# Fix login\n\nthe plan")
    ok(repo, "task", "transition", "fix-login", "plan_start")
    out = ok(repo, "task", "show", "fix-login")
    fields, _, content = out.partition("\n\n")
    parsed = dict(line.split(":", 1) for line in fields.splitlines())
    assert parsed["name"].strip() == "fix-login"
    assert parsed["title"].strip() == "Fix login"
    assert parsed["project"].strip() == repo.name
    assert parsed["status"].strip() == "planning"
    assert parsed["topic"].strip() == "auth"
    assert {"created", "updated", "ready at", "planning at"} <= set(parsed)
    assert "done at" not in parsed
    assert content == "# Fix login\n\nthe plan\n"


def test_show_json_is_the_task_record(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    task = json.loads(ok(repo, "task", "show", "fix-login", "--json"))
    assert task["name"] == "fix-login" and task["status"] == "ready" and task["planning_at"] == ""


def test_show_an_unknown_task_fails_naming_it_and_the_project(repo: Path) -> None:
    message = fails(repo, 1, "task", "show", "nope")
    assert "nope" in message and repo.name in message


# --- transition -------------------------------------------------------------------------------------------


def test_transition_prints_the_move_and_accepts_hyphens(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    assert ok(repo, "task", "transition", "fix-login", "plan-start") == "fix-login: ready → planning\n"
    assert (
        ok(repo, "task", "transition", "fix-login", "planner_finished") == "fix-login: planning → planned\n"
    )
    moved = ok(repo, "task", "transition", "fix-login", "implement_start")
    assert moved == "fix-login: planned → implementing\n"


def test_transition_payload_text_becomes_the_latest_feedback(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    for event in ("implement_start", "implement_finished"):
        ok(repo, "task", "transition", "fix-login", event)
    out = ok(repo, "task", "transition", "fix-login", "review-changes", "--payload", "handle empty input")
    assert out == "fix-login: reviewing → implementing\n"
    task = json.loads(ok(repo, "task", "show", "fix-login", "--json"))
    assert task["latest_feedback"] == "handle empty input"
    assert task["review_cycle"] == 1


def test_transition_an_unknown_event_is_a_usage_error_listing_the_events(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    message = fails(repo, 2, "task", "transition", "fix-login", "finish")
    assert message.startswith('unknown event "finish"; events are: plan_start')


def test_invalid_transition_names_the_status_and_the_event(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    message = fails(repo, 1, "task", "transition", "fix-login", "verify_approved")
    assert message == (
        'invalid transition: event "verify_approved" does not apply to a task in status "ready" '
        "(allowed: plan_start, implement_start, cancel)"
    )
    assert json.loads(ok(repo, "task", "show", "fix-login", "--json"))["status"] == "ready"


def test_transition_of_an_unknown_task_fails(repo: Path) -> None:
    message = fails(repo, 1, "task", "transition", "nope", "plan_start")
    assert "nope" in message


def test_transition_with_a_bad_json_payload_fails_naming_the_problem(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    message = fails(repo, 1, "task", "transition", "fix-login", "plan_start", "--payload", '{"body": 3}')
    assert '"body" must be a string' in message


def test_entering_implementing_while_the_topic_is_busy_fails_naming_the_other_task(repo: Path) -> None:
    ok(repo, "task", "create", "first", "--topic", "auth")
    ok(repo, "task", "create", "second", "--topic", "auth")
    ok(repo, "task", "transition", "first", "implement_start")
    message = fails(repo, 1, "task", "transition", "second", "implement_start")
    assert "first" in message


# --- set-status --------------------------------------------------------------------------------------------


def test_set_status_without_force_explains_it_bypasses_the_lifecycle(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    message = fails(repo, 2, "task", "set-status", "fix-login", "done")
    assert "bypasses the task lifecycle" in message
    assert "--force" in message
    assert json.loads(ok(repo, "task", "show", "fix-login", "--json"))["status"] == "ready"


def test_set_status_with_force_moves_the_task_anywhere(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    out = ok(repo, "task", "set-status", "fix-login", "verifying", "--force", "--reason", "by hand")
    assert out == "fix-login: ready → verifying (forced)\n"
    assert ok(repo, "task", "set-status", "fix-login", "planned", "--force") == (
        "fix-login: verifying → planned (forced)\n"
    )
    task = json.loads(ok(repo, "task", "show", "fix-login", "--json"))
    assert (task["status"], task["phase"]) == ("ready", "planned")


def test_set_status_to_an_unknown_status_is_a_usage_error(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    message = fails(repo, 2, "task", "set-status", "fix-login", "finished", "--force")
    assert message.startswith('unknown status "finished"')


def test_set_status_of_an_unknown_task_fails(repo: Path) -> None:
    assert "nope" in fails(repo, 1, "task", "set-status", "nope", "done", "--force")


def test_a_reader_that_stops_early_is_not_an_error(repo: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.md"
    big.write_text("x" * 300_000)  # more than a pipe holds: corral is still writing when the reader leaves
    ok(repo, "task", "create", "big", "--file", str(big))
    env = clean_env()
    with subprocess.Popen(
        [CORRAL, "task", "list", "--json"], cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.read(1) == b"["
        process.stdout.close()
        stderr = process.stderr.read()
        assert process.wait(timeout=60) == 0
    assert stderr == b""
