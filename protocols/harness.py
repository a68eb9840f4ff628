"""One small description per agent program, and the pure decisions that read it.

    harness = harness_for_program("npx -y @openai/codex", config.custom_harnesses())   # → the codex harness
    launch = plan_launch(harness, program="codex", model="o3", prompt=task,
                         prompt_file=".corral/prompts/t1.md", mode="sdk")
    launch.argv           # ("codex", "app-server")
    launch.send           # the prompt, delivered over the transport once the session is up
    launch.note           # anything corral changed or could not do, for the audit log

A `Harness` is data, not code: the program to run, which flags mean "skip permission prompts" and "use this
model", how the first prompt gets in (`argv` positional, a `flag`, or `send`: typed once the agent shows its
prompt), and what its screens look like — start screens to dismiss, permission prompts, questions for a
person, the idle prompt, the working indicator. `protocols.status` reads the screen patterns; nothing here
runs a program or reads a file.

Every pattern is a regular expression searched in one line of the screen, with ANSI codes stripped and
trailing spaces removed. Keys are tmux key names ("Enter", "Escape", "Down", "C-c") or literal text ("y",
"1"), sent in order. The programs reword their screens from one release to the next (claude-squad's auto-yes
broke twice on a wording change), so a `[harnesses.<name>]` table in config.toml can replace any field
without waiting for a corral release; docs/agents.md lists what each harness matches.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Annotated, Literal

import msgspec

from protocols.errors import UsageError
from protocols.sdk import claude_argv_flags

__all__ = [
    "BUILTIN_HARNESSES",
    "ExecutionMode",
    "Harness",
    "Launch",
    "PromptDelivery",
    "ScreenPrompt",
    "SdkLaunch",
    "SdkTransport",
    "effective_mode",
    "get_harness",
    "harness_for_program",
    "launch_argv",
    "plan_launch",
    "program_name",
]

ExecutionMode = Literal["tmux", "pty", "sdk"]
PromptDelivery = Literal["argv", "flag", "send"]
SdkTransport = Literal["claude", "codex"]

_NonNegative = Annotated[int, msgspec.Meta(ge=0)]
_Seconds = Annotated[float, msgspec.Meta(ge=0)]
_Positive = Annotated[int, msgspec.Meta(ge=1)]


class ScreenPrompt(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Something on screen that waits for keys: a start screen, a permission prompt or a question.

    The first line `pattern` matches is what a status reason quotes; `label` names the kind of thing
    ("trust screen", "edit") for the audit log. A start screen is dismissed with `yes`.
    """

    pattern: str
    label: str = ""
    yes: tuple[str, ...] = ("Enter",)
    no: tuple[str, ...] = ("Escape",)


class SdkLaunch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How to start a program for one structured transport (protocols/sdk.py speaks both)."""

    transport: SdkTransport
    args: tuple[str, ...] = ()
    argv_options: bool = True
    """Whether the model and the skip-permission flags go on the command line (claude), or into the
    protocol's own session request (codex `thread/start`), where the SdkRuntime sets them."""


