"""An agent's status, decided from evidence, and the reason it was chosen.

    state = TrackerState.start(now)
    decision = decide(state, Evidence(screen=captured), harness, now, auto_yes=config.auto_yes)
    state = decision.state                         # keep it for the next call
    if decision.change: publish(decision.change)   # status, previous status, reason, when
    if decision.keys: send_keys(decision.keys)     # a start screen dismissed, a prompt auto-answered
    if decision.wake_at: call_later(decision.wake_at - now, tick)   # then decide(state, Evidence(), …)

Statuses: loading (started, no prompt yet), running, ready (idle at its prompt), waiting (a permission prompt
or a question needs a person), exited, failed (the supervisor gave up), paused. Everything here is pure: no
thread, no process, no clock — `now` is passed in (monotonic seconds), so every rule is a unit test.

Why the rules look like this. Screen-based status goes wrong two opposite ways in every peer: claude-squad
hashes the whole pane, so a spinner, a clock or a blinking cursor makes an idle agent "running" and the
status flaps (kasmos added a 15-tick debounce); detectors that latch or wait for a hook freeze on a stale
state when the signal never comes (agent-orchestrator #3738, #4142). So:

1. Only meaningful change is work. The screen is hashed after removing the working indicator's lines,
   blanking spinner glyphs, clocks, durations and token counts (plus the harness's `volatile_patterns`), and
   cutting everything from the ready prompt down: the line a person types in, footers, status bars. A clock
   ticking under the prompt changes nothing.
2. A working indicator counts when nothing else is current (no prompt visible), or when it animates: a
   spinner above a persistent input box (claude, codex) changes glyph or timer from one capture to the
   next; a line a finished agent left in scroll-back does not. One that has not moved for
   `quiet_unknown_s`, with nothing else moving, is a hung agent: waiting for a person.
3. Ready needs the prompt visible, nothing asking, and the screen still for `ready_settle_s`. Once ready it
   latches: a repaint with the prompt still there cannot make it running. Only the prompt going away, an
   animating working indicator, or corral sending input releases it (cli-agent-orchestrator latches too).
4. Start screens, permission prompts and questions count only below the last ready prompt: one answered
   and left in scroll-back above the prompt is history.
5. A screen nothing recognises is running while it changes, loading until `start_timeout_s` if the agent
   never showed its prompt, and after `quiet_unknown_s` of stillness waiting — never a guessed ready, since
   corral sends queued messages to ready agents and text typed into an unknown dialog is worse than late.
6. The process wins over the screen: a dead agent whose last screen shows a prompt is exited, not ready.

Ready becomes true by time passing, not by new output, so `decide` returns `wake_at`: when to decide again
if nothing else happens. The settle needs no polling timer, and an idle agent costs nothing.

In sdk mode the screen plays no part: turns come from the transport's events (protocols/sdk.py), which are
exact, so they need no debounce. What they cannot say is that nothing happens: a turn with no event for the
harness's `sdk_quiet_s` is waiting ("it may be hung"), as a still tmux screen is after `quiet_unknown_s`, and
an error the agent retries by itself ("Reconnecting... 2/5") is the running turn's reason until the turn moves
on — or, when the agent says it cannot go on ("waiting for network") or has retried for `sdk_quiet_s`, the
agent is waiting for a person. A turn is never shown running for ever.

An agent that ended says why in its last lines: `last_words` reads them off its last screen, and the exit
reason carries them ("exit status 1: Unable to connect to Anthropic services / …").
"""

from __future__ import annotations

import enum
import functools
import hashlib
import re
import signal
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import msgspec

from protocols.harness import ExecutionMode, Harness, ScreenPrompt
from protocols.sdk import (
    SOME_ERROR,
    AgentText,
    Approval,
    SdkError,
    SessionStarted,
    TurnCompleted,
    TurnStarted,
)

__all__ = [
    "ANSWER_HOLD_S",
    "MAX_ANSWER_TRIES",
    "AgentStatus",
    "Decision",
    "Evidence",
    "LivePrompt",
    "PermissionPolicy",
    "ScreenReading",
    "StatusChange",
    "TrackerState",
    "auto_answer",
    "decide",
    "last_words",
    "read_screen",
    "strip_ansi",
]

