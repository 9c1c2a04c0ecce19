"""A slice or bundle proof is for what was asked and verifies against the committee: the checks
behind the client's ``slice``, ``bundle_proof`` and ``subscribe`` (evidence: :mod:`.evidence`)."""

from __future__ import annotations

from typing import Any

from consensus.crypto import Verifier

from ..rollup.proofs import BundleProof, InvalidProof, SliceProof
from .model import ProofFailed


def check_slice(proof: SliceProof, rollup_id: int, height: int, verifier: Verifier | None) -> None:
    if proof.rollup_id != rollup_id or proof.height != height:
        raise ProofFailed(f"asked for rollup {rollup_id} at height {height}, got rollup {proof.rollup_id} "
                          f"at height {proof.height}")
    if verifier is not None:
        try:
            proof.verify(verifier)
        except InvalidProof as exc:
            raise ProofFailed(f"slice proof for rollup {rollup_id} at height {height}: {exc}") from None


def check_bundle(proof: BundleProof, bundle_id: str, verifier: Verifier | None) -> BundleProof:
    if proof.bundle.id.hex() != bundle_id:
        raise ProofFailed(f"the proof is for bundle {proof.bundle.id.hex()}, not {bundle_id}")
    if verifier is not None:
        try:
            proof.verify(verifier)
        except InvalidProof as exc:
            raise ProofFailed(f"bundle proof for {bundle_id}: {exc}") from None
    return proof


def parse_bundle_proof(body: dict[str, Any], bundle_id: str, verifier: Verifier | None) -> BundleProof:
    try:
        proof = BundleProof.from_json(body["proof"])
    except (KeyError, TypeError, InvalidProof) as exc:
        raise ProofFailed(f"unreadable bundle proof: {exc}") from None
    return check_bundle(proof, bundle_id, verifier)