class Harness(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything corral knows about one agent program. See docs/agents.md for each built-in's values."""

    name: str = ""
    description: str = ""
    program: str = ""
    """The binary run when a profile names the harness but no program; "" = the profile must name one."""
    skip_permissions_flags: tuple[str, ...] = ()
    """Added when a profile sets `skip_permissions`; empty = the program has no such switch (noted)."""
    model_flag: str = "--model"
    """"" = the program takes no model on its command line (a profile's model is noted, not passed)."""
    prompt_delivery: PromptDelivery = "send"
    prompt_flag: str = ""
    """The flag that carries the prompt when `prompt_delivery` is "flag", e.g. `--prompt`."""
    long_prompt_chars: _NonNegative = 0
    """A prompt longer than this goes through a file the caller writes; 0 = never (sent as it is)."""
    long_prompt_flag: str = ""
    """A flag that hands the file itself to the program (aider `--read`); "" = only the text below."""
    long_prompt_text: str = "Read the task in {file} and carry it out."
    """Delivered instead of a long prompt, the way the prompt would have been; `{file}` is its path."""
    start_screens: tuple[ScreenPrompt, ...] = ()
    permission_patterns: tuple[ScreenPrompt, ...] = ()
    question_patterns: tuple[ScreenPrompt, ...] = ()
    ready_patterns: tuple[str, ...] = ()
    """The idle prompt; it counts only within the last `ready_lines` non-empty lines."""
    working_patterns: tuple[str, ...] = ()
    volatile_patterns: tuple[str, ...] = ()
    """Text that changes without meaning anything (footers, counters): removed before comparing screens."""
    ready_lines: _Positive = 4
    scan_lines: _Positive = 40
    """Prompts and the working indicator are looked for in the last `scan_lines` lines of the screen."""
    enter_settle_s: _Seconds = 0.3
    """Between pasting text and pressing Enter: some programs swallow an Enter that follows a paste."""
    ready_settle_s: _Seconds = 3.0
    """How long the screen must stay still, the prompt visible, before the agent counts as ready."""
    start_timeout_s: _Seconds = 30.0
    quiet_unknown_s: _Seconds = 60.0
    """A screen that shows nothing recognisable and has not changed for this long needs a person."""
    sdk_quiet_s: _Seconds = 120.0
    """sdk mode: a turn with no event from the agent for this long (or with errors and no progress for this
    long) needs a person: it may be hung."""
    sdk: tuple[SdkLaunch, ...] = ()
    """The structured transports the program speaks; empty = tmux or pty only."""
    resume_args: tuple[str, ...] = ()
    """Resume a stored conversation; `{session}` is its id."""
    continue_args: tuple[str, ...] = ()
    """Continue the program's most recent conversation in the working directory."""
    session_id_args: tuple[str, ...] = ()
    """Start a conversation with an id corral chose, so a restart can resume it by that id."""


class Launch(msgspec.Struct, frozen=True, kw_only=True):
    """What `plan_launch` decided: the command, and what the caller does around it."""

    argv: tuple[str, ...]
    mode: ExecutionMode
    sdk_transport: Literal["", "claude", "codex"] = ""
    send: str = ""
    """Text to send once the agent is up: at its prompt (tmux, pty) or as the first turn (sdk)."""
    prompt_file: str = ""
    """Write the whole prompt here before starting the agent; "" = no file."""
    enter_settle_s: float = 0.3
    note: str = ""
    """What corral changed or could not do ("sdk is offered for …"), for the audit log; "" = nothing."""


# --- the built-in harnesses ------------------------------------------------------------------------------

# An input line: a prompt character at the start, maybe inside a box (│), maybe followed by typed text, but
# not a numbered menu option ("❯ 1. Yes"), which uses the same characters.
_PROMPT_LINE = r"^\s*(?:[│┃]\s*)?[>❯›](?!\s*\d+\.)(?:\s|$)"
# claude's spinner: a cycling glyph, a word, an ellipsis ("✻ Cultivating… (12s · esc to interrupt)");
# "✻ Worked for 12s", the summary once it is done, has no ellipsis.
_STAR_SPINNER = r"^\s*[✢✳✶✻✽✺·*]\s*\S[^…]*…"
_BRAILLE_SPINNER = r"^\s*[⠁-⣿]\s+\S"
_Y_ENTER = ("y", "Enter")
_N_ENTER = ("n", "Enter")

CLAUDE = Harness(
    name="claude",
    description="Claude Code (Anthropic)",
    program="claude",
    skip_permissions_flags=("--dangerously-skip-permissions",),
    prompt_delivery="argv",
    long_prompt_chars=8000,
    long_prompt_text="Read the task in @{file} and carry it out.",
    start_screens=(
        ScreenPrompt(
            pattern=r"Do you trust the files in this folder\?|Yes, I trust this folder", label="trust screen"
        ),
        ScreenPrompt(pattern=r"[Nn]ew MCP server", label="MCP server screen"),
        ScreenPrompt(
            pattern=r"Bypass Permissions mode", label="bypass-permissions warning", yes=("Down", "Enter")
        ),
    ),
    permission_patterns=(
        ScreenPrompt(
            pattern=r"Do you want to (?:make this edit|create|proceed|allow|run|fetch|overwrite|delete)"
            r"\b.*\?",
            label="permission",
        ),
        ScreenPrompt(pattern=r"No, and tell Claude what to do differently", label="permission"),
    ),
    question_patterns=(
        # Plan mode's exit; "Yes, and manually approve edits" (the second option) keeps the permission policy
        # in force, where the first would switch claude to accepting every edit.
        ScreenPrompt(pattern=r"Would you like to proceed\?", label="plan approval", yes=("Down", "Enter")),
        ScreenPrompt(pattern=r"↑/↓ to navigate|Enter to confirm", label="menu"),
    ),
    ready_patterns=(_PROMPT_LINE,),
    working_patterns=(r"(?:esc|ctrl\+c) to interrupt", _STAR_SPINNER),
    volatile_patterns=(r"\? for shortcuts", r"⏵⏵.*", r"\(shift\+tab to cycle\)"),
    ready_lines=5,
    sdk=(SdkLaunch(transport="claude", args=tuple(claude_argv_flags())),),
    resume_args=("--resume", "{session}"),
    continue_args=("--continue",),
    session_id_args=("--session-id", "{session}"),
)

CODEX = Harness(
    name="codex",
    description="Codex CLI (OpenAI)",
    program="codex",
    skip_permissions_flags=("--dangerously-bypass-approvals-and-sandbox",),
    prompt_delivery="argv",
    long_prompt_chars=8000,
    start_screens=(
        # A worktree is a git checkout, where the highlighted first option is "Yes, allow Codex to work in
        # this folder": the program's own default.
        ScreenPrompt(
            pattern=r"Do you trust the contents of this (?:directory|project|folder)\?"
            r"|allow Codex to work in this folder",
            label="trust screen",
        ),
        ScreenPrompt(pattern=r"Press enter to continue", label="notice"),
    ),
    permission_patterns=(
        ScreenPrompt(
            pattern=r"Would you like to (?:run the following command|make the following edits"
            r"|grant these permissions)\?",
            label="approval",
        ),
        ScreenPrompt(pattern=r"needs your approval", label="approval"),
        ScreenPrompt(pattern=r"No, and tell Codex what to do differently", label="approval"),
    ),
    ready_patterns=(_PROMPT_LINE,),
    working_patterns=(r"esc to interrupt", r"^\s*[•◦]\s*Working\b"),
    volatile_patterns=(r"\d+% context left", r"\? for shortcuts"),
    ready_lines=5,
    enter_settle_s=0.5,  # codex reads keys < 8 ms apart as a paste and can swallow an Enter after one
    sdk=(SdkLaunch(transport="codex", args=("app-server",), argv_options=False),),
    resume_args=("resume", "{session}"),
    continue_args=("resume", "--last"),
)

OPENCODE = Harness(
    name="opencode",
    description="opencode (SST)",
    program="opencode",
    skip_permissions_flags=("--auto",),
    prompt_delivery="flag",
    prompt_flag="--prompt",
    long_prompt_chars=8000,
    permission_patterns=(
        # Buttons: Allow once (highlighted) · Allow always · Reject.
        ScreenPrompt(pattern=r"Permission required", label="permission", no=("Right", "Right", "Enter")),
    ),
    ready_patterns=(r"Ask anything", _PROMPT_LINE),
    working_patterns=(r"esc (?:to )?interrupt",),
    ready_lines=6,
    resume_args=("--session", "{session}"),
    continue_args=("--continue",),
)

GEMINI = Harness(
    name="gemini",
    description="Gemini CLI (Google)",
    program="gemini",
    skip_permissions_flags=("--yolo",),
    prompt_delivery="flag",
    prompt_flag="--prompt-interactive",
    long_prompt_chars=8000,
    long_prompt_text="Read the task in @{file} and carry it out.",
    start_screens=(ScreenPrompt(pattern=r"Do you trust this folder\?", label="trust screen"),),
    permission_patterns=(
        ScreenPrompt(
            pattern=r"Allow execution of|Apply this change\?|Do you want to proceed\?|Yes, allow once",
            label="permission",
        ),
    ),
    ready_patterns=(_PROMPT_LINE, r"Type your message"),
    working_patterns=(r"esc to cancel", _BRAILLE_SPINNER),
    ready_lines=6,
    start_timeout_s=45.0,
    resume_args=("--resume", "{session}"),
    continue_args=("--resume", "latest"),
)

AIDER = Harness(
    name="aider",
    description="aider",
    program="aider",
    skip_permissions_flags=("--yes-always",),
    # --message would make aider answer once and exit: the prompt is typed into its chat instead.
    prompt_delivery="send",
    long_prompt_chars=8000,
    long_prompt_flag="--read",
    long_prompt_text="The task is in {file}, added to the chat read-only: carry it out.",
    start_screens=(
        ScreenPrompt(pattern=r"Add \.aider\S* to \.gitignore", label=".gitignore offer", yes=_Y_ENTER),
        ScreenPrompt(pattern=r"Open documentation url", label="documentation offer", yes=("D", "Enter")),
    ),
    permission_patterns=(
        ScreenPrompt(
            pattern=r"(?:[Rr]un shell commands?|[Cc]reate new file|[Aa]llow edits?|[Ee]dit the files?)"
            r".*\(Y\)es/\(N\)o",
            label="permission",
            yes=_Y_ENTER,
            no=_N_ENTER,
        ),
    ),
    question_patterns=(ScreenPrompt(pattern=r"\(Y\)es/\(N\)o", label="question", yes=_Y_ENTER, no=_N_ENTER),),
    ready_patterns=(r"^(?:[a-z-]+)?>(?:\s|$)",),
    working_patterns=(r"Waiting for \S+", r"^\s*[░█▒▓]{2,}"),
    ready_lines=2,
    start_timeout_s=45.0,
    continue_args=("--restore-chat-history",),
)

AMP = Harness(
    name="amp",
    description="Amp (Sourcegraph)",
    program="amp",
    skip_permissions_flags=("--dangerously-allow-all",),
    model_flag="",  # amp chooses its model by mode, not by a flag
    prompt_delivery="send",
    permission_patterns=(
        ScreenPrompt(pattern=r"Waiting for approval|Allow (?:this|running)\b.*\?", label="permission"),
    ),
    ready_patterns=(_PROMPT_LINE,),
    working_patterns=(r"(?:esc|ctrl\+c) to (?:cancel|interrupt)", _BRAILLE_SPINNER),
    ready_lines=6,
    resume_args=("threads", "continue", "{session}"),
    continue_args=("threads", "continue"),
)

SIM = Harness(
    name="sim",
    description="corral-sim, corral's own simulated agent (tests and demos)",
    program="corral-sim",
    skip_permissions_flags=("--dangerously-skip-permissions",),
    prompt_delivery="argv",
    long_prompt_chars=8000,
    long_prompt_flag="--prompt-file",  # the sim reads the file itself: a long prompt's directives still run
    long_prompt_text="Read the task in @{file} and carry it out.",
    start_screens=(ScreenPrompt(pattern=r"Do you trust the files in this folder\?", label="trust screen"),),
    permission_patterns=(
        ScreenPrompt(pattern=r"Do you want to make this edit to .+\?", label="edit", yes=("1",), no=("3",)),
        ScreenPrompt(pattern=r"^Bash command:", label="command", yes=("1",), no=("3",)),
        ScreenPrompt(pattern=r"Do you want to proceed\?", label="command", yes=("1",), no=("3",)),
        ScreenPrompt(
            pattern=r"No, and tell Claude what to do differently", label="permission", yes=("1",), no=("3",)
        ),
    ),
    question_patterns=(
        ScreenPrompt(
            pattern=r"Would you like to proceed\? \(Y\)es/\(N\)o", label="question", yes=_Y_ENTER, no=_N_ENTER
        ),
    ),
    ready_patterns=(r"^>(?: |$)",),
    working_patterns=(r"esc to interrupt", r"^[✢✳✶✻✽] \S.*…"),
    volatile_patterns=(r"^\? for shortcuts$",),
    ready_lines=2,
    sdk=(
        SdkLaunch(transport="claude", args=tuple(claude_argv_flags())),
        SdkLaunch(transport="codex", args=("app-server",), argv_options=False),
    ),
    resume_args=("--resume", "{session}"),
    continue_args=("--continue",),
    session_id_args=("--session-id", "{session}"),
)

CUSTOM = Harness(
    name="custom",
    description="any other program: generic prompts, the prompt typed in once it is up",
    model_flag="",
    prompt_delivery="send",
    permission_patterns=(
        ScreenPrompt(
            pattern=r"\(Y\)es/\(N\)o|\[[Yy]/[Nn]\]|\([Yy]/[Nn]\)|Do you want to (?:proceed|allow|run)\b.*\?",
            label="yes/no prompt",
            yes=_Y_ENTER,
            no=_N_ENTER,
        ),
    ),
    question_patterns=(ScreenPrompt(pattern=r"Would you like to proceed\?", label="question"),),
    ready_patterns=(_PROMPT_LINE,),
    working_patterns=(r"(?:esc|ctrl\+c) to (?:interrupt|cancel)", _STAR_SPINNER, _BRAILLE_SPINNER),
    quiet_unknown_s=10.0,
)

BUILTIN_HARNESSES: Mapping[str, Harness] = MappingProxyType(
    {h.name: h for h in (CLAUDE, CODEX, OPENCODE, GEMINI, AIDER, AMP, SIM, CUSTOM)}
)
"""The built-in harnesses by name; `custom` is the generic one any unknown program gets."""

# Package and binary names that mean a built-in harness.
_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "claude-code": "claude",
        "gemini-cli": "gemini",
        "aider-chat": "aider",
        "opencode-ai": "opencode",
        "corral-sim": "sim",
    }
)
_MODES: Mapping[str, ExecutionMode] = MappingProxyType(
    {"tmux": "tmux", "pty": "pty", "sdk": "sdk", "headless": "sdk"}  # headless: kasmos's old name for sdk
)
# Commands that run another program named after them (and their options).
_LAUNCHERS = frozenset({"env", "npx", "bunx", "pnpx", "uvx"})


