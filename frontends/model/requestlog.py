"""The request log: one JSON object a line for every request the server answered, for tests to read.

    log = RequestLog(Path("model.jsonl"))       # or RequestLog(None): kept in memory only
    log.record({"path": "/v1/messages", "status": 200, "turn": 0, …})
    log.entries()                               # → the last MEMORY entries (also GET /_model/requests)

Each line is written and flushed at once, so a test that reads the file sees every request answered so
far; a line is never half-written by us (one write call per line, appended).
"""

from __future__ import annotations

import json
import sys
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
            try:
                self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self._file.flush()
            except OSError as exc:  # a full disk: say so once, keep serving, keep the log in memory
                sys.stderr.write(
                    f"corral-model: cannot write the log {self.path}: {exc.strerror}; "
                    "requests are no longer logged there (GET /_model/requests still has them)\n"
                )
                self._drop()

    def entries(self) -> list[dict[str, Any]]:
        return list(self._recent)

    def close(self) -> None:
        self._drop()

    def _drop(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError:
                pass  # what could not be flushed is lost from the file, never from memory
