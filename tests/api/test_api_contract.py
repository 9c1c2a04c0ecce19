"""The API and its OpenAPI document agree (issue 8, the schemathesis findings): integral floats are
integers, GET on the batch path is 405, a bundle repeating a submitted transaction is a documented
409, a batch entry that breaks the schema refuses the batch (400, per entry), the SSE event and the
commit proof have schemas, served bundle, slice and block documents match theirs, and a lone
surrogate is a 400 naming the entry, never a 500."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import jsonschema_rs  # installed with schemathesis (test extras)
import pytest
import trio

from sequencing.api.openapi import OPENAPI
from sequencing.rollup.chunks import CHUNK_TXS
from sequencing.rollup.transactions import Transaction

from .apiutil import fresh_rollup

TX, BUNDLE, BATCH = "/v1/transactions", "/v1/bundles", "/v1/transactions/batch"
SURROGATE = '"\\udab0"'  # JSON text for a lone UTF-16 surrogate: valid JSON, not valid Unicode


def fresh(n: int = 8) -> str:
    return os.urandom(n).hex()


async def post_raw(http: httpx.AsyncClient, path: str, text: str) -> httpx.Response:
    return await http.post(path, content=text.encode(), headers={"content-type": "application/json"})


def schema_validator(name: str) -> jsonschema_rs.Draft202012Validator:
    return jsonschema_rs.Draft202012Validator({"$ref": f"#/components/schemas/{name}", **OPENAPI})


async def test_a_lone_surrogate_is_a_400_naming_the_entry(http: httpx.AsyncClient) -> None:
    single = await post_raw(http, TX, f'{{"rollup_id": 1, "data": {SURROGATE}}}')
    assert single.status_code == 400, single.text
    assert single.json()["error"] == "invalid_transaction" and "surrogate" in single.json()["detail"]

    good = f'{{"rollup_id": 1, "payload": "{fresh()}"}}'
    bundle = await post_raw(http, BUNDLE, f'{{"transactions": [{good}, {{"rollup_id": 2, "data": {SURROGATE}}}]}}')
    assert bundle.status_code == 400, bundle.text
    assert bundle.json()["error"] == "invalid_bundle" and "transaction 1" in bundle.json()["detail"]

    batch = await post_raw(http, BATCH, f'{{"transactions": [{good}, {{"rollup_id": 2, "data": {SURROGATE}}}]}}')
    assert batch.status_code == 200, batch.text
    result = batch.json()
    assert result["accepted"] == 1 and result["ids"][1] is None
    assert [r["index"] for r in result["rejected"]] == [1] and "surrogate" in result["rejected"][0]["error"]

    key = await post_raw(http, TX, f'{{"rollup_id": 1, "payload": "00", {SURROGATE}: 1}}')
    assert key.status_code == 400 and key.json()["error"] == "invalid_transaction"


@pytest.mark.parametrize("path", [TX, BUNDLE, BATCH])
async def test_an_integral_float_rollup_id_is_an_integer(http: httpx.AsyncClient, path: str) -> None:
    rollup = fresh_rollup()
    entries = [{"rollup_id": float(rollup), "payload": fresh()}, {"rollup_id": float(rollup), "payload": fresh()}]
    body: Any = entries[0] if path == TX else {"transactions": entries}
    response = await http.post(path, json=body)
    assert response.status_code in (200, 202), response.text
    expected = Transaction(rollup, bytes.fromhex(entries[0]["payload"])).id.hex()
    got = response.json()
    assert expected in (got.get("id"), *got.get("tx_ids", ()), *got.get("ids", ()))
    for bad in ("1.5", "1e400", "NaN"):
        refused = await post_raw(http, TX, f'{{"rollup_id": {bad}, "payload": "00"}}')
        assert refused.status_code == 400, (bad, refused.text)


async def test_integral_decimals_in_paths_and_queries_are_integers(http: httpx.AsyncClient) -> None:
    assert (await http.get("/v1/rollups/1.0/slices/1")).json()["rollup_id"] == 1
    assert (await http.get("/v1/blocks/1.00")).json()["height"] == 1
    assert (await http.get("/v1/evidence?offender=0.0")).status_code == 200
    for bad in ("1.5", "1.", "1e0", ".0"):
        assert (await http.get(f"/v1/blocks/{bad}")).status_code == 400, bad


async def test_other_methods_on_the_batch_path_are_405(http: httpx.AsyncClient) -> None:
    for method in ("GET", "HEAD", "PUT", "DELETE"):
        response = await http.request(method, BATCH)
        assert response.status_code == 405, (method, response.status_code)
        assert "POST" in response.headers["allow"]
        if method != "HEAD":
            assert response.json()["error"] == "method_not_allowed"


async def test_a_bundle_repeating_a_submitted_transaction_is_a_409(http: httpx.AsyncClient) -> None:
    alone = {"rollup_id": 5, "payload": fresh()}
    assert (await http.post(TX, json=alone)).status_code == 202
    response = await http.post(BUNDLE, json={"transactions": [{"rollup_id": 6, "payload": fresh()}, alone]})
    assert response.status_code == 409, response.text
    assert response.json()["error"] == "conflict" and "already submitted" in response.json()["detail"]
    assert "409" in OPENAPI["paths"][BUNDLE]["post"]["responses"]


async def test_a_batch_entry_breaking_the_schema_refuses_the_batch(http: httpx.AsyncClient) -> None:
    good = {"rollup_id": 7, "payload": fresh()}
    entries = [good, {"rollup_id": 7, "payload": "00", "extra": 1}, {"rollup_id": 7, "payload": "zz"},
               "not an object", {"rollup_id": -1, "payload": "00"}, {"rollup_id": 7, "payload": ""}]
    response = await http.post(BATCH, json={"transactions": entries})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_batch" and "entry 1: unknown fields ['extra']" in body["detail"]
    assert [r["index"] for r in body["rejected"]] == [1, 2, 3, 4, 5]
    schema_validator("BatchError").validate(body)
    tx_id = Transaction(7, bytes.fromhex(good["payload"])).id.hex()
    assert (await http.get(f"{TX}/{tx_id}")).status_code == 404, "nothing of a refused batch is taken"
    # and the document says so
    batch_op = OPENAPI["paths"][BATCH]["post"]
    assert batch_op["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("BatchError")
    item = OPENAPI["components"]["schemas"]["TxSubmission"]
    assert item["additionalProperties"] is False
    for entry in entries[1:]:
        assert not schema_validator("TxSubmission").is_valid(entry), entry


def test_the_event_stream_schema_describes_its_events() -> None:
    content = OPENAPI["paths"]["/v1/rollups/{rollup_id}/subscribe"]["get"]["responses"]["200"]["content"]
    stream = content["text/event-stream"]["schema"]
    assert stream["contentMediaType"] == "text/event-stream"
    assert stream["x-event"]["$ref"].endswith("/SliceEvent")
    event = OPENAPI["components"]["schemas"]["SliceEvent"]
    assert event["properties"]["event"] == {"const": "slice"}
    assert event["properties"]["data"]["contentSchema"]["$ref"].endswith("/SliceProof")


async def test_commit_proofs_match_their_schema(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/rollups/1/slices/1")
    assert response.status_code == 200
    proof = response.json()["commit_proof"]
    validator = schema_validator("CommitProof")
    validator.validate(proof)
    headers, qc = proof
    assert len(headers) >= 2 and len(qc[2]) >= 3
    broken = [[h[:6] for h in headers], qc]
    assert not validator.is_valid(broken), "a header has seven fields"
    assert not validator.is_valid([headers, [qc[0], qc[1], [[0, "ab"]]]]), "a signature is 64 bytes"
    assert OPENAPI["components"]["schemas"]["SliceProof"]["properties"]["commit_proof"]["$ref"].endswith(
        "/CommitProof")


def test_every_error_answer_of_the_document_is_json() -> None:
    for path, item in OPENAPI["paths"].items():
        for method, op in item.items():
            for code, response in op["responses"].items():
                if code.startswith(("4", "5")):
                    assert "application/json" in response["content"], (path, method, code)
    assert json.dumps(OPENAPI)


async def test_bundle_slice_and_block_responses_match_their_schemas(http: httpx.AsyncClient) -> None:
    """The chunked proof forms (PROTOCOL.md 13.5) and the block view's counts, as served."""
    rollup = fresh_rollup()
    legs = [{"rollup_id": rollup, "payload": fresh()}, {"rollup_id": rollup, "payload": fresh()},
            {"rollup_id": rollup + 1, "payload": fresh()}]
    created = await http.post(BUNDLE, json={"transactions": legs})
    assert created.status_code == 202, created.text
    bundle_id = created.json()["id"]
    with trio.fail_after(30):  # polling a real cluster until the bundle commits
        while (body := (await http.get(f"{BUNDLE}/{bundle_id}")).json())["status"] != "committed":
            await trio.sleep(0.05)
    schema_validator("BundleStatus").validate(body)
    proof = body["proof"]
    assert len(proof["locations"]) == 3 and len(proof["chunks"]) == len(proof["leaves_proof"]["indices"])
    height = body["height"]
    block = (await http.get(f"/v1/blocks/{height}")).json()
    schema_validator("Block").validate(block)
    assert block["tx_count"] == sum(block["rollups"].values()) >= 3
    assert len(block["rollups"]) <= block["chunk_count"] <= block["tx_count"]
    assert block["rollups"][str(rollup)] >= 2
    slice_ = (await http.get(f"/v1/rollups/{rollup}/slices/{height}")).json()
    schema_validator("SliceProof").validate(slice_)
    chunks = slice_["namespace_proof"]["end"] - slice_["namespace_proof"]["start"]
    assert chunks == -(-len(slice_["transactions"]) // CHUNK_TXS)
    invalid = {**proof, "locations": [[0], *proof["locations"][1:]]}
    assert not schema_validator("BundleProof").is_valid(invalid)