# --- which harness -----------------------------------------------------------------------------------------


def get_harness(name: str) -> Harness:
    """The built-in harness `name` (an alias such as "corral-sim" is accepted), or UsageError naming them."""
    harness = BUILTIN_HARNESSES.get(_ALIASES.get(name, name))
    if harness is None:
        names = ", ".join(BUILTIN_HARNESSES)
        raise UsageError(f'unknown harness "{name}"; harnesses are: {names}')
    return harness


def program_name(program: str) -> str:
    """The name a program string runs, as harness detection sees it.

    `"/usr/bin/codex --x"` → `codex`; `"env FOO=1 npx -y @openai/codex@latest"` → `codex`;
    `"claude-code"` → `claude`. Never raises; "" for a string that names nothing.
    """
    tokens = _split(program)
    for token in tokens:
        if "=" in token and not token.startswith(("-", "/", ".")):
            continue  # an environment assignment, as env takes them
        if token.startswith("-"):
            continue  # an option of a launcher
        name = posixpath.basename(token.rstrip("/"))
        if "@" in name[1:]:
            name = name[: name.index("@", 1)]  # "codex@latest" → "codex"
        name = name.lower()
        if name in _LAUNCHERS:
            continue
        return _ALIASES.get(name, name)
    return ""


def harness_for_program(program: str, custom: Mapping[str, Harness] = MappingProxyType({})) -> Harness:
    """The harness for a profile's program string: by the name it runs, never by the exact string.

    A `[harnesses.<name>]` table (passed in `custom`) wins over a built-in: by its name, or by the name its
    own `program` runs. An unknown program gets the generic `custom` harness (or a `[harnesses.custom]`
    table adjusting it), so it still runs, with generic prompt detection.
    """
    name = program_name(program)
    if name in custom:
        return custom[name]
    for harness in custom.values():
        if harness.program and program_name(harness.program) == name:
            return harness
    return BUILTIN_HARNESSES.get(name) or custom.get("custom", CUSTOM)


