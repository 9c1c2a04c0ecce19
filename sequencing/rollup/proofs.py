"""Proofs a rollup checks with nothing but the committee's public keys.

The leaves of a block's NMT are its slices cut into chunks (:mod:`.chunks`): one leaf per
``CHUNK_TXS`` transactions of one rollup, leaf data = ``pack(chunk of payloads)``.

SliceProof (one rollup, one height)
    ``commit``: the block's commit proof (header chain + a QC, see consensus.commit_proof) — the
    first header is the block's; ``transactions``: the rollup's payloads in block order;
    ``namespace``: the NMT proof that the chunks of ``transactions`` (re-cut by the verifier) are
    exactly the rollup's leaves under the header's ``data_root`` (inclusion and completeness; an
    empty slice comes with an absence proof).

BundleProof (one bundle)
    ``commit`` as above; for each transaction of the bundle its ``location`` (leaf index, offset in
    that leaf's chunk); ``chunks``: the payloads of every leaf a bundle transaction is in; ``leaves``:
    a multi-leaf NMT proof of those leaves. Each transaction ``(rollup, payload)`` must be entry
    ``offset`` of a proven chunk whose namespace is ``rollup``, no two at the same place, all under
    one block's ``data_root``: the bundle landed whole, in one block, in every rollup's slice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from consensus.commit_proof import CommitProof, verify_commit_proof
from consensus.crypto import Verifier
from consensus.encoding import expect_int, expect_list, pack
from consensus.errors import ConsensusError
from consensus.messages import BlockHeader, genesis_block

from .chunks import CHUNK_TXS, slice_leaves
from .nmt import MAX_LEAVES, MAX_MULTIPROOF_INDICES, MultiProof, NamespaceProof, ProofError
from .transactions import Bundle, Transaction

_PAYLOAD_HEX = re.compile(r"(?:[0-9a-f]{2})+")


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


def _check_height(header: BlockHeader, height: int) -> None:
    if header.height != height:
        raise InvalidProof(f"proof is for height {header.height}, not {height}")


@dataclass(frozen=True, slots=True)
class SliceProof:
    rollup_id: int
    height: int
    transactions: tuple[bytes, ...]
    commit: CommitProof
    namespace: NamespaceProof  # over the chunk leaves of ``transactions``

    def verify(self, verifier: Verifier) -> BlockHeader:
        """Raises InvalidProof; returns the committed block's header."""
        header = _check_commit(self.commit, verifier)
        _check_height(header, self.height)
        if not all(isinstance(t, bytes) for t in self.transactions):
            raise InvalidProof("transactions must be bytes")
        chunks = [data for _, data in slice_leaves(self.rollup_id, self.transactions)]
        try:
            self.namespace.verify(header.data_root, self.rollup_id, chunks)
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
    def from_json(cls, obj: Any) -> SliceProof:
        try:
            d = _expect_keys(obj, "slice proof", _SLICE_KEYS)
            commit = CommitProof.from_wire(_wire_unhex(d["commit_proof"]))
            _check_block_id(d["block_id"], commit)
            return cls(
                expect_int(d["rollup_id"], "rollup_id", hi=2**32 - 1),
                expect_int(d["height"], "height"),
                tuple(_unhex(t, "transaction") for t in expect_list(d["transactions"], "transactions")),
                commit,
                NamespaceProof.from_json(d["namespace_proof"]),
            )
        except (KeyError, TypeError, ValueError, ConsensusError) as exc:
            raise InvalidProof(f"malformed slice proof: {exc}") from None


