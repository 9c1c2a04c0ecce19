"""A deterministic discrete-event simulation of a committee of ``Replica``s.

Everything random comes from one ``random.Random(seed)``; event ties break by insertion order;
no wall clock is read. Same seed and same calls, same run, bit for bit (``trace_digest``).

Two ways to drive it:

* automatic: ``run(until=...)`` pops the earliest event (message delivery, timer, client
  submission, scheduled fault) until a time, an event budget or a predicate is reached;
* manual (``manual=True``): messages wait in ``inflight`` until a test delivers, drops or
  duplicates them, and timers fire only when a test calls ``fire_timer`` — the form the
  hypothesis state machine uses.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..committee import Committee
from ..core import ReplicaConfig
from ..crypto import KeyPair, Signer, VerificationCache, Verifier
from ..leader import LeaderFactory, LeaderSchedule, RoundRobin
from ..messages import Block, BlockId, ConsensusMessage, ReplicaId, decode_message, encode_message
from ..pacemaker import PacemakerConfig
from ..safety import SafetyRules
from .network import LinkConfig, SimNetwork
from .node import SimNode
from .sync import SYNC_BATCH

NodeFactory = Callable[..., SimNode]
FETCH_LIMIT = 256


@dataclass(slots=True)
class InFlight:
    seq: int
    deliver_at: float
    src: int
    dst: int
    kind: str  # "msg" | "fetch" | "blocks" | "status?" | "status" | "sync?" | "synced"
    body: Any


@dataclass(frozen=True, slots=True)
class SimConfig:
    n: int = 4
    seed: int = 0
    chain_id: str = "ordo-sim"
    link: LinkConfig = LinkConfig()
    pacemaker: PacemakerConfig = PacemakerConfig(base_timeout=1.0, backoff=1.5, max_timeout=8.0)
    tx_interval: float | None = 0.02
    max_txs_per_block: int = 16
    persist_safety: bool = True
    wire_encoding: bool = False
    manual: bool = False
    sync_interval: float | None = None  # catch-up ticks (see sync.py); None: fetch only
    fetch_limit: int = FETCH_LIMIT  # blocks per fetch answer; small makes long gaps need catch-up


def committee_keys(n: int, chain_id: str) -> list[KeyPair]:
    return [KeyPair.from_seed(f"{chain_id}/{i}".encode()) for i in range(n)]


class Simulator:
    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        strategies: Mapping[ReplicaId, NodeFactory] | None = None,
        twins: Iterable[ReplicaId] = (),
        leaders: LeaderSchedule | None = None,
        leader_factory: LeaderFactory | None = None,
        rules: Callable[[], SafetyRules] | None = None,
        verification_cache: VerificationCache | None = None,
    ) -> None:
        self.config = cfg = config or SimConfig()
        self.rng = random.Random(cfg.seed)
        self.network = SimNetwork(random.Random(self.rng.random()), cfg.link)
        self.now = 0.0
        self._seq = 0
        self._heap: list[tuple[float, int, str, Any]] = []
        self.inflight: dict[int, InFlight] = {}
        self.timers: dict[int, tuple[int, int]] = {}
        self._trace = hashlib.blake2b(digest_size=16)
        self.events = 0

        keys = committee_keys(cfg.n, cfg.chain_id)
        self.committee = Committee(cfg.chain_id, tuple(k.public for k in keys))
        self.cache = verification_cache or VerificationCache(capacity=1 << 18)
        self.leaders = leaders or RoundRobin(cfg.n)
        self.replica_ids = range(cfg.n)
        replica_config = ReplicaConfig(pacemaker=cfg.pacemaker)
        strategies = dict(strategies or {})
        twin_ids = set(twins)

        self.nodes: list[SimNode] = []
        self.instances_of: dict[ReplicaId, list[int]] = {i: [] for i in self.replica_ids}
        plan = [(i, strategies.get(i, SimNode)) for i in self.replica_ids]
        plan += [(i, strategies.get(i, SimNode)) for i in sorted(twin_ids)]
        for replica_id, factory in plan:
            instance = len(self.nodes)
            node = factory(
                self,
                instance,
                Signer(cfg.chain_id, replica_id, keys[replica_id]),
                Verifier(self.committee, self.cache),
                self.leaders,
                config=replica_config,
                rules=rules() if rules is not None else None,
                persist_safety=cfg.persist_safety,
            )
            if leader_factory is not None:
                node.leader_factory = leader_factory
            if replica_id in twin_ids:
                node.honest = False
            self.nodes.append(node)
            self.instances_of[replica_id].append(instance)

        self.submitted: list[bytes] = []
        self._submitted_set: set[bytes] = set()
        self._uncommitted: dict[bytes, None] = {}
        self.commit_times: dict[BlockId, float] = {}
        self.validity_scan: dict[int, Any] = {}  # checker bookkeeping (see checker.check_validity)
        self.proof_scan: dict[int, Any] = {}  # and checker.check_proofs
        self.checker_verifier = Verifier(self.committee, self.cache)  # built once: checkers run often
        # (victim replica, block) -> when the block's payload reaches the victim (lying.Withholder)
        self.withheld: dict[tuple[ReplicaId, BlockId], float] = {}
        self._started = False

    # -- views ---------------------------------------------------------------------------------

    @property
    def honest(self) -> list[SimNode]:
        return [n for n in self.nodes if n.honest]

    @property
    def faulty_ids(self) -> set[ReplicaId]:
        return {n.replica_id for n in self.nodes if not n.honest}

    def trace_digest(self) -> str:
        return self._trace.hexdigest()

    def min_honest_height(self) -> int:
        return min(len(n.log) for n in self.honest)

    # -- driving -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.config.tx_interval is not None and not self.config.manual:
            self._push(self.now, "client", None)
        if self.config.sync_interval is not None and not self.config.manual:
            self._push(self.now + self.config.sync_interval, "sync", None)
        for node in self.nodes:
            node.start()

    def run(
        self,
        *,
        until: float | None = None,
        max_events: int | None = None,
        stop: Callable[[Simulator], bool] | None = None,
    ) -> None:
        self.start()
        budget = max_events
        while self._heap:
            if until is not None and self._heap[0][0] > until:
                self.now = until
                return
            if budget is not None:
                if budget <= 0:
                    return
                budget -= 1
            self._step()
            if stop is not None and stop(self):
                return
        if until is not None:
            self.now = max(self.now, until)

    def at(self, time: float, action: Callable[[Simulator], None]) -> None:
        """Schedule a fault or any other change of the world at a virtual time."""
        self._push(time, "call", action)

    def _push(self, time: float, kind: str, ref: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (time, self._seq, kind, ref))

    def _step(self) -> None:
        time, _, kind, ref = heapq.heappop(self._heap)
        self.now = max(self.now, time)
        self.events += 1
        if kind == "deliver":
            item = self.inflight.pop(ref, None)
            if item is not None:
                self._deliver(item)
        elif kind == "timer":
            instance, round, token = ref
            node = self.nodes[instance]
            if node.alive and node.timer_token == token:
                self._trace.update(b"t%d:%d" % (instance, round))
                node.fire_timer(round)
        elif kind == "client":
            self.submit()
            interval = self.config.tx_interval
            if interval is not None:
                self._push(self.now + interval, "client", None)
        elif kind == "call":
            ref(self)
        elif kind == "sync":
            for node in self.nodes:
                if node.alive:
                    node.catchup.tick()
            assert self.config.sync_interval is not None
            self._push(self.now + self.config.sync_interval, "sync", None)

    # -- manual driving ------------------------------------------------------------------------

    def pending(self) -> list[int]:
        return sorted(self.inflight)

    def deliver(self, seq: int) -> None:
        item = self.inflight.pop(seq, None)
        if item is not None:
            self.events += 1
            self._deliver(item)

    def drop(self, seq: int) -> None:
        self.inflight.pop(seq, None)

    def duplicate(self, seq: int) -> None:
        item = self.inflight.get(seq)
        if item is not None:
            self._enqueue(item.src, item.dst, item.kind, item.body, 0.0)

    def fire_timer(self, instance: int) -> None:
        node = self.nodes[instance]
        timer = self.timers.get(instance)
        if timer is None or not node.alive or timer[1] != node.timer_token:
            return
        self.events += 1
        self._trace.update(b"t%d:%d" % (instance, timer[0]))
        node.fire_timer(timer[0])

    # -- faults --------------------------------------------------------------------------------

    def crash(self, instance: int) -> None:
        node = self.nodes[instance]
        if node.alive:
            self._trace.update(b"crash%d" % instance)
            node.crash()
            self.timers.pop(instance, None)

    def restart(self, instance: int) -> None:
        node = self.nodes[instance]
        if not node.alive:
            self._trace.update(b"restart%d" % instance)
            node.start()

    def partition(self, groups: Iterable[Iterable[int]]) -> None:
        self.network.partition(groups)

    def heal(self) -> None:
        self.network.heal()

    # -- transport -----------------------------------------------------------------------------

    def send(self, node: SimNode, to: ReplicaId, message: ConsensusMessage) -> None:
        if self.config.wire_encoding:
            message = decode_message(encode_message(message))
        for dst in self.instances_of.get(to, ()):
            if dst != node.instance:
                self._transmit(node.instance, dst, "msg", message)

    def request_blocks(self, node: SimNode, peer: ReplicaId, target: BlockId, above: int) -> None:
        for dst in self.instances_of.get(peer, ())[:1]:
            self._transmit(node.instance, dst, "fetch", (target, above))

    def ask_statuses(self, node: SimNode) -> None:
        for peer in self.replica_ids:
            if peer != node.replica_id:
                for dst in self.instances_of.get(peer, ())[:1]:
                    self._transmit(node.instance, dst, "status?", None)

    def request_sync(self, node: SimNode, peer: ReplicaId, from_height: int) -> None:
        for dst in self.instances_of.get(peer, ())[:1]:
            self._transmit(node.instance, dst, "sync?", from_height)

    def _transmit(self, src: int, dst: int, kind: str, body: Any) -> None:
        for delay in self.network.delays(src, dst, body, self.now):
            self._enqueue(src, dst, kind, body, delay)

    def _enqueue(self, src: int, dst: int, kind: str, body: Any, delay: float) -> None:
        self._seq += 1
        item = InFlight(self._seq, self.now + delay, src, dst, kind, body)
        self.inflight[item.seq] = item
        if not self.config.manual:
            heapq.heappush(self._heap, (item.deliver_at, item.seq, "deliver", item.seq))

    def _deliver(self, item: InFlight) -> None:
        src, dst = self.nodes[item.src], self.nodes[item.dst]
        if not dst.alive:
            return
        if not self.network.connected(item.src, item.dst, item.body, self.now):
            return
        self._trace.update(b"%s%d>%d:%s" % (item.kind.encode(), item.src, item.dst,
                                            type(item.body).__name__.encode()))
        if item.kind == "msg":
            dst.deliver(src.replica_id, item.body)
        elif item.kind == "fetch":
            target, above = item.body
            blocks = dst.serve_blocks(target, above, self.config.fetch_limit)
            if blocks:
                self._transmit(item.dst, item.src, "blocks", blocks)
        elif item.kind == "blocks":
            dst.deliver_blocks(src.replica_id, item.body)
        elif item.kind == "status?":
            self._transmit(item.dst, item.src, "status", dst.status_height())
        elif item.kind == "status":
            dst.catchup.on_status(src.replica_id, item.body)
        elif item.kind == "sync?":
            answer = dst.serve_sync(item.body, SYNC_BATCH)
            if answer is not None:
                self._transmit(item.dst, item.src, "synced", answer)
        elif item.kind == "synced":
            dst.catchup.on_blocks(src.replica_id, *item.body)

    def schedule_timer(self, node: SimNode, round: int, duration: float, token: int) -> None:
        self.timers[node.instance] = (round, token)
        if not self.config.manual:
            self._push(self.now + duration, "timer", (node.instance, round, token))

    # -- clients -------------------------------------------------------------------------------

    def submit(self, count: int = 1) -> list[bytes]:
        out = []
        for _ in range(count):
            tx = b"tx-%d" % len(self.submitted)
            self.submitted.append(tx)
            self._submitted_set.add(tx)
            self._uncommitted[tx] = None
            out.append(tx)
        return out

    def was_submitted(self, tx: bytes) -> bool:
        return tx in self._submitted_set

    def pick_transactions(self, exclude: set[bytes]) -> list[bytes]:
        out: list[bytes] = []
        limit = self.config.max_txs_per_block
        for tx in self._uncommitted:
            if tx not in exclude:
                out.append(tx)
                if len(out) >= limit:
                    break
        return out

    def on_commit(self, node: SimNode, block: Block) -> None:
        self._trace.update(b"c%d:" % node.instance + block.id)
        self.commit_times.setdefault(block.id, self.now)
        if node.honest:
            for tx in node.disk.committed_txs.intersection(self._uncommitted):
                del self._uncommitted[tx]
