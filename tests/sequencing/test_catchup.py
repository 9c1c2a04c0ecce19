"""Catch-up against a lying peer (issue 8, item 3): claims of committed height are unverified,
so one peer claiming far more than it can deliver must not stall catch-up. Real Node, fake peers
answering its requests, trio's autojump clock (timeouts pass instantly, deterministically)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import trio
from node_rig import NodeRig, node_rig
from seq_helpers import SignedChain

from consensus.commit_proof import CommitProof
from sequencing.replica.wire import StatusRequest, StatusResponse, SyncRequest, SyncResponse
from sequencing.rollup.nmt import EMPTY_ROOT

ME = 0
HEIGHT = 12  # what the honest peers have committed
LIAR = 3


def honest_answer(chain: SignedChain, request: SyncRequest) -> SyncResponse:
    last = min(HEIGHT, request.from_height + request.limit - 1)
    blocks = tuple(chain.blocks[request.from_height - 1:last])
    return SyncResponse(blocks, chain.commit(last - 1), HEIGHT)


def lies(chain: SignedChain) -> dict[str, Callable[[SyncRequest], SyncResponse | None]]:
    def forged_proof(request: SyncRequest) -> SyncResponse:
        good = honest_answer(chain, request)
        assert good.proof is not None
        bad = CommitProof(good.proof.headers, chain.qcs[0])  # a real QC, but for another block
        return SyncResponse(good.blocks, bad, 10_000)

    return {
        "silent": lambda request: None,
        "shorter_than_claimed": lambda request: SyncResponse((), None, 0),
        "empty": lambda request: SyncResponse((), None, 10_000),
        "forged_proof": forged_proof,
    }


def serve(rig: NodeRig, chain: SignedChain, liar: Callable[[SyncRequest], SyncResponse | None],
          claims: dict[int, int]) -> None:
    """Peers answering the node. The honest ones stay quiet on status requests until the liar has
    been asked for blocks, so the liar is always tried first (trio varies task order on purpose)."""
    inbox = rig.node.transport.inbox
    liar_asked = False

    def on_send(to: int | None, message: object) -> None:
        nonlocal liar_asked
        if isinstance(message, StatusRequest):
            for peer, claim in claims.items():
                if peer == LIAR or liar_asked:
                    inbox.put_nowait(peer, StatusResponse(rig.world.genesis_qc, None, claim), 0)
        elif isinstance(message, SyncRequest) and to is not None:
            liar_asked = liar_asked or to == LIAR
            answer = liar(message) if to == LIAR else honest_answer(chain, message)
            if answer is not None:
                inbox.put_nowait(to, answer, 0)

    rig.net.on_send = on_send


async def wait_height(rig: NodeRig, height: int, seconds: float) -> None:
    with trio.move_on_after(seconds):
        while rig.replica.committed.height < height:
            await trio.sleep(0.05)
    assert rig.replica.committed.height >= height, f"stuck at {rig.replica.committed.height}"


@pytest.mark.parametrize("lie", ["silent", "shorter_than_claimed", "empty", "forged_proof"])
async def test_a_lying_peer_does_not_stall_catch_up(
    tmp_path: Path, autojump_clock: trio.abc.Clock, lie: str
) -> None:
    async with node_rig(tmp_path, ME) as rig:
        chain = SignedChain(rig.world, [EMPTY_ROOT] * HEIGHT)
        serve(rig, chain, lies(chain)[lie], {LIAR: 10_000, 1: HEIGHT, 2: HEIGHT})
        rig.node._require_nursery().start_soon(rig.node.catch_up.run)
        await wait_height(rig, HEIGHT, seconds=30)
        reason = {"silent": "timeout", "empty": "bad_response", "forged_proof": "not_adopted"}.get(lie, lie)
        demotions = {s.labels["reason"]: s.value for m in rig.node.metrics.registry.collect()
                     if m.name == "ordo_sync_peer_demotions" for s in m.samples if s.name.endswith("_total")}
        assert demotions == {reason: 1}


async def test_claims_expire(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    """A peer that answered once and then went quiet is not a candidate forever."""
    async with node_rig(tmp_path, ME) as rig:
        catch_up = rig.node.catch_up
        catch_up.on_status(LIAR, StatusResponse(rig.world.genesis_qc, None, 10_000))
        assert catch_up.candidates(0) == [(LIAR, 10_000)]
        await trio.sleep(catch_up.claim_ttl + 1)
        assert catch_up.candidates(0) == []


async def test_a_demoted_peer_is_tried_again_later(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    async with node_rig(tmp_path, ME) as rig:
        catch_up = rig.node.catch_up
        catch_up.on_status(LIAR, StatusResponse(rig.world.genesis_qc, None, 50))
        catch_up.demote(LIAR, "timeout")
        assert catch_up.candidates(0) == []
        await trio.sleep(catch_up.demote_for + 1)
        catch_up.on_status(LIAR, StatusResponse(rig.world.genesis_qc, None, 50))
        assert catch_up.candidates(0) == [(LIAR, 50)]


async def test_an_error_in_one_catch_up_pass_is_contained(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    async with node_rig(tmp_path, ME) as rig:
        catch_up = rig.node.catch_up
        passes = 0

        async def broken() -> None:
            nonlocal passes
            passes += 1
            raise IndexError("a malformed answer nobody foresaw")

        catch_up._sync_if_behind = broken  # type: ignore[method-assign]
        rig.node._require_nursery().start_soon(catch_up.run)
        await trio.sleep(10 * catch_up.interval + 5 * catch_up.timeout)
        assert passes >= 2  # the task survived the first error
        errors = rig.node.metrics.registry.get_sample_value(
            "ordo_input_errors_total", {"input": "sync", "reason": "IndexError"})
        assert errors == passes


def rewritten(chain: SignedChain, request: SyncRequest) -> SyncResponse:
    """The honest answer with every embedded QC (which the block id does not cover) replaced by
    one without a quorum; the tail proof stays real, so the last block still verifies. (Asked for
    more than it has, it answers with no blocks and is set aside.)"""
    from dataclasses import replace

    from seq_helpers import forged_qc

    if request.from_height > HEIGHT:
        return SyncResponse((), None, HEIGHT + 1)
    good = honest_answer(chain, request)
    by_id = {b.id: b for b in chain.blocks}
    blocks = tuple(replace(b, qc=forged_qc(chain.world, by_id[b.qc.block_id], "insufficient"))
                   if b.qc.block_id in by_id else b for b in good.blocks)
    assert [b.id for b in blocks] == [b.id for b in good.blocks]
    return SyncResponse(blocks, good.proof, HEIGHT + 1)  # claims one more, to be asked first


async def test_a_sync_peer_rewriting_embedded_qcs_gets_no_unverifiable_proof_stored(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Issue 8, item 2 at the node/storage level: whatever a sync peer sends, every commit proof
    this replica stores (and serves to rollups) verifies. The forging peer answers first; an honest
    one has the same chain, so the replica still gets every block, with proofs that verify."""
    from consensus.commit_proof import verify_commit_proof
    from sequencing.rollup.block_content import BlockPayload

    async with node_rig(tmp_path, ME, run_executor=True) as rig:
        empty = BlockPayload((), ()).encode()
        chain = SignedChain(rig.world, [EMPTY_ROOT] * HEIGHT, [empty] * (HEIGHT + 1))
        serve(rig, chain, lambda request: rewritten(chain, request), {LIAR: HEIGHT + 1, 1: HEIGHT})
        rig.node._require_nursery().start_soon(rig.node.catch_up.run)
        with trio.move_on_after(60):
            while rig.node.durable_height < HEIGHT:
                await trio.sleep(0.05)
        assert rig.node.durable_height == HEIGHT
        storage = rig.node.require_storage()
        for height in range(1, HEIGHT + 1):
            stored = storage.block_at(height)
            assert stored is not None
            block, proof = stored
            verify_commit_proof(proof, block.id, rig.node.verifier, rig.world.genesis.id)
