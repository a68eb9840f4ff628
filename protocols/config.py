"""The schema of `<repo>/.corral/config.toml`, and the pure decisions that read it.

    config = load_config(repo_root)                   # defaults when the file is missing
    profile = config.profile_for_phase("implementing")
    harness = config.harness_for(profile.program)     # built-in, or a [harnesses.<name>] table
    settings = resolve_resources(config.resources)
    env = agent_environment(os.environ, settings)
    argv = [*wrapper_argv(settings, have_nice, have_ionice, is_linux), *command]

Every table is a frozen Struct that forbids unknown fields: a misspelt key is reported, never silently
ignored, because a resource control that quietly does nothing is worse than none. Every problem with a file,
whatever its bytes, is a `ConfigError` naming the file, the dotted key (`resources.nice`,
`agents.coder.flags[0]`) and the reason. Nothing here looks up a binary, reads the process environment or
spawns anything: the caller passes in what it found and carries out what these functions decide.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType, NoneType, UnionType
from typing import Annotated, Any, Literal

import msgspec

from protocols.errors import ConfigError
from protocols.harness import (
    BUILTIN_HARNESSES,
    ExecutionMode,
    Harness,
    PromptDelivery,
    ScreenPrompt,
    SdkLaunch,
    harness_for_program,
    program_name,
)
from protocols.status import PermissionPolicy

__all__ = [
    "CONFIG_PATH",
    "DEFAULT_CONFIG_TOML",
    "INTERACTIVE_PRESET",
    "MANAGED_ENV_KEYS",
    "MAX_CONFIG_BYTES",
    "PHASES",
    "AgentProfile",
    "Config",
    "ExecutionMode",
    "HarnessConfig",
    "OrchestrationConfig",
    "PermissionMode",
    "PhasesConfig",
    "ResourceSettings",
    "ResourcesConfig",
    "UIConfig",
    "agent_environment",
    "load_config",
    "parse_config",
    "resolve_resources",
    "wrapper_argv",
]

CONFIG_PATH = Path(".corral") / "config.toml"
"""Where the config lives, relative to the repository root."""

_NonNegative = Annotated[int, msgspec.Meta(ge=0)]
_Positive = Annotated[int, msgspec.Meta(ge=1)]
_Seconds = Annotated[float, msgspec.Meta(ge=0)]
_ROLE_NAME = re.compile(r"[a-z][a-z0-9_-]*")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Harness names are matched against the lower-cased file name of a profile's program.
_HARNESS_NAME = re.compile(r"[a-z0-9][a-z0-9._+-]*")
# What git check-ref-format refuses, as far as a prefix can tell.
_BAD_BRANCH_PREFIX = re.compile(r"[\s~^:?*\[\\\x00-\x1f\x7f]|\.\.|@\{|^[/-]")

# execution_mode aliases: accepted in the file, normalized before decoding, never stored.
_EXECUTION_MODE_ALIASES: Mapping[str, str] = MappingProxyType({"headless": "sdk"})

MANAGED_ENV_KEYS: frozenset[str] = frozenset(
    {
        "CORRAL_MANAGED",
        "CORRAL_PROJECT",
        "CORRAL_TASK",
        "CORRAL_WAVE",
        "CORRAL_PEERS",
        "CORRAL_INSTANCE_TITLE",
        "CORRAL_AGENT_TYPE",
        "CORRAL_RESOURCE_PROFILE",
    }
)
"""Variables corral sets for every agent; `[resources.env]` may not touch them, nor anything `CORRAL_*`."""

_MANAGED_PREFIX = "CORRAL_"

PermissionMode = Literal["ask", "allow_all", "deny_all"]
"""How auto-yes answers a permission prompt no `allow` regex matches: leave it to a person, accept, refuse."""


class AgentProfile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One `[agents.<role>]` table: which harness runs a role, and how.

    An empty `program` or `enabled = false` makes the role fall back to `default_program`
    (see `Config.profile_for_phase`), so a role can be switched off without deleting its table.
    """

    program: str = ""
    model: str = ""
    flags: tuple[str, ...] = ()
    execution_mode: ExecutionMode = "tmux"
    skip_permissions: bool = False
    enabled: bool = True
    permissions: PermissionMode | None = None  # None: the top-level `permissions`
    allow: tuple[str, ...] | None = None  # None: the top-level `allow`


class PhasesConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`[phases]`: the role that runs each phase; "" means no mapping (the phase uses `default_program`)."""

    planning: str = "planner"
    implementing: str = "coder"
    quality_review: str = "reviewer"
    fixer: str = "fixer"
    readiness_review: str = "master"


PHASES: tuple[str, ...] = PhasesConfig.__struct_fields__
"""The phases a role can be mapped to, in lifecycle order."""


class UIConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`[ui]`: which steps corral takes on its own instead of waiting for a person."""

    auto_readiness_review: bool = True
    auto_advance_waves: bool = True
    auto_review_fix: bool = True
    max_review_fix_cycles: _NonNegative = 3
    """Review → fix rounds before corral stops and asks; 0 = unlimited."""
    idle_nudge_s: _NonNegative = 120
    """Seconds a task's agent may sit idle at its prompt without having signalled before corral nudges it
    (once); as long again after the nudge and the task waits for a person; 0 = never nudge, wait at once."""
    notifications: bool = True
    """The dashboard's desktop notifications (notify-send, else the terminal's bell) when an agent starts
    waiting for a person, fails, or a task is done."""


class OrchestrationConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`[orchestration]`: how plans are carried out."""

    blueprint_skip_threshold: _NonNegative = 2
    """Plans with at most this many tasks go to one coder, with no architect pass or waves; 0 = never."""


class ResourcesConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`[resources]` as written: None means "not set", so an override of a preset can be told from the preset.

    `resolve_resources` turns this into the concrete `ResourceSettings` an agent is launched with.
    """

    profile: Literal["normal", "interactive", "custom"] = "normal"
    nice: Annotated[int, msgspec.Meta(ge=0, le=19)] | None = None
    ionice_class: str | None = None
    ionice_level: Annotated[int, msgspec.Meta(ge=0, le=7)] | None = None
    build_jobs: _NonNegative | None = None
    go_package_parallelism: _NonNegative | None = None
    gomaxprocs: _NonNegative | None = None
    max_parallel_wave_tasks: _NonNegative | None = None
    env: dict[str, str] = {}

    def explicit_keys(self) -> tuple[str, ...]:
        """The keys the file sets (env counts as one key, `env`, when non-empty), in schema order."""
        return tuple(
            name
            for name in _RESOURCE_KEYS
            if (getattr(self, name) if name != "env" else self.env or None) is not None
        )


_RESOURCE_KEYS: tuple[str, ...] = tuple(
    name for name in ResourcesConfig.__struct_fields__ if name != "profile"
)


class HarnessConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One `[harnesses.<name>]` table: a program described with the same keys as a built-in harness.

    Every key left out (None) comes from `extends`: by default the built-in of the same name when there is
    one — so `[harnesses.claude]` adjusts claude when its screens change — else the generic `custom`. The
    table's name is the program's name as detection sees it (see `harness_for_program`).
    """

    extends: str = ""
    description: str | None = None
    program: str | None = None
    skip_permissions_flags: tuple[str, ...] | None = None
    model_flag: str | None = None
    prompt_delivery: PromptDelivery | None = None
    prompt_flag: str | None = None
    long_prompt_chars: _NonNegative | None = None
    long_prompt_flag: str | None = None
    long_prompt_text: str | None = None
    start_screens: tuple[ScreenPrompt, ...] | None = None
    permission_patterns: tuple[ScreenPrompt, ...] | None = None
    question_patterns: tuple[ScreenPrompt, ...] | None = None
    ready_patterns: tuple[str, ...] | None = None
    working_patterns: tuple[str, ...] | None = None
    volatile_patterns: tuple[str, ...] | None = None
    ready_lines: _Positive | None = None
    scan_lines: _Positive | None = None
    enter_settle_s: _Seconds | None = None
    ready_settle_s: _Seconds | None = None
    start_timeout_s: _Seconds | None = None
    quiet_unknown_s: _Seconds | None = None
    sdk_quiet_s: _Seconds | None = None
    sdk: tuple[SdkLaunch, ...] | None = None
    resume_args: tuple[str, ...] | None = None
    continue_args: tuple[str, ...] | None = None
    session_id_args: tuple[str, ...] | None = None

    def base(self, name: str) -> Harness:
        """The harness this table's missing keys come from (`corral-sim` extends `sim`, its alias)."""
        detected = program_name(name)
        return BUILTIN_HARNESSES[self.extends or (detected if detected in BUILTIN_HARNESSES else "custom")]

    def resolve(self, name: str) -> Harness:
        """The harness this table describes; `program` defaults to the base's, or else to `name`."""
        base = self.base(name)
        given = {key: value for key in _HARNESS_KEYS if (value := getattr(self, key)) is not None}
        given.setdefault("program", base.program or (name if name != "custom" else ""))
        return msgspec.structs.replace(base, name=name, **given)


