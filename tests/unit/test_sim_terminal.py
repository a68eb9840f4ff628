"""The interactive mode's keyboard: bytes from a real pipe read as keys and pastes."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from frontends.sim.terminal import Key, KeyReader


@pytest.fixture
def pipe() -> Iterator[tuple[KeyReader, int]]:
    read, write = os.pipe()
    yield KeyReader(read), write
    for fd in (read, write):
        try:
            os.close(fd)
        except OSError:
            pass


def keys(reader: KeyReader, count: int) -> list[Key]:
    return [reader.read(timeout=1) for _ in range(count)]  # type: ignore[misc]


def test_text_enter_and_control_keys(pipe) -> None:
    reader, w = pipe
    os.write(w, b"hi\r\n\x7f\x15\x03\x04x\n")
    assert keys(reader, 7) == [
        Key("text", "hi"),
        Key("enter"),  # CR LF is one Enter
        Key("backspace"),
        Key("ctrl-u"),
        Key("ctrl-c"),
        Key("ctrl-d"),
        Key("text", "x"),
    ]
    assert reader.read(timeout=1) == Key("enter")


def test_a_paste_keeps_its_newlines_and_is_one_key(pipe) -> None:
    reader, w = pipe
    os.write(w, b'\x1b[200~line one\rline "two" $HOME `x`\r\n\xe2\x86\x92 done\x1b[201~\r')
    assert reader.read(timeout=1) == Key("paste", 'line one\nline "two" $HOME `x`\n→ done')
    assert reader.read(timeout=1) == Key("enter")


def test_a_paste_split_across_reads_waits_for_its_end(pipe) -> None:
    reader, w = pipe
    os.write(w, b"\x1b[200~" + b"a" * 5000)
    assert reader.read(timeout=0.2) is None
    os.write(w, b"b\x1b[201~")
    assert reader.read(timeout=1) == Key("paste", "a" * 5000 + "b")


def test_a_long_line_arrives_whole(pipe) -> None:
    reader, w = pipe
    line = ("x" * 9999 + "→").encode()
    os.write(w, line + b"\r")
    text = ""
    while (key := reader.read(timeout=1)) != Key("enter"):
        assert key is not None and key.kind == "text"
        text += key.text
    assert text.encode() == line


def test_utf8_split_across_reads_is_decoded_once_complete(pipe) -> None:
    reader, w = pipe
    arrow = "→".encode()
    os.write(w, arrow[:1])
    assert reader.read(timeout=0.1) is None
    os.write(w, arrow[1:])
    assert reader.read(timeout=1) == Key("text", "→")


def test_a_lone_escape_is_esc_and_arrows_are_arrows(pipe) -> None:
    reader, w = pipe
    os.write(w, b"\x1b")
    assert reader.read(timeout=1) == Key("esc")
    os.write(w, b"\x1b[A\x1b[B\x1bOA\x1b[3~")
    assert keys(reader, 4) == [Key("up"), Key("down"), Key("up"), Key("other")]


def test_end_of_input(pipe) -> None:
    reader, w = pipe
    os.write(w, b"a")
    os.close(w)
    assert reader.read(timeout=1) == Key("text", "a")
    assert reader.read(timeout=1) == Key("eof")
    assert reader.at_eof