ANSWER_HOLD_S = 2.0
"""After sending keys to a prompt, wait this long before sending them again if it is still there."""
MAX_ANSWER_TRIES = 3
"""Keys sent to one prompt at most this many times; then it is left to a person (the keys are wrong)."""


class AgentStatus(enum.StrEnum):
    LOADING = "loading"
    RUNNING = "running"
    READY = "ready"
    WAITING = "waiting"
    EXITED = "exited"
    FAILED = "failed"
    PAUSED = "paused"


_S = AgentStatus


class PermissionPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which permission prompts auto-yes may answer.

    A prompt whose text matches one of the `allow` regexes is accepted; any other is left to a person
    (`ask`, the default), accepted (`allow_all`) or refused (`deny_all`). Without auto-yes nothing is.
    """

    mode: Literal["ask", "allow_all", "deny_all"] = "ask"
    allow: tuple[str, ...] = ()

    def verdict(self, text: str) -> Literal["allow", "deny", "ask"]:
        if self.mode == "allow_all" or any(re.search(p, text) for p in self.allow):
            return "allow"
        return "deny" if self.mode == "deny_all" else "ask"


class LivePrompt(msgspec.Struct, frozen=True, kw_only=True):
    """A start screen, permission prompt or question on screen now; `text` is the line that matched."""

    kind: Literal["start", "permission", "question"]
    label: str
    text: str
    yes: tuple[str, ...]
    no: tuple[str, ...]


class ScreenReading(msgspec.Struct, frozen=True, kw_only=True):
    """What one screen shows, as far as a harness's patterns can tell."""

    ready: bool = False
    prompt: LivePrompt | None = None
    working: str = ""
    """The line showing the working indicator, as shown ("" = none): compared between captures."""
    working_label: str = ""
    """What matched in it ("esc to interrupt"), for reasons."""
    content_hash: str = ""
    """The meaningful content (rule 1 of the module docstring)."""


class Evidence(msgspec.Struct, frozen=True, kw_only=True):
    """What an Instance knows about its agent now. Every field is optional: `Evidence()` is a clock tick."""

    mode: ExecutionMode = "tmux"
    alive: bool = True
    exit_status: int | None = None
    exit_signal: int | None = None
    restarts: int = 0
    """Restarts of the agent so far; a higher count than last time means a new process."""
    gave_up: bool = False
    """The supervisor will not restart it again (intensity exceeded, or a temporary child)."""
    killed: bool = False
    """A person (or corral, stopping a task's agents) killed it on purpose."""
    give_up_reason: str = ""
    said: str = ""
    """What an agent that ended wrote last (`last_words` of its last screen, or an sdk agent's last error):
    its own account of why it ended, added to the exit reason."""
    paused: bool = False
    screen: str | None = None
    """The last lines of the screen (ANSI codes are stripped here too); None = not captured since."""
    last_output_at: float | None = None
    """Monotonic time of the last output; used only when no screen is ever captured."""
    quiet_since: float | None = None
    """The screen has not changed since this monotonic time (an adopted agent: its pane's last output), so
    the first reading of it counts its stillness from then rather than from now."""
    input_sent_at: float | None = None
    """Monotonic time corral last sent text to the agent: releases the ready latch."""
    sdk_events: tuple[Any, ...] = ()
    """protocols.sdk events since the last decision, oldest first (sdk mode)."""


class StatusChange(msgspec.Struct, frozen=True, kw_only=True):
    status: AgentStatus
    previous: AgentStatus
    reason: str
    at: float


