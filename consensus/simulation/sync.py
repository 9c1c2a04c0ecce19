"""Catch-up in the simulator (opt-in: ``SimConfig.sync_interval``), shaped like
sequencing/replica/catchup.py: every interval a replica asks everyone for its committed height, and when
a peer claims at least ``SYNC_LAG`` more than it has, asks that peer for committed blocks above
its own with the commit proof of the last (``Replica.on_synced``).

Claims are unverified, so a peer that claims a height and then does not answer within
``PATIENCE`` ticks, or whose answer the core refuses, is skipped for ``SUSPECT_TICKS`` ticks and
the next-best claim is tried (a lying peer must not stall catch-up: issue 8 item 3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..commit_proof import CommitProof
from ..messages import Block, ReplicaId

if TYPE_CHECKING:
    from .node import SimNode

SYNC_LAG = 2
SYNC_BATCH = 64
PATIENCE = 2
SUSPECT_TICKS = 10


class CatchUp:
    def __init__(self, node: SimNode) -> None:
        self.node = node
        self.claims: dict[ReplicaId, int] = {}
        self.suspects: dict[ReplicaId, int] = {}  # peer -> first tick it is asked again
        self.asked: tuple[ReplicaId, int] | None = None  # (peer, tick) of an unanswered request
        self.ticks = 0
        self.blocks_synced = 0

    def tick(self) -> None:
        node = self.node
        replica = node.replica
        if replica is None:
            return
        self.ticks += 1
        height = replica.committed.height
        if self.asked is not None:
            peer, tick = self.asked
            if self.ticks - tick >= PATIENCE:
                self.distrust(peer)
                self.asked = None
        node.sim.ask_statuses(node)
        if self.asked is None:
            best = self.best_peer(height)
            if best is not None:
                self.asked = (best, self.ticks)
                node.sim.request_sync(node, best, height + 1)

    def best_peer(self, height: int) -> ReplicaId | None:
        candidates = [
            (claim, peer) for peer, claim in self.claims.items()
            if claim >= height + SYNC_LAG and self.suspects.get(peer, 0) <= self.ticks
        ]
        return max(candidates)[1] if candidates else None

    def distrust(self, peer: ReplicaId) -> None:
        self.suspects[peer] = self.ticks + SUSPECT_TICKS
        self.claims.pop(peer, None)

    def on_status(self, sender: ReplicaId, height: int) -> None:
        self.claims[sender] = height

    def on_blocks(self, sender: ReplicaId, blocks: list[Block], proof: CommitProof) -> None:
        """An answer (progress or not: a peer whose claim was overtaken meanwhile is not lying)."""
        node = self.node
        replica = node.replica
        if self.asked is not None and self.asked[0] == sender:
            self.asked = None
        if replica is None:
            return
        before = replica.committed.height
        node.run_guarded(lambda: replica.on_synced(blocks, proof))
        if node.replica is None:
            return
        gained = max(0, node.replica.committed.height - before)
        self.blocks_synced += gained
        if not gained and any(b.height > before for b in blocks):
            self.distrust(sender)  # an answer the core refused (like catchup.py's "not_adopted")
