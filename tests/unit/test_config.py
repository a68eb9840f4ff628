"""protocols.config: decoding `.corral/config.toml`, every validation rule, resources, env and argv."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import config as config_module
from protocols.config import (
    CONFIG_PATH,
    DEFAULT_CONFIG_TOML,
    INTERACTIVE_PRESET,
    MANAGED_ENV_KEYS,
    MAX_CONFIG_BYTES,
    PHASES,
    AgentProfile,
    Config,
    HarnessConfig,
    OrchestrationConfig,
    PhasesConfig,
    ResourcesConfig,
    ResourceSettings,
    UIConfig,
    agent_environment,
    load_config,
    parse_config,
    resolve_resources,
    wrapper_argv,
)
from protocols.errors import ConfigError
from protocols.harness import BUILTIN_HARNESSES, Harness, ScreenPrompt, SdkLaunch, get_harness, plan_launch
from protocols.status import PermissionPolicy, auto_answer

FILE = "cfg.toml"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def parse(text: str) -> Config:
    return parse_config(text, FILE)


def config_error(text: str | bytes) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, FILE)
    return info.value


def assert_error(text: str | bytes, key: str, reason: str) -> ConfigError:
    """The error names the file and the key, and its reason contains `reason`."""
    err = config_error(text)
    assert err.path == FILE
    assert err.key == key
    assert reason in err.reason
    assert str(err) == (f"{FILE}: {key}: {err.reason}" if key else f"{FILE}: {err.reason}")
    return err


# --- the public surface -------------------------------------------------------------------------------------


def test_public_names_are_pinned() -> None:
    assert sorted(config_module.__all__) == sorted(
        [
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
    )


def test_config_structs_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Config().default_program = "x"  # type: ignore[misc]


# --- valid files --------------------------------------------------------------------------------------------


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(tmp_path) == Config()


def test_load_config_reads_dot_corral_config_toml(tmp_path: Path) -> None:
    (tmp_path / ".corral").mkdir()
    (tmp_path / CONFIG_PATH).write_text('default_program = "corral-sim"\n')
    assert load_config(tmp_path).default_program == "corral-sim"


def test_unreadable_config_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / CONFIG_PATH).mkdir(parents=True)  # a directory where the file should be
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.path == str(tmp_path / CONFIG_PATH)
    assert "cannot read" in info.value.reason


def _load_in_a_thread(repo: Path, timeout: float = 10.0) -> ConfigError:
    """load_config(repo) on a thread of its own, which must end within `timeout`; its ConfigError."""
    outcome: list[BaseException | Config] = []

    def load() -> None:
        try:
            outcome.append(load_config(repo))
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(timeout)
    assert not reader.is_alive(), f"load_config blocked for more than {timeout:g} s"
    assert len(outcome) == 1 and isinstance(outcome[0], ConfigError), outcome
    return outcome[0]


def test_a_named_pipe_is_refused_at_once_without_waiting_for_a_writer(tmp_path: Path) -> None:
    (tmp_path / ".corral").mkdir()
    os.mkfifo(tmp_path / CONFIG_PATH)
    error = _load_in_a_thread(tmp_path)
    assert error.path == str(tmp_path / CONFIG_PATH)
    assert error.reason == (
        "cannot read the file: it is a named pipe (FIFO), and corral reads only a regular file here"
    )


def test_a_link_to_dev_zero_is_refused_without_reading_it(tmp_path: Path) -> None:
    (tmp_path / ".corral").mkdir()
    (tmp_path / CONFIG_PATH).symlink_to("/dev/zero")
    error = _load_in_a_thread(tmp_path)
    assert error.reason == (
        "cannot read the file: it is a character device, and corral reads only a regular file here"
    )


def test_a_link_to_a_regular_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".corral").mkdir()
    (tmp_path / "shared.toml").write_text('default_program = "corral-sim"\n')
    (tmp_path / CONFIG_PATH).symlink_to(tmp_path / "shared.toml")
    assert load_config(tmp_path).default_program == "corral-sim"


def test_a_file_over_the_size_cap_is_refused_naming_the_cap(tmp_path: Path) -> None:
    (tmp_path / ".corral").mkdir()
    (tmp_path / CONFIG_PATH).write_bytes(b"# " + b"x" * MAX_CONFIG_BYTES + b"\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.reason == "cannot read the file: it is larger than 1 MiB, the limit"
    (tmp_path / CONFIG_PATH).write_bytes(b"# " + b"x" * (MAX_CONFIG_BYTES - 4) + b"\n")  # just under: fine
    assert load_config(tmp_path) == Config()


def test_empty_file_gives_defaults() -> None:
    assert parse("") == Config()
    assert parse_config(b"", FILE) == Config()


def test_defaults() -> None:
    config = Config()
    assert (config.default_program, config.branch_prefix, config.auto_yes) == ("claude", "corral/", False)
    assert config.agents == {}
    assert config.phases == PhasesConfig(
        planning="planner",
        implementing="coder",
        quality_review="reviewer",
        fixer="fixer",
        readiness_review="master",
    )
    assert config.ui == UIConfig(
        auto_readiness_review=True,
        auto_advance_waves=True,
        auto_review_fix=True,
        max_review_fix_cycles=3,
        idle_nudge_s=120,
    )
    assert config.orchestration == OrchestrationConfig(blueprint_skip_threshold=2)
    assert config.resources == ResourcesConfig()
    assert resolve_resources(config.resources) == ResourceSettings()


def test_minimal_file_sets_program_and_keeps_other_defaults() -> None:
    config = parse('default_program = "corral-sim"\n[agents.coder]\nprogram = "corral-sim"\n')
    assert config.default_program == "corral-sim"
    assert config.agents == {"coder": AgentProfile(program="corral-sim")}
    assert config.agents["coder"].execution_mode == "tmux"
    assert config.agents["coder"].enabled
    assert config.ui == UIConfig()


FULL = """
default_program = "codex"
branch_prefix = "me/"
auto_yes = true

