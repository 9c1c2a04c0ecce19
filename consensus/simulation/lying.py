"""Byzantine replicas that lie about certificates, not only equivocate.

Each strategy runs the honest code and deviates where the lie pays: a leader that proposes on a
stale QC after a timeout certificate (the attack the 2-chain lock exists for), one that forges
the TC or QC it needs instead of waiting for honest timeouts or votes. They sign only with their
own key; anything they claim in another replica's name carries a signature that does not verify.

The lock breaker needs two consecutive rounds as leader (round-robin with a leader span of 2, or
a Twins scenario that draws it). In the first it shows its block to all but f peers and its vote
only to one, so that one commits the block's parent while the others time out without the QC; in
the second it proposes a sibling of that committed block. A replica without the lock rule votes
for it, and the fork commits once the next honest leader extends it.
"""

from __future__ import annotations

from ..crypto import SignatureKind
from ..encoding import hash_bytes
from ..messages import (
    Block,
    BlockId,
    ConsensusMessage,
    Proposal,
    QuorumCert,
    ReplicaId,
    Timeout,
    TimeoutCert,
    Vote,
)
from ..validation import timeout_payload
from .node import SimNode, encode_payload

FORGED_SIGNATURE = b"\x07" * 64


class Liar(SimNode):
    """Signing helpers and a fork of blocks the honest core does not know about."""

    honest = False

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fork: dict[BlockId, Block] = {}
        self.yes_voted: set[int] = set()

    @property
    def peers(self) -> list[ReplicaId]:
        return [r for r in self.sim.replica_ids if r != self.replica_id]

    def send_to(self, peers: list[ReplicaId], message: ConsensusMessage) -> None:
        for peer in peers:
            self.sim.send(self, peer, message)

    def vote_for(self, block: Block) -> Vote:
        sig = self.signer.sign(SignatureKind.VOTE, block.round, block.id)
        return Vote(block.round, block.id, self.replica_id, sig)

    def propose(self, round: int, parent: Block, qc: QuorumCert, tc: TimeoutCert | None) -> Block:
        """Sign and send a block of our own making; vote for it; keep it on our fork."""
        payload = encode_payload([])
        block = Block(round, parent.height + 1, qc, self.replica_id, payload, hash_bytes(payload))
        proposal = Proposal(block, tc, self.signer.sign(SignatureKind.PROPOSAL, round, block.id))
        self.fork[block.id] = block
        self.yes_voted.add(round)
        self.send_to(self.peers, proposal)
        self.send_to(self.peers, self.vote_for(block))
        return block

    def timeout(self, round: int, qc: QuorumCert, tc: TimeoutCert | None = None) -> Timeout:
        sig = self.signer.sign(SignatureKind.TIMEOUT, round, timeout_payload(qc.round))
        return Timeout(round, qc, self.replica_id, sig, tc)

    def _lookup(self, block_id: BlockId) -> Block | None:
        """Its own fork's blocks too (so it serves them to fetches like any other)."""
        return self.fork.get(block_id) or super()._lookup(block_id)

    def deliver(self, sender: ReplicaId, message: ConsensusMessage) -> None:
        super().deliver(sender, message)
        if self.replica is None:
            return
        # Keep the fork alive: vote for whatever the round's leader builds on it.
        if isinstance(message, Proposal):
            block = message.block
            if (
                block.parent_id in self.fork
                and block.round not in self.yes_voted
                and block.author == self.leaders.leader(block.round)
            ):
                self.fork[block.id] = block
                self.yes_voted.add(block.round)
                self.send_to(self.peers, self.vote_for(block))


