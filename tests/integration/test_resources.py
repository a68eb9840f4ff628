"""Resource controls on real processes: the kernel sees the niceness, the env has the hints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from actors.resources import ResourceControls
from protocols.config import INTERACTIVE_PRESET, ResourceSettings

PRINT_ENV = "import os, sys; print(os.nice(0)); print(os.environ.get(sys.argv[1], '-'))"


def run(launch_argv: tuple[str, ...], env: tuple[tuple[str, str], ...], var: str) -> list[str]:
    out = subprocess.run(
        [*launch_argv, var], env=dict(env), capture_output=True, text=True, timeout=30, check=True
    )
    return out.stdout.split()


def test_interactive_profile_runs_the_agent_at_nice_10_with_build_hints() -> None:
    controls = ResourceControls(INTERACTIVE_PRESET)
    launch = controls.launch(
        [sys.executable, "-c", PRINT_ENV], {"PATH": os.environ["PATH"]}, {"CORRAL_MANAGED": "1"}
    )
    assert launch.argv[:2] == ("ionice", "-c") or launch.argv[0] == "nice"
    niceness, makeflags = run(launch.argv, launch.env, "MAKEFLAGS")
    assert int(niceness) == os.nice(0) + 10
    assert makeflags == "-j1"
    env = dict(launch.env)
    assert env["CORRAL_RESOURCE_PROFILE"] == "interactive" and env["CORRAL_MANAGED"] == "1"
    assert launch.resource_profile == "interactive"


def test_a_value_from_the_users_shell_is_kept_and_resources_env_wins() -> None:
    settings = ResourceSettings(profile="custom", build_jobs=2, env=(("GOFLAGS", "-mod=mod"),))
    launch = ResourceControls(settings).launch(["true"], {"MAKEFLAGS": "-j8", "GOFLAGS": "-p=9"}, {})
    env = dict(launch.env)
    assert env["MAKEFLAGS"] == "-j8"  # set in the shell: respected
    assert env["CARGO_BUILD_JOBS"] == "2"  # unset: filled in
    assert env["GOFLAGS"] == "-mod=mod"  # [resources.env] always wins


def test_normal_profile_changes_nothing() -> None:
    launch = ResourceControls(ResourceSettings()).launch(["agent", "--x"], {"A": "1"}, {})
    assert launch.argv == ("agent", "--x")
    assert dict(launch.env) == {"A": "1", "CORRAL_RESOURCE_PROFILE": "normal"}


def test_missing_wrappers_warn_once_and_never_block_the_launch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    controls = ResourceControls(INTERACTIVE_PRESET, path=str(tmp_path))  # an empty PATH: no nice, no ionice
    first = controls.launch(["agent"], {}, {})
    second = controls.launch(["agent"], {}, {})
    assert first.argv == second.argv == ("agent",)
    assert [n.split(":")[1].split()[0] for n in first.notes] == ["nice", "ionice"]
    assert second.notes == ()
    assert caplog.text.count("not found on PATH") == 2