_HARNESS_KEYS: tuple[str, ...] = tuple(key for key in Harness.__struct_fields__ if key != "name")


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole `.corral/config.toml`; `Config()` is what a repository without one gets."""

    default_program: str = "claude"
    branch_prefix: str = "corral/"
    auto_yes: bool = False
    permissions: PermissionMode | None = None
    """How auto-yes answers permission prompts, for every role without its own; None: `allow_all`."""
    allow: tuple[str, ...] = ()
    """Regexes: a permission prompt whose line matches one is accepted, whatever `permissions` says."""
    agents: dict[str, AgentProfile] = {}
    phases: PhasesConfig = msgspec.field(default_factory=PhasesConfig)
    ui: UIConfig = msgspec.field(default_factory=UIConfig)
    orchestration: OrchestrationConfig = msgspec.field(default_factory=OrchestrationConfig)
    resources: ResourcesConfig = msgspec.field(default_factory=ResourcesConfig)
    harnesses: dict[str, HarnessConfig] = {}

    def profile_for_phase(self, phase: str) -> AgentProfile:
        """The profile that runs `phase`: phase → role → `[agents.<role>]`.

        Falls back to a bare profile running `default_program` when the phase is unknown or unmapped, or the
        role is missing, disabled or has an empty program, so a half-written config still runs every phase.
        """
        role = getattr(self.phases, phase) if phase in PHASES else ""
        profile = self.agents.get(role) if role else None
        if profile is None or not profile.enabled or not profile.program.strip():
            return AgentProfile(program=self.default_program)
        return profile

    def permission_policy(self, role: str) -> PermissionPolicy:
        """How auto-yes answers the permission prompts of an agent playing `role` ("" for none): each key of
        `[agents.<role>]` that is set, else the top-level one. Unset everywhere, `auto_yes = true` accepts
        every permission prompt, as it says it does; without auto-yes none is answered, whatever this says.
        """
        profile = self.agents.get(role) if role else None
        mode = profile.permissions if profile is not None and profile.permissions is not None else None
        allow = profile.allow if profile is not None and profile.allow is not None else self.allow
        return PermissionPolicy(mode=mode or self.permissions or "allow_all", allow=allow)

    def custom_harnesses(self) -> dict[str, Harness]:
        """The `[harnesses.<name>]` tables, resolved over their bases, by name."""
        return {name: table.resolve(name) for name, table in self.harnesses.items()}

    def harness_for(self, program: str) -> Harness:
        """The harness that runs `program`: a `[harnesses.<name>]` table, else a built-in, else custom."""
        return harness_for_program(program, self.custom_harnesses())


# --- resources --------------------------------------------------------------------------------------------

_IONICE_CLASSES: Mapping[str, int] = MappingProxyType({"none": 0, "best-effort": 2, "idle": 3})
"""ionice class names as written in the file → the numbers `ionice -c` takes; "" means no ionice."""


# Each takes a bare job count; MAKEFLAGS takes `-j<n>`.
_BUILD_JOBS_VARS = ("CARGO_BUILD_JOBS", "CMAKE_BUILD_PARALLEL_LEVEL", "BUNDLE_JOBS", "UV_CONCURRENT_BUILDS")


class ResourceSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Concrete resource controls for one launch: the profile's preset merged with the file's overrides.

    Zero and "" mean "do nothing": `ResourceSettings()` is the `normal` profile, a no-op. `env` keeps the
    order of `[resources.env]`.
    """

    profile: str = "normal"
    nice: int = 0
    ionice_class: str = ""
    ionice_level: int = 0
    build_jobs: int = 0
    go_package_parallelism: int = 0
    gomaxprocs: int = 0
    max_parallel_wave_tasks: int = 0
    """How many wave tasks run at once; 0 = all of them."""
    env: tuple[tuple[str, str], ...] = ()

    @property
    def active(self) -> bool:
        """Whether any control applies; frontends show the profile only then."""
        return self.profile != "normal"

    def build_env(self) -> dict[str, str]:
        """The build-parallelism hints for these settings; filled into an agent's env only where unset."""
        env: dict[str, str] = {}
        if self.build_jobs > 0:
            env["MAKEFLAGS"] = f"-j{self.build_jobs}"
            env.update(dict.fromkeys(_BUILD_JOBS_VARS, str(self.build_jobs)))
        if self.go_package_parallelism > 0:
            env["GOFLAGS"] = f"-p={self.go_package_parallelism}"
        if self.gomaxprocs > 0:
            env["GOMAXPROCS"] = str(self.gomaxprocs)
        return env