class StaleQcLeader(Liar):
    """Breaks the lock of the replicas it keeps in the dark (see the module docstring). With
    ``forge_tc`` it does not wait for their timeouts but forges the TC it needs (entries in other
    replicas' names carry signatures that do not verify)."""

    forge_tc = False

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.first_slot: dict[int, Block] = {}  # round r -> our honest block in r (r+1 also ours)
        self.timeouts: dict[int, dict[ReplicaId, Timeout]] = {}
        self.attacked: set[int] = set()

    def _leads_next(self, round: int) -> bool:
        return self.leaders.leader(round) == self.replica_id == self.leaders.leader(round + 1)

    def _roles(self, round: int) -> tuple[ReplicaId, list[ReplicaId]]:
        """(the replica that will commit, the f replicas that never see our block)."""
        peers = self.peers
        start = peers.index(self.leaders.leader(round + 2)) if self.leaders.leader(round + 2) in peers else 0
        ordered = peers[start:] + peers[:start]
        committer = ordered[-1]
        f = self.sim.committee.max_faulty
        return committer, ordered[:-1][-f:] if f else []

    def broadcast(self, message: ConsensusMessage) -> None:
        if isinstance(message, Proposal) and message.author == self.replica_id:
            r = message.round
            if self._leads_next(r):
                self.first_slot[r] = message.block
                _, dark = self._roles(r)
                self.send_to([p for p in self.peers if p not in dark], message)
                if self.forge_tc:
                    self.sim.at(self.sim.now + 0.2, lambda _s: self._attack(r + 1))
                return
            if r - 1 in self.first_slot:
                return  # our honest second-slot block is replaced by the stale one
        if isinstance(message, Vote) and message.voter == self.replica_id:
            r = message.round
            if r in self.first_slot:
                committer, _ = self._roles(r)
                self.sim.send(self, committer, message)
                return
            if r - 1 in self.first_slot and message.block_id not in self.fork:
                return
        super().broadcast(message)

    def deliver(self, sender: ReplicaId, message: ConsensusMessage) -> None:
        super().deliver(sender, message)
        if not isinstance(message, Timeout) or self.replica is None or self.forge_tc:
            return
        r = message.round
        mine = self.first_slot.get(r)
        if mine is None or r + 1 in self.attacked:
            return
        bucket = self.timeouts.setdefault(r, {})
        bucket.setdefault(message.author, message)
        if self.replica_id not in bucket:
            own = self.timeout(r, mine.qc)
            bucket[self.replica_id] = own
            self.send_to(self.peers, own)
        if len(bucket) >= self.sim.committee.quorum:
            high = max((t.high_qc for t in bucket.values()), key=lambda qc: qc.round)
            entries = tuple((a, t.high_qc.round, t.signature) for a, t in sorted(bucket.items()))
            self._propose_stale(r + 1, TimeoutCert(r, high, entries))

    def _attack(self, round: int) -> None:
        """Forge TC(round - 1) claiming everyone's high QC is the one our first-slot block
        extended, then propose on the QC below it."""
        mine = self.first_slot.get(round - 1)
        if mine is None or self.replica is None or round in self.attacked:
            return
        parent = self._lookup(mine.qc.block_id)
        if parent is None:
            return
        stale = parent.qc
        entries: list[tuple[ReplicaId, int, bytes]] = []
        for author in self.sim.replica_ids:
            if len(entries) == self.sim.committee.quorum:
                break
            if author == self.replica_id:
                own = self.timeout(round - 1, stale)
                entries.append((author, stale.round, own.signature))
            else:
                entries.append((author, stale.round, FORGED_SIGNATURE))
        tc = TimeoutCert(round - 1, stale, tuple(entries))
        self._propose_on(round, stale, tc)

    def _propose_stale(self, round: int, tc: TimeoutCert) -> None:
        high = self._lookup(tc.high_qc.block_id)
        if high is None or tc.high_qc.round == 0:
            return
        self._propose_on(round, high.qc, tc)

    def _propose_on(self, round: int, qc: QuorumCert, tc: TimeoutCert) -> None:
        parent = self.replica.genesis if qc.round == 0 and self.replica else self._lookup(qc.block_id)
        if parent is None:
            return
        self.attacked.add(round)
        self.propose(round, parent, qc, tc)


class TcForger(StaleQcLeader):
    """The lock breaker with a forged TC: needs no honest timeout at all."""

    forge_tc = True


