"""A replica's fault injection (sequencing/replica/faults.py): the Byzantine modes (double vote,
equivocating leader, censor) and the storage crash hook that ORDO_CRASH_AT sets up."""

from __future__ import annotations

from pathlib import Path

import pytest
from node_rig import World

from consensus.evidence import EquivocationDetector, verify_evidence
from consensus.messages import Block, EvidenceKind, Proposal, Vote
from consensus.validation import verify_proposal
from sequencing.cli.main import main as ordo_main
from sequencing.cluster.local import write_local_config
from sequencing.config import Limits
from sequencing.replica import faults
from sequencing.replica.evidence_pool import EvidencePool
from sequencing.replica.faults import (
    BYZANTINE_MODES,
    ByzantineMode,
    FaultInjection,
    UnknownFaultMode,
    crash_hook_from_env,
    parse_byzantine,
)
from sequencing.replica.payload_rules import Ancestry, build_payload
from sequencing.rollup.batches import Batch, BatchPool
from sequencing.rollup.block_content import BlockPayload, assemble
from sequencing.rollup.transactions import Bundle, Transaction


class Died(Exception):
    pass


ME = 1


def test_an_unknown_byzantine_mode_is_refused_not_ignored() -> None:
    signer = World.make(4).signer(ME)
    for bad in ("double-voet", "censor", "censor:", "censor:x", "censor:-1", "double-vote:2", "censor-all:1"):
        with pytest.raises(UnknownFaultMode, match="censor"):
            FaultInjection(signer, byzantine=bad)
    for mode in BYZANTINE_MODES:
        FaultInjection(signer, byzantine=mode.replace("ROLLUP", "7"))
    assert ByzantineMode.parse("censor:7") == ByzantineMode("censor", 7)
    assert FaultInjection(signer, byzantine="censor:7").censored_rollup == 7
    assert parse_byzantine("equivocating-leader") == "equivocating-leader"


def test_an_honest_replica_broadcasts_what_the_core_broadcasts_and_nothing_else() -> None:
    world = World.make(4)
    honest = FaultInjection(world.signer(ME), peers=[0, 2, 3])
    block = world.block(1, world.genesis, world.genesis_qc)
    for message in (world.vote(ME, 1, block.id), world.proposal(block)):
        assert honest.broadcast(message) == [(None, message)]
    assert honest.leave_out is None and not honest.withholds_proposals


def test_double_vote_answers_only_for_own_votes() -> None:
    world = World.make(4)
    injection = FaultInjection(world.signer(ME), byzantine="double-vote")
    theirs = world.vote(2, 1, b"\x01" * 32)
    assert injection.broadcast(theirs) == [(None, theirs)]
    own = world.vote(ME, 1, b"\x01" * 32)
    routes = injection.broadcast(own)
    assert [to for to, _ in routes] == [None, None]  # both to every peer
    first, second = (message for _, message in routes)
    assert isinstance(second, Vote)
    assert first == own and second.round == 1 and second.voter == ME and second.block_id != own.block_id


def proposal_with_batches(world: World) -> Proposal:
    batches = (Batch.of(2, 1, 0, (Transaction(4, b"x"),)),)
    payload = BlockPayload(tuple(b.digest for b in batches), ()).encode()
    return world.proposal(Block(1, 1, world.genesis_qc, ME, payload, assemble(list(batches)).data_root))


