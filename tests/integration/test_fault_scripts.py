"""scripts/faults: the verdict survives the cluster it judges. A replica that dies mid-scenario
(here kill -9 from outside, then a fault-API call to it fails inside the load's nursery, the
shape of the lossy-network failures) yields a failing JSON verdict naming the replica, how it
ended and its log tail, with the checks run on the survivors, not an exception-group traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fault_runs import run_script

ROOT = Path(__file__).resolve().parents[2]
FAULTS = ROOT / "scripts" / "faults"

DYING_SCENARIO = f'''
import os, signal, sys
import trio
sys.path.insert(0, {str(FAULTS)!r})
from _common import AckedLoad, main


async def scenario(cluster, args, load=None):
    load = load or AckedLoad(cluster)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(load.run)
        await cluster.wait_height(5)
        os.kill(cluster.processes[2].pid, signal.SIGKILL)  # not through the harness: a crash
        await cluster.processes[2].wait()
        await cluster.set_faults(2, {{"0": {{"drop": 0.2}}}})
    return {{"ok": True}}


main(scenario, "a replica dies mid-scenario")
'''


def test_a_replica_dying_mid_scenario_is_a_finding_in_the_verdict(tmp_path: Path) -> None:
    script = tmp_path / "dying"
    script.write_text(DYING_SCENARIO)
    code, verdict, _ = run_script(script)
    assert code == 1 and verdict["ok"] is False
    assert "ConnectError" in verdict["error"], verdict["error"]
    [exited] = verdict["replicas_exited"]
    assert exited["replica"] == 2 and exited["signal"] == "SIGKILL" and exited["exit_code"] is None
    assert exited["log_tail"] and exited["last_line"] and exited["exit"] == "killed by SIGKILL"
    # the survivors were still judged: safe, identical, nothing they acknowledged lost
    assert verdict["checked"] == [0, 1, 3] and verdict["heights"]["2"] is None
    assert verdict["agreement"] is True and verdict["identical_sublogs"] is True, verdict
    assert verdict["unreachable"] == []


@pytest.mark.slow
def test_partition_heal_writes_a_verdict_with_every_round(tmp_path: Path) -> None:
    code, verdict, _ = run_script(FAULTS / "partition-heal", "--seconds", "3", "--json", str(tmp_path / "v.json"),
                               timeout=600)
    assert json.loads((tmp_path / "v.json").read_text()) == verdict
    assert code == (0 if verdict["ok"] else 1)
    assert verdict["isolations_planned"] == 4 and verdict["rounds"]
    assert [r["isolated"] for r in verdict["rounds"]] == [0, 1, 2, 3][:len(verdict["rounds"])]
    if verdict["ok"]:
        assert verdict["replicas_exited"] == [] and all(r["others_advanced"] > 0 for r in verdict["rounds"])
    else:  # the crash of issue 8 item 1, reported as a finding
        assert verdict["replicas_exited"] or not all(r["ok"] for r in verdict["rounds"]), verdict


def test_bad_peers_short_every_attack_counted_while_committing(tmp_path: Path) -> None:
    code, verdict, _ = run_script(FAULTS / "bad-peers", "--attacks", "replayed-handshake,slow-loris", "--seconds", "1")
    assert [p["phase"] for p in verdict["phases"]] == ["replayed-handshake", "slow-loris"]
    for phase in verdict["phases"]:
        assert all(phase["counted"].values()) and len(phase["counted"]) == 4, phase
        assert all(n > 0 for n in phase["blocks_during"].values()), phase
    assert verdict["stuck_handshakes"] == {} and verdict["replicas_exited"] == []
    assert code == 0 and verdict["ok"] is True, verdict


@pytest.mark.slow
def test_bad_peers_every_attack(tmp_path: Path) -> None:
    code, verdict, _ = run_script(FAULTS / "bad-peers", timeout=900)
    assert len(verdict["phases"]) == 9 and all(p["ok"] for p in verdict["phases"]), verdict["phases"]
    assert code == 0 and verdict["ok"] is True, verdict


@pytest.mark.slow
def test_crash_points_short(tmp_path: Path) -> None:
    points = "save_safety:before-commit,append_many:after-commit,save_evidence:after-commit"
    code, verdict, _ = run_script(FAULTS / "crash-points", "--points", points, timeout=600)
    assert [p["point"] for p in verdict["points"]] == points.split(","), verdict
    for point in verdict["points"]:
        assert point["died_at_point"] and point["exit_code"] == 137 and point["restarted_ok"], point
        assert point["evidence_naming_it"] is False, point
    assert verdict["offenders"] == verdict["double_voters"] == [2]  # the save_evidence point's double voter only
    assert code == 0 and verdict["ok"] is True, verdict


def test_lost_disk_stays_silent_until_safe_then_signs_again(tmp_path: Path) -> None:
    code, verdict, _ = run_script(FAULTS / "lost-disk", "--seconds", "3", timeout=600)
    assert verdict["while_held_down"]["blocks_committed"] == 0, verdict
    assert verdict["while_held_down"]["answered_api"] is False
    assert verdict["silent_s"] >= 3 and verdict["recovery_floor"] is not None
    assert verdict["signed_at_or_below_floor"] == []
    assert verdict["first_signed_round_after_kill"] > verdict["recovery_floor"]
    assert verdict["evidence_naming_it"] == 0 and verdict["signing_again_s"] is not None
    assert code == 0 and verdict["ok"] is True, verdict
