"""Twins: 4 replicas, one of them run as two instances sharing a key, with per-round leader and
partition choices over 8 rounds. With at most f twins no scenario may break safety; with more
twins than f the same generator must find a conflicting commit (negative control)."""

from __future__ import annotations

import os
import time

import pytest
from broken import NoLockRules

from consensus.simulation.twins import TwinsScenario, generate_scenarios, run_twins

DEFAULT_SAMPLES = int(os.environ.get("ORDO_TWINS_SAMPLES", "300"))

# (generator seed, scenario index) pairs kept as regressions. One twin: scenarios in which honest
# replicas witnessed the twin's equivocation (evidence recorded) and still committed 9-12 blocks.
PINNED = [(7, 1), (7, 9), (7, 53), (7, 64)]
# Two twins: scenarios that broke agreement when first generated; they must keep doing so.
PINNED_VIOLATING = [(7, 11), (7, 16)]


def scenarios(
    twins: tuple[int, ...], count: int, seed: int, rounds: int = 8, keep_leader: float = 0.0
) -> list[TwinsScenario]:
    return list(generate_scenarios(
        n=4, twins=twins, rounds=rounds, count=count, seed=seed, keep_leader=keep_leader
    ))


# Lying twins (consensus/simulation/lying.py): both instances of the twin run the strategy. The
# lying leaders act when they lead two rounds in a row, which keep_leader makes common.
LIARS = ("stale-qc", "forge-tc", "forge-qc", "short-qc", "forge-timeout", "withhold", "height-liar")
SYNC = {"height-liar": 0.3}  # catch-up on for the strategies that lie to it
LIAR_SAMPLES = int(os.environ.get("ORDO_TWINS_LIAR_SAMPLES", "20"))
# A scenario in which a stale-QC twin forks replicas that lack the lock rule (found by
# test_twins_search_finds_the_missing_lock_slow; seed 2026, keep_leader 0.4).
PINNED_LOCK_BREAK = (2026, 4)


def test_one_twin_never_breaks_safety() -> None:
    started = time.perf_counter()
    committed_somewhere = 0
    for scenario in scenarios((0,), DEFAULT_SAMPLES, seed=2026):
        result = run_twins(scenario)
        assert result.violations == [], f"{scenario.describe()}: {[str(v) for v in result.violations]}"
        committed_somewhere += max(result.honest_heights) > 0
    # the scenarios must actually exercise commits, or safety would hold vacuously
    assert committed_somewhere > DEFAULT_SAMPLES // 2
    print(f"twins: {DEFAULT_SAMPLES} scenarios in {time.perf_counter() - started:.1f}s")


# With reputation leaders (each instance its own schedule, consensus/reputation.py): the scenario
# fixes the leaders of its rounds, reputation chooses them for the rounds after (run long enough
# for its window to fill), and checker.check_leaders compares every honest replica's choices.
REPUTATION_SAMPLES = int(os.environ.get("ORDO_TWINS_REPUTATION_SAMPLES", "60"))


@pytest.mark.parametrize("strategy", [None, "stale-qc", "forge-tc"])
def test_one_twin_with_reputation_leaders_never_breaks_safety(strategy: str | None) -> None:
    committed = 0
    for scenario in scenarios((0,), REPUTATION_SAMPLES, seed=1111, keep_leader=0.4 if strategy else 0.0):
        result = run_twins(scenario, reputation=True, extra_rounds=20, byzantine=strategy)
        assert result.violations == [], f"{scenario.describe()}: {[str(v) for v in result.violations]}"
        committed += min(result.honest_heights) > 10
    assert committed > REPUTATION_SAMPLES // 2


def test_two_twins_with_reputation_leaders_still_break_agreement() -> None:
    """Negative control: the reputation runs are not too weak to find a fork."""
    for scenario in scenarios((0, 1), 200, seed=7):
        if any(v.invariant == "agreement" for v in run_twins(scenario, reputation=True).violations):
            return
    raise AssertionError("200 scenarios with two twins found no conflicting commit")


@pytest.mark.slow
def test_one_twin_with_reputation_many_scenarios_slow() -> None:
    for scenario in scenarios((0,), 2000, seed=4343, rounds=10):
        result = run_twins(scenario, reputation=True, extra_rounds=20)
        assert result.violations == [], scenario.describe()


