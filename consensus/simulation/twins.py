"""Twins scenarios (Bano et al., "Twins: BFT Systems Made Robust"): a Byzantine replica is
modelled as two honest instances sharing one key. A scenario fixes, for each of its rounds, the
leader and a partition of the instances; a message of round r only crosses between instances that
round r's partition puts together. After the scenario's rounds the network heals.

Generation follows the shape of relab/hotstuff's generator: per round, a leader drawn from all
replica ids and a partition drawn from splits that usually separate each twin pair, with a
tendency to keep the previous round's partition (so a side can build the 2-chains that commit).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..leader import FixedSchedule, LeaderSchedule, RoundRobin
from ..messages import Block, Proposal, Timeout, Vote
from ..pacemaker import PacemakerConfig
from ..reputation import ReputationSchedule
from ..safety import SafetyRules
from .checker import Violation, check_safety
from .network import LinkConfig
from .node import SimNode
from .scenario import STRATEGIES, SYNC_FETCH_LIMIT
from .simulator import FETCH_LIMIT, SimConfig, Simulator

Partition = tuple[frozenset[int], ...]


@dataclass(frozen=True, slots=True)
class RoundPlan:
    leader: int
    partition: Partition


@dataclass(frozen=True, slots=True)
class TwinsScenario:
    n: int
    twins: tuple[int, ...]
    rounds: tuple[RoundPlan, ...]
    seed: int

    @property
    def instances(self) -> int:
        return self.n + len(self.twins)

    def describe(self) -> str:
        parts = []
        for r, plan in enumerate(self.rounds, start=1):
            groups = "|".join("".join(str(i) for i in sorted(g)) for g in plan.partition)
            parts.append(f"r{r}:L{plan.leader}[{groups}]")
        return f"n={self.n} twins={list(self.twins)} seed={self.seed} " + " ".join(parts)


@dataclass(slots=True)
class TwinsResult:
    scenario: TwinsScenario
    violations: list[Violation]
    honest_heights: list[int]
    events: int
    commits_by_instance: dict[int, int] = field(default_factory=dict)
    evidence_recorded: int = 0
    twins_diverged: bool = False


def twin_instance(n: int, twins: Sequence[int], replica: int) -> int:
    """The instance number of ``replica``'s second instance (instances 0..n-1 are the first)."""
    return n + sorted(twins).index(replica)


def _random_partition(
    rng: random.Random, n: int, twins: Sequence[int], separate_twins: float
) -> Partition:
    instances = n + len(twins)
    k = rng.choice((1, 2, 2, 2, 3))
    if k == 1:
        return (frozenset(range(instances)),)
    groups: list[set[int]] = [set() for _ in range(k)]
    placed: set[int] = set()
    if rng.random() < separate_twins:
        for replica in twins:
            a, b = rng.sample(range(k), 2)
            groups[a].add(replica)
            groups[b].add(twin_instance(n, twins, replica))
            placed.update((replica, twin_instance(n, twins, replica)))
    for instance in range(instances):
        if instance not in placed:
            groups[rng.randrange(k)].add(instance)
    return tuple(frozenset(g) for g in groups if g)


def generate_scenarios(
    *,
    n: int,
    twins: Sequence[int],
    rounds: int,
    count: int,
    seed: int,
    keep_partition: float = 0.6,
    separate_twins: float = 0.85,
    keep_leader: float = 0.0,
) -> Iterator[TwinsScenario]:
    """``keep_leader``: chance that a round keeps the previous round's leader (the lying leaders
    of lying.py act when they lead two rounds in a row); 0 draws nothing extra, so scenarios
    generated before it existed are unchanged."""
    rng = random.Random(seed)
    for index in range(count):
        plans: list[RoundPlan] = []
        partition = _random_partition(rng, n, twins, separate_twins)
        for _ in range(rounds):
            if plans and rng.random() >= keep_partition:
                partition = _random_partition(rng, n, twins, separate_twins)
            if plans and keep_leader and rng.random() < keep_leader:
                plans.append(RoundPlan(plans[-1].leader, partition))
            else:
                plans.append(RoundPlan(rng.randrange(n), partition))
        yield TwinsScenario(n, tuple(sorted(twins)), tuple(plans), seed * 1_000_003 + index)


