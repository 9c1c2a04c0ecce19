"""Batch rows in the ledger: a replica's own batches that expired uncommitted are deleted as the
chain grows (they used to pile up: ``prune_batches`` was never called), while the bodies of
committed batches stay, since catch-up serves them to lagging replicas. Real Node catching up
from peers (real QCs), trio's autojump clock."""

from __future__ import annotations

from pathlib import Path

import trio
from node_rig import NodeRig, node_rig
from seq_helpers import SignedChain

from sequencing.replica.node import BATCH_PRUNE_EVERY
from sequencing.replica.wire import StatusRequest, StatusResponse, SyncRequest, SyncResponse
from sequencing.rollup.batches import Batch
from sequencing.rollup.block_content import BlockPayload, assemble
from sequencing.rollup.nmt import EMPTY_ROOT
from sequencing.rollup.transactions import Transaction

ME = 0
TTL = 2
HEIGHT = BATCH_PRUNE_EVERY + 6  # the peers' committed height


def serve(rig: NodeRig, chain: SignedChain, committed: Batch) -> None:
    """Honest peers 1 and 2: their status, and blocks with the committed batch's body."""
    inbox = rig.node.transport._inbox_send

    def on_send(to: int | None, message: object) -> None:
        if isinstance(message, StatusRequest):
            for peer in (1, 2):
                inbox.send_nowait((peer, StatusResponse(rig.world.genesis_qc, None, HEIGHT)))
        elif isinstance(message, SyncRequest) and to is not None:
            last = min(HEIGHT, message.from_height + message.limit - 1)
            blocks = tuple(chain.blocks[message.from_height - 1:last])
            bodies = (committed,) if message.from_height == 1 else ()
            inbox.send_nowait((to, SyncResponse(blocks, chain.commit(last - 1), HEIGHT, bodies)))

    rig.net.on_send = on_send


async def test_expired_own_batches_are_deleted_and_committed_bodies_kept(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with node_rig(tmp_path, ME, run_executor=True, limits={"batch_ttl_blocks": TTL}) as rig:
        committed = Batch(1, 1, 0, (Transaction(7, b"committed at height 1"),))
        expired = Batch(ME, 1, 0, (Transaction(7, b"expired uncommitted"),))
        live = Batch(ME, 2, HEIGHT, (Transaction(7, b"still live"),))
        storage = rig.node.require_storage()
        for batch in (expired, live):  # as the batcher persists its own batches
            storage.save_batch(batch.digest, batch.author, batch.created_height, batch.encode())
        empty = BlockPayload((), ()).encode()
        first = BlockPayload((committed.digest,), ()).encode()
        roots = [assemble([committed]).data_root] + [EMPTY_ROOT] * (HEIGHT - 1)
        chain = SignedChain(rig.world, roots, [first] + [empty] * HEIGHT)
        serve(rig, chain, committed)
        rig.node._require_nursery().start_soon(rig.node.catch_up.run)
        with trio.move_on_after(60):
            while rig.node.durable_height < HEIGHT:
                await trio.sleep(0.05)
        assert rig.node.durable_height == HEIGHT
        await rig.settle()
        assert [digest for digest, *_ in storage.pending_batches()] == [live.digest]
        assert storage.load_batch(expired.digest) is None
        assert storage.load_batch(committed.digest) == committed.encode()
        assert dict(storage.committed_batches_since(0)) == {committed.digest: 1}