def effective_mode(harness: Harness, requested: str) -> tuple[ExecutionMode, str]:
    """The mode an agent really runs in, and a note for the audit log when it is not the one requested.

    sdk is offered for programs with a structured transport — claude and codex (and corral-sim, which
    speaks both); a request for sdk (or its old name, headless) for any other program falls back to tmux.
    The note says so, where kasmos fell back silently.
    """
    mode = _MODES.get(requested)
    if mode is None:
        return "tmux", f'unknown execution mode "{requested}"; {harness.name} runs in tmux'
    if mode == "sdk" and not harness.sdk:
        return "tmux", f"sdk is offered for claude and codex only; {harness.name} runs in tmux"
    return mode, ""


# --- the command line --------------------------------------------------------------------------------------


def plan_launch(
    harness: Harness,
    *,
    program: str = "",
    model: str = "",
    flags: Sequence[str] = (),
    skip_permissions: bool = False,
    prompt: str = "",
    prompt_file: str = "",
    mode: str = "tmux",
    sdk_transport: str = "",
    session: str = "",
    resume: bool = False,
) -> Launch:
    """Decide how to start an agent: its argv, and how its first prompt gets in.

    `program` is the profile's program string (it may carry arguments: `"claude --verbose"`); "" runs the
    harness's own. The argv is `program [resume] [skip-permission flags] [--model M] [flags] [prompt]`. A
    prompt longer than `harness.long_prompt_chars` goes through `prompt_file` (relative to the agent's
    working directory), which the caller writes before the start; such a prompt without a `prompt_file` is
    a ValueError. In sdk mode the prompt is the first turn (`send`) and resuming is the SdkRuntime's job.

    `session` with `resume` resumes that conversation (or, when the program cannot resume by id, continues
    its most recent one); `session` alone starts a conversation with that id where the program allows it.
    Whatever cannot be done is in `note`, never silently dropped.
    """
    mode, note = effective_mode(harness, mode)
    notes = [note] if note else []
    argv = _program_argv(program or harness.program, harness)
    options = _permission_and_model(harness, skip_permissions, model, notes)
    if mode == "sdk":
        sdk = _pick_sdk(harness, sdk_transport, notes)
        argv += [*options, *sdk.args, *flags] if sdk.argv_options else [*sdk.args, *flags]
        if not sdk.argv_options and (skip_permissions or model):
            notes.append(f"{sdk.transport} sdk: model and approvals are set in the session request")
        return Launch(
            argv=tuple(argv),
            mode=mode,
            sdk_transport=sdk.transport,
            send=prompt,
            enter_settle_s=harness.enter_settle_s,
            note="; ".join(notes),
        )
    argv += [*_session_args(harness, session, resume, notes), *options, *flags]
    text, file = prompt, ""
    if prompt and harness.long_prompt_chars and len(prompt) > harness.long_prompt_chars:
        if not prompt_file:
            raise ValueError(
                f"a prompt of {len(prompt)} characters goes through a file for {harness.name} "
                f"(over {harness.long_prompt_chars}): pass prompt_file"
            )
        file, text = prompt_file, harness.long_prompt_text.replace("{file}", prompt_file)
        if harness.long_prompt_flag:
            argv += [harness.long_prompt_flag, prompt_file]
    send = ""
    if text:
        if harness.prompt_delivery == "send":
            send = text
        else:
            argv += _DELIVERIES[harness.prompt_delivery](harness, text)
    return Launch(
        argv=tuple(argv),
        mode=mode,
        send=send,
        prompt_file=file,
        enter_settle_s=harness.enter_settle_s,
        note="; ".join(notes),
    )


