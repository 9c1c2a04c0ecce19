"""Proofs a rollup checks with nothing but the committee's public keys.

SliceProof (one rollup, one height)
    ``commit``: the block's commit proof (header chain + a QC, see consensus.commit_proof) — the
    first header is the block's; ``namespace``: the NMT proof that ``transactions`` are exactly the
    rollup's leaves under the header's ``data_root`` (inclusion and completeness; an empty slice
    comes with an absence proof).

BundleProof (one bundle)
    ``commit`` as above and a multi-leaf NMT proof that every transaction of the bundle is a leaf
    of that one block: the bundle landed whole, in one block, in every rollup's slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consensus.commit_proof import CommitProof, verify_commit_proof
from consensus.crypto import Verifier
from consensus.encoding import expect_int, expect_list
from consensus.errors import ConsensusError
from consensus.messages import BlockHeader, genesis_block

from .nmt import MultiProof, NamespaceProof, ProofError
from .transactions import Bundle, Transaction


class InvalidProof(Exception):
    """A proof that does not verify; the message says which link failed."""


def _check_commit(commit: CommitProof, verifier: Verifier) -> BlockHeader:
    if not commit.headers:
        raise InvalidProof("commit proof: no headers")
    try:
        return verify_commit_proof(commit, commit.block_id, verifier,
                                   genesis_block(verifier.chain_id).id)
    except ConsensusError as exc:
        raise InvalidProof(f"commit proof: {exc}") from None


@dataclass(frozen=True, slots=True)
class SliceProof:
    rollup_id: int
    height: int
    transactions: tuple[bytes, ...]
    commit: CommitProof
    namespace: NamespaceProof

    def verify(self, verifier: Verifier) -> BlockHeader:
        """Raises InvalidProof; returns the committed block's header."""
        header = _check_commit(self.commit, verifier)
        if header.height != self.height:
            raise InvalidProof(f"proof is for height {header.height}, not {self.height}")
        try:
            self.namespace.verify(header.data_root, self.rollup_id, list(self.transactions))
        except ProofError as exc:
            raise InvalidProof(f"namespace proof: {exc}") from None
        return header

    def to_json(self) -> dict[str, Any]:
        return {
            "rollup_id": self.rollup_id,
            "height": self.height,
            "transactions": [t.hex() for t in self.transactions],
            "block_id": self.commit.block_id.hex(),
            "commit_proof": _wire_hex(self.commit.to_wire()),
            "namespace_proof": self.namespace.to_json(),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SliceProof:
        try:
            return cls(
                expect_int(obj["rollup_id"], "rollup_id", hi=2**32 - 1),
                expect_int(obj["height"], "height"),
                tuple(bytes.fromhex(t) for t in expect_list(obj["transactions"], "transactions")),
                CommitProof.from_wire(_wire_unhex(obj["commit_proof"])),
                NamespaceProof.from_json(obj["namespace_proof"]),
            )
        except (KeyError, TypeError, ValueError, ConsensusError) as exc:
            raise InvalidProof(f"malformed slice proof: {exc}") from None


@dataclass(frozen=True, slots=True)
class BundleProof:
    bundle: Bundle
    height: int
    indices: tuple[int, ...]
    commit: CommitProof
    leaves: MultiProof

    def verify(self, verifier: Verifier) -> BlockHeader:
        header = _check_commit(self.commit, verifier)
        if header.height != self.height:
            raise InvalidProof(f"proof is for height {header.height}, not {self.height}")
        if len(self.indices) != len(self.bundle.txs):
            raise InvalidProof("one leaf index per bundle transaction is required")
        order = sorted(range(len(self.indices)), key=lambda i: self.indices[i])
        leaves = [(self.bundle.txs[i].rollup_id, self.bundle.txs[i].payload) for i in order]
        if list(self.leaves.indices) != sorted(self.indices):
            raise InvalidProof("the multi-proof covers other leaves")
        try:
            self.leaves.verify(header.data_root, leaves)
        except ProofError as exc:
            raise InvalidProof(f"bundle leaves: {exc}") from None
        return header

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle_id": self.bundle.id.hex(),
            "transactions": [{"rollup_id": t.rollup_id, "payload": t.payload.hex()} for t in self.bundle.txs],
            "height": self.height,
            "indices": list(self.indices),
            "block_id": self.commit.block_id.hex(),
            "commit_proof": _wire_hex(self.commit.to_wire()),
            "leaves_proof": self.leaves.to_json(),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> BundleProof:
        try:
            txs = tuple(
                Transaction(expect_int(t["rollup_id"], "rollup_id", hi=2**32 - 1), bytes.fromhex(t["payload"]))
                for t in expect_list(obj["transactions"], "transactions")
            )
            return cls(
                Bundle(txs),
                expect_int(obj["height"], "height"),
                tuple(expect_int(i, "index") for i in expect_list(obj["indices"], "indices")),
                CommitProof.from_wire(_wire_unhex(obj["commit_proof"])),
                MultiProof.from_json(obj["leaves_proof"]),
            )
        except (KeyError, TypeError, ValueError, ConsensusError) as exc:
            raise InvalidProof(f"malformed bundle proof: {exc}") from None


def _wire_hex(wire: Any) -> Any:
    """msgpack-shaped structure -> JSON (bytes as hex strings, lists kept)."""
    if isinstance(wire, bytes):
        return wire.hex()
    if isinstance(wire, list):
        return [_wire_hex(w) for w in wire]
    return wire


def _wire_unhex(value: Any) -> Any:
    """Inverse of _wire_hex for commit proofs: every string is hex bytes."""
    if isinstance(value, str):
        return bytes.fromhex(value)
    if isinstance(value, list):
        return [_wire_unhex(v) for v in value]
    return value
