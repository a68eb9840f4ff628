"""`corral signal …` as a real process in a real git repository, on a private database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors.store import Store
from tests.integration.cli_kit import fails, ok


@pytest.fixture
def repo(corral_home: Path, git_repo: Path) -> Path:
    """A repository with one task, fix-login, in status ready."""
    ok(git_repo, "task", "create", "fix-login")
    return git_repo


def signals_json(repo: Path, *args: str) -> list[dict[str, object]]:
    return json.loads(ok(repo, "signal", "list", "--json", *args))


# --- emit -------------------------------------------------------------------------------------------------


def test_emit_prints_the_signal_id_status_type_and_task(repo: Path) -> None:
    assert ok(repo, "signal", "emit", "plan_start", "fix-login") == "signal 1 pending: plan_start fix-login\n"
    assert ok(repo, "signal", "emit", "plan_start", "fix-login") == "signal 2 pending: plan_start fix-login\n"


def test_emit_accepts_hyphens_and_aliases_and_stores_the_canonical_type(repo: Path) -> None:
    out = ok(repo, "signal", "emit", "review-changes", "fix-login", "--payload", "tests fail")
    assert out == "signal 1 pending: review_changes_requested fix-login\n"
    (signal,) = signals_json(repo)
    assert signal["signal_type"] == "review_changes_requested"
    assert json.loads(str(signal["payload"])) == {"body": "tests fail"}


def test_emit_from_a_user_shell_has_source_user(repo: Path) -> None:
    ok(repo, "signal", "emit", "plan_start", "fix-login")
    assert signals_json(repo)[0]["source"] == "user"


def test_emit_in_a_managed_session_has_source_agent(repo: Path) -> None:
    ok(repo, "signal", "emit", "plan_start", "fix-login", CORRAL_MANAGED="1")
    assert signals_json(repo)[0]["source"] == "agent"


def test_an_agent_may_not_emit_a_user_only_signal(repo: Path) -> None:
    message = fails(repo, 1, "signal", "emit", "cancel", "fix-login", CORRAL_MANAGED="1")
    assert message.startswith('signal "cancel" is user-only')
    assert signals_json(repo) == []


def test_emit_a_wave_signal_with_a_json_payload(repo: Path) -> None:
    payload = '{"wave_number": 1, "task_number": 2}'
    ok(repo, "signal", "emit", "implement_task_finished", "fix-login", "--payload", payload)
    assert json.loads(str(signals_json(repo)[0]["payload"])) == {"wave_number": 1, "task_number": 2}


def test_emit_without_a_required_payload_fails_saying_what_it_needs(repo: Path) -> None:
    message = fails(repo, 1, "signal", "emit", "implement_wave", "fix-login")
    assert message.startswith("signal implement_wave needs a payload")
    assert '{"wave_number": N}' in message


def test_emit_with_a_payload_that_does_not_fit_the_type_fails(repo: Path) -> None:
    message = fails(
        repo, 1, "signal", "emit", "implement_wave", "fix-login", "--payload", '{"wave_number": 0}'
    )
    assert "wave_number" in message
    message = fails(repo, 1, "signal", "emit", "implement_wave", "fix-login", "--payload", "not json")
    assert "needs a JSON object payload" in message
    assert signals_json(repo) == []


def test_emit_an_unknown_type_is_a_usage_error_listing_the_types(repo: Path) -> None:
    message = fails(repo, 2, "signal", "emit", "coder_finished", "fix-login")
    assert message.startswith('unknown signal type "coder_finished"; signal types are: plan_start')


def test_emit_for_an_unknown_task_fails_naming_it(repo: Path) -> None:
    message = fails(repo, 1, "signal", "emit", "plan_start", "nope")
    assert "nope" in message and repo.name in message
    assert signals_json(repo) == []


def test_emit_with_project_works_outside_the_repository(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert ok(outside, "signal", "emit", "plan_start", "fix-login", "--project", repo.name).startswith(
        "signal 1 "
    )
    assert ok(outside, "signal", "emit", "plan_start", "fix-login", "--project", str(repo)).startswith(
        "signal 2 "
    )
    assert len(signals_json(repo)) == 2


def test_emit_with_an_unknown_project_fails(repo: Path) -> None:
    message = fails(repo, 1, "signal", "emit", "plan_start", "fix-login", "--project", "nope")
    assert "nope" in message


def test_an_emitted_signal_is_applied_by_the_store(repo: Path, corral_home: Path) -> None:
    ok(repo, "signal", "emit", "plan_start", "fix-login")
    with Store.open(corral_home / "corral.db") as store:
        outcome = store.apply_next("test")
    assert outcome is not None and outcome.applied
    assert "planning" in ok(repo, "task", "list")
    (signal,) = signals_json(repo)
    assert (signal["status"], signal["result"]) == ("done", "ready → planning")


# --- list -------------------------------------------------------------------------------------------------


def test_list_prints_a_table_newest_first(repo: Path) -> None:
    ok(repo, "signal", "emit", "plan_start", "fix-login")
    ok(repo, "signal", "emit", "implement_start", "fix-login")
    lines = ok(repo, "signal", "list").splitlines()
    assert lines[0].split() == ["ID", "STATUS", "TYPE", "TASK", "SOURCE", "CREATED", "RESULT"]
    assert [line.split()[:5] for line in lines[1:]] == [
        ["2", "pending", "implement_start", "fix-login", "user"],
        ["1", "pending", "plan_start", "fix-login", "user"],
    ]


def test_list_filters_by_status_task_and_limit(repo: Path, corral_home: Path) -> None:
    ok(repo, "task", "create", "other")
    ok(repo, "signal", "emit", "plan_start", "fix-login")
    ok(repo, "signal", "emit", "plan_start", "other")
    ok(repo, "signal", "emit", "implement_start", "other")
    with Store.open(corral_home / "corral.db") as store:
        assert store.apply_next("test") is not None  # the oldest: plan_start fix-login → done
    assert [s["id"] for s in signals_json(repo, "--status", "done")] == [1]
    assert [s["id"] for s in signals_json(repo, "--status", "pending")] == [3, 2]
    assert [s["id"] for s in signals_json(repo, "--status", "pending,done")] == [3, 2, 1]
    assert [s["id"] for s in signals_json(repo, "--task", "other")] == [3, 2]
    assert [s["id"] for s in signals_json(repo, "--limit", "1")] == [3]


def test_list_json_is_a_list_of_signal_records(repo: Path) -> None:
    ok(repo, "signal", "emit", "plan_start", "fix-login")
    (signal,) = signals_json(repo)
    assert {"id", "task", "signal_type", "payload", "source", "status", "result", "created_at"} <= set(signal)


def test_list_of_no_signals_says_so(repo: Path) -> None:
    assert ok(repo, "signal", "list") == f"no signals in project {repo.name}\n"
    assert signals_json(repo) == []


def test_list_with_an_unknown_status_is_a_usage_error(repo: Path) -> None:
    message = fails(repo, 2, "signal", "list", "--status", "queued")
    assert message == 'unknown signal status "queued"; statuses are: pending, processing, done, failed'
