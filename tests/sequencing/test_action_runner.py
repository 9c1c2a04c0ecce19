"""The replica's action interpreter (sequencing/replica/action_runner.py): it has a method for every
action type, keeps the core's order (a vote's block and safety state are written, together, before
the vote leaves), and asks its FaultInjection where a broadcast goes and what goes with it."""

from __future__ import annotations

import inspect

import pytest
import trio
from node_rig import Recorder, World

from consensus.actions import (
    Action,
    Broadcast,
    Commit,
    Dropped,
    PersistBlock,
    PersistSafety,
    RecordEvidence,
    RequestPayload,
    RoundEntered,
    Send,
    SetTimer,
    VerifyPayload,
)
from consensus.dispatch import ActionHandler
from consensus.messages import Block, Evidence, Proposal, Vote
from consensus.safety import SafetyState
from consensus.validation import verify_vote
from sequencing.replica.action_runner import ActionRunner
from sequencing.replica.faults import FaultInjection
from sequencing.replica.round_timer import RoundTimer
from sequencing.rollup.batches import Batch
from sequencing.rollup.block_content import BlockPayload, assemble
from sequencing.rollup.transactions import Transaction

ME = 1


class Rig:
    """An ActionRunner whose node side records, in one list, everything it is asked to do."""

    def __init__(self, world: World, byzantine: str | None = None) -> None:
        self.net = Recorder()
        self.timer = RoundTimer()
        self.log: list[tuple[str, object]] = []
        self.net.on_send = lambda to, message: self.log.append(("sent", message))
        self.follow_ups: list[Action] = []
        self.runner = ActionRunner(
            link=self.net, timer=self.timer,
            faults=FaultInjection(world.signer(ME), byzantine=byzantine, peers=[0, 2, 3]),
            save_safety=self.save_safety, commit=self.record, record_evidence=self.record,
            request_payload=self.request_payload, verify_payload=self.verify_payload,
            proposed=lambda p: self.log.append(("proposed", p)),
            dropped=lambda d: self.log.append(("dropped", d)),
            round_entered=lambda r: self.log.append(("round", r)),
        )

    async def save_safety(self, state: SafetyState, voted: list[Block]) -> None:
        await trio.lowlevel.checkpoint()
        self.log.append(("saved", (state, tuple(voted))))

    async def record(self, what: Commit | Evidence) -> None:
        await trio.lowlevel.checkpoint()
        self.log.append(("recorded", what))

    def request_payload(self, request: RequestPayload) -> list[Action]:
        self.log.append(("payload", request))
        return []

    async def verify_payload(self, block: Block) -> list[Action]:
        self.log.append(("verify", block))
        follow, self.follow_ups = self.follow_ups, []
        return follow


@pytest.mark.parametrize("method", sorted(n for n in vars(ActionHandler) if n.startswith("on_")))
def test_the_runner_has_an_async_method_for_every_action_type(method: str) -> None:
    assert inspect.iscoroutinefunction(getattr(ActionRunner, method, None))


async def test_a_vote_leaves_after_its_block_and_safety_state_are_saved_together() -> None:
    world = World.make(4)
    rig = Rig(world)
    block = world.block(1, world.genesis, world.genesis_qc)
    vote = world.vote(ME, 1, block.id)
    state = SafetyState(1, world.genesis_qc)
    later = SafetyState(2, world.genesis_qc)
    await rig.runner.run([PersistBlock(block), PersistSafety(state), Broadcast(vote), SetTimer(2, 1.0),
                          PersistSafety(later)])
    # the block is written once, with the state that follows it, before the vote leaves
    assert rig.log == [("saved", (state, (block,))), ("sent", vote), ("saved", (later, ()))]


async def test_follow_ups_run_after_the_actions_already_queued() -> None:
    world = World.make(4)
    rig = Rig(world)
    block = world.block(1, world.genesis, world.genesis_qc)
    vote = world.vote(ME, 1, block.id)
    rig.follow_ups = [Send(2, vote), RoundEntered(2, False)]
    dropped = Dropped(3, "Vote", "bad signature")
    await rig.runner.run([VerifyPayload(block), dropped])
    assert [kind for kind, _ in rig.log] == ["verify", "dropped", "sent", "round"]


async def test_every_action_type_reaches_the_node_side() -> None:
    world = World.make(4)
    rig = Rig(world)
    block = world.block(1, world.genesis, world.genesis_qc)
    proposal = world.proposal(block)
    await rig.runner.run([
        RequestPayload(1, world.genesis, ()), Broadcast(proposal), RecordEvidence(object()),  # type: ignore[arg-type]
    ])
    assert [kind for kind, _ in rig.log] == ["payload", "sent", "proposed", "recorded"]


async def test_double_vote_fault_adds_a_signed_conflicting_vote_and_nothing_else() -> None:
    world = World.make(4)
    honest, byzantine = Rig(world), Rig(world, byzantine="double-vote")
    block = world.block(1, world.genesis, world.genesis_qc)
    vote = world.vote(ME, 1, block.id)
    proposal = world.proposal(block)
    for rig in (honest, byzantine):
        await rig.runner.run([Broadcast(vote), Broadcast(proposal)])
    assert honest.net.of_type(Vote) == [vote]
    first, second = byzantine.net.of_type(Vote)
    assert first == vote and second.round == 1 and second.voter == ME and second.block_id != block.id
    verify_vote(second, world.verifier())
    assert byzantine.net.of_type(Proposal) == [proposal]


async def test_an_equivocating_leader_sends_its_proposals_peer_by_peer() -> None:
    world = World.make(4)
    honest, byzantine = Rig(world), Rig(world, byzantine="equivocating-leader")
    batches = (Batch.of(2, 1, 0, (Transaction(4, b"x"),)),)
    payload = BlockPayload(tuple(b.digest for b in batches), ()).encode()
    proposal = world.proposal(Block(1, 1, world.genesis_qc, ME, payload, assemble(list(batches)).data_root))
    for rig in (honest, byzantine):
        await rig.runner.run([Broadcast(proposal)])
    assert honest.net.sent == [(None, proposal)]
    routes = dict(byzantine.net.sent)
    assert sorted(routes) == [0, 2, 3] and routes[0] == proposal
    assert routes[2] == routes[3] != proposal
    assert ("proposed", proposal) in byzantine.log  # the node notes its own proposal only
