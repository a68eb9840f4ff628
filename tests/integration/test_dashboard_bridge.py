"""The dashboard's bridge alone against a real daemon: the Fleet it builds from the API, the selected agent's
screen, the notices from the event stream, and a lost daemon (the banner) found again — no terminal."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from frontends.dashboard.bridge import Bridge, Focus, Notice, stop_bridge
from frontends.dashboard.model import Fleet, Pane
from tests.integration.cli_kit import ok
from tests.integration.dashboard_kit import SIM, wait_for
from tests.integration.test_dashboard import env, wait_status
from tests.integration.test_instances_api import Env

__all__ = ["env"]


class Boxes:
    def __init__(self) -> None:
        self.fleets: queue.Queue[Fleet] = queue.Queue(maxsize=1)
        self.panes: queue.Queue[Pane] = queue.Queue(maxsize=1)
        self.notices: queue.Queue[Notice] = queue.Queue()
        self.fleet: Fleet | None = None
        self.pane: Pane | None = None
        self.said: list[Notice] = []

    def take(self) -> None:
        """What the loop does each turn: take the newest of each."""
        try:
            self.fleet = self.fleets.get_nowait()
        except queue.Empty:
            pass
        try:
            self.pane = self.panes.get_nowait()
        except queue.Empty:
            pass
        while not self.notices.empty():
            self.said.append(self.notices.get_nowait())

    def until(self, test: Any, what: str, timeout: float = 30) -> Any:
        def check() -> Any:
            self.take()
            return test(self)

        return wait_for(check, timeout, what)


@pytest.fixture
def bridge(env: Env, git_repo: Path) -> Iterator[tuple[pykka.ActorRef[Any], Boxes]]:
    ok(git_repo, "instance", "start", "alpha", "--program", SIM)
    boxes = Boxes()
    ref = Bridge.start(env.client, git_repo.name, boxes.fleets, boxes.panes, boxes.notices)
    yield ref, boxes
    stop_bridge(ref)


def titles(fleet: Fleet | None) -> list[str]:
    return [i.title for i in fleet.instances] if fleet is not None else []


def test_the_fleet_the_screen_and_the_notices(
    env: Env, git_repo: Path, bridge: tuple[pykka.ActorRef[Any], Boxes]
) -> None:
    ref, boxes = bridge
    boxes.until(lambda b: b.fleet and b.fleet.connected and titles(b.fleet) == ["alpha"], "alpha listed")
    assert boxes.fleet is not None and boxes.fleet.problem == ""
    ref.tell(Focus(title="alpha"))
    boxes.until(lambda b: b.pane and b.pane.title == "alpha" and "corral-sim" in b.pane.screen, "its screen")

    ok(git_repo, "instance", "start", "beta", "--program", SIM, "--prompt", "/edit b.txt hi")
    boxes.until(lambda b: "beta" in titles(b.fleet), "beta listed (an event, not the 5 s poll)", timeout=4)
    said = boxes.until(lambda b: [n for n in b.said if n.text.startswith("beta waits for you")], "the notice")
    assert said[0].level == "warn" and "permission" in said[0].text
    waiting = boxes.until(
        lambda b: [i for i in b.fleet.instances if i.title == "beta" and i.status == "waiting"],
        "beta waiting",
    )
    assert "permission" in waiting[0].reason


def test_a_lost_daemon_keeps_the_rows_with_a_banner_and_is_found_again(
    env: Env, git_repo: Path, bridge: tuple[pykka.ActorRef[Any], Boxes]
) -> None:
    _, boxes = bridge
    boxes.until(lambda b: b.fleet and b.fleet.connected and titles(b.fleet) == ["alpha"], "alpha listed")
    wait_status(env, git_repo, "alpha", "ready")
    env.client.stop()
    lost = boxes.until(lambda b: b.fleet if not b.fleet.connected else None, "the banner")
    assert lost.problem.startswith("the corral daemon stopped (api) — reconnecting by itself")
    assert "corral daemon start" in lost.problem and titles(lost) == ["alpha"]  # the last rows stay
    ok(git_repo, "daemon", "start")
    back = boxes.until(lambda b: b.fleet if b.fleet.connected else None, "connected again")
    assert back.problem == "" and titles(back) == ["alpha"] and back.revision > lost.revision


def test_the_supervision_tree_as_the_daemon_reports_it_and_the_info_tab_reading_it(
    env: Env, git_repo: Path, bridge: tuple[pykka.ActorRef[Any], Boxes]
) -> None:
    from frontends.dashboard.model import State, View
    from frontends.dashboard.render import frame

    ref, boxes = bridge
    boxes.until(lambda b: b.fleet and b.fleet.connected and titles(b.fleet) == ["alpha"], "alpha listed")
    ref.tell(Focus(title="alpha", tab="info", tree=True))
    fleet = boxes.until(lambda b: b.fleet if b.fleet.tree is not None else None, "the tree")
    paths = []
    stack = [fleet.tree]
    while stack:
        node = stack.pop()
        paths.append(node.path)
        stack.extend(node.children)
    assert f"root/projects/project:{git_repo.name}/alpha/runtime" in paths
    state = State(fleet=fleet, view=View(selected="instance:alpha", tab="info"))
    info = "\n".join(frame(state, 160, 40, colors=0))
    assert "intensity 0/" in info  # the Instance supervisor's intensity, found in the tree by the title
