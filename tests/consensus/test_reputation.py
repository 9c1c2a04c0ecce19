"""Leader reputation (consensus/reputation.py): the rule on hand-built committed chains, then in the
simulator: a crashed replica stops being chosen, a recovered one is chosen again, and the
leader checker (checker.check_leaders) catches schedules that disagree between replicas."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from consensus_factories import World

from consensus.leader import LeaderFactory, RoundRobin
from consensus.messages import Block
from consensus.reputation import ReputationSchedule
from consensus.simulation import SimConfig, Simulator, Violation, check_leaders, check_safety
from consensus.simulation.scenario import SYNC_FETCH_LIMIT, reputation_factory

W = World.make(4)


def chain(plan: Sequence[tuple[int, int, list[int]]]) -> list[Block]:
    """Committed blocks from (round, author, voters of the QC it carries), oldest first."""
    blocks: list[Block] = []
    parent = W.genesis
    for round, author, voters in plan:
        qc = W.genesis_qc if parent.height == 0 else W.qc(parent, voters)
        block = W.block(round, parent, qc=qc, author=author)
        blocks.append(block)
        parent = block
    return blocks


def steady(rounds: range, down: frozenset[int] = frozenset()) -> list[tuple[int, int, list[int]]]:
    """One block per round; replicas in ``down`` neither author nor vote."""
    up = [i for i in range(4) if i not in down]
    return [(r, up[r % len(up)], up[:3]) for r in rounds]


def test_short_history_is_round_robin() -> None:
    s = ReputationSchedule(4, window=5, lag=3)
    assert [s.leader(r) for r in range(1, 9)] == [RoundRobin(4).leader(r) for r in range(1, 9)]
    # only the first block (it carries the genesis QC: no votes) is old enough: one author is
    # fewer than a quorum of candidates, so still round-robin, never a single leader
    for block in chain([(1, 1, []), (2, 2, [0, 1, 2])]):
        s.observe_commit(block)
    assert s.candidates(4) == (0, 1, 2, 3)
    assert s.candidates(5) == (0, 1, 2)  # block 2 counts: its QC has a quorum of voters


def test_a_replica_absent_from_the_window_is_skipped_and_others_rotate() -> None:
    s = ReputationSchedule(4, window=5, lag=3, history=chain(steady(range(1, 21), down=frozenset({3}))))
    assert s.candidates(24) == (0, 1, 2)
    assert [s.leader(r) for r in range(24, 30)] == [r % 3 for r in range(24, 30)]
    assert 3 not in {s.leader(r) for r in range(24, 60)}


def test_the_window_ignores_blocks_newer_than_the_lag() -> None:
    """Blocks within ``lag`` rounds of the chosen round do not count: a replica whose commits
    trail its round by a few rounds chooses as the others do."""
    history = chain(steady(range(1, 11), down=frozenset({3})) + steady(range(11, 16)))
    s = ReputationSchedule(4, window=5, lag=6, history=history)
    assert s.candidates(16) == (0, 1, 2)  # window = rounds 6..10: 3 absent
    assert s.candidates(21) == (0, 1, 2, 3)  # window = rounds 11..15: 3 votes again


def test_a_replica_that_votes_again_is_chosen_again() -> None:
    down = steady(range(1, 21), down=frozenset({3}))
    back = [(r, r % 3, [0, 3, 1]) for r in range(21, 24)]
    s = ReputationSchedule(4, window=5, lag=2, history=chain(down + back))
    assert 3 in s.candidates(26)
    assert 3 in {s.leader(r) for r in range(26, 30)}


def test_duplicates_are_ignored_and_rewind_forgets() -> None:
    blocks = chain(steady(range(1, 21), down=frozenset({3})))
    s = ReputationSchedule(4, window=5, lag=3, history=blocks)
    s.observe_commit(blocks[5])  # an old height again: ignored
    assert s.candidates(24) == (0, 1, 2)
    s.rewind(2)
    assert s.candidates(24) == (0, 1, 2, 3)  # back to the short history: round-robin


def test_the_history_kept_is_bounded() -> None:
    s = ReputationSchedule(4, window=5, lag=3, history=chain(steady(range(1, 200))))
    assert len(s._entries) == s.keep == 8


# -- in the simulator --------------------------------------------------------------------------------


def simulate(reputation: bool, *, seed: int, crash_at: float = 2.0, restart_at: float | None = None,
             until: float = 30.0) -> Simulator:
    sim = Simulator(SimConfig(n=4, seed=seed), leader_factory=reputation_factory(4) if reputation else None)
    sim.at(crash_at, lambda s: s.crash(3))
    if restart_at is not None:
        sim.at(restart_at, lambda s: s.restart(3))
    sim.run(until=until)
    return sim


def timeouts_per_block(sim: Simulator, since: float, until: float) -> float:
    node = sim.nodes[0]
    timeouts = sum(1 for t, _, by_tc in node.rounds_entered if by_tc and since < t <= until)
    blocks = sum(1 for b in node.log if since < sim.commit_times[b.id] <= until)
    return timeouts / max(blocks, 1)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_crashed_replica_stops_being_chosen(seed: int) -> None:
    robin = simulate(False, seed=seed)
    reputation = simulate(True, seed=seed)
    for sim in (robin, reputation):
        assert check_safety(sim) == []
    # round-robin keeps paying a timeout per rotation; reputation stops choosing replica 3
    assert timeouts_per_block(robin, 10.0, 30.0) > 0.2
    assert timeouts_per_block(reputation, 10.0, 30.0) == 0
    late = [leader for node in reputation.honest if node.alive
            for _, _, leader in node.leader_choices[-50:]]
    assert 3 not in late
    assert len(reputation.nodes[0].log) > len(robin.nodes[0].log)


def test_a_recovered_replica_is_chosen_again() -> None:
    sim = simulate(True, seed=3, crash_at=2.0, restart_at=12.0, until=30.0)
    assert check_safety(sim) == []
    authors_after = {b.author for b in sim.nodes[0].log if sim.commit_times[b.id] > 20.0}
    authors_while_down = {b.author for b in sim.nodes[0].log if 6.0 < sim.commit_times[b.id] < 12.0}
    assert 3 not in authors_while_down
    assert 3 in authors_after, "the replica votes again, so it is active and leads again"


# -- teeth: schedules that disagree between replicas ------------------------------------------------


class SelfTrusting(ReputationSchedule):
    """A plausible bug: a replica never counts itself inactive (reads its own id)."""

    def __init__(self, me: int, history: Sequence[Block]) -> None:
        super().__init__(4, history=history)
        self.me = me

    def candidates(self, round: int) -> tuple[int, ...]:
        found = super().candidates(round)
        return found if self.me in found else tuple(sorted((*found, self.me)))


def with_factories(make: Callable[[int], LeaderFactory]) -> Simulator:
    sim = Simulator(SimConfig(n=4, seed=5))
    for node in sim.nodes:
        node.leader_factory = make(node.replica_id)
    sim.at(2.0, lambda s: s.crash(3))
    sim.at(8.0, lambda s: s.restart(3))
    sim.run(until=16.0)
    return sim


def test_the_leader_checker_passes_the_reputation_schedule() -> None:
    sim = with_factories(lambda me: reputation_factory(4))
    assert check_safety(sim) == []
    assert sum(len(n.leader_choices) for n in sim.honest) > 200


def test_the_leader_checker_catches_a_schedule_that_reads_the_replica_id() -> None:
    sim = with_factories(lambda me: (lambda history: SelfTrusting(me, history)))
    assert check_leaders(sim), "replica 3 chooses itself while the others skip it"
    assert check_agreement_only(sim) == [], "disagreeing leaders cost liveness, never safety"


def test_the_leader_checker_catches_a_schedule_not_rebuilt_after_restart() -> None:
    """What the node must do after a restart: rebuild from the stored log. Forgetting it makes the
    restarted replica choose differently at the same committed height."""

    def forgetful(me: int) -> LeaderFactory:
        return lambda history: ReputationSchedule(4)

    sim = with_factories(forgetful)
    assert any(v.invariant == "leaders" for v in check_leaders(sim))


def check_agreement_only(sim: Simulator) -> list[Violation]:
    return [v for v in check_safety(sim) if v.invariant != "leaders"]


def test_a_replica_that_catches_up_learns_the_synced_blocks() -> None:
    """Blocks adopted by catch-up (``on_synced``) count like any commit: the caught-up replica
    chooses what a schedule rebuilt from its log chooses (the mutant that skips them fails)."""
    config = SimConfig(n=4, seed=7, sync_interval=0.3, fetch_limit=SYNC_FETCH_LIMIT)
    sim = Simulator(config, leader_factory=reputation_factory(4))
    sim.at(1.0, lambda s: s.crash(3))
    sim.at(10.0, lambda s: s.restart(3))
    sim.run(until=16.0)
    assert check_safety(sim) == []
    assert len(sim.nodes[3].log) > len(sim.nodes[0].log) - 5
    assert sim.nodes[3].leader_choices[-1][1] > 50


class Disagreeing(RoundRobin):
    """Round-robin, except that each replica shifts every third round by its own id: in those
    rounds every replica names a different leader."""

    def __init__(self, me: int) -> None:
        super().__init__(4)
        self.me = me

    def leader(self, round: int) -> int:
        return (round + (self.me if round % 3 == 0 else 0)) % 4


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_safety_does_not_depend_on_replicas_agreeing_on_the_leader(seed: int) -> None:
    """Replicas that choose different leaders refuse each other's proposals and lose rounds, but no
    safety invariant breaks (the vote and timeout rules never read the schedule)."""
    sim = Simulator(SimConfig(n=4, seed=seed))
    for node in sim.nodes:
        node.leader_factory = lambda history, me=node.replica_id: Disagreeing(me)
    sim.at(3.0, lambda s: s.crash(2))
    sim.at(6.0, lambda s: s.restart(2))
    sim.run(until=20.0)
    assert check_leaders(sim), "the replicas disagree on leaders"
    assert check_agreement_only(sim) == []
    assert min(len(n.log) for n in sim.nodes) > 20, "the rounds in which they agree still commit"