def _message_round(body: Any) -> int | None:
    if isinstance(body, (Proposal, Vote, Timeout)):
        return body.round
    if isinstance(body, list) and body and isinstance(body[0], Block):
        return None
    return None


def run_twins(
    scenario: TwinsScenario,
    *,
    rules: Callable[[], SafetyRules] | None = None,
    extra_rounds: int = 6,
    max_time: float = 60.0,
    byzantine: str | None = None,
    node_factory: type[SimNode] | None = None,
    sync_interval: float | None = None,
    reputation: bool = False,
) -> TwinsResult:
    """Run one scenario to ``len(rounds) + extra_rounds`` rounds (healed after the scenario).
    ``byzantine`` names a strategy (scenario.STRATEGIES) that both instances of every twin run
    instead of the honest code; ``node_factory`` replaces the honest replicas' code;
    ``sync_interval`` turns catch-up on (see scenario.run_schedule); ``reputation``: every instance
    has its own reputation schedule, which chooses the leaders after the scenario's rounds."""
    chosen = {r: plan.leader for r, plan in enumerate(scenario.rounds, start=1)}
    leaders = FixedSchedule(chosen, RoundRobin(scenario.n))

    def per_instance(history: Sequence[Block]) -> LeaderSchedule:
        return FixedSchedule(chosen, ReputationSchedule(scenario.n, history=history))
    config = SimConfig(
        n=scenario.n,
        seed=scenario.seed,
        chain_id="ordo-twins",
        link=LinkConfig(min_delay=0.01, max_delay=0.05),
        pacemaker=PacemakerConfig(base_timeout=0.5, backoff=1.0, max_timeout=0.5),
        tx_interval=0.05,
        max_txs_per_block=2,
        sync_interval=sync_interval,
        fetch_limit=FETCH_LIMIT if sync_interval is None else SYNC_FETCH_LIMIT,
    )
    strategies: dict[int, type[SimNode]] = {}
    if node_factory is not None:
        strategies = dict.fromkeys(range(scenario.n), node_factory)
    if byzantine is not None:
        strategies.update(dict.fromkeys(scenario.twins, STRATEGIES[byzantine]))
    sim = Simulator(config, twins=scenario.twins, leaders=leaders, rules=rules, strategies=strategies,
                    leader_factory=per_instance if reputation else None)
    plans = scenario.rounds

    def partition_filter(src: int, dst: int, body: Any, now: float) -> bool:
        round = _message_round(body)
        if round is None:
            node = sim.nodes[src]
            round = node.replica.round if node.replica is not None else 0
        if not 1 <= round <= len(plans):
            return True
        return any(src in g and dst in g for g in plans[round - 1].partition)

    sim.network.filters.append(partition_filter)
    target = len(plans) + extra_rounds
    sim.run(until=max_time, stop=lambda s: min(n.max_round for n in s.honest) >= target)
    return TwinsResult(
        scenario,
        check_safety(sim),
        [len(n.log) for n in sim.honest],
        sim.events,
        {n.instance: len(n.log) for n in sim.nodes},
        sum(len(n.evidence) for n in sim.honest),
        _twins_diverged(sim, scenario),
    )


def _twins_diverged(sim: Simulator, scenario: TwinsScenario) -> bool:
    """Whether some twin pair committed different blocks at one height (the Byzantine replica
    forked its own instances, which honest replicas must survive)."""
    for replica in scenario.twins:
        a = sim.nodes[replica].log
        b = sim.nodes[twin_instance(scenario.n, scenario.twins, replica)].log
        if any(x.id != y.id for x, y in zip(a, b, strict=False)):
            return True
    return False
