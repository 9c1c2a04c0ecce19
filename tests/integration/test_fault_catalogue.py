"""Short forms of the fault catalogue's scenarios on real processes (scripts/faults: pause,
slow-links, one-down, restart-all), each judged by its JSON verdict, and scripts/faults/all on a
stand-in folder of fake scenarios (discovery, short arguments, the table, the exit status)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fault_runs import run_script

ROOT = Path(__file__).resolve().parents[2]
FAULTS = ROOT / "scripts" / "faults"
REQUIRED = ("scenario", "ok", "agreement", "identical_sublogs", "acked", "acked_lost", "committed_twice",
            "max_commit_gap_s", "evidence")


def safe(verdict: dict[str, Any], name: str) -> None:
    """The fields every verdict carries, and the safety half of them."""
    assert [k for k in REQUIRED if k not in verdict] == [], verdict
    assert verdict["scenario"] == name and verdict["ok"] is True, verdict
    assert verdict["agreement"] is True and verdict["identical_sublogs"] is True
    assert verdict["acked"] > 0 and verdict["acked_lost"] == 0 and verdict["committed_twice"] == 0
    assert verdict["replicas_exited"] == [] and verdict["unreachable"] == []


@pytest.mark.slow
def test_pause_the_leader_then_a_follower() -> None:
    code, verdict, err = run_script(FAULTS / "pause", "--seconds", "2")
    assert code == 0, err[-2000:]
    safe(verdict, "pause")
    assert [p["role"] for p in verdict["phases"]] == ["leader", "follower"]
    for p in verdict["phases"]:
        assert p["paused_s"] >= 2 and p["catch_up_s"] is not None and p["blocks_while_paused"] > 0, p
        assert p["commit_gap_while_paused_s"] < 2, p  # the other three kept committing
    assert max(verdict["commit_gap_by_replica_s"].values()) >= 2  # the frozen replica's own silence is seen


@pytest.mark.slow
def test_slow_links_report_each_phase_against_the_clean_one() -> None:
    code, verdict, err = run_script(FAULTS / "slow-links", "--seconds", "3")
    assert code == 0, err[-2000:]
    safe(verdict, "slow-links")
    phases = verdict["phases"]
    assert list(phases) == ["clean", "all_links", "replica_3"]
    assert all(p["blocks_per_s"] > 0 and p["commit_latency"]["samples"] > 0 for p in phases.values())
    # 50 +- 20 ms on every link: a commit needs several one-way trips, so latency must rise
    assert phases["all_links"]["commit_latency"]["p50_ms"] > phases["clean"]["commit_latency"]["p50_ms"] + 50


@pytest.mark.slow
def test_one_down_reports_the_goal_apart_from_safety() -> None:
    code, verdict, err = run_script(FAULTS / "one-down", "--seconds", "4")
    assert code == 0, err[-2000:]
    safe(verdict, "one-down")
    healthy, down = verdict["phases"]["healthy"], verdict["phases"]["one_down"]
    assert healthy["blocks_per_s"] > 0 and down["blocks_per_s"] > 0
    assert isinstance(verdict["meets_goal"], bool)
    goal = verdict["goal"]
    assert goal["blocks_per_s_ratio"] == round(down["blocks_per_s"] / healthy["blocks_per_s"], 2)
    assert verdict["meets_goal"] == (goal["blocks_per_s_ratio"] >= 0.8 and goal["latency_p50_factor"] <= 2.0)


@pytest.mark.slow
def test_restart_all_resumes_and_loses_nothing() -> None:
    code, verdict, err = run_script(FAULTS / "restart-all", "--seconds", "1", "--down", "0.5")
    assert code == 0, err[-2000:]
    safe(verdict, "restart-all")
    assert verdict["first_commit_after_restart_s"] is not None and verdict["height_at_kill"] >= 5
    assert verdict["max_commit_gap_s"] >= verdict["down_s"]  # the dead cluster's silence is counted
    assert all(b > 0 for b in verdict["stream_breaks"].values())


FAKE = '''#!/usr/bin/env python3
import argparse, json
parser = argparse.ArgumentParser()
for option in {options!r}:
    parser.add_argument(option)
args = parser.parse_args()
verdict = {{"ok": {ok!r}, "acked": 10, "acked_lost": {lost!r}, "committed_twice": 0, "max_commit_gap_s": 0.5,
           "evidence": {{"0": 2, "1": 1}}, "argv_seconds": getattr(args, "seconds", None),
           "argv_repeat": getattr(args, "repeat", None)}}
print(json.dumps(verdict))
if args.json:
    open(args.json, "w").write(json.dumps(verdict))
raise SystemExit(0 if {ok!r} else 1)
'''


def fake(folder: Path, name: str, *, ok: bool = True, lost: int = 0,
         options: tuple[str, ...] = ("--seconds", "--json", "--timeout", "--config")) -> None:
    path = folder / name
    path.write_text(FAKE.format(options=list(options), ok=ok, lost=lost))
    path.chmod(0o755)


def run_all(folder: Path, *args: str) -> tuple[int, str, dict[str, Any]]:
    out = folder / "combined.json"
    done = subprocess.run([sys.executable, str(FAULTS / "all"), "--dir", str(folder), "--json", str(out), *args],
                          capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, done.stdout, json.loads(out.read_text())


def test_all_discovers_scenarios_and_fails_if_one_verdict_fails(tmp_path: Path) -> None:
    fake(tmp_path, "good")
    fake(tmp_path, "crash-leader", options=("--seconds", "--json", "--repeat"))  # SHORT adds --repeat 3
    fake(tmp_path, "bad", ok=False, lost=4)
    fake(tmp_path, "_helper", ok=False)  # not a scenario
    (tmp_path / "notes").write_text("not executable")
    code, table, combined = run_all(tmp_path, "--seconds", "2")
    assert code == 1 and combined["ok"] is False
    by_name = {v["scenario"]: v for v in combined["scenarios"]}
    assert sorted(by_name) == ["bad", "crash-leader", "good"]
    assert by_name["good"]["ok"] and by_name["good"]["argv_seconds"] == "2"
    assert by_name["crash-leader"]["argv_repeat"] == "3" and by_name["crash-leader"]["args"][:2] == ["--seconds", "2"]
    assert by_name["bad"]["ok"] is False and by_name["bad"]["acked_lost"] == 4
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["scenario", "ok", "acked"]
    assert lines[1].split() == ["bad", "NO", "10", "4", "0", "0.5", "2", lines[1].split()[-1]]
    assert "NOT ok: 2/3" in table


def test_all_exits_0_only_when_every_verdict_is_ok(tmp_path: Path) -> None:
    fake(tmp_path, "good")
    fake(tmp_path, "bare", options=("--json",))  # offers no --seconds: run without it
    fake(tmp_path, "bad", ok=False)
    code, table, combined = run_all(tmp_path, "--only", "good,bare")
    assert code == 0 and combined["ok"] is True, table
    assert [v["scenario"] for v in combined["scenarios"]] == ["bare", "good"]
    assert combined["scenarios"][0]["args"][:1] != ["--seconds"]
