"""`ordo up` as an operator runs it: a subprocess that launches the cluster, stops it after
--duration or on a terminal's Ctrl-C and writes the --json summary, restarts a replica that dies;
no replica process is left behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sequencing.cluster.local import FAST_TIMING as TIMING
from sequencing.cluster.local import write_local_config
from sequencing.config import load_config


def replica_processes(config: Path) -> list[str]:
    out = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "sequencing.cli replica" in line and str(config) in line]


def test_up_with_load_writes_a_summary_and_leaves_nothing_running(tmp_path: Path) -> None:
    config = write_local_config(tmp_path, n=4, timing=TIMING)
    summary_path = tmp_path / "summary.json"
    done = subprocess.run(
        [sys.executable, "-m", "sequencing.cli", "up", "--config", str(config), "--duration", "8",
         "--load", "300", "--json", str(summary_path), "--no-live"],
        check=False, capture_output=True, text=True, timeout=180, env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    api = load_config(config).api_url(0)
    assert f"dashboard: {api}/dashboard\n" in done.stderr, "ordo up prints the dashboard's URL"
    summary = json.loads(summary_path.read_text())
    assert summary["agreement"] is True
    replicas = summary["replicas"]
    assert [r["id"] for r in replicas] == [0, 1, 2, 3]
    for r in replicas:
        assert set(r) >= {"id", "round", "committed_height", "last_block_hash", "txs_committed", "rollups"}
        assert r["committed_height"] > 5 and r["txs_committed"] > 500
    assert all(r["rollups"] == replicas[0]["rollups"] for r in replicas), "sub-logs differ"
    assert len(replicas[0]["rollups"]) >= 3 and summary["load"]["bundles"] > 0
    assert replica_processes(config) == []


def test_up_reports_a_config_error_in_one_line(tmp_path: Path) -> None:
    config = write_local_config(tmp_path, n=4)
    config.write_text(config.read_text().replace('chain_id = "ordo-test"', "chain_id = 7"))
    done = subprocess.run([sys.executable, "-m", "sequencing.cli", "up", "--config", str(config), "--duration", "1"],
                          check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == f"ordo: config error: {config}: cluster.chain_id: must be str, got int 7"


def start_up(config: Path, summary_path: Path, *args: str) -> subprocess.Popen[str]:
    """`ordo up` in a session of its own, as a shell runs a foreground job; its stderr goes to
    ``up.log`` beside the summary (read it with :func:`up_log`)."""
    with (summary_path.parent / "up.log").open("w") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "sequencing.cli", "up", "--config", str(config), "--json", str(summary_path),
             "--no-live", *args],
            stdout=subprocess.DEVNULL, stderr=log, text=True, start_new_session=True, env=dict(os.environ),
        )


def up_log(summary_path: Path) -> str:
    return (summary_path.parent / "up.log").read_text()


def wait_heights(config: Path, height: int, up: subprocess.Popen[str], summary_path: Path,
                 timeout: float = 90.0) -> dict[int, int]:
    """Every replica at ``height`` or above, and `ordo up` past its start-up (it said "... up: ..."):
    before that line a signal interrupts the start, which is another story (exit 130)."""
    cluster = load_config(config)
    deadline = time.monotonic() + timeout
    heights: dict[int, int] = {}
    while time.monotonic() < deadline:
        assert up.poll() is None, up_log(summary_path)[-3000:]
        for r in cluster.replicas:
            try:
                heights[r.id] = httpx.get(f"{cluster.api_url(r.id)}/status", timeout=1.0).json()["committed_height"]
            except (httpx.HTTPError, ValueError):
                heights[r.id] = -1
        if min(heights.values()) >= height and " up: " in up_log(summary_path):
            return heights
        time.sleep(0.2)
    raise AssertionError(f"heights {heights} did not reach {height} within {timeout} s")


def replica_pid(config: Path, replica_id: int) -> int:
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    pids = [int(line.split()[0]) for line in out.splitlines()
            if "sequencing.cli replica" in line and str(config) in line and f"--id {replica_id} " in line]
    assert len(pids) == 1, out
    return pids[0]


def test_up_restarts_a_replica_killed_mid_run_and_the_others_keep_going(tmp_path: Path) -> None:
    config = write_local_config(tmp_path, n=4, timing=TIMING)
    summary_path = tmp_path / "summary.json"
    up = start_up(config, summary_path, "--duration", "25", "--load", "200")
    try:
        at_kill = wait_heights(config, 5, up, summary_path)
        os.kill(replica_pid(config, 2), signal.SIGKILL)
        up.wait(timeout=180)
        stderr = up_log(summary_path)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
    assert up.returncode == 0, stderr[-3000:]
    assert "replica 2 killed by SIGKILL" in stderr and "restarting replica 2 in 1 s" in stderr
    summary = json.loads(summary_path.read_text())
    assert summary["agreement"] is True and summary["answering"] == [0, 1, 2, 3] and summary["down"] == []
    record = summary["restarts"]["2"]
    assert record["restarts"] == 1 and record["state"] == "running"
    assert [(e["signal"], e["exit_code"]) for e in record["exits"]] == [("SIGKILL", None)]
    assert set(summary["restarts"]) == {"2"}
    heights = {r["id"]: r["committed_height"] for r in summary["replicas"]}
    assert heights[2] > at_kill[2] and all(h > at_kill[r] for r, h in heights.items())
    assert replica_processes(config) == []


def test_ctrl_c_in_a_terminal_stops_the_cluster_in_order_with_a_true_summary(tmp_path: Path) -> None:
    config = write_local_config(tmp_path, n=4, timing=TIMING)
    summary_path = tmp_path / "summary.json"
    up = start_up(config, summary_path, "--load", "100")
    try:
        wait_heights(config, 3, up, summary_path)
        os.killpg(up.pid, signal.SIGINT)  # what the terminal does: the whole foreground group
        up.wait(timeout=120)
        stderr = up_log(summary_path)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
    assert up.returncode == 0, stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    assert summary["agreement"] is True and summary["down"] == [] and summary["restarts"] == {}
    assert all(r["committed_height"] >= 3 for r in summary["replicas"]), summary["replicas"]
    assert replica_processes(config) == []


def test_a_port_in_use_is_one_line_naming_the_replica(tmp_path: Path) -> None:
    config = write_local_config(tmp_path, n=4, timing=TIMING)
    taken = load_config(config).replica(1).api_port
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", taken))
        holder.listen()
        done = subprocess.run([sys.executable, "-m", "sequencing.cli", "up", "--config", str(config),
                               "--duration", "1", "--no-live"],
                              check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if not ln.startswith("created keys")]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ordo: replica 1 exit code ") and "while starting" in lines[0], lines[0]
    assert "in use" in lines[0], lines[0]
    assert replica_processes(config) == []
