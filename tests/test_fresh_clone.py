"""The README's two commands in a fresh clone, the way a newcomer runs them (slow profile: it
creates a new virtual environment and installs everything)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_readme_quick_start_in_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "ordo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    up = subprocess.run(["scripts/up", "--duration", "15", "--json", "out.json", "--no-live"], cwd=clone,
                        env=env, capture_output=True, text=True, timeout=900, check=False)
    assert up.returncode == 0, up.stderr[-3000:]
    summary = json.loads((clone / "out.json").read_text())
    assert summary["agreement"] and all(r["committed_height"] > 10 for r in summary["replicas"])
    assert all(r["txs_committed"] > 0 for r in summary["replicas"]), "scripts/up drives demo traffic"
    # the test command installs the test extras and runs the checks (a small slice of the suite)
    test = subprocess.run(["scripts/test", "-q", "tests/test_layering.py", "tests/consensus/test_messages.py"],
                          cwd=clone, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert test.returncode == 0, test.stdout[-3000:] + test.stderr[-2000:]
    assert "passed" in test.stdout
