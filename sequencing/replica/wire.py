"""Node-level messages between replicas (batches, block fetches, catch-up, status) and the codec
the transport uses for them and for consensus messages.

Envelope: ``[tag, body]``; tags 1-4 are consensus messages (consensus.messages), 10+ are these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from consensus.commit_proof import CommitProof
from consensus.encoding import DIGEST_SIZE, expect_bytes, expect_int, expect_list, pack, unpack
from consensus.errors import DecodeError
from consensus.messages import MESSAGE_TYPES, Block, QuorumCert, TimeoutCert

from ..rollup.batches import Batch

MAX_FETCH = 512


@dataclass(frozen=True, slots=True)
class BatchMsg:
    TAG: ClassVar[int] = 10
    batch: Batch

    def to_wire(self) -> Any:
        return self.batch.to_wire()

    @classmethod
    def from_wire(cls, wire: Any) -> BatchMsg:
        return cls(Batch.from_wire(wire))


@dataclass(frozen=True, slots=True)
class BatchRequest:
    TAG: ClassVar[int] = 11
    digests: tuple[bytes, ...]

    def to_wire(self) -> Any:
        return list(self.digests)

    @classmethod
    def from_wire(cls, wire: Any) -> BatchRequest:
        items = expect_list(wire, "batch_request", max_len=MAX_FETCH)
        return cls(tuple(expect_bytes(d, "digest", size=DIGEST_SIZE) for d in items))


@dataclass(frozen=True, slots=True)
class BatchResponse:
    TAG: ClassVar[int] = 12
    batches: tuple[Batch, ...]

    def to_wire(self) -> Any:
        return [b.to_wire() for b in self.batches]

    @classmethod
    def from_wire(cls, wire: Any) -> BatchResponse:
        return cls(tuple(Batch.from_wire(b) for b in expect_list(wire, "batch_response", max_len=MAX_FETCH)))


@dataclass(frozen=True, slots=True)
class BlockRequest:
    """Answering ``consensus.actions.FetchBlocks``: target's chain above a height, newest first."""

    TAG: ClassVar[int] = 13
    target: bytes
    above_height: int

    def to_wire(self) -> Any:
        return [self.target, self.above_height]

    @classmethod
    def from_wire(cls, wire: Any) -> BlockRequest:
        target, above = expect_list(wire, "block_request", length=2)
        return cls(expect_bytes(target, "target", size=DIGEST_SIZE), expect_int(above, "above_height"))


@dataclass(frozen=True, slots=True)
class BlockResponse:
    TAG: ClassVar[int] = 14
    blocks: tuple[Block, ...]

    def to_wire(self) -> Any:
        return [b.to_wire() for b in self.blocks]

    @classmethod
    def from_wire(cls, wire: Any) -> BlockResponse:
        return cls(tuple(Block.from_wire(b) for b in expect_list(wire, "block_response", max_len=MAX_FETCH)))


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """Catch-up: committed blocks from ``from_height`` on (at most ``limit``)."""

    TAG: ClassVar[int] = 15
    from_height: int
    limit: int

    def to_wire(self) -> Any:
        return [self.from_height, self.limit]

    @classmethod
    def from_wire(cls, wire: Any) -> SyncRequest:
        start, limit = expect_list(wire, "sync_request", length=2)
        return cls(expect_int(start, "from_height", lo=1), expect_int(limit, "limit", lo=1, hi=MAX_FETCH))


@dataclass(frozen=True, slots=True)
class SyncResponse:
    """Committed blocks, ascending, the commit proof of the last one (none if no blocks), and the
    bodies of the batches those blocks reference (as many as fit; the rest are fetched)."""

    TAG: ClassVar[int] = 16
    blocks: tuple[Block, ...]
    proof: CommitProof | None
    committed_height: int
    batches: tuple[Batch, ...] = ()

    def to_wire(self) -> Any:
        proof = None if self.proof is None else self.proof.to_wire()
        return [[b.to_wire() for b in self.blocks], proof, self.committed_height,
                [b.to_wire() for b in self.batches]]

    @classmethod
    def from_wire(cls, wire: Any) -> SyncResponse:
        blocks, proof, height, batches = expect_list(wire, "sync_response", length=4)
        return cls(
            tuple(Block.from_wire(b) for b in expect_list(blocks, "sync.blocks", max_len=MAX_FETCH)),
            None if proof is None else CommitProof.from_wire(proof),
            expect_int(height, "sync.committed_height"),
            tuple(Batch.from_wire(b) for b in expect_list(batches, "sync.batches", max_len=1 << 16)),
        )


@dataclass(frozen=True, slots=True)
class StatusRequest:
    TAG: ClassVar[int] = 17

    def to_wire(self) -> Any:
        return []

    @classmethod
    def from_wire(cls, wire: Any) -> StatusRequest:
        expect_list(wire, "status_request", length=0)
        return cls()


@dataclass(frozen=True, slots=True)
class StatusResponse:
    """A replica's highest certificates and committed height (recovery floor, lag detection)."""

    TAG: ClassVar[int] = 18
    high_qc: QuorumCert
    last_tc: TimeoutCert | None
    committed_height: int

    def to_wire(self) -> Any:
        tc = None if self.last_tc is None else self.last_tc.to_wire()
        return [self.high_qc.to_wire(), tc, self.committed_height]

    @classmethod
    def from_wire(cls, wire: Any) -> StatusResponse:
        qc, tc, height = expect_list(wire, "status_response", length=3)
        return cls(
            QuorumCert.from_wire(qc),
            None if tc is None else TimeoutCert.from_wire(tc),
            expect_int(height, "status.committed_height"),
        )


NODE_MESSAGES: dict[int, Any] = {
    cls.TAG: cls
    for cls in (BatchMsg, BatchRequest, BatchResponse, BlockRequest, BlockResponse, SyncRequest,
                SyncResponse, StatusRequest, StatusResponse)
}
ALL_MESSAGES: dict[int, Any] = {**MESSAGE_TYPES, **NODE_MESSAGES}


class NodeCodec:
    """The transport codec: consensus and node messages, strict, size-bounded."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size

    def encode(self, message: Any) -> bytes:
        return pack([message.TAG, message.to_wire()])

    def decode(self, data: bytes) -> Any:
        tag, body = expect_list(unpack(data, max_size=self.max_size), "message", length=2)
        cls = ALL_MESSAGES.get(expect_int(tag, "message.tag", hi=255))
        if cls is None:
            raise DecodeError(f"unknown message tag {tag}")
        return cls.from_wire(body)


class PeerLink(Protocol):
    """The transport as the replica's parts see it (network.Transport satisfies it): send one
    message to a peer, or to every peer; False / 0 if it was not queued (peer unknown, queue full)."""

    def send(self, to: int, message: object) -> bool: ...

    def broadcast(self, message: object) -> int: ...
