"""Batch rows in the ledger: a replica's own batches that expired uncommitted are deleted as the
chain grows (they used to pile up: ``prune_batches`` was never called), while the bodies of
committed batches stay, since catch-up serves them to lagging replicas; and the row of an expired
batch goes in the same write as the batch its items were re-batched into, so a restart does not
queue them a second time. Real Node catching up from peers (real QCs), trio's autojump clock."""

from __future__ import annotations

from pathlib import Path

import trio
from node_rig import NodeRig, node_rig
from seq_helpers import SignedChain, World

from sequencing.replica.commits import BATCH_PRUNE_EVERY
from sequencing.replica.wire import StatusRequest, StatusResponse, SyncRequest, SyncResponse
from sequencing.rollup.batches import Batch
from sequencing.rollup.block_content import BlockPayload, assemble
from sequencing.rollup.nmt import EMPTY_ROOT
from sequencing.rollup.transactions import Transaction

ME = 0
TTL = 2
HEIGHT = BATCH_PRUNE_EVERY + 6  # the peers' committed height


def serve(rig: NodeRig, chain: SignedChain, committed: Batch | None = None, height: int = HEIGHT) -> None:
    """Honest peers 1 and 2 at ``height``: their status, and blocks with the committed batch's body."""
    inbox = rig.node.transport.inbox

    def on_send(to: int | None, message: object) -> None:
        if isinstance(message, StatusRequest):
            for peer in (1, 2):
                inbox.put_nowait(peer, StatusResponse(rig.world.genesis_qc, None, height), 0)
        elif isinstance(message, SyncRequest) and to is not None:
            last = min(height, message.from_height + message.limit - 1)
            blocks = tuple(chain.blocks[message.from_height - 1:last])
            bodies = (committed,) if committed is not None and message.from_height == 1 else ()
            inbox.put_nowait(to, SyncResponse(blocks, chain.commit(last - 1), height, bodies), 0)

    rig.net.on_send = on_send


async def test_expired_own_batches_are_deleted_and_committed_bodies_kept(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with node_rig(tmp_path, ME, run_executor=True, limits={"batch_ttl_blocks": TTL}) as rig:
        committed = Batch.of(1, 1, 0, (Transaction(7, b"committed at height 1"),))
        expired = Batch.of(ME, 1, 0, (Transaction(7, b"expired uncommitted"),))
        live = Batch.of(ME, 2, HEIGHT, (Transaction(7, b"still live"),))
        # expires at height 3 too, but its items wait in the mempool (no batcher runs here): its row
        # is what still holds them on disk, so it stays
        requeued = Batch.of(ME, 3, 0, (Transaction(7, b"not re-batched yet"),))
        storage = rig.node.require_storage()
        for batch in (expired, live, requeued):  # as the batcher persists its own batches
            storage.save_batch(batch.digest, batch.author, batch.created_height, batch.encode())
        rig.node.batches.add(requeued)
        empty = BlockPayload((), ()).encode()
        first = BlockPayload((committed.digest,), ()).encode()
        roots = [assemble([committed]).data_root] + [EMPTY_ROOT] * (HEIGHT - 1)
        chain = SignedChain(rig.world, roots, [first] + [empty] * HEIGHT)
        serve(rig, chain, committed)
        await catch_up_to(rig, HEIGHT)
        assert rig.node.mempool.tx_count == 1
        assert [digest for digest, *_ in storage.pending_batches()] == [requeued.digest, live.digest]
        assert storage.load_batch(expired.digest) is None
        assert storage.load_batch(committed.digest) == committed.encode()
        assert dict(storage.committed_batches_since(0)) == {committed.digest: 1}


async def catch_up_to(rig: NodeRig, height: int) -> None:
    rig.node._require_nursery().start_soon(rig.node.catch_up.run)
    with trio.move_on_after(60):
        while rig.node.durable_height < height:
            await trio.sleep(0.05)
    assert rig.node.durable_height == height
    await rig.settle()


async def test_items_of_an_expired_batch_are_queued_once_across_a_restart(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """B1 (created at 0) expires uncommitted at height 5 (ttl 4); its items go into B2 (created at
    5). After a restart at height 5, committing heights 6 and 7 must not expire B1 a second time
    and queue its items again (they are in B2 already: both would commit). It used to: B1's row
    stayed."""
    ttl = 4
    chain = SignedChain(World.make(4), [EMPTY_ROOT] * 7, [BlockPayload((), ()).encode()] * 8)
    item = Transaction(7, b"acknowledged once")
    async with node_rig(tmp_path, ME, run_executor=True, limits={"batch_ttl_blocks": ttl}) as rig:
        rig.node._require_nursery().start_soon(rig.node.intake.run)
        assert rig.node.submit(item)
        with trio.move_on_after(5):
            while not rig.node.batches.own(ME):
                await trio.sleep(0.01)
        (first,) = rig.node.batches.own(ME)
        assert first.created_height == 0
        serve(rig, chain, height=5)
        await catch_up_to(rig, 5)
        with trio.move_on_after(5):
            while [b.seq for b in rig.node.batches.own(ME)] != [2]:
                await trio.sleep(0.01)
        (second,) = rig.node.batches.own(ME)
        assert second.items() == (item,) and second.created_height == 5 and not len(rig.node.mempool)
    async with node_rig(tmp_path, ME, run_executor=True, limits={"batch_ttl_blocks": ttl}) as rig:
        serve(rig, chain, height=7)  # catch-up needs a lag of 2
        await catch_up_to(rig, 7)
        assert [b.digest for b in rig.node.batches.own(ME)] == [second.digest]
        assert not len(rig.node.mempool), "the expired batch's items were queued again"
        pending = [digest for digest, *_ in rig.node.require_storage().pending_batches()]
        assert pending == [second.digest]
