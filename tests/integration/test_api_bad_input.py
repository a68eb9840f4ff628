"""Bad input to the control API of a real daemon, over its real Unix socket: never a 500, always the error
shape `{"error", "detail"}`, never a connection held forever, never an ERROR in the log for a client's
mistake. Raw bytes (tests/integration/raw_http.py), so requests no polite client sends can be sent."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frontends.daemon.connection import HEAD_TIMEOUT_S
from frontends.daemon.lock import read_pid
from tests.integration import test_instances_api as api
from tests.integration.cli_kit import fails, ok
from tests.integration.raw_http import Answer, exchange, request
from tests.integration.test_instances_api import SIM, Env
from tests.unit.actor_kit import wait_until

env = api.env  # the fixture: a daemon on a private runtime dir and tmux socket, always stopped

HUGE = "99999999999999999999"  # beyond SQLite's (and msgspec's) 64-bit integers


@pytest.fixture
def daemon(env: Env, git_repo: Path) -> Env:
    """A running daemon with `git_repo` registered (as project "proj") and one task, "t"."""
    env.client.ensure_running()
    env.client.call("POST", "/v1/repos", json={"path": str(git_repo)})
    env.client.call("POST", f"/v1/repos/{git_repo.name}/tasks", json={"name": "t"})
    return env


def _is_error_shape(answer: Answer) -> None:
    assert answer.headers.get("content-type", "").startswith("application/json"), answer
    body = answer.json()
    assert set(body) >= {"error", "detail"}, body
    assert isinstance(body["error"], str) and body["error"], body
    assert isinstance(body["detail"], str), body


def _log_errors(env: Env) -> list[str]:
    text = env.client.paths.log_file.read_text(errors="replace")
    return [line for line in text.splitlines() if " ERROR " in line or "Traceback" in line]


LONG = "a" * 300
BAD_INPUT = [
    # (method, path, body, headers, status, what the error says)
    ("GET", "/v1/repos/%00/tasks", b"", (), 400, "NUL byte"),
    ("GET", "/v1/repos/proj/tasks/%00", b"", (), 400, "NUL byte"),
    ("GET", "/v1/repos/%00/instances", b"", (), 400, "NUL byte"),
    ("POST", "/v1/repos", json.dumps({"path": f"/tmp/{LONG}"}).encode(), (), 400, "File name too long"),
    ("POST", "/v1/repos", b'{"path": "/tmp/a\\u0000b"}', (), 400, "NUL byte"),
    (
        "POST",
        "/v1/repos",
        b"\x1f\x8b not gzip at all",
        (("Content-Encoding", "gzip"),),
        400,
        "Content-Encoding",
    ),
    ("POST", "/v1/repos", b"nonsense", (("Content-Encoding", "deflate"),), 400, "Content-Encoding"),
    (
        "POST",
        "/v1/repos/proj/signals",
        f'{{"task": "t", "signal_type": "implement_wave", "payload": {{"wave_number": {HUGE}}}}}'.encode(),
        (),
        400,
        "$.payload.wave_number is beyond the 64-bit integers",
    ),
    (
        "POST",
        "/v1/repos/proj/signals",
        b'{"task": "t", "signal_type": "implement_wave", "payload": "{\\"wave_number\\": '
        + HUGE.encode()
        + b'}"}',
        (),
        400,
        "wave_number",
    ),
    (
        "POST",
        "/v1/repos/proj/tasks/t/transition",
        f'{{"event": "cancel", "payload": {{"n": {HUGE}}}}}'.encode(),
        (),
        400,
        "$.payload.n",
    ),
    ("POST", "/v1/repos/proj/instances", f'{{"title": "w", "wave": {HUGE}}}'.encode(), (), 400, "$.wave"),
    ("POST", "/v1/repos/proj/instances", f'{{"title": "w", "wave": -{HUGE}}}'.encode(), (), 400, "$.wave"),
    ("GET", f"/v1/repos/proj/signals?limit={HUGE}", b"", (), 400, "invalid limit"),
    ("GET", f"/v1/repos/proj/audit?limit={HUGE}", b"", (), 400, "invalid limit"),
    ("GET", "/v1/nowhere", b"", (), 404, "no such route: GET /v1/nowhere"),
    ("DELETE", "/v1/ping", b"", (), 405, "does not take DELETE"),
    ("POST", "/v1/repos", b"x" * (2 * 1024 * 1024), (), 413, "too large"),
    ("POST", "/v1/repos", b'{"path": ', (), 400, "not valid JSON"),
]


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "says"), BAD_INPUT)
def test_bad_input_is_a_client_error_in_the_error_shape_that_names_what_was_wrong(
    daemon: Env,
    method: str,
    path: str,
    body: bytes,
    headers: tuple[tuple[str, str], ...],
    status: int,
    says: str,
) -> None:
    answer = request(daemon.client.socket, method, path, body, headers)
    assert answer.status == status, answer
    _is_error_shape(answer)
    assert says in answer.json()["error"] + " " + answer.json()["detail"], answer
    assert _log_errors(daemon) == []


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"GARBAGE\r\n\r\n", "malformed HTTP request"),
        (b"GET /v1/ping HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", "Content-Length"),
        (b"GET /v1/ping HTTP/9.9\r\n\r\n", "malformed HTTP request"),
        (b"GET " + b"/x" * 5000 + b" HTTP/1.1\r\n\r\n", "malformed HTTP request"),
        (b"GET /v1/ping HTTP/1.1\r\nBad Header\r\n\r\n", "malformed HTTP request"),
    ],
)
def test_a_request_aiohttp_cannot_parse_gets_the_error_shape_too(daemon: Env, raw: bytes, says: str) -> None:
    answer = exchange(daemon.client.socket, raw)
    assert answer.status == 400, answer
    _is_error_shape(answer)
    assert says in answer.json()["error"] + answer.json()["detail"]
    assert _log_errors(daemon) == []


# -- fuzzing: many malformed requests, each answered with a 4xx in the error shape, never a 500 -------------

_TEMPLATES = (
    "/v1/ping",
    "/v1/status",
    "/v1/repos",
    "/v1/repos/{p}/tasks",
    "/v1/repos/{p}/tasks/{x}",
    "/v1/repos/{p}/tasks/{x}/transition",
    "/v1/repos/{p}/signals",
    "/v1/repos/{p}/audit",
    "/v1/repos/{p}/instances",
    "/v1/repos/{p}/instances/{x}",
    "/v1/repos/{p}/instances/{x}/{x}",
    "/v1/repos/{p}/orphans/{x}/adopt",
    "/v1/orphans/{x}/kill",
    "/v1/{x}",
)
_segments = st.one_of(
    st.sampled_from(["proj", "t", "%00", "%7B1%7D", "x@%7B1%7D", "..", "%2F", "send", "capture", HUGE]),
    st.text(min_size=1, max_size=40).map(lambda t: quote(t, safe="")),
    st.just("a" * 300),
)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_field_names = st.sampled_from(
    ["path", "name", "title", "task", "signal_type", "event", "payload", "wave", "lines", "text", "keys",
     "program", "mode", "content", "enter", "ansi", "wave_number"]
)  # fmt: skip
_bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=200),
    _json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(_field_names, _json_values, max_size=5).map(lambda v: json.dumps(v).encode()),
)
_queries = st.dictionaries(
    st.sampled_from(["status", "task", "limit", "all", "topic", "level", "instance", "x"]),
    st.one_of(st.sampled_from([HUGE, "-1", "0", "%00", "", "1"]), st.text(max_size=10).map(quote)),
    max_size=3,
).map(lambda q: ("?" + "&".join(f"{k}={v}" for k, v in q.items())) if q else "")
_headers = st.lists(
    st.sampled_from(
        [("Content-Encoding", "gzip"), ("Content-Encoding", "br"), ("Content-Encoding", "zstd"),
         ("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked"), ("Expect", "100-continue")]
    ),
    max_size=2,
    unique=True,
)  # fmt: skip


@st.composite
def _requests(draw: st.DrawFn) -> tuple[str, str, bytes, tuple[tuple[str, str], ...]]:
    template = draw(st.sampled_from(_TEMPLATES))
    path = template.replace("{p}", draw(st.sampled_from(["proj", "nope"]) | _segments))
    while "{x}" in path:
        path = path.replace("{x}", draw(_segments), 1)
    method = draw(st.sampled_from(["GET", "POST", "POST", "PUT", "DELETE", "PATCH"]))
    return method, path + draw(_queries), draw(_bodies), tuple(draw(_headers))


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(req=_requests())
def test_fuzzed_requests_are_never_a_500_and_errors_always_have_the_shape(
    daemon: Env, req: tuple[str, str, bytes, tuple[tuple[str, str], ...]]
) -> None:
    method, path, body, headers = req
    if ("Transfer-Encoding", "chunked") in headers:  # a chunked body must be framed as chunks
        body = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n" if body else b"0\r\n\r\n"
        head = f"{method} {path} HTTP/1.1\r\nHost: corral\r\nConnection: close\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers)
        answer = exchange(daemon.client.socket, head.encode() + b"\r\n" + body)
    else:
        answer = request(daemon.client.socket, method, path, body, headers)
    assert answer.status not in (0, 500), (req, answer)
    if answer.status >= 400:
        _is_error_shape(answer)


def test_after_the_fuzzing_the_log_holds_no_error_and_the_daemon_answers(daemon: Env) -> None:
    for method, path, body, headers, _, _ in BAD_INPUT:
        request(daemon.client.socket, method, path, body, headers)
    assert daemon.client.ping() is not None
    assert _log_errors(daemon) == []


# -- connections that never finish, and clients that leave -------------------------------------------------


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_half_sent_requests_are_closed_after_the_head_timeout_and_their_fds_released(daemon: Env) -> None:
    pid = read_pid(daemon.client.paths.pid_file)
    assert pid is not None
    baseline = _fds(pid)
    halves = [
        b"GET /v1/pi",
        b"GET /v1/ping HTTP/1.1\r\nHost: x\r\n",
        b"POST /v1/repos HTTP/1.1\r\nContent-Le",
        b"",
    ]
    socks = []
    try:
        for n in range(1000):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(daemon.client.socket))
            if halves[n % 4]:
                sock.sendall(halves[n % 4])
            socks.append(sock)
        wait_until(lambda: _fds(pid) >= baseline + 900, 30, "the daemon to hold the half-sent connections")
        assert daemon.client.ping() is not None  # a whole request is answered meanwhile
        wait_until(
            lambda: _fds(pid) <= baseline + 5, HEAD_TIMEOUT_S * 6, "the half-sent connections to close"
        )
        for sock in socks[:50]:
            sock.settimeout(5)
            assert sock.recv(100) == b""  # closed by the daemon, without an answer
    finally:
        for sock in socks:
            sock.close()
    assert daemon.client.ping() is not None


def test_a_client_that_leaves_mid_request_is_not_logged_as_an_error(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORRAL_DEBUG", "1")  # the daemon logs what it made of each request
    env.client.ensure_running()
    env.client.call("POST", "/v1/repos", json={"path": str(git_repo)})
    partial = b'POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"pa'
    paths = (b"/v1/repos", b"/v1/repos/proj/instances", b"/v1/repos/proj/signals")
    for path in paths:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(env.client.socket))
        sock.sendall(partial % path)
        sock.close()

    def settled() -> bool:  # each request ended: its client went away, or its body never came
        log = env.client.paths.log_file.read_text(errors="replace")
        return all(f"POST {p.decode()}: " in log for p in paths)

    wait_until(settled, 30, "the daemon to settle the abandoned requests")
    assert env.client.ping() is not None
    assert _log_errors(env) == []


# -- titles -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("title", ["x@{1}", "{braces}", "50% done"])
def test_an_instance_whose_title_has_braces_or_url_characters_is_addressable(
    env: Env, git_repo: Path, title: str
) -> None:
    out = ok(git_repo, "instance", "start", title, "--program", SIM)
    assert out.startswith(f"started {title} (tmux, ")
    shown = json.loads(ok(git_repo, "instance", "show", title, "--json"))
    assert shown["title"] == title
    assert ok(git_repo, "instance", "kill", title).startswith(f"killed {title}: ")


@pytest.mark.parametrize("title", [".", "..", "a/b", "tab\there"])
def test_a_title_that_cannot_be_addressed_is_refused_up_front(env: Env, git_repo: Path, title: str) -> None:
    message = fails(git_repo, 2, "instance", "start", title, "--program", SIM)
    assert "instance title" in message
    assert ok(git_repo, "instance", "list").startswith("no instances")