@dataclass(frozen=True, slots=True)
class BundleProof:
    bundle: Bundle
    height: int
    locations: tuple[tuple[int, int], ...]  # per bundle tx, in bundle order: (leaf index, offset in its chunk)
    chunks: tuple[tuple[bytes, ...], ...]  # the payloads of each proven leaf, in ``leaves.indices`` order
    commit: CommitProof
    leaves: MultiProof

    def verify(self, verifier: Verifier) -> BlockHeader:
        """Raises InvalidProof; returns the committed block's header."""
        header = _check_commit(self.commit, verifier)
        _check_height(header, self.height)
        leaves = self._chunk_leaves()
        try:
            self.leaves.verify(header.data_root, leaves)
        except ProofError as exc:
            raise InvalidProof(f"bundle leaves: {exc}") from None
        return header

    def _chunk_leaves(self) -> list[tuple[int, bytes]]:
        """The proven leaves ``(namespace, pack(chunk))``, after checking every bundle transaction is
        at its claimed place in them (which also fixes each leaf's namespace)."""
        txs = self.bundle.txs
        if len(self.locations) != len(txs):
            raise InvalidProof("one location per bundle transaction is required")
        if len(set(self.locations)) != len(self.locations):
            raise InvalidProof("two bundle transactions claim the same place")
        if len(self.chunks) != len(self.leaves.indices):
            raise InvalidProof("one chunk per proven leaf is required")
        slot = {leaf: j for j, leaf in enumerate(self.leaves.indices)}
        namespaces: list[int | None] = [None] * len(self.chunks)
        for i, (tx, (leaf, offset)) in enumerate(zip(txs, self.locations, strict=True)):
            j = slot.get(leaf)
            if j is None:
                raise InvalidProof(f"bundle transaction {i}: leaf {leaf} is not in the multi proof")
            chunk = self.chunks[j]
            if not 0 <= offset < len(chunk) or chunk[offset] != tx.payload:
                raise InvalidProof(f"bundle transaction {i} is not entry {offset} of leaf {leaf}")
            if namespaces[j] not in (None, tx.rollup_id):
                raise InvalidProof(f"leaf {leaf}: bundle transactions of rollups {namespaces[j]} and {tx.rollup_id}")
            namespaces[j] = tx.rollup_id
        leaves: list[tuple[int, bytes]] = []
        for leaf, namespace, chunk in zip(self.leaves.indices, namespaces, self.chunks, strict=True):
            if namespace is None:
                raise InvalidProof(f"the multi proof covers leaf {leaf}, which holds no bundle transaction")
            if not all(isinstance(p, bytes) for p in chunk):
                raise InvalidProof(f"leaf {leaf}: payloads must be bytes")
            leaves.append((namespace, pack(list(chunk))))
        return leaves

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle_id": self.bundle.id.hex(),
            "transactions": [{"rollup_id": t.rollup_id, "payload": t.payload.hex()} for t in self.bundle.txs],
            "height": self.height,
            "locations": [[leaf, offset] for leaf, offset in self.locations],
            "chunks": [[p.hex() for p in chunk] for chunk in self.chunks],
            "block_id": self.commit.block_id.hex(),
            "commit_proof": _wire_hex(self.commit.to_wire()),
            "leaves_proof": self.leaves.to_json(),
        }

    @classmethod
    def from_json(cls, obj: Any) -> BundleProof:
        try:
            d = _expect_keys(obj, "bundle proof", _BUNDLE_KEYS)
            txs = tuple(_tx_from_json(t) for t in expect_list(d["transactions"], "transactions",
                                                              max_len=MAX_MULTIPROOF_INDICES))
            bundle = Bundle(txs)
            if d["bundle_id"] != bundle.id.hex():
                raise InvalidProof("malformed bundle proof: bundle_id is not the id of its transactions")
            commit = CommitProof.from_wire(_wire_unhex(d["commit_proof"]))
            _check_block_id(d["block_id"], commit)
            return cls(
                bundle,
                expect_int(d["height"], "height"),
                tuple(_location(x) for x in expect_list(d["locations"], "locations", max_len=MAX_MULTIPROOF_INDICES)),
                tuple(_chunk(c) for c in expect_list(d["chunks"], "chunks", max_len=MAX_MULTIPROOF_INDICES)),
                commit,
                MultiProof.from_json(d["leaves_proof"]),
            )
        except (KeyError, TypeError, ValueError, ConsensusError) as exc:
            raise InvalidProof(f"malformed bundle proof: {exc}") from None


# -- JSON helpers ---------------------------------------------------------------------------------

_SLICE_KEYS = frozenset({"rollup_id", "height", "transactions", "block_id", "commit_proof", "namespace_proof"})
_BUNDLE_KEYS = frozenset({"bundle_id", "transactions", "height", "locations", "chunks", "block_id",
                          "commit_proof", "leaves_proof"})


def _expect_keys(obj: Any, what: str, keys: frozenset[str]) -> dict[str, Any]:
    if not isinstance(obj, dict) or set(obj) != keys:
        raise InvalidProof(f"malformed {what}: expected an object with exactly the keys {sorted(keys)}")
    return obj


def _unhex(value: Any, what: str) -> bytes:
    """A non-empty lowercase hex string (as ``bytes.hex`` writes it) -> bytes; ValueError else."""
    if not isinstance(value, str) or not _PAYLOAD_HEX.fullmatch(value):
        raise ValueError(f"{what}: expected non-empty lowercase hex")
    return bytes.fromhex(value)


def _check_block_id(value: Any, commit: CommitProof) -> None:
    if not commit.headers:
        raise ValueError("commit proof: no headers")
    if value != commit.block_id.hex():
        raise ValueError("block_id is not the block of the commit proof")


def _tx_from_json(value: Any) -> Transaction:
    if not isinstance(value, dict) or set(value) != {"rollup_id", "payload"}:
        raise ValueError('a bundle transaction is {"rollup_id", "payload"}')
    return Transaction(expect_int(value["rollup_id"], "rollup_id", hi=2**32 - 1), _unhex(value["payload"], "payload"))


def _location(value: Any) -> tuple[int, int]:
    leaf, offset = expect_list(value, "location", length=2)
    return expect_int(leaf, "location.leaf", hi=MAX_LEAVES - 1), expect_int(offset, "location.offset", hi=CHUNK_TXS - 1)


def _chunk(value: Any) -> tuple[bytes, ...]:
    items = expect_list(value, "chunk", max_len=CHUNK_TXS)
    return tuple(_unhex(p, "chunk payload") for p in items)


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

