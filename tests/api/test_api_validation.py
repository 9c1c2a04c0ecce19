"""Every kind of bad request gets the right 4xx and a JSON body {"error", "detail"} that says what
is wrong — never a 5xx, never a hang."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from sequencing.api.http_util import MAX_BODY
from sequencing.config import Limits

LIMITS = Limits()
TX = "/v1/transactions"
BUNDLE = "/v1/bundles"
BATCH = "/v1/transactions/batch"
OK_ID = "ab" * 32


def tx(rollup_id: Any = 1, payload: Any = "00", **extra: Any) -> dict[str, Any]:
    return {"rollup_id": rollup_id, "payload": payload, **extra}


def many(n: int) -> list[dict[str, Any]]:
    return [tx(1, i.to_bytes(4, "big").hex()) for i in range(n)]


# (method, path, body: bytes | JSON | None, status, error code, words the detail must contain)
CASES: list[tuple[str, str, Any, int, str, str]] = [
    # malformed JSON
    ("POST", TX, b"{not json", 400, "invalid_json", "not JSON"),
    ("POST", TX, b"", 400, "invalid_json", "not JSON"),
    ("POST", TX, b"\xff\xfe\xfa", 400, "invalid_json", "not JSON"),
    ("POST", TX, b"[" * 100_000, 400, "invalid_json", "nested"),  # was a 500 (RecursionError)
    ("POST", TX, b"9" * 5000, 400, "invalid_json", "digits"),  # was a 500 (int digit limit)
    ("POST", BUNDLE, b"{", 400, "invalid_json", "not JSON"),
    ("POST", BATCH, b"nope", 400, "invalid_json", "not JSON"),
    # wrong types
    ("POST", TX, [], 400, "invalid_transaction", "expected"),
    ("POST", TX, "text", 400, "invalid_transaction", "expected"),
    ("POST", TX, tx("1"), 400, "invalid_transaction", "rollup_id must be an integer"),
    ("POST", TX, tx(True), 400, "invalid_transaction", "rollup_id must be an integer"),
    ("POST", TX, tx(1.5), 400, "invalid_transaction", "rollup_id must be an integer"),
    ("POST", TX, tx(None), 400, "invalid_transaction", "rollup_id must be an integer"),
    ("POST", TX, {"payload": "00"}, 400, "invalid_transaction", "rollup_id"),
    ("POST", TX, tx(1, 1234), 400, "invalid_transaction", "hex string"),
    ("POST", TX, {"rollup_id": 1, "data": 5}, 400, "invalid_transaction", "data must be a string"),
    # unknown / conflicting fields
    ("POST", TX, tx(1, "00", extra=1), 400, "invalid_transaction", "unknown fields ['extra']"),
    ("POST", TX, tx(1, "00", data="x"), 400, "invalid_transaction", "exactly one"),
    ("POST", TX, {"rollup_id": 1}, 400, "invalid_transaction", "exactly one"),
    # bad hex, empty and too large payloads
    ("POST", TX, tx(1, "zz"), 400, "invalid_transaction", "hex"),
    ("POST", TX, tx(1, "abc"), 400, "invalid_transaction", "hex"),
    ("POST", TX, tx(1, "ab cd"), 400, "invalid_transaction", "hex"),
    ("POST", TX, tx(1, ""), 400, "invalid_transaction", "empty"),
    ("POST", TX, {"rollup_id": 1, "data": ""}, 400, "invalid_transaction", "empty"),
    ("POST", TX, tx(1, "00" * (LIMITS.max_tx_bytes + 1)), 400, "invalid_transaction", "exceeds"),
    ("POST", TX, {"rollup_id": 1, "data": "é" * LIMITS.max_tx_bytes}, 400, "invalid_transaction", "exceeds"),
    # rollup id out of range
    ("POST", TX, tx(-1), 400, "invalid_transaction", "outside"),
    ("POST", TX, tx(LIMITS.max_rollup_id + 1), 400, "invalid_transaction", "outside"),
    ("POST", TX, tx(10**40), 400, "invalid_transaction", "outside"),
    # bundles
    ("POST", BUNDLE, {"transactions": [tx(1, "01")]}, 400, "invalid_transaction", "at least two"),
    ("POST", BUNDLE, {"transactions": []}, 400, "invalid_transaction", "at least two"),
    ("POST", BUNDLE, {"transactions": many(LIMITS.max_bundle_txs + 1)}, 400, "invalid_transaction", "exceed"),
    ("POST", BUNDLE, {"transactions": [tx(1, "01"), tx(1, "01")]}, 400, "invalid_transaction", "twice"),
    ("POST", BUNDLE, {"transactions": [tx(1, "01"), tx(2, "zz")]}, 400, "invalid_bundle", "transaction 1"),
    ("POST", BUNDLE, {"transactions": [tx(1, "01"), tx(-2, "02")]}, 400, "invalid_bundle", "transaction 1"),
    ("POST", BUNDLE, {"transactions": "no"}, 400, "invalid_bundle", "must be a list"),
    ("POST", BUNDLE, {"txs": []}, 400, "invalid_bundle", "transactions"),
    ("POST", BUNDLE, {"transactions": many(2), "x": 1}, 400, "invalid_bundle", "no other field"),
    ("POST", BUNDLE, [tx(1, "01"), tx(2, "02")], 400, "invalid_bundle", "transactions"),
    # batch submission
    ("POST", BATCH, {"transactions": "no"}, 400, "invalid_batch", "list"),
    ("POST", BATCH, {"transactions": many(LIMITS.submit_max_batch + 1)}, 400, "invalid_batch", "at most"),
    ("POST", BATCH, {"transactions": [], "x": 1}, 400, "invalid_batch", "no other field"),
    ("POST", BATCH, [], 400, "invalid_batch", "transactions"),
    # ids and heights in paths
    ("GET", f"{TX}/xyz", None, 400, "invalid_parameter", "64 hex digits"),
    ("GET", f"{TX}/{OK_ID[:-2]}", None, 400, "invalid_parameter", "64 hex digits"),
    ("GET", f"{TX}/{'zz' * 32}", None, 400, "invalid_parameter", "64 hex digits"),
    ("GET", f"{TX}/{OK_ID}", None, 404, "not_found", "no such transaction"),
    ("GET", "/v1/bundles/1234", None, 400, "invalid_parameter", "64 hex digits"),
    ("GET", f"/v1/bundles/{OK_ID}", None, 404, "not_found", "no such bundle"),
    ("GET", "/v1/blocks/0", None, 400, "invalid_parameter", "outside"),
    ("GET", "/v1/blocks/-1", None, 400, "invalid_parameter", "non-negative integer"),
    ("GET", "/v1/blocks/abc", None, 400, "invalid_parameter", "non-negative integer"),
    ("GET", "/v1/blocks/1e3", None, 400, "invalid_parameter", "non-negative integer"),
    ("GET", "/v1/blocks/+1", None, 400, "invalid_parameter", "non-negative integer"),
    ("GET", f"/v1/blocks/{2**63}", None, 400, "invalid_parameter", "outside"),
    ("GET", f"/v1/blocks/{2**62}", None, 404, "not_found", "no committed block"),
    ("GET", "/v1/rollups/1/slices/0", None, 400, "invalid_parameter", "height"),
    ("GET", f"/v1/rollups/{2**32}/slices/1", None, 400, "invalid_parameter", "rollup_id"),
    ("GET", "/v1/rollups/x/slices/1", None, 400, "invalid_parameter", "rollup_id"),
    ("GET", f"/v1/rollups/1/slices/{2**40}", None, 404, "not_found", "not committed"),
    # subscription parameters
    ("GET", "/v1/rollups/1/subscribe?from=0", None, 400, "invalid_parameter", "from"),
    ("GET", "/v1/rollups/1/subscribe?from=soon", None, 400, "invalid_parameter", "from"),
    ("GET", "/v1/rollups/1/subscribe?skip_empty=maybe", None, 400, "invalid_parameter", "skip_empty"),
    ("GET", f"/v1/rollups/{2**32}/subscribe", None, 400, "invalid_parameter", "rollup_id"),
    # evidence filter
    ("GET", "/v1/evidence?offender=x", None, 400, "invalid_parameter", "offender"),
    ("GET", "/v1/evidence?offender=5000", None, 400, "invalid_parameter", "outside"),
    # unknown routes and methods
    ("GET", "/nope", None, 404, "not_found", "no route GET /nope"),
    ("GET", "/v1/rollups/1/slices", None, 404, "not_found", "no route"),
    ("POST", "/v1/blocks/1", {}, 405, "method_not_allowed", "POST not allowed"),
    ("GET", TX, None, 405, "method_not_allowed", "GET not allowed"),
    ("DELETE", "/status", None, 405, "method_not_allowed", "DELETE"),
    ("PUT", BUNDLE, {}, 405, "method_not_allowed", "PUT"),
    ("POST", "/metrics", b"", 405, "method_not_allowed", "POST"),
]


def _id(case: tuple[str, str, Any, int, str, str]) -> str:
    method, path, body, *_ = case
    shown = body if isinstance(body, bytes) else json.dumps(body)
    return f"{method} {path[:40]} {str(shown)[:30]}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
async def test_bad_request_gets_a_clear_4xx(http: httpx.AsyncClient, case: tuple[str, str, Any, int, str, str]) -> None:
    method, path, body, status, code, words = case
    content = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    response = await http.request(method, path, content=content,
                                  headers={"content-type": "application/json"} if content is not None else None)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()
    assert error["error"] == code, error
    assert words in error["detail"], error
    if status == 405:
        assert response.headers["allow"], "a 405 names the allowed methods"


@pytest.mark.parametrize("value", ["x", "-1", "1.5", "+3", "9" * 30])
async def test_bad_last_event_id_is_400(http: httpx.AsyncClient, value: str) -> None:
    response = await http.get("/v1/rollups/1/subscribe", headers={"Last-Event-ID": value})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_parameter" and "Last-Event-ID" in response.json()["detail"]


async def test_body_over_the_limit_is_413(http: httpx.AsyncClient) -> None:
    big = b'{"rollup_id": 1, "payload": "' + b"00" * (MAX_BODY // 2) + b'"}'
    declared = await http.post(TX, content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and declared.json()["error"] == "too_large"

    async def chunks():  # no Content-Length: the server counts while reading
        for i in range(0, len(big), 1 << 20):
            yield big[i:i + (1 << 20)]

    streamed = await http.post(BATCH, content=chunks())
    assert streamed.status_code == 413 and "bytes" in streamed.json()["detail"]


async def test_still_healthy_after_the_abuse(http: httpx.AsyncClient) -> None:
    response = await http.post(TX, json={"rollup_id": 3, "data": "after the abuse"})
    assert response.status_code in (200, 202)
    assert (await http.get("/status")).json()["started"]
