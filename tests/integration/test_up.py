"""`ordo up` as an operator runs it: a subprocess that launches the cluster, stops it after
--duration and writes the --json summary; no replica process is left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sequencing.harness import FAST_TIMING as TIMING
from sequencing.harness import write_local_config


def replica_processes(config: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
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