class TrackerState(msgspec.Struct, frozen=True, kw_only=True):
    """What `decide` remembers between calls; opaque to callers except `status` and `reason`."""

    status: AgentStatus = _S.LOADING
    reason: str = "starting"
    since: float = 0.0
    started_at: float = 0.0
    restarts: int = 0
    seen_prompt: bool = False
    """The agent showed its prompt, worked or asked something since it started: no longer loading."""
    reading: ScreenReading | None = None
    busy_at: float = 0.0
    """When the last evidence of work arrived: a meaningful change, an animating indicator, input sent."""
    busy_why: str = "starting"
    input_sent_at: float | None = None
    answered: str = ""
    answer_tries: int = 0
    answer_at: float | None = None
    sdk_session: bool = False
    sdk_turn: bool = False
    sdk_approval: str = ""
    sdk_last_turn: str = ""
    sdk_trouble: str = ""
    """The running turn's trouble, as its reason says it ("the model API is unreachable: Reconnecting...")."""
    sdk_trouble_at: float | None = None
    """Since when the turn has had trouble and no progress."""
    sdk_stalled: bool = False
    """The agent said it cannot go on by itself ("waiting for network")."""

    @classmethod
    def start(cls, now: float, restarts: int = 0) -> TrackerState:
        """The state of an agent started at `now`."""
        return cls(since=now, started_at=now, busy_at=now, restarts=restarts)


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    state: TrackerState
    change: StatusChange | None = None
    keys: tuple[str, ...] = ()
    """Keys to send now (tmux key names or literal text); `keys_reason` says why, for the audit log."""
    keys_reason: str = ""
    wake_at: float | None = None
    """Decide again at this monotonic time if no evidence arrives before; None = no need."""


# --- reading a screen --------------------------------------------------------------------------------------