@pytest.mark.parametrize("n", [4, 7])
def test_an_equivocating_leader_shows_each_half_of_the_committee_its_own_validly_signed_proposal(n: int) -> None:
    world = World.make(n)
    peers = [r for r in range(n) if r != ME]
    injection = FaultInjection(world.signer(ME), byzantine="equivocating-leader", peers=reversed(peers))
    proposal = proposal_with_batches(world)
    routes = injection.broadcast(proposal)
    assert sorted(peer for peer, _ in routes) == peers  # each peer exactly once, no broadcast
    shown = {peer: message for peer, message in routes}
    assert [p for p in peers if shown[p] == proposal] == peers[:n // 2 - 1]  # with the leader: half
    [other] = {m for m in shown.values() if m != proposal}
    assert isinstance(other, Proposal)
    assert other.block.id != proposal.block.id and other.round == proposal.round
    assert other.author == ME and other.block.parent_id == proposal.block.parent_id
    for signed in (proposal, other):
        verify_proposal(signed, world.verifier(), world.genesis.id)
    assert other.block.payload == BlockPayload((), ()).encode()  # a payload every voter accepts
    assert other.block.data_root == assemble([]).data_root
    # the two are evidence of a double proposal
    detector = EquivocationDetector()
    assert detector.observe(EvidenceKind.DOUBLE_PROPOSAL, 1, ME, proposal.block.id, proposal.signature) is None
    evidence = detector.observe(EvidenceKind.DOUBLE_PROPOSAL, 1, ME, other.block.id, other.signature)
    assert evidence is not None
    verify_evidence(evidence, world.verifier())


def test_an_equivocating_leader_leaves_others_messages_and_an_empty_proposal_alone() -> None:
    world = World.make(4)
    injection = FaultInjection(world.signer(ME), byzantine="equivocating-leader", peers=[0, 2, 3])
    empty = world.proposal(Block(5, 1, world.genesis_qc, ME, BlockPayload((), ()).encode(), assemble([]).data_root))
    theirs = world.proposal(world.block(2, world.genesis, world.genesis_qc))
    vote = world.vote(ME, 1, b"\x01" * 32)
    for message in (empty, theirs, vote):
        assert injection.broadcast(message) == [(None, message)]


def batch(seq: int, *rollups: int, bundle: tuple[int, ...] = ()) -> Batch:
    items: list[Transaction | Bundle] = [Transaction(r, f"tx-{seq}-{r}".encode()) for r in rollups]
    if bundle:
        items.append(Bundle(tuple(Transaction(r, f"b-{seq}-{r}".encode()) for r in bundle)))
    return Batch.of(2, seq, 0, items)


def test_a_censor_leaves_out_exactly_the_batches_holding_the_target_rollup() -> None:
    world = World.make(4)
    censor = FaultInjection(world.signer(ME), byzantine="censor:7")
    limits = Limits()
    pool = BatchPool(limits.batch_ttl_blocks)
    batches = [batch(1, 1, 2), batch(2, 7), batch(3, 3, 7), batch(4, 4), batch(5, 5, bundle=(6, 7)), batch(6, 6)]
    for b in batches:
        pool.add(b)
    kept = [batches[0], batches[3], batches[5]]
    payload, content = build_payload(height=1, round=5, ancestry=Ancestry(frozenset(), frozenset()),
                                     batches=pool, evidence=EvidencePool(limits), limits=limits,
                                     leave_out=censor.leave_out)
    assert payload.batches == tuple(b.digest for b in kept)
    assert content == assemble(kept)
    honest, _ = build_payload(height=1, round=5, ancestry=Ancestry(frozenset(), frozenset()),
                              batches=pool, evidence=EvidencePool(limits), limits=limits,
                              leave_out=FaultInjection(world.signer(ME)).leave_out)
    assert honest.batches == tuple(b.digest for b in batches)


def test_no_crash_hook_without_the_variable() -> None:
    assert crash_hook_from_env({}) is None
    assert crash_hook_from_env({"ORDO_CRASH_AT": ""}) is None


def test_the_crash_hook_dies_at_the_nth_visit_of_its_point(monkeypatch: pytest.MonkeyPatch) -> None:
    def die(code: int) -> None:
        raise Died(code)

    monkeypatch.setattr(faults.os, "_exit", die)
    hook = crash_hook_from_env({"ORDO_CRASH_AT": "append:slices:2"})
    assert hook is not None
    hook("append:slices")
    hook("append:blocks")
    with pytest.raises(Died, match="137"):
        hook("append:slices")


@pytest.mark.parametrize("spec", ["3:censor", "3:censor:x", "x:censor-all", "3:equivocating", "3"])
def test_ordo_up_refuses_a_malformed_byzantine_spec_in_one_line(
        spec: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = ordo_main(["up", "--config", str(write_local_config(tmp_path)), "--byzantine", spec])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "expected ID:MODE" in err and "censor:ROLLUP" in err, err