[agents.coder]
program = "claude"
model = "opus"
flags = ["--verbose", "--max-turns", "40"]
execution_mode = "pty"
skip_permissions = true
enabled = true

[agents.reviewer_2]
program = "codex"
execution_mode = "sdk"
enabled = false

[phases]
planning = "coder"
implementing = "coder"
quality_review = "reviewer_2"
fixer = ""
readiness_review = "coder"

[ui]
auto_readiness_review = false
auto_advance_waves = false
auto_review_fix = false
max_review_fix_cycles = 0

[orchestration]
blueprint_skip_threshold = 5

[resources]
profile = "custom"
nice = 5
ionice_class = "idle"
ionice_level = 0
build_jobs = 2
go_package_parallelism = 3
gomaxprocs = 4
max_parallel_wave_tasks = 0

[resources.env]
MAKEFLAGS = "-j2"
_private = ""
"""


def test_full_file_decodes_every_key() -> None:
    config = parse(FULL)
    assert config.default_program == "codex"
    assert config.branch_prefix == "me/"
    assert config.auto_yes is True
    assert config.agents["coder"] == AgentProfile(
        program="claude",
        model="opus",
        flags=("--verbose", "--max-turns", "40"),
        execution_mode="pty",
        skip_permissions=True,
        enabled=True,
    )
    assert config.agents["reviewer_2"] == AgentProfile(program="codex", execution_mode="sdk", enabled=False)
    assert config.phases == PhasesConfig(
        planning="coder",
        implementing="coder",
        quality_review="reviewer_2",
        fixer="",
        readiness_review="coder",
    )
    assert config.ui == UIConfig(
        auto_readiness_review=False,
        auto_advance_waves=False,
        auto_review_fix=False,
        max_review_fix_cycles=0,
        idle_nudge_s=120,
    )
    assert config.orchestration.blueprint_skip_threshold == 5
    assert config.resources == ResourcesConfig(
        profile="custom",
        nice=5,
        ionice_class="idle",
        ionice_level=0,
        build_jobs=2,
        go_package_parallelism=3,
        gomaxprocs=4,
        max_parallel_wave_tasks=0,
        env={"MAKEFLAGS": "-j2", "_private": ""},
    )


def test_flags_are_stored_as_a_tuple() -> None:
    assert parse(FULL).agents["coder"].flags == ("--verbose", "--max-turns", "40")


def test_headless_execution_mode_is_read_as_sdk() -> None:
    config = parse('[agents.coder]\nprogram = "x"\nexecution_mode = "headless"\n')
    assert config.agents["coder"].execution_mode == "sdk"


def test_utf8_byte_order_mark_is_accepted() -> None:
    assert parse_config('\ufeffdefault_program = "x"\n'.encode(), FILE).default_program == "x"


def test_unset_resource_keys_decode_as_none() -> None:
    res = parse('[resources]\nprofile = "interactive"\n').resources
    assert (res.nice, res.ionice_class, res.ionice_level, res.build_jobs) == (None, None, None, None)
    assert res.explicit_keys() == ()


# --- resource profiles --------------------------------------------------------------------------------------


def test_normal_profile_resolves_to_a_no_op() -> None:
    settings_ = resolve_resources(parse('[resources]\nprofile = "normal"\n').resources)
    assert settings_ == ResourceSettings()
    assert not settings_.active
    assert settings_.build_env() == {}
    assert wrapper_argv(settings_, have_nice=True, have_ionice=True, is_linux=True) == []


def test_interactive_profile_applies_the_whole_preset() -> None:
    settings_ = resolve_resources(parse('[resources]\nprofile = "interactive"\n').resources)
    assert settings_ == INTERACTIVE_PRESET
    assert settings_.active
    assert (settings_.nice, settings_.ionice_class, settings_.ionice_level) == (10, "best-effort", 7)
    assert (settings_.build_jobs, settings_.go_package_parallelism, settings_.gomaxprocs) == (1, 1, 2)
    assert settings_.max_parallel_wave_tasks == 1


def test_interactive_overrides_replace_only_the_keys_they_name() -> None:
    text = '[resources]\nprofile = "interactive"\ngomaxprocs = 4\nmax_parallel_wave_tasks = 2\n'
    settings_ = resolve_resources(parse(text).resources)
    assert settings_ == msgspec.structs.replace(INTERACTIVE_PRESET, gomaxprocs=4, max_parallel_wave_tasks=2)


def test_interactive_override_to_zero_is_kept_not_replaced_by_the_preset() -> None:
    text = '[resources]\nprofile = "interactive"\nmax_parallel_wave_tasks = 0\nnice = 0\n'
    settings_ = resolve_resources(parse(text).resources)
    assert settings_.max_parallel_wave_tasks == 0  # unlimited
    assert settings_.nice == 0
    assert settings_.gomaxprocs == 2


def test_interactive_with_another_ionice_class_drops_the_preset_level() -> None:
    settings_ = resolve_resources(
        parse('[resources]\nprofile = "interactive"\nionice_class = "idle"\n').resources
    )
    assert (settings_.ionice_class, settings_.ionice_level) == ("idle", 0)


def test_custom_profile_applies_only_the_keys_set() -> None:
    settings_ = resolve_resources(parse('[resources]\nprofile = "custom"\nnice = 7\n').resources)
    assert settings_ == ResourceSettings(profile="custom", nice=7)
    assert settings_.active


def test_custom_profile_with_only_env_is_valid() -> None:
    settings_ = resolve_resources(
        parse('[resources]\nprofile = "custom"\n[resources.env]\nA = "1"\n').resources
    )
    assert settings_ == ResourceSettings(profile="custom", env=(("A", "1"),))


def test_interactive_explicit_best_effort_level_is_kept() -> None:
    settings_ = resolve_resources(parse('[resources]\nprofile = "interactive"\nionice_level = 4\n').resources)
    assert (settings_.ionice_class, settings_.ionice_level) == ("best-effort", 4)


# --- validation: every rule is a ConfigError naming file, key and reason ------------------------------------

RESOURCE_INTS = ["build_jobs", "go_package_parallelism", "gomaxprocs", "max_parallel_wave_tasks"]


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ('[resources]\nprofile = "custom"\nnice = 20\n', "resources.nice", "Expected `int` <= 19, got 20"),
        ('[resources]\nprofile = "custom"\nnice = -1\n', "resources.nice", "Expected `int` >= 0, got -1"),
        ('[resources]\nprofile = "custom"\nnice = "low"\n', "resources.nice", "Expected `int`, got `str`"),
        ('[resources]\nprofile = "custom"\nnice = 1.5\n', "resources.nice", "Expected `int`, got `float`"),
        ('[resources]\nprofile = "custom"\nionice_level = 8\n', "resources.ionice_level", "<= 7"),
        ('[resources]\nprofile = "custom"\nionice_class = 2\n', "resources.ionice_class", "Expected `str`"),
        ('[resources]\nprofile = "fast"\n', "resources.profile", 'invalid value "fast"'),
        *[
            (f'[resources]\nprofile = "custom"\n{key} = -1\n', f"resources.{key}", "Expected `int` >= 0")
            for key in RESOURCE_INTS
        ],
        ("[ui]\nmax_review_fix_cycles = -1\n", "ui.max_review_fix_cycles", "Expected `int` >= 0, got -1"),
        ('[ui]\nauto_advance_waves = "yes"\n', "ui.auto_advance_waves", "Expected `bool`, got `str`"),
        (
            "[orchestration]\nblueprint_skip_threshold = -2\n",
            "orchestration.blueprint_skip_threshold",
            "Expected `int` >= 0",
        ),
        ("auto_yes = 1\n", "auto_yes", "Expected `bool`, got `int`"),
        ("default_program = 3\n", "default_program", "Expected `str`, got `int`"),
        ('default_program = ""\n', "default_program", "must name a program"),
        ('default_program = "  "\n', "default_program", "must name a program"),
        ('branch_prefix = "my work/"\n', "branch_prefix", "cannot begin a git branch name"),
        ('branch_prefix = "a..b/"\n', "branch_prefix", "cannot begin a git branch name"),
        ('branch_prefix = "-x/"\n', "branch_prefix", "cannot begin a git branch name"),
        ("ui = 3\n", "ui", "Expected `table`, got `int`"),
        ("[[agents]]\nprogram = 'x'\n", "agents", "Expected `table`, got `array`"),
        ("agents = { coder = 1 }\n", "agents.coder", "Expected `table`, got `int`"),
        ("[agents.coder]\nflags = '--x'\n", "agents.coder.flags", "Expected `array`, got `str`"),
        ("[agents.coder]\nflags = ['--x', 2]\n", "agents.coder.flags[1]", "Expected `str`, got `int`"),
        (
            '[agents.coder]\nexecution_mode = "docker"\n',
            "agents.coder.execution_mode",
            'invalid value "docker" (expected one of: "tmux", "pty", "sdk")',
        ),
        ('[agents.coder]\nenabled = "no"\n', "agents.coder.enabled", "Expected `bool`, got `str`"),
        ('[agents.Coder]\nprogram = "x"\n', "agents.Coder", "role name must match [a-z][a-z0-9_-]*"),
        ('[agents.1st]\nprogram = "x"\n', "agents.1st", "role name must match"),
        ('[agents."a b"]\nprogram = "x"\n', 'agents."a b"', "role name must match"),
        ('[phases]\nplanning = "Planner!"\n', "phases.planning", '"Planner!" is not a role name'),
        ("[phases]\nplanning = 1\n", "phases.planning", "Expected `str`, got `int`"),
    ],
)
def test_invalid_value_is_reported_with_file_key_and_reason(text: str, key: str, reason: str) -> None:
    assert_error(text, key, reason)


# --- the permission policy ----------------------------------------------------------------------------------


def test_auto_yes_alone_accepts_every_permission_prompt_as_the_docs_say() -> None:
    config = parse("auto_yes = true\n")
    assert config.permission_policy("") == PermissionPolicy(mode="allow_all")
    assert config.permission_policy("coder") == PermissionPolicy(mode="allow_all")
    harness = get_harness("sim")
    screen = "Do you want to make this edit to a.txt?\n  1. Yes\n  3. No, and tell Claude what to do\n"
    assert auto_answer(harness, screen, config.auto_yes, config.permission_policy("coder")) == ("1",)


def test_a_roles_permission_keys_win_each_over_the_top_level_one() -> None:
    config = parse(
        "auto_yes = true\n"
        'permissions = "deny_all"\n'
        "allow = ['edit to docs/']\n"
        '[agents.coder]\npermissions = "ask"\n'
        "[agents.reviewer]\nallow = ['^Bash command: git ']\n"
        "[agents.fixer]\nallow = []\n"
    )
    assert config.permission_policy("coder") == PermissionPolicy(mode="ask", allow=("edit to docs/",))
    assert config.permission_policy("reviewer") == PermissionPolicy(
        mode="deny_all", allow=("^Bash command: git ",)
    )
    assert config.permission_policy("fixer") == PermissionPolicy(mode="deny_all")
    assert config.permission_policy("planner") == PermissionPolicy(mode="deny_all", allow=("edit to docs/",))
    assert config.permission_policy("") == config.permission_policy("planner")


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (
            'auto_yes = true\npermissions = "yes"\n',
            "permissions",
            'invalid value "yes" (expected one of: "ask", "allow_all", "deny_all")',
        ),
        (
            'auto_yes = true\n[agents.coder]\npermissions = "always"\n',
            "agents.coder.permissions",
            'invalid value "always"',
        ),
        ("auto_yes = true\nallow = 'x'\n", "allow", "Expected `array`, got `str`"),
        ("auto_yes = true\nallow = ['(unclosed']\n", "allow[0]", "invalid regular expression"),
        (
            "auto_yes = true\n[agents.coder]\nallow = ['ok', '[z-a]']\n",
            "agents.coder.allow[1]",
            "invalid regular expression",
        ),
        ('permissions = "allow_all"\n', "permissions", "has no effect without auto_yes = true"),
        (
            '[agents.coder]\npermissions = "deny_all"\n',
            "agents.coder.permissions",
            "has no effect without auto_yes = true",
        ),
        ("allow = ['edit']\n", "allow", "has no effect without auto_yes = true"),
        ("[agents.coder]\nallow = ['edit']\n", "agents.coder.allow", "has no effect without auto_yes"),
    ],
)
def test_a_bad_permission_key_is_a_config_error_naming_it(text: str, key: str, reason: str) -> None:
    assert_error(text, key, reason)


def test_ask_without_auto_yes_is_allowed_it_is_what_happens_anyway() -> None:
    config = parse('permissions = "ask"\n[agents.coder]\npermissions = "ask"\nallow = []\n')
    assert config.permission_policy("coder") == PermissionPolicy(mode="ask")


def test_type_error_inside_a_later_role_names_that_role() -> None:
    text = '[agents.coder]\nprogram = "x"\n[agents.reviewer]\nmodel = 5\n'
    assert_error(text, "agents.reviewer.model", "Expected `str`, got `int`")


def test_realtime_ionice_class_is_rejected_with_a_reason() -> None:
    err = assert_error(
        '[resources]\nprofile = "custom"\nionice_class = "realtime"\n', "resources.ionice_class", "realtime"
    )
    assert "starve" in err.reason
    assert '"best-effort" or "idle"' in err.reason


def test_unknown_ionice_class_lists_the_valid_ones() -> None:
    assert_error(
        '[resources]\nprofile = "custom"\nionice_class = "fast"\n',
        "resources.ionice_class",
        '"fast" is not one of "", "none", "best-effort", "idle"',
    )


@pytest.mark.parametrize(
    ("text", "class_here"),
    [
        ('[resources]\nprofile = "custom"\nionice_level = 3\n', "ionice_class is not set"),
        (
            '[resources]\nprofile = "custom"\nionice_class = "idle"\nionice_level = 3\n',
            'ionice_class is "idle"',
        ),
        ('[resources]\nprofile = "interactive"\nionice_class = "none"\nionice_level = 7\n', '"none"'),
    ],
)
def test_nonzero_ionice_level_outside_best_effort_is_an_error(text: str, class_here: str) -> None:
    err = assert_error(text, "resources.ionice_level", 'only applies to ionice_class = "best-effort"')
    assert class_here in err.reason


def test_zero_ionice_level_with_another_class_is_valid() -> None:
    parse('[resources]\nprofile = "custom"\nionice_class = "idle"\nionice_level = 0\n')


@pytest.mark.parametrize("key", ["nice", "ionice_class", "ionice_level", *RESOURCE_INTS])
def test_resource_key_with_normal_profile_is_an_error_not_silently_ignored(key: str) -> None:
    value = '"idle"' if key == "ionice_class" else "1"
    err = assert_error(f"[resources]\n{key} = {value}\n", f"resources.{key}", 'profile = "normal"')
    assert 'profile = "custom"' in err.reason
    assert '"interactive"' in err.reason


def test_env_with_normal_profile_is_an_error() -> None:
    assert_error('[resources.env]\nFOO = "1"\n', "resources.env", 'profile = "normal"')


def test_custom_profile_without_any_key_is_an_error() -> None:
    err = assert_error('[resources]\nprofile = "custom"\n', "resources.profile", "needs at least one of")
    assert "nice" in err.reason


@pytest.mark.parametrize("name", sorted(MANAGED_ENV_KEYS))
def test_env_cannot_override_corral_managed_variables(name: str) -> None:
    text = f'[resources]\nprofile = "custom"\n[resources.env]\n{name} = "x"\n'
    assert_error(text, f"resources.env.{name}", "cannot be overridden")


def test_env_cannot_set_any_corral_prefixed_variable() -> None:
    text = '[resources]\nprofile = "custom"\n[resources.env]\nCORRAL_HOME = "/tmp"\n'
    assert_error(text, "resources.env.CORRAL_HOME", "CORRAL_*")


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("1ABC", "resources.env.1ABC"),
        ("A-B", "resources.env.A-B"),
        ("A B", 'resources.env."A B"'),
        ("", 'resources.env.""'),
    ],
)
def test_env_key_must_be_a_variable_name(name: str, key: str) -> None:
    text = f'[resources]\nprofile = "custom"\n[resources.env]\n{json.dumps(name)} = "x"\n'
    assert_error(text, key, "^[A-Za-z_][A-Za-z0-9_]*$")


def test_env_value_must_be_a_string() -> None:
    text = '[resources]\nprofile = "custom"\n[resources.env]\nGOOD = "1"\nJOBS = 4\n'
    assert_error(text, "resources.env.JOBS", "Expected `str`, got `int`")


# --- unknown keys -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "table"),
    [
        ("colour = 1\n", "colour", Config),
        ('[agents.coder]\nprogram = "x"\ntemperature = 0.2\n', "agents.coder.temperature", AgentProfile),
        ('[phases]\nelaborating = "architect"\n', "phases.elaborating", PhasesConfig),
        ("[ui]\nanimate_banner = true\n", "ui.animate_banner", UIConfig),
        ("[orchestration]\nplanners = []\n", "orchestration.planners", OrchestrationConfig),
        ('[resources]\nprofile = "custom"\nnicenes = 3\n', "resources.nicenes", ResourcesConfig),
        ("[telemetry]\nenabled = true\n", "telemetry", Config),
        ("[harnesses.bot]\nready_pattern = []\n", "harnesses.bot.ready_pattern", HarnessConfig),
        (
            "[[harnesses.bot.start_screens]]\npatern = 'x'\n",
            "harnesses.bot.start_screens[0].patern",
            ScreenPrompt,
        ),
        ("[[harnesses.bot.sdk]]\ntransport = 'codex'\nargv = []\n", "harnesses.bot.sdk[0].argv", SdkLaunch),
    ],
)
def test_unknown_key_is_reported_with_the_known_keys_of_its_table(text: str, key: str, table: type) -> None:
    name = key.rsplit(".", 1)[-1]
    known = ", ".join(field.encode_name for field in msgspec.structs.fields(table))
    assert_error(text, key, f"unknown key `{name}` (known keys: {known})")


def test_unknown_phase_lists_the_phases() -> None:
    err = config_error('[phases]\nelaborating = "architect"\n')
    assert all(phase in err.reason for phase in PHASES)


# --- bytes that are not TOML --------------------------------------------------------------------------------


def test_toml_syntax_error_gives_line_and_column() -> None:
    err = assert_error('default_program = "x"\n\n[ui\n', "", "line 3, column")
    assert "invalid TOML" in err.reason


def test_duplicate_key_is_a_toml_error_with_its_line() -> None:
    assert_error("auto_yes = true\nauto_yes = false\n", "", "line 2")


def test_invalid_utf8_is_a_config_error_with_its_line() -> None:
    assert_error(
        b'default_program = "x"\nbranch_prefix = "\xff"\n', "", "line 2: the file is not valid UTF-8"
    )


def test_deeply_nested_value_is_a_config_error() -> None:
    assert_error("x = " + "[" * 5000 + "]" * 5000 + "\n", "", "nested too deeply")


def test_integer_beyond_pythons_digit_limit_is_a_config_error() -> None:
    assert_error("[ui]\nmax_review_fix_cycles = " + "9" * 5000 + "\n", "", "invalid TOML")


# --- build env injection ------------------------------------------------------------------------------------


def test_build_env_of_the_interactive_preset() -> None:
    assert INTERACTIVE_PRESET.build_env() == {
        "MAKEFLAGS": "-j1",
        "CARGO_BUILD_JOBS": "1",
        "CMAKE_BUILD_PARALLEL_LEVEL": "1",
        "BUNDLE_JOBS": "1",
        "UV_CONCURRENT_BUILDS": "1",
        "GOFLAGS": "-p=1",
        "GOMAXPROCS": "2",
    }


def test_build_env_sets_each_hint_only_when_its_key_is_positive() -> None:
    assert ResourceSettings(build_jobs=3).build_env() == {
        "MAKEFLAGS": "-j3",
        "CARGO_BUILD_JOBS": "3",
        "CMAKE_BUILD_PARALLEL_LEVEL": "3",
        "BUNDLE_JOBS": "3",
        "UV_CONCURRENT_BUILDS": "3",
    }
    assert ResourceSettings(go_package_parallelism=2).build_env() == {"GOFLAGS": "-p=2"}
    assert ResourceSettings(gomaxprocs=4).build_env() == {"GOMAXPROCS": "4"}
    assert ResourceSettings(nice=10).build_env() == {}


def test_env_injection_fills_only_unset_keys() -> None:
    base = {"PATH": "/bin", "MAKEFLAGS": "-j8", "GOMAXPROCS": ""}
    env = agent_environment(base, INTERACTIVE_PRESET)
    assert env["MAKEFLAGS"] == "-j8"
    assert env["GOMAXPROCS"] == ""  # set, though empty: respected
    assert env["CARGO_BUILD_JOBS"] == "1"
    assert env["GOFLAGS"] == "-p=1"
    assert env["PATH"] == "/bin"


def test_resources_env_always_wins() -> None:
    text = '[resources]\nprofile = "interactive"\n[resources.env]\nMAKEFLAGS = "-j2"\nEXTRA = "yes"\n'
    settings_ = resolve_resources(parse(text).resources)
    env = agent_environment({"MAKEFLAGS": "-j8"}, settings_)
    assert env["MAKEFLAGS"] == "-j2"
    assert env["EXTRA"] == "yes"
    assert env["CARGO_BUILD_JOBS"] == "1"


def test_env_injection_leaves_the_base_environment_untouched() -> None:
    base = {"PATH": "/bin"}
    agent_environment(base, INTERACTIVE_PRESET)
    assert base == {"PATH": "/bin"}


def test_normal_profile_injects_nothing() -> None:
    assert agent_environment({"PATH": "/bin"}, ResourceSettings()) == {"PATH": "/bin"}


env_names = st.sampled_from(["MAKEFLAGS", "GOFLAGS", "GOMAXPROCS", "CARGO_BUILD_JOBS", "PATH", "A", "B"])


@settings(max_examples=100, deadline=None)
@given(
    base=st.dictionaries(env_names, st.text(max_size=5)),
    forced=st.dictionaries(env_names, st.text(max_size=5)),
    jobs=st.integers(0, 4),
    procs=st.integers(0, 4),
)
def test_env_injection_precedence_holds_for_any_environment(
    base: dict[str, str], forced: dict[str, str], jobs: int, procs: int
) -> None:
    settings_ = ResourceSettings(
        profile="custom", build_jobs=jobs, gomaxprocs=procs, env=tuple(forced.items())
    )
    env = agent_environment(base, settings_)
    for key, value in forced.items():
        assert env[key] == value
    for key, value in base.items():
        if key not in forced:
            assert env[key] == value
    for key, value in settings_.build_env().items():
        if key not in forced and key not in base:
            assert env[key] == value
    assert set(env) == set(base) | set(forced) | set(settings_.build_env())


# --- process wrapper ----------------------------------------------------------------------------------------


def test_wrapper_argv_for_the_interactive_preset_on_linux() -> None:
    argv = wrapper_argv(INTERACTIVE_PRESET, have_nice=True, have_ionice=True, is_linux=True)
    assert argv == ["ionice", "-c", "2", "-n", "7", "nice", "-n", "10"]


def test_wrapper_argv_skips_ionice_off_linux() -> None:
    assert wrapper_argv(INTERACTIVE_PRESET, have_nice=True, have_ionice=True, is_linux=False) == [
        "nice",
        "-n",
        "10",
    ]


def test_wrapper_argv_skips_a_missing_binary() -> None:
    assert wrapper_argv(INTERACTIVE_PRESET, have_nice=True, have_ionice=False, is_linux=True) == [
        "nice",
        "-n",
        "10",
    ]
    assert wrapper_argv(INTERACTIVE_PRESET, have_nice=False, have_ionice=True, is_linux=True) == [
        "ionice",
        "-c",
        "2",
        "-n",
        "7",
    ]
    assert wrapper_argv(INTERACTIVE_PRESET, have_nice=False, have_ionice=False, is_linux=True) == []


@pytest.mark.parametrize(
    ("ionice_class", "expected"),
    [("idle", ["ionice", "-c", "3"]), ("none", ["ionice", "-c", "0"]), ("", [])],
)
def test_wrapper_argv_maps_ionice_classes_and_gives_a_level_only_to_best_effort(
    ionice_class: str, expected: list[str]
) -> None:
    settings_ = ResourceSettings(profile="custom", ionice_class=ionice_class)
    assert wrapper_argv(settings_, have_nice=True, have_ionice=True, is_linux=True) == expected


def test_wrapper_argv_omits_nice_zero() -> None:
    settings_ = resolve_resources(parse('[resources]\nprofile = "interactive"\nnice = 0\n').resources)
    assert wrapper_argv(settings_, have_nice=True, have_ionice=True, is_linux=True) == [
        "ionice",
        "-c",
        "2",
        "-n",
        "7",
    ]


# --- profile resolution -------------------------------------------------------------------------------------

PROFILES = """
default_program = "corral-sim"
[agents.coder]
program = "claude"
model = "opus"
[agents.reviewer]
program = "codex"
enabled = false
[agents.planner]
program = ""
[phases]
fixer = ""
readiness_review = "nobody"
"""


def test_phase_resolves_to_its_roles_profile() -> None:
    assert parse(PROFILES).profile_for_phase("implementing") == AgentProfile(program="claude", model="opus")


@pytest.mark.parametrize(
    ("phase", "why"),
    [
        ("quality_review", "role disabled"),
        ("planning", "role has an empty program"),
        ("fixer", "phase has no mapping"),
        ("readiness_review", "role missing"),
        ("elaborating", "not a phase"),
    ],
)
def test_phase_falls_back_to_default_program(phase: str, why: str) -> None:
    assert parse(PROFILES).profile_for_phase(phase) == AgentProfile(program="corral-sim"), why


def test_defaults_resolve_every_phase_to_default_program() -> None:
    for phase in PHASES:
        assert Config().profile_for_phase(phase) == AgentProfile(program="claude")


# --- [harnesses.<name>] -------------------------------------------------------------------------------------

MYBOT = """
[agents.coder]
program = "mybot --fast"

