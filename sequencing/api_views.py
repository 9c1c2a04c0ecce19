"""Request parsing and response building for the HTTP API (no Starlette here, so the same code
serves tests and the CLI)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from consensus.commit_proof import CommitProof
from consensus.messages import Block

from .block_content import BlockPayload
from .config import Limits
from .nmt import NamespacedMerkleTree
from .proofs import BundleProof, SliceProof
from .transactions import Bundle, InvalidTransaction, Transaction

if TYPE_CHECKING:
    from .node import Node


HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def is_hex(text: str) -> bool:
    """Only hex digits, an even number of them (``bytes.fromhex`` would also take spaces)."""
    return len(text) % 2 == 0 and HEX_DIGITS.issuperset(text)


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def parse_item(entry: Any, limits: Limits) -> Transaction:
    """``{"rollup_id": int, "payload": hex}`` (or ``"data"``: UTF-8 text) -> a validated tx."""
    if not isinstance(entry, dict):
        raise ApiError(400, "invalid_transaction", 'expected {"rollup_id": int, "payload": "<hex>"}')
    unknown = set(entry) - {"rollup_id", "payload", "data"}
    if unknown:
        raise ApiError(400, "invalid_transaction", f"unknown fields {sorted(unknown)}")
    rollup_id = entry.get("rollup_id")
    if not isinstance(rollup_id, int) or isinstance(rollup_id, bool):
        raise ApiError(400, "invalid_transaction", "rollup_id must be an integer")
    if ("payload" in entry) == ("data" in entry):
        raise ApiError(400, "invalid_transaction", 'give exactly one of "payload" (hex) or "data" (text)')
    if "payload" in entry:
        raw = entry["payload"]
        if not isinstance(raw, str):
            raise ApiError(400, "invalid_transaction", "payload must be a hex string")
        if len(raw) > 2 * limits.max_tx_bytes + 2:
            raise InvalidTransaction(f"payload of {len(raw) // 2} bytes exceeds {limits.max_tx_bytes}")
        if not is_hex(raw):
            raise ApiError(400, "invalid_transaction", "payload is not valid hex (an even number of 0-9a-f)")
        payload = bytes.fromhex(raw)
    else:
        text = entry["data"]
        if not isinstance(text, str):
            raise ApiError(400, "invalid_transaction", "data must be a string")
        payload = text.encode()
    if not 0 <= rollup_id <= limits.max_rollup_id:
        raise InvalidTransaction(f"rollup_id {rollup_id} outside [0, {limits.max_rollup_id}]")
    tx = Transaction(rollup_id, payload)
    tx.validate(limits)
    return tx


def parse_items(entries: Any, limits: Limits, *, max_items: int) -> list[Transaction]:
    if not isinstance(entries, list):
        raise ApiError(400, "invalid_bundle", "transactions must be a list")
    if len(entries) > max_items:
        raise InvalidTransaction(f"{len(entries)} transactions exceed {max_items}")
    out = []
    for i, entry in enumerate(entries):
        try:
            out.append(parse_item(entry, limits))
        except (ApiError, InvalidTransaction) as exc:
            raise ApiError(400, "invalid_bundle", f"transaction {i}: {getattr(exc, 'detail', exc)}") from None
    return out


async def _stored(node: Node, height: int) -> tuple[Block, CommitProof, NamespacedMerkleTree] | None:
    """The committed block at ``height``, its commit proof and its namespaced Merkle tree."""
    if height < 1 or height > node.durable_height:
        return None
    storage = node.require_storage()
    stored = await node.storage_call(storage.block_at, height)
    if stored is None:
        return None
    tree = node.trees.get(height)
    if tree is None:
        leaves = await node.storage_call(storage.leaves_at, height)
        if leaves is None:
            return None
        tree = NamespacedMerkleTree(leaves)
        node.trees.put(height, tree)
    return stored[0], stored[1], tree


async def slice_proof(node: Node, rollup_id: int, height: int) -> SliceProof | None:
    found = await _stored(node, height)
    if found is None:
        return None
    _, commit, tree = found
    return SliceProof(rollup_id, height, tuple(tree.leaves_of(rollup_id)), commit,
                      tree.prove_namespace(rollup_id))


async def bundle_proof(node: Node, bundle_id: bytes) -> BundleProof | None:
    location = await node.storage_call(node.require_storage().bundle_location, bundle_id)
    if location is None:
        return None
    height, indices = location
    found = await _stored(node, height)
    if found is None:
        return None
    _, commit, tree = found
    txs = tuple(Transaction(*tree.leaf(i)) for i in indices)
    return BundleProof(Bundle(txs), height, tuple(indices), commit, tree.prove_leaves(indices))


async def block_view(node: Node, height: int) -> dict[str, Any] | None:
    found = await _stored(node, height)
    if found is None:
        return None
    block, commit, tree = found
    payload = BlockPayload.decode(block.payload)
    rollups: dict[str, int] = {}
    for namespace in tree.namespaces():
        rollups[str(namespace)] = len(tree.leaves_of(namespace))
    return {
        "height": block.height,
        "id": block.id.hex(),
        "round": block.round,
        "author": block.author,
        "parent_id": block.parent_id.hex(),
        "data_root": block.data_root.hex(),
        "qc": {"round": block.qc.round, "block_id": block.qc.block_id.hex(),
               "signers": list(block.qc.signers)},
        "commit_qc": {"round": commit.qc.round, "block_id": commit.qc.block_id.hex(),
                      "signers": list(commit.qc.signers)},
        "batches": [d.hex() for d in payload.batches],
        "evidence": [e.id.hex() for e in payload.evidence],
        "tx_count": len(tree),
        "rollups": rollups,
    }
