"""Equivocation evidence checked against the committee: the one rule behind the client's
``evidence()`` and ``ordo evidence list|verify``.

Evidence proves what it says only if the offender's key signed both conflicting statements
(:func:`consensus.evidence.verify_evidence`) and, when it comes with a listing (the ``id``,
``offender``, ``round`` and ``kind`` that /v1/evidence serves next to it), the listing matches
the signed contents.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from consensus.crypto import Verifier
from consensus.encoding import unpack
from consensus.errors import ConsensusError
from consensus.evidence import verify_evidence
from consensus.messages import Evidence

from .model import EvidenceRecord, OrdoError, ProofFailed, ServerError

MAX_EVIDENCE_BYTES = 4096  # consensus.messages.Evidence.decode's bound
EVIDENCE_FIELDS = 7


class UnreadableEvidence(OrdoError, ValueError):
    """Bytes that are not the evidence encoding at all (not msgpack, or not its 7 fields)."""


class InvalidEvidence(ProofFailed):
    """Evidence that proves nothing: a malformed field, a signature the offender did not make, or
    a listing that contradicts the signed contents."""


def decode_evidence(encoded: bytes) -> Evidence:
    """:class:`UnreadableEvidence` if ``encoded`` is not the 7-field encoding, :class:`InvalidEvidence`
    if it is but its fields are not valid evidence."""
    try:
        wire = unpack(encoded, max_size=MAX_EVIDENCE_BYTES)
    except ConsensusError as exc:
        raise UnreadableEvidence(f"not evidence (undecodable: {exc})") from None
    if not isinstance(wire, list) or len(wire) != EVIDENCE_FIELDS:
        raise UnreadableEvidence(f"not evidence (expected the {EVIDENCE_FIELDS}-field evidence encoding)")
    try:
        return Evidence.from_wire(wire)
    except ConsensusError as exc:
        raise InvalidEvidence(str(exc)) from None


def listing_of(evidence: Evidence) -> dict[str, Any]:
    """What /v1/evidence lists next to the evidence, as the signed contents say it."""
    return {"id": evidence.id.hex(), "offender": evidence.offender, "round": evidence.round,
            "kind": evidence.kind.name.lower()}


def check_evidence(evidence: Evidence, verifier: Verifier, listed: Mapping[str, Any] | None = None) -> None:
    """:class:`InvalidEvidence` unless the offender signed both statements and every field of
    ``listed`` that names one of the listing's (id, offender, round, kind) matches the contents."""
    try:
        verify_evidence(evidence, verifier)
    except ConsensusError as exc:
        raise InvalidEvidence(str(exc)) from None
    if listed is not None:
        wrong = [key for key, value in listing_of(evidence).items() if key in listed and listed[key] != value]
        if wrong:
            raise InvalidEvidence(f"the listed {', '.join(wrong)} do not match the signed evidence")


def check_record(record: EvidenceRecord, verifier: Verifier) -> None:
    """:func:`check_evidence` for a record the API served, naming it in the error."""
    listed = {"id": record.id, "offender": record.offender, "round": record.round, "kind": record.kind}
    try:
        check_evidence(record.evidence, verifier, listed)
    except InvalidEvidence as exc:
        raise InvalidEvidence(f"evidence {record.id}: {exc}") from None


def evidence_records(body: Any) -> list[EvidenceRecord]:
    """The records of a /v1/evidence response, decoded (not yet verified); ServerError if unreadable."""
    if not isinstance(body, list):
        raise ServerError("the evidence list is not a list")
    out = []
    for item in body:
        try:
            evidence = decode_evidence(bytes.fromhex(item["evidence"]))
            out.append(EvidenceRecord(item["id"], item["kind"], int(item["offender"]), int(item["round"]),
                                      item["committed_height"], evidence))
        except (KeyError, TypeError, ValueError, InvalidEvidence) as exc:
            raise ServerError(f"unreadable evidence record: {exc}") from None
    return out
