"""Sessions the simulated agent can resume: codex threads and claude sessions, in one small JSON file.

    store = SessionStore(Path(".corral-sim"))
    sid = store.create("claude", cwd="/src/app/.worktrees/x")   # a new uuid
    store.record_turn(sid, "fix the form")                      # turns: 1
    store.get(sid)  → {"kind": "claude", "cwd": …, "turns": 1, …};  store.get("nope") → None

The file is `<dir>/sessions.json`, rewritten whole through a temporary file and a rename, so a process killed
mid-write leaves the previous version. The directory gets a `.gitignore` of `*`: in a worktree it never shows
up as an untracked change. One agent per worktree: there is no lock between processes.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

__all__ = ["SessionStore"]


class SessionStore:
    """Sessions by id, read on every call (another process may have added one since)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / "sessions.json"

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        sessions = data.get("sessions") if isinstance(data, dict) else None
        return sessions if isinstance(sessions, dict) else {}

    def _save(self, sessions: dict[str, dict[str, Any]]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        ignore = self.directory / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n", encoding="utf-8")
        tmp = self.path.with_name(f".sessions.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"sessions": sessions}, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)

    def get(self, session_id: str) -> dict[str, Any] | None:
        """The session's record, None for an unknown id."""
        return self._load().get(session_id)

    def create(self, kind: str, session_id: str = "", **meta: Any) -> str:
        """Record a new session of `kind` ("codex", "claude"); returns its id (a new uuid unless given)."""
        sessions = self._load()
        session_id = session_id or str(uuid.uuid4())
        now = time.time()
        sessions[session_id] = {"kind": kind, "created": now, "updated": now, "turns": 0, **meta}
        self._save(sessions)
        return session_id

    def record_turn(self, session_id: str, prompt: str) -> int:
        """Count a turn of the session (creating the record if it went missing); returns the turn count."""
        sessions = self._load()
        record = sessions.setdefault(session_id, {"kind": "unknown", "created": time.time(), "turns": 0})
        record["turns"] = int(record.get("turns", 0)) + 1
        record["updated"] = time.time()
        record["last_prompt"] = prompt[:200]
        self._save(sessions)
        return int(record["turns"])

    def latest(self, kind: str) -> str | None:
        """The most recently used session of `kind`, for `--continue`."""
        found = [(rec.get("updated", 0), sid) for sid, rec in self._load().items() if rec.get("kind") == kind]
        return max(found)[1] if found else None
