"""``Replica``: the Jolteon state machine. Inputs are messages, timer expiries and answers to its
own requests; outputs are lists of actions. No clock, socket, thread or disk is touched here.

Round flow: the leader of round r asks for a payload, proposes a block extending its high QC,
and every replica that finds the proposal safe (see :mod:`safety`) broadcasts its vote; 2f+1
votes form a QC at every replica, which enters r+1, where that round's leader proposes. A
replica whose round timer fires broadcasts a signed timeout; 2f+1 of them form a TC that moves
everyone to r+1. A QC for a block whose parent has the previous round commits the parent and all
its uncommitted ancestors (2-chain rule).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import update_wrapper
from typing import Any, Concatenate, ParamSpec, TypeVar

from .actions import (
    Action,
    Broadcast,
    Commit,
    DropKind,
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
from .aggregator import TimeoutAggregator, VoteAggregator
from .block_tree import BlockTree
from .commit_proof import CommitProof, proofs_for_chain, verify_commit_proof
from .crypto import SignatureKind, Signer, Verifier
from .errors import DecodeError, InvalidMessage, LocalProtocolError
from .evidence import EquivocationDetector, verify_evidence
from .leader import LeaderSchedule
from .messages import (
    Block,
    BlockId,
    ConsensusMessage,
    Evidence,
    EvidenceKind,
    Proposal,
    QuorumCert,
    ReplicaId,
    Timeout,
    TimeoutCert,
    Vote,
    genesis_block,
)
from .pacemaker import Pacemaker, PacemakerConfig
from .safety import NotSafeToTimeout, NotSafeToVote, SafetyRules, SafetyState
from .validation import (
    timeout_payload,
    verify_block_certificate,
    verify_proposal,
    verify_timeout,
    verify_vote,
)

PRUNE_EVERY = 64  # rounds between prunings of the equivocation detector

_DROP_KIND: dict[type, DropKind] = {
    Proposal: DropKind.PROPOSAL, Vote: DropKind.VOTE, Timeout: DropKind.TIMEOUT, Evidence: DropKind.EVIDENCE,
}


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    pacemaker: PacemakerConfig = field(default_factory=PacemakerConfig)
    max_pending_proposals: int = 64
    max_fetched_blocks: int = 100_000
    evidence_window: int = 1_000
    # Votes and timeouts are collected for at most this many rounds ahead of the current one, so a
    # Byzantine peer signing statements for ever-higher rounds cannot grow the aggregators and the
    # equivocation detector without bound. A replica further behind learns the round from the
    # certificates that timeouts and proposals carry, then collects normally.
    max_rounds_ahead: int = 1_000


P = ParamSpec("P")
R = TypeVar("R")


def _all_or_nothing(
    handler: Callable[Concatenate[Replica, P], R],
) -> Callable[Concatenate[Replica, P], R]:
    """One input is handled completely or not at all: if the handler raises (a bug, or a caller's
    misuse), the replica's state is put back as it was before the input, so the I/O layer can drop
    the input and carry on. Actions are only ever returned, never executed here, so an input whose
    actions are lost with the exception changed nothing outside either. Evidence reported during
    the input is forgotten (so it is reported again); verified knowledge kept in the equivocation
    detector, the fetched-block cache and the signature cache stays: it is true whatever the
    outcome."""

    def guarded(self: Replica, /, *args: P.args, **kwargs: P.kwargs) -> R:
        saved = self._save()
        try:
            return handler(self, *args, **kwargs)
        except BaseException:
            self._restore(saved)
            raise

    update_wrapper(guarded, handler)
    return guarded


@dataclass(slots=True)
class _ProposalContext:
    round: int
    parent: Block
    qc: QuorumCert
    tc: TimeoutCert | None


class Replica:
    """One replica's protocol state. Drive it with ``start``, ``on_message``, ``on_timeout``,
    ``on_payload_ready``, ``on_payload_verified`` and ``on_blocks``; execute the returned actions
    in order."""

    def __init__(
        self,
        *,
        signer: Signer,
        verifier: Verifier,
        leaders: LeaderSchedule,
        safety: SafetyState | None = None,
        root: Block | None = None,
        root_proof: CommitProof | None = None,
        blocks: Sequence[Block] = (),
        config: ReplicaConfig | None = None,
        rules: SafetyRules | None = None,
    ) -> None:
        if signer.chain_id != verifier.chain_id:
            raise LocalProtocolError("signer and verifier belong to different chains")
        self.id: ReplicaId = signer.replica_id
        self.committee = verifier.committee
        if not self.committee.contains(self.id):
            raise LocalProtocolError(f"replica {self.id} is not in the committee")
        if self.committee.public_keys[self.id] != signer.public_key:
            raise LocalProtocolError("the signer's key is not this replica's committee key")
        self.config = config or ReplicaConfig()
        self.rules = rules or SafetyRules()
        self._signer = signer
        self._verifier = verifier
        self.leaders = leaders
        self.genesis = genesis_block(self.committee.chain_id)
        self.tree = BlockTree(root or self.genesis)
        self.safety = safety or SafetyState.initial(
            QuorumCert(0, self.genesis.id, ())
        )
        self.root_proof_error: str | None = None
        if root_proof is not None:
            # The certificate that committed our stored root; adopting it lets a restarted
            # replica resume above its root even if its last persisted high QC is older. It is
            # verified first: a database written before synced blocks' QCs were checked may hold a
            # forged one, which must not become the high QC.
            try:
                verify_commit_proof(root_proof, self.tree.root.id, verifier, self.genesis.id)
            except InvalidMessage as exc:
                self.root_proof_error = str(exc)
            else:
                self.safety = self.rules.observe_qc(self.safety, root_proof.qc)
        self._persisted = self.safety
        self.leaders.rewind(self.tree.root.height)  # it may not know blocks above our root
        for block in sorted(blocks, key=lambda b: b.height):
            if block.height > self.tree.root.height and block.parent_id in self.tree:
                self.tree.insert(block)
        self.pacemaker = Pacemaker(self.config.pacemaker, round=self.safety.resume_round)
        self._votes = VoteAggregator(self.committee.quorum)
        self._timeouts = TimeoutAggregator(self.committee.quorum)
        self.detector = EquivocationDetector()
        self._proposals: dict[BlockId, Proposal] = {}
        self._awaiting_payload: dict[BlockId, Proposal] = {}
        self._pending: OrderedDict[BlockId, list[tuple[ReplicaId, Proposal]]] = OrderedDict()
        self._fetching: dict[BlockId, int] = {}
        self._fetched: dict[BlockId, Block] = {}
        self._proposal_context: _ProposalContext | None = None
        self._proposed_round = 0
        self._timed_out_round = 0
        self._started = False
        self._pruned_below = 0

    # -- all or nothing per input -------------------------------------------------------------

    def _save(self) -> tuple[Any, ...]:
        self.detector.begin()
        return (
            self.tree.copy(), self.safety, self._persisted, self.pacemaker.copy(),
            self._votes.copy(), self._timeouts.copy(), dict(self._proposals),
            dict(self._awaiting_payload), OrderedDict((k, list(v)) for k, v in self._pending.items()),
            dict(self._fetching), self._proposal_context, self._proposed_round,
            self._timed_out_round, self._pruned_below,
        )

    def _restore(self, saved: tuple[Any, ...]) -> None:
        self.detector.rollback()
        (
            self.tree, self.safety, self._persisted, self.pacemaker,
            self._votes, self._timeouts, self._proposals,
            self._awaiting_payload, self._pending,
            self._fetching, self._proposal_context, self._proposed_round,
            self._timed_out_round, self._pruned_below,
        ) = saved
        self.leaders.rewind(self.tree.root.height)

    # -- read-only views -----------------------------------------------------------------------

    @property
    def round(self) -> int:
        return self.pacemaker.round

    @property
    def committed(self) -> Block:
        return self.tree.root

    @property
    def high_qc(self) -> QuorumCert:
        return self.safety.high_qc

    @property
    def last_tc(self) -> TimeoutCert | None:
        """The highest TC seen (kept in the safety state, so it survives a restart)."""
        return self.safety.high_tc

    def block(self, block_id: BlockId) -> Block | None:
        return self.tree.get(block_id)

    def chain_to(self, target: BlockId, above_height: int, limit: int) -> list[Block]:
        """Blocks of the tree on ``target``'s chain above ``above_height``, newest first."""
        out: list[Block] = []
        block = self.tree.get(target)
        while block is not None and block.height > above_height and len(out) < limit:
            out.append(block)
            block = self.tree.get(block.parent_id)
        return out

    # -- inputs --------------------------------------------------------------------------------

    def start(self) -> list[Action]:
        if self._started:
            raise LocalProtocolError("start() called twice")
        self._started = True
        out: list[Action] = []
        self._enter_round(out)
        high = self.safety.high_qc
        if high.round > 0 and high.block_id not in self.tree:
            self._fetch(self.leaders.leader(high.round), high.block_id, out)
        return out

    @_all_or_nothing
    def on_message(self, sender: ReplicaId, message: ConsensusMessage) -> list[Action]:
        out: list[Action] = []
        try:
            if isinstance(message, Proposal):
                self._on_proposal(sender, message, out)
            elif isinstance(message, Vote):
                self._on_vote(message, out)
            elif isinstance(message, Timeout):
                self._on_timeout_message(message, out)
            elif isinstance(message, Evidence):
                verify_evidence(message, self._verifier)
                out.append(RecordEvidence(message))
            else:
                raise InvalidMessage(f"unexpected message type {type(message).__name__}")
        except InvalidMessage as exc:
            out.append(Dropped(sender, _DROP_KIND.get(type(message), DropKind.UNEXPECTED), str(exc)))
        return out

    @_all_or_nothing
    def on_timeout(self, round: int) -> list[Action]:
        out: list[Action] = []
        if round != self.pacemaker.round:
            return out
        self._send_timeout(out)
        for attempt_target in list(self._fetching):
            self._refetch(attempt_target, out)
        out.append(SetTimer(round, self.pacemaker.duration()))
        return out

    @_all_or_nothing
    def on_payload_ready(self, round: int, payload: bytes, data_root: bytes) -> list[Action]:
        out: list[Action] = []
        ctx = self._proposal_context
        if ctx is None or ctx.round != round or round != self.pacemaker.round:
            return out
        try:
            block = Block(round, ctx.parent.height + 1, ctx.qc, self.id, payload, data_root)
        except DecodeError as exc:
            raise LocalProtocolError(f"on_payload_ready: the payload does not fit a block: {exc}") from exc
        self._proposal_context = None
        refusal = self.rules.vote_refusal(self.safety, block, ctx.tc)
        if refusal is not None:
            self._refuse(self.id, refusal, out)
            return out
        proposal = Proposal(block, ctx.tc, self._sign(SignatureKind.PROPOSAL, round, block.id))
        self.detector.observe(
            EvidenceKind.DOUBLE_PROPOSAL, round, self.id, block.id, proposal.signature
        )
        self.tree.insert(block)
        self._proposals[block.id] = proposal
        vote = self._sign_vote(block, out)
        out.append(Broadcast(proposal))
        self._deliver_vote(vote, out)
        return out

    @_all_or_nothing
    def on_payload_verified(self, block_id: BlockId, ok: bool, reason: str = "") -> list[Action]:
        out: list[Action] = []
        proposal = self._awaiting_payload.pop(block_id, None)
        if proposal is None:
            return out
        if not ok:
            out.append(Dropped(proposal.author, DropKind.PAYLOAD, f"invalid payload: {reason}"))
            return out
        self._try_vote(proposal, out)
        return out

    @_all_or_nothing
    def on_blocks(self, sender: ReplicaId, blocks: Sequence[Block]) -> list[Action]:
        """Blocks answering a ``FetchBlocks``: a hash-linked chain, newest first."""
        out: list[Action] = []
        try:
            self._on_blocks(sender, blocks, out)
        except InvalidMessage as exc:
            out.append(Dropped(sender, DropKind.BLOCKS, str(exc)))
        return out

    @_all_or_nothing
    def on_synced(self, blocks: Sequence[Block], proof: CommitProof) -> list[Action]:
        """Committed blocks from a peer, oldest first, starting right above our root, with a commit
        proof for the last one. The proof's QC shows the last block is committed and hash links
        show the others are its ancestors; but a block id does not cover its QC's signatures, and
        the per-block proofs are built from those embedded QCs, so each is verified too (memoised)
        and one bad QC refuses the whole answer before anything changes."""
        out: list[Action] = []
        try:
            self._on_synced(list(blocks), proof, out)
        except InvalidMessage as exc:
            out.append(Dropped(self.id, DropKind.SYNC, str(exc)))
        return out

    def _on_synced(self, blocks: list[Block], proof: CommitProof, out: list[Action]) -> None:
        root = self.tree.root
        blocks = [b for b in blocks if b.height > root.height]
        if not blocks:
            return
        if blocks[0].parent_id != root.id or blocks[0].height != root.height + 1:
            raise InvalidMessage("synced blocks do not start right above our committed block")
        for parent, child in itertools.pairwise(blocks):
            if child.parent_id != parent.id or child.height != parent.height + 1:
                raise InvalidMessage("synced blocks are not a hash-linked chain")
        verify_commit_proof(proof, blocks[-1].id, self._verifier, self.genesis.id)
        self._verify_embedded_qcs(blocks)
        proofs = proofs_for_chain(blocks, proof)
        # validated: from here on nothing raises
        last = blocks[-1]
        if last.id in self.tree:
            self.tree.commit(last.id)
        else:
            self.tree = BlockTree(last)
        for block, block_proof in zip(blocks, proofs, strict=True):
            self.leaders.observe_commit(block)
            out.append(Commit(block, block_proof))
        self._after_commit()
        self._observe_qc_votes(proof.qc, out)
        self._process_certificates(proof.qc, None, out)

    def _verify_embedded_qcs(self, blocks: list[Block]) -> None:
        """The QC inside every synced block becomes part of a stored commit proof (and may become
        the high QC after a restart), and a block id does not cover its QC's signatures."""
        for block in blocks:
            verify_block_certificate(block, self._verifier, self.genesis.id)

    # -- proposals -----------------------------------------------------------------------------

    def _on_proposal(self, sender: ReplicaId, proposal: Proposal, out: list[Action]) -> None:
        block = proposal.block
        if block.round <= self.tree.root.round:
            return
        verify_proposal(proposal, self._verifier, self.genesis.id)
        if block.author != self.leaders.leader(block.round):
            raise InvalidMessage(f"replica {block.author} is not the leader of round {block.round}")
        parent = self.tree.get(block.parent_id)
        if parent is not None:
            BlockTree.check_child(block, parent)  # all checks before the first change of state
        self._observe(EvidenceKind.DOUBLE_PROPOSAL, block.round, block.author, block.id,
                      proposal.signature, out)
        self._observe_qc_votes(block.qc, out)
        self._process_certificates(block.qc, proposal.last_tc, out)
        if block.id in self.tree:
            return
        if block.parent_id not in self.tree:
            if block.height <= self.tree.root.height:
                return
            self._stash(sender, proposal)
            self._fetch(sender, block.parent_id, out)
            return
        self._accept(proposal, out)

    def _accept(self, proposal: Proposal, out: list[Action]) -> None:
        block = proposal.block
        self._insert(block, out)
        self._proposals[block.id] = proposal
        if block.round == self.pacemaker.round:
            refusal = self.rules.vote_refusal(self.safety, block, proposal.last_tc)
            if refusal is None:
                self._awaiting_payload[block.id] = proposal
                out.append(VerifyPayload(block))
            else:
                self._refuse(block.author, refusal, out)
        self._accept_children(block.id, out)

    def _insert(self, block: Block, out: list[Action]) -> None:
        """Insert a block whose parent is present; a QC seen before the block may now commit."""
        self.tree.insert(block)
        if self.safety.high_qc.block_id == block.id:
            self.tree.record_qc(self.safety.high_qc)
            self._try_commit(self.safety.high_qc, out)

    def _accept_children(self, parent_id: BlockId, out: list[Action]) -> None:
        for sender, child in self._pending.pop(parent_id, []):
            self.tree.record_qc(child.block.qc)
            self._try_commit(child.block.qc, out)
            self._accept_if_fresh(sender, child, out)

    def _accept_if_fresh(self, sender: ReplicaId, proposal: Proposal, out: list[Action]) -> None:
        if proposal.block.id in self.tree or proposal.block.height <= self.tree.root.height:
            return
        try:
            self._accept(proposal, out)
        except InvalidMessage as exc:
            out.append(Dropped(sender, DropKind.PROPOSAL, str(exc)))

    def _stash(self, sender: ReplicaId, proposal: Proposal) -> None:
        self._pending.setdefault(proposal.block.parent_id, []).append((sender, proposal))
        while len(self._pending) > self.config.max_pending_proposals:
            self._pending.popitem(last=False)

    def _try_vote(self, proposal: Proposal, out: list[Action]) -> None:
        block = proposal.block
        if block.round != self.pacemaker.round or block.id not in self.tree:
            return
        refusal = self.rules.vote_refusal(self.safety, block, proposal.last_tc)
        if refusal is not None:
            self._refuse(block.author, refusal, out)
            return
        vote = self._sign_vote(block, out)
        self._deliver_vote(vote, out)

    def _refuse(
        self, sender: ReplicaId, refusal: NotSafeToVote | NotSafeToTimeout, out: list[Action]
    ) -> None:
        kind = DropKind.NOT_SAFE_TO_VOTE if isinstance(refusal, NotSafeToVote) else DropKind.NOT_SAFE_TO_TIMEOUT
        out.append(Dropped(sender, kind, str(refusal), refusal))

    def _sign_vote(self, block: Block, out: list[Action]) -> Vote:
        out.append(PersistBlock(block))
        state = self.rules.observe_qc(self.safety, block.qc)
        self.safety = self.rules.record_vote(state, block.round)
        self._persist(out)
        signature = self._sign(SignatureKind.VOTE, block.round, block.id)
        return Vote(block.round, block.id, self.id, signature)

    def _deliver_vote(self, vote: Vote, out: list[Action]) -> None:
        """Votes go to everyone: each replica forms the QC itself, so when the next leader is
        down the round still ends by QC and only the leader's own round times out."""
        out.append(Broadcast(vote))
        self._collect_vote(vote, out)

    # -- votes and certificates ----------------------------------------------------------------

    def _on_vote(self, vote: Vote, out: list[Action]) -> None:
        if vote.round + self.config.evidence_window < self.pacemaker.round:
            return
        if vote.round > self.pacemaker.round + self.config.max_rounds_ahead:
            raise InvalidMessage(f"vote for round {vote.round}, too far ahead of round {self.round}")
        verify_vote(vote, self._verifier)
        first = self.detector.first(EvidenceKind.DOUBLE_VOTE, vote.round, vote.voter) is None
        self._observe(EvidenceKind.DOUBLE_VOTE, vote.round, vote.voter, vote.block_id,
                      vote.signature, out)
        if first:
            self._show_held_proposal(vote, out)
        if vote.round + 1 >= self.pacemaker.round:
            self._collect_vote(vote, out)

    def _show_held_proposal(self, vote: Vote, out: list[Action]) -> None:
        """A voter's first vote in a round is for another block than the round's proposal we hold:
        the leader may have shown it a different proposal. Send it ours, so that one side of a
        double proposal sees both signed proposals and reports it (votes carry no proposer
        signature). Never sent in a round with one proposal; at most once per (round, voter)."""
        held = self.detector.first(EvidenceKind.DOUBLE_PROPOSAL, vote.round, self.leaders.leader(vote.round))
        if held is None or held[0] == vote.block_id:
            return
        proposal = self._proposals.get(held[0])
        if proposal is not None:
            out.append(Send(vote.voter, proposal))

    def _collect_vote(self, vote: Vote, out: list[Action]) -> None:
        qc = self._votes.add(vote)
        if qc is not None:
            self._process_certificates(qc, None, out)

    def _observe_qc(self, qc: QuorumCert, out: list[Action]) -> None:
        if qc.round == 0:
            return
        self.tree.record_qc(qc)
        self.safety = self.rules.observe_qc(self.safety, qc)
        self._try_commit(qc, out)

    def _process_certificates(
        self, qc: QuorumCert | None, tc: TimeoutCert | None, out: list[Action]
    ) -> None:
        """Learn from verified certificates, commit what they allow, then enter the highest round
        they justify (once, so no intermediate round is entered on the way)."""
        target, by_tc = 0, False
        if qc is not None:
            self._observe_qc(qc, out)
            target = qc.round + 1
        if tc is not None:
            self._observe_qc_votes(tc.high_qc, out)  # a TC's QC is checked like any other (§6)
            self._observe_qc(tc.high_qc, out)
            self.safety = self.rules.observe_tc(self.safety, tc)
            if tc.round + 1 > target:
                target, by_tc = tc.round + 1, True
        if target and self.pacemaker.advance(target, by_tc=by_tc):
            self._enter_round(out)

    def _try_commit(self, qc: QuorumCert, out: list[Action]) -> None:
        certified = self.tree.get(qc.block_id)
        if certified is None:
            return
        parent = self.tree.get(certified.parent_id)
        if parent is None or certified.round != parent.round + 1:
            return
        if parent.height <= self.tree.root.height:
            return
        committed = self.tree.commit(parent.id)
        for block in committed:
            self.leaders.observe_commit(block)
        headers = [b.header() for b in committed]
        headers.append(certified.header())
        for i, block in enumerate(committed):
            out.append(Commit(block, CommitProof(tuple(headers[i:]), qc)))
        self._after_commit()

    def _after_commit(self) -> None:
        self._proposals = {k: v for k, v in self._proposals.items() if k in self.tree}
        self._awaiting_payload = {k: v for k, v in self._awaiting_payload.items() if k in self.tree}
        root_height = self.tree.root.height
        self._fetched = {k: b for k, b in self._fetched.items() if b.height > root_height}
        horizon = self.tree.root.round - self.config.evidence_window
        if horizon >= self._pruned_below + PRUNE_EVERY:
            self.detector.prune(horizon)
            self._pruned_below = horizon

    # -- rounds and timeouts -------------------------------------------------------------------

    def _enter_round(self, out: list[Action]) -> None:
        r = self.pacemaker.round
        out.append(RoundEntered(r, self.pacemaker.entered_by_tc))
        out.append(SetTimer(r, self.pacemaker.duration()))
        self._votes.prune(r - 1)
        self._timeouts.prune(r)
        if self.leaders.leader(r) == self.id:
            self._propose(out)

    def _propose(self, out: list[Action]) -> None:
        r = self.pacemaker.round
        if self._proposed_round >= r or r <= self.safety.highest_voted_round:
            return
        qc = self.safety.high_qc
        tc = self.last_tc if self.last_tc is not None and self.last_tc.round + 1 == r else None
        if qc.round + 1 != r and tc is None:
            return
        parent = self.tree.get(qc.block_id)
        if parent is None:
            self._fetch(self.leaders.leader(qc.round), qc.block_id, out)
            return
        if not self.tree.extends_root(parent.id):
            return
        self._proposed_round = r
        self._proposal_context = _ProposalContext(r, parent, qc, tc)
        ancestors = tuple(self.tree.path_from_root(parent.id))
        out.append(RequestPayload(r, parent, ancestors))

    def _send_timeout(self, out: list[Action]) -> None:
        r = self.pacemaker.round
        qc = self.safety.high_qc
        tc = self.last_tc if self.last_tc is not None and self.last_tc.round + 1 == r else None
        refusal = self.rules.timeout_refusal(self.safety, r, qc, tc)
        if refusal is not None:
            self._refuse(self.id, refusal, out)
            return
        self.safety = self.rules.record_vote(self.safety, r)
        self._persist(out)
        self._timed_out_round = r
        signature = self._sign(SignatureKind.TIMEOUT, r, timeout_payload(qc.round))
        timeout = Timeout(r, qc, self.id, signature, tc)
        out.append(Broadcast(timeout))
        self._collect_timeout(timeout, out)

    def _on_timeout_message(self, timeout: Timeout, out: list[Action]) -> None:
        if timeout.round + 1 < self.pacemaker.round:
            return
        verify_timeout(timeout, self._verifier, self.genesis.id)
        self._observe_qc_votes(timeout.high_qc, out)
        self._process_certificates(timeout.high_qc, timeout.last_tc, out)
        if timeout.round <= self.pacemaker.round + self.config.max_rounds_ahead:
            self._collect_timeout(timeout, out)

    def _collect_timeout(self, timeout: Timeout, out: list[Action]) -> None:
        tc = self._timeouts.add(timeout)
        if tc is not None:
            self._process_certificates(None, tc, out)
            return
        r = self.pacemaker.round
        if (
            timeout.round == r
            and self._timed_out_round < r
            and self._timeouts.count(r) >= self.committee.validity_threshold
        ):
            self._send_timeout(out)

    # -- fetching missing blocks ---------------------------------------------------------------

    def _fetch(self, peer: ReplicaId, target: BlockId, out: list[Action]) -> None:
        if target in self._fetching or target in self.tree:
            return
        if len(self._fetching) >= self.config.max_pending_proposals:
            return
        if peer == self.id:
            peer = (self.id + 1) % self.committee.size
        self._fetching[target] = peer
        out.append(FetchBlocks(peer, target, self.tree.root.height))

    def _refetch(self, target: BlockId, out: list[Action]) -> None:
        if target in self.tree:
            del self._fetching[target]
            return
        peer = (self._fetching[target] + 1) % self.committee.size
        if peer == self.id:
            peer = (peer + 1) % self.committee.size
        self._fetching[target] = peer
        out.append(FetchBlocks(peer, target, self.tree.root.height))

    def _on_blocks(self, sender: ReplicaId, blocks: Sequence[Block], out: list[Action]) -> None:
        if not blocks:
            return
        head = blocks[0]
        if head.id not in self._fetching:
            raise InvalidMessage("blocks that nobody asked for")
        for newer, older in itertools.pairwise(blocks):
            if newer.parent_id != older.id:
                raise InvalidMessage("fetched blocks are not a hash-linked chain")
            BlockTree.check_child(newer, older)
        for block in blocks:  # all checks before the first change of state (memoised, not repeated)
            verify_block_certificate(block, self._verifier, self.genesis.id)
            parent = self.tree.get(block.parent_id)
            if parent is not None:
                BlockTree.check_child(block, parent)
        del self._fetching[head.id]
        for block in blocks:
            if len(self._fetched) >= self.config.max_fetched_blocks:
                break
            self._fetched[block.id] = block
        connected = any(b.id in self.tree or b.parent_id in self.tree for b in blocks)
        oldest = blocks[-1]
        if not connected:
            if oldest.height > self.tree.root.height + 1:
                self._fetching[oldest.parent_id] = sender
                out.append(FetchBlocks(sender, oldest.parent_id, self.tree.root.height))
            return
        self._insert_fetched(head.id, out)

    def _insert_fetched(self, head: BlockId, out: list[Action]) -> None:
        chain: list[Block] = []
        block = self._fetched.get(head)
        while block is not None and block.id not in self.tree:
            chain.append(block)
            block = self._fetched.get(block.parent_id)
        for block in reversed(chain):
            self._fetched.pop(block.id, None)
            if block.id in self.tree or block.parent_id not in self.tree:
                continue  # (every fetched block's certificate was verified on arrival)
            self._observe_qc_votes(block.qc, out)
            self._insert(block, out)
            self._process_certificates(block.qc, None, out)
            self._accept_children(block.id, out)
        if self.leaders.leader(self.pacemaker.round) == self.id:
            self._propose(out)

    # -- evidence and persistence --------------------------------------------------------------

    def _observe(
        self, kind: EvidenceKind, round: int, signer: ReplicaId, block_id: BlockId,
        signature: bytes, out: list[Action],
    ) -> None:
        evidence = self.detector.observe(kind, round, signer, block_id, signature)
        if evidence is not None:
            out.append(RecordEvidence(evidence))

    def _observe_qc_votes(self, qc: QuorumCert, out: list[Action]) -> None:
        for voter, signature in qc.votes:
            self._observe(EvidenceKind.DOUBLE_VOTE, qc.round, voter, qc.block_id, signature, out)

    def _sign(self, kind: SignatureKind, round: int, payload: bytes) -> bytes:
        """Sign as this replica, and tell the verifier the signature is good (it returns inside the
        certificates peers build, where checking it again would cost an Ed25519 verify)."""
        signature = self._signer.sign(kind, round, payload)
        self._verifier.remember_own(self._signer, kind, round, payload, signature)
        return signature

    def _persist(self, out: list[Action]) -> None:
        if self.safety != self._persisted:
            self._persisted = self.safety
            out.append(PersistSafety(self.safety))
