"""scripts/faults/crash-leader --repeat: several leader kills on real processes, the verdict carries
the commit-gap figures next to the base timeout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_crash_leader_repeat_reports_commit_gaps(tmp_path: Path) -> None:
    out = tmp_path / "verdict.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "faults" / "crash-leader"), "--repeat", "3", "--seconds", "2",
         "--json", str(out)],
        capture_output=True, text=True, timeout=600, check=False, env=dict(os.environ),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    verdict = json.loads(out.read_text())
    assert verdict["ok"] and verdict["kills"] == 3 and len(verdict["killed"]) == 3
    assert verdict["leader_schedule"] == "reputation" and verdict["base_timeout_s"] == 0.5
    assert verdict["commit_gaps"] > 10
    assert 0 < verdict["commit_gap_p50_s"] <= verdict["commit_gap_p99_s"] <= verdict["max_commit_gap_s"]