def launch_argv(
    harness: Harness,
    profile_program: str,
    model: str = "",
    flags: Sequence[str] = (),
    skip_permissions: bool = False,
    prompt: str = "",
    prompt_file: str = "",
) -> list[str]:
    """The tmux/pty argv alone: `plan_launch(...).argv`. A `send` harness's prompt is not in it — use
    `plan_launch` whenever there is a prompt, so it is not lost."""
    launch = plan_launch(
        harness,
        program=profile_program,
        model=model,
        flags=flags,
        skip_permissions=skip_permissions,
        prompt=prompt,
        prompt_file=prompt_file,
    )
    return list(launch.argv)


def _split(program: str) -> list[str]:
    try:
        return shlex.split(program)
    except ValueError:  # unbalanced quotes: detection must still say something
        return program.split()


def _program_argv(program: str, harness: Harness) -> list[str]:
    try:
        argv = shlex.split(program)
    except ValueError as exc:
        raise UsageError(f"cannot read the program {program!r}: {exc}") from None
    if not argv:
        raise UsageError(
            f"no program to run for harness {harness.name}: set `program` in the agent's profile"
        )
    return argv


def _permission_and_model(harness: Harness, skip: bool, model: str, notes: list[str]) -> list[str]:
    options: list[str] = []
    if skip:
        if harness.skip_permissions_flags:
            options += harness.skip_permissions_flags
        else:
            notes.append(f"{harness.name} has no switch to skip permission prompts; they stay on")
    if model:
        if harness.model_flag:
            options += [harness.model_flag, model]
        else:
            notes.append(f"{harness.name} takes no model flag; model {model!r} not passed (use flags)")
    return options