INTERACTIVE_PRESET = ResourceSettings(
    profile="interactive",
    nice=10,
    ionice_class="best-effort",
    ionice_level=7,
    build_jobs=1,
    go_package_parallelism=1,
    gomaxprocs=2,
    max_parallel_wave_tasks=1,
)
"""What `profile = "interactive"` applies before per-key overrides: agents yield to the desktop."""

_PRESETS: Mapping[str, ResourceSettings] = MappingProxyType(
    {
        "normal": ResourceSettings(),
        "interactive": INTERACTIVE_PRESET,
        "custom": ResourceSettings(profile="custom"),
    }
)


def resolve_resources(res: ResourcesConfig) -> ResourceSettings:
    """Merge `res` over its profile's preset; `res` must be as `parse_config` validated it.

    An ionice level only means something in the best-effort class, so it is dropped (0) when an override
    moves the preset to another class: `profile = "interactive"` with `ionice_class = "idle"` is valid.
    """
    preset = _PRESETS[res.profile]
    merged = {
        name: value if (value := getattr(res, name)) is not None else getattr(preset, name)
        for name in _RESOURCE_KEYS
        if name != "env"
    }
    if merged["ionice_class"] != "best-effort":
        merged["ionice_level"] = 0
    return msgspec.structs.replace(preset, **merged, env=tuple(res.env.items()))


def agent_environment(base_env: Mapping[str, str], settings: ResourceSettings) -> dict[str, str]:
    """The environment to launch an agent with.

    Build hints only fill keys `base_env` lacks, so a value from the user's shell or .envrc is respected;
    `[resources.env]` is applied last and always wins, which is how a user forces a value.
    """
    env = dict(base_env)
    for key, value in settings.build_env().items():
        env.setdefault(key, value)
    env.update(settings.env)
    return env


def wrapper_argv(settings: ResourceSettings, have_nice: bool, have_ionice: bool, is_linux: bool) -> list[str]:
    """The argv prefix that lowers an agent's priority, e.g. `["ionice", "-c", "2", "-n", "7", "nice", "-n",
    "10"]`; empty for the normal profile.

    The caller looks the binaries up (and warns once when one is missing). ionice only exists on Linux and
    its level only applies to best-effort. Wrapping the launch, rather than renicing afterwards, makes every
    compiler and test runner the agent starts inherit the priority.
    """
    argv: list[str] = []
    if is_linux and have_ionice and settings.ionice_class in _IONICE_CLASSES:
        argv += ["ionice", "-c", str(_IONICE_CLASSES[settings.ionice_class])]
        if settings.ionice_class == "best-effort":
            argv += ["-n", str(settings.ionice_level)]
    if have_nice and settings.nice > 0:
        argv += ["nice", "-n", str(settings.nice)]
    return argv


# --- loading ----------------------------------------------------------------------------------------------


MAX_CONFIG_BYTES = 1024 * 1024
"""A config file larger than this is refused: a real one is a few KiB."""

