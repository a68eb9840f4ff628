"""A real `corral-model` process for a test, and a small HTTP client that sees what an agent CLI sees.

    with ModelServer(["--scenario", str(path)], log=tmp_path / "model.jsonl") as model:
        status, headers, events = model.post_stream("/v1/messages", body)   # events: [(name, data), …]
        model.entries()                                                    # the request log, from the file

The process is started with the URL read from its first stdout line (with a deadline, never a sleep) and
stopped with SIGTERM at the end (SIGKILL if it does not go); its stderr is kept for failure messages.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

__all__ = ["MODEL", "ModelServer", "parse_sse"]

MODEL = str(Path(sys.executable).with_name("corral-model"))
START_TIMEOUT_S = 30.0


def parse_sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The events of an SSE body (complete events only: a cut stream's tail is dropped)."""
    events = []
    for block in raw.decode(errors="replace").split("\n\n")[:-1]:
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields and "data" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


class ModelServer:
    def __init__(self, args: list[str], log: Path | None = None) -> None:
        self.args = [*args, *(["--log", str(log)] if log is not None else [])]
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.stderr = ""
        """What the server said on stderr, once it is stopped."""

    def __enter__(self) -> ModelServer:
        self.proc = subprocess.Popen(
            [MODEL, "--port", "0", *self.args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            if not ready:
                self.stop()
                raise AssertionError(f"corral-model printed no URL in {START_TIMEOUT_S:.0f} s")
            chunk = os.read(self.proc.stdout.fileno(), 1)
            if not chunk:
                err = self.stop()
                raise AssertionError(f"corral-model exited before printing its URL: {err}")
            line += chunk
        self.url = line.decode().strip()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 0

    def stop(self) -> str:
        """SIGTERM, wait; SIGKILL if it lingers. Returns its stderr."""
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc.stderr is not None and not self.proc.stderr.closed:
            self.stderr = self.proc.stderr.read().decode()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        return self.stderr

    def connection(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = self.connection()
        try:
            data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
            conn.request(
                method, path, body=data, headers={"content-type": "application/json", "x-api-key": "k"}
            )
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def post_json(self, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
        status, headers, data = self.request("POST", path, body)
        return status, headers, json.loads(data)

    def post_stream(
        self, path: str, body: Any
    ) -> tuple[int, dict[str, str], list[tuple[str, dict[str, Any]]]]:
        status, headers, data = self.request("POST", path, body)
        return status, headers, parse_sse(data)

    def entries(self) -> list[dict[str, Any]]:
        """The request log, read from its file."""
        assert self.log is not None
        return [json.loads(line) for line in self.log.read_text().splitlines()]