[harnesses.mybot]
program = "/opt/mybot/bin/mybot"
prompt_delivery = "flag"
prompt_flag = "--task"
skip_permissions_flags = ["--trust-me"]
ready_patterns = ['^mybot> ']
working_patterns = ['thinking']

[[harnesses.mybot.permission_patterns]]
pattern = 'Allow (.+)\\?'
label = "permission"
yes = ["a", "Enter"]
no = ["d", "Enter"]
"""


def test_a_harness_table_has_the_keys_of_a_harness() -> None:
    assert set(HarnessConfig.__struct_fields__) == (set(Harness.__struct_fields__) - {"name"}) | {"extends"}


def test_a_custom_harness_is_configured_with_the_fields_of_a_built_in() -> None:
    config = parse(MYBOT)
    profile = config.profile_for_phase("implementing")
    harness = config.harness_for(profile.program)
    custom = get_harness("custom")
    assert harness == msgspec.structs.replace(
        custom,
        name="mybot",
        program="/opt/mybot/bin/mybot",
        prompt_delivery="flag",
        prompt_flag="--task",
        skip_permissions_flags=("--trust-me",),
        ready_patterns=("^mybot> ",),
        working_patterns=("thinking",),
        permission_patterns=(
            ScreenPrompt(pattern=r"Allow (.+)\?", label="permission", yes=("a", "Enter"), no=("d", "Enter")),
        ),
    )
    launch = plan_launch(harness, program=profile.program, skip_permissions=True, prompt="go")
    assert launch.argv == ("mybot", "--fast", "--trust-me", "--task", "go")
    policy = PermissionPolicy(mode="allow_all")
    assert auto_answer(harness, "Allow rm -rf build?\n", True, policy) == ("a", "Enter")


def test_a_custom_harness_is_found_by_its_programs_name_too() -> None:
    config = parse(MYBOT)
    assert config.harness_for("/opt/mybot/bin/mybot").name == "mybot"
    assert config.harness_for("mybot").name == "mybot"
    assert config.harness_for("claude").name == "claude"
    assert config.harness_for("other").name == "custom"


def test_a_table_named_like_a_built_in_adjusts_it() -> None:
    config = parse("[harnesses.claude]\nready_patterns = ['^READY$']\nenter_settle_s = 0.6\n")
    harness = config.harness_for("claude --verbose")
    assert harness == msgspec.structs.replace(
        get_harness("claude"), ready_patterns=("^READY$",), enter_settle_s=0.6
    )


def test_extends_names_the_built_in_a_table_starts_from() -> None:
    config = parse('[harnesses.claude-nightly]\nextends = "claude"\nprogram = "/opt/cn/claude-nightly"\n')
    harness = config.harness_for("claude-nightly")
    assert harness == msgspec.structs.replace(
        get_harness("claude"), name="claude-nightly", program="/opt/cn/claude-nightly"
    )


def test_a_custom_harness_program_defaults_to_its_name() -> None:
    assert parse("[harnesses.mybot]\n").custom_harnesses()["mybot"].program == "mybot"


def test_a_table_named_after_an_alias_adjusts_that_built_in() -> None:
    harness = parse("[harnesses.corral-sim]\nenter_settle_s = 0.1\n").harness_for("corral-sim --fast")
    assert harness == msgspec.structs.replace(get_harness("sim"), name="corral-sim", enter_settle_s=0.1)


def test_a_custom_table_adjusts_what_unknown_programs_get() -> None:
    config = parse("[harnesses.custom]\nquiet_unknown_s = 30.0\n")
    harness = config.harness_for("some-agent")
    assert harness == msgspec.structs.replace(get_harness("custom"), quiet_unknown_s=30.0)
    assert config.harness_for("codex").name == "codex"


def test_no_harness_tables_means_no_custom_harnesses() -> None:
    assert Config().custom_harnesses() == {}
    assert Config().harness_for("aider").name == "aider"


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ('[harnesses."My Bot"]\n', 'harnesses."My Bot"', "a harness name must match [a-z0-9][a-z0-9._+-]*"),
        (
            '[harnesses.bot]\nextends = "cursor"\n',
            "harnesses.bot.extends",
            '"cursor" is not a built-in harness',
        ),
        (
            "[harnesses.bot]\nready_patterns = ['ok', '(unclosed']\n",
            "harnesses.bot.ready_patterns[1]",
            "invalid regular",
        ),
        (
            "[harnesses.bot]\nvolatile_patterns = ['*']\n",
            "harnesses.bot.volatile_patterns[0]",
            "invalid regular",
        ),
        (
            "[[harnesses.bot.question_patterns]]\npattern = '['\n",
            "harnesses.bot.question_patterns[0].pattern",
            "invalid regular expression",
        ),
        (
            '[harnesses.bot]\nprompt_delivery = "flag"\n',
            "harnesses.bot.prompt_flag",
            'must name the flag that carries the prompt when prompt_delivery = "flag"',
        ),
        (
            '[harnesses.bot]\nlong_prompt_chars = 100\nlong_prompt_text = "see the file"\n',
            "harnesses.bot.long_prompt_text",
            "must contain {file}",
        ),
        (
            '[harnesses.bot]\nresume_args = ["--resume"]\n',
            "harnesses.bot.resume_args",
            "must contain {session}",
        ),
        (
            '[harnesses.bot]\nprompt_delivery = "stdin"\n',
            "harnesses.bot.prompt_delivery",
            'invalid value "stdin" (expected one of: "argv", "flag", "send")',
        ),
        ("[harnesses.bot]\nready_lines = 0\n", "harnesses.bot.ready_lines", "Expected `int` >= 1, got 0"),
        ("[harnesses.bot]\nenter_settle_s = -1\n", "harnesses.bot.enter_settle_s", ">= 0"),
        (
            "[[harnesses.bot.sdk]]\ntransport = 'grpc'\n",
            "harnesses.bot.sdk[0].transport",
            'invalid value "grpc" (expected one of: "claude", "codex")',
        ),
        (
            "[harnesses.bot]\nskip_permissions_flags = '--yolo'\n",
            "harnesses.bot.skip_permissions_flags",
            "array",
        ),
    ],
)
def test_a_bad_harness_table_is_reported_with_its_key(text: str, key: str, reason: str) -> None:
    assert_error(text, key, reason)


def test_an_unknown_extends_lists_the_built_ins() -> None:
    err = config_error('[harnesses.bot]\nextends = "cursor"\n')
    assert all(f'"{name}"' in err.reason for name in BUILTIN_HARNESSES)


# --- the default config file and the docs -------------------------------------------------------------------

ALL_TABLES = (Config, AgentProfile, PhasesConfig, UIConfig, OrchestrationConfig, ResourcesConfig)
HARNESS_TABLES = (HarnessConfig, ScreenPrompt, SdkLaunch)


def test_default_config_toml_parses_to_the_defaults() -> None:
    assert parse(DEFAULT_CONFIG_TOML) == Config()


@pytest.mark.parametrize("table", ALL_TABLES)
def test_default_config_toml_mentions_every_key(table: type) -> None:
    for name in table.__struct_fields__:
        assert name in DEFAULT_CONFIG_TOML


@pytest.mark.parametrize("table", ALL_TABLES + HARNESS_TABLES)
def test_docs_describe_every_key(table: type) -> None:
    docs = DOCS.read_text()
    for name in table.__struct_fields__:
        assert f"`{name}`" in docs or f"`[{name}" in docs, name  # a key, or a table such as `[agents.<role>]`


def test_every_toml_example_in_the_docs_is_a_valid_config() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", DOCS.read_text(), re.S)
    assert len(blocks) >= 3
    for block in blocks:
        parse(block)


def test_docs_interactive_preset_table_matches_the_code() -> None:
    docs = DOCS.read_text()
    for name in (
        "nice",
        "ionice_level",
        "build_jobs",
        "go_package_parallelism",
        "gomaxprocs",
        "max_parallel_wave_tasks",
    ):
        assert f"| `{name}` | {getattr(INTERACTIVE_PRESET, name)} |" in docs, name
    assert '| `ionice_class` | "best-effort" |' in docs


# --- fuzzing: any input is a Config or a ConfigError --------------------------------------------------------

KNOWN_NAMES = sorted(
    {name for table in ALL_TABLES + HARNESS_TABLES for name in table.__struct_fields__}
    | {"coder", "reviewer", "Coder", "MAKEFLAGS", "CORRAL_TASK", "normal", "interactive", "custom"}
)
keys = st.sampled_from(KNOWN_NAMES) | st.text(max_size=8)
scalars = (
    st.booleans()
    | st.integers(-3, 25)
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["tmux", "sdk", "headless", "best-effort", "idle", "realtime", "interactive", "custom"])
    | st.text(max_size=8)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


def toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, as long as astral characters stay unescaped."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def to_toml(value: Any) -> str:
    """A value as TOML, tables inline."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(to_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_string(k)} = {to_toml(v)}" for k, v in value.items()) + "}"


