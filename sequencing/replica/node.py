"""One replica process: the consensus core driven by trio, over the transport, with storage.

``Node`` is the composition: it builds the rooms and wires them with the few objects and callables
each needs (none of them sees the ``Node``): ``stores`` (the two databases), ``intake`` (client
items -> own batches on disk), ``payloads`` (propose / verify payloads, peers' batches), ``commits``
(commit -> executor -> durable height), the action runner, catch-up and the peer service. It keeps
the lifecycle, the typed event loop, and the thin public methods the ports need (api/port.py
``ReplicaPort``, ``catchup.SyncTarget``, ``peer_service.ServedReplica``).

Tasks (all in one nursery): the transport (its connection readers hand consensus messages to the
core loop, batches and answers to the rooms, through ``_deliver``); the inbound dispatcher (peers'
requests that read the ledger); the core loop (one event at a time -> actions executed in
order; a ``PersistSafety`` is durable before anything after it runs); the round timer; the
batcher (``intake.run``); the executor (committed blocks -> SQLite); catch-up. See
docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, assert_never

import trio
from prometheus_client import CollectorRegistry

from consensus.actions import Action, Dropped, RoundEntered
from consensus.commit_proof import CommitProof
from consensus.core import Replica, ReplicaConfig
from consensus.crypto import KeyPair, Signer, Verifier
from consensus.leader import LeaderSchedule, RoundRobin
from consensus.messages import Block, Evidence, Proposal, Timeout, Vote, genesis_block
from consensus.pacemaker import PacemakerConfig
from consensus.reputation import ReputationSchedule
from consensus.safety import SafetyState
from network import FaultRules, Transport, TransportConfig

from ..config import ClusterConfig
from ..keys import check_own_key, committee_of
from ..rollup.batches import Batch, BatchPool
from ..rollup.transactions import Item, Run
from ..rollup.tx_window import RecentTxWindow
from ..storage import LedgerStore
from .action_runner import ActionRunner
from .batch_fetcher import BatchFetcher
from .catchup import CatchUp
from .commits import Commits
from .events import BlocksIn, Event, MessageIn, Propose, Recheck, Synced, TimerFired
from .evidence_pool import EvidencePool
from .executor import RecentCommit
from .faults import FaultInjection
from .input_guard import InputGuard
from .intake import ClientIntake, Submitted
from .mempool import Mempool
from .metrics import NodeMetrics
from .payloads import Payloads
from .peer_service import PeerService
from .recovery import recovery_floor
from .round_timer import RoundTimer
from .stores import Stores
from .watch import ClusterWatch, DashboardState
from .wire import NodeCodec

log = logging.getLogger(__name__)
T = TypeVar("T")

CONSENSUS_TYPES = (Proposal, Vote, Timeout, Evidence)
__all__ = ["Node", "NodeOptions"]


@dataclass(frozen=True, slots=True)
class NodeOptions:
    recover: bool = False
    transport: TransportConfig | None = None
    storage_crash_hook: Callable[[str], None] | None = None  # fault injection: see faults.py
    seed: int | None = None
    byzantine: str | None = None  # fault injection: a mode of faults.BYZANTINE_MODES


def leader_schedule(kind: str, size: int) -> LeaderSchedule:
    """The ``[consensus] leader`` schedule (config.LEADER_SCHEDULES; the config checked the name)."""
    return ReputationSchedule(size) if kind == "reputation" else RoundRobin(size)


class Node:
    def __init__(self, config: ClusterConfig, replica_id: int, key: KeyPair,
                 options: NodeOptions | None = None) -> None:
        self.config = config
        self.id = replica_id
        self.key = key
        self.options = options or NodeOptions()
        self.limits = config.limits
        check_own_key(config, replica_id, key)
        self.committee = committee_of(config)
        self.verifier = Verifier(self.committee)
        self.leaders = leader_schedule(config.consensus.leader, self.committee.size)
        self.metrics = NodeMetrics(replica_id)
        self.guard = InputGuard(replica_id, self.metrics.input_errors)
        self.tx_window = RecentTxWindow(blocks=self.limits.batch_ttl_blocks, txs=self.limits.dedup_window_txs)
        self.mempool = Mempool(self.limits, committed=self.tx_window.where)
        self.batches = BatchPool(self.limits.batch_ttl_blocks, author_bytes=self.limits.batch_pool_author_bytes)
        self.evidence = EvidencePool(self.limits)
        self.watch = ClusterWatch(replica_id, self.committee.size)  # for the dashboard (bounded)
        self.transport = self._make_transport(random.Random(self.options.seed))
        self.stores = Stores(self.limits.max_frame_bytes)
        self.replica: Replica | None = None
        self.recovering = False
        self.started = trio.Event()
        self._events_send, self._events = trio.open_memory_channel[Event](10_000)
        self._nursery: trio.Nursery | None = None
        self.peer_ids = [r.id for r in config.replicas if r.id != replica_id]
        self.fault_injection = FaultInjection(self._signer(), byzantine=self.options.byzantine, peers=self.peer_ids,
                                              storage_crash_hook=self.options.storage_crash_hook)
        self.fetcher = BatchFetcher(self.batches, self.stores.load_batch, self.transport.send, self.peer_ids)
        self.payloads = Payloads(
            limits=self.limits, idle_block_delay=config.timing.idle_block_delay, batches=self.batches,
            evidence=self.evidence, verifier=self.verifier, fetcher=self.fetcher, guard=self.guard,
            metrics=self.metrics, core=self._require_replica, post=self.post, nursery=self._require_nursery,
            window=self.tx_window, faults=self.fault_injection,
        )
        self.intake = ClientIntake(
            me=replica_id, limits=self.limits, interval=config.timing.batch_interval, mempool=self.mempool,
            batches=self.batches, stores=self.stores, metrics=self.metrics, link=self.transport,
            connected_peers=self.transport.connected_peers, committed_height=self._core_committed_height,
            batch_added=self.payloads.batch_added,
        )
        self.commits = Commits(
            batch_ttl_blocks=self.limits.batch_ttl_blocks, max_frame_bytes=self.limits.max_frame_bytes,
            batches=self.batches, evidence=self.evidence, stores=self.stores, metrics=self.metrics,
            fetcher=self.fetcher, cached=self.payloads.cached_content, expired=self.intake.expired,
            rebatching=self.intake.rebatching, submitted_at=self.intake.submitted_at, nursery=self._require_nursery,
            window=self.tx_window, noted=self.payloads.committed, executed=self.payloads.executed,
            watch=self.watch,
        )
        self.executor = self.commits.executor
        self.timer = RoundTimer()
        self._actions = ActionRunner(
            link=self.transport, timer=self.timer, faults=self.fault_injection, save_safety=self._save_safety,
            commit=self.commits.on_commit, record_evidence=self._on_evidence,
            request_payload=self.payloads.on_request, verify_payload=self.payloads.verify,
            proposed=self.commits.note_proposal, dropped=self._on_dropped, round_entered=self._on_round_entered,
        )
        self.catch_up = CatchUp(replica_id, self.transport, self, self.guard, self.metrics.sync_demotions)
        self.peer_service = PeerService(self, self.transport, self.catch_up, self.limits.max_frame_bytes)

    def _make_transport(self, rng: random.Random) -> Transport:
        me = self.config.replica(self.id)
        peers = {r.id: (r.host, r.peer_port) for r in self.config.replicas if r.id != self.id}
        transport = Transport(
            me=self.id, key=self.key, committee=self.committee, peers=peers,
            listen=(me.host, me.peer_port), codec=NodeCodec(self.limits.max_frame_bytes),
            config=self.options.transport or TransportConfig(max_frame_size=self.limits.max_frame_bytes),
            faults=FaultRules(random.Random(rng.getrandbits(64))), rng=rng, deliver=self._deliver,
        )
        self.metrics.watch_transport(transport.stats.snapshot)
        self.metrics.watch_links(lambda: len(transport.inbound_peers()), lambda: len(transport.outbound_peers()),
                                 transport.pending_handshakes, lambda: len(transport.connected_peers()))
        return transport

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self._open_storage()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self.transport.run)
                nursery.start_soon(self._dispatch_inbound)
                if self.recovering:
                    await self._recover()
                await self._start_core()
                nursery.start_soon(self.timer.run, self._on_timer)
                nursery.start_soon(self.executor.run)
                nursery.start_soon(self._core_loop)
                nursery.start_soon(self.intake.run)
                nursery.start_soon(self.catch_up.run)
                self.started.set()
                task_status.started()
        finally:
            with trio.CancelScope(shield=True):
                await self.stores.close()

    async def _open_storage(self) -> None:
        self.recovering = await self.stores.open(
            self.config.replica_dir(self.id), chain_id=self.config.chain_id, replica_id=self.id,
            recover=self.options.recover, crash_hook=self.fault_injection.storage_crash_hook,
        )

    async def _start_core(self) -> None:
        stores = self.stores
        ledger, safety_store = stores.require_ledger(), stores.require_safety()
        safety = await stores.safety_call(safety_store.load_safety)
        last = await stores.ledger_call(ledger.last_block)
        root, root_proof = (last if last is not None else (None, None))
        await self.commits.resume(root)
        if isinstance(self.leaders, ReputationSchedule) and root is not None:
            # the schedule is a function of the committed log: rebuilt from the stored tail, a
            # restarted replica chooses the leaders the others choose
            first = max(1, root.height - self.leaders.keep + 1)
            for block in await stores.ledger_call(ledger.blocks_between, first, root.height):
                self.leaders.observe_commit(block)
        voted_blocks = await stores.safety_call(safety_store.voted_blocks)
        timing = self.config.timing
        self.replica = Replica(
            signer=self._signer(), verifier=self.verifier, leaders=self.leaders, safety=safety,
            root=root, root_proof=root_proof, blocks=voted_blocks,
            config=ReplicaConfig(pacemaker=PacemakerConfig(
                base_timeout=timing.base_timeout, backoff=timing.backoff, max_timeout=timing.max_timeout,
            )),
        )
        await self._execute(self.replica.start())

    async def _recover(self) -> None:
        floor, high_qc = await recovery_floor(
            self.id, self.committee, self.verifier, genesis_block(self.committee.chain_id).id,
            self.catch_up, self.transport.connected_peers,
        )
        state = SafetyState(floor, high_qc, floor)
        await self.stores.safety_call(self.stores.require_safety().save_safety, state)
        await self.stores.ledger_call(self.stores.require_ledger().set_meta, "recovered_floor", str(floor))
        log.warning("replica %d recovered: signs nothing at or below round %d", self.id, floor)
        self.recovering = False

    # -- helpers -------------------------------------------------------------------------------

    def _signer(self) -> Signer:
        return Signer(self.config.chain_id, self.id, self.key)

    def _require_replica(self) -> Replica:
        assert self.replica is not None, "core not started"
        return self.replica

    def _require_nursery(self) -> trio.Nursery:
        assert self._nursery is not None
        return self._nursery

    def _core_committed_height(self) -> int:
        return self._require_replica().committed.height

    def post(self, event: Event) -> bool:
        """Hand an event to the core loop; False (and counted) if it is saturated."""
        try:
            self._events_send.send_nowait(event)
        except trio.WouldBlock:
            self.metrics.inbox_drops.inc()
            return False
        return True

    # -- inbound -------------------------------------------------------------------------------

    def _deliver(self, sender: int, message: object) -> bool:
        """The transport's connection readers offer each received message here first: consensus
        messages go to the core loop, batches and answers are handled at once (one task hop less
        per message, and never behind a peer's ledger read); False leaves a request that reads the
        ledger to :meth:`_dispatch_inbound`, through the inbox."""
        self.watch.heard_from(sender, message, trio.current_time())
        if isinstance(message, CONSENSUS_TYPES):
            self.post(MessageIn(sender, message))
            return True
        if self._nursery is None:  # not running yet: the inbox keeps it
            return False
        with self.guard.handling(type(message).__name__):
            return self.peer_service.take(sender, message)
        return True  # the guard dropped (counted, logged) an input whose handler failed

    async def _dispatch_inbound(self) -> None:
        async for sender, message in self.transport.inbox:
            if isinstance(message, CONSENSUS_TYPES):
                self.post(MessageIn(sender, message))
            else:
                with self.guard.handling(type(message).__name__):
                    await self.peer_service.handle(sender, message)

    # -- the core loop -------------------------------------------------------------------------

    async def _on_timer(self, round: int) -> None:
        self.post(TimerFired(round))

    async def _core_loop(self) -> None:
        replica = self._require_replica()
        async for event in self._events:
            with self.guard.handling(event.input):
                await self._handle_event(replica, event)

    async def _handle_event(self, replica: Replica, event: Event) -> None:
        match event:
            case MessageIn(sender, message):
                actions = replica.on_message(sender, message)
            case TimerFired(round):
                actions = replica.on_timeout(round)
            case BlocksIn(sender, blocks):
                actions = replica.on_blocks(sender, blocks)
            case Synced(blocks, proof):
                actions = replica.on_synced(blocks, proof)
                self.metrics.sync_blocks.inc(len(blocks))
            case Recheck(block):
                actions = await self.payloads.verify(block)
            case Propose(request):
                actions = self.payloads.propose(request)
            case _:
                assert_never(event)
        await self._execute(actions)

    async def _execute(self, actions: list[Action]) -> None:
        await self._actions.run(actions)

    # -- what the action runner calls besides the rooms ----------------------------------------

    async def _save_safety(self, state: SafetyState, voted: list[Block]) -> None:
        await self.stores.safety_call(self.stores.require_safety().save_safety, state, voted)

    def _on_dropped(self, action: Dropped) -> None:
        self.metrics.dropped.labels(action.kind).inc()
        if action.refusal is not None:
            self.metrics.refusals.labels(action.refusal.signing, action.refusal.reason).inc()
        log.debug("replica %d dropped %s from %d: %s", self.id, action.kind, action.sender, action.reason)

    def _on_round_entered(self, action: RoundEntered) -> None:
        self.metrics.round.set(action.round)
        self.metrics.rounds_entered.labels("tc" if action.by_tc else "qc").inc()
        self.evidence.prune(action.round)

    async def _on_evidence(self, evidence: Evidence) -> None:
        if not self.evidence.add(evidence):
            return
        replica = self._require_replica()
        await self.stores.ledger_call(self.stores.require_ledger().save_evidence, evidence, replica.round)
        self.metrics.evidence.labels(evidence.kind.name.lower()).inc()
        self.transport.broadcast(evidence)
        log.warning("replica %d: evidence of %s by replica %d in round %d", self.id,
                    evidence.kind.name.lower(), evidence.offender, evidence.round)

    # -- status --------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        replica = self.replica
        round = replica.round if replica is not None else 0
        return {
            "id": self.id,
            "chain_id": self.config.chain_id,
            "committee": [key.hex() for key in self.committee.public_keys],
            "round": round,
            "leader": self.leaders.leader(round) if round else None,
            "committed_height": self.durable_height,
            "consensus_height": replica.committed.height if replica is not None else 0,
            "last_block_hash": self.commits.durable_block_id.hex() if self.commits.durable_block_id else None,
            "txs_committed": self.commits.txs_committed,
            "high_qc_round": replica.high_qc.round if replica is not None else 0,
            "peers_connected": sorted(self.transport.connected_peers()),  # linked both ways
            "peers_inbound": sorted(self.transport.inbound_peers()),
            "peers_outbound": sorted(self.transport.outbound_peers()),
            "mempool_txs": self.mempool.tx_count,
            "pending_batches": len(self.batches),
            "pending_evidence": len(self.evidence),
            "evidence": self.evidence.total_known,
            "recovering": self.recovering,
            "syncing": self.catch_up.active,
            "started": self.started.is_set(),
        }

    # -- catch-up (catchup.SyncTarget) and peer service (peer_service.ServedReplica) -----------

    def core_height(self) -> int | None:
        """The consensus core's committed height (ahead of ``durable_height`` while the executor
        writes); None until the core has started. For catch-up."""
        return None if self.replica is None else self.replica.committed.height

    def adopt_synced(self, blocks: tuple[Block, ...], proof: CommitProof, batches: tuple[Batch, ...]) -> bool:
        """Catch-up's blocks to the core, their batch bodies to the pool (identified by digest:
        safe to keep from anyone); False if the core's inbox is full."""
        for batch in batches:
            self.batches.stash(batch)
        return self.post(Synced(blocks, proof))

    def accept_batch(self, batch: Batch, sender: int | None) -> bool:
        return self.payloads.accept_batch(batch, sender)

    @property
    def storage(self) -> LedgerStore | None:
        return self.stores.ledger

    def require_storage(self) -> LedgerStore:
        return self.stores.require_ledger()

    # The pass-throughs below hand back the room's coroutine (no extra await layer per call).

    def storage_call(self, fn: Callable[..., T], *args: Any) -> Coroutine[Any, Any, T]:
        """A call into the ledger database, in a worker thread, one at a time."""
        return self.stores.ledger_call(fn, *args)

    def load_batch(self, digest: bytes) -> Coroutine[Any, Any, Batch | None]:
        return self.stores.load_batch(digest)

    # -- API port (sequencing/api/port.py: ReplicaPort) ------------------------------------------

    @property
    def durable_height(self) -> int:
        return self.commits.durable_height

    @property
    def metrics_registry(self) -> CollectorRegistry:
        return self.metrics.registry

    def submit(self, item: Item) -> bool:
        return self.intake.submit(item)

    def submit_many(self, items: Sequence[Item]) -> Submitted:
        return self.intake.submit_many(items)

    def submit_runs(self, runs: Sequence[Run]) -> Submitted:
        return self.intake.submit_runs(runs)

    @property
    def last_arrival(self) -> int:
        """The mempool arrival number of the newest accepted item (see wait_durable)."""
        return self.mempool.arrivals

    def wait_durable(self, arrival: int, timeout: float = 10.0) -> Coroutine[Any, Any, bool]:
        return self.intake.wait_durable(arrival, timeout)

    def is_pending(self, item_id: bytes) -> bool:
        return self.intake.is_pending(item_id)

    async def wait_committed(self) -> None:
        """Return at the next change of durable_height."""
        await self.commits.committed_changed.wait()

    def dashboard_state(self) -> DashboardState:
        return DashboardState(
            base_timeout=self.config.timing.base_timeout, connected=frozenset(self.transport.connected_peers()),
            fault_rules=self.transport.faults.snapshot(), byzantine=self.options.byzantine,
            now=trio.current_time(),
        )

    def recent_commit(self, height: int) -> RecentCommit | None:
        return self.executor.recent.get(height)

    @property
    def ledger_open(self) -> bool:
        return self.stores.ledger is not None

    def read_ledger(self, read: Callable[[LedgerStore], T]) -> Coroutine[Any, Any, T]:
        """``read(ledger)`` in the storage thread, one call at a time (as storage_call)."""
        return self.stores.ledger_call(read, self.stores.require_ledger())
