"""The PTY output ring (bounds, wraparound, threads) and how its bytes become lines (ANSI, \\r)."""

from __future__ import annotations

import threading

import pytest

from actors.runtimes.ring import RingBuffer, screen_lines, stream_lines, strip_ansi


def test_ring_keeps_everything_until_full() -> None:
    ring = RingBuffer(10)
    ring.append(b"abc")
    ring.append(b"def")
    assert ring.tail() == b"abcdef"
    assert ring.snapshot() == (b"abcdef", True)
    assert len(ring) == 6 and ring.total == 6


def test_ring_keeps_only_the_newest_bytes_once_full() -> None:
    ring = RingBuffer(8)
    for chunk in (b"0123", b"4567", b"89", b"ABCDE"):
        ring.append(chunk)
    assert ring.tail() == b"6789ABCDE"[-8:]
    assert len(ring) == 8 and ring.total == 15
    assert ring.snapshot() == (b"789ABCDE", False)


@pytest.mark.parametrize("sizes", [(3, 3, 3, 3, 3), (7, 1, 7, 1), (1,) * 30, (5, 16, 2), (8, 8, 3)])
def test_ring_matches_a_plain_history_across_every_wraparound(sizes: tuple[int, ...]) -> None:
    ring, history = RingBuffer(8), b""
    for n, size in enumerate(sizes):
        chunk = bytes((n * 7 + i) % 251 for i in range(size))
        ring.append(chunk)
        history += chunk
        assert ring.tail() == history[-8:]
        for k in range(10):
            assert ring.tail(k) == (history[-8:][-k:] if k else b"")


def test_a_chunk_larger_than_the_ring_leaves_its_last_bytes() -> None:
    ring = RingBuffer(4)
    ring.append(b"xy")
    ring.append(b"abcdefgh")
    assert ring.tail() == b"efgh"
    ring.append(memoryview(b"ij"))
    assert ring.tail() == b"ghij"


def test_ring_memory_never_passes_its_capacity() -> None:
    ring = RingBuffer(1000)
    for _ in range(500):
        ring.append(b"z" * 333)
    assert len(ring._buf) == 1000


def test_ring_refuses_a_zero_capacity() -> None:
    with pytest.raises(ValueError, match="at least 1 byte"):
        RingBuffer(0)


def test_concurrent_writer_and_readers_always_see_a_consistent_suffix() -> None:
    """A writer appends numbered records while readers take snapshots: each is whole records, in order."""
    ring = RingBuffer(4096)
    record = 16
    done = threading.Event()
    errors: list[str] = []

    def write() -> None:
        for n in range(40_000):
            ring.append(f"{n:015d}\n".encode())
        done.set()

    def read() -> None:
        while not done.is_set():
            data = ring.tail()
            if len(data) % record:
                errors.append(f"torn snapshot of {len(data)} bytes")
                return
            numbers = [int(data[i : i + 15]) for i in range(0, len(data), record)]
            if numbers != list(range(numbers[0], numbers[0] + len(numbers))) if numbers else False:
                errors.append("records out of order")
                return

    threads = [threading.Thread(target=write), *(threading.Thread(target=read) for _ in range(3))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert ring.total == 40_000 * record
    assert ring.tail().endswith(b"000000000039999\n")


# -- bytes → text -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("\x1b[1;31mred\x1b[0m plain", "red plain"),  # SGR
        ("\x1b[2K\x1b[1Gline", "line"),  # erase line, cursor column
        ("\x1b[?25l\x1b[?2004hhidden cursor", "hidden cursor"),  # private modes
        ("\x1b]0;window title\x07after", "after"),  # OSC ended by BEL
        ("\x1b]8;;https://x.invalid\x1b\\link\x1b]8;;\x1b\\", "link"),  # OSC 8 hyperlink, ended by ST
        ("\x1b(Bascii\x1b)0", "ascii"),  # charset designations
        ("\x1b7saved\x1b8\x1b=", "saved"),  # two-byte escapes
        ("\x1bPq#0;2;0;0;0\x1b\\after dcs", "after dcs"),  # DCS string
        ("bell\x07 and\x08 back", "bell and back"),  # invisible C0 controls
        ("tab\tstays\r\n", "tab\tstays\r\n"),
        ("über 🐎 ok", "über 🐎 ok"),
    ],
)
def test_strip_ansi_leaves_only_the_text(raw: str, text: str) -> None:
    assert strip_ansi(raw) == text


def test_stream_lines_are_the_lines_as_written_with_spinner_redraws_collapsed() -> None:
    raw = b"\x1b[32mok\x1b[0m\r\nworking |\rworking /\rdone\r\n"
    assert stream_lines(raw, ansi=True) == ["\x1b[32mok\x1b[0m", "done"]
    assert stream_lines(raw) == ["ok", "done"]