def parses_or_config_error(data: str | bytes) -> None:
    try:
        parse_config(data, FILE)
    except ConfigError as err:
        assert err.path == FILE
        assert err.reason


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_a_config_or_a_config_error(data: bytes) -> None:
    parses_or_config_error(data)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gives_a_config_or_a_config_error(data: str) -> None:
    parses_or_config_error(data)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, max_size=6))
def test_any_toml_document_gives_a_config_or_a_config_error(document: dict[str, Any]) -> None:
    parses_or_config_error("".join(f"{toml_string(k)} = {to_toml(v)}\n" for k, v in document.items()))


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "agents": st.dictionaries(st.sampled_from(["coder", "Coder", "x y"]), values, max_size=2),
            "phases": st.dictionaries(keys, values, max_size=3),
            "resources": st.dictionaries(keys, values, max_size=4),
            "ui": st.dictionaries(keys, values, max_size=3),
            "harnesses": st.dictionaries(
                st.sampled_from(["bot", "claude", "My Bot"]),
                st.dictionaries(keys, values, max_size=4),
                max_size=2,
            ),
        },
    )
)
def test_any_table_contents_give_a_config_or_a_config_error(document: dict[str, Any]) -> None:
    parses_or_config_error("".join(f"{k} = {to_toml(v)}\n" for k, v in document.items()))
