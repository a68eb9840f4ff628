"""The task, signal and audit routes (frontends/daemon/tasks.py) served in this process: the real API and
server, a real TaskDesk on a real SQLite store on a thread of its own, and a stand-in daemon that records
what the desk asks of it after a commit (events published, projects woken, claimer poked).
tests/integration/test_tasks_api.py runs them in a real daemon, where the claimer and the Projects act."""

from __future__ import annotations

import concurrent.futures
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors.store import Store
from frontends.daemon import DaemonClient
from frontends.daemon import http as http_module
from frontends.daemon.api import make_app
from frontends.daemon.server import ControlServer
from frontends.daemon.tasks import TaskDesk
from protocols.messages import SignalEmitted, TaskCreated, TaskTransitioned
from protocols.records import Task, TaskSummary
from tests.unit.test_daemon_api import FakeDaemon

PLAN = "# Fix the login form\n\nThe form loses the password on a failed attempt.\n"


class StoreThread:
    """The daemon's store thread in small: one thread, one apsw connection, work submitted to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="test-store")
        self.store: Store | None = None

    def __call__(self, work: Callable[[Store], Any]) -> concurrent.futures.Future[Any]:
        return self.pool.submit(self._run, work)

    def _run(self, work: Callable[[Store], Any]) -> Any:
        if self.store is None:
            self.store = Store.open(self.path)
        return work(self.store)

    def close(self) -> None:
        self.pool.submit(lambda: self.store.close() if self.store is not None else None).result()
        self.pool.shutdown()


class Served:
    def __init__(self, root: Path) -> None:
        self.db = root / "corral.db"
        with Store.open(self.db) as store:
            (root / "app").mkdir()
            self.project = store.ensure_project(root / "app")
        self.store_thread = StoreThread(self.db)
        self.published: list[Any] = []
        self.woken: list[int] = []
        self.pokes = 0
        self.daemon = FakeDaemon(root / "daemon.sock")
        self.daemon.tasks = TaskDesk(  # type: ignore[attr-defined]
            self.store_thread,
            publish=self.published.append,
            wake_project=self.woken.append,
            wake_claimer=self._poke,
        )
        self.server = ControlServer(make_app(self.daemon), root / "daemon.sock", shutdown_timeout_s=5.0)
        self.client = DaemonClient(root)

    def _poke(self) -> None:
        self.pokes += 1

    def request(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        return self.client.request(method, f"/v1/repos/app{path}", json=json)

    def call(self, method: str, path: str, json: Any = None) -> Any:
        return self.client.call(method, f"/v1/repos/app{path}", json=json)

    def store(self) -> Store:
        return Store.open(self.db)


@pytest.fixture
def served() -> Iterator[Served]:
    root = Path(tempfile.mkdtemp(prefix="crl-t-", dir="/tmp"))
    made = Served(root)
    made.server.start()
    try:
        yield made
    finally:
        made.server.stop()
        made.store_thread.close()
        shutil.rmtree(root, ignore_errors=True)


# -- tasks --------------------------------------------------------------------------------------------------


def test_a_task_is_created_listed_and_shown_in_the_shape_of_task_show_json(served: Served) -> None:
    status, task = served.request(
        "POST", "/tasks", json={"name": "fix-login", "topic": "auth", "content": PLAN}
    )
    assert status == 201
    assert (task["name"], task["title"], task["status"], task["topic"], task["branch"]) == (
        "fix-login", "Fix the login form", "ready", "auth", "corral/fix-login",
    )  # fmt: skip
    assert served.published == [TaskCreated(project="app", task="fix-login", status="ready")]
    assert served.woken == [] and served.pokes == 0  # a new task has nothing for the daemon to do

    (listed,) = served.call("GET", "/tasks")  # a list carries no contents, only their size
    assert listed["name"] == "fix-login" and "content" not in listed
    assert listed["content_bytes"] == len(PLAN.encode())
    assert list(listed) == list(TaskSummary.__struct_fields__)
    with served.store() as store:
        record = store.get_task(served.project.id, "fix-login")
        store.set_wave_tasks(record.id, [(1, 1, "Form"), (1, 2, "Tests")])
        waves = store.list_wave_tasks(record.id)
    shown = served.call("GET", "/tasks/fix-login")
    # what `corral task show --json` prints: the task's fields, then its wave tasks
    assert shown == {**msgspec.to_builtins(record), "wave_tasks": msgspec.to_builtins(waves)}
    assert list(shown) == [*Task.__struct_fields__, "wave_tasks"]
    assert [(w["wave_number"], w["task_number"], w["status"]) for w in shown["wave_tasks"]] == [
        (1, 1, "pending"),
        (1, 2, "pending"),
    ]


def test_creating_refuses_a_taken_name_a_bad_name_and_a_body_that_does_not_fit(served: Served) -> None:
    served.call("POST", "/tasks", json={"name": "fix-login", "title": "Fix it"})
    assert served.request("POST", "/tasks", json={"name": "fix-login"}) == (
        409,
        {"error": 'a task named "fix-login" already exists in project app', "detail": ""},
    )
    status, body = served.request("POST", "/tasks", json={"name": "Fix Login"})
    assert status == 400 and body["error"].startswith('invalid task name "Fix Login": use lowercase letters')
    status, body = served.request("POST", "/tasks", json={"name": "x", "priority": 1})
    assert status == 400 and "unknown field `priority`" in body["error"]
    status, body = served.request("POST", "/tasks", json={"name": "x", "title": 7})
    assert (status, body["error"]) == (
        400,
        "the request body does not fit: Expected `str`, got `int` - at `$.title`",
    )
    assert served.request("POST", "/tasks", json={"title": "no name"})[0] == 400
    assert [t["name"] for t in served.call("GET", "/tasks")] == ["fix-login"]


def test_the_list_filters_by_status_and_topic_and_hides_cancelled_tasks_unless_asked(served: Served) -> None:
    for name, topic in (("a", "auth"), ("b", ""), ("c", "auth")):
        served.call("POST", "/tasks", json={"name": name, "topic": topic})
    served.call("POST", "/tasks/b/transition", json={"event": "plan_start"})
    served.call("POST", "/tasks/c/transition", json={"event": "cancel"})

    def names(query: str) -> list[str]:
        return [t["name"] for t in served.call("GET", f"/tasks{query}")]

    assert names("") == ["a", "b"]
    assert names("?all=1") == names("?all") == ["a", "b", "c"]
    assert names("?status=planning") == ["b"]
    assert names("?status=ready,cancelled") == names("?status=ready&status=Cancelled") == ["a", "c"]
    assert names("?topic=auth") == ["a"]
    assert names("?topic=auth&all=true") == ["a", "c"]
    assert names("?status=planned") == []

    status, body = served.request("GET", "/tasks?status=implementin")
    assert (status, body["error"]) == (
        400,
        'unknown status "implementin"; statuses are: ready, planning, implementing, reviewing, verifying, '
        "done, cancelled, planned",
    )
    status, body = served.request("GET", "/tasks?stauts=ready")
    assert (status, body["error"]) == (
        400,
        'unknown query parameter "stauts" for GET /v1/repos/app/tasks (it takes status, topic, all)',
    )
    assert served.request("GET", "/tasks?all=maybe")[0] == 400


def test_unknown_projects_and_tasks_are_404s_naming_what_there_is(served: Served) -> None:
    assert served.client.request("GET", "/v1/repos/nope/tasks") == (
        404,
        {"error": 'no project named "nope" (projects: app)', "detail": ""},
    )
    assert served.request("GET", "/tasks/ghost") == (
        404,
        {"error": 'no task named "ghost" in project app (it has no tasks yet)', "detail": ""},
    )
    served.call("POST", "/tasks", json={"name": "fix-login"})
    served.call("POST", "/tasks", json={"name": "fix-logout"})
    expected = 'no task named "fix-log" in project app (tasks: fix-login, fix-logout)'
    assert served.request("GET", "/tasks/fix-log") == (404, {"error": expected, "detail": ""})
    assert served.request("POST", "/tasks/fix-log/transition", json={"event": "cancel"}) == (
        404,
        {"error": expected, "detail": ""},
    )
    body = {"task": "fix-log", "signal_type": "cancel"}
    assert served.request("POST", "/signals", json=body) == (404, {"error": expected, "detail": ""})
    for path in ("/tasks", "/signals", "/audit"):
        status, answer = served.client.request("GET", f"/v1/repos/nope{path}")
        assert status == 404 and answer["error"].startswith('no project named "nope"')


# -- transitions --------------------------------------------------------------------------------------------


def test_a_transition_moves_the_task_as_the_user_and_wakes_its_project(served: Served) -> None:
    served.call("POST", "/tasks", json={"name": "fix-login"})
    served.published.clear()
    answer = served.call("POST", "/tasks/fix-login/transition", json={"event": "plan-start"})
    assert answer["transition"] == {
        "from_status": "ready", "event": "plan_start", "to_status": "planning", "phase": "",
    }  # fmt: skip
    assert answer["task"]["status"] == "planning" and answer["task"]["planning_at"]
    assert served.woken == [served.project.id]
    assert served.published == [
        TaskTransitioned(
            project="app", task="fix-login", from_status="ready", event="plan_start",
            to_status="planning", source="user",
        )
    ]  # fmt: skip

    # a user-only event, with feedback as an object: the person at the UI may send it
    feedback = {"body": "start again"}
    answer = served.call("POST", "/tasks/fix-login/transition", json={"event": "cancel", "payload": feedback})
    assert answer["task"]["status"] == "cancelled"
    with served.store() as store:
        rows = store.list_audit(served.project.id, task="fix-login")
        outbox = store.pending_outbox(project_id=served.project.id)
    assert [a.message for a in rows if a.kind == "transition"] == [
        "fix-login: planning → cancelled (cancel, by user)",
        "fix-login: ready → planning (plan_start, by user)",
    ]
    assert [item.kind for item in outbox] == ["enter_planning", "enter_cancelled"]


def test_a_transition_the_lifecycle_refuses_is_a_409_with_its_reason_and_changes_nothing(
    served: Served,
) -> None:
    served.call("POST", "/tasks", json={"name": "fix-login"})
    assert served.request("POST", "/tasks/fix-login/transition", json={"event": "review_approved"}) == (
        409,
        {
            "error": 'invalid transition: event "review_approved" does not apply to a task in status "ready" '
            "(allowed: plan_start, implement_start, cancel)",
            "detail": "",
        },
    )
    status, body = served.request("POST", "/tasks/fix-login/transition", json={"event": "launch"})
    assert status == 400 and body["error"].startswith('unknown event "launch"; events are: plan_start, ')
    status, body = served.request(
        "POST", "/tasks/fix-login/transition", json={"event": "plan_start", "payload": {"body": 5}}
    )
    assert (status, body["error"]) == (400, 'signal plan_start: "body" must be a string')
    status, body = served.request("POST", "/tasks/fix-login/transition", json={"event": "cancel", "x": 1})
    assert status == 400 and "unknown field `x`" in body["error"]
    assert served.request("POST", "/tasks/fix-login/transition")[0] == 400  # no body at all
    assert served.call("GET", "/tasks/fix-login")["status"] == "ready"
    assert served.woken == []


def test_the_topic_rule_is_a_409_naming_the_task_that_holds_the_topic(served: Served) -> None:
    served.call("POST", "/tasks", json={"name": "a", "topic": "auth"})
    served.call("POST", "/tasks", json={"name": "b", "topic": "auth"})
    served.call("POST", "/tasks/a/transition", json={"event": "implement_start"})
    status, body = served.request("POST", "/tasks/b/transition", json={"event": "implement_start"})
    assert status == 409 and 'task "a" of the same topic "auth" is implementing' in body["error"]


# -- signals ------------------------------------------------------------------------------------------------


def test_a_signal_is_stored_pending_from_the_user_and_the_claimer_is_poked(served: Served) -> None:
    served.call("POST", "/tasks", json={"name": "fix-login"})
    served.published.clear()
    status, signal = served.request(
        "POST", "/signals", json={"task": "fix-login", "signal_type": "review-changes", "payload": "a test"}
    )
    assert status == 202
    assert (signal["status"], signal["source"], signal["signal_type"], signal["task"]) == (
        "pending", "user", "review_changes_requested", "fix-login",
    )  # fmt: skip
    assert signal["payload"] == '{"body":"a test"}'
    assert served.pokes == 1
    assert served.published == [
        SignalEmitted(
            project="app", task="fix-login", signal_id=signal["id"], signal_type=signal["signal_type"]
        )
    ]
    wave = {"wave_number": 1, "task_number": 2}
    body = {"task": "fix-login", "signal_type": "implement_task_finished", "payload": wave}
    status, second = served.request("POST", "/signals", json=body)
    assert status == 202 and msgspec.json.decode(second["payload"]) == wave
    assert served.pokes == 2
    with served.store() as store:
        assert [s.id for s in store.list_signals(served.project.id, statuses=["pending"])] == [
            second["id"],
            signal["id"],
        ]


def test_a_bad_signal_is_a_400_with_the_reason_and_nothing_is_stored(served: Served) -> None:
    served.call("POST", "/tasks", json={"name": "fix-login"})

    def emit(signal_type: str, payload: Any = None) -> tuple[int, str]:
        body = {"task": "fix-login", "signal_type": signal_type, "payload": payload}
        status, answer = served.request("POST", "/signals", json=body)
        return status, answer.get("error", "")

    status, error = emit("finished")
    assert status == 400 and error.startswith('unknown signal type "finished"; signal types are: ')
    status, error = emit("implement_task_finished")
    assert status == 400 and error.startswith("signal implement_task_finished needs a payload")
    status, error = emit("implement_task_finished", {"wave_number": 0, "task_number": 1})
    assert status == 400 and "Expected `int` >= 1 - at `$.wave_number`" in error
    status, error = emit("implement_wave", "two")
    assert status == 400 and error.startswith("signal implement_wave needs a JSON object payload, got 'two'")
    assert emit("plan_start", 5)[0] == 400
    status, answer = served.request("POST", "/signals", json={"task": "Fix Login", "signal_type": "cancel"})
    assert status == 400 and answer["error"].startswith('invalid task name "Fix Login"')
    assert served.call("GET", "/signals") == []
    assert served.pokes == 0


def test_signals_are_listed_newest_first_by_status_task_and_limit(served: Served) -> None:
    for name in ("a", "b"):
        served.call("POST", "/tasks", json={"name": name})
    ids = [
        served.call("POST", "/signals", json={"task": task, "signal_type": kind})["id"]
        for task, kind in (("a", "plan_start"), ("b", "plan_start"), ("a", "implement_start"))
    ]
    with served.store() as store:
        store.apply_pending("test", project_id=served.project.id)  # a: planning; b: planning; a: refused

    def listed(query: str = "") -> list[tuple[int, str]]:
        return [(s["id"], s["status"]) for s in served.call("GET", f"/signals{query}")]

    assert listed() == [(ids[2], "failed"), (ids[1], "done"), (ids[0], "done")]
    assert listed("?status=failed") == [(ids[2], "failed")]
    assert listed("?task=a&status=done,failed") == [(ids[2], "failed"), (ids[0], "done")]
    assert listed("?limit=1") == [(ids[2], "failed")]
    status, body = served.request("GET", "/signals?status=lost")
    assert (status, body["error"]) == (
        400,
        'unknown signal status "lost"; statuses are: pending, processing, done, failed',
    )
    for limit in ("0", "ten", "10001"):
        status, body = served.request("GET", f"/signals?limit={limit}")
        assert (status, body["error"]) == (
            400,
            f"invalid limit {limit!r}: give a whole number from 1 to 10000",
        )
    assert served.request("GET", "/signals?limit=1&limit=2")[0] == 400
    assert served.request("GET", "/signals?task=A%20B")[0] == 400


# -- the audit log ------------------------------------------------------------------------------------------


def test_the_audit_log_lists_the_projects_rows_newest_first_by_task_level_and_limit(served: Served) -> None:
    served.call("POST", "/tasks", json={"name": "a"})
    served.call("POST", "/tasks", json={"name": "b"})
    served.call("POST", "/tasks/a/transition", json={"event": "plan_start"})
    served.call("POST", "/signals", json={"task": "b", "signal_type": "planner_finished"})
    with served.store() as store:
        store.apply_pending("test", project_id=served.project.id)  # refused: b is ready, not planning
        store.record_audit(None, "daemon_stopping", "not this project's")

    def rows(query: str = "") -> list[tuple[str, str, str]]:
        return [(r["kind"], r["level"], r["task"]) for r in served.call("GET", f"/audit{query}")]

    assert rows() == [
        ("signal_failed", "warn", "b"),
        ("transition", "info", "a"),
        ("task_created", "info", "b"),
        ("task_created", "info", "a"),
    ]
    assert rows("?task=a") == [("transition", "info", "a"), ("task_created", "info", "a")]
    assert rows("?level=warn") == [("signal_failed", "warn", "b")]
    assert rows("?level=error") == []
    assert rows("?limit=2") == rows()[:2]
    assert rows("?instance=b-coder") == []
    status, body = served.request("GET", "/audit?level=loud")
    assert (status, body["error"]) == (400, 'unknown level "loud"; levels are: debug, info, warn, error')
    status, body = served.request("GET", "/audit?kind=transition")
    assert status == 400 and body["error"].endswith("(it takes task, instance, level, limit)")


# -- the daemon's side --------------------------------------------------------------------------------------


def test_a_store_that_does_not_answer_is_a_503_and_the_loop_stays_free(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    stuck: concurrent.futures.Future[Any] = concurrent.futures.Future()
    served.daemon.tasks = TaskDesk(lambda work: stuck)  # type: ignore[attr-defined]
    monkeypatch.setattr(http_module, "ANSWER_TIMEOUT_S", 0.05)
    status, body = served.request("GET", "/tasks")
    assert status == 503 and body["error"].startswith("the daemon did not answer within 0.05 s")
    assert served.request("POST", "/tasks", json={"name": "x"})[0] == 503
    assert served.client.ping() is not None


def test_a_follow_up_that_fails_after_the_commit_does_not_fail_the_request(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Any) -> None:
        raise RuntimeError("the bus is gone")

    served.daemon.tasks = TaskDesk(served.store_thread, publish=broken)  # type: ignore[attr-defined]
    assert served.request("POST", "/tasks", json={"name": "fix-login"})[0] == 201
    assert "after the create was committed, a follow-up failed" in caplog.text
    assert [t["name"] for t in served.call("GET", "/tasks")] == ["fix-login"]