_ANSI = re.compile(
    r"""
      \x1b\[[0-?]*[ -/]*[@-~]              # CSI: colours, cursor moves, erase
    | \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?   # OSC: window titles, hyperlinks
    | \x1b[PX^_][^\x1b]*(?:\x1b\\)?        # DCS, SOS, PM, APC strings
    | \x1b[()*+][0-9A-Za-z]                # character set selection
    | \x1b[@-Z\\-_=>78]                    # the other two-byte escapes
    | \x1b                                 # a lone ESC
    | \x9b[0-?]*[ -/]*[@-~]                # 8-bit CSI
    """,
    re.VERBOSE,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_ansi(text: str) -> str:
    """`text` without terminal escape sequences and control characters (newlines, tabs and CR are kept)."""
    return _CONTROL.sub("", _ANSI.sub("", text))


LAST_WORDS_LINES = 3
LAST_WORDS_CHARS = 300
# Lines that are not the agent talking: nothing but frame and prompt glyphs (a box's border, an empty input
# line), the person's input echoed at the prompt, a working indicator left behind.
_NOT_SAID = re.compile(
    r"^[\s─━│┃║═╭╮╰╯┌┐└┘├┤┬┴┼╔╗╚╝>❯›$#%·•*.…_=~-]*$"
    r"|^[>❯›]\s"
    r"|(?:esc|ctrl\+c) to (?:interrupt|cancel)"
    r"|^[✢✳✶✻✽✺◐◓◑◒⠁-⣿]\s*\S.*…"
)


def last_words(screen: str, lines: int = LAST_WORDS_LINES, limit: int = LAST_WORDS_CHARS) -> str:
    """What an agent said last: the last `lines` lines of its screen that say something (not a frame, not
    input echoed at its prompt, not a spinner), ANSI stripped, joined by " / ", at most `limit` characters
    (cut at the front: the last words matter most).

    "Unable to connect to Anthropic services\nFailed to connect to api.anthropic.com: ENOTFOUND\n…" →
    "Unable to connect to Anthropic services / Failed to connect to api.anthropic.com: ENOTFOUND / …".
    """
    said: list[str] = []
    for line in reversed(_lines(screen)):
        text = " ".join(_quoted(line).split())
        if text and not _NOT_SAID.search(text):
            said.append(text)
            if len(said) >= lines:
                break
    words = " / ".join(reversed(said))
    return words if len(words) <= limit else "…" + words[len(words) - limit + 1 :]


# Text that changes by itself: clocks, elapsed times, token counters, spinner glyphs.
_VOLATILE = (
    r"\b\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AaPp][Mm])?\b",
    r"\b\d+(?:\.\d+)?\s?(?:ms|s|sec|secs|m|min|h)\b",
    r"\b\d+(?:\.\d+)?[kKmM]?\s+tokens\b",
    r"[✢✳✶✻✽✺◐◓◑◒⠁-⣿]",
)
_KIND_TEXT: Mapping[str, str] = MappingProxyType(
    {"start": "start screen", "permission": "permission prompt", "question": "question"}
)


@functools.lru_cache(maxsize=256)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


def _lines(screen: str) -> list[str]:
    """The screen's lines as a terminal shows them: no escapes, an overwritten line (CR) as its last
    version, no trailing spaces, no blank lines at the bottom."""
    text = strip_ansi(screen).replace("\r\n", "\n").replace("\xa0", " ")
    lines = []
    for raw in text.split("\n"):
        parts = [p for p in raw.split("\r") if p]
        lines.append(parts[-1].rstrip() if parts else "")
    while lines and not lines[-1]:
        lines.pop()
    return lines


def read_screen(harness: Harness, screen: str) -> ScreenReading:
    """What `screen` shows for `harness`: its ready prompt, a live prompt, the working indicator.

    Never raises for any text (the harness's patterns must compile; config.toml checks a custom one's).
    """
    lines = _lines(screen)
    scan_from = max(0, len(lines) - harness.scan_lines)
    working_at, working, label = _working(harness, lines, scan_from)
    ready_at = _ready_index(harness, lines, scan_from)
    if ready_at is not None and working_at is not None and working_at > ready_at:
        ready_at = None  # a prompt above a working indicator was submitted: it is the agent's input, echoed
    live = lines[ready_at + 1 :] if ready_at is not None else lines[scan_from:]
    return ScreenReading(
        ready=ready_at is not None,
        prompt=_live_prompt(harness, live),
        working=working,
        working_label=label,
        content_hash=_digest(harness, lines[:ready_at] if ready_at is not None else lines),
    )


def _ready_index(harness: Harness, lines: list[str], scan_from: int) -> int | None:
    """The index of the bottom-most ready prompt among the last `ready_lines` non-empty lines."""
    patterns = _compiled(harness.ready_patterns)
    seen = 0
    for i in range(len(lines) - 1, scan_from - 1, -1):
        if not lines[i].strip():
            continue
        if any(p.search(lines[i]) for p in patterns):
            return i
        seen += 1
        if seen >= harness.ready_lines:
            break
    return None


def _live_prompt(harness: Harness, lines: Sequence[str]) -> LivePrompt | None:
    kinds: tuple[tuple[Literal["start", "permission", "question"], tuple[ScreenPrompt, ...]], ...] = (
        ("start", harness.start_screens),
        ("permission", harness.permission_patterns),
        ("question", harness.question_patterns),
    )
    for kind, prompts in kinds:
        compiled = _compiled(tuple(p.pattern for p in prompts))
        for line in lines:
            for prompt, pattern in zip(prompts, compiled, strict=True):
                if pattern.search(line):
                    return LivePrompt(
                        kind=kind, label=prompt.label, text=_quoted(line), yes=prompt.yes, no=prompt.no
                    )
    return None


def _quoted(line: str) -> str:
    """A line as a reason quotes it: without the box a dialog is drawn in."""
    return line.strip().strip("│┃║").strip()


def _working(harness: Harness, lines: list[str], scan_from: int) -> tuple[int | None, str, str]:
    """The bottom-most line showing the working indicator: its index, the line, and what matched in it."""
    patterns = _compiled(harness.working_patterns)
    for i in range(len(lines) - 1, scan_from - 1, -1):
        for pattern in patterns:
            if m := pattern.search(lines[i]):
                return i, _quoted(lines[i]), m.group(0).strip()
    return None, "", ""


def _digest(harness: Harness, lines: Sequence[str]) -> str:
    working = _compiled(harness.working_patterns)
    volatile = _compiled((*_VOLATILE, *harness.volatile_patterns))
    kept = []
    for line in lines:
        if any(p.search(line) for p in working):
            continue
        for p in volatile:
            line = p.sub("", line)
        if line := line.strip():
            kept.append(line)
    return hashlib.blake2b("\n".join(kept).encode(), digest_size=8).hexdigest()


# --- answering ---------------------------------------------------------------------------------------------

_POLICY_TEXT: Mapping[str, str] = MappingProxyType(
    {
        "allow": "auto-yes: permission allowed by the policy",
        "deny": "auto-yes: permission refused by the policy",
    }
)


def _answer(prompt: LivePrompt, auto_yes: bool, policy: PermissionPolicy) -> tuple[tuple[str, ...], str]:
    """The keys for a live prompt (empty = leave it to a person) and why."""
    if prompt.kind == "start":
        return prompt.yes, f"{prompt.label or 'start screen'} dismissed"
    if not auto_yes:
        return (), ""
    if prompt.kind == "question":
        return prompt.yes, f"auto-yes: question answered yes: {prompt.text}"
    verdict = policy.verdict(prompt.text)
    if verdict == "ask":
        return (), ""
    keys = prompt.yes if verdict == "allow" else prompt.no
    return keys, f"{_POLICY_TEXT[verdict]} ({policy.mode}): {prompt.text}"


def auto_answer(
    harness: Harness, screen: str, auto_yes: bool, permission_policy: PermissionPolicy | None = None
) -> tuple[str, ...] | None:
    """The keys corral sends by itself to what `screen` shows, or None to leave it to a person.

    Start screens (trust this folder, …) are always dismissed: they are about the worktree corral made. A
    question is answered yes only with auto-yes; a permission prompt only with auto-yes and when the
    permission policy allows (or, `deny_all`, refuses) it. `decide` does the same, once per prompt.
    """
    prompt = read_screen(harness, screen).prompt
    if prompt is None:
        return None
    keys, _ = _answer(prompt, auto_yes, permission_policy or PermissionPolicy())
    return keys or None


# --- deciding ----------------------------------------------------------------------------------------------

Verdict = tuple[AgentStatus, str]


def decide(
    state: TrackerState,
    evidence: Evidence,
    harness: Harness,
    now: float,
    *,
    auto_yes: bool = False,
    permissions: PermissionPolicy | None = None,
    title: str = "",
) -> Decision:
    """The agent's status after `evidence`, the change if there is one, keys to send, and when to look again.

    Precedence: paused, failed (the supervisor gave up), exited (the process is gone), then the transport's
    events (sdk) or the screen (tmux, pty). See the module docstring for why the screen rules are what they
    are. Idempotent: deciding again with `Evidence()` and the same `now` changes nothing. `title` (the
    instance's) goes into the commands a waiting reason offers.
    """
    previous = state.status
    state, fresh = _after_restart(state, evidence, now)
    keys: tuple[str, ...] = ()
    why = ""
    verdict = _process_verdict(evidence)
    if verdict is None and evidence.mode == "sdk":
        state, verdict = _sdk_verdict(state, evidence, harness, now, title or "TITLE")
    elif verdict is None:
        state, verdict, keys, why = _screen_verdict(
            state, evidence, harness, now, auto_yes, permissions or PermissionPolicy()
        )
    status, reason = verdict
    if fresh and status is _S.LOADING:
        reason = f"{fresh}; {reason}"
    change = None
    if status is not previous:
        change = StatusChange(status=status, previous=previous, reason=reason, at=now)
        state = msgspec.structs.replace(state, since=now)
    state = msgspec.structs.replace(state, status=status, reason=reason)
    wake = _wake_at(state, harness, now) if evidence.mode != "sdk" else _sdk_wake_at(state, harness, now)
    return Decision(state=state, change=change, keys=keys, keys_reason=why, wake_at=wake)


def _after_restart(state: TrackerState, ev: Evidence, now: float) -> tuple[TrackerState, str]:
    """A new process (restarted, resumed) starts afresh; the old status stays, to report the change."""
    if not ev.alive or ev.paused:
        return state, ""
    if ev.restarts > state.restarts:
        fresh = f"restarted (restart {ev.restarts})"
    elif state.status in (_S.PAUSED, _S.EXITED, _S.FAILED):
        fresh = "resumed" if state.status is _S.PAUSED else "started again"
    else:
        return state, ""
    start = TrackerState.start(now, ev.restarts)
    return msgspec.structs.replace(start, status=state.status, reason=state.reason), fresh


def _process_verdict(ev: Evidence) -> Verdict | None:
    if ev.paused:
        return _S.PAUSED, "paused"
    if ev.gave_up:
        return _S.FAILED, _exit_text(ev)
    if not ev.alive:
        return _S.EXITED, _exit_text(ev)
    return None


def _exit_text(ev: Evidence) -> str:
    """Why it ended, e.g. `exit status 137 after 3 restarts; <why the supervisor gave up>`."""
    if ev.killed:
        return "killed by request"
    if ev.exit_signal:
        try:
            text = f"killed by {signal.Signals(ev.exit_signal).name}"
        except ValueError:
            text = f"killed by signal {ev.exit_signal}"
    elif ev.exit_status is not None:
        text = f"exit status {ev.exit_status}"
    else:
        text = "the process is gone (no exit status)"
    if ev.restarts:
        text += f" after {ev.restarts} restart{'s' if ev.restarts != 1 else ''}"
    if ev.gave_up:
        text += f"; {ev.give_up_reason or 'not restarted'}"
    elif ev.said:
        text += f": {ev.said}"
    return text


# sdk mode: each event moves (session, turn, approval, last turn's end, trouble) along.
class _Turns(NamedTuple):
    session: bool
    turn: bool
    approval: str
    last: str
    trouble: str = ""
    stalled: bool = False


def _turn_end(event: TurnCompleted) -> str:
    if event.status == "completed" and not event.error:
        return "turn completed"
    return f"turn {event.status}: {event.error}" if event.error else f"turn {event.status}"


def _trouble(t: _Turns, e: SdkError) -> _Turns:
    """An error during a turn is its reason until the turn moves on; a line on the wrong stream is none."""
    if not t.turn or not (e.cause or e.retrying or e.fatal):
        return t
    return t._replace(trouble=f"{e.cause or SOME_ERROR}: {e.message}", stalled=e.stalled)


_SDK_EFFECTS: Mapping[type, Callable[[_Turns, Any], _Turns]] = MappingProxyType(
    {
        SessionStarted: lambda t, e: t._replace(session=True),
        TurnStarted: lambda t, e: t._replace(session=True, turn=True, approval="", trouble="", stalled=False),
        AgentText: lambda t, e: t._replace(session=True, turn=True, approval="", trouble="", stalled=False),
        Approval: lambda t, e: t._replace(approval=f"{e.kind}: {e.summary}", trouble="", stalled=False),
        TurnCompleted: lambda t, e: t._replace(turn=False, approval="", last=_turn_end(e), trouble=""),
        SdkError: _trouble,
    }
)


def _sdk_verdict(
    state: TrackerState, ev: Evidence, harness: Harness, now: float, title: str
) -> tuple[TrackerState, Verdict]:
    turns = _Turns(
        state.sdk_session,
        state.sdk_turn,
        state.sdk_approval,
        state.sdk_last_turn,
        state.sdk_trouble,
        state.sdk_stalled,
    )
    busy_at = state.busy_at
    sent = _newly_sent(state, ev)
    if sent:
        turns = turns._replace(turn=True, last="", trouble="", stalled=False)
        busy_at = max(busy_at, ev.input_sent_at or now)
    for event in ev.sdk_events:
        effect = _SDK_EFFECTS.get(type(event))
        if effect is not None:
            turns = effect(turns, event)
    if ev.sdk_events:
        busy_at = now  # the agent said something: it is not hung, whatever it said
    if ev.last_output_at is not None and ev.last_output_at > busy_at:
        busy_at = ev.last_output_at
    trouble_at = None
    if turns.trouble:
        trouble_at = state.sdk_trouble_at if state.sdk_trouble and state.sdk_trouble_at is not None else now
    state = msgspec.structs.replace(
        state,
        sdk_session=turns.session,
        sdk_turn=turns.turn,
        sdk_approval=turns.approval,
        sdk_last_turn=turns.last,
        sdk_trouble=turns.trouble,
        sdk_trouble_at=trouble_at,
        sdk_stalled=turns.stalled,
        busy_at=busy_at,
        input_sent_at=ev.input_sent_at if sent else state.input_sent_at,
    )
    if turns.approval:
        return state, (_S.WAITING, f"permission request: {turns.approval}")
    if turns.turn:
        return state, _sdk_turn_verdict(state, harness, now, title, sent)
    if turns.last:
        return state, (_S.READY, turns.last)
    if turns.session:
        return state, (_S.READY, "session started")
    return state, (_S.LOADING, "starting: waiting for the session")


def _sdk_turn_verdict(state: TrackerState, h: Harness, now: float, title: str, sent: bool) -> Verdict:
    """A running turn: running, with its trouble as the reason if it has some; waiting once it cannot go
    on (the agent says so, or it has had trouble and no progress for `sdk_quiet_s`) or once nothing at all
    has come from the agent for `sdk_quiet_s`."""
    unblock = (
        f"interrupt it: corral instance send-keys {title} C-c; restart it: corral instance restart {title}"
    )
    if state.sdk_trouble:
        lasted = now - (state.sdk_trouble_at if state.sdk_trouble_at is not None else now)
        if state.sdk_stalled:
            return _S.WAITING, f"{state.sdk_trouble}; the turn cannot go on by itself ({unblock})"
        if lasted >= h.sdk_quiet_s:
            return _S.WAITING, (
                f"{state.sdk_trouble}; no progress for {_secs(lasted)}, the turn cannot go on ({unblock})"
            )
        return _S.RUNNING, state.sdk_trouble
    quiet = now - state.busy_at
    if quiet >= h.sdk_quiet_s:
        return _S.WAITING, f"no event for {_secs(quiet)} during a turn: it may be hung ({unblock})"
    return _S.RUNNING, "prompt sent" if sent else "turn running"


def _sdk_wake_at(state: TrackerState, h: Harness, now: float) -> float | None:
    """When a running turn's silence (or trouble) becomes waiting, if nothing comes before."""
    if state.status is not _S.RUNNING or not state.sdk_turn or state.sdk_approval:
        return None
    times = [state.busy_at + h.sdk_quiet_s]
    if state.sdk_trouble and state.sdk_trouble_at is not None:
        times.append(state.sdk_trouble_at + h.sdk_quiet_s)
    later = [t for t in times if t > now]
    return min(later) if later else None


def _newly_sent(state: TrackerState, ev: Evidence) -> bool:
    return ev.input_sent_at is not None and (
        state.input_sent_at is None or ev.input_sent_at > state.input_sent_at
    )


class _Facts(NamedTuple):
    """What the screen rules look at."""

    harness: Harness
    reading: ScreenReading | None
    state: TrackerState
    seen: bool
    quiet: float
    answering: bool
    """Keys for the live prompt were sent and may still be taking effect."""
    exhausted: bool
    """Keys were sent MAX_ANSWER_TRIES times and the prompt is still there."""
    now: float


def _screen_verdict(
    state: TrackerState,
    ev: Evidence,
    harness: Harness,
    now: float,
    auto_yes: bool,
    policy: PermissionPolicy,
) -> tuple[TrackerState, Verdict, tuple[str, ...], str]:
    reading = read_screen(harness, ev.screen) if ev.screen is not None else state.reading
    old = state.reading
    busy_at, busy_why = state.busy_at, state.busy_why
    if reading is not None and old is None and ev.quiet_since is not None:
        busy_at, busy_why = min(now, ev.quiet_since), "output changing"
    elif reading is not None and (old is None or reading.content_hash != old.content_hash):
        busy_at, busy_why = now, "output changing"
    if reading is not None and reading.working and (old is None or reading.working != old.working):
        busy_at, busy_why = now, f"working: {reading.working_label} visible"
    sent = _newly_sent(state, ev)
    if sent:
        busy_at, busy_why = max(busy_at, ev.input_sent_at or now), "prompt sent"
    if reading is None and ev.last_output_at is not None and ev.last_output_at > busy_at:
        busy_at, busy_why = ev.last_output_at, "output arriving"
    prompt = reading.prompt if reading is not None else None
    seen = state.seen_prompt or (
        reading is not None
        and (reading.ready or bool(reading.working) or (prompt is not None and prompt.kind != "start"))
    )

    # Answering: each prompt at most MAX_ANSWER_TRIES times, ANSWER_HOLD_S apart.
    answered, tries, answer_at = state.answered, state.answer_tries, state.answer_at
    keys: tuple[str, ...] = ()
    why = ""
    want: tuple[str, ...] = ()
    held = False
    if prompt is None:
        answered, tries, answer_at = "", 0, None
    else:
        want, want_why = _answer(prompt, auto_yes, policy)
        if prompt.text != answered:
            answered, tries, answer_at = prompt.text, 0, None
        held = answer_at is not None and now - answer_at < ANSWER_HOLD_S
        if want and tries < MAX_ANSWER_TRIES and not held:
            keys, why, tries, answer_at = want, want_why, tries + 1, now
            held = True
    exhausted = bool(want) and tries >= MAX_ANSWER_TRIES and not held
    state = msgspec.structs.replace(
        state,
        reading=reading,
        busy_at=busy_at,
        busy_why=busy_why,
        seen_prompt=seen,
        input_sent_at=ev.input_sent_at if sent else state.input_sent_at,
        answered=answered,
        answer_tries=tries,
        answer_at=answer_at,
    )
    facts = _Facts(harness, reading, state, seen, now - busy_at, bool(want) and not exhausted, exhausted, now)
    for rule in _SCREEN_RULES:
        if (verdict := rule(facts)) is not None:
            return state, verdict, keys, why
    raise AssertionError("the last screen rule always decides")  # pragma: no cover


def _secs(seconds: float) -> str:
    return f"{seconds:.0f} s"


def _prompt_rule(f: _Facts) -> Verdict | None:
    prompt = f.reading.prompt if f.reading is not None else None
    if prompt is None:
        return None
    status = f.state.status
    if prompt.kind == "start":
        label = f"start screen: {prompt.label}"
        # Past the start timeout, a start screen that outlived its answers, or froze, needs a person:
        # "loading" for good is a silent stall (an agent stopped on its trust screen stayed so under chaos).
        if f.now - f.state.started_at >= f.harness.start_timeout_s:
            if f.exhausted:
                return _S.WAITING, f"{label} (answered {MAX_ANSWER_TRIES} times; it is still there)"
            if not f.answering and f.quiet >= f.harness.quiet_unknown_s:
                frozen = f"no change for {_secs(f.quiet)}"
                return _S.WAITING, f"{label}, {frozen}: it needs a person or may be hung"
        return (_S.LOADING if not f.seen else status), label
    shown = f"{_KIND_TEXT[prompt.kind]}: {prompt.text}"
    if f.answering:
        # Being answered now: not a person's business, so no "waiting" to notify anyone of.
        return (_S.RUNNING if status is not _S.LOADING else status), f"answering {shown}"
    if f.exhausted:
        return _S.WAITING, f"{shown} (answered {MAX_ANSWER_TRIES} times; it is still there)"
    return _S.WAITING, shown


def _working_rule(f: _Facts) -> Verdict | None:
    r = f.reading
    if r is None or not r.working:
        return None
    if f.quiet < f.harness.ready_settle_s or (not r.ready and f.quiet < f.harness.quiet_unknown_s):
        return _S.RUNNING, f"working: {r.working_label} visible"
    if not r.ready:  # a spinner that stopped turning, nothing else moving: hung
        return _S.WAITING, f"no change for {_secs(f.quiet)} with {r.working_label} visible: it may be hung"
    return None


def _ready_rule(f: _Facts) -> Verdict | None:
    if f.reading is None or not f.reading.ready:
        return None
    status, why = f.state.status, f.state.busy_why
    if f.quiet >= f.harness.ready_settle_s:
        return _S.READY, f"prompt visible, no change for {_secs(f.quiet)}"
    if status is _S.READY and why != "prompt sent":
        return _S.READY, f.state.reason  # the latch: a repaint under a visible prompt is not work
    if status is _S.LOADING:
        return _S.LOADING, "prompt visible, waiting for the screen to settle"
    return _S.RUNNING, f"{why}; prompt visible"


def _unrecognised_rule(f: _Facts) -> Verdict:
    state, h = f.state, f.harness
    if not f.seen and f.now - state.started_at < h.start_timeout_s:
        return _S.LOADING, "starting: no prompt yet"
    if f.quiet < h.ready_settle_s:
        return _S.RUNNING, f"{state.busy_why}; no prompt visible"
    if f.quiet >= h.quiet_unknown_s:
        return _S.WAITING, f"no change for {_secs(f.quiet)} and no prompt recognised"
    return state.status, state.reason


_SCREEN_RULES: tuple[Callable[[_Facts], Verdict | None], ...] = (
    _prompt_rule,
    _working_rule,
    _ready_rule,
    _unrecognised_rule,
)
"""In precedence order; the last always decides."""


def _wake_at(state: TrackerState, h: Harness, now: float) -> float | None:
    if state.status in (_S.EXITED, _S.FAILED, _S.PAUSED):
        return None
    times = [state.busy_at + h.ready_settle_s]
    if not (state.reading is not None and state.reading.ready):
        times.append(state.busy_at + h.quiet_unknown_s)
    if not state.seen_prompt:
        times.append(state.started_at + h.start_timeout_s)
    if state.answered and state.answer_at is not None:
        times.append(state.answer_at + ANSWER_HOLD_S)
    later = [t for t in times if t > now]
    return min(later) if later else None
