"""Equivocation detection and offline verification of :class:`Evidence`."""

from __future__ import annotations

from .crypto import SignatureKind, Verifier
from .errors import InvalidMessage
from .messages import BlockId, Evidence, EvidenceKind, ReplicaId

_SIGNATURE_KIND = {
    EvidenceKind.DOUBLE_VOTE: SignatureKind.VOTE,
    EvidenceKind.DOUBLE_PROPOSAL: SignatureKind.PROPOSAL,
}


def verify_evidence(evidence: Evidence, verifier: Verifier) -> None:
    """Raises InvalidMessage unless ``offender`` really signed both conflicting statements."""
    if not verifier.committee.contains(evidence.offender):
        raise InvalidMessage(f"evidence names replica {evidence.offender}, not in the committee")
    if evidence.block_a == evidence.block_b:
        raise InvalidMessage("evidence statements do not conflict")
    kind = _SIGNATURE_KIND[evidence.kind]
    for block_id, sig in ((evidence.block_a, evidence.signature_a), (evidence.block_b, evidence.signature_b)):
        if not verifier.verify(evidence.offender, kind, evidence.round, block_id, sig):
            raise InvalidMessage("evidence carries a signature the offender did not make")


class EquivocationDetector:
    """Remembers the first signed statement per (kind, round, signer) and reports a conflict once.

    Bounded: statements for rounds below the pruning point are forgotten. They are kept per round,
    so pruning drops whole rounds (work proportional to the rounds dropped, not to everything
    remembered: the window holds ~1,000 rounds of statements)."""

    __slots__ = ("_new_reports", "_reported", "_seen")

    def __init__(self) -> None:
        self._seen: dict[int, dict[tuple[EvidenceKind, ReplicaId], tuple[BlockId, bytes]]] = {}
        self._reported: set[tuple[EvidenceKind, int, ReplicaId]] = set()
        self._new_reports: list[tuple[EvidenceKind, int, ReplicaId]] = []

    def begin(self) -> None:
        """Start remembering what is reported, so that :meth:`rollback` can take it back."""
        self._new_reports = []

    def rollback(self) -> None:
        """Forget the reports made since :meth:`begin` (their evidence never left the core), so the
        same equivocation is reported again when next seen. Remembered statements stay: they are
        verified facts."""
        self._reported.difference_update(self._new_reports)
        self._new_reports = []

    def rounds(self) -> list[int]:
        """The rounds with remembered statements."""
        return list(self._seen)

    def first(self, kind: EvidenceKind, round: int, signer: ReplicaId) -> tuple[BlockId, bytes] | None:
        """The first statement of ``kind`` remembered from ``signer`` in ``round``, if any."""
        statements = self._seen.get(round)
        return None if statements is None else statements.get((kind, signer))

    def observe(
        self, kind: EvidenceKind, round: int, signer: ReplicaId, block_id: BlockId, signature: bytes
    ) -> Evidence | None:
        """Call only with statements whose signatures were verified."""
        statements = self._seen.get(round)
        if statements is None:
            statements = self._seen[round] = {}
        first = statements.setdefault((kind, signer), (block_id, signature))
        if first[0] == block_id:
            return None
        key = (kind, round, signer)
        if key in self._reported:
            return None
        self._reported.add(key)
        self._new_reports.append(key)
        return Evidence.of(kind, signer, round, first, (block_id, signature))

    def prune(self, below_round: int) -> None:
        for round in [r for r in self._seen if r < below_round]:
            del self._seen[round]
        if self._reported:
            self._reported = {k for k in self._reported if k[1] >= below_round}
