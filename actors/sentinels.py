"""Legacy filesystem sentinels: files agents drop in `.corral/signals/`, bridged into the signals table.

    recover_in_flight(store, project.id, repo)        # once, before the first scan (the claimer does it)
    for sentinel in scan(repo):
        bridge(store, project.id, sentinel)            # → BridgeResult: bridged | duplicate | failed | gone

Older agent prompts (kasmos') finish a step by creating a file instead of running `corral signal emit`. The
files are looked for in `<repo>/.corral/signals/` and in `<repo>/.worktrees/*/.corral/signals/`; hidden files
and every sub-directory (`processing/`, `failed/`) are skipped. A file's name says what it means, and its
trimmed text is the body where the signal takes one:

    file name                                  signal type               payload
    planner-finished-<task>                    planner_finished          {"body": text}, if it has text
    implement-finished-<task>                  implement_finished        {"body": text}, if it has text
    review-approved-<task>                     review_approved           {"body": the review}
    review-changes-<task>                      review_changes_requested  {"body": the feedback}
    implement-task-finished-w<W>-t<T>-<task>   implement_task_finished   {"wave_number": W, "task_number": T}
    implement-wave-<N>-<task>                  implement_wave            {"wave_number": N}

A trailing `.md` on the task is dropped (kasmos named tasks by their plan file). The signal's source is
`agent`. A file that cannot be bridged (a name not in the table, a bad task name, a payload the signal type
refuses, a body over 256 KiB, not a regular file) is moved to `failed/<name>` next to a `failed/<name>.reason`
saying why. A signal that is bridged but does not fit the task's state fails later, in the table, like any
other signal (`corral signal list --status failed`).

Exactly once, under kill -9 at any line. A bridge is:

    1. mark = the newest signal id of the task (0 if none)      read only
    2. rename signals/NAME → processing/NAME@mark               atomic: the file is in one place or the other
    3. read the body
    4. emit_signal(...)                                          one transaction: committed or not at all
    5. unlink processing/NAME@mark

Killed before 2, the file is still in signals/ and the next scan takes it. Killed anywhere after 2, the file
is in processing/, and `recover_in_flight` (run before the first scan) decides by looking at the table:
a signal for the task newer than `mark` that is this file's emission means step 4 committed, and the file is
only deleted; otherwise it is bridged from where it is. What makes "this file's emission" exact is the key
`<where>@<mark>` (e.g. `.worktrees/w1/.corral/signals/review-approved-x@41`) that the four lifecycle kinds
carry in their payload, `{"body": …, "sentinel": key}`: after any emission for the task the next mark is at
least its id, so no two emissions share a key. The two wave kinds have closed payload schemas with no room
for a key, so they are matched on type, payload and source among the task's signals newer than `mark`: an
agent emitting the very same wave signal for the same task inside that window would be taken for the file's
emission, and since both say the same thing ("task T of wave W finished", "start wave N") merging them
changes nothing. The alternatives were worse: unlink before emit loses the signal when killed in between
(at most once); emit then unlink with no check emits it twice (at least once); the file's inode and mtime
say nothing about whether the commit happened.

One bridger per repository at a time: recovery assumes that a file in processing/ has no bridger working on
it. The daemon's SignalClaimer is that bridger (its wake socket's lock keeps a second daemon out).
Files are renamed, never copied, so a sentinel is never in two places; a power cut (not a kill) may undo a
rename, as `synchronous=NORMAL` may undo the last commits: the same trade the store makes.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, NamedTuple

import msgspec

from actors.store import Store
from protocols.errors import CorralError, StoreError, UsageError
from protocols.fsm import Source
from protocols.records import Signal, task_name

__all__ = [
    "FAILED_DIR",
    "MAX_BODY_BYTES",
    "PROCESSING_DIR",
    "SIGNALS_DIR",
    "BridgeResult",
    "Sentinel",
    "bridge",
    "parse_name",
    "recover_in_flight",
    "scan",
    "signal_dirs",
]

SIGNALS_DIR = Path(".corral") / "signals"
"""Relative to a repository root and to each worktree."""
PROCESSING_DIR = "processing"
FAILED_DIR = "failed"
MAX_BODY_BYTES = 256 * 1024
_WORKTREES_DIR = ".worktrees"  # actors.git.worktrees.WORKTREES_DIR, not imported: that module pulls in git
_MARK = "@"  # processing/NAME@MARK: "@" is never part of a task name
_LOOKBACK = 10_000
_encode = msgspec.json.Encoder().encode


class _Kind(NamedTuple):
    """One row of the table: a file name pattern, its signal type, and where its payload comes from."""

    pattern: re.Pattern[str]
    signal_type: str
    takes_body: bool  # the payload is {"body": the file's text} (lifecycle kinds)
    fields: tuple[tuple[str, str], ...] = ()  # payload key ← name group (wave kinds), as integers


_KINDS: tuple[_Kind, ...] = (
    _Kind(re.compile(r"planner-finished-(?P<task>.+)"), "planner_finished", True),
    _Kind(re.compile(r"implement-finished-(?P<task>.+)"), "implement_finished", True),
    _Kind(re.compile(r"review-approved-(?P<task>.+)"), "review_approved", True),
    _Kind(re.compile(r"review-changes-(?P<task>.+)"), "review_changes_requested", True),
    _Kind(
        re.compile(r"implement-task-finished-w(?P<wave>\d+)-t(?P<number>\d+)-(?P<task>.+)"),
        "implement_task_finished",
        False,
        (("wave_number", "wave"), ("task_number", "number")),
    ),
    _Kind(
        re.compile(r"implement-wave-(?P<wave>\d+)-(?P<task>.+)"),
        "implement_wave",
        False,
        (("wave_number", "wave"),),
    ),
)
_FORMS = (
    "planner-finished-<task>, implement-finished-<task>, review-approved-<task>, review-changes-<task>, "
    "implement-task-finished-w<W>-t<T>-<task>, implement-wave-<N>-<task>"
)


class Sentinel(msgspec.Struct, frozen=True):
    """A sentinel file and what its name means; `problem` says why it cannot be bridged ("" if it can)."""

    path: Path  # where the file is now
    where: str  # the file as people find it: relative to the repository root
    name: str  # the name it was written with (without any processing mark)
    signal_type: str = ""
    task: str = ""
    takes_body: bool = False
    payload: tuple[tuple[str, int], ...] = ()  # wave kinds: taken from the name
    problem: str = ""


class BridgeResult(msgspec.Struct, frozen=True):
    """What became of one sentinel.

    bridged: emitted as `signal` and deleted; duplicate: found already emitted (as `signal`) by a bridge
    that was killed before it could delete the file, now deleted; failed: moved to `failed_path` with a
    `.reason` file; gone: someone else took or removed the file first.
    """

    sentinel: Sentinel
    status: Literal["bridged", "duplicate", "failed", "gone"]
    signal: Signal | None = None
    reason: str = ""
    failed_path: Path | None = None


# -- reading names and directories -------------------------------------------------------------------------


def parse_name(name: str) -> tuple[str, str, bool, tuple[tuple[str, int], ...]]:
    """(signal type, task, takes body, payload from the name) for a sentinel file name; UsageError if the
    name is not in the table or its task is not a valid task name."""
    for kind in _KINDS:
        match = kind.pattern.fullmatch(name)
        if match is None:
            continue
        task = task_name(match["task"])  # UsageError naming the rule
        payload = tuple((key, int(match[group])) for key, group in kind.fields)
        return kind.signal_type, task, kind.takes_body, payload
    raise UsageError(f'unknown sentinel "{name}": expected one of {_FORMS}')


def signal_dirs(repo_root: Path) -> list[Path]:
    """The sentinel directories that exist: the repository's, then each worktree's (hidden ones skipped)."""
    root = Path(repo_root)
    found = [root / SIGNALS_DIR] if (root / SIGNALS_DIR).is_dir() else []
    for entry in _entries(root / _WORKTREES_DIR):
        if entry.is_dir(follow_symlinks=False) and (Path(entry.path) / SIGNALS_DIR).is_dir():
            found.append(Path(entry.path) / SIGNALS_DIR)
    return found


def scan(repo_root: Path, *, settle_s: float = 0.0, now: float | None = None) -> list[Sentinel]:
    """The sentinels waiting in the repository and its worktrees, oldest first.

    A file modified less than `settle_s` ago is left for a later scan: an agent may still be writing its
    body. File ages are wall-clock (`now`, default `time.time()`), as file modification times are.
    """
    root = Path(repo_root)
    wall = time.time() if now is None else now
    found: list[tuple[int, str, Sentinel]] = []
    for directory in signal_dirs(root):
        for entry in _entries(directory):
            if entry.is_dir(follow_symlinks=False):
                continue  # processing/, failed/, anything else
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if settle_s > 0 and info.st_mtime > wall - settle_s:
                continue
            sentinel = _sentinel(Path(entry.path), root, entry.name)
            if not stat.S_ISREG(info.st_mode):
                sentinel = msgspec.structs.replace(sentinel, problem="not a regular file")
            found.append((info.st_mtime_ns, entry.path, sentinel))
    found.sort(key=lambda item: (item[0], item[1]))
    return [sentinel for _, _, sentinel in found]


def _entries(directory: Path) -> Iterator[os.DirEntry[str]]:
    """The non-hidden entries of `directory`, by name; none if it does not exist (or cannot be read)."""
    try:
        with os.scandir(directory) as it:
            entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return iter(())
    return iter(entries)


def _sentinel(path: Path, root: Path, name: str, signals_dir: Path | None = None) -> Sentinel:
    """`path` is where the file is now; `signals_dir` the directory it was written to (default its own)."""
    where = f"{_relative(signals_dir or path.parent, root)}/{name}"
    try:
        signal_type, task, takes_body, payload = parse_name(name)
    except UsageError as exc:
        return Sentinel(path, where, name, problem=str(exc))
    return Sentinel(path, where, name, signal_type, task, takes_body, payload)


def _relative(directory: Path, root: Path) -> str:
    """`directory` relative to `root`, else as it is."""
    try:
        return directory.relative_to(root).as_posix()
    except ValueError:
        return directory.as_posix()


# -- bridging ----------------------------------------------------------------------------------------------


def bridge(store: Store, project_id: int, sentinel: Sentinel) -> BridgeResult:
    """Move the sentinel into processing/, emit its signal (source agent), delete it. See the module
    docstring for why this is exactly once.

    Never raises for a bad sentinel (it goes to failed/ with the reason). StoreError propagates (the
    database is locked or full: nothing was emitted, and the file waits in processing/ for
    `recover_in_flight`); so do OSErrors on the sentinel directory itself (a permission problem).
    """
    if sentinel.problem:
        return _fail(sentinel, sentinel.path, sentinel.problem)
    mark = _watermark(store, project_id, sentinel.task)
    processing = sentinel.path.parent / PROCESSING_DIR
    processing.mkdir(exist_ok=True)
    inflight = processing / f"{sentinel.name}{_MARK}{mark}"
    try:
        os.rename(sentinel.path, inflight)
    except FileNotFoundError:
        return BridgeResult(sentinel, "gone", reason="the file was gone before it could be moved")
    return _emit(store, project_id, msgspec.structs.replace(sentinel, path=inflight), mark)


def recover_in_flight(store: Store, project_id: int, repo_root: Path) -> list[BridgeResult]:
    """Finish the bridges a killed process left in processing/: delete those whose signal was committed,
    bridge the others from where they are. Run it before the first scan, with no other bridger running.

    A file in processing/ without a mark (moved there by kasmos or by hand) has no record to check: it is
    bridged (at least once, which is all its writer could have had).
    """
    root = Path(repo_root)
    results: list[BridgeResult] = []
    for directory in signal_dirs(root):
        for entry in _entries(directory / PROCESSING_DIR):
            if not entry.is_file(follow_symlinks=False):
                continue
            name, sep, mark_text = entry.name.rpartition(_MARK)
            marked = bool(sep) and mark_text.isdigit()
            if not marked:
                name = entry.name
            path = Path(entry.path)
            sentinel = _sentinel(path, root, name, directory)
            if sentinel.problem:
                results.append(_fail(sentinel, path, sentinel.problem))
                continue
            if not marked:
                mark = _watermark(store, project_id, sentinel.task)
                marked_path = path.with_name(f"{name}{_MARK}{mark}")
                os.rename(path, marked_path)
                sentinel = msgspec.structs.replace(sentinel, path=marked_path)
                results.append(_emit(store, project_id, sentinel, mark))
                continue
            mark = int(mark_text)
            signal = _find_emission(store, project_id, sentinel, mark)
            if signal is not None:
                _unlink(path)
                results.append(BridgeResult(sentinel, "duplicate", signal))
            else:
                results.append(_emit(store, project_id, sentinel, mark))
    return results


def _emit(store: Store, project_id: int, sentinel: Sentinel, mark: int) -> BridgeResult:
    """Steps 3 to 5 for a file already in processing/ under `mark`."""
    key = _key(sentinel, mark)
    try:
        payload = _payload(sentinel, key)
        signal = store.emit_signal(
            project_id, sentinel.task, sentinel.signal_type, payload, source=Source.AGENT
        )
    except StoreError:
        raise
    except CorralError as exc:
        return _fail(sentinel, sentinel.path, str(exc))
    except OSError as exc:
        return _fail(sentinel, sentinel.path, f"cannot read it: {exc.strerror or exc}")
    _unlink(sentinel.path)
    return BridgeResult(sentinel, "bridged", signal)


def _payload(sentinel: Sentinel, key: str) -> str:
    if not sentinel.takes_body:
        return _encode(dict(sentinel.payload)).decode()
    with open(sentinel.path, "rb") as f:
        raw = f.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise UsageError(
            f"the file is larger than {MAX_BODY_BYTES // 1024} KiB: run `corral signal emit` with a "
            "shorter body instead"
        )
    body = raw.decode("utf-8", errors="replace").strip()
    return _encode({"body": body, "sentinel": key} if body else {"sentinel": key}).decode()


def _key(sentinel: Sentinel, mark: int) -> str:
    """`<where the file was written>@<mark>`: unique per emission (see the module docstring)."""
    return f"{sentinel.where}{_MARK}{mark}"


def _watermark(store: Store, project_id: int, task: str) -> int:
    newest = store.list_signals(project_id, task=task, limit=1)
    return newest[0].id if newest else 0


def _find_emission(store: Store, project_id: int, sentinel: Sentinel, mark: int) -> Signal | None:
    """The signal a bridge of this file under `mark` committed, if it did."""
    key = _key(sentinel, mark)
    expected = dict(sentinel.payload)
    for signal in store.list_signals(project_id, task=sentinel.task, limit=_LOOKBACK):  # newest first
        if signal.id <= mark:
            break
        if signal.signal_type != sentinel.signal_type or signal.source != Source.AGENT:
            continue
        try:
            payload = msgspec.json.decode(signal.payload) if signal.payload else {}
        except msgspec.DecodeError:
            continue
        if not isinstance(payload, dict):
            continue
        if sentinel.takes_body and payload.get("sentinel") == key:
            return signal
        if not sentinel.takes_body and payload == expected:
            return signal
    return None


# -- failing -----------------------------------------------------------------------------------------------


def _fail(sentinel: Sentinel, path: Path, reason: str) -> BridgeResult:
    """Move `path` to failed/<name> (or <name>.1, .2… if taken) and write the reason next to it."""
    signals_dir = path.parent.parent if path.parent.name == PROCESSING_DIR else path.parent
    failed = signals_dir / FAILED_DIR
    failed.mkdir(exist_ok=True)
    target = failed / sentinel.name
    n = 0
    while target.exists() or target.is_symlink():
        n += 1
        target = failed / f"{sentinel.name}.{n}"
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return BridgeResult(sentinel, "gone", reason="the file was gone before it could be moved")
    target.with_name(target.name + ".reason").write_text(reason.rstrip() + "\n")
    return BridgeResult(sentinel, "failed", reason=reason, failed_path=target)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
