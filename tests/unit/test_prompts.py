"""Prompts carry what an agent needs: its work, where it stands, and the exact command that finishes it."""

from __future__ import annotations

import shlex

import pytest

from protocols.errors import NotFoundError
from protocols.plan import parse_plan
from protocols.prompts import (
    coder_prompt,
    fixer_prompt,
    plan_path,
    planner_prompt,
    readiness_prompt,
    reviewer_prompt,
    signal_command,
    wave_task_prompt,
)
from protocols.signals import normalize_payload, parse_signal_type

PLAN = parse_plan(
    """# Rate limiting

**Goal:** throttle abusive clients
**Tech Stack:** Python

## Wave 1: Base

### Task 1: Bucket

Implement TokenBucket in ratelimit/bucket.py.

### Task 2: Config

Add rate_limit.rate.

## Wave 2: Wire

### Task 7: Middleware

Use the bucket everywhere.
"""
)


def commands(prompt: str) -> list[list[str]]:
    """Every `corral signal emit …` line of a prompt, split as a shell would."""
    return [
        shlex.split(line.strip()) for line in prompt.splitlines() if line.strip().startswith("corral signal")
    ]


def test_wave_task_prompt_has_the_task_its_wave_the_context_and_the_exact_signal() -> None:
    prompt = wave_task_prompt("fix-login", PLAN, 2, 7, peers=1)
    assert "Implement Task 7: Middleware" in prompt
    assert "Wave 2 of 2" in prompt
    assert "**Goal:** throttle abusive clients" in prompt and "**Tech Stack:** Python" in prompt
    assert "Use the bucket everywhere." in prompt
    [argv] = commands(prompt)
    assert argv[:5] == ["corral", "signal", "emit", "implement_task_finished", "fix-login"]
    assert argv[5] == "--payload"
    payload = normalize_payload(parse_signal_type(argv[3]), argv[6])
    assert payload == '{"wave_number":2,"task_number":7}'


def test_peer_rules_only_when_the_wave_has_peers() -> None:
    alone = wave_task_prompt("fix-login", PLAN, 2, 7, peers=1)
    shared = wave_task_prompt("fix-login", PLAN, 1, 2, peers=2)
    for rule in ("git add .", "git add -A", "git stash", "git reset", "Task 2: <what changed>"):
        assert rule in shared
        assert rule not in alone
    assert "1 other agent works" in shared
    assert "Wave 1 of 2" in shared and "Add rate_limit.rate." in shared


def test_wave_task_prompt_for_a_task_the_plan_lacks_raises() -> None:
    with pytest.raises(NotFoundError):
        wave_task_prompt("fix-login", PLAN, 1, 99, peers=1)


def test_planner_prompt_asks_for_the_plan_format_the_file_and_the_signal_with_the_plan() -> None:
    prompt = planner_prompt("fix-login", "Fix the login", "SSO users get a 500")
    assert "SSO users get a 500" in prompt
    assert "## Wave 1" in prompt and "### Task 1: <title>" in prompt and "**Goal:**" in prompt
    assert plan_path("fix-login") == ".corral/plans/fix-login.md" and ".corral/plans/fix-login.md" in prompt
    [line] = [ln.strip() for ln in prompt.splitlines() if ln.strip().startswith("corral signal")]
    assert (
        line == 'corral signal emit planner_finished fix-login --payload "$(cat .corral/plans/fix-login.md)"'
    )


def test_coder_prompt_has_the_whole_plan_or_the_brief() -> None:
    prompt = coder_prompt("fix-login", PLAN)
    for text in ("Task 1: Bucket", "Task 7: Middleware", "Implement TokenBucket", "throttle abusive clients"):
        assert text in prompt
    assert commands(prompt) == [["corral", "signal", "emit", "implement_finished", "fix-login"]]
    brief = coder_prompt("fix-login", None, "fix the typo in README")
    assert "fix the typo in README" in brief


def test_reviewer_prompt_diffs_against_the_base_and_offers_both_verdicts() -> None:
    prompt = reviewer_prompt("fix-login", "corral/fix-login", 2, "make login work")
    assert "round 2" in prompt and "make login work" in prompt
    assert "git diff" in prompt and "branch.corral/fix-login.corral-base" in prompt
    types = [argv[3] for argv in commands(prompt)]
    assert types == ["review_approved", "review_changes"]
    assert all(argv[4] == "fix-login" for argv in commands(prompt))
    for argv in commands(prompt):
        parse_signal_type(argv[3])


def test_fixer_prompt_has_the_feedback_and_hands_back_for_review() -> None:
    prompt = fixer_prompt("fix-login", "tests fail on empty input", 1, "review")
    assert "tests fail on empty input" in prompt and "reviewer" in prompt
    assert commands(prompt) == [["corral", "signal", "emit", "implement_finished", "fix-login"]]
    assert "readiness check" in fixer_prompt("fix-login", "x", 2, "readiness")


def test_readiness_prompt_offers_verify_approved_and_verify_failed() -> None:
    prompt = readiness_prompt("fix-login", "corral/fix-login", 1)
    assert [argv[3] for argv in commands(prompt)] == ["verify_approved", "verify_failed"]


def test_signal_command_quotes_odd_task_names() -> None:
    assert signal_command("implement_finished", "a.b_c-1") == "corral signal emit implement_finished a.b_c-1"
