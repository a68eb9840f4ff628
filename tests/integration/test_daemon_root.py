"""The composition root in this process, on a real socket and database: extra children join the tree after
`root_children`, and a root supervisor that gives up ends the daemon with status 1 and its reason."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors.supervision import ChildSpec, SupervisedActor
from frontends.daemon import DaemonClient, RuntimePaths
from frontends.daemon.config import DaemonConfig
from frontends.daemon.root import Daemon, root_children
from tests.unit.actor_kit import wait_until

pytestmark = pytest.mark.usefixtures("stop_actors")


class Idle(SupervisedActor):
    def on_receive(self, message: Any) -> Any:
        return None


class CrashesAtOnce(SupervisedActor):
    """Starts fine, then crashes on its first message: every restart crashes again."""

    def started(self) -> None:
        self.actor_ref.tell("crash")

    def on_receive(self, message: Any) -> Any:
        raise RuntimeError("crashing on purpose")


@pytest.fixture
def config(corral_home: Path) -> Iterator[DaemonConfig]:
    directory = Path(tempfile.mkdtemp(prefix="crl-r-", dir="/tmp"))
    paths = RuntimePaths.resolve(directory).prepare()
    yield DaemonConfig(runtime_dir=str(paths.dir), database=str(corral_home / "corral.db"), version="test")
    shutil.rmtree(directory, ignore_errors=True)


def test_root_children_are_the_bus_the_claimer_the_audit_recorder_then_the_projects(
    config: DaemonConfig,
) -> None:
    children = root_children(config)
    assert [spec.id for spec in children] == ["eventbus", "signals", "audit", "projects"]
    assert children[-1].kind == "supervisor"


def test_extra_children_start_after_the_root_children_and_show_in_status(config: DaemonConfig) -> None:
    daemon = Daemon(config, extra_children=[ChildSpec.worker("idle", Idle)])
    daemon.start()
    try:
        status = DaemonClient(config.runtime_dir).call("GET", "/v1/status")
        children = status["supervision"]["children"]
        assert [(c["id"], c["state"]) for c in children] == [
            ("eventbus", "running"),
            ("signals", "running"),
            ("audit", "running"),
            ("projects", "running"),
            ("idle", "running"),
        ]
        daemon.request_stop("test")
        assert daemon.run_until_stopped() == 0
    finally:
        daemon.stop()
    assert not Path(config.runtime_dir, "daemon.sock").exists()


def test_a_root_supervisor_that_gives_up_ends_the_daemon_with_status_1(
    config: DaemonConfig, caplog: pytest.LogCaptureFixture
) -> None:
    daemon = Daemon(config, extra_children=[ChildSpec.worker("crasher", CrashesAtOnce)])
    daemon.start()
    outcome: list[int] = []
    runner = threading.Thread(target=lambda: outcome.append(daemon.run_until_stopped()))
    runner.start()
    try:
        runner.join(20)
        assert outcome == [1]
    finally:
        daemon.request_stop("teardown")
        runner.join(5)
        daemon.stop()
    assert "the daemon is stopping on a failure: the root supervisor failed" in caplog.text


def _wal_bytes(db: Path) -> int:
    wal = db.with_name(db.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_the_daemon_checkpoints_the_wal_back_to_nothing_once_an_old_reader_lets_go(
    config: DaemonConfig, tmp_path: Path
) -> None:
    import apsw

    from actors.store import Store
    from actors.store.db import JOURNAL_SIZE_LIMIT

    config = msgspec.structs.replace(config, checkpoint_every_s=0.2)
    db = Path(config.database)
    daemon = Daemon(config)
    daemon.start()
    reader = apsw.Connection(str(db))
    try:
        with Store.open(db) as store:
            project = store.ensure_project(tmp_path)
            reader.execute("BEGIN")
            assert reader.execute("SELECT count(*) FROM tasks").get == 0  # a snapshot: checkpoints stop here
            for n in range(1500):
                store.create_task(project.id, f"task-{n}", content="x" * 4000)
            assert _wal_bytes(db) > JOURNAL_SIZE_LIMIT  # the WAL grew: nothing could be checkpointed
            reader.execute("COMMIT")
            # No more writes: only the daemon's checkpoint can give the space back now.
            wait_until(lambda: _wal_bytes(db) == 0, 20, "the daemon to truncate the -wal file")
            assert len(store.list_tasks(project.id)) == 1500
        daemon.request_stop("test")
        assert daemon.run_until_stopped() == 0
    finally:
        reader.close()
        daemon.stop()
