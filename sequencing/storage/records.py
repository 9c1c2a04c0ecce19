"""What one committed block writes, checked and turned into rows before any write begins.

Per-rollup sub-log digest (``LedgerStore.rollup_summary``)::

    d_0 = 32 zero bytes
    d   = blake2b-256(d || u64be(height) || msgpack(payloads))   for each height, ascending,
                                                                 where the rollup has transactions

``msgpack(payloads)`` is the canonical encoding (:func:`consensus.encoding.pack`) of the list of the
rollup's payloads at that height, which is also the stored slice blob. Two replicas have equal
digests for a rollup exactly when (barring collisions) they hold the same sub-log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter

from consensus.commit_proof import CommitProof
from consensus.encoding import DIGEST_SIZE, pack
from consensus.messages import Block, Evidence

from .schema import InvalidRecord

SUBLOG_SEED = bytes(DIGEST_SIZE)
MAX_ROLLUP_ID = 2**32 - 1


@dataclass(frozen=True, slots=True)
class CommitRecord:
    """Everything the node writes for one committed block."""

    block: Block
    proof: CommitProof
    leaves: tuple[tuple[int, bytes], ...]  # NMT leaves in tree order, grouped by rollup id
    tx_ids: tuple[bytes, ...]  # one 32-byte id per leaf, same order as leaves
    bundles: tuple[tuple[bytes, tuple[int, ...]], ...]  # (bundle_id, leaf indices of its txs)
    batch_digests: tuple[bytes, ...]  # batches this block committed
    evidence: tuple[Evidence, ...]  # evidence this block committed
    batch_bodies: tuple[bytes, ...] = ()  # encoded bodies, aligned with batch_digests (kept: catch-up
    #                                       and late fetches are served from them)


def sublog_step(previous: bytes, height: int, slice_blob: bytes) -> bytes:
    """One step of the running sub-log digest; ``slice_blob`` is ``pack(list_of_payloads)``."""
    h = hashlib.blake2b(previous, digest_size=DIGEST_SIZE)
    h.update(height.to_bytes(8, "big"))
    h.update(slice_blob)
    return h.digest()


RollupState = tuple[int, bytes, int]  # (tx_count, digest, last_height)


@dataclass(slots=True)
class Rows:
    """The rows of one or more consecutive records, in write order."""

    blocks: list[tuple[int, bytes, bytes, bytes]] = field(default_factory=list)
    slices: list[tuple[int, int, int, bytes]] = field(default_factory=list)
    txs: list[tuple[bytes, int, int, int]] = field(default_factory=list)
    bundles: list[tuple[bytes, int, bytes]] = field(default_factory=list)
    batches: list[tuple[bytes, int, bytes | None]] = field(default_factory=list)
    evidence: list[tuple[bytes, int, int, int, bytes, int, int]] = field(default_factory=list)
    rollups: dict[int, RollupState] = field(default_factory=dict)  # only the rollups touched
    tx_count: int = 0
    height: int = 0
    last_id: bytes = b""


def _digest_like(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == DIGEST_SIZE


def plan(
    records: Sequence[CommitRecord],
    *,
    height: int,
    last_id: bytes,
    rollups: dict[int, RollupState],
) -> Rows:
    """Validate ``records`` as the blocks after ``height`` (whose block id is ``last_id``) and
    build their rows. Raises :class:`InvalidRecord`; touches nothing."""
    rows = Rows(height=height, last_id=last_id)
    for record in records:
        _plan_one(record, rows, rollups)
    return rows


def _plan_one(record: CommitRecord, rows: Rows, rollups: dict[int, RollupState]) -> None:
    if not isinstance(record, CommitRecord):
        raise InvalidRecord(f"expected a CommitRecord, got {type(record).__name__}")
    block, proof = record.block, record.proof
    h = rows.height + 1
    if block.height != h:
        raise InvalidRecord(f"block {block.id.hex()[:12]} has height {block.height}, expected {h}")
    if block.parent_id != rows.last_id:
        raise InvalidRecord(
            f"block at height {h}: parent {block.parent_id.hex()[:12]} is not the block at height"
            f" {h - 1} ({rows.last_id.hex()[:12]})"
        )
    if not proof.headers or proof.block_id != block.id:
        raise InvalidRecord(f"block at height {h}: the commit proof is for another block")
    leaves, tx_ids = record.leaves, record.tx_ids
    if len(tx_ids) != len(leaves):
        raise InvalidRecord(f"block at height {h}: {len(leaves)} leaves but {len(tx_ids)} tx ids")
    previous = 0
    for i, (leaf, tx_id) in enumerate(zip(leaves, tx_ids, strict=True)):
        rollup_id, payload = leaf
        if not isinstance(rollup_id, int) or not previous <= rollup_id <= MAX_ROLLUP_ID:
            raise InvalidRecord(f"block at height {h}: leaf {i} is out of rollup-id order")
        if not isinstance(payload, bytes) or not _digest_like(tx_id):
            raise InvalidRecord(f"block at height {h}: leaf {i} needs bytes and a 32-byte tx id")
        previous = rollup_id
    for bundle_id, indices in record.bundles:
        if not _digest_like(bundle_id) or not all(0 <= i < len(leaves) for i in indices):
            raise InvalidRecord(f"block at height {h}: bad bundle {bundle_id!r}")
        rows.bundles.append((bundle_id, h, pack(list(indices))))
    if record.batch_bodies and len(record.batch_bodies) != len(record.batch_digests):
        raise InvalidRecord(f"block at height {h}: one body per batch digest, or none")
    for i, batch in enumerate(record.batch_digests):
        if not _digest_like(batch):
            raise InvalidRecord(f"block at height {h}: batch digests must be 32 bytes")
        rows.batches.append((batch, h, record.batch_bodies[i] if record.batch_bodies else None))
    for ev in record.evidence:
        if not isinstance(ev, Evidence):
            raise InvalidRecord(f"block at height {h}: expected Evidence, got {type(ev).__name__}")
        rows.evidence.append((ev.id, ev.offender, ev.round, int(ev.kind), ev.encode(), block.round, h))

    rows.blocks.append((h, block.id, pack(block.to_wire()), pack(proof.to_wire())))
    start = 0
    for rollup_id, group in groupby(leaves, key=itemgetter(0)):
        payloads = [payload for _, payload in group]
        count = len(payloads)
        blob = pack(payloads)
        rows.slices.append((h, rollup_id, count, blob))
        rows.txs.extend(
            (tx_ids[start + pos], h, rollup_id, pos) for pos in range(count)
        )
        start += count
        old_count, old_digest, _ = rows.rollups.get(rollup_id) or rollups.get(
            rollup_id, (0, SUBLOG_SEED, 0)
        )
        rows.rollups[rollup_id] = (old_count + count, sublog_step(old_digest, h, blob), h)
    rows.tx_count += len(leaves)
    rows.height = h
    rows.last_id = block.id
