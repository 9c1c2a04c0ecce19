"""Evidence the node knows and has not yet seen committed.

Rules (stated in docs/PROTOCOL.md): evidence is verified on receipt; persisted before it is
gossiped; included by leaders ahead of transactions, oldest round first, up to
``evidence_max_bytes_per_block``; includable in a block of round ``r`` only while
``r - evidence.round <= evidence_max_age_rounds`` (after that it expires, deterministically for
every voter); and never included twice (not if committed, not if in an uncommitted ancestor).
"""

from __future__ import annotations

from collections.abc import Iterable

from consensus.messages import Evidence

from ..config import Limits


class EvidencePool:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._pending: dict[bytes, Evidence] = {}
        self._committed: dict[bytes, int] = {}  # evidence id -> its round (for expiry pruning)
        self._per_offender: dict[int, int] = {}  # pieces kept per offender (never decreases)
        self.capped = 0

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def total_known(self) -> int:
        return len(self._pending) + len(self._committed)

    def knows(self, evidence_id: bytes) -> bool:
        return evidence_id in self._pending or evidence_id in self._committed

    def add(self, evidence: Evidence) -> bool:
        """Keep new evidence, at most ``evidence_max_per_offender`` pieces per offender (one
        verifiable piece is enough to slash; a replica equivocating every round must not flood the
        log). Returns False for known or capped evidence."""
        if self.knows(evidence.id):
            return False
        if self._per_offender.get(evidence.offender, 0) >= self.limits.evidence_max_per_offender:
            self.capped += 1
            return False
        self._pending[evidence.id] = evidence
        self._per_offender[evidence.offender] = self._per_offender.get(evidence.offender, 0) + 1
        return True

    def is_committed(self, evidence_id: bytes) -> bool:
        return evidence_id in self._committed

    def mark_committed(self, evidence: Iterable[Evidence]) -> None:
        for e in evidence:
            if self._pending.pop(e.id, None) is None and e.id not in self._committed:
                self._per_offender[e.offender] = self._per_offender.get(e.offender, 0) + 1
            self._committed[e.id] = e.round

    def expired(self, evidence: Evidence, block_round: int) -> bool:
        return block_round - evidence.round > self.limits.evidence_max_age_rounds

    def select(self, *, block_round: int, exclude: set[bytes]) -> list[Evidence]:
        out: list[Evidence] = []
        size = 0
        for e in sorted(self._pending.values(), key=lambda e: (e.round, e.id)):
            if e.id in exclude or self.expired(e, block_round):
                continue
            encoded = len(e.encode())
            if size + encoded > self.limits.evidence_max_bytes_per_block:
                break
            out.append(e)
            size += encoded
        return out

    def prune(self, current_round: int) -> None:
        horizon = current_round - self.limits.evidence_max_age_rounds
        self._pending = {k: e for k, e in self._pending.items() if e.round >= horizon}
        self._committed = {k: r for k, r in self._committed.items() if r >= horizon - 1}
