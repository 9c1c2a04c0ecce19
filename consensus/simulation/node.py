"""A simulated replica process: the sans-IO ``Replica`` plus what survives a crash (its disk:
safety state and committed blocks) and what the checkers look at (commits, evidence, witnesses).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..actions import (
    Action,
    Broadcast,
    Commit,
    Dropped,
    FetchBlocks,
    PersistBlock,
    PersistSafety,
    RecordEvidence,
    RequestPayload,
    RoundEntered,
    Send,
    SetTimer,
    VerifyPayload,
)
from ..commit_proof import CommitProof
from ..core import Replica, ReplicaConfig
from ..crypto import Signer, Verifier
from ..dispatch import dispatch
from ..encoding import hash_bytes, pack, unpack
from ..errors import ConsensusError
from ..leader import LeaderFactory, LeaderSchedule
from ..messages import (
    Block,
    BlockId,
    ConsensusMessage,
    Evidence,
    EvidenceKind,
    Proposal,
    ReplicaId,
    Timeout,
    Vote,
)
from ..safety import SafetyRules, SafetyState
from .sync import CatchUp

if TYPE_CHECKING:
    from .simulator import Simulator

Statement = tuple[EvidenceKind, int, ReplicaId]


def encode_payload(txs: Iterable[bytes]) -> bytes:
    return pack(list(txs))


def decode_payload(payload: bytes) -> list[bytes]:
    if not payload:
        return []
    txs = unpack(payload, max_size=1 << 24)
    if not isinstance(txs, list) or not all(isinstance(t, bytes) for t in txs):
        raise ConsensusError("payload is not a list of transactions")
    return txs


@dataclass
class Disk:
    """What a crash does not erase."""

    safety: SafetyState | None = None
    blocks: list[Block] = field(default_factory=list)
    proofs: list[CommitProof] = field(default_factory=list)  # proofs[i] is blocks[i]'s
    by_id: dict[BlockId, Block] = field(default_factory=dict)
    last_proof: CommitProof | None = None
    committed_txs: set[bytes] = field(default_factory=set)
    voted_blocks: dict[BlockId, Block] = field(default_factory=dict)

    def append(self, block: Block, proof: CommitProof) -> None:
        if self.blocks and block.parent_id != self.blocks[-1].id:
            raise AssertionError("committed block does not extend the stored log")
        self.blocks.append(block)
        self.proofs.append(proof)
        self.by_id[block.id] = block
        self.last_proof = proof
        self.committed_txs.update(decode_payload(block.payload))
        self.voted_blocks = {k: b for k, b in self.voted_blocks.items() if b.height > block.height}


class SimNode:
    """An honest simulated replica. Byzantine strategies subclass it (see byzantine.py)."""

    honest = True
    replica_class: type[Replica] = Replica
    persist_blocks = True  # tests switch it off to show a full restart then stalls
    catchup_class: type[CatchUp] = CatchUp
    # Set: each incarnation builds its own schedule from its committed log (reputation);
    # None: the shared ``leaders`` (round-robin, fixed) serves every incarnation.
    leader_factory: LeaderFactory | None = None

    def __init__(
        self,
        sim: Simulator,
        instance: int,
        signer: Signer,
        verifier: Verifier,
        leaders: LeaderSchedule,
        *,
        config: ReplicaConfig,
        rules: SafetyRules | None = None,
        persist_safety: bool = True,
    ) -> None:
        self.sim = sim
        self.instance = instance
        self.replica_id: ReplicaId = signer.replica_id
        self.signer = signer
        self.verifier = verifier
        self.leaders = leaders
        self.config = config
        self.rules = rules
        self.persist_safety = persist_safety
        self.disk = Disk()
        self.replica: Replica | None = None
        self.incarnation = 0
        self.timer_token = 0
        self.evidence: list[Evidence] = []
        self.evidence_ids: set[bytes] = set()
        self.witness: dict[Statement, set[BlockId]] = {}
        self.dropped: Counter[str] = Counter()
        self.rounds_by_tc: set[int] = set()
        self.rounds_entered: list[tuple[float, int, bool]] = []
        self.max_round = 0
        # (round, committed height, leader) at each round entered: a schedule is a function of
        # the committed log, so honest replicas at one height must agree (checker.check_leaders)
        self.leader_choices: list[tuple[int, int, ReplicaId]] = []
        self.unsafe_sends: list[str] = []
        self.failures: list[str] = []  # exceptions that killed an incarnation (checker: "crash")
        self.catchup = self.catchup_class(self)

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.replica is not None

    def start(self) -> None:
        self.incarnation += 1
        self.witness = {}
        root = self.disk.blocks[-1] if self.disk.blocks else None
        if self.leader_factory is not None:
            self.leaders = self.leader_factory(self.disk.blocks)
        self.replica = self.replica_class(
            signer=self.signer,
            verifier=self.verifier,
            leaders=self.leaders,
            safety=self.disk.safety if self.persist_safety else None,
            root=root,
            root_proof=self.disk.last_proof,
            blocks=list(self.disk.voted_blocks.values()),
            config=self.config,
            rules=self.rules,
        )
        self.execute(self.replica.start())

    def crash(self) -> None:
        self.replica = None
        self.timer_token += 1

    # -- inputs --------------------------------------------------------------------------------

    def deliver(self, sender: ReplicaId, message: ConsensusMessage) -> None:
        replica = self.replica
        if replica is None:
            return
        self._witness(message)
        self.run_guarded(lambda: replica.on_message(sender, message))

    def fire_timer(self, round: int) -> None:
        replica = self.replica
        if replica is not None:
            self.run_guarded(lambda: replica.on_timeout(round))

    def deliver_blocks(self, sender: ReplicaId, blocks: list[Block]) -> None:
        replica = self.replica
        if replica is not None:
            self.run_guarded(lambda: replica.on_blocks(sender, blocks))

    def run_guarded(self, step: Callable[[], Iterable[Action]]) -> None:
        """Run one input to completion. An exception ends this incarnation as it would end a real
        process (the "crash" checker reports it); the simulator's own assertions propagate."""
        try:
            self.execute(step())
        except AssertionError:
            raise
        except Exception as exc:
            self.failures.append(f"t={self.sim.now:.3f} {type(exc).__name__}: {exc}")
            self.sim.crash(self.instance)

    # -- payloads withheld by a Byzantine leader -------------------------------------------------

    def _verify_payload(self, block: Block) -> list[Action]:
        replica = self.replica
        assert replica is not None
        release = self.sim.withheld.get((self.replica_id, block.id))
        if release is not None and release > self.sim.now:
            incarnation = self.incarnation
            self.sim.at(release, lambda _s: self.payload_arrived(block, incarnation))
            return []
        ok, reason = self.check_payload(block)
        return replica.on_payload_verified(block.id, ok, reason)

    def payload_arrived(self, block: Block, incarnation: int) -> None:
        """A withheld payload arrives late. By now its block may be committed and pruned, or
        abandoned; checking it against its chain then would ask the tree for a block it no longer
        has (the real node's crash, issue 8 item 1), so a late payload for such a block is
        dropped."""
        replica = self.replica
        if replica is None or incarnation != self.incarnation:
            return
        if not self.late_payload_usable(block):
            self.dropped["late payload"] += 1
            return
        self.run_guarded(lambda: self._late_check(block))

    def late_payload_usable(self, block: Block) -> bool:
        replica = self.replica
        assert replica is not None
        return (
            block.id in replica.tree
            and block.height > replica.committed.height
            and replica.tree.extends_root(block.id)
        )

    def _late_check(self, block: Block) -> list[Action]:
        replica = self.replica
        assert replica is not None
        chain = replica.tree.path_from_root(block.id)
        earlier = {tx for b in chain[:-1] for tx in decode_payload(b.payload)}
        if earlier.intersection(decode_payload(block.payload)):
            return replica.on_payload_verified(block.id, False, "payload repeats an ancestor's tx")
        ok, reason = self.check_payload(block)
        return replica.on_payload_verified(block.id, ok, reason)

    def serve_blocks(self, target: BlockId, above_height: int, limit: int) -> list[Block]:
        """Answer a fetch from memory and disk: ``target``'s chain above a height, newest first."""
        out: list[Block] = []
        block = self._lookup(target)
        while block is not None and block.height > above_height and len(out) < limit:
            out.append(block)
            block = self._lookup(block.parent_id)
        return out

    def status_height(self) -> int:
        """The committed height this replica claims when a peer asks (catch-up)."""
        return len(self.disk.blocks)

    def serve_sync(self, from_height: int, limit: int) -> tuple[list[Block], CommitProof] | None:
        """Committed blocks from ``from_height`` on, with the commit proof of the last."""
        start = from_height - 1
        blocks = self.disk.blocks[start : start + limit]
        if start < 0 or not blocks:
            return None
        return blocks, self.disk.proofs[start + len(blocks) - 1]

    def _lookup(self, block_id: BlockId) -> Block | None:
        if self.replica is not None:
            found = self.replica.block(block_id)
            if found is not None:
                return found
        return self.disk.by_id.get(block_id) or self.disk.voted_blocks.get(block_id)

    # -- what the checkers see -----------------------------------------------------------------

    @property
    def log(self) -> list[Block]:
        return self.disk.blocks

    def _witness(self, message: ConsensusMessage) -> None:
        """Record the signed statements this incarnation processes, under the same staleness
        gates as the core, so the checker knows which equivocations it must have reported."""
        replica = self.replica
        assert replica is not None
        try:
            if isinstance(message, Proposal):
                block = message.block
                if block.round <= replica.committed.round:
                    return
                if block.author != self.leaders.leader(block.round):
                    return
                from ..validation import verify_proposal

                verify_proposal(message, self.verifier, replica.genesis.id)
                self._see((EvidenceKind.DOUBLE_PROPOSAL, block.round, block.author), block.id)
                for voter, _ in block.qc.votes:
                    self._see((EvidenceKind.DOUBLE_VOTE, block.qc.round, voter), block.qc.block_id)
            elif isinstance(message, Vote):
                if message.round + self.config.evidence_window < replica.round:
                    return
                from ..validation import verify_vote

                verify_vote(message, self.verifier)
                self._see((EvidenceKind.DOUBLE_VOTE, message.round, message.voter), message.block_id)
        except ConsensusError:
            return

    def _see(self, statement: Statement, block_id: BlockId) -> None:
        self.witness.setdefault(statement, set()).add(block_id)

    # -- executing actions ---------------------------------------------------------------------

    def execute(self, actions: Iterable[Action]) -> None:
        queue: deque[Action] = deque(actions)
        while queue and self.replica is not None:
            action = queue.popleft()
            queue.extend(self.handle(action))

    def handle(self, action: Action) -> list[Action]:
        """Carry out one action; returns follow-up actions (from immediate callbacks)."""
        return dispatch(action, self)

    # The ActionHandler methods (consensus/dispatch.py), called only while the replica is alive.

    def on_send(self, action: Send) -> list[Action]:
        self.send(action.to, action.message)
        return []

    def on_broadcast(self, action: Broadcast) -> list[Action]:
        self.broadcast(action.message)
        return []

    def on_set_timer(self, action: SetTimer) -> list[Action]:
        self.timer_token += 1
        self.sim.schedule_timer(self, action.round, action.duration, self.timer_token)
        return []

    def on_persist_safety(self, action: PersistSafety) -> list[Action]:
        self.disk.safety = action.state
        return []

    def on_persist_block(self, action: PersistBlock) -> list[Action]:
        if self.persist_blocks:
            self.disk.voted_blocks[action.block.id] = action.block
        return []

    def on_commit(self, action: Commit) -> list[Action]:
        self.disk.append(action.block, action.proof)
        self.sim.on_commit(self, action.block)
        return []

    def on_record_evidence(self, action: RecordEvidence) -> list[Action]:
        if action.evidence.id not in self.evidence_ids:
            self.evidence_ids.add(action.evidence.id)
            self.evidence.append(action.evidence)
        return []

    def on_fetch_blocks(self, action: FetchBlocks) -> list[Action]:
        self.sim.request_blocks(self, action.peer, action.target, action.above_height)
        return []

    def on_request_payload(self, action: RequestPayload) -> list[Action]:
        replica = self.replica
        assert replica is not None
        payload = self.build_payload(action)
        return replica.on_payload_ready(action.round, payload, hash_bytes(payload))

    def on_verify_payload(self, action: VerifyPayload) -> list[Action]:
        return self._verify_payload(action.block)

    def on_dropped(self, action: Dropped) -> list[Action]:
        self.dropped[action.reason.split(":")[0]] += 1
        return []

    def on_round_entered(self, action: RoundEntered) -> list[Action]:
        self.rounds_entered.append((self.sim.now, action.round, action.by_tc))
        self.max_round = max(self.max_round, action.round)
        replica = self.replica
        assert replica is not None
        self.leader_choices.append((action.round, replica.committed.height, self.leaders.leader(action.round)))
        if action.by_tc:
            self.rounds_by_tc.add(action.round - 1)
        return []

    def send(self, to: ReplicaId, message: ConsensusMessage) -> None:
        self._check_persisted(message)
        self.sim.send(self, to, message)

    def broadcast(self, message: ConsensusMessage) -> None:
        self._check_persisted(message)
        for replica_id in self.sim.replica_ids:
            if replica_id != self.replica_id:
                self.sim.send(self, replica_id, message)

    def _check_persisted(self, message: ConsensusMessage) -> None:
        """A vote, timeout or proposal of ours may only leave once the disk holds a safety state
        that covers its round (the core must emit PersistSafety first)."""
        if isinstance(message, Vote):
            signer, round = message.voter, message.round
        elif isinstance(message, (Timeout, Proposal)):
            signer, round = message.author, message.round
        else:
            return
        if signer != self.replica_id:
            return
        stored = self.disk.safety
        if stored is None or stored.highest_voted_round < round:
            self.unsafe_sends.append(
                f"{type(message).__name__} for round {round} left before its safety state was persisted"
            )

    def build_payload(self, request: RequestPayload) -> bytes:
        exclude = set(self.disk.committed_txs)
        for ancestor in request.ancestors:
            exclude.update(decode_payload(ancestor.payload))
        return encode_payload(self.sim.pick_transactions(exclude))

    def check_payload(self, block: Block) -> tuple[bool, str]:
        if block.data_root != hash_bytes(block.payload):
            return False, "data root does not match payload"
        try:
            txs = decode_payload(block.payload)
        except ConsensusError as exc:
            return False, str(exc)
        if not all(self.sim.was_submitted(tx) for tx in txs):
            return False, "payload invents transactions"
        return True, ""
