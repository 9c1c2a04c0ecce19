"""The OpenAPI 3.1 description of the public API (served at ``/openapi.json``).

``openapi_document(limits)`` fills in the replica's own limits (largest rollup id, payload size,
bundle and batch sizes), so the served document states exactly what that replica accepts;
``OPENAPI`` is the document for the default limits. ``tests/api/test_api_openapi.py`` walks the
Starlette routes and fails if a route is undocumented or a documented path has no route.
"""

from __future__ import annotations

from typing import Any

from ..config import Limits
from ..ids import ID_HEX_PATTERN
from ..rollup.chunks import CHUNK_TXS

MAX_REPLICA_ID = 1023
DASHBOARD_FILES = ("dashboard.js", "dashboard.css")  # sequencing/api/dashboard_static/, besides index.html
HEX64 = f"^{ID_HEX_PATTERN}$"  # what sequencing/ids.py accepts
LOWER_HEX64 = "^[0-9a-f]{64}$"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return _json(_ref("Error"), description, headers)


RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying",
                               "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
ALLOW = {"Allow": {"description": "the methods this path accepts", "schema": {"type": "string"}}}

BAD_REQUEST = _error("invalid parameter or body; `error` names the problem, `detail` explains it")
BUSY = _error("mempool full (`error` = `busy`): retry after `Retry-After` seconds", RETRY_AFTER)
STARTING = _error("the replica is still starting (`error` = `starting`)")
NOT_ALLOWED = _error("method not allowed on this path (`error` = `method_not_allowed`)", ALLOW)
NOT_FOUND = _error("not found (`error` = `not_found`)")
RATE_LIMITED = _error("too many requests from this client address (`error` = `rate_limited`): retry after "
                      "`Retry-After` seconds; malformed requests use up the allowance fastest", RETRY_AFTER)
BODY_TIMEOUT = _error("the request body did not arrive in time (`error` = `body_timeout`)")


def _get(op_id: str, summary: str, responses: dict[str, Any], parameters: list[dict[str, Any]] | None = None,
         tags: list[str] | None = None, description: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": op_id, "summary": summary, "tags": tags or ["query"],
                          "responses": {**responses, "405": NOT_ALLOWED, "429": RATE_LIMITED}}
    if parameters:
        op["parameters"] = parameters
    if description:
        op["description"] = description
    return op


def _post(op_id: str, summary: str, body: dict[str, Any], responses: dict[str, Any], limits: Limits,
          description: str | None = None) -> dict[str, Any]:
    too_large = _error(f"request body over {limits.api_max_body_bytes} bytes (`error` = `too_large`)")
    op = _get(op_id, summary, {"400": BAD_REQUEST, **responses, "408": BODY_TIMEOUT, "413": too_large},
              tags=["submit"], description=description)
    op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


BINARY_BATCH = (
    "The bulk path. With `Content-Type: application/msgpack` the body is one msgpack map "
    '`{"transactions": [entry, ...], "ids": bool}` where an entry is `[rollup_id, payload (bin)]` or an atomic '
    "bundle `[[rollup_id, payload], ...]`, or `{\"groups\": [[rollup_id, [payload, ...]], ...], \"ids\": bool}` "
    "(plain transactions grouped by rollup; the answer counts them in group order, flattened); "
    "the answer (200 and 503) is then msgpack too, the same BatchResult "
    "with ids as 32-byte bin (left out with `\"ids\": false`; a transaction's id is "
    '`digest("ordo/tx", [rollup_id, payload])`). Errors are JSON either way. See docs/PROTOCOL.md, "Binary '
    'batch submission".')