def _pick_sdk(harness: Harness, transport: str, notes: list[str]) -> SdkLaunch:
    for sdk in harness.sdk:
        if sdk.transport == transport:
            return sdk
    if transport:
        notes.append(f"{harness.name} does not speak {transport}; using {harness.sdk[0].transport}")
    return harness.sdk[0]


def _session_args(harness: Harness, session: str, resume: bool, notes: list[str]) -> list[str]:
    if resume:
        if session and harness.resume_args:
            return [a.replace("{session}", session) for a in harness.resume_args]
        if harness.continue_args:
            if session:
                notes.append(f"{harness.name} cannot resume by id; continuing its most recent conversation")
            return list(harness.continue_args)
        notes.append(f"{harness.name} cannot resume a conversation; starting a new one")
    elif session and harness.session_id_args:
        return [a.replace("{session}", session) for a in harness.session_id_args]
    return []


def _positional(harness: Harness, text: str) -> list[str]:
    # "--" keeps a prompt that begins with "-" from being read as an option.
    return ["--", text] if text.startswith("-") else [text]


def _flagged(harness: Harness, text: str) -> list[str]:
    return [f"{harness.prompt_flag}={text}"] if text.startswith("-") else [harness.prompt_flag, text]


_DELIVERIES = MappingProxyType({"argv": _positional, "flag": _flagged})