class QcForger(Liar):
    """In the first of two consecutive rounds it leads, shows its block to nobody and proposes
    the next block on a QC for it that it forges: full size, with signatures in other replicas'
    names that do not verify. A replica that takes it commits the parent of a block nobody
    certified (its commit proof does not verify)."""

    under_quorum = False

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.hidden: dict[int, Block] = {}
        self.votes: dict[int, dict[ReplicaId, bytes]] = {}

    def broadcast(self, message: ConsensusMessage) -> None:
        if isinstance(message, Proposal) and message.author == self.replica_id:
            r = message.round
            if self.leaders.leader(r + 1) == self.replica_id and r not in self.hidden:
                self.hidden[r] = message.block
                self.votes[r] = {}
                if self.under_quorum:  # honest votes that with ours make a quorum minus one
                    self.send_to(self.peers[: self.sim.committee.quorum - 2], message)
                else:
                    self.sim.at(self.sim.now + 0.05, lambda _s: self._forge(r))
                return
            if r - 1 in self.hidden:
                return  # the block on the forged QC replaces our honest second-slot block
        if isinstance(message, Vote) and message.voter == self.replica_id:
            if message.round in self.hidden:
                self.votes[message.round][self.replica_id] = message.signature
                return
            if message.round - 1 in self.hidden and message.block_id not in self.fork:
                return
        super().broadcast(message)

    def deliver(self, sender: ReplicaId, message: ConsensusMessage) -> None:
        super().deliver(sender, message)
        if (
            self.under_quorum
            and isinstance(message, Vote)
            and message.round in self.hidden
            and message.block_id == self.hidden[message.round].id
        ):
            self.votes[message.round][message.voter] = message.signature
            self._forge(message.round)

    def _forge(self, round: int) -> None:
        block = self.hidden[round]
        if self.replica is None or round + 1 in self.yes_voted:
            return
        votes = dict(self.votes[round])
        votes.setdefault(self.replica_id, self.vote_for(block).signature)
        if not self.under_quorum:
            for peer in self.peers:
                if len(votes) >= self.sim.committee.quorum:
                    break
                votes[peer] = FORGED_SIGNATURE
        elif len(votes) < self.sim.committee.quorum - 1:
            return
        qc = QuorumCert(round, block.id, tuple(sorted(votes.items())))
        self.fork[block.id] = block
        self.propose(round + 1, block, qc, None)


class UnderQuorumQcLeader(QcForger):
    """``QcForger`` with a genuine QC one vote short of a quorum."""

    under_quorum = True


class TimeoutForger(Liar):
    """Every timeout it sends carries certificates that lie. Odd rounds: a forged TC with a
    forged high QC (see ``_forged``). Even rounds: genuine but stale certificates, the lowest
    QC and the oldest TC it has seen."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.first_tc: TimeoutCert | None = None
        self.first_qc: QuorumCert | None = None

    def deliver(self, sender: ReplicaId, message: ConsensusMessage) -> None:
        if isinstance(message, Proposal):
            if message.block.qc.round > 0 and self.first_qc is None:
                self.first_qc = message.block.qc
            if message.last_tc is not None and self.first_tc is None:
                self.first_tc = message.last_tc
        super().deliver(sender, message)

    def broadcast(self, message: ConsensusMessage) -> None:
        if not isinstance(message, Timeout) or message.author != self.replica_id:
            super().broadcast(message)
            return
        r = message.round
        if r % 2:
            lie = self._forged(r) or message
        else:
            stale_qc = self.first_qc if self.first_qc is not None else message.high_qc
            if stale_qc.round >= r:
                stale_qc = message.high_qc
            lie = self.timeout(r, stale_qc, self.first_tc)
        self.send_to(self.peers, lie)

    def _forged(self, r: int) -> Timeout | None:
        """A timeout two rounds past a block Y we make up on top of our high QC's block P, whose
        TC is forged and certifies Y with a forged QC. A replica that takes it jumps past Y's
        round, fetches Y when it leads (we serve it) and commits P on the forged QC."""
        replica = self.replica
        assert replica is not None
        high = replica.high_qc
        parent = replica.block(high.block_id)
        if parent is None or high.round == 0:
            return None
        payload = encode_payload([])
        made_up = Block(high.round + 1, parent.height + 1, high, self.replica_id, payload,
                        hash_bytes(payload))
        self.fork[made_up.id] = made_up
        voters = sorted(self.sim.replica_ids)[: self.sim.committee.quorum]
        qc = QuorumCert(made_up.round, made_up.id, tuple(
            (v, self.vote_for(made_up).signature if v == self.replica_id else FORGED_SIGNATURE)
            for v in voters
        ))
        round = max(r, made_up.round + 2)
        entries = tuple(
            (a, qc.round, self.timeout(round - 1, qc).signature if a == self.replica_id
             else FORGED_SIGNATURE)
            for a in voters
        )
        return self.timeout(round, high, TimeoutCert(round - 1, qc, entries))

