"""Fault schedules: a seeded committee, Byzantine replicas, timed faults, then GST (global
stabilisation: everything healed and restarted) and a window in which liveness is measured."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..leader import FunctionSchedule, LeaderFactory, LeaderSchedule, RoundRobin
from ..messages import Block
from ..pacemaker import PacemakerConfig
from ..reputation import ReputationSchedule
from ..safety import SafetyRules
from .byzantine import DoubleVoter, EquivocatingLeader, SilentNode
from .checker import Violation, check_safety
from .lying import QcForger, StaleQcLeader, TcForger, TimeoutForger, UnderQuorumQcLeader
from .lying_peers import HeightLiar, SyncRewriter, Withholder
from .network import LinkConfig
from .node import SimNode
from .simulator import FETCH_LIMIT, SimConfig, Simulator

SYNC_FETCH_LIMIT = 4

STRATEGIES: dict[str, type[SimNode]] = {
    "silent": SilentNode,
    "equivocate": EquivocatingLeader,
    "double-vote": DoubleVoter,
    "stale-qc": StaleQcLeader,
    "forge-tc": TcForger,
    "forge-qc": QcForger,
    "short-qc": UnderQuorumQcLeader,
    "forge-timeout": TimeoutForger,
    "withhold": Withholder,
    "height-liar": HeightLiar,
    "sync-rewrite": SyncRewriter,
}


def leader_schedule(n: int, span: int) -> LeaderSchedule:
    """Round-robin, each leader keeping ``span`` consecutive rounds."""
    if span == 1:
        return RoundRobin(n)
    return FunctionSchedule(lambda r: (r // span) % n)


def reputation_factory(n: int) -> LeaderFactory:
    """Each replica incarnation gets its own reputation schedule, rebuilt from its committed log."""

    def build(history: Sequence[Block]) -> LeaderSchedule:
        return ReputationSchedule(n, history=history)

    return build


@dataclass(frozen=True, slots=True)
class Fault:
    at: float
    kind: str  # "partition" | "heal" | "crash" | "restart" | "links"
    groups: tuple[tuple[int, ...], ...] = ()
    instance: int = -1
    link: LinkConfig | None = None

    def apply(self, sim: Simulator) -> None:
        if self.kind == "partition":
            sim.partition(self.groups)
        elif self.kind == "heal":
            sim.heal()
        elif self.kind == "crash":
            sim.crash(self.instance)
        elif self.kind == "restart":
            sim.restart(self.instance)
        elif self.kind == "links" and self.link is not None:
            sim.network.set_all_links(self.link)
        else:
            raise ValueError(f"unknown fault {self.kind!r}")


@dataclass(frozen=True, slots=True)
class Schedule:
    n: int = 4
    seed: int = 0
    byzantine: Mapping[int, str] = field(default_factory=dict)
    faults: tuple[Fault, ...] = ()
    gst: float = 5.0
    window: float = 10.0
    link: LinkConfig = LinkConfig(min_delay=0.01, max_delay=0.05)
    leader_span: int = 1
    sync_interval: float | None = None  # catch-up (sync.py) besides fetching
    leaders: str = "round-robin"  # | "reputation" (leader_span is then ignored)


@dataclass(slots=True)
class ScheduleResult:
    violations: list[Violation]
    heights: list[int]
    round_at_gst: int
    first_commit_round_after_gst: int | None
    rounds_to_commit_after_gst: int | None
    events: int
    sim: Simulator


def run_schedule(
    schedule: Schedule,
    *,
    rules: Callable[[], SafetyRules] | None = None,
    node_factory: type[SimNode] | None = None,
) -> ScheduleResult:
    strategies: dict[int, Callable[..., SimNode]] = {
        i: STRATEGIES[name] for i, name in schedule.byzantine.items()
    }
    if node_factory is not None:
        for i in range(schedule.n):
            strategies.setdefault(i, node_factory)
    sim = Simulator(
        SimConfig(
            n=schedule.n,
            seed=schedule.seed,
            link=schedule.link,
            pacemaker=PacemakerConfig(base_timeout=0.4, backoff=1.5, max_timeout=2.0),
            tx_interval=0.05,
            max_txs_per_block=4,
            sync_interval=schedule.sync_interval,
            # with catch-up on, fetching serves only short gaps (a long one is caught up)
            fetch_limit=FETCH_LIMIT if schedule.sync_interval is None else SYNC_FETCH_LIMIT,
        ),
        strategies=strategies,
        rules=rules,
        leaders=leader_schedule(schedule.n, schedule.leader_span),
        leader_factory=reputation_factory(schedule.n) if schedule.leaders == "reputation" else None,
    )
    for fault in schedule.faults:
        if fault.at < schedule.gst:
            sim.at(fault.at, fault.apply)
    sim.at(schedule.gst, _stabilise(schedule.link))
    sim.run(until=schedule.gst)
    round_at_gst = max((n.max_round for n in sim.honest), default=0)
    sim.run(until=schedule.gst + schedule.window)
    first = _first_commit_after(sim, round_at_gst)
    return ScheduleResult(
        check_safety(sim),
        [len(n.log) for n in sim.honest],
        round_at_gst,
        first,
        None if first is None else first - round_at_gst,
        sim.events,
        sim,
    )


def _stabilise(link: LinkConfig) -> Callable[[Simulator], None]:
    def apply(sim: Simulator) -> None:
        sim.heal()
        sim.network.set_all_links(link)
        for node in sim.nodes:
            if not node.alive:
                sim.restart(node.instance)

    return apply


def _first_commit_after(sim: Simulator, round: int) -> int | None:
    """Round of the first block above ``round`` that every honest replica committed."""
    logs = [n.log for n in sim.honest]
    if not logs:
        return None
    common = min(len(log) for log in logs)
    for block in logs[0][:common]:
        if block.round > round:
            return block.round
    return None
