"""scripts/faults/chaos: the plan is a function of the seed (so a verdict's seed replays it) with at
most f victims per fault, and, in the slow profile, 20 seeds run clean on real clusters."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHAOS = ROOT / "scripts" / "faults" / "chaos"


def chaos_module() -> ModuleType:
    sys.path.insert(0, str(CHAOS.parent))
    loader = importlib.machinery.SourceFileLoader("chaos_script", str(CHAOS))
    spec = importlib.util.spec_from_loader("chaos_script", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_plan_is_the_seeds_and_never_faults_more_than_f_replicas() -> None:
    chaos = chaos_module()
    for n in (4, 7):
        replicas = list(range(n))
        f = (n - 1) // 3
        for seed in range(50):
            faults = chaos.plan(seed, 12, replicas)
            assert faults == chaos.plan(seed, 12, replicas), "the same seed gave another plan"
            assert all(kind in chaos.KINDS and 1 <= len(victims) <= f and set(victims) <= set(replicas)
                       for kind, victims in faults)
    plans = {str(chaos.plan(seed, 12, [0, 1, 2, 3])) for seed in range(20)}
    assert len(plans) == 20, "seeds do not change the plan"
    kinds = {kind for seed in range(20) for kind, _ in chaos.plan(seed, 12, [0, 1, 2, 3])}
    assert kinds == set(chaos.KINDS), f"some faults are never drawn: {set(chaos.KINDS) - kinds}"


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20))
def test_chaos_seed_runs_clean(seed: int, tmp_path: Path) -> None:
    """~30-45 s per seed: 5 faults of 3 s each, every heal live again, nothing lost or doubled."""
    done = subprocess.run([sys.executable, str(CHAOS), "--seed", str(seed), "--minutes", "0.25", "--step", "3"],
                          capture_output=True, text=True, timeout=600, check=False, env=dict(os.environ))
    verdict = json.loads(done.stdout)
    assert verdict["seed"] == seed and verdict["faults_run"] == verdict["faults_planned"] == 5
    assert done.returncode == 0 and verdict["ok"], json.dumps(verdict, indent=1)[-4000:]
