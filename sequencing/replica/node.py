"""One replica process: the consensus core driven by trio, over the transport, with storage.

Tasks (all in one nursery): the transport; the inbound dispatcher (consensus messages to the core,
node requests answered directly); the core loop (one event at a time -> actions executed in
order; a ``PersistSafety`` is durable before anything after it runs); the round timer; the
batcher; the executor (committed blocks -> SQLite); catch-up. See docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, assert_never

import trio
from prometheus_client import CollectorRegistry

from consensus.actions import Action, Commit, Dropped, RequestPayload, RoundEntered
from consensus.commit_proof import CommitProof
from consensus.core import Replica, ReplicaConfig
from consensus.crypto import KeyPair, Signer, Verifier
from consensus.encoding import hash_bytes
from consensus.errors import ConsensusError
from consensus.leader import RoundRobin
from consensus.messages import Block, Evidence, Proposal, Timeout, Vote, genesis_block
from consensus.pacemaker import PacemakerConfig
from consensus.safety import SafetyState
from network import FaultRules, Transport, TransportConfig

from ..config import ClusterConfig
from ..keys import check_own_key, committee_of
from ..rollup.batches import Batch, BatchPool
from ..rollup.block_content import BlockContent, BlockPayload
from ..rollup.transactions import Item, item_txs
from ..storage import (
    DATABASE_FILES,
    CommitRecord,
    CorruptDatabase,
    LedgerStore,
    MissingDatabase,
    SafetyStore,
    open_stores,
)
from .action_runner import ActionRunner
from .batch_fetcher import BatchFetcher
from .catchup import CatchUp
from .errors import NodeStartError
from .events import BlocksIn, Event, MessageIn, Propose, Recheck, Synced, TimerFired
from .evidence_pool import EvidencePool
from .executor import Committed, Executor
from .faults import FaultInjection
from .input_guard import InputGuard
from .mempool import Mempool
from .metrics import NodeMetrics
from .payload_rules import Ancestry, PayloadRejected, build_payload, check_payload
from .peer_service import PeerService
from .recovery import foreign_database, recovery_floor
from .round_timer import RoundTimer
from .wire import BatchMsg, NodeCodec

log = logging.getLogger(__name__)
T = TypeVar("T")

CONSENSUS_TYPES = (Proposal, Vote, Timeout, Evidence)
__all__ = ["DATABASE_FILES", "Node", "NodeOptions", "NodeStartError"]
BATCH_PRUNE_EVERY = 64  # blocks between deletions of expired batch rows (docs/ARCHITECTURE.md)


@dataclass(frozen=True, slots=True)
class NodeOptions:
    recover: bool = False
    transport: TransportConfig | None = None
    storage_crash_hook: Callable[[str], None] | None = None  # fault injection: see faults.py
    seed: int | None = None
    byzantine: str | None = None  # fault injection: a mode of faults.BYZANTINE_MODES


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
        self.leaders = RoundRobin(self.committee.size)
        self.metrics = NodeMetrics(replica_id)
        self.guard = InputGuard(replica_id, self.metrics.input_errors)
        self.mempool = Mempool(self.limits)
        self.batches = BatchPool(self.limits.batch_ttl_blocks)
        self.evidence = EvidencePool(self.limits)
        rng = random.Random(self.options.seed)
        me = config.replica(replica_id)
        peers = {r.id: (r.host, r.peer_port) for r in config.replicas if r.id != replica_id}
        transport_config = self.options.transport or TransportConfig(
            max_frame_size=self.limits.max_frame_bytes
        )
        self.transport = Transport(
            me=replica_id, key=key, committee=self.committee, peers=peers,
            listen=(me.host, me.peer_port), codec=NodeCodec(self.limits.max_frame_bytes),
            config=transport_config, faults=FaultRules(random.Random(rng.getrandbits(64))),
            rng=rng,
        )
        self.metrics.watch_transport(self.transport.stats.snapshot)
        t = self.transport
        self.metrics.watch_links(lambda: len(t.inbound_peers()), lambda: len(t.outbound_peers()), t.pending_handshakes)
        self.peer_ids = [r.id for r in config.replicas if r.id != replica_id]
        self.fetcher = BatchFetcher(self.batches, self.load_batch, self.transport.send, self.peer_ids)
        self.executor = Executor(self.fetcher, self._write_records, self._on_written, self.cached_content)
        self.timer = RoundTimer()
        self.fault_injection = FaultInjection(self._signer(), byzantine=self.options.byzantine,
                                     storage_crash_hook=self.options.storage_crash_hook)
        self._actions = ActionRunner(
            link=self.transport, timer=self.timer, faults=self.fault_injection, save_safety=self._save_safety,
            commit=self._on_commit, record_evidence=self._on_evidence,
            request_payload=self._on_request_payload, verify_payload=self._verify_payload,
            proposed=self._note_proposal, dropped=self._on_dropped, round_entered=self._on_round_entered,
        )
        self.storage: LedgerStore | None = None  # ordo.sqlite: the committed chain, batches, evidence
        self.safety_store: SafetyStore | None = None  # safety.sqlite: safety state + voted blocks
        self._content_cache: OrderedDict[bytes, BlockContent] = OrderedDict()
        self.replica: Replica | None = None
        self.recovering = False
        self.durable_height = 0
        self.durable_block_id: bytes | None = None
        self.txs_committed = 0
        self.committed_changed = trio.Event()
        self.started = trio.Event()
        self._storage_lock = trio.Lock()
        self._safety_lock = trio.Lock()
        self._events_send, self._events = trio.open_memory_channel[Event](10_000)
        self._batch_seq = 0
        self._rebatching: dict[bytes, set[bytes]] = {}  # expired own batch -> its items not re-batched yet
        self.durable_arrival = 0  # every mempool arrival up to this one is in a batch on disk
        self._batched = trio.Event()
        self._batch_added = trio.Event()  # set when a batch enters the pool (wakes an idle leader)
        self._submitted_at: dict[bytes, float] = {}
        self._proposed_at: dict[bytes, float] = {}
        self._nursery: trio.Nursery | None = None
        self.catch_up = CatchUp(replica_id, self.transport, self, self.guard, self.metrics.sync_demotions)
        self.peer_service = PeerService(self, self.transport, self.catch_up, self.limits.max_frame_bytes)

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
                nursery.start_soon(self._batcher)
                nursery.start_soon(self.catch_up.run)
                self.started.set()
                task_status.started()
        finally:
            with trio.CancelScope(shield=True):
                if self.storage is not None:
                    await self.storage_call(self.storage.close)
                if self.safety_store is not None:
                    await self._safety_call(self.safety_store.close)

    async def _open_storage(self) -> None:
        """Open the ledger database and the safety database; if either is missing or unreadable
        the replica may have forgotten what it signed, so it refuses to start without --recover."""
        directory = self.config.replica_dir(self.id)
        try:
            stores = await trio.to_thread.run_sync(partial(self._open_stores, directory, create=False))
        except (MissingDatabase, CorruptDatabase) as exc:
            path = exc.path or directory
            problem = f"{path}: missing or empty" if isinstance(exc, MissingDatabase) else str(exc)
            foreign = foreign_database(path, self.config.chain_id, self.id)
            if foreign is not None:
                raise NodeStartError(f"replica {self.id}: {foreign}: wrong cluster.toml or data_dir? "
                                     "(not a lost disk: --recover would set this database aside)") from None
            if not self.options.recover:
                raise NodeStartError(
                    f"replica {self.id}: database {problem}. It may have signed messages before losing "
                    "its database; starting it fresh could make it equivocate. Start it with --recover to rebuild "
                    "from peers (it stays silent until it is safe to sign)."
                ) from None
            suffix = f".unreadable-{int(time.time())}"
            for path in (directory / name for name in DATABASE_FILES):
                if path.exists():
                    path.rename(path.with_name(path.name + suffix))
            stores = await trio.to_thread.run_sync(partial(self._open_stores, directory, create=True))
            self.recovering = True
        self.storage, self.safety_store = stores
        if self.fault_injection.storage_crash_hook is not None:
            self.storage.crash_hook = self.fault_injection.storage_crash_hook
            self.safety_store.crash_hook = self.fault_injection.storage_crash_hook

    def _open_stores(self, directory: Path, *, create: bool) -> tuple[LedgerStore, SafetyStore]:
        return open_stores(directory, chain_id=self.config.chain_id, replica_id=self.id, create=create)

    async def _start_core(self) -> None:
        storage = self.require_storage()
        safety_store = self._require_safety_store()
        safety = await self._safety_call(safety_store.load_safety)
        last = await self.storage_call(storage.last_block)
        root, root_proof = (last if last is not None else (None, None))
        self.durable_height = 0 if root is None else root.height
        self.durable_block_id = None if root is None else root.id
        self.txs_committed = await self.storage_call(storage.txs_committed)
        self.metrics.committed_height.set(self.durable_height)
        for digest, _author, _created, body in await self.storage_call(storage.pending_batches):
            try:
                self.batches.add(Batch.decode(body, self.limits.max_frame_bytes))
            except ConsensusError:
                log.warning("replica %d: stored batch %s unreadable, skipped", self.id, digest.hex()[:12])
        for evidence, committed in await self.storage_call(storage.evidence_list):
            if committed is None:
                self.evidence.add(evidence)
            else:
                self.evidence.mark_committed([evidence])
        voted_blocks = await self._safety_call(safety_store.voted_blocks)
        horizon = max(0, self.durable_height - 2 * self.limits.batch_ttl_blocks)
        self.batches.remember_committed(await self.storage_call(storage.committed_batches_since, horizon))
        timing = self.config.timing
        self.replica = Replica(
            signer=self._signer(),
            verifier=self.verifier,
            leaders=self.leaders,
            safety=safety,
            root=root,
            root_proof=root_proof,
            blocks=voted_blocks,
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
        await self._safety_call(self._require_safety_store().save_safety, state)
        await self.storage_call(self.require_storage().set_meta, "recovered_floor", str(floor))
        log.warning("replica %d recovered: signs nothing at or below round %d", self.id, floor)
        self.recovering = False

    # -- helpers -------------------------------------------------------------------------------

    def _signer(self) -> Signer:
        return Signer(self.config.chain_id, self.id, self.key)

    def require_storage(self) -> LedgerStore:
        assert self.storage is not None, "storage not open"
        return self.storage

    def _require_replica(self) -> Replica:
        assert self.replica is not None, "core not started"
        return self.replica

    def _require_safety_store(self) -> SafetyStore:
        assert self.safety_store is not None, "safety store not open"
        return self.safety_store

    async def storage_call(self, fn: Callable[..., T], *args: Any) -> T:
        """A call into the ledger database, in a worker thread, one at a time."""
        async with self._storage_lock:
            return await trio.to_thread.run_sync(partial(fn, *args))

    async def _safety_call(self, fn: Callable[..., T], *args: Any) -> T:
        """A call into the safety database: its own lock, so a vote never waits for a ledger write."""
        async with self._safety_lock:
            return await trio.to_thread.run_sync(partial(fn, *args))

    async def load_batch(self, digest: bytes) -> Batch | None:
        body = await self.storage_call(self.require_storage().load_batch, digest)
        if body is None:
            return None
        return Batch.decode(body, self.limits.max_frame_bytes)

    def post(self, event: Event) -> bool:
        """Hand an event to the core loop; False (and counted) if it is saturated."""
        try:
            self._events_send.send_nowait(event)
        except trio.WouldBlock:
            self.metrics.inbox_drops.inc()
            return False
        return True

    # -- inbound -------------------------------------------------------------------------------

    async def _dispatch_inbound(self) -> None:
        async for sender, message in self.transport.inbox:
            if isinstance(message, CONSENSUS_TYPES):
                self.post(MessageIn(sender, message))
            else:
                with self.guard.handling(type(message).__name__):
                    await self.peer_service.handle(sender, message)

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
        """A batch body from a peer (broadcast by its author, or a fetch response)."""
        if sender is not None and batch.author != sender:
            return False
        try:
            batch.validate(self.limits)
        except ValueError:
            return False
        if self.batches.committed_at(batch.digest) is not None:
            self.batches.stash(batch)  # a committed block's batch (executor, catch-up): keep the body
            self.fetcher.arrived(batch)
            return False
        added = self.batches.add(batch)  # peers' batches stay in memory: after a crash they are refetched
        self.fetcher.arrived(batch)
        if added:
            self._note_batch()
        self.metrics.pending_batches.set(len(self.batches))
        return added

    async def _persist_batch(self, batch: Batch) -> None:
        """Write an own batch; the rows of expired batches whose last items it carries go in the same
        transaction, so after a crash their items are either still queued by the expired row or in
        this batch, never both (docs/ARCHITECTURE.md, "Batches expire")."""
        replaced = []
        for digest, waiting in self._rebatching.items():
            waiting.difference_update(item.id for item in batch.items)
            if not waiting:
                replaced.append(digest)
        for digest in replaced:
            del self._rebatching[digest]
        storage = self.require_storage()
        await self.storage_call(storage.save_batch, batch.digest, batch.author, batch.created_height,
                                batch.encode(), replaced)

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
                actions = await self._verify_payload(block)
            case Propose(request):
                actions = self._propose(request)
            case _:
                assert_never(event)
        await self._execute(actions)

    async def _execute(self, actions: list[Action]) -> None:
        await self._actions.run(actions)
        self.metrics.peers_connected.set(len(self.transport.connected_peers()))

    async def _save_safety(self, state: SafetyState, voted: list[Block]) -> None:
        await self._safety_call(self._require_safety_store().save_safety, state, voted)

    def _on_request_payload(self, request: RequestPayload) -> list[Action]:
        if len(self.batches) or self.evidence or self.config.timing.idle_block_delay <= 0:
            return self._propose(request)
        self._require_nursery().start_soon(self._propose_when_busy, request)
        return []

    def _note_proposal(self, proposal: Proposal) -> None:
        self._proposed_at[proposal.block.id] = trio.current_time()

    def _on_dropped(self, action: Dropped) -> None:
        self.metrics.dropped.labels(action.kind).inc()
        if action.refusal is not None:
            self.metrics.refusals.labels(action.refusal.signing, action.refusal.reason).inc()
        log.debug("replica %d dropped %s from %d: %s", self.id, action.kind, action.sender, action.reason)

    def _on_round_entered(self, action: RoundEntered) -> None:
        self.metrics.round.set(action.round)
        self.metrics.rounds_entered.labels("tc" if action.by_tc else "qc").inc()
        self.evidence.prune(action.round)

    async def _propose_when_busy(self, request: RequestPayload) -> None:
        """Nothing to propose: wait up to ``idle_block_delay`` for a batch, then propose anyway
        (an idle cluster commits a few empty blocks per second instead of hundreds)."""
        with trio.move_on_after(self.config.timing.idle_block_delay):
            while not len(self.batches):
                await self._batch_added.wait()
        self.post(Propose(request))

    def _note_batch(self) -> None:
        self._batch_added.set()
        self._batch_added = trio.Event()

    def _propose(self, request: RequestPayload) -> list[Action]:
        replica = self._require_replica()
        payload, content = build_payload(
            height=request.parent.height + 1, round=request.round,
            ancestry=Ancestry.of(request.ancestors), batches=self.batches, evidence=self.evidence,
            limits=self.limits,
        )
        encoded = payload.encode()
        self.remember_content(encoded, content)
        return replica.on_payload_ready(request.round, encoded, content.data_root)

    async def _verify_payload(self, block: Block) -> list[Action]:
        replica = self._require_replica()
        if block.id not in replica.tree or block.height <= replica.committed.height:
            self.metrics.dropped.labels("StalePayload").inc()  # committed or pruned meanwhile
            return []
        try:
            payload = BlockPayload.decode(block.payload)
        except ConsensusError as exc:
            self.metrics.rejected_payloads.inc()
            return replica.on_payload_verified(block.id, False, f"undecodable payload: {exc}")
        bodies = [self.batches.get(d) for d in payload.batches]
        if any(b is None for b in bodies):
            self._require_nursery().start_soon(self._fetch_for_proposal, block, payload)
            return []
        try:
            content = check_payload(
                block, payload, [b for b in bodies if b is not None],
                ancestry=Ancestry.of(replica.tree.path_from_root(block.parent_id)),
                batch_committed=lambda d: self.batches.committed_at(d) is not None,
                evidence=self.evidence, verifier=self.verifier, limits=self.limits,
            )
        except PayloadRejected as exc:
            self.metrics.rejected_payloads.inc()
            return replica.on_payload_verified(block.id, False, str(exc))
        self.remember_content(block.payload, content)
        return replica.on_payload_verified(block.id, True)

    def remember_content(self, payload: bytes, content: BlockContent) -> None:
        """Keep the content assembled from a payload, so the executor need not assemble it again
        (the payload fixes the batches, hence everything in the content)."""
        self._content_cache[hash_bytes(payload)] = content
        while len(self._content_cache) > 256:
            self._content_cache.popitem(last=False)

    def cached_content(self, payload: bytes) -> BlockContent | None:
        return self._content_cache.pop(hash_bytes(payload), None)

    async def _fetch_for_proposal(self, block: Block, payload: BlockPayload) -> None:
        replica = self._require_replica()
        with self.guard.handling("batch_fetch"):
            got = await self.fetcher.get(
                payload.batches, prefer=[block.author],
                give_up=lambda: replica.round > block.round,
            )
            if got is None:
                return
            for batch in got:
                if self.batches.committed_at(batch.digest) is None:
                    self.batches.add(batch)
            self.post(Recheck(block))

    def _require_nursery(self) -> trio.Nursery:
        assert self._nursery is not None
        return self._nursery

    # -- commits -------------------------------------------------------------------------------

    async def _on_commit(self, commit: Commit) -> None:
        block = commit.block
        try:
            payload = BlockPayload.decode(block.payload)
        except ConsensusError:
            payload = BlockPayload((), ())
        self.batches.mark_committed(payload.batches, block.height)
        self.evidence.mark_committed(payload.evidence)
        for batch in self.batches.expire(block.height):
            if batch.author == self.id:
                self.mempool.requeue(list(batch.items))
                self._rebatching[batch.digest] = {item.id for item in batch.items}
        await self.executor.send.send(Committed(block, commit.proof))

    async def _write_records(self, records: list[CommitRecord]) -> None:
        storage = self.require_storage()
        if len(records) == 1:
            await self.storage_call(storage.append, records[0])
        else:
            await self.storage_call(storage.append_many, records)

    def _on_written(self, records: list[CommitRecord]) -> None:
        now = trio.current_time()
        for record in records:
            self.metrics.blocks_committed.inc()
            self.metrics.txs_committed.inc(len(record.tx_ids))
            for tx_id in record.tx_ids:
                submitted = self._submitted_at.pop(tx_id, None)
                if submitted is not None:
                    self.metrics.commit_latency.observe(now - submitted)
            proposed = self._proposed_at.pop(record.block.id, None)
            if proposed is not None:
                self.metrics.block_latency.observe(now - proposed)
        self.durable_height = records[-1].block.height
        self.durable_block_id = records[-1].block.id
        if self.durable_height % 100 < len(records) and self._nursery is not None:
            self._nursery.start_soon(self._safety_call, self._require_safety_store().prune_voted,
                                     self.durable_height)
        expired_below = self.durable_height - 2 * self.limits.batch_ttl_blocks  # own batches' rows
        if self.durable_height % BATCH_PRUNE_EVERY < len(records) and expired_below > 0 and self._nursery:
            self._nursery.start_soon(self.storage_call, self.require_storage().prune_batches, expired_below,
                                     frozenset(self._rebatching))  # their items are not in a batch yet
        self.txs_committed += sum(len(r.tx_ids) for r in records)
        self.metrics.committed_height.set(self.durable_height)
        self.metrics.pending_batches.set(len(self.batches))
        if len(self._proposed_at) > 10_000:
            self._proposed_at.clear()
        self.committed_changed.set()
        self.committed_changed = trio.Event()

    async def _on_evidence(self, evidence: Evidence) -> None:
        if not self.evidence.add(evidence):
            return
        replica = self._require_replica()
        await self.storage_call(self.require_storage().save_evidence, evidence, replica.round)
        self.metrics.evidence.labels(evidence.kind.name.lower()).inc()
        self.transport.broadcast(evidence)
        log.warning("replica %d: evidence of %s by replica %d in round %d", self.id,
                    evidence.kind.name.lower(), evidence.offender, evidence.round)

    # -- clients -------------------------------------------------------------------------------

    def submit(self, item: Item) -> bool:
        """Validate and queue a client item; raises InvalidTransaction / MempoolFull.
        Returns False for a duplicate of a recently seen item."""
        item.validate(self.limits)
        added = self.mempool.add(item)
        self.metrics.submissions.labels("accepted" if added else "duplicate").inc()
        if added:
            now = trio.current_time()
            if len(self._submitted_at) < 2 * self.limits.mempool_max_txs:
                for tx in item_txs(item):
                    self._submitted_at[tx.id] = now
        self.metrics.mempool_txs.set(self.mempool.tx_count)
        self.metrics.mempool_bytes.set(self.mempool.byte_size)
        return added

    def is_pending(self, item_id: bytes) -> bool:
        return self.mempool.seen(item_id)

    async def wait_durable(self, arrival: int, timeout: float = 10.0) -> bool:
        """Wait until the item with this mempool arrival number is in a batch written to disk
        (so a crash of this replica no longer loses it); False on timeout."""
        with trio.move_on_after(timeout):
            while self.durable_arrival < arrival:
                await self._batched.wait()
            return True
        return False
    async def _batcher(self) -> None:
        interval = self.config.timing.batch_interval
        self._batch_seq = max((b.seq for b in self.batches.own(self.id)), default=0)
        resend_own = True
        while True:
            if resend_own and self.transport.connected_peers():
                # after a restart, peers may lack the batches we made before it
                for batch in self.batches.own(self.id):
                    self.transport.broadcast(BatchMsg(batch))
                resend_own = False
            await trio.sleep(interval)
            while len(self.mempool):
                items = self.mempool.take(self.limits.batch_max_txs, self.limits.batch_max_bytes)
                replica = self._require_replica()
                taken_through = self.mempool.taken_through
                self._batch_seq += 1
                batch = Batch(self.id, self._batch_seq, replica.committed.height, tuple(items))
                await self._persist_batch(batch)
                self.batches.add(batch)
                self._note_batch()
                self.transport.broadcast(BatchMsg(batch))
                self.metrics.batches_created.inc()
                self.durable_arrival = taken_through
                self._batched.set()
                self._batched = trio.Event()
                if self.mempool.tx_count < self.limits.batch_max_txs:
                    break
            self.metrics.mempool_txs.set(self.mempool.tx_count)
            self.metrics.mempool_bytes.set(self.mempool.byte_size)
            self.metrics.pending_batches.set(len(self.batches))

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
            "last_block_hash": self.durable_block_id.hex() if self.durable_block_id else None,
            "txs_committed": self.txs_committed,
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

    # -- API port (sequencing/api/port.py: ReplicaPort) ------------------------------------------
    # With id, limits, durable_height, status, submit, is_pending and wait_durable above, these
    # make Node a ReplicaPort: all the public API uses of it.

    @property
    def metrics_registry(self) -> CollectorRegistry:
        return self.metrics.registry

    @property
    def last_arrival(self) -> int:
        """The mempool arrival number of the newest accepted item (see wait_durable)."""
        return self.mempool.arrivals

    async def wait_committed(self) -> None:
        """Return at the next change of durable_height."""
        await self.committed_changed.wait()

    @property
    def ledger_open(self) -> bool:
        return self.storage is not None

    async def read_ledger(self, read: Callable[[LedgerStore], T]) -> T:
        """``read(ledger)`` in the storage thread, one call at a time (as storage_call)."""
        return await self.storage_call(read, self.require_storage())