def test_a_partial_first_line_is_dropped_when_cut_from_a_longer_history() -> None:
    # Cut inside a UTF-8 character and an escape sequence: neither leaks into the result.
    raw = "é\x1b[31mtail of an old line\r\nwhole\r\n".encode()[1:]
    assert screen_lines(raw, complete=False) == ["whole"]
    assert stream_lines(raw, complete=False) == ["whole"]
    assert screen_lines(b"no newline at all", complete=False) == []


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert screen_lines(b"ok \xff\xfe end\n") == ["ok \ufffd\ufffd end"]


# -- the screen model ---------------------------------------------------------------------------------------


def screen(text: str, cols: int = 40, rows: int = 10) -> list[str]:
    return screen_lines(text.encode(), cols=cols, rows=rows)


def test_screen_takes_crlf_line_ends_and_drops_trailing_blank_lines() -> None:
    assert screen("one\r\ntwo\r\n\r\n") == ["one", "two"]
    assert screen("one\r\n> ") == ["one", "> "]


def test_a_carriage_return_overwrites_the_line_like_a_terminal() -> None:
    raw = "working |\rworking /\rworking -\r\x1b[2Kdone\r\nnext\r\n"
    raw += "progress 10%\rprogress 50%\r\nLoading...\rDone"
    assert screen(raw) == ["done", "next", "progress 50%", "Doneing..."]


def test_a_dialog_erased_with_cursor_up_and_erase_down_is_gone() -> None:
    # What corral-sim (and ink-based CLIs) do once a menu is answered: up N rows, CR, erase to the end.
    raw = "banner\r\n\r\nDo you trust the files in this folder?\r\n❯ 1. Yes, proceed\r\n  2. No, exit\r\n"
    raw += "\x1b[3A\r\x1b[J> "
    assert screen(raw) == ["banner", "", "> "]


def test_erase_line_variants_and_character_edits() -> None:
    assert screen("abcdef\x1b[3D\x1b[K") == ["abc"]  # EL 0: to the end
    assert screen("abcdef\x1b[3D\x1b[1K") == ["    ef"]  # EL 1: to the cursor
    assert screen("abcdef\x1b[3D\x1b[2X") == ["abc  f"]  # ECH
    assert screen("abcdef\x1b[3D\x1b[2P") == ["abcf"]  # DCH
    assert screen("abcdef\x1b[3D\x1b[2@") == ["abc  def"]  # ICH
    assert screen("abc\bX\tY") == ["abX     Y"]


def test_long_lines_wrap_at_the_width_and_are_joined_again() -> None:
    assert screen("x" * 25 + "\r\nnext", cols=10) == ["x" * 25, "next"]
    # Cursor-up counts wrapped rows, as the terminal does: erasing the 3 rows of a wrapped line removes it.
    assert screen("keep\r\n" + "y" * 25 + "\r\n\x1b[3A\r\x1b[Jnew", cols=10) == ["keep", "new"]
    assert screen("x" * 10 + "\r\nnext", cols=10) == ["x" * 10, "next"]  # a full row is not wrapped by CR LF


def test_absolute_positioning_is_relative_to_the_visible_screen() -> None:
    history = "".join(f"line {n}\r\n" for n in range(20))
    raw = history + "\x1b[1;1H\x1b[2Ktop of screen\x1b[5;3HX"
    lines = screen(raw, rows=10)
    assert lines[:11] == [f"line {n}" for n in range(11)]  # scrolled off: untouched
    assert lines[11] == "top of screen" and lines[15] == "liXe 15"


def test_the_alternate_screen_shows_while_active_and_the_main_screen_comes_back() -> None:
    main = "shell$ vim\r\n"
    alt = "\x1b[?1049h\x1b[H\x1b[2Jfull-screen app\x1b[3;1Hstatus"
    assert screen(main + alt) == ["full-screen app", "", "status"]
    assert screen(main + alt + "\x1b[?1049lshell$ ") == ["shell$ vim", "shell$ "]


def test_clear_screen_save_restore_and_reset() -> None:
    assert screen("a\r\nb\x1b[2J\x1b[Hc") == ["c"]
    assert screen("ab\x1b7cd\x1b8X") == ["abXd"]
    assert screen("old\x1bcnew") == ["new"]
    assert screen("x\r\n\x1b]0;title\x07\x1b[1;31mred\x1b[m\x1b(B") == ["x", "red"]


def test_cursor_up_never_leaves_the_history_it_has() -> None:
    assert screen("\x1b[50Aup\r\n\x1b[10Bdown") == ["up", *[""] * 8, "down"]  # nor the screen's bottom


def test_insert_and_delete_lines() -> None:
    assert screen("a\r\nb\r\nc\x1b[2;1H\x1b[L+") == ["a", "+", "b", "c"]
    assert screen("a\r\nb\r\nc\x1b[2;1H\x1b[M") == ["a", "c"]
