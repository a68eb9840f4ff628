"""The supervision tree as the API shows it (`GET /v1/tree`): an OTP observer for agents.

    {"id": "root", "path": "root", "kind": "supervisor", "state": "running", …,
     "strategy": "one_for_one", "max_restarts": 3, "period_s": 5.0, "restarts_in_window": 0,
     "children": [{"id": "projects", …, "children": [{"id": "project:app", …, "children": [
         {"id": "fix-login", "kind": "supervisor", "restarts": 0, "backoff_due_s": null,
          "last_exit": "", "children": [{"id": "runtime", "kind": "worker", "generation": 2,
          "restarts": 1, "last_exit": "AgentExited: exit status 1", …}]}]}]}]}

Each node is one child as its supervisor sees it — its restart type, generation (how many times it was
started), restarts, failures in a row, the backoff before its next start (`backoff_due_s`, while
`restarting`) and why its last generation ended — and, for a supervisor, its own flags and intensity:
`restarts_in_window` of `max_restarts` within `period_s` (past that it gives up). `error` says why a
supervisor's own statistics are missing (it was too busy to answer in time): its children are then unknown.
"""

from __future__ import annotations

import msgspec

__all__ = ["SupervisionNode"]


class SupervisionNode(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    path: str
    kind: str  # supervisor | worker
    state: str  # running | restarting | stopped
    restart: str = "permanent"  # permanent | transient | temporary
    generation: int = 1
    restarts: int = 0
    failures_in_row: int = 0
    backoff_due_s: float | None = None
    last_exit: str = ""
    strategy: str = ""  # the rest: a supervisor's own statistics
    max_restarts: int = 0
    period_s: float = 0.0
    restarts_in_window: int = 0
    total_restarts: int = 0
    children: tuple[SupervisionNode, ...] = ()
    error: str = ""
