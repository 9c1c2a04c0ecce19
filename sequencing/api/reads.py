"""The API's reads of a replica's ledger: committed blocks, their slices and namespaced Merkle trees
over the slices' chunks (:class:`BlockTree`; the last few cached, since subscriptions for many
rollups read the same heights), and the slice and bundle proofs built from them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from consensus.commit_proof import CommitProof
from consensus.messages import Block

from ..rollup.block_content import TreeCache
from ..rollup.block_tree import BlockTree
from ..rollup.proofs import BundleProof, SliceProof
from .port import LedgerView, ReplicaPort
from .views import ApiError, block_json

T = TypeVar("T")


class LedgerReads:
    def __init__(self, replica: ReplicaPort) -> None:
        self.replica = replica
        self.trees: TreeCache[BlockTree] = TreeCache()

    async def read(self, fn: Callable[[LedgerView], T]) -> T:
        """``fn(ledger)`` in the replica's storage thread; 503 ``starting`` before the ledger is open."""
        if not self.replica.ledger_open:
            raise ApiError(503, "starting", "the replica is still starting")
        return await self.replica.read_ledger(fn)

    async def stored(self, height: int) -> tuple[Block, CommitProof, BlockTree] | None:
        """The committed block at ``height``, its commit proof and its slices with their tree."""
        if height < 1 or height > self.replica.durable_height:
            return None
        stored = await self.read(lambda ledger: ledger.block_at(height))
        if stored is None:
            return None
        tree = self.trees.get(height)
        if tree is None:
            slices = await self.read(lambda ledger: ledger.slices_at(height))
            if slices is None:
                return None
            tree = BlockTree(slices)
            self.trees.put(height, tree)
        return stored[0], stored[1], tree

    async def slice_proof(self, rollup_id: int, height: int) -> SliceProof | None:
        found = await self.stored(height)
        if found is None:
            return None
        _, commit, tree = found
        return tree.prove_slice(rollup_id, height, commit)

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
