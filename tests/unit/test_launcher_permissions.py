"""actors.launcher: every agent — a task's or one started by hand, on a screen or over an sdk — is launched
with the permission policy of the role it plays (issue 8 §3: it was hard-coded to "ask")."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from actors.instance import InstanceSpec
from actors.launcher import AgentRequest, agent_role, approve_by_policy, prepare_instance
from actors.resources import ResourceControls
from protocols.config import Config, ResourceSettings, parse_config
from protocols.sdk import Approval
from protocols.status import PermissionPolicy

SIM = str(Path(sys.executable).with_name("corral-sim"))
CONFIG = parse_config(
    "auto_yes = true\n"
    'permissions = "ask"\n'
    '[agents.coder]\npermissions = "allow_all"\n'
    '[agents.master]\npermissions = "deny_all"\n'
    "[agents.helper]\nallow = ['^Write\\(docs/']\n",
    "cfg.toml",
)


@pytest.mark.parametrize(
    ("agent_type", "task", "role"),
    [
        ("coder", "fix-login", "coder"),  # phases.implementing
        ("readiness", "fix-login", "master"),  # phases.readiness_review
        ("planner", "fix-login", "planner"),
        ("coder", "", "coder"),  # by hand: --agent-type is the role
        ("helper", "", "helper"),
        ("", "", ""),
    ],
)
def test_the_role_an_agent_plays(agent_type: str, task: str, role: str) -> None:
    assert agent_role(agent_type, task, CONFIG) == role


def test_a_task_agent_plays_the_role_its_phase_is_mapped_to() -> None:
    config = parse_config('[phases]\nimplementing = "builder"\n', "cfg.toml")
    assert agent_role("coder", "fix-login", config) == "builder"
    assert agent_role("coder", "", config) == "coder"


def _prepared(tmp_path: Path, config: Config, **fields: Any) -> InstanceSpec:
    """The spec of an agent started in the repository itself (no worktree) with `config`."""
    request = AgentRequest(
        project="app",
        repo_root=str(tmp_path),
        title="t",
        program=SIM,
        worktree="none",
        auto_yes=config.auto_yes,
        **fields,
    )
    return prepare_instance(request, config, ResourceControls(ResourceSettings())).spec


def test_task_agents_and_instances_by_hand_get_their_roles_policy(tmp_path: Path) -> None:
    readiness = _prepared(tmp_path, CONFIG, task="fix-login", agent_type="readiness")
    assert readiness.permissions == PermissionPolicy(mode="deny_all")
    assert readiness.auto_yes
    coder = _prepared(tmp_path, CONFIG, agent_type="coder")
    assert coder.permissions == PermissionPolicy(mode="allow_all")
    plain = _prepared(tmp_path, CONFIG)
    assert plain.permissions == PermissionPolicy(mode="ask")


def test_an_sdk_agent_has_its_approvals_answered_by_the_same_policy(tmp_path: Path) -> None:
    spec = _prepared(tmp_path, CONFIG, agent_type="helper", mode="sdk")
    answer = spec.factory.sdk_policy
    assert answer(Approval("1", "file change", "Write(docs/a.md)")) is True
    assert answer(Approval("2", "file change", "Write(src/a.py)")) is None  # "ask": a person decides
    master = _prepared(tmp_path, CONFIG, agent_type="master", mode="sdk").factory.sdk_policy
    assert master(Approval("3", "command", "Bash(rm -rf build)")) is False
    assert _prepared(tmp_path, Config(), mode="sdk").factory.sdk_policy is None  # no auto-yes: the default


def test_approve_by_policy() -> None:
    approval = Approval("1", "command", "Bash(git status)")
    assert approve_by_policy(PermissionPolicy(mode="allow_all"), approval) is True
    assert approve_by_policy(PermissionPolicy(mode="deny_all"), approval) is False
    assert approve_by_policy(PermissionPolicy(mode="ask"), approval) is None
    assert approve_by_policy(PermissionPolicy(mode="deny_all", allow=(r"^Bash\(git ",)), approval) is True