_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def load_config(repo_root: Path) -> Config:
    """Read `<repo_root>/.corral/config.toml`; a repository without one gets `Config()`.

    Only a regular file (a symlink to one is fine) of at most MAX_CONFIG_BYTES is read: a named pipe there
    would block the reader (the daemon's reload) until someone wrote to it, and a link to /dev/zero would be
    read until memory ran out. So the file is opened without blocking (`O_NONBLOCK`), and what was opened is
    checked with `fstat` before a byte is read, which no swap of the path in between can fool.
    """
    path = repo_root / CONFIG_PATH
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read the file: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        kind = next((name for test, name in _FILE_KINDS if test(info.st_mode)), "not a file")
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(
                str(path),
                "",
                f"cannot read the file: it is {kind}, and corral reads only a regular file here",
            )
        data = _read_at_most(fd, MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read the file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            str(path),
            "",
            f"cannot read the file: it is larger than {MAX_CONFIG_BYTES // 2**20} MiB, the limit",
        )
    return parse_config(data, str(path))


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    left = limit
    while left > 0 and (chunk := os.read(fd, min(left, 65536))):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def parse_config(data: bytes | str, path: str) -> Config:
    """Decode and validate a config file's contents; `path` is only used in error messages.

    Raises `ConfigError` (and nothing else) for any input: bad UTF-8, bad TOML, a wrong type, an unknown key
    or a rule below broken.
    """
    raw = _load_toml(data, path)
    _apply_aliases(raw)
    try:
        config = msgspec.convert(raw, type=Config)
    except msgspec.ValidationError as exc:
        key, reason = _explain(str(exc), raw)
        raise ConfigError(path, key, reason) from None
    for key, reason in _problems(config):
        raise ConfigError(path, key, reason)
    return config