def _binary(op: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """Add the msgpack form (request and result) to the batch operation."""
    rollup = {"type": "integer", "minimum": 0, "maximum": limits.max_rollup_id}
    payload = {"type": "string", "contentEncoding": "binary", "description": "msgpack bin, 1..max_tx_bytes bytes"}
    tx = {"type": "array", "minItems": 2, "maxItems": 2, "items": False, "prefixItems": [rollup, payload]}
    entry = {"oneOf": [tx, {"type": "array", "minItems": 2, "maxItems": limits.max_bundle_txs, "items": tx}]}
    group = {"type": "array", "minItems": 2, "maxItems": 2, "items": False, "prefixItems": [
        rollup, {"type": "array", "minItems": 1, "maxItems": limits.submit_max_batch, "items": payload}]}
    ids = {"type": "boolean", "default": True}
    body = {"oneOf": [
        {"type": "object", "additionalProperties": False, "required": ["transactions"], "properties": {
            "transactions": {"type": "array", "maxItems": limits.submit_max_batch, "items": entry}, "ids": ids}},
        {"type": "object", "additionalProperties": False, "required": ["groups"], "properties": {
            "groups": {"type": "array", "maxItems": limits.submit_max_batch, "items": group}, "ids": ids}}]}
    op["requestBody"]["content"]["application/msgpack"] = {"schema": body}
    result = {"type": "object", "required": ["accepted", "duplicates", "rejected"],
              "description": "BatchResult in msgpack; `ids` (32-byte bin or nil per entry) absent when the "
                             'request said "ids": false',
              "properties": {"accepted": {"type": "integer", "minimum": 0},
                             "duplicates": {"type": "integer", "minimum": 0},
                             "rejected": {"type": "array", "items": {
                                 "type": "object", "required": ["index", "error"],
                                 "properties": {"index": {"type": "integer", "minimum": 0},
                                                "error": {"type": "string"}}}}}}
    for code in ("200", "503"):
        op["responses"][code]["content"]["application/msgpack"] = {"schema": result}
    return op


def _proof_schemas(id64: dict[str, Any]) -> dict[str, Any]:
    """The commit proof's wire form (consensus.commit_proof.CommitProof.to_wire(), bytes as hex)."""
    count = {"type": "integer", "minimum": 0}
    signature = {"type": "string", "pattern": "^[0-9a-f]{128}$", "description": "Ed25519 signature"}
    author = {"type": "integer", "minimum": 0, "maximum": MAX_REPLICA_ID}
    return {
        "BlockHeader": {
            "type": "array", "minItems": 7, "maxItems": 7, "items": False,
            "description": "[round, height, parent_id, parent_round, author, payload_hash, data_root]; the "
                           "block id is the digest of this list (PROTOCOL.md section 2)",
            "prefixItems": [count, count, id64, count, author, id64, id64]},
        "WireQC": {
            "type": "array", "minItems": 3, "maxItems": 3, "items": False,
            "description": "[round, block_id, [[voter, signature], ...]], voters ascending, a quorum of them",
            "prefixItems": [count, id64, {"type": "array", "items": {
                "type": "array", "minItems": 2, "maxItems": 2, "items": False,
                "prefixItems": [author, signature]}}]},
        "CommitProof": {
            "type": "array", "minItems": 2, "maxItems": 2, "items": False,
            "description": "[[header, ...], qc]: a parent chain of headers from the committed block (first) "
                           "whose last two headers have consecutive rounds, and a QC certifying the last "
                           "(the 2-chain rule). Verify with the committee's public keys "
                           "(consensus.commit_proof.verify_commit_proof).",
            "prefixItems": [{"type": "array", "minItems": 2, "maxItems": 4096, "items": _ref("BlockHeader")},
                            _ref("WireQC")]},
    }


def _schemas(limits: Limits) -> dict[str, Any]:
    hex_payload = {"type": "string", "minLength": 2, "maxLength": 2 * limits.max_tx_bytes,
                   "pattern": "^([0-9a-fA-F]{2})+$", "description": "the payload bytes as hex"}
    rollup_id = {"type": "integer", "minimum": 0, "maximum": limits.max_rollup_id}
    rejected = {"type": "array", "description": "the refused entries, by index", "items": {
        "type": "object", "required": ["index", "error"],
        "properties": {"index": {"type": "integer", "minimum": 0}, "error": {"type": "string"}}}}
    id64 = {"type": "string", "pattern": LOWER_HEX64}
    height = {"type": "integer", "minimum": 1}
    qc = {"type": "object", "required": ["round", "block_id", "signers"], "properties": {
        "round": {"type": "integer", "minimum": 0}, "block_id": id64,
        "signers": {"type": "array", "items": {"type": "integer", "minimum": 0}}}}
    nmt_node = {"type": "array", "description": "[min namespace, max namespace, digest hex]",
                "prefixItems": [{"type": "integer", "minimum": 0}, {"type": "integer", "minimum": 0},
                                {"type": "string", "pattern": LOWER_HEX64}],
                "items": False, "minItems": 3, "maxItems": 3}
    commit_proof = _ref("CommitProof")
    payload_hex = {"type": "string", "pattern": "^([0-9a-f]{2})+$", "description": "payload bytes, lowercase hex"}
    return {
        **_proof_schemas(id64),
        "Error": {"type": "object", "required": ["error", "detail"], "properties": {
            "error": {"type": "string", "description": "machine-readable code, e.g. invalid_json, "
                      "invalid_transaction, invalid_bundle, invalid_batch, invalid_parameter, too_large, "
                      "not_found, method_not_allowed, busy, starting"},
            "detail": {"type": "string", "description": "what is wrong, for a person"}}},
        "BatchError": {
            "type": "object", "required": ["error", "detail"],
            "description": "a batch refused whole; when entries break the TxSubmission schema, `rejected` "
                           "names every one of them",
            "properties": {"error": {"type": "string"}, "detail": {"type": "string"}, "rejected": rejected}},
        "SliceEvent": {
            "type": "object", "required": ["id", "event", "data"],
            "description": "one server-sent event of /v1/rollups/{rollup_id}/subscribe, as its fields: "
                           "`id: <height>`, `event: slice`, `data: <SliceProof as one line of JSON>`",
            "properties": {
                "id": {"type": "string", "pattern": "^[1-9][0-9]*$", "description": "the slice's height"},
                "event": {"const": "slice"},
                "data": {"type": "string", "contentMediaType": "application/json",
                         "contentSchema": _ref("SliceProof")}}},
        "TxSubmission": {
            "type": "object", "additionalProperties": False, "required": ["rollup_id"],
            "description": 'one transaction: exactly one of "payload" (hex) or "data" (UTF-8 text) '
                           f"of 1..{limits.max_tx_bytes} bytes",
            "properties": {"rollup_id": rollup_id, "payload": hex_payload,
                           "data": {"type": "string", "minLength": 1, "maxLength": limits.max_tx_bytes,
                                    "description": "the payload as UTF-8 text (at most max_tx_bytes "
                                                   "bytes once encoded; a lone surrogate such as \\udab0 "
                                                   "is refused)"}},
            "oneOf": [{"required": ["payload"]}, {"required": ["data"]}],
        },
        "BundleSubmission": {
            "type": "object", "additionalProperties": False, "required": ["transactions"],
            "properties": {"transactions": {
                "type": "array", "minItems": 2, "maxItems": limits.max_bundle_txs, "uniqueItems": True,
                "items": _ref("TxSubmission"),
                "description": "lands whole in one block, in this order, or not at all; no "
                               "transaction twice"}},
        },
        "BatchSubmission": {
            "type": "object", "additionalProperties": False, "required": ["transactions"],
            "properties": {"transactions": {
                "type": "array", "maxItems": limits.submit_max_batch, "items": _ref("TxSubmission"),
                "description": "independent transactions. An entry that breaks TxSubmission refuses the "
                               "whole batch (400, `rejected` names each such entry); an entry the schema "
                               "allows but the replica refuses (UTF-8 over max_tx_bytes, a lone surrogate, "
                               "mempool full) is reported in the result's `rejected` and does not fail the "
                               "others"}},
        },
        "Submitted": {"type": "object", "required": ["id", "status"], "properties": {
            "id": id64, "status": {"enum": ["pending", "duplicate"]}}},
        "BundleSubmitted": {"type": "object", "required": ["id", "tx_ids", "status"], "properties": {
            "id": id64, "tx_ids": {"type": "array", "items": id64},
            "status": {"enum": ["pending", "duplicate"]}}},
        "BatchResult": {
            "type": "object", "required": ["accepted", "duplicates", "ids", "rejected"],
            "properties": {
                "accepted": {"type": "integer", "minimum": 0, "description": "new transactions queued"},
                "duplicates": {"type": "integer", "minimum": 0},
                "ids": {"type": "array", "items": {"oneOf": [id64, {"type": "null"}]},
                        "description": "one per entry, in order; null for a rejected entry"},
                "rejected": rejected,
            },
        },
        "TxStatus": {
            "type": "object", "required": ["id", "status"],
            "properties": {
                "id": id64, "status": {"enum": ["committed", "pending", "unknown"]},
                "height": height, "rollup_id": rollup_id,
                "position": {"type": "integer", "minimum": 0, "description": "index in the rollup's slice"},
                "error": {"type": "string"}, "detail": {"type": "string"},
            },
            "description": "committed: with height, rollup_id and position; pending: in this replica's "
                           "mempool or batches; unknown (404): neither",
        },
        "BundleStatus": {
            "type": "object", "required": ["id", "status"],
            "properties": {"id": id64, "status": {"enum": ["committed", "pending", "unknown"]},
                           "height": height, "proof": _ref("BundleProof"),
                           "error": {"type": "string"}, "detail": {"type": "string"}},
        },
        "NamespaceProof": {"type": "object", "required": ["namespace", "total", "start", "end", "nodes"],
                           "properties": {"namespace": {"type": "integer", "minimum": 0},
                                          "total": {"type": "integer", "minimum": 0},
                                          "start": {"type": "integer", "minimum": 0},
                                          "end": {"type": "integer", "minimum": 0},
                                          "nodes": {"type": "array", "items": nmt_node}}},
        "MultiProof": {"type": "object", "required": ["total", "indices", "nodes"],
                       "properties": {"total": {"type": "integer", "minimum": 0},
                                      "indices": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                                      "nodes": {"type": "array", "items": nmt_node}}},
        "SliceProof": {
            "type": "object",
            "required": ["rollup_id", "height", "transactions", "block_id", "commit_proof", "namespace_proof"],
            "description": "one rollup's transactions at one height, with an inclusion-and-completeness "
                           "proof over their chunks (an absence proof when empty); PROTOCOL.md section 13.5, "
                           "sequencing.rollup.proofs.SliceProof.from_json",
            "properties": {
                "rollup_id": rollup_id, "height": height,
                "transactions": {"type": "array", "items": payload_hex},
                "block_id": id64, "commit_proof": commit_proof, "namespace_proof": _ref("NamespaceProof"),
            },
        },
        "BundleProof": {
            "type": "object",
            "required": ["bundle_id", "transactions", "height", "locations", "chunks", "block_id",
                         "commit_proof", "leaves_proof"],
            "description": "every transaction of the bundle is in a chunk (NMT leaf) of one committed block; "
                           "PROTOCOL.md section 13.5, sequencing.rollup.proofs.BundleProof.from_json",
            "properties": {
                "bundle_id": id64,
                "transactions": {"type": "array", "items": {
                    "type": "object", "required": ["rollup_id", "payload"],
                    "properties": {"rollup_id": rollup_id, "payload": payload_hex}}},
                "height": height,
                "locations": {"type": "array", "description": "per transaction, in bundle order: "
                              "[leaf index, offset in that leaf's chunk]", "items": {
                                  "type": "array", "minItems": 2, "maxItems": 2,
                                  "items": {"type": "integer", "minimum": 0}}},
                "chunks": {"type": "array", "description": "the payloads of each proven leaf, in the order "
                           "of leaves_proof.indices", "items": {
                               "type": "array", "minItems": 1, "maxItems": CHUNK_TXS, "items": payload_hex}},
                "block_id": id64, "commit_proof": commit_proof, "leaves_proof": _ref("MultiProof"),
            },
        },
        "Block": {
            "type": "object",
            "required": ["height", "id", "round", "author", "parent_id", "data_root", "qc", "commit_qc",
                         "batches", "evidence", "tx_count", "chunk_count", "rollups"],
            "properties": {
                "height": height, "id": id64, "round": {"type": "integer", "minimum": 1},
                "author": {"type": "integer", "minimum": 0}, "parent_id": id64, "data_root": id64,
                "qc": qc, "commit_qc": qc,
                "batches": {"type": "array", "items": id64, "description": "batch digests, in order"},
                "evidence": {"type": "array", "items": id64, "description": "evidence ids committed here"},
                "tx_count": {"type": "integer", "minimum": 0, "description": "transactions in this block"},
                "chunk_count": {"type": "integer", "minimum": 0,
                                "description": "NMT leaves: each rollup's slice cut into chunks of up to "
                                               "CHUNK_TXS transactions (PROTOCOL.md section 13.1)"},
                "rollups": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1},
                            "description": "rollup id (as a string) -> transactions in this block"},
            },
        },
        "Rollups": {
            "type": "object", "description": "rollup id (as a string) -> committed count and sub-log digest",
            "additionalProperties": {"type": "object", "required": ["txs", "digest"], "properties": {
                "txs": {"type": "integer", "minimum": 0}, "digest": id64}},
        },
        "EvidenceRecord": {
            "type": "object", "required": ["id", "kind", "offender", "round", "committed_height", "evidence"],
            "properties": {
                "id": id64, "kind": {"enum": ["double_vote", "double_proposal"]},
                "offender": {"type": "integer", "minimum": 0}, "round": {"type": "integer", "minimum": 0},
                "committed_height": {"oneOf": [height, {"type": "null"}],
                                     "description": "the block that carries it, null while pending"},
                "evidence": {"type": "string", "pattern": "^([0-9a-f]{2})+$",
                             "description": "consensus.messages.Evidence.encode() as hex; verify offline "
                                            "with `ordo evidence verify`"},
            },
        },
        "Status": {
            "type": "object",
            "required": ["id", "chain_id", "committee", "round", "leader", "committed_height", "consensus_height",
                         "last_block_hash", "txs_committed", "high_qc_round", "peers_connected",
                         "mempool_txs", "pending_batches", "pending_evidence", "evidence", "recovering",
                         "syncing", "started", "peers_inbound", "peers_outbound"],
            "properties": {
                "id": {"type": "integer", "minimum": 0}, "chain_id": {"type": "string"},
                "committee": {"type": "array", "items": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                              "description": "the committee's Ed25519 public keys (hex), in replica-id order: "
                                             "what every proof is checked against (PROTOCOL.md section 1)"},
                "round": {"type": "integer", "minimum": 0},
                "leader": {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]},
                "committed_height": {"type": "integer", "minimum": 0,
                                     "description": "durably committed (what the API serves)"},
                "consensus_height": {"type": "integer", "minimum": 0},
                "last_block_hash": {"oneOf": [id64, {"type": "null"}]},
                "txs_committed": {"type": "integer", "minimum": 0},
                "high_qc_round": {"type": "integer", "minimum": 0},
                "peers_connected": {"type": "array", "items": {"type": "integer", "minimum": 0},
                                    "description": "peers linked both ways (inbound and outbound authenticated)"},
                "peers_inbound": {"type": "array", "items": {"type": "integer", "minimum": 0},
                                  "description": "peers holding an authenticated connection to this replica"},
                "peers_outbound": {"type": "array", "items": {"type": "integer", "minimum": 0},
                                   "description": "peers this replica holds an authenticated connection to"},
                "mempool_txs": {"type": "integer", "minimum": 0},
                "pending_batches": {"type": "integer", "minimum": 0},
                "pending_evidence": {"type": "integer", "minimum": 0},
                "evidence": {"type": "integer", "minimum": 0},
                "recovering": {"type": "boolean"}, "syncing": {"type": "boolean"}, "started": {"type": "boolean"},
            },
        },
    }


