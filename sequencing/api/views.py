"""Request-body parsing and response documents for the HTTP API: pure functions (no Starlette,
no replica), so tests call them directly."""

from __future__ import annotations

from typing import Any

from consensus.commit_proof import CommitProof
from consensus.messages import Block

from ..config import Limits
from ..ids import is_hex
from ..rollup.block_content import BlockPayload
from ..rollup.block_tree import BlockTree
from ..rollup.transactions import InvalidTransaction, Transaction


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str, *, headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.headers, self.extra = headers, extra


class SchemaViolation(ApiError):
    """An entry that breaks the OpenAPI schema (TxSubmission); the batch endpoint refuses the whole
    request for one, while entries the schema allows but the replica refuses are per-entry errors."""

    def __init__(self, detail: str) -> None:
        super().__init__(400, "invalid_transaction", detail)


def _rollup_id(entry: dict[str, Any], limits: Limits) -> int:
    rollup_id = entry.get("rollup_id")
    if isinstance(rollup_id, float) and rollup_id.is_integer():  # JSON Schema: 1169.0 is an integer
        rollup_id = int(rollup_id)
    if not isinstance(rollup_id, int) or isinstance(rollup_id, bool):
        raise SchemaViolation("rollup_id must be an integer")
    if not 0 <= rollup_id <= limits.max_rollup_id:
        raise SchemaViolation(f"rollup_id {rollup_id} outside [0, {limits.max_rollup_id}]")
    return rollup_id


def _payload(entry: dict[str, Any], limits: Limits) -> bytes:
    if ("payload" in entry) == ("data" in entry):
        raise SchemaViolation('give exactly one of "payload" (hex) or "data" (text)')
    if "payload" in entry:
        raw = entry["payload"]
        if not isinstance(raw, str):
            raise SchemaViolation("payload must be a hex string")
        if not raw:
            raise SchemaViolation("payload must not be empty")
        if len(raw) > 2 * limits.max_tx_bytes:
            raise SchemaViolation(f"payload of {len(raw) // 2} bytes exceeds {limits.max_tx_bytes}")
        if not is_hex(raw):
            raise SchemaViolation("payload is not valid hex (an even number of 0-9a-f)")
        return bytes.fromhex(raw)
    text = entry["data"]
    if not isinstance(text, str):
        raise SchemaViolation("data must be a string")
    if not text:
        raise SchemaViolation("data must not be empty")
    if len(text) > limits.max_tx_bytes:
        raise SchemaViolation(f"data of {len(text)} characters exceeds {limits.max_tx_bytes} bytes")
    try:
        return text.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate such as "\udab0" is valid JSON, not text
        raise ApiError(400, "invalid_transaction", f"data is not valid Unicode: {exc.reason} at "
                       f"character {exc.start} ({text[exc.start:exc.end]!r})") from None


def parse_item(entry: Any, limits: Limits) -> Transaction:
    """``{"rollup_id": int, "payload": hex}`` (or ``"data"``: UTF-8 text) -> a validated tx.
    Raises SchemaViolation for what the OpenAPI schema forbids, else ApiError / InvalidTransaction."""
    if not isinstance(entry, dict):
        raise SchemaViolation('expected {"rollup_id": int, "payload": "<hex>"}')
    unknown = set(entry) - {"rollup_id", "payload", "data"}
    if unknown:
        raise SchemaViolation(f"unknown fields {sorted(unknown)}")
    rollup_id = _rollup_id(entry, limits)
    tx = Transaction(rollup_id, _payload(entry, limits))
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


def parse_batch(body: Any, limits: Limits) -> list[Transaction | str]:
    """The entries of a batch submission: a transaction, or why the replica refuses that entry.
    An entry the schema forbids refuses the whole batch (400 ``invalid_batch``, with ``rejected``
    naming every such entry)."""
    if not isinstance(body, dict) or set(body) != {"transactions"}:
        raise ApiError(400, "invalid_batch", 'expected {"transactions": [...]} and no other field')
    raw = body["transactions"]
    if not isinstance(raw, list) or len(raw) > limits.submit_max_batch:
        raise ApiError(400, "invalid_batch", f"transactions must be a list of at most {limits.submit_max_batch}")
    out: list[Transaction | str] = []
    violations: list[dict[str, Any]] = []
    for index, entry in enumerate(raw):
        try:
            out.append(parse_item(entry, limits))
        except SchemaViolation as exc:
            violations.append({"index": index, "error": exc.detail})
        except (ApiError, InvalidTransaction) as exc:
            out.append(str(getattr(exc, "detail", exc)))
    if violations:
        first = violations[0]
        raise ApiError(400, "invalid_batch", f"{len(violations)} entries do not match the schema (TxSubmission); "
                       f"entry {first['index']}: {first['error']}", extra={"rejected": violations})
    return out


def block_json(block: Block, commit: CommitProof, tree: BlockTree) -> dict[str, Any]:
    """The /v1/blocks/{height} document of a committed block: ``tx_count`` and ``rollups`` count
    transactions, ``chunk_count`` the NMT leaves (chunks of slices)."""
    payload = BlockPayload.decode(block.payload)
    rollups = {str(rid): len(payloads) for rid, payloads in tree.slices}
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
        "tx_count": tree.tx_count,
        "chunk_count": tree.chunk_count,
        "rollups": rollups,
    }
