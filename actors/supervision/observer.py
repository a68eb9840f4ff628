"""Read the whole supervision tree, live, from every supervisor's `statistics()`.

    node = observe(tree.env.directory, "root", timeout=2.0)   # protocols.observer.SupervisionNode

Each supervisor is asked for its statistics (`GetStatistics`), level by level and all of a level at once, so
the walk takes about as long as the slowest supervisor of each level rather than the sum of them all. A
supervisor busy past the deadline (a Project starting an agent waits for its runtime) is shown with `error`
and no children instead of holding the view up; one that stopped meanwhile likewise. Workers (runtimes,
the event bus) are not asked anything: what a node shows of them is what their supervisor knows.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pykka

from actors.supervision.context import ActorDirectory
from actors.supervision.messages import ChildInfo, GetStatistics, SupervisorStats
from actors.supervision.supervisor import Supervisor
from protocols.errors import SupervisionError
from protocols.observer import SupervisionNode

__all__ = ["observe"]


def observe(directory: ActorDirectory, root: str, *, timeout: float = 2.0) -> SupervisionNode:
    """The tree under the supervisor at path `root`; SupervisionError when nothing runs there."""
    deadline = time.monotonic() + timeout
    stats: dict[str, SupervisorStats] = {}
    errors: dict[str, str] = {}
    level = [root]
    while level:
        asked: dict[str, Any] = {}
        for path in level:
            ref = directory.get(path)
            if ref is None or not issubclass(ref.actor_class, Supervisor):
                continue
            try:
                asked[path] = ref.ask(GetStatistics(), block=False)
            except pykka.ActorDeadError:
                errors[path] = "it stopped while the tree was read"
        level = []
        for path, future in asked.items():
            try:
                found: SupervisorStats = future.get(timeout=max(0.0, deadline - time.monotonic()))
            except pykka.Timeout:
                errors[path] = f"it did not answer within {timeout:g} s (busy); its children are not shown"
            except pykka.ActorDeadError:
                errors[path] = "it stopped while the tree was read"
            else:
                stats[path] = found
                level += [f"{path}/{c.id}" for c in found.children if c.state == "running"]
    if root not in stats and root not in errors:
        raise SupervisionError(f"no supervisor is running at {root}")
    top = ChildInfo(id=root, generation=1, state="running", restart="permanent", kind="supervisor",
                    restarts=0, failures_in_row=0)  # fmt: skip
    return _node(root, top, stats, errors)


def _node(
    path: str, info: ChildInfo, stats: dict[str, SupervisorStats], errors: dict[str, str]
) -> SupervisionNode:
    own = stats.get(path)
    node = SupervisionNode(
        id=info.id,
        path=path,
        kind="supervisor" if own is not None or path in errors else info.kind,
        state=info.state,
        restart=info.restart,
        generation=info.generation,
        restarts=info.restarts,
        failures_in_row=info.failures_in_row,
        backoff_due_s=None if info.restart_due_in_s is None else round(info.restart_due_in_s, 3),
        last_exit=info.last_exit,
        error=errors.get(path, ""),
    )
    if own is None:
        return node
    return msgspec.structs.replace(
        node,
        strategy=own.strategy,
        max_restarts=own.max_restarts,
        period_s=own.period_s,
        restarts_in_window=own.restarts_in_window,
        total_restarts=own.total_restarts,
        children=tuple(_node(f"{path}/{c.id}", c, stats, errors) for c in own.children),
    )
