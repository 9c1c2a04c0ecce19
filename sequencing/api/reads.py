"""The API's reads of a replica's committed blocks: the block, its commit proof and the namespaced
Merkle tree over its slices' chunks (:class:`BlockTree`), and the slice and bundle proofs built
from them.

A recent height comes from the replica's memory (``ReplicaPort.recent_commit``: the tree its
executor assembled the block with, so nothing is read or hashed again); an older one from the
ledger, in one storage-thread read, its tree built once and cached (the last few), since
subscriptions for many rollups read the same heights. Either way only a durable height is served.
A subscription event (a slice proof as JSON) is serialized once per (rollup, height) and shared by
every subscriber (the last few kept)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from consensus.commit_proof import CommitProof
from consensus.messages import Block

from ..rollup.block_tree import BlockTree
from ..rollup.bounded_cache import BoundedCache
from ..rollup.proofs import BundleProof, SliceProof
from .port import LedgerView, ReplicaPort
from .views import ApiError, block_json

T = TypeVar("T")
EVENT_CACHE = 256  # subscription events kept: (rollup, height) pairs
EVENT_CACHE_CHARS = 16 * 1024 * 1024  # and their text at most (the newest is kept whatever its size)
TREE_CACHE = 32  # older heights' trees kept
TREE_CACHE_BYTES = 64 * 1024 * 1024  # and the payload bytes they hold at most


class LedgerReads:
    def __init__(self, replica: ReplicaPort) -> None:
        self.replica = replica
        self.trees: BoundedCache[int, BlockTree] = BoundedCache(TREE_CACHE, TREE_CACHE_BYTES)
        self.events: BoundedCache[tuple[int, int], tuple[bool, str]] = BoundedCache(EVENT_CACHE, EVENT_CACHE_CHARS)

    async def read(self, fn: Callable[[LedgerView], T]) -> T:
        """``fn(ledger)`` in the replica's storage thread; 503 ``starting`` before the ledger is open."""
        if not self.replica.ledger_open:
            raise ApiError(503, "starting", "the replica is still starting")
        return await self.replica.read_ledger(fn)

    async def stored(self, height: int) -> tuple[Block, CommitProof, BlockTree] | None:
        """The committed block at ``height``, its commit proof and its slices with their tree."""
        if height < 1 or height > self.replica.durable_height:
            return None
        recent = self.replica.recent_commit(height)
        if recent is not None:
            return recent
        tree = self.trees.use(height)
        if tree is not None:
            stored = await self.read(lambda ledger: ledger.block_at(height))
            return None if stored is None else (stored[0], stored[1], tree)
        both = await self.read(lambda ledger: (ledger.block_at(height), ledger.slices_at(height)))
        if both[0] is None or both[1] is None:
            return None
        tree = BlockTree(both[1])
        self.trees.put(height, tree, sum(sum(map(len, payloads)) for _, payloads in tree.slices))
        return both[0][0], both[0][1], tree

    async def slice_proof(self, rollup_id: int, height: int) -> SliceProof | None:
        found = await self.stored(height)
        if found is None:
            return None
        _, commit, tree = found
        return tree.prove_slice(rollup_id, height, commit)

    async def slice_event(self, rollup_id: int, height: int) -> tuple[bool, str] | None:
        """The subscription event of the rollup's slice at ``height`` (``id``, ``event`` and
        ``data`` lines) and whether the slice has transactions; None if the height is not
        committed. Built once per (rollup, height), whoever asks."""
        key = (rollup_id, height)
        event = self.events.get(key)
        if event is not None:
            return event
        proof = await self.slice_proof(rollup_id, height)
        if proof is None:
            return None
        event = self.events.get(key)  # another subscriber's, built while this one read the ledger
        if event is not None:
            return event
        event = (bool(proof.transactions),
                 f"id: {height}\nevent: slice\ndata: {json.dumps(proof.to_json())}\n\n")
        self.events.put(key, event, len(event[1]))
        return event

    async def bundle_proof(self, bundle_id: bytes) -> BundleProof | None:
        location = await self.read(lambda ledger: ledger.bundle_location(bundle_id))
        if location is None:
            return None
        height, positions = location
        found = await self.stored(height)
        if found is None:
            return None
        _, commit, tree = found
        return tree.prove_bundle(positions, height, commit)

    async def block_view(self, height: int) -> dict[str, Any] | None:
        found = await self.stored(height)
        return None if found is None else block_json(*found)