def _load_toml(data: bytes | str, path: str) -> dict[str, Any]:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ConfigError(path, "", f"line {line}: the file is not valid UTF-8") from None
    try:
        return tomllib.loads(data.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", _toml_reason(str(exc))) from None
    except RecursionError:
        raise ConfigError(path, "", "invalid TOML: values are nested too deeply") from None
    except ValueError as exc:  # e.g. an integer longer than Python's digit limit
        raise ConfigError(path, "", f"invalid TOML: {exc}") from None


def _toml_reason(message: str) -> str:
    """tomllib says "Invalid value (at line 3, column 7)"; lead with the place, as compilers do."""
    if m := re.fullmatch(r"(?s)(.*?) \(at line (\d+), column (\d+)\)", message):
        return f"line {m[2]}, column {m[3]}: invalid TOML: {m[1]}"
    return f"invalid TOML: {message}"


def _apply_aliases(raw: dict[str, Any]) -> None:
    agents = raw.get("agents")
    if isinstance(agents, dict):
        for table in agents.values():
            if isinstance(table, dict) and isinstance(mode := table.get("execution_mode"), str):
                table["execution_mode"] = _EXECUTION_MODE_ALIASES.get(mode, mode)


def _problems(config: Config) -> Iterator[tuple[str, str]]:
    """The rules types cannot say, as (dotted key, reason), in schema order."""
    if not config.default_program.strip():
        yield "default_program", 'must name a program, e.g. "claude"'
    if _BAD_BRANCH_PREFIX.search(config.branch_prefix):
        yield (
            "branch_prefix",
            f"{_show(config.branch_prefix)} cannot begin a git branch name "
            "(no spaces, ~ ^ : ? * [ \\, .., @{, and no leading / or -)",
        )
    for role in config.agents:
        if not _ROLE_NAME.fullmatch(role):
            yield _dotted(("agents", role)), "a role name must match [a-z][a-z0-9_-]*"
    yield from _permission_problems(config)
    for phase in PHASES:
        role = getattr(config.phases, phase)
        if role and not _ROLE_NAME.fullmatch(role):
            yield f"phases.{phase}", f"{_show(role)} is not a role name (must match [a-z][a-z0-9_-]*)"
    yield from _resource_problems(config.resources)
    for name, table in config.harnesses.items():
        yield from _harness_problems(name, table)


def _permission_problems(config: Config) -> Iterator[tuple[str, str]]:
    """Bad `allow` regexes; and a policy set without auto-yes, which would quietly do nothing (only auto-yes
    answers a permission prompt)."""
    tables: list[tuple[tuple[str, ...], PermissionMode | None, tuple[str, ...] | None]] = [
        ((), config.permissions, config.allow)
    ]
    tables += [(("agents", role), p.permissions, p.allow) for role, p in config.agents.items()]
    for where, mode, allow in tables:
        for i, pattern in enumerate(allow or ()):
            if reason := _regex_problem(pattern):
                yield _dotted((*where, "allow", i)), reason
        if config.auto_yes:
            continue
        if mode not in (None, "ask"):
            yield (
                _dotted((*where, "permissions")),
                f"{_show(mode)} has no effect without auto_yes = true (only auto-yes answers permission "
                f'prompts); set auto_yes = true, or remove it (or set it to "ask")',
            )
        elif allow:
            yield (
                _dotted((*where, "allow")),
                "has no effect without auto_yes = true (only auto-yes answers permission prompts); set "
                "auto_yes = true, or remove it",
            )


def _resource_problems(res: ResourcesConfig) -> Iterator[tuple[str, str]]:
    if res.ionice_class == "realtime":
        yield (
            "resources.ionice_class",
            '"realtime" is not allowed: it can starve the rest of the system of disk I/O; '
            'use "best-effort" or "idle"',
        )
    elif res.ionice_class is not None and res.ionice_class not in ("", *_IONICE_CLASSES):
        yield (
            "resources.ionice_class",
            f'{_show(res.ionice_class)} is not one of "", "none", "best-effort", "idle"',
        )
    for key in res.env:
        where = _dotted(("resources", "env", key))
        if not _ENV_KEY.fullmatch(key):
            yield where, "an environment variable name must match ^[A-Za-z_][A-Za-z0-9_]*$"
        elif key in MANAGED_ENV_KEYS or key.startswith(_MANAGED_PREFIX):
            yield where, "corral sets CORRAL_* variables itself; they cannot be overridden"
    explicit = res.explicit_keys()
    if res.profile == "normal" and explicit:
        yield (
            f"resources.{explicit[0]}",
            'has no effect with profile = "normal"; set profile = "custom" (or "interactive") to apply it',
        )
    if res.profile == "custom" and not explicit:
        yield "resources.profile", f'"custom" needs at least one of: {", ".join(_RESOURCE_KEYS)}'
    if res.ionice_level:
        cls = res.ionice_class if res.ionice_class is not None else _PRESETS[res.profile].ionice_class
        if cls != "best-effort":
            yield (
                "resources.ionice_level",
                f'only applies to ionice_class = "best-effort" ({_class_here(cls)}); '
                "remove it or set it to 0",
            )


def _harness_problems(name: str, table: HarnessConfig) -> Iterator[tuple[str, str]]:
    def key(*path: Any) -> str:
        return _dotted(("harnesses", name, *path))

    if not _HARNESS_NAME.fullmatch(name):
        yield (
            key(),
            "a harness name must match [a-z0-9][a-z0-9._+-]*: it is the program's file name, lower-cased",
        )
        return
    if table.extends and table.extends not in BUILTIN_HARNESSES:
        names = ", ".join(f'"{n}"' for n in BUILTIN_HARNESSES)
        yield key("extends"), f"{_show(table.extends)} is not a built-in harness (one of: {names})"
        return
    for field in ("ready_patterns", "working_patterns", "volatile_patterns"):
        for i, pattern in enumerate(getattr(table, field) or ()):
            if reason := _regex_problem(pattern):
                yield key(field, i), reason
    for field in ("start_screens", "permission_patterns", "question_patterns"):
        for i, prompt in enumerate(getattr(table, field) or ()):
            if reason := _regex_problem(prompt.pattern):
                yield key(field, i, "pattern"), reason
    harness = table.resolve(name)
    if harness.prompt_delivery == "flag" and not harness.prompt_flag:
        yield key("prompt_flag"), 'must name the flag that carries the prompt when prompt_delivery = "flag"'
    if harness.long_prompt_chars and "{file}" not in harness.long_prompt_text:
        yield key("long_prompt_text"), "must contain {file}, where the prompt's file name goes"
    for field in ("resume_args", "session_id_args"):
        args = getattr(harness, field)
        if args and not any("{session}" in arg for arg in args):
            yield key(field), "must contain {session}, where the conversation's id goes"


def _regex_problem(pattern: str) -> str:
    try:
        re.compile(pattern)
    # Beyond re.error: absurdly nested or sized patterns.
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        return f"invalid regular expression {_show(pattern)}: {exc}"
    return ""


def _class_here(cls: str) -> str:
    return "ionice_class is not set" if not cls else f"ionice_class is {_show(cls)}"


# --- explaining msgspec's errors --------------------------------------------------------------------------

_ANY_KEY = object()  # msgspec writes a dict key as `[...]`; we find the real one in the raw table
_PATH_TOKEN = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\.\.\.|\d+)\]")
_MISSING = object()


