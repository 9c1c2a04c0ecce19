"""Safety and liveness over hypothesis-generated fault schedules, n = 4 and n = 7, with up to f
Byzantine replicas (silent, equivocating leader, double voter, and the liars of
consensus/simulation/lying.py and lying_peers.py: stale-QC leader, forged TC / QC / timeout certificates,
under-quorum QC, payload withholding, height liar) plus partitions, crash/restart, loss,
duplication and reordering (random delays) before GST, leaders keeping 1 or 2 rounds, and
catch-up on or off; with the round-robin and the reputation leader schedules (each replica its own,
rebuilt from its log on restart; checker.check_leaders compares their choices)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from schedules import schedules

from consensus.simulation.scenario import Schedule, run_schedule

# After GST with at most f faulty replicas, a block proposed after GST commits within this many
# rounds: desynchronised rounds converge through timeouts/TCs (a few rounds), and each Byzantine
# leader can spoil at most the rounds it leads and the one before.
LIVENESS_ROUNDS = {4: 12, 7: 16}


def check(schedule: Schedule) -> None:
    result = run_schedule(schedule)
    assert result.violations == [], f"{[str(v) for v in result.violations]}"
    bound = LIVENESS_ROUNDS[schedule.n]
    assert result.rounds_to_commit_after_gst is not None, (
        f"no commit after GST (round {result.round_at_gst}); heights {result.heights}"
    )
    assert result.rounds_to_commit_after_gst <= bound, (
        f"first commit after GST took {result.rounds_to_commit_after_gst} rounds (bound {bound})"
    )


@settings(max_examples=60)
@given(schedules(4))
def test_safety_and_liveness_n4(schedule: Schedule) -> None:
    check(schedule)


@settings(max_examples=30)
@given(schedules(7))
def test_safety_and_liveness_n7(schedule: Schedule) -> None:
    check(schedule)


def with_reputation(schedule: Schedule) -> Schedule:
    """Reputation leaders, catch-up always on (as in the real node): with reputation a cluster with a
    crashed replica keeps its full pace, and a replica restarted at GST is then further behind
    than fetching alone can close (a fetched gap longer than one answer never connects; the same
    happens with any schedule that skips the crashed replica)."""
    return replace(schedule, leaders="reputation", sync_interval=0.3)


@settings(max_examples=40)
@given(schedules(4))
def test_safety_and_liveness_n4_reputation(schedule: Schedule) -> None:
    check(with_reputation(schedule))


@settings(max_examples=15)
@given(schedules(7))
def test_safety_and_liveness_n7_reputation(schedule: Schedule) -> None:
    check(with_reputation(schedule))


@pytest.mark.slow
@settings(max_examples=1000)
@given(schedules(4))
def test_safety_and_liveness_n4_reputation_slow(schedule: Schedule) -> None:
    check(with_reputation(schedule))


@pytest.mark.slow
@settings(max_examples=2000)
@given(schedules(4))
def test_safety_and_liveness_n4_slow(schedule: Schedule) -> None:
    check(schedule)


@pytest.mark.slow
@settings(max_examples=800)
@given(schedules(7))
def test_safety_and_liveness_n7_slow(schedule: Schedule) -> None:
    check(schedule)
