"""Building a leader's payload and checking a proposal's payload before voting.

Both sides apply the same rules to the same inputs (the block's uncommitted ancestors, the
committed batches and evidence, the batch bodies, the block's window of recently committed
transactions), so every honest replica reaches the same
verdict and the same ``data_root``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from consensus.crypto import Verifier
from consensus.errors import ConsensusError
from consensus.evidence import verify_evidence
from consensus.messages import Block, Evidence

from ..config import Limits
from ..rollup.batches import Batch, BatchPool
from ..rollup.block_content import BlockContent, BlockPayload, assemble
from ..rollup.tx_window import NOTHING_BEFORE, SeenBefore
from .evidence_pool import EvidencePool


class PayloadRejected(Exception):
    """A proposal's payload breaks a rule; the message says which."""


@dataclass(frozen=True, slots=True)
class Ancestry:
    """Batch digests and evidence ids already used by a block's uncommitted ancestors."""

    batches: frozenset[bytes]
    evidence: frozenset[bytes]

    @classmethod
    def of(cls, ancestors: Sequence[Block]) -> Ancestry:
        batches: set[bytes] = set()
        evidence: set[bytes] = set()
        for block in ancestors:
            try:
                payload = BlockPayload.decode(block.payload)
            except ConsensusError:
                continue  # certified blocks always decode; a foreign payload only excludes nothing
            batches.update(payload.batches)
            evidence.update(e.id for e in payload.evidence)
        return cls(frozenset(batches), frozenset(evidence))


def build_payload(
    *, height: int, round: int, ancestry: Ancestry, batches: BatchPool, evidence: EvidencePool,
    limits: Limits, before: SeenBefore = NOTHING_BEFORE, leave_out: Callable[[Batch], bool] | None = None,
) -> tuple[BlockPayload, BlockContent]:
    chosen = batches.select(
        exclude=set(ancestry.batches), height=height,
        max_batches=limits.block_max_batches, max_txs=limits.block_max_txs, skip=leave_out,
    )
    proofs = evidence.select(block_round=round, exclude=set(ancestry.evidence))
    payload = BlockPayload(tuple(b.digest for b in chosen), tuple(proofs))
    return payload, assemble(chosen, before)


def empty_payload(*, round: int, ancestry: Ancestry, evidence: EvidencePool) -> tuple[BlockPayload, BlockContent]:
    """A payload without batches (its content needs no window), only the evidence to commit."""
    proofs = evidence.select(block_round=round, exclude=set(ancestry.evidence))
    return BlockPayload((), tuple(proofs)), assemble(())


def check_payload(
    block: Block,
    payload: BlockPayload,
    bodies: Sequence[Batch],
    *,
    ancestry: Ancestry,
    batch_committed: Callable[[bytes], bool],
    evidence: EvidencePool,
    verifier: Verifier,
    limits: Limits,
    before: SeenBefore = NOTHING_BEFORE,
) -> BlockContent:
    """Raises PayloadRejected, or returns the block's content (whose root matched)."""
    if len(payload.batches) > limits.block_max_batches:
        raise PayloadRejected(f"{len(payload.batches)} batches exceed {limits.block_max_batches}")
    if len(set(payload.batches)) != len(payload.batches):
        raise PayloadRejected("a batch appears twice")
    for batch in bodies:
        if batch.digest in ancestry.batches:
            raise PayloadRejected("a batch is already in an uncommitted ancestor")
        if batch_committed(batch.digest):
            raise PayloadRejected("a batch was already committed")
        if not batch.live_at(block.height, limits.batch_ttl_blocks):
            raise PayloadRejected(
                f"batch created at height {batch.created_height} is not live at {block.height}"
            )
    if sum(b.tx_count for b in bodies) > limits.block_max_txs:
        raise PayloadRejected(f"more than {limits.block_max_txs} transactions")
    _check_evidence(block, payload.evidence, ancestry, evidence, verifier, limits)
    content = assemble(bodies, before)
    if content.data_root != block.data_root:
        raise PayloadRejected("data_root does not match the transactions")
    return content


def _check_evidence(
    block: Block, items: Sequence[Evidence], ancestry: Ancestry, pool: EvidencePool,
    verifier: Verifier, limits: Limits,
) -> None:
    size = 0
    seen: set[bytes] = set()
    for e in items:
        if e.id in seen or e.id in ancestry.evidence or pool.is_committed(e.id):
            raise PayloadRejected("evidence included twice")
        seen.add(e.id)
        if pool.expired(e, block.round):
            raise PayloadRejected(f"evidence from round {e.round} expired at round {block.round}")
        try:
            verify_evidence(e, verifier)
        except ConsensusError as exc:
            raise PayloadRejected(f"invalid evidence: {exc}") from None
        size += len(e.encode())
    if size > limits.evidence_max_bytes_per_block:
        raise PayloadRejected(f"{size} bytes of evidence exceed {limits.evidence_max_bytes_per_block}")
