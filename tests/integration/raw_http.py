"""Raw HTTP/1.1 over the daemon's Unix socket: bytes in, (status, headers, body) out. For requests no
well-behaved client would send (a NUL in the path, a garbage request line, a gzip body that is not gzip)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

__all__ = ["Answer", "exchange", "request"]


class Answer:
    """One HTTP answer: its status, its headers (lower-case names) and its body."""

    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
        self.headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
        }
        self.raw = raw

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Answer({self.raw[:600]!r})"


def exchange(socket_path: Path, data: bytes, timeout: float = 20.0) -> Answer:
    """Send `data` as it is, read until the daemon closes the connection."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(socket_path))
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return Answer(b"".join(chunks))


def request(
    socket_path: Path,
    method: str,
    path: str,
    body: bytes = b"",
    headers: tuple[tuple[str, str], ...] = (),
    timeout: float = 20.0,
) -> Answer:
    """One request with `Connection: close` and a Content-Length; the path is sent as given."""
    head = f"{method} {path} HTTP/1.1\r\nHost: corral\r\nConnection: close\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    return exchange(socket_path, head.encode("utf-8", "surrogateescape") + b"\r\n" + body, timeout)
