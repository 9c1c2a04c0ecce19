"""What one committed block writes, checked and turned into rows before any write begins.

Per-rollup sub-log digest (``LedgerStore.rollup_summary``)::

    d_0 = 32 zero bytes
    d   = blake2b-256(d || u64be(height) || ids)   for each height, ascending, where the rollup
                                                   has transactions

``ids`` are the 32-byte ids of the rollup's transactions at that height (its slice), concatenated in
slice order; a transaction's id is ``digest(b"ordo/tx", [rollup_id, payload])``, so two replicas
have equal digests for a rollup exactly when (barring collisions) they hold the same sub-log.
Hashing the ids, which every replica has computed anyway, costs a seventh of hashing the 256-byte
payloads again (schema version 3 hashed ``msgpack(payloads)``, the slice blob: ~3 % of a
replica's CPU at max load). Opening a version-3 ledger recomputes every rollup's digest this way
from its stored ids, so replicas upgraded at different heights still agree.

A record is checked per slice, never per transaction: rollup ids ascending and each slice
non-empty, payloads bytes (one C-level pass per slice), ``tx_ids`` exactly 32 bytes per
transaction, bundle positions inside the block. A slice row holds the slice's payloads only when
the record carries no batch bodies; with them (the node's records always do) it holds
:data:`FROM_BODIES` and the slice is replayed from the bodies when read, so each payload is written
once (as part of its batch), not twice. Its rows are one per block, per slice, per bundle,
per batch (and per body) and per evidence: the transaction ids go into one ``block_txs`` row
(the concatenated ids in tree order), not one row each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat

from consensus.commit_proof import CommitProof
from consensus.encoding import DIGEST_SIZE, pack
from consensus.messages import Block, Evidence

from ..rollup.chunks import Slices
from .schema import InvalidRecord

SUBLOG_SEED = bytes(DIGEST_SIZE)
MAX_ROLLUP_ID = 2**32 - 1
TX_ID_SIZE = DIGEST_SIZE
# A slice row's payloads when the block's batch bodies are stored with it: the ledger replays the
# split from them (``LedgerStore.slices_at``) rather than write every payload a second time.
FROM_BODIES = b""
_BYTES = repeat(bytes)  # all(map(isinstance, payloads, _BYTES)): the per-payload check in C, no generator


@dataclass(frozen=True, slots=True)
class CommitRecord:
    """Everything the node writes for one committed block."""

    block: Block
    proof: CommitProof
    slices: Slices  # (rollup id, payloads): ascending ids, none empty
    tx_ids: bytes  # the 32-byte tx ids concatenated, in tree order (the slices concatenated)
    bundles: tuple[tuple[bytes, tuple[int, ...]], ...]  # (bundle_id, tree-order positions of its txs)
    batch_digests: tuple[bytes, ...]  # batches this block committed
    evidence: tuple[Evidence, ...]  # evidence this block committed
    batch_bodies: tuple[bytes, ...] = ()  # encoded bodies, aligned with batch_digests (kept: catch-up
    #                                       and late fetches are served from them)

    @property
    def tx_count(self) -> int:
        return len(self.tx_ids) // TX_ID_SIZE


RollupState = tuple[int, bytes, int]  # (tx_count, digest, last_height)


def sublog_step(previous: bytes, height: int, slice_ids: bytes) -> bytes:
    """One step of the running sub-log digest; ``slice_ids`` are the slice's tx ids concatenated."""
    h = hashlib.blake2b(previous, digest_size=DIGEST_SIZE)
    h.update(height.to_bytes(8, "big"))
    h.update(slice_ids)
    return h.digest()


def sublog_steps(digests: dict[int, RollupState], height: int, counts: Iterable[tuple[int, int]],
                 ids: bytes, rollups: dict[int, RollupState]) -> None:
    """The running digests after ``height``, whose slices have ``counts`` ``(rollup id, tx count)``
    (ascending ids) and whose tx ids in tree order are ``ids``: into ``digests``, from there or
    else from ``rollups`` (the state before)."""
    at = 0
    for rollup_id, count in counts:
        old_count, old_digest, _ = digests.get(rollup_id) or rollups.get(rollup_id, (0, SUBLOG_SEED, 0))
        end = at + count * TX_ID_SIZE
        digests[rollup_id] = (old_count + count, sublog_step(old_digest, height, ids[at:end]), height)
        at = end