def _path_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def _dashboard_paths() -> dict[str, Any]:
    """The operators' dashboard (sequencing/api/dashboard.py; the view: docs/OPERATIONS.md)."""
    tags = ["dashboard"]
    return {
        "/dashboard": {"get": _get(
            "dashboard", "the live dashboard page (HTML; its files ship in the package)",
            {"200": {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}}},
            tags=tags)},
        "/dashboard/static/{name}": {"get": _get(
            "dashboardStatic", "a static file of the dashboard page (script, style sheet)",
            {"200": {"description": "the file", "content": {
                "text/javascript": {"schema": {"type": "string"}}, "text/css": {"schema": {"type": "string"}}}},
             "404": NOT_FOUND},
            [_path_param("name", {"type": "string", "enum": list(DASHBOARD_FILES)}, "the file's name")],
            tags=tags)},
        "/v1/dashboard/snapshot": {"get": _get(
            "dashboardSnapshot", "the dashboard's whole view as JSON (committee, blocks, throughput, rollups, "
            "evidence, fault rules)", {"200": _json({"type": "object"}, "the view")}, tags=tags)},
        "/v1/dashboard/events": {"get": _get(
            "dashboardEvents", "server-sent events for the dashboard: `snapshot` first, then `commit` and "
            "`status` (every second, the heartbeat)",
            {"200": {"description": "an endless text/event-stream; each event's data is JSON",
                     "content": {"text/event-stream": {"schema": {"type": "string"}}}}},
            tags=tags)},
    }


