"""Reading the supervision tree live (actors/supervision/observer.py) with real actors: restarts and the
last exit of a crashed child, and a supervisor too busy to answer shown with why instead of waited for."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from actors.supervision import ChildSpec, SupervisionTree, Supervisor, SupervisorFlags, observe
from protocols.errors import SupervisionError
from tests.unit.actor_kit import Worker, wait_until


class Busy(Supervisor):
    """A supervisor that can be kept busy on its own thread until `release` is set."""

    release = threading.Event()

    def on_receive(self, message: Any) -> Any:
        if message == "work":
            Busy.release.wait(30)
            return None
        return super().on_receive(message)


@pytest.fixture
def tree() -> Any:
    flags = SupervisorFlags(max_restarts=5, period_s=60.0)
    made = SupervisionTree.start(
        flags,
        [
            ChildSpec.worker("bus", Worker),
            ChildSpec.supervisor("group", flags, [ChildSpec.worker("w", Worker)]),
            ChildSpec.supervisor("busy", flags, [ChildSpec.worker("x", Worker)], supervisor_class=Busy),
        ],
    )
    yield made
    Busy.release.set()
    made.stop()


def test_a_crashed_child_shows_its_restart_generation_and_last_exit(tree: SupervisionTree) -> None:
    tree.env.directory.get("root/group/w").tell("crash")
    wait_until(lambda: tree.statistics("root/group").children[0].generation == 2, 10, "the restart")
    node = observe(tree.env.directory, "root", timeout=5.0)
    assert [c.id for c in node.children] == ["bus", "group", "busy"]
    group = node.children[1]
    assert (group.kind, group.restarts_in_window, group.max_restarts, group.total_restarts) == (
        "supervisor",
        1,
        5,
        1,
    )
    (worker,) = group.children
    assert (worker.path, worker.kind, worker.generation, worker.restarts) == ("root/group/w", "worker", 2, 1)
    assert worker.last_exit == "RuntimeError: w crashed on purpose"
    assert node.children[0].children == () and node.children[0].kind == "worker"


def test_a_busy_supervisor_is_shown_with_why_and_does_not_hold_the_view_up(tree: SupervisionTree) -> None:
    Busy.release.clear()
    tree.env.directory.get("root/busy").tell("work")
    node = observe(tree.env.directory, "root", timeout=0.3)
    busy = node.children[2]
    assert busy.state == "running" and "did not answer within 0.3 s" in busy.error and busy.children == ()
    assert node.children[1].children[0].id == "w"  # the rest of the tree is read all the same
    Busy.release.set()
    with pytest.raises(SupervisionError, match="no supervisor is running at nowhere"):
        observe(tree.env.directory, "nowhere")
