"""`corral chaos` as a user runs it: a real process, outside any repository, with a sandbox of its own — its
daemon under its heart, its tmux server, its database — and corral-sim in every role. A 30-fault campaign must
keep every invariant; the chaos routes exist only in a daemon started for chaos; a broken invariant exits 1
with the seed and the command that replays it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from frontends.daemon import DaemonClient
from tests.daemon_kit import stop_everything
from tests.integration import test_demo as demo
from tests.integration.cli_kit import CORRAL, clean_env, corral
from tests.integration.test_demo import User
from tests.unit.actor_kit import wait_until

user = demo.user  # the fixture: the user's own home, runtime directory and tmux server, never touched

SEED = int(os.environ.get("CORRAL_CHAOS_TEST_SEED", "8"))
FAULTS = 30


def chaos(user: User, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CORRAL, "chaos", *args],
        cwd=user.cwd,
        env=user.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _processes_of(scratch: str) -> list[str]:
    """The processes of the campaign in `scratch` still alive: what carries its CORRAL_HOME."""
    marker = f"CORRAL_HOME={scratch}/home".encode()
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if marker in environ.split(b"\0") and stat.rpartition(")")[2].split()[0] != "Z":
            left.append(f"{entry.name}: {(entry / 'cmdline').read_bytes()[:100]!r}")
    return left


@pytest.mark.timeout(900)
def test_a_thirty_fault_campaign_keeps_every_invariant_and_leaves_nothing_behind(user: User) -> None:
    result = chaos(user, "--faults", str(FAULTS), "--seed", str(SEED), "--json", timeout=880)
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    if result.returncode != 0 or not report["ok"]:  # all of it, untruncated: what broke, and how it came
        broken = [f"{i['name']}: {e}" for i in report["invariants"] for e in i["examples"]]
        progress = result.stderr.splitlines()[-80:]
        lines = ["the campaign broke:", *broken, *report["errors"], "its progress:", *progress]
        pytest.fail("\n".join(lines))
    assert [i["count"] for i in report["invariants"]] == [0, 0, 0, 0, 0]
    assert [i["name"] for i in report["invariants"]] == [
        "lost signals",
        "doubled transitions",
        "duplicate agents",
        "leaked processes",
        "tasks stuck",
    ]
    assert report["faults_injected"] == FAULTS and report["errors"] == []
    assert report["tasks_done"] == report["tasks_started"] >= 2
    injected = {k["kind"]: k for k in report["by_kind"] if k["injected"]}
    assert len(injected) >= 6, injected  # 30 draws among 8 or 9 kinds
    assert all(k["recovered"] == k["injected"] and k["p50_s"] is not None for k in injected.values())
    if os.geteuid() != 0:
        assert report["skipped"] == [f"disk-full needs root to mount a tmpfs (running as uid {os.geteuid()})"]
    assert report["replay"] == f"corral chaos --faults {FAULTS} --seed {SEED}"
    assert f"chaos: {FAULTS} faults, seed {SEED}" in result.stderr  # progress goes to stderr with --json
    assert _processes_of(report["scratch"]) == [] and not Path(report["scratch"]).exists()
    user.untouched()


def test_the_chaos_routes_exist_only_in_a_daemon_started_for_chaos(tmp_path: Path, corral_home: Path) -> None:
    runtime = Path(os.environ["CORRAL_RUNTIME_DIR"])
    client = DaemonClient(runtime)
    started = corral(tmp_path, "daemon", "start")
    assert started.returncode == 0, started.stderr
    status, body = client.request("GET", "/v1/chaos/actors")
    assert (status, body["error"]) == (404, "no such route: GET /v1/chaos/actors"), body
    stop_everything(runtime)

    started = corral(tmp_path, "daemon", "start", CORRAL_CHAOS="1")
    assert started.returncode == 0, started.stderr
    pid = client.ping()["pid"]
    actors = {a["path"]: a["urn"] for a in client.call("GET", "/v1/chaos/actors")}
    assert {"root", "root/signals", "root/audit", "root/projects", "root/eventbus"} <= set(actors)
    crashed = client.call("POST", "/v1/chaos/crash", json={"path": "root/signals"})
    assert crashed == {"path": "root/signals", "urn": actors["root/signals"]}

    def restarted() -> bool:
        now = {a["path"]: a["urn"] for a in client.call("GET", "/v1/chaos/actors")}
        return now.get("root/signals") not in (None, actors["root/signals"])

    wait_until(restarted, 20, "the claimer restarted by its supervisor")
    assert client.ping()["pid"] == pid  # a leaf's crash never takes the daemon down
    status, body = client.request("POST", "/v1/chaos/crash", json={"path": "root/nobody"})
    assert status == 404 and "no live actor at 'root/nobody'" in body["error"]
    audit = corral(tmp_path, "audit", "--all-projects", "--limit", "50")
    assert "root/signals exited: InjectedFault: chaos: crash root/signals; restarting" in audit.stdout


def test_a_campaign_that_breaks_an_invariant_exits_1_with_the_seed_and_the_replay(user: User) -> None:
    # A stall limit of 0.3 s: a task that takes longer than that between two steps without a waiting reason
    # (every task does) is stuck. The campaign must say so, and how to replay it.
    args = ("--faults", "1", "--seed", "3", "--kinds", "bad-signal", "--stall", "0.3")
    result = chaos(user, *args, "--json", timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    [stuck] = [i for i in report["invariants"] if i["name"] == "tasks stuck"]
    assert not report["ok"] and stuck["count"] >= 1
    pattern = r"chaos-1 did not move for \d+ s and showed no waiting reason: .+"
    assert re.fullmatch(pattern, stuck["examples"][0])
    assert result.stderr.strip().splitlines()[-1] == (
        "corral: error: the campaign broke corral's promises (seed 3); replay it with: "
        "corral chaos --faults 1 --seed 3 --kinds bad-signal"
    )
    assert _processes_of(report["scratch"]) == []
    user.untouched()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--kinds", "agent-kill,nope"), "unknown fault kind 'nope'; the kinds: agent-kill, tmux-kill"),
        (("--faults", "0"), "argument --faults: must be from 1 to 1000000, got 0"),
        (("--seed", "x"), "argument --seed: not a whole number: 'x'"),
        (("--plan", "/nonexistent/plan.md"), "cannot read /nonexistent/plan.md"),
    ],
)
def test_bad_arguments_are_refused_with_exit_2_before_anything_starts(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    before = set(Path(tempfile.gettempdir()).glob("corral-chaos-*"))
    result = subprocess.run(
        [CORRAL, "chaos", *args], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert set(Path(tempfile.gettempdir()).glob("corral-chaos-*")) == before  # nothing was made


def test_a_campaign_stopped_with_sigterm_cleans_up_and_exits_130(user: User) -> None:
    campaign = subprocess.Popen(
        [CORRAL, "chaos", "--faults", "5", "--seed", "1", "--keep"],
        cwd=user.cwd,
        env=user.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert campaign.stdout is not None
        for line in campaign.stdout:
            if "task chaos-1: planning" in line:
                break
        campaign.send_signal(signal.SIGTERM)
        out, err = campaign.communicate(timeout=120)
    finally:
        campaign.kill()
    assert campaign.returncode == 130, out + err
    assert err.strip().splitlines()[-1] == "corral: error: interrupted" and "Traceback" not in err
    kept = re.search(r"^kept (\S+) ", out, re.MULTILINE)
    assert kept is not None, out
    assert _processes_of(kept.group(1)) == []  # its daemon, heart, tmux server and agents: all gone
    assert (Path(kept.group(1)) / "home" / "corral.db").is_file()  # --keep kept the database
    shutil.rmtree(kept.group(1))
    user.untouched()