def _explain(message: str, raw: dict[str, Any]) -> tuple[str, str]:
    """Turn "Expected `int` <= 19 - at `$.resources.nice`" into ("resources.nice", an actionable reason)."""
    tokens, reason = _locate(message, raw, Config)
    tp, value = _walk(tokens, raw)
    if m := re.fullmatch(r"Object contains unknown field `(.*)`", reason, re.S):
        known = ", ".join(f.encode_name for f in msgspec.structs.fields(tp)) if _is_struct(tp) else ""
        return _dotted((*tokens, m[1])), f"unknown key `{m[1]}` (known keys: {known})"
    if m := re.fullmatch(r"Invalid enum value (.*)", reason, re.S):
        allowed = ", ".join(_show(v) for v in typing.get_args(_unwrap(tp)))
        return _dotted(tokens), f"invalid value {_show(value)} (expected one of: {allowed})"
    reason = reason.replace(" | null", "").replace("`object`", "`table`")
    if reason.startswith("Expected") and ", got" not in reason and value is not _MISSING:
        reason += f", got {_show(value)}"
    return _dotted(tokens), reason


def _locate(message: str, raw: Any, tp: Any) -> tuple[list[Any], str]:
    """Split msgspec's message into its path tokens and reason, replacing each `[...]` with the real key."""
    reason, _, path = message.partition(" - at `")
    path = path.removesuffix("`")
    tokens: list[Any] = []
    for m in _PATH_TOKEN.finditer(path.removeprefix("$")):
        tokens.append(m[1] if m[1] else (_ANY_KEY if m[2] == "..." else int(m[2])))
    node, resolved = raw, []
    for token in tokens:
        if token is _ANY_KEY:
            value_tp = _child_type(tp, token)
            for key, value in node.items() if isinstance(node, dict) else ():
                try:
                    msgspec.convert(value, type=value_tp)
                except msgspec.ValidationError as inner:
                    sub_tokens, sub_reason = _locate(str(inner), value, value_tp)
                    return [*resolved, key, *sub_tokens], sub_reason
            break
        resolved.append(token)
        node, tp = _index(node, token), _child_type(tp, token)
    return resolved, reason


def _walk(tokens: list[Any], raw: Any) -> tuple[Any, Any]:
    """The declared type and the raw value at `tokens` (`_MISSING` when there is none)."""
    tp, node = Config, raw
    for token in tokens:
        tp, node = _child_type(tp, token), _index(node, token)
    return tp, node


def _index(node: Any, token: Any) -> Any:
    if isinstance(node, dict) and isinstance(token, str):
        return node.get(token, _MISSING)
    if isinstance(node, list) and isinstance(token, int) and token < len(node):
        return node[token]
    return _MISSING


def _unwrap(tp: Any) -> Any:
    """Strip `Annotated[...]` and `| None`, leaving the type a value must have."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, UnionType):
            rest = [a for a in typing.get_args(tp) if a is not NoneType]
            if len(rest) != 1:
                return tp
            tp = rest[0]
        else:
            return tp


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _child_type(tp: Any, token: Any) -> Any:
    tp = _unwrap(tp)
    if _is_struct(tp):
        return next((f.type for f in msgspec.structs.fields(tp) if f.encode_name == token), None)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is dict:
        return args[1]
    if origin in (list, tuple) and args:
        return args[0]
    return None


def _dotted(tokens: tuple[Any, ...] | list[Any]) -> str:
    """`("agents", "coder", "flags", 0)` → `agents.coder.flags[0]`; keys that are not bare keys are quoted."""
    out = ""
    for token in tokens:
        if isinstance(token, int):
            out += f"[{token}]"
        else:
            key = token if re.fullmatch(r"[A-Za-z0-9_-]+", token) else json.dumps(token)
            out += f".{key}" if out else key
    return out


def _show(value: Any) -> str:
    """A value as it would be written in TOML, for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


