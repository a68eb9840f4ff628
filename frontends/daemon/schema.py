"""The JSON of the control API: request and response bodies as frozen msgspec Structs, one schema for the
daemon that encodes them and the clients that read them. Imports msgspec only, so the CLI can use it.

Records the store already defines (`protocols.records.Project`) and the supervision snapshot
(`SupervisorStats`) appear as they are; errors are always `ApiError`: `{"error": "what went wrong"}`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from protocols.records import Project

__all__ = ["API_VERSION", "ApiError", "DaemonStatus", "Pong", "RegisterRepo", "ReloadReport", "Stopping"]

API_VERSION = "v1"


class ApiError(msgspec.Struct, frozen=True):
    error: str


class Pong(msgspec.Struct, frozen=True):
    """`GET /v1/ping`: the daemon is up and serving."""

    pid: int
    version: str


class DaemonStatus(msgspec.Struct, frozen=True):
    """`GET /v1/status`. `supervision` is the root supervisor's statistics (`SupervisorStats` as JSON), or
    None when the root did not answer in time; `started_at` is a UTC ISO stamp."""

    pid: int
    version: str
    started_at: str
    uptime_s: float
    socket: str
    runtime_dir: str
    database: str
    repos: tuple[Project, ...]
    supervision: dict[str, Any] | None


class RegisterRepo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/repos`: an absolute path inside a git work tree; its main repository's root is registered."""

    path: str


class ReloadReport(msgspec.Struct, frozen=True):
    """`POST /v1/reload` (and SIGHUP): how many repositories' configs were re-read, and each problem found
    (`<file>: <key>: <reason>`). Problems are reported, not fatal: the daemon keeps its previous settings."""

    source: str
    repos: int
    problems: tuple[str, ...] = ()


class Stopping(msgspec.Struct, frozen=True):
    """`POST /v1/shutdown`: the orderly shutdown has begun; the socket disappears, then the process exits."""

    pid: int
    status: str = "stopping"