def openapi_document(limits: Limits | None = None) -> dict[str, Any]:
    """The document for a replica with these limits (the defaults when None)."""
    limits = limits or Limits()
    rollup_param = _path_param("rollup_id", {"type": "integer", "minimum": 0, "maximum": limits.max_rollup_id},
                               "the rollup (namespace)")
    height_param = _path_param("height", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                               "a block height (>= 1)")
    tx_id_param = _path_param("tx_id", {"type": "string", "pattern": HEX64}, "transaction id, 64 hex digits")
    bundle_id_param = _path_param("bundle_id", {"type": "string", "pattern": HEX64}, "bundle id, 64 hex digits")
    ok_tx = _json(_ref("Submitted"), "a duplicate of a transaction seen recently (`status` = `duplicate`)")
    ok_bundle = _json(_ref("BundleSubmitted"), "a duplicate of a bundle seen recently")
    paths: dict[str, Any] = {
        "/status": {"get": _get("status", "the replica's consensus and mempool state",
                                {"200": _json(_ref("Status"), "status")}, tags=["operations"])},
        "/v1/transactions": {"post": _post(
            "submitTransaction", "submit one transaction", _ref("TxSubmission"),
            {"202": _json(_ref("Submitted"), "queued (`status` = `pending`)"), "200": ok_tx, "503": BUSY},
            limits, description="The id is a digest of (rollup_id, payload): resubmitting is deduplicated. A payload "
                        "over max_tx_bytes or a rollup id out of range is 400 `invalid_transaction`.")},
        "/v1/transactions/batch": {"post": _binary(_post(
            "submitTransactions", "submit many independent transactions in one request (bulk path)",
            _ref("BatchSubmission"),
            {"200": _json(_ref("BatchResult"), "per-entry result; `Retry-After` is set when the mempool "
                          "filled part-way (later entries are rejected as busy)", RETRY_AFTER),
             "503": _json(_ref("BatchResult"), "mempool full before any entry was taken", RETRY_AFTER),
             "400": _json(_ref("BatchError"), "not a batch, or entries that break the schema (`error` = "
                          "`invalid_batch`; `rejected` names them), or a body that is not msgpack "
                          "(`invalid_msgpack`)")},
            limits, description=BINARY_BATCH), limits)},
        "/v1/transactions/{tx_id}": {"get": _get(
            "transactionStatus", "where a transaction is: committed (height, rollup, position) or pending",
            {"200": _json(_ref("TxStatus"), "committed or pending"),
             "404": _json(_ref("TxStatus"), "unknown to this replica (`status` = `unknown`)"),
             "400": BAD_REQUEST, "503": STARTING}, [tx_id_param])},
        "/v1/bundles": {"post": _post(
            "submitBundle", "submit an atomic bundle (2..max_bundle_txs transactions, any rollups)",
            _ref("BundleSubmission"),
            {"202": _json(_ref("BundleSubmitted"), "queued"), "200": ok_bundle, "503": BUSY,
             "409": _error("a transaction of this bundle was already submitted on its own or in another "
                           "bundle (`error` = `conflict`): a bundle must carry new transactions")},
            limits, description="All transactions land in the same block, in order, or none does.")},
        "/v1/bundles/{bundle_id}": {"get": _get(
            "bundleStatus", "a bundle's state; once committed, with a bundle proof",
            {"200": _json(_ref("BundleStatus"), "committed (with `proof`) or pending"),
             "404": _json(_ref("BundleStatus"), "unknown to this replica"),
             "400": BAD_REQUEST, "503": STARTING}, [bundle_id_param])},
        "/v1/blocks/{height}": {"get": _get(
            "block", "a committed block's header, certificates and per-rollup counts",
            {"200": _json(_ref("Block"), "the block"), "400": BAD_REQUEST,
             "404": _error("no committed block at this height yet"), "503": STARTING}, [height_param])},
        "/v1/rollups": {"get": _get(
            "rollups", "every rollup seen so far: committed transactions and running sub-log digest",
            {"200": _json(_ref("Rollups"), "summary"), "503": STARTING})},
        "/v1/rollups/{rollup_id}/slices/{height}": {"get": _get(
            "rollupSlice", "one rollup's transactions at one height, with a proof",
            {"200": _json(_ref("SliceProof"), "the slice (empty, with an absence proof, if the rollup has "
                          "nothing at this height)"),
             "400": BAD_REQUEST, "404": _error("height not committed yet"), "503": STARTING},
            [rollup_param, height_param])},
        "/v1/rollups/{rollup_id}/subscribe": {"get": _get(
            "subscribe", "server-sent events: one rollup's sub-log, one event per committed height",
            {"200": {"description": "an endless text/event-stream. Each event: `id: <height>`, "
                                    "`event: slice`, `data: <SliceProof JSON>`; comment lines are "
                                    "keep-alives. Reconnect with `Last-Event-ID` to continue at the "
                                    "next height with no gap and no duplicate.",
                     "content": {"text/event-stream": {"schema": {
                         "type": "string", "contentMediaType": "text/event-stream",
                         "description": "a stream of SliceEvent (each event's `data` is a SliceProof); "
                                        "lines starting with `:` are comments (keep-alives), the first "
                                        "event sets `retry: 1000`",
                         "x-event": _ref("SliceEvent")}}}},
             "400": BAD_REQUEST, "503": STARTING},
            [rollup_param,
             {"name": "from", "in": "query", "required": False,
              "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
              "description": "first height (default: the current committed height)"},
             {"name": "skip_empty", "in": "query", "required": False,
              "schema": {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]},
              "description": "send no event for heights where the rollup has nothing (default false)"},
             {"name": "Last-Event-ID", "in": "header", "required": False,
              "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
              "description": "the last height received; overrides `from` (continues at the next height)"}],
            tags=["subscribe"])},
        "/v1/evidence": {"get": _get(
            "evidence", "equivocation evidence this replica recorded (pending and committed)",
            {"200": _json({"type": "array", "items": _ref("EvidenceRecord")}, "evidence, by round"),
             "400": BAD_REQUEST, "503": STARTING},
            [{"name": "offender", "in": "query", "required": False,
              "schema": {"type": "integer", "minimum": 0, "maximum": MAX_REPLICA_ID},
              "description": "only evidence against this replica"},
             {"name": "id", "in": "query", "required": False, "schema": {"type": "string", "pattern": HEX64},
              "description": "only the record with this evidence id (a list of one, or empty): what `ordo "
                             "evidence verify` reads"}])},
        **_dashboard_paths(),
        "/metrics": {"get": _get(
            "metrics", "Prometheus metrics (text exposition format)",
            {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}},
            tags=["operations"])},
        "/openapi.json": {"get": _get(
            "openapi", "this document", {"200": _json({"type": "object"}, "OpenAPI 3.1")},
            tags=["operations"])},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ordo",
            "version": "0.1.0",
            "description": "The public HTTP API of one ordo replica: submit transactions and atomic "
                           "bundles, read per-rollup slices with proofs checkable against the committee's "
                           "public keys, follow a rollup's sub-log, and inspect evidence and metrics. "
                           'Every error is JSON {"error": code, "detail": text}. Unknown paths are 404 '
                           "`not_found`; a method a path does not take is 405 `method_not_allowed`. Each client "
                           "address has a request allowance (429 `rate_limited` with `Retry-After` beyond "
                           "it; malformed requests use it up fastest) and a cap on open connections.",
        },
        "tags": [{"name": "submit"}, {"name": "query"}, {"name": "subscribe"}, {"name": "operations"},
                 {"name": "dashboard"}],
        "paths": paths,
        "components": {"schemas": _schemas(limits)},
    }


OPENAPI: dict[str, Any] = openapi_document()
