"""A leader that shows one proposal to some replicas and a different one to the others: each
side only ever receives its own proposal from the leader, and votes carry no proposer signature,
so nobody could report it. An honest replica that holds a round's proposal and sees a voter vote
for a different block in that round sends the voter the proposal it holds (PROTOCOL.md section 6),
so the two sides see both and record DOUBLE_PROPOSAL evidence."""

from __future__ import annotations

from typing import Any

from consensus_factories import World

from consensus.actions import Action, Broadcast, RecordEvidence, Send, VerifyPayload
from consensus.core import Replica
from consensus.evidence import verify_evidence
from consensus.leader import RoundRobin
from consensus.messages import EvidenceKind, Proposal
from consensus.simulation import SimConfig, Simulator, check_safety
from consensus.simulation.byzantine import EquivocatingLeader

W = World.make(4)
LEADER = 1  # of round 1


def replica(me: int) -> Replica:
    r = Replica(signer=W.signer(me), verifier=W.verifier(), leaders=RoundRobin(W.n))
    r.start()
    return r


def of(actions: list[Action], kind: type) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def two_proposals() -> tuple[Proposal, Proposal]:
    a = W.block(1, W.genesis, payload=b"a")
    b = W.block(1, W.genesis, payload=b"b")
    return W.proposal(a), W.proposal(b)


def vote_on(r: Replica, proposal: Proposal) -> list[Action]:
    out = r.on_message(LEADER, proposal)
    [verify] = of(out, VerifyPayload)
    return out + r.on_payload_verified(verify.block.id, True)


def test_a_vote_for_another_block_gets_the_held_proposal_sent_to_its_voter_once() -> None:
    pa, pb = two_proposals()
    r = replica(2)
    vote_on(r, pa)
    assert not of(r.on_message(0, W.vote(0, 1, pa.block.id)), Send)  # the same block: nothing to show
    out = r.on_message(3, W.vote(3, 1, pb.block.id))
    assert [(s.to, s.message) for s in of(out, Send)] == [(3, pa)]
    # a second, conflicting vote by the same voter (a double vote) is not answered again
    out = r.on_message(3, W.vote(3, 1, b"\x07" * 32))
    assert not of(out, Send) and of(out, RecordEvidence)


def test_without_a_held_proposal_nothing_is_sent() -> None:
    _, pb = two_proposals()
    r = replica(2)
    assert not of(r.on_message(3, W.vote(3, 1, pb.block.id)), Send)


def exchange(replicas: dict[int, Replica], outs: dict[int, list[Action]]) -> dict[int, list[Action]]:
    """Deliver every Send and Broadcast between ``replicas`` until nothing more is sent; returns
    every action each one emitted."""
    seen = {i: list(out) for i, out in outs.items()}
    queue = [(i, a) for i, out in outs.items() for a in out]
    while queue:
        sender, action = queue.pop(0)
        if isinstance(action, Send):
            targets = [action.to] if action.to in replicas else []
        elif isinstance(action, Broadcast):
            targets = [t for t in replicas if t != sender]
        else:
            continue
        for t in targets:
            out = replicas[t].on_message(sender, action.message)
            out += [a for v in of(out, VerifyPayload) for a in replicas[t].on_payload_verified(v.block.id, True)]
            seen[t] += out
            queue += [(t, a) for a in out]
    return seen


def test_both_sides_of_an_equivocating_leader_record_double_proposal_evidence() -> None:
    pa, pb = two_proposals()
    side_a, side_b = replica(2), replica(3)
    seen = exchange({2: side_a, 3: side_b}, {2: vote_on(side_a, pa), 3: vote_on(side_b, pb)})
    for rid in (2, 3):
        [record] = of(seen[rid], RecordEvidence)
        evidence = record.evidence
        assert evidence.kind == EvidenceKind.DOUBLE_PROPOSAL and evidence.offender == LEADER
        assert {evidence.block_a, evidence.block_b} == {pa.block.id, pb.block.id}
        verify_evidence(evidence, W.verifier())


class HiddenEquivocator(EquivocatingLeader):
    leak = False  # no peer is shown both proposals by the leader


def test_a_hidden_equivocation_is_caught_by_every_honest_replica_in_the_simulator() -> None:
    sim = Simulator(SimConfig(n=4, seed=4), strategies={1: HiddenEquivocator})
    sim.run(until=10.0)
    assert check_safety(sim) == []
    for node in sim.honest:
        kinds = {(e.kind, e.offender) for e in node.evidence}
        assert kinds == {(EvidenceKind.DOUBLE_PROPOSAL, 1)}, node.replica_id
    assert sim.min_honest_height() > 20
