"""Protocol messages: frozen, slotted dataclasses with one canonical wire form each.

``to_wire()`` gives the positional structure that msgpack encodes; ``from_wire()`` rebuilds the
object from an untrusted structure and raises :class:`DecodeError` on any deviation. Structural
invariants are checked in constructors; signatures and quorums are checked by
:mod:`consensus.validation`, which needs the committee.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar

from .encoding import (
    DIGEST_SIZE,
    SIGNATURE_SIZE,
    digest,
    expect_bytes,
    expect_int,
    expect_list,
    hash_bytes,
    pack,
    unpack,
)
from .errors import DecodeError

ReplicaId = int
BlockId = bytes

MAX_REPLICAS = 1024
MAX_PAYLOAD = 16 << 20
MAX_MESSAGE_SIZE = MAX_PAYLOAD + (1 << 20)
ZERO_ID = b"\0" * DIGEST_SIZE


def _check_digest(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != DIGEST_SIZE:
        raise DecodeError(f"{what}: expected a {DIGEST_SIZE}-byte digest")


def _check_signature(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != SIGNATURE_SIZE:
        raise DecodeError(f"{what}: expected a {SIGNATURE_SIZE}-byte signature")


def _check_round(value: int, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise DecodeError(f"{what}: expected a non-negative integer")


@dataclass(frozen=True, slots=True)
class QuorumCert:
    """2f+1 votes for ``block_id`` in ``round``. Round 0 is the genesis certificate (no votes)."""

    round: int
    block_id: BlockId
    votes: tuple[tuple[ReplicaId, bytes], ...]

    def __post_init__(self) -> None:
        _check_round(self.round, "qc.round")
        _check_digest(self.block_id, "qc.block_id")
        voters = [v for v, _ in self.votes]
        if voters != sorted(set(voters)):
            raise DecodeError("qc.votes: voters must be unique and sorted")
        for _, sig in self.votes:
            _check_signature(sig, "qc.votes.signature")

    @property
    def signers(self) -> tuple[ReplicaId, ...]:
        return tuple(v for v, _ in self.votes)

    def to_wire(self) -> list[Any]:
        return [self.round, self.block_id, [[v, s] for v, s in self.votes]]

    @classmethod
    def from_wire(cls, wire: Any) -> QuorumCert:
        r, block_id, votes = expect_list(wire, "qc", length=3)
        pairs = []
        for item in expect_list(votes, "qc.votes", max_len=MAX_REPLICAS):
            voter, sig = expect_list(item, "qc.vote", length=2)
            pairs.append((expect_int(voter, "qc.voter", hi=MAX_REPLICAS), expect_bytes(sig, "qc.sig")))
        return cls(expect_int(r, "qc.round"), expect_bytes(block_id, "qc.block_id"), tuple(pairs))

    @property
    def digest(self) -> bytes:
        return digest(b"ordo/qc", self.to_wire())


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """What a block id commits to; enough for a light client to follow parent links and rounds."""

    round: int
    height: int
    parent_id: BlockId
    parent_round: int
    author: ReplicaId
    payload_hash: bytes
    data_root: bytes

    def to_wire(self) -> list[Any]:
        return [
            self.round, self.height, self.parent_id, self.parent_round,
            self.author, self.payload_hash, self.data_root,
        ]

    @classmethod
    def from_wire(cls, wire: Any) -> BlockHeader:
        r, h, parent, parent_round, author, payload_hash, data_root = expect_list(
            wire, "header", length=7
        )
        return cls(
            expect_int(r, "header.round"),
            expect_int(h, "header.height"),
            expect_bytes(parent, "header.parent_id", size=DIGEST_SIZE),
            expect_int(parent_round, "header.parent_round"),
            expect_int(author, "header.author", hi=MAX_REPLICAS),
            expect_bytes(payload_hash, "header.payload_hash", size=DIGEST_SIZE),
            expect_bytes(data_root, "header.data_root", size=DIGEST_SIZE),
        )

    @property
    def id(self) -> BlockId:
        return digest(b"ordo/block", self.to_wire())


@dataclass(frozen=True, slots=True)
class Block:
    """A proposal's content. ``qc`` certifies the parent; ``payload`` is opaque to consensus.

    ``data_root`` is a 32-byte commitment the application makes over the block's ordered data
    (ordo's sequencer puts the namespaced Merkle root there); consensus only carries it.
    """

    round: int
    height: int
    qc: QuorumCert
    author: ReplicaId
    payload: bytes
    data_root: bytes
    id: BlockId = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_round(self.round, "block.round")
        _check_round(self.height, "block.height")
        _check_digest(self.data_root, "block.data_root")
        if not isinstance(self.payload, bytes) or len(self.payload) > MAX_PAYLOAD:
            raise DecodeError("block.payload: expected bytes within the payload limit")
        if self.height > 0 and self.round <= self.qc.round:
            raise DecodeError("block.round must exceed the round of the QC it extends")
        object.__setattr__(self, "id", self.header().id)

    @property
    def parent_id(self) -> BlockId:
        return self.qc.block_id

    def header(self) -> BlockHeader:
        return BlockHeader(
            self.round, self.height, self.qc.block_id, self.qc.round,
            self.author, hash_bytes(self.payload), self.data_root,
        )

    def to_wire(self) -> list[Any]:
        return [self.round, self.height, self.qc.to_wire(), self.author, self.payload, self.data_root]

    @classmethod
    def from_wire(cls, wire: Any) -> Block:
        r, h, qc, author, payload, data_root = expect_list(wire, "block", length=6)
        return cls(
            expect_int(r, "block.round"),
            expect_int(h, "block.height"),
            QuorumCert.from_wire(qc),
            expect_int(author, "block.author", hi=MAX_REPLICAS),
            expect_bytes(payload, "block.payload", max_len=MAX_PAYLOAD),
            expect_bytes(data_root, "block.data_root", size=DIGEST_SIZE),
        )


def genesis_block(chain_id: str) -> Block:
    """The chain's root: round 0, height 0, unique per chain id."""
    root = digest(b"ordo/genesis", chain_id)
    return Block(0, 0, QuorumCert(0, ZERO_ID, ()), 0, chain_id.encode(), root)


def genesis_qc(chain_id: str) -> QuorumCert:
    return QuorumCert(0, genesis_block(chain_id).id, ())


@dataclass(frozen=True, slots=True)
class TimeoutCert:
    """2f+1 timeouts for ``round``; each entry is (author, that author's high-QC round, signature).

    ``high_qc`` is the highest of the QCs the timeouts carried; its round equals the largest
    entry round, so a proposal after the TC can be checked against it.
    """

    round: int
    high_qc: QuorumCert
    entries: tuple[tuple[ReplicaId, int, bytes], ...]

    def __post_init__(self) -> None:
        _check_round(self.round, "tc.round")
        authors = [a for a, _, _ in self.entries]
        if authors != sorted(set(authors)):
            raise DecodeError("tc.entries: authors must be unique and sorted")
        for _, hqc_round, sig in self.entries:
            _check_round(hqc_round, "tc.entry.hqc_round")
            _check_signature(sig, "tc.entry.signature")

    @property
    def max_hqc_round(self) -> int:
        return max((r for _, r, _ in self.entries), default=0)

    def to_wire(self) -> list[Any]:
        return [self.round, self.high_qc.to_wire(), [[a, r, s] for a, r, s in self.entries]]

    @classmethod
    def from_wire(cls, wire: Any) -> TimeoutCert:
        r, hqc, entries = expect_list(wire, "tc", length=3)
        parsed = []
        for item in expect_list(entries, "tc.entries", max_len=MAX_REPLICAS):
            a, er, sig = expect_list(item, "tc.entry", length=3)
            parsed.append(
                (expect_int(a, "tc.author", hi=MAX_REPLICAS), expect_int(er, "tc.hqc_round"),
                 expect_bytes(sig, "tc.sig"))
            )
        return cls(expect_int(r, "tc.round"), QuorumCert.from_wire(hqc), tuple(parsed))


@dataclass(frozen=True, slots=True)
class Proposal:
    """A leader's block for ``block.round``, signed by ``block.author``; ``last_tc`` justifies a
    round entered by timeout."""

    block: Block
    last_tc: TimeoutCert | None
    signature: bytes

    TAG: ClassVar[int] = 1

    def __post_init__(self) -> None:
        _check_signature(self.signature, "proposal.signature")

    @property
    def round(self) -> int:
        return self.block.round

    @property
    def author(self) -> ReplicaId:
        return self.block.author

    def to_wire(self) -> list[Any]:
        tc = None if self.last_tc is None else self.last_tc.to_wire()
        return [self.block.to_wire(), tc, self.signature]

    @classmethod
    def from_wire(cls, wire: Any) -> Proposal:
        block, tc, sig = expect_list(wire, "proposal", length=3)
        return cls(
            Block.from_wire(block),
            None if tc is None else TimeoutCert.from_wire(tc),
            expect_bytes(sig, "proposal.signature"),
        )


@dataclass(frozen=True, slots=True)
class Vote:
    TAG: ClassVar[int] = 2

    round: int
    block_id: BlockId
    voter: ReplicaId
    signature: bytes

    def __post_init__(self) -> None:
        _check_round(self.round, "vote.round")
        _check_digest(self.block_id, "vote.block_id")
        _check_signature(self.signature, "vote.signature")

    def to_wire(self) -> list[Any]:
        return [self.round, self.block_id, self.voter, self.signature]

    @classmethod
    def from_wire(cls, wire: Any) -> Vote:
        r, block_id, voter, sig = expect_list(wire, "vote", length=4)
        return cls(
            expect_int(r, "vote.round"),
            expect_bytes(block_id, "vote.block_id"),
            expect_int(voter, "vote.voter", hi=MAX_REPLICAS),
            expect_bytes(sig, "vote.signature"),
        )


@dataclass(frozen=True, slots=True)
class Timeout:
    """``author`` gives up on ``round``; carries its high QC (signed: its round) and, unsigned,
    the TC that let it enter the round, which helps laggards catch up."""

    TAG: ClassVar[int] = 3

    round: int
    high_qc: QuorumCert
    author: ReplicaId
    signature: bytes
    last_tc: TimeoutCert | None = None

    def __post_init__(self) -> None:
        _check_round(self.round, "timeout.round")
        _check_signature(self.signature, "timeout.signature")

    def to_wire(self) -> list[Any]:
        tc = None if self.last_tc is None else self.last_tc.to_wire()
        return [self.round, self.high_qc.to_wire(), self.author, self.signature, tc]

    @classmethod
    def from_wire(cls, wire: Any) -> Timeout:
        r, hqc, author, sig, tc = expect_list(wire, "timeout", length=5)
        return cls(
            expect_int(r, "timeout.round"),
            QuorumCert.from_wire(hqc),
            expect_int(author, "timeout.author", hi=MAX_REPLICAS),
            expect_bytes(sig, "timeout.signature"),
            None if tc is None else TimeoutCert.from_wire(tc),
        )


class EvidenceKind(IntEnum):
    DOUBLE_VOTE = 1
    DOUBLE_PROPOSAL = 2


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two signatures by ``offender`` for different blocks in one round, of one kind.

    Canonical: ``block_a < block_b``, so the same equivocation always has the same evidence id.
    Verifies with the committee's public keys alone (:func:`consensus.evidence.verify_evidence`).
    """

    TAG: ClassVar[int] = 4

    kind: EvidenceKind
    offender: ReplicaId
    round: int
    block_a: BlockId
    signature_a: bytes
    block_b: BlockId
    signature_b: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.kind, EvidenceKind):
            raise DecodeError("evidence.kind: unknown kind")
        _check_round(self.round, "evidence.round")
        _check_digest(self.block_a, "evidence.block_a")
        _check_digest(self.block_b, "evidence.block_b")
        _check_signature(self.signature_a, "evidence.signature_a")
        _check_signature(self.signature_b, "evidence.signature_b")
        if not self.block_a < self.block_b:
            raise DecodeError("evidence: blocks must differ and be in canonical order")

    @classmethod
    def of(
        cls, kind: EvidenceKind, offender: ReplicaId, round: int,
        first: tuple[BlockId, bytes], second: tuple[BlockId, bytes],
    ) -> Evidence:
        (a, sa), (b, sb) = sorted([first, second])
        return cls(kind, offender, round, a, sa, b, sb)

    @property
    def id(self) -> bytes:
        return digest(b"ordo/evidence", self.to_wire())

    def to_wire(self) -> list[Any]:
        return [
            int(self.kind), self.offender, self.round,
            self.block_a, self.signature_a, self.block_b, self.signature_b,
        ]

    @classmethod
    def from_wire(cls, wire: Any) -> Evidence:
        kind, offender, r, a, sa, b, sb = expect_list(wire, "evidence", length=7)
        kind_value = expect_int(kind, "evidence.kind", lo=1, hi=2)
        return cls(
            EvidenceKind(kind_value),
            expect_int(offender, "evidence.offender", hi=MAX_REPLICAS),
            expect_int(r, "evidence.round"),
            expect_bytes(a, "evidence.block_a"),
            expect_bytes(sa, "evidence.signature_a"),
            expect_bytes(b, "evidence.block_b"),
            expect_bytes(sb, "evidence.signature_b"),
        )

    def encode(self) -> bytes:
        return pack(self.to_wire())

    @classmethod
    def decode(cls, data: bytes) -> Evidence:
        return cls.from_wire(unpack(data, max_size=4096))


ConsensusMessage = Proposal | Vote | Timeout | Evidence

MESSAGE_TYPES: dict[int, type[Proposal] | type[Vote] | type[Timeout] | type[Evidence]] = {
    Proposal.TAG: Proposal,
    Vote.TAG: Vote,
    Timeout.TAG: Timeout,
    Evidence.TAG: Evidence,
}


def encode_message(msg: ConsensusMessage) -> bytes:
    """The canonical bytes of a consensus message: ``[tag, body]``."""
    return pack([msg.TAG, msg.to_wire()])


def decode_message(data: bytes, *, max_size: int = MAX_MESSAGE_SIZE) -> ConsensusMessage:
    """Strictly decode bytes from :func:`encode_message`; raises :class:`DecodeError` only."""
    tag, body = expect_list(unpack(data, max_size=max_size), "message", length=2)
    cls = MESSAGE_TYPES.get(expect_int(tag, "message.tag", hi=255))
    if cls is None:
        raise DecodeError(f"unknown consensus message tag {tag}")
    return cls.from_wire(body)
