"""A scripted attack on the 2-chain lock, run in the manual simulator.

Byzantine replica 0 signs whatever it likes (we hold its key); replicas 1, 2, 3 run the real
code. The leader schedule gives 0 rounds 3 and 4. The script:

1. Round 1: replica 1 proposes B1; 2 votes; with 0's vote 2 forms QC(B1) and proposes B2.
2. Round 2: 1 and 3 receive B2 and vote; 1 receives 2's and 0's votes, forms QC(B2) and COMMITS
   B1. 2 and 3 never see QC(B2), but both hold QC(B1) (their high QC is round 1).
3. 2 and 3 time out in round 2 (their timeouts carry QC(B1)); with 0's timeout they form TC(2),
   whose highest high-QC round is 1.
4. 0 proposes C in round 3 extending the GENESIS QC, justified by TC(2). The lock rule requires
   C.qc.round >= 1, so correct replicas refuse. A replica without the lock check votes for C, and
   0 then gets C certified, proposes C' in round 4, and 2 and 3 commit C — conflicting with B1.
"""

from __future__ import annotations

from collections.abc import Callable

from consensus_factories import World

from consensus.crypto import SignatureKind
from consensus.encoding import hash_bytes
from consensus.leader import FixedSchedule, RoundRobin
from consensus.messages import Block, Proposal, QuorumCert, Timeout, TimeoutCert, Vote
from consensus.safety import SafetyRules
from consensus.simulation import SilentNode, SimConfig, Simulator
from consensus.simulation.node import SimNode, encode_payload

W = World.make(4, "ordo-sim")  # the simulator derives its keys the same way


def _deliver(sim: Simulator, *, kind: type, to: set[int], round: int | None = None) -> None:
    for seq in sim.pending():
        item = sim.inflight[seq]
        body = item.body
        if item.kind == "msg" and isinstance(body, kind) and item.dst in to and (
            round is None or body.round == round
        ):
            sim.deliver(seq)


def _inject(sim: Simulator, message: object, to: set[int]) -> None:
    for instance in sorted(to):
        sim.nodes[instance].deliver(0, message)  # type: ignore[arg-type]


def run_lock_attack(
    rules: Callable[[], SafetyRules] | None = None, node: type[SimNode] = SimNode
) -> Simulator:
    leaders = FixedSchedule({1: 1, 2: 2, 3: 0, 4: 0}, RoundRobin(4))
    sim = Simulator(
        SimConfig(n=4, seed=0, manual=True, tx_interval=None),
        strategies={0: SilentNode, 1: node, 2: node, 3: node},
        leaders=leaders,
        rules=rules,
    )
    sim.start()
    b1 = next(sim.inflight[s].body.block for s in sim.pending()
              if isinstance(sim.inflight[s].body, Proposal))
    # 1. round 1: 2 receives B1, gathers 1's vote and 0's vote -> QC(B1) -> proposes B2
    _deliver(sim, kind=Proposal, to={2}, round=1)
    _deliver(sim, kind=Vote, to={2}, round=1)
    _inject(sim, W.vote(0, 1, b1.id), {2})
    b2 = next(sim.inflight[s].body.block for s in sim.pending()
              if isinstance(sim.inflight[s].body, Proposal) and sim.inflight[s].body.round == 2)
    # 2. round 2: 1 and 3 get B2 and vote; only 1 sees the quorum for B2 and commits B1
    _deliver(sim, kind=Proposal, to={1, 3}, round=2)
    _deliver(sim, kind=Vote, to={1}, round=2)
    _inject(sim, W.vote(0, 2, b2.id), {1})
    assert [b.id for b in sim.nodes[1].log] == [b1.id], "replica 1 must have committed B1"
    for seq in sim.pending():
        sim.drop(seq)
    # 3. 2 and 3 time out in round 2; with 0's timeout they form TC(2)
    sim.fire_timer(2)
    sim.fire_timer(3)
    _deliver(sim, kind=Timeout, to={2, 3}, round=2)
    genesis_qc = QuorumCert(0, W.genesis.id, ())
    _inject(sim, W.timeout(0, 2, genesis_qc), {2, 3})
    tc = sim.nodes[2].replica.last_tc  # type: ignore[union-attr]
    assert isinstance(tc, TimeoutCert) and tc.round == 2
    # 4. 0 proposes C (round 3) on the genesis QC with TC(2), then C' (round 4) on QC(C)
    fork = encode_payload([])
    c = Block(3, 1, genesis_qc, 0, fork, hash_bytes(fork))
    _inject(sim, Proposal(c, tc, W.signer(0).sign(SignatureKind.PROPOSAL, 3, c.id)), {2, 3})
    honest_votes = sorted(
        (body.voter, body.signature)
        for body in (sim.inflight[seq].body for seq in sim.pending())
        if isinstance(body, Vote) and body.round == 3 and body.block_id == c.id
    )
    voters = dict(honest_votes)
    voters[0] = W.vote(0, 3, c.id).signature  # the only key the attacker holds
    if len(voters) < 3:
        return sim  # the honest replicas refused C: the attack is over
    _deliver(sim, kind=Vote, to={2, 3}, round=3)
    _inject(sim, W.vote(0, 3, c.id), {2, 3})
    qc_c = QuorumCert(3, c.id, tuple(sorted(voters.items())))
    c2 = Block(4, 2, qc_c, 0, fork, hash_bytes(fork))
    _inject(sim, Proposal(c2, None, W.signer(0).sign(SignatureKind.PROPOSAL, 4, c2.id)), {2, 3})
    _deliver(sim, kind=Vote, to={2, 3}, round=4)
    _inject(sim, W.vote(0, 4, c2.id), {2, 3})
    return sim
