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
from sequencing.nmt import EMPTY_ROOT
from sequencing.wire import StatusRequest, StatusResponse, SyncRequest, SyncResponse

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
    inbox = rig.node.transport._inbox_send

    def on_send(to: int | None, message: object) -> None:
        if isinstance(message, StatusRequest):
            for peer, claim in claims.items():
                inbox.send_nowait((peer, StatusResponse(rig.world.genesis_qc, None, claim)))
        elif isinstance(message, SyncRequest) and to is not None:
            answer = liar(message) if to == LIAR else honest_answer(chain, message)
            if answer is not None:
                inbox.send_nowait((to, answer))

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
        serve(rig, chain, lies(chain)[lie], {LIAR: 10_000, 1: HEIGHT, 2: HEIGHT})  # the liar answers first
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