@pytest.mark.parametrize("seed,index", PINNED)
def test_pinned_twins_regressions(seed: int, index: int) -> None:
    scenario = scenarios((0,), index + 1, seed=seed)[index]
    result = run_twins(scenario)
    assert result.violations == [], scenario.describe()
    assert result.evidence_recorded > 0 and min(result.honest_heights) > 2


@pytest.mark.parametrize("seed,index", PINNED_VIOLATING)
def test_pinned_two_twin_scenarios_still_break_agreement(seed: int, index: int) -> None:
    scenario = scenarios((0, 1), index + 1, seed=seed)[index]
    result = run_twins(scenario)
    assert any(v.invariant == "agreement" for v in result.violations), scenario.describe()


def test_more_twins_than_f_finds_a_conflicting_commit() -> None:
    """Negative control: with two twins (> f = 1) the generator must find a safety violation,
    otherwise the scenarios are too weak to mean anything."""
    found = []
    for scenario in scenarios((0, 1), 200, seed=7):
        result = run_twins(scenario)
        if any(v.invariant == "agreement" for v in result.violations):
            found.append(scenario)
            break
    assert found, "200 scenarios with two twins found no conflicting commit"


def test_twins_runs_are_deterministic() -> None:
    scenario = scenarios((0,), 5, seed=99)[4]
    a, b = run_twins(scenario), run_twins(scenario)
    assert a.honest_heights == b.honest_heights and a.events == b.events


@pytest.mark.slow
def test_one_twin_many_scenarios_slow() -> None:
    count = int(os.environ.get("ORDO_TWINS_SLOW_SAMPLES", "5000"))
    started = time.perf_counter()
    for scenario in scenarios((0,), count, seed=4242, rounds=10):
        result = run_twins(scenario)
        assert result.violations == [], scenario.describe()
    print(f"twins slow: {count} scenarios x 10 rounds in {time.perf_counter() - started:.1f}s")


@pytest.mark.parametrize("strategy", LIARS)
def test_one_lying_twin_never_breaks_safety(strategy: str) -> None:
    committed = 0
    for scenario in scenarios((0,), LIAR_SAMPLES, seed=31, keep_leader=0.4):
        result = run_twins(scenario, byzantine=strategy, sync_interval=SYNC.get(strategy))
        assert result.violations == [], f"{scenario.describe()}: {[str(v) for v in result.violations]}"
        committed += max(result.honest_heights) > 0
    assert committed > LIAR_SAMPLES // 2


def test_pinned_stale_qc_twin_forks_replicas_without_the_lock_rule() -> None:
    seed, index = PINNED_LOCK_BREAK
    scenario = scenarios((0,), index + 1, seed=seed, keep_leader=0.4)[index]
    assert run_twins(scenario, byzantine="stale-qc").violations == [], scenario.describe()
    broken = run_twins(scenario, byzantine="stale-qc", rules=NoLockRules)
    assert any(v.invariant == "agreement" for v in broken.violations), scenario.describe()


@pytest.mark.slow
def test_twins_search_finds_the_missing_lock_slow() -> None:
    """Twins with a stale-QC twin find the lock rule's removal (3 in the first 100 today)."""
    found = [
        scenario.describe()
        for scenario in scenarios((0,), 300, seed=2026, keep_leader=0.4)
        if any(v.invariant == "agreement"
               for v in run_twins(scenario, byzantine="stale-qc", rules=NoLockRules).violations)
    ]
    assert found, "300 scenarios with a stale-QC twin found no fork without the lock rule"


@pytest.mark.slow
@pytest.mark.parametrize("strategy", LIARS)
def test_one_lying_twin_many_scenarios_slow(strategy: str) -> None:
    count = int(os.environ.get("ORDO_TWINS_LIAR_SLOW_SAMPLES", "500"))
    for scenario in scenarios((0,), count, seed=777, rounds=10, keep_leader=0.4):
        result = run_twins(scenario, byzantine=strategy, sync_interval=SYNC.get(strategy))
        assert result.violations == [], f"{scenario.describe()}: {[str(v) for v in result.violations]}"