DEFAULT_CONFIG_TOML = """\
# corral configuration for this repository: .corral/config.toml
# Every key is optional; the values below are the defaults. See docs/config.md for the full reference.
# An unknown or misspelt key is an error, never silently ignored.

# The agent program used when a phase has no usable [agents.<role>] profile.
default_program = "claude"
# Prefix for the branches corral creates for its worktrees.
branch_prefix = "corral/"
# Answer the prompts corral detects in agents' sessions by itself: questions with yes, permission prompts
# as `permissions` says (unset: allow_all). Without auto_yes every prompt waits for a person.
auto_yes = false
# With auto_yes: "ask" (leave permission prompts to a person), "allow_all" or "deny_all"; a role's own
# `permissions` wins. Unset means "allow_all".
# permissions = "allow_all"
# allow = []                  # regexes: a permission prompt whose line matches one is always accepted

# One table per role. A role with an empty program or enabled = false falls back to default_program.
# [agents.coder]
# program = "claude"          # the harness to run
# model = ""                  # passed to the harness; "" = its default
# flags = []                  # extra command-line arguments
# execution_mode = "tmux"     # "tmux" | "pty" | "sdk" ("headless" is read as "sdk")
# skip_permissions = false    # start the harness with its permission prompts disabled
# enabled = true
# permissions = "ask"         # with auto_yes: this role's answer to permission prompts [the top-level one]
# allow = ['edit to src/']    # with auto_yes: prompts this role may always accept [the top-level allow]

# Which role runs each phase; "" = no mapping, use default_program.
[phases]
planning = "planner"
implementing = "coder"
quality_review = "reviewer"
fixer = "fixer"
readiness_review = "master"

[ui]
auto_readiness_review = true  # after an approved review, run the readiness review; false = done at once
auto_advance_waves = true     # start the next wave when one finishes
auto_review_fix = true        # send review findings to a fixer without asking
max_review_fix_cycles = 3     # review -> fix rounds before stopping to ask a person; 0 = unlimited
idle_nudge_s = 120            # an idle agent that has not signalled: nudged after this, then waits for you
notifications = true          # the dashboard's desktop notifications (notify-send, else the bell)

[orchestration]
blueprint_skip_threshold = 2  # plans with <= this many tasks go to one coder, no waves; 0 = never

# Run agents at lower CPU and I/O priority so they do not compete with the desktop.
# "normal" changes nothing; "interactive" applies the preset below; "custom" applies only the keys you set.
[resources]
profile = "normal"
# With profile = "interactive" or "custom", any of these may be set (interactive preset in brackets):
# nice = 10                       # 0-19, CPU niceness of agents and everything they start [10]
# ionice_class = "best-effort"    # "", "none", "best-effort" or "idle"; Linux only ["best-effort"]
# ionice_level = 7                # 0-7, only with ionice_class = "best-effort" [7]
# build_jobs = 1                  # MAKEFLAGS=-j<n>, CARGO_BUILD_JOBS, ... where unset; 0 = no hint [1]
# go_package_parallelism = 1      # GOFLAGS=-p=<n> where unset; 0 = no hint [1]
# gomaxprocs = 2                  # GOMAXPROCS=<n> where unset; 0 = no hint [2]
# max_parallel_wave_tasks = 1     # wave tasks running at once; 0 = unlimited [1]

# Variables set in every agent's environment; they always win over the calling environment.
# [resources.env]
# MAKEFLAGS = "-j2"

# Describe another agent program, or adjust a built-in one when its screens change (see docs/agents.md).
# A table takes every key a built-in harness has; the keys left out come from `extends` (by default the
# built-in of the same name, else "custom"). The name is the program's file name, as corral detects it.
# [harnesses.mybot]
# extends = "custom"                  # claude, codex, opencode, gemini, aider, amp, sim or custom
# program = "mybot"                   # run when a profile names no program
# prompt_delivery = "send"            # "argv", "flag" (with prompt_flag = "--prompt") or "send"
# ready_patterns = ['^mybot> ']       # regular expressions, one screen line each
# working_patterns = ['esc to cancel']
# [[harnesses.mybot.permission_patterns]]
# pattern = '^Allow this action'
# label = "permission"
# yes = ["y", "Enter"]
# no = ["n", "Enter"]
"""
"""A commented config documenting every key; parses to `Config()`. `corral setup` writes it."""
