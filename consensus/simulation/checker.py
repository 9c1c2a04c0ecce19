"""Invariant checkers over a simulation. Each returns a list of violations (empty = holds).

They look only at what replicas recorded (committed logs on disk, evidence, witnessed signed
statements) and at what clients submitted, never at the protocol's internals, so a broken
protocol cannot fool them by breaking its own bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..commit_proof import verify_commit_proof
from ..errors import InvalidMessage
from ..evidence import verify_evidence
from ..leader import LeaderSchedule
from ..messages import genesis_block
from .node import SimNode, decode_payload
from .simulator import Simulator


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.detail}"


def check_agreement(sim: Simulator) -> list[Violation]:
    """Agreement and prefix: honest committed logs never differ at a height, so each is a prefix
    of the longest."""
    out: list[Violation] = []
    honest = sim.honest
    longest = max(honest, key=lambda n: len(n.log)).log if honest else []
    for node in honest:
        for height, block in enumerate(node.log):
            if block.id != longest[height].id:
                out.append(Violation(
                    "agreement",
                    f"instance {node.instance} (replica {node.replica_id}) committed "
                    f"{block.id.hex()[:12]} at height {block.height}, another honest replica "
                    f"{longest[height].id.hex()[:12]}",
                ))
                break
        for height, block in enumerate(node.log, start=1):
            if block.height != height:
                out.append(Violation("prefix", f"instance {node.instance} log has a gap at {height}"))
                break
    return out


def check_validity(sim: Simulator) -> list[Violation]:
    """Every committed transaction was submitted by a client and is committed at most once.

    Incremental: each node's log is scanned once; results are kept on the simulator so that
    checking after every step stays cheap."""
    out: list[Violation] = []
    for node in sim.honest:
        state = sim.validity_scan.setdefault(node.instance, _ValidityScan())
        for block in node.log[state.scanned:]:
            for tx in decode_payload(block.payload):
                if not sim.was_submitted(tx):
                    detail = f"instance {node.instance} committed an invented tx {tx!r}"
                    state.violations.append(Violation("validity", detail))
                if tx in state.seen:
                    detail = f"instance {node.instance} committed {tx!r} twice"
                    state.violations.append(Violation("validity", detail))
                state.seen.add(tx)
        state.scanned = len(node.log)
        out.extend(state.violations)
    return out


@dataclass(slots=True)
class _ValidityScan:
    scanned: int = 0
    seen: set[bytes] = field(default_factory=set)
    violations: list[Violation] = field(default_factory=list)


def check_evidence(sim: Simulator) -> list[Violation]:
    """Every recorded evidence verifies offline and accuses a replica that really equivocated
    (never an honest one); every equivocation an honest replica witnessed was recorded."""
    out: list[Violation] = []
    verifier = sim.checker_verifier
    honest_ids = {n.replica_id for n in sim.honest} - sim.faulty_ids
    for node in sim.honest:
        for evidence in node.evidence:
            try:
                verify_evidence(evidence, verifier)
            except InvalidMessage as exc:
                detail = f"instance {node.instance} recorded invalid evidence: {exc}"
                out.append(Violation("evidence", detail))
            if evidence.offender in honest_ids:
                out.append(Violation(
                    "evidence", f"instance {node.instance} accused honest replica {evidence.offender}"
                ))
        out.extend(_missing_evidence(node))
    return out


def _missing_evidence(node: SimNode) -> list[Violation]:
    recorded = {(e.kind, e.round, e.offender) for e in node.evidence}
    out = []
    for (kind, round, signer), blocks in node.witness.items():
        if len(blocks) > 1 and (kind, round, signer) not in recorded:
            out.append(Violation(
                "evidence",
                f"instance {node.instance} saw replica {signer} sign {len(blocks)} "
                f"{kind.name.lower()} statements in round {round} and recorded no evidence",
            ))
    return out


def check_persistence(sim: Simulator) -> list[Violation]:
    """No honest replica let a vote, timeout or proposal leave before persisting its safety state."""
    return [
        Violation("persist-before-send", f"instance {node.instance}: {detail}")
        for node in sim.honest
        for detail in node.unsafe_sends[:3]
    ]


def check_proofs(sim: Simulator) -> list[Violation]:
    """Every block an honest replica committed is stored with a commit proof that verifies with
    the committee's keys alone (what a rollup checks). A replica that took a forged or
    under-quorum QC commits with a proof that does not. Incremental, like ``check_validity``."""
    verifier = sim.checker_verifier
    genesis_id = genesis_block(sim.committee.chain_id).id
    out: list[Violation] = []
    for node in sim.honest:
        state = sim.proof_scan.setdefault(node.instance, _ProofScan())
        disk = node.disk
        for block, proof in zip(disk.blocks[state.scanned:], disk.proofs[state.scanned:], strict=True):
            try:
                verify_commit_proof(proof, block.id, verifier, genesis_id)
            except InvalidMessage as exc:
                if len(state.violations) < 3:
                    detail = f"instance {node.instance} stored an invalid proof for height {block.height}: {exc}"
                    state.violations.append(Violation("proof", detail))
        state.scanned = len(disk.blocks)
        out.extend(state.violations)
    return out


@dataclass(slots=True)
class _ProofScan:
    scanned: int = 0
    violations: list[Violation] = field(default_factory=list)


def check_crashes(sim: Simulator) -> list[Violation]:
    """No honest replica died of an exception while handling an input."""
    return [
        Violation("crash", f"instance {node.instance}: {detail}")
        for node in sim.honest
        for detail in node.failures[:3]
    ]


def check_leaders(sim: Simulator) -> list[Violation]:
    """The leader schedule is a function of the round and the committed log. Two checks on the
    leader each honest replica chose when it entered a round: replicas that had committed the same
    height (the same blocks, by agreement) chose the same leader; and a replica with its own
    schedule per incarnation (reputation) chose what a schedule rebuilt from its committed log at
    that height chooses (what a restart must reproduce). A schedule that reads the replica's id or
    uncommitted state, or forgets its history on restart, fails one of them. Replicas at different
    heights may differ: that costs a round, never safety."""
    seen: dict[tuple[int, int], tuple[int, int]] = {}  # (round, height) -> (leader, instance)
    out: list[Violation] = []
    for node in sim.honest:
        factory = node.leader_factory
        rebuilt: dict[int, LeaderSchedule] = {}
        for round, height, leader in node.leader_choices:
            first = seen.setdefault((round, height), (leader, node.instance))
            if first[0] != leader and len(out) < 3:
                out.append(Violation(
                    "leaders", f"round {round} at committed height {height}: instance {first[1]} chose "
                    f"replica {first[0]}, instance {node.instance} chose replica {leader}",
                ))
            if factory is None:
                continue
            schedule = rebuilt.get(height)
            if schedule is None:
                schedule = rebuilt[height] = factory(node.log[:height])
            expected = schedule.leader(round)
            if expected != leader and len(out) < 3:
                out.append(Violation(
                    "leaders", f"instance {node.instance} chose replica {leader} for round {round} at "
                    f"committed height {height}; rebuilt from its log, the schedule chooses {expected}",
                ))
    return out


def check_safety(sim: Simulator) -> list[Violation]:
    return (
        check_agreement(sim) + check_validity(sim) + check_evidence(sim) + check_persistence(sim)
        + check_proofs(sim) + check_crashes(sim) + check_leaders(sim)
    )


def committed_rounds(sim: Simulator) -> int:
    """Highest round of a block committed by every honest replica (0 if none)."""
    logs = [n.log for n in sim.honest]
    if not logs or not all(logs):
        return 0
    height = min(len(log) for log in logs)
    return logs[0][height - 1].round if height else 0
