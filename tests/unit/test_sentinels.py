"""Legacy sentinel files: names, scanning, bridging into a real store, failing, and recovery after a kill."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from actors.sentinels import (
    MAX_BODY_BYTES,
    BridgeResult,
    Sentinel,
    bridge,
    parse_name,
    recover_in_flight,
    scan,
    signal_dirs,
)
from actors.store import Store
from protocols.errors import UsageError
from protocols.fsm import Source
from protocols.records import Project

KINDS = [
    ("planner-finished-auth", "planner_finished", "auth", True, ()),
    ("implement-finished-auth", "implement_finished", "auth", True, ()),
    ("review-approved-auth", "review_approved", "auth", True, ()),
    ("review-changes-auth", "review_changes_requested", "auth", True, ()),
    (
        "implement-task-finished-w2-t7-auth",
        "implement_task_finished",
        "auth",
        False,
        (("wave_number", 2), ("task_number", 7)),
    ),
    ("implement-wave-3-auth", "implement_wave", "auth", False, (("wave_number", 3),)),
    ("planner-finished-auth-flow.md", "planner_finished", "auth-flow", True, ()),
]


@pytest.fixture
def repo(project: Project) -> Path:
    return Path(project.root)


def drop(directory: Path, name: str, text: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def signals_of(repo: Path) -> Path:
    return repo / ".corral" / "signals"


def bridge_all(store: Store, project: Project, repo: Path) -> list[BridgeResult]:
    return [bridge(store, project.id, s) for s in scan(repo)]


def payload(result: BridgeResult) -> dict[str, object]:
    assert result.signal is not None
    return json.loads(result.signal.payload) if result.signal.payload else {}


# -- names ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "signal_type", "task", "body", "fields"), KINDS)
def test_each_sentinel_name_maps_to_its_signal(
    name: str, signal_type: str, task: str, body: bool, fields: tuple[tuple[str, int], ...]
) -> None:
    assert parse_name(name) == (signal_type, task, body, fields)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("coder-finished-auth", "unknown sentinel"),
        ("implement-wave-x-auth", "unknown sentinel"),
        ("review-approved-", "unknown sentinel"),
        ("review-approved-Auth Flow", "invalid task name"),
    ],
)
def test_a_name_outside_the_table_is_refused_with_the_forms_it_could_take(name: str, why: str) -> None:
    with pytest.raises(UsageError, match=why):
        parse_name(name)


# -- scanning ---------------------------------------------------------------------------------------------


def test_scan_finds_the_repository_and_every_worktree_and_skips_hidden_files_and_sub_directories(
    repo: Path,
) -> None:
    drop(signals_of(repo), "planner-finished-a")
    drop(signals_of(repo), ".planner-finished-tmp")
    drop(signals_of(repo) / "processing", "planner-finished-b@0")
    drop(signals_of(repo) / "failed", "junk")
    drop(signals_of(repo / ".worktrees" / "w1"), "implement-finished-c")
    drop(signals_of(repo / ".worktrees" / ".hidden"), "implement-finished-d")
    (repo / ".worktrees" / "w2").mkdir()  # a worktree without a signals directory
    assert signal_dirs(repo) == [signals_of(repo), signals_of(repo / ".worktrees" / "w1")]
    found = scan(repo)
    assert [(s.where, s.signal_type, s.task) for s in found] == [
        (".corral/signals/planner-finished-a", "planner_finished", "a"),
        (".worktrees/w1/.corral/signals/implement-finished-c", "implement_finished", "c"),
    ]


def test_scan_of_a_repository_without_sentinels_is_empty(repo: Path) -> None:
    assert scan(repo) == [] and scan(repo / "missing") == []


def test_a_file_still_being_written_is_left_for_the_next_scan(repo: Path) -> None:
    path = drop(signals_of(repo), "planner-finished-a")
    mtime = path.stat().st_mtime
    assert scan(repo, settle_s=0.5, now=mtime + 0.1) == []
    assert [s.name for s in scan(repo, settle_s=0.5, now=mtime + 0.6)] == ["planner-finished-a"]


def test_scan_returns_the_oldest_first(repo: Path) -> None:
    for age, name in ((30, "planner-finished-c"), (20, "planner-finished-a"), (10, "planner-finished-b")):
        path = drop(signals_of(repo), name)
        os.utime(path, (path.stat().st_atime, path.stat().st_mtime - age))
    assert [s.task for s in scan(repo)] == ["c", "a", "b"]


# -- bridging ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "signal_type", "task", "body", "fields"), KINDS)
def test_every_kind_is_bridged_from_a_worktree_as_an_agent_signal_and_the_file_deleted(
    store: Store,
    project: Project,
    repo: Path,
    name: str,
    signal_type: str,
    task: str,
    body: bool,
    fields: tuple[tuple[str, int], ...],
) -> None:
    directory = signals_of(repo / ".worktrees" / "w1")
    drop(directory, name, "\n  what the agent says  \n\n")
    (result,) = bridge_all(store, project, repo)
    assert result.status == "bridged" and result.signal is not None
    assert (result.signal.signal_type, result.signal.task) == (signal_type, task)
    assert result.signal.source == Source.AGENT and result.signal.status == "pending"
    if body:
        key = f".worktrees/w1/.corral/signals/{name}@0"
        assert payload(result) == {"body": "what the agent says", "sentinel": key}
    else:
        assert payload(result) == dict(fields)
    assert sorted(os.listdir(directory)) == ["processing"]
    assert os.listdir(directory / "processing") == []


def test_a_review_is_applied_with_its_body_as_the_feedback(
    store: Store, project: Project, repo: Path
) -> None:
    store.create_task(project.id, "auth")
    for event in ("implement_start", "implement_finished"):
        store.transition_task(project.id, "auth", event)
    drop(signals_of(repo), "review-changes-auth", "handle the empty password\n")
    bridge_all(store, project, repo)
    outcome = store.apply_next("test")
    assert outcome is not None and outcome.applied
    task = store.get_task(project.id, "auth")
    assert (task.status, task.latest_feedback) == ("implementing", "handle the empty password")


def test_an_empty_file_carries_only_its_key(store: Store, project: Project, repo: Path) -> None:
    drop(signals_of(repo), "planner-finished-auth")
    (result,) = bridge_all(store, project, repo)
    assert payload(result) == {"sentinel": ".corral/signals/planner-finished-auth@0"}


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        (
            "coder-finished-auth",
            "",
            'unknown sentinel "coder-finished-auth": expected one of planner-finished',
        ),
        ("planner-finished-Auth Flow", "", 'invalid task name "Auth Flow"'),
        ("implement-wave-0-auth", "", "implement_wave payload"),
        ("review-approved-auth", "x" * (MAX_BODY_BYTES + 1), "larger than 256 KiB"),
    ],
)
def test_a_sentinel_that_cannot_be_bridged_is_moved_to_failed_with_the_reason(
    store: Store, project: Project, repo: Path, name: str, text: str, reason: str
) -> None:
    drop(signals_of(repo), name, text)
    (result,) = bridge_all(store, project, repo)
    failed = signals_of(repo) / "failed"
    assert result.status == "failed" and result.failed_path == failed / name
    assert (failed / name).read_text() == text
    assert reason in (failed / f"{name}.reason").read_text()
    assert reason in result.reason
    assert store.list_signals(project.id) == []
    assert [p.name for p in signals_of(repo).iterdir() if p.is_file()] == []


def test_a_symlink_is_not_followed_but_failed(store: Store, project: Project, repo: Path) -> None:
    secret = drop(repo, "secret.txt", "do not read me")
    signals_of(repo).mkdir(parents=True)
    (signals_of(repo) / "review-approved-auth").symlink_to(secret)
    (result,) = bridge_all(store, project, repo)
    assert (result.status, result.reason) == ("failed", "not a regular file")
    assert store.list_signals(project.id) == []


def test_failed_sentinels_of_the_same_name_are_all_kept(store: Store, project: Project, repo: Path) -> None:
    for _ in range(3):
        drop(signals_of(repo), "coder-finished-auth")
        bridge_all(store, project, repo)
    names = sorted(os.listdir(signals_of(repo) / "failed"))
    assert names == [
        "coder-finished-auth",
        "coder-finished-auth.1",
        "coder-finished-auth.1.reason",
        "coder-finished-auth.2",
        "coder-finished-auth.2.reason",
        "coder-finished-auth.reason",
    ]


def test_a_file_taken_by_someone_else_first_is_gone(store: Store, project: Project, repo: Path) -> None:
    path = drop(signals_of(repo), "planner-finished-auth")
    (sentinel,) = scan(repo)
    path.unlink()
    assert bridge(store, project.id, sentinel).status == "gone"
    assert store.list_signals(project.id) == []


def test_the_key_changes_once_the_task_has_a_newer_signal(store: Store, project: Project, repo: Path) -> None:
    drop(signals_of(repo), "planner-finished-auth")
    (first,) = bridge_all(store, project, repo)
    drop(signals_of(repo), "planner-finished-auth")
    (second,) = bridge_all(store, project, repo)
    assert first.signal is not None
    assert payload(second)["sentinel"] == f".corral/signals/planner-finished-auth@{first.signal.id}"


# -- recovery after a kill --------------------------------------------------------------------------------


def in_flight(repo: Path, name: str, mark: int, text: str = "", *, worktree: str = "") -> Path:
    """The state a bridge killed after its rename leaves: the file in processing/ under its mark."""
    base = repo / ".worktrees" / worktree if worktree else repo
    return drop(signals_of(base) / "processing", f"{name}@{mark}", text)


def test_a_file_killed_before_its_emit_is_bridged_once_at_recovery(
    store: Store, project: Project, repo: Path
) -> None:
    in_flight(repo, "review-approved-auth", 0, "ship it", worktree="w1")
    (result,) = recover_in_flight(store, project.id, repo)
    assert result.status == "bridged"
    assert payload(result) == {
        "body": "ship it",
        "sentinel": ".worktrees/w1/.corral/signals/review-approved-auth@0",
    }
    assert recover_in_flight(store, project.id, repo) == []
    assert len(store.list_signals(project.id)) == 1


def test_a_file_killed_after_its_emit_is_deleted_without_a_second_signal(
    store: Store, project: Project, repo: Path
) -> None:
    store.emit_signal(project.id, "auth", "plan_start")  # an older signal of the task: mark 1
    path = in_flight(repo, "review-approved-auth", 1, "ship it")
    key = ".corral/signals/review-approved-auth@1"
    emitted = store.emit_signal(
        project.id, "auth", "review_approved", json.dumps({"body": "ship it", "sentinel": key})
    )
    (result,) = recover_in_flight(store, project.id, repo)
    assert (result.status, result.signal) == ("duplicate", emitted)
    assert not path.exists()
    assert len(store.list_signals(project.id)) == 2


def test_a_signal_with_another_key_is_not_taken_for_the_files_emission(
    store: Store, project: Project, repo: Path
) -> None:
    in_flight(repo, "review-approved-auth", 0, "ship it")
    other = ".worktrees/w9/.corral/signals/review-approved-auth@0"
    store.emit_signal(
        project.id, "auth", "review_approved", json.dumps({"body": "ship it", "sentinel": other})
    )
    store.emit_signal(project.id, "auth", "review_approved", "ship it")  # by hand, same body, no key
    (result,) = recover_in_flight(store, project.id, repo)
    assert result.status == "bridged"
    assert len(store.list_signals(project.id)) == 3


def test_a_wave_sentinel_killed_after_its_emit_is_matched_by_its_payload(
    store: Store, project: Project, repo: Path
) -> None:
    store.emit_signal(project.id, "auth", "implement_task_finished", '{"wave_number": 1, "task_number": 2}')
    path = in_flight(repo, "implement-task-finished-w1-t2-auth", 1)
    emitted = store.emit_signal(
        project.id, "auth", "implement_task_finished", '{"wave_number": 1, "task_number": 2}'
    )
    (result,) = recover_in_flight(store, project.id, repo)
    assert (result.status, result.signal) == ("duplicate", emitted)
    assert not path.exists()


def test_a_wave_signal_older_than_the_mark_is_not_the_files_emission(
    store: Store, project: Project, repo: Path
) -> None:
    store.emit_signal(project.id, "auth", "implement_task_finished", '{"wave_number": 1, "task_number": 2}')
    in_flight(repo, "implement-task-finished-w1-t2-auth", 1)
    (result,) = recover_in_flight(store, project.id, repo)
    assert result.status == "bridged"
    assert len(store.list_signals(project.id)) == 2


def test_a_user_signal_is_not_taken_for_an_agents_file(store: Store, project: Project, repo: Path) -> None:
    in_flight(repo, "implement-wave-2-auth", 0)
    store.emit_signal(project.id, "auth", "implement_wave", '{"wave_number": 2}', source=Source.USER)
    (result,) = recover_in_flight(store, project.id, repo)
    assert result.status == "bridged"


def test_a_file_without_a_mark_is_bridged_at_recovery(store: Store, project: Project, repo: Path) -> None:
    drop(signals_of(repo) / "processing", "implement-finished-auth", "moved here by kasmos")
    (result,) = recover_in_flight(store, project.id, repo)
    assert result.status == "bridged"
    assert payload(result)["body"] == "moved here by kasmos"
    assert os.listdir(signals_of(repo) / "processing") == []


def test_a_recovered_file_and_a_new_one_of_the_same_name_are_both_bridged(
    store: Store, project: Project, repo: Path
) -> None:
    in_flight(repo, "review-changes-auth", 0, "first round")
    drop(signals_of(repo), "review-changes-auth", "second round")
    recovered = recover_in_flight(store, project.id, repo)
    bridged = bridge_all(store, project, repo)
    assert [r.status for r in [*recovered, *bridged]] == ["bridged", "bridged"]
    assert sorted(json.loads(s.payload)["body"] for s in store.list_signals(project.id)) == [
        "first round",
        "second round",
    ]


def test_an_unreadable_name_in_processing_goes_to_failed(store: Store, project: Project, repo: Path) -> None:
    drop(signals_of(repo) / "processing", "coder-finished-auth@3")
    (result,) = recover_in_flight(store, project.id, repo)
    assert result.status == "failed"
    assert (signals_of(repo) / "failed" / "coder-finished-auth").exists()


def test_sentinel_records_say_where_the_file_was_written(repo: Path) -> None:
    drop(signals_of(repo / ".worktrees" / "w1"), "implement-wave-2-auth")
    (sentinel,) = scan(repo)
    assert sentinel == Sentinel(
        signals_of(repo / ".worktrees" / "w1") / "implement-wave-2-auth",
        ".worktrees/w1/.corral/signals/implement-wave-2-auth",
        "implement-wave-2-auth",
        "implement_wave",
        "auth",
        False,
        (("wave_number", 2),),
    )
