"""A hypothesis state machine over the manual simulator: hypothesis chooses every delivery, drop,
duplication, reordering (any in-flight message may go next), partition, heal, crash, restart,
timer expiry and client submission, and the invariants are checked after every step."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from consensus.simulation import DoubleVoter, EquivocatingLeader, SimConfig, Simulator, check_safety
from consensus.simulation.lying import StaleQcLeader, TimeoutForger, UnderQuorumQcLeader
from consensus.simulation.node import SimNode
from consensus.simulation.scenario import leader_schedule

# Strategies that act on messages alone (the manual simulator runs no scheduled calls, so the
# forgers that act after a delay and the payload withholder would be inert here).
STRATEGIES: dict[str, type[SimNode] | None] = {
    "none": None,
    "equivocate": EquivocatingLeader,
    "double-vote": DoubleVoter,
    "stale-qc": StaleQcLeader,
    "short-qc": UnderQuorumQcLeader,
    "forge-timeout": TimeoutForger,
}


class ConsensusMachine(RuleBasedStateMachine):
    sim: Simulator
    node_factory: type[SimNode] = SimNode

    @initialize(
        n=st.sampled_from([4, 4, 7]),
        byzantine=st.sampled_from(sorted(STRATEGIES)),
        who=st.integers(0, 6),
        seed=st.integers(0, 2**16),
        span=st.sampled_from([1, 2]),
    )
    def setup(self, n: int, byzantine: str, who: int, seed: int, span: int = 1) -> None:
        factory = STRATEGIES[byzantine]
        strategies = {i: self.node_factory for i in range(n)}
        if factory is not None:
            strategies[who % n] = factory
        self.sim = Simulator(SimConfig(n=n, seed=seed, manual=True, tx_interval=None),
                             strategies=strategies, leaders=leader_schedule(n, span))
        self.sim.submit(3)
        self.sim.start()

    @property
    def n(self) -> int:
        return len(self.sim.nodes)

    def _pick(self, i: int) -> int:
        pending = self.sim.pending()
        return pending[i % len(pending)]

    @precondition(lambda self: self.sim.inflight)
    @rule(i=st.integers(0, 10**6))
    def deliver(self, i: int) -> None:
        self.sim.deliver(self._pick(i))

    @precondition(lambda self: self.sim.inflight)
    @rule(count=st.integers(1, 40))
    def deliver_oldest(self, count: int) -> None:
        for seq in self.sim.pending()[:count]:
            self.sim.deliver(seq)

    @rule(count=st.integers(1, 300))
    def progress(self, count: int) -> None:
        """Flush up to ``count`` messages oldest first (including the replies they cause), or
        fire every timer when nothing is in flight: lets runs reach deep rounds between faults."""
        if not self.sim.inflight:
            for instance in range(self.n):
                self.sim.fire_timer(instance)
            return
        for _ in range(count):
            pending = self.sim.pending()
            if not pending:
                return
            self.sim.deliver(pending[0])

    @precondition(lambda self: self.sim.inflight)
    @rule(i=st.integers(0, 10**6))
    def drop(self, i: int) -> None:
        self.sim.drop(self._pick(i))

    @precondition(lambda self: self.sim.inflight)
    @rule(i=st.integers(0, 10**6))
    def duplicate(self, i: int) -> None:
        self.sim.duplicate(self._pick(i))

    @rule(instance=st.integers(0, 6))
    def fire_timer(self, instance: int) -> None:
        self.sim.fire_timer(instance % self.n)

    @rule(assignment=st.lists(st.integers(0, 1), min_size=7, max_size=7))
    def partition(self, assignment: list[int]) -> None:
        groups = [[i for i in range(self.n) if assignment[i] == g] for g in (0, 1)]
        self.sim.partition([g for g in groups if g])

    @rule()
    def heal(self) -> None:
        self.sim.heal()

    @rule(instance=st.integers(0, 6))
    def crash(self, instance: int) -> None:
        node = self.sim.nodes[instance % self.n]
        if node.honest:
            self.sim.crash(node.instance)

    @rule(instance=st.integers(0, 6))
    def restart(self, instance: int) -> None:
        self.sim.restart(instance % self.n)

    @rule(count=st.integers(1, 3))
    def submit(self, count: int) -> None:
        self.sim.submit(count)

    @invariant()
    def safe(self) -> None:
        if hasattr(self, "sim"):
            violations = check_safety(self.sim)
            assert violations == [], [str(v) for v in violations]


ConsensusMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=100, deadline=None)
TestConsensusMachine = ConsensusMachine.TestCase


@pytest.mark.slow
def test_consensus_machine_slow() -> None:
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        ConsensusMachine, settings=settings(max_examples=600, stateful_step_count=150, deadline=None)
    )


def test_machine_reaches_commits() -> None:
    """The machine's rules must be able to drive the committee to commits at all, or its safety
    checks would be vacuous."""
    machine = ConsensusMachine()
    machine.setup(n=4, byzantine="none", who=0, seed=1)
    for _ in range(100):
        machine.progress(300)
        if machine.sim.min_honest_height() >= 5:
            break
    machine.safe()
    assert machine.sim.min_honest_height() >= 5
