"""The request log: one JSON object a line for every request the server answered, for tests to read.

    log = RequestLog(Path("model.jsonl"))       # or RequestLog(None): kept in memory only
    log.record({"path": "/v1/messages", "status": 200, "turn": 0, …})
    log.entries()                               # → the last MEMORY entries (also GET /_model/requests)

Each line is written and flushed at once, so a test that reads the file sees every request answered so
far; a line is never half-written by us (one write call per line, appended).
"""

from __future__ import annotations

import json
import time
from collections import deque
from pathlib import Path
from typing import Any, TextIO

__all__ = ["MEMORY", "RequestLog"]

MEMORY = 10_000
"""How many entries the server keeps for `GET /_model/requests` (the file keeps all)."""


class RequestLog:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: TextIO | None = path.open("a", encoding="utf-8") if path is not None else None
        self._recent: deque[dict[str, Any]] = deque(maxlen=MEMORY)
        self._count = 0

    def record(self, entry: dict[str, Any]) -> None:
        self._count += 1
        entry = {"n": self._count, "at": round(time.time(), 3), **entry}
        self._recent.append(entry)
        if self._file is not None:
            self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._file.flush()

    def entries(self) -> list[dict[str, Any]]:
        return list(self._recent)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
