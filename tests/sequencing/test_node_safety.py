"""The node sends a vote only once the safety state that records it is in the database (issue 8:
"the vote being sent before the safety state is persisted (node level)" was unguarded). A real
Node; at the moment a vote reaches the transport, the safety database already holds a state whose
highest voted round covers it, and the voted block."""

from __future__ import annotations

from pathlib import Path

import trio
from node_rig import NodeRig, node_rig

from consensus.messages import Block, Timeout, Vote
from sequencing.replica.events import TimerFired

ME = 0


def watch_votes(rig: NodeRig) -> list[tuple[str, int, int, bool]]:
    """(kind, round, highest voted round on disk, voted block on disk) for each signed message sent."""
    store = rig.node.stores.require_safety()
    seen: list[tuple[str, int, int, bool]] = []

    def on_send(to: int | None, message: object) -> None:
        if isinstance(message, Vote | Timeout):
            state = store.load_safety()
            assert state is not None
            on_disk = isinstance(message, Timeout) or message.block_id in {b.id for b in store.voted_blocks()}
            seen.append((type(message).__name__, message.round, state.highest_voted_round, on_disk))

    rig.net.on_send = on_send
    return seen


async def test_votes_leave_only_after_the_safety_state_is_stored(
    tmp_path: Path, mock_clock: trio.abc.Clock
) -> None:
    async with node_rig(tmp_path, ME) as rig:
        seen = watch_votes(rig)
        w = rig.world
        parent: Block = w.genesis
        qc = w.genesis_qc
        for round in (1, 2, 3):  # leaders 1, 2, 3
            block = rig.block(round, parent, qc)
            await rig.deliver(block.author, w.proposal(block))
            parent, qc = block, w.qc(block)
        assert rig.node.post(TimerFired(rig.replica.round))
        await rig.settle()
        assert [(kind, r) for kind, r, _, _ in seen] == [("Vote", 1), ("Vote", 2), ("Vote", 3), ("Timeout", 3)]
        for kind, round, stored_round, block_stored in seen:
            assert stored_round >= round, f"{kind} of round {round} sent with round {stored_round} on disk"
            assert block_stored, f"{kind} of round {round} sent before its block was stored"


async def test_double_vote_fault_injection_signs_a_second_vote(tmp_path: Path, mock_clock: trio.abc.Clock) -> None:
    from consensus.validation import verify_vote
    from sequencing.replica.node import NodeOptions

    async with node_rig(tmp_path, ME, options=NodeOptions(byzantine="double-vote")) as rig:
        block = rig.block(1, rig.world.genesis, rig.world.genesis_qc)
        await rig.deliver(block.author, rig.world.proposal(block))
        votes = rig.net.of_type(Vote)
        assert [v.round for v in votes] == [1, 1] and votes[0].block_id == block.id != votes[1].block_id
        for vote in votes:
            verify_vote(vote, rig.world.verifier())