@dataclass(slots=True)
class Rows:
    """The rows of one or more consecutive records, in write order."""

    blocks: list[tuple[int, bytes, bytes, bytes]] = field(default_factory=list)
    slices: list[tuple[int, int, int, bytes]] = field(default_factory=list)
    block_txs: list[tuple[int, bytes]] = field(default_factory=list)
    bundles: list[tuple[bytes, int, bytes]] = field(default_factory=list)
    batches: list[tuple[bytes, int]] = field(default_factory=list)  # (digest, committed height)
    batch_bodies: list[tuple[bytes, bytes]] = field(default_factory=list)  # (digest, body) where known
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
    tx_count = _check_slices(record.slices, h)
    if not isinstance(record.tx_ids, bytes) or len(record.tx_ids) != TX_ID_SIZE * tx_count:
        raise InvalidRecord(f"block at height {h}: {tx_count} transactions need {tx_count} 32-byte tx ids")
    for bundle_id, indices in record.bundles:
        if not _digest_like(bundle_id) or not all(0 <= i < tx_count for i in indices):
            raise InvalidRecord(f"block at height {h}: bad bundle {bundle_id!r}")
        rows.bundles.append((bundle_id, h, pack(list(indices))))
    if record.batch_bodies and len(record.batch_bodies) != len(record.batch_digests):
        raise InvalidRecord(f"block at height {h}: one body per batch digest, or none")
    for i, batch in enumerate(record.batch_digests):
        if not _digest_like(batch):
            raise InvalidRecord(f"block at height {h}: batch digests must be 32 bytes")
        rows.batches.append((batch, h))
        if record.batch_bodies:
            rows.batch_bodies.append((batch, record.batch_bodies[i]))
    for ev in record.evidence:
        if not isinstance(ev, Evidence):
            raise InvalidRecord(f"block at height {h}: expected Evidence, got {type(ev).__name__}")
        rows.evidence.append((ev.id, ev.offender, ev.round, int(ev.kind), ev.encode(), block.round, h))

    rows.blocks.append((h, block.id, pack(block.to_wire()), pack(proof.to_wire())))
    if tx_count:
        rows.block_txs.append((h, record.tx_ids))
    counts = []
    for rollup_id, payloads in record.slices:
        counts.append((rollup_id, len(payloads)))
        # a tuple packs as the same msgpack array as a list, without the copy
        rows.slices.append((h, rollup_id, len(payloads), FROM_BODIES if record.batch_bodies else pack(payloads)))
    sublog_steps(rows.rollups, h, counts, record.tx_ids, rollups)
    rows.tx_count += tx_count
    rows.height = h
    rows.last_id = block.id


def _check_slices(slices: object, h: int) -> int:
    """The transaction count of well-formed slices; raises :class:`InvalidRecord`."""
    if not isinstance(slices, tuple):
        raise InvalidRecord(f"block at height {h}: slices must be a tuple")
    previous, total = -1, 0
    for entry in slices:
        if not isinstance(entry, tuple) or len(entry) != 2:
            raise InvalidRecord(f"block at height {h}: a slice is (rollup id, payloads)")
        rollup_id, payloads = entry
        if type(rollup_id) is not int or not previous < rollup_id <= MAX_ROLLUP_ID:
            raise InvalidRecord(f"block at height {h}: slice of rollup {rollup_id!r} is out of rollup-id order")
        if not isinstance(payloads, (tuple, list)) or not payloads or not all(map(isinstance, payloads, _BYTES)):
            raise InvalidRecord(f"block at height {h}: rollup {rollup_id}'s slice needs a non-empty tuple of bytes")
        previous = rollup_id
        total += len(payloads)
    return total
