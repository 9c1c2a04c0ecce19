"""The binary batch submission (``POST /v1/transactions/batch`` with ``application/msgpack``,
sequencing/api/binary.py) driven in-process over a fake replica behind the API guard: accepted
entries and their ids, bundles, duplicates, a full mempool, and every refusal (malformed msgpack,
wrong shapes, oversize, the wrong content type) answered 4xx and counted in
``ordo_api_refused_total``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import msgpack
import pytest

from sequencing.api.app import build_app
from sequencing.api.limits import ApiGuard
from sequencing.config import Limits
from sequencing.rollup.transactions import Bundle, Transaction

from .fake_replica import FakeReplica

BATCH = "/v1/transactions/batch"
MSGPACK = {"content-type": "application/msgpack"}
LIMITS = Limits(max_rollup_id=1000, max_tx_bytes=64, max_bundle_txs=3, submit_max_batch=6,
                api_max_body_bytes=4096, api_client_rate=1_000_000, api_client_burst=1_000_000)


def pack(body: Any) -> bytes:
    return msgpack.packb(body, use_bin_type=True)  # type: ignore[no-any-return]


def served(replica: FakeReplica) -> httpx.AsyncClient:
    guarded = ApiGuard(replica.limits, replica.metrics_registry).wrap(build_app(replica))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded), base_url="http://replica")


def refused(replica: FakeReplica, reason: str) -> float:
    return replica.metrics_registry.get_sample_value("ordo_api_refused_total", {"reason": reason}) or 0.0


async def test_a_binary_batch_is_queued_and_answered_in_msgpack() -> None:
    replica = FakeReplica(LIMITS)
    txs = [[7, b"a"], [8, b"b" * 64], [0, b"c"]]
    bundle = [[9, b"x"], [10, b"y"]]
    async with served(replica) as http:
        response = await http.post(BATCH, content=pack({"transactions": [*txs, bundle]}), headers=MSGPACK)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/msgpack"
        body = msgpack.unpackb(response.content)
        expected = [Transaction(r, p).id for r, p in txs]
        bundle_id = Bundle((Transaction(9, b"x"), Transaction(10, b"y"))).id
        assert body == {"accepted": 4, "duplicates": 0, "rejected": [], "ids": [*expected, bundle_id]}
        assert set(replica.items) == {*expected, bundle_id}
        again = await http.post(BATCH, content=pack({"transactions": [txs[0], [7, b"new"]], "ids": False}),
                                headers={"content-type": "application/x-msgpack; charset=binary"})
        assert msgpack.unpackb(again.content) == {"accepted": 1, "duplicates": 1, "rejected": []}
    assert refused(replica, "bad_request") == 0


async def test_a_full_mempool_takes_what_fits_and_says_retry() -> None:
    replica = FakeReplica(LIMITS, room=1)
    async with served(replica) as http:
        response = await http.post(BATCH, content=pack({"transactions": [[1, b"a"], [1, b"b"]]}), headers=MSGPACK)
        body = msgpack.unpackb(response.content)
        assert response.status_code == 200 and response.headers["retry-after"] == "1"
        assert body["accepted"] == 1 and body["ids"][1] is None and [r["index"] for r in body["rejected"]] == [1]
        full = await http.post(BATCH, content=pack({"transactions": [[1, b"c"]]}), headers=MSGPACK)
        assert full.status_code == 503 and msgpack.unpackb(full.content)["accepted"] == 0


async def test_plain_transactions_of_several_rollups_are_answered_in_request_order() -> None:
    """A request of plain transactions is queued as one run per rollup; ids and refusals come back
    at the entries' own indices (catches: answers in run order instead of request order)."""
    txs = [[7, b"a"], [3, b"b"], [7, b"c"], [3, b"a"], [7, b"a"], [5, b"z"]]  # [7, b"a"] twice
    replica = FakeReplica(LIMITS)
    async with served(replica) as http:
        body = msgpack.unpackb((await http.post(BATCH, content=pack({"transactions": txs}), headers=MSGPACK)).content)
    assert body == {"accepted": 5, "duplicates": 1, "rejected": [], "ids": [Transaction(r, p).id for r, p in txs]}
    small = FakeReplica(LIMITS, room=3)  # runs go by rollup: 3 (b, a) and 5 (z) fit, 7 is refused
    async with served(small) as http:
        body = msgpack.unpackb((await http.post(BATCH, content=pack({"transactions": txs}), headers=MSGPACK)).content)
    assert [r["index"] for r in body["rejected"]] == [0, 2, 4] and body["accepted"] == 3
    assert body["ids"] == [None, Transaction(3, b"b").id, None, Transaction(3, b"a").id, None, Transaction(5, b"z").id]


async def test_the_grouped_form_is_queued_and_answered_in_group_order() -> None:
    """``{"groups": [[rollup_id, [payload, ...]], ...]}``: one run per group; ids, duplicates and
    refusals counted over the groups flattened (catches: a group's transactions dropped or reordered)."""
    groups = [[9, [b"a", b"b", b"a"]], [2, [b"c"]]]
    flat = [(9, b"a"), (9, b"b"), (9, b"a"), (2, b"c")]
    replica = FakeReplica(LIMITS)
    async with served(replica) as http:
        body = msgpack.unpackb((await http.post(BATCH, content=pack({"groups": groups}), headers=MSGPACK)).content)
        assert body == {"accepted": 3, "duplicates": 1, "rejected": [], "ids": [Transaction(r, p).id for r, p in flat]}
        assert set(replica.items) == {Transaction(r, p).id for r, p in flat}
        quiet = await http.post(BATCH, content=pack({"groups": [[2, [b"c", b"d"]]], "ids": False}), headers=MSGPACK)
        assert msgpack.unpackb(quiet.content) == {"accepted": 1, "duplicates": 1, "rejected": []}
    small = FakeReplica(LIMITS, room=2)
    async with served(small) as http:
        body = msgpack.unpackb((await http.post(BATCH, content=pack({"groups": groups}), headers=MSGPACK)).content)
    assert body["accepted"] == 2 and [r["index"] for r in body["rejected"]] == [3] and body["ids"][3] is None


@pytest.mark.parametrize(("groups", "detail"), [
    ({}, "groups must be a list"),
    ([[1, b"a"]], "group 0: payloads must be a non-empty list"),
    ([[1, []]], "group 0: payloads must be a non-empty list"),
    ([[1, [b"a"]], [2]], "group 1: expected [rollup_id, [payload, ...]]"),
    ([[1001, [b"a"]]], "rollup_id must be an integer in [0, 1000]"),
    ([[True, [b"a"]]], "rollup_id must be an integer"),
    ([[1, [b"a", "text"]]], "every payload must be msgpack bin"),
    ([[1, [b"a", b""]]], "payload must not be empty"),
    ([[1, [b"a", b"x" * 65]]], "65 bytes exceeds 64"),
    ([[1, [b"a"] * 4], [2, [b"b"] * 3]], "7 transactions exceed 6"),
])
async def test_malformed_groups_are_400_and_name_the_group(groups: Any, detail: str) -> None:
    replica = FakeReplica(LIMITS)
    async with served(replica) as http:
        response = await http.post(BATCH, content=pack({"groups": groups}), headers=MSGPACK)
    assert response.status_code == 400 and response.json()["error"] == "invalid_batch"
    assert detail in response.json()["detail"], response.json()
    assert not replica.items


async def test_a_request_has_transactions_or_groups_not_both() -> None:
    replica = FakeReplica(LIMITS)
    async with served(replica) as http:
        both = await http.post(BATCH, content=pack({"groups": [[1, [b"a"]]], "transactions": [[1, b"b"]]}),
                               headers=MSGPACK)
    assert both.status_code == 400 and "no other field" in both.json()["detail"] and not replica.items


@pytest.mark.parametrize(("raw", "code", "detail"), [
    (b"\xc1", "invalid_msgpack", "not one msgpack value"),  # never used
    (pack({"transactions": []})[:-1], "invalid_msgpack", "not one msgpack value"),  # truncated
    (pack({"transactions": []}) + b"\x00", "invalid_msgpack", "not one msgpack value"),  # extra data
    (b"\x91" * 4000, "invalid_msgpack", "not one msgpack value"),  # nested too deep
    (b'{"transactions": []}', "invalid_msgpack", "not one msgpack value"),  # JSON sent as msgpack
    (pack([[1, b"a"]]), "invalid_batch", "msgpack map"),
    (pack({"transactions": [], "extra": 1}), "invalid_batch", "no other field"),
    (pack({"transactions": [], "ids": 1}), "invalid_batch", '"ids" must be a boolean'),
    (pack({"transactions": {}}), "invalid_batch", "must be a list"),
    (pack({"transactions": [[1, b"a"]] * 7}), "invalid_batch", "at most 6"),
    (pack({"transactions": [[1, b"a"], [1, "text"]]}), "invalid_batch", "entry 1: payload must be msgpack bin"),
    (pack({"transactions": [[1, b""]]}), "invalid_batch", "entry 0: payload must not be empty"),
    (pack({"transactions": [[1, b"x" * 65]]}), "invalid_batch", "65 bytes exceeds 64"),
    (pack({"transactions": [[1001, b"a"]]}), "invalid_batch", "rollup_id must be an integer in [0, 1000]"),
    (pack({"transactions": [[-1, b"a"]]}), "invalid_batch", "rollup_id"),
    (pack({"transactions": [[True, b"a"]]}), "invalid_batch", "rollup_id"),
    (pack({"transactions": [[1, b"a", 3]]}), "invalid_batch", "expected [rollup_id, payload]"),
    (pack({"transactions": [[[1, b"a"]]]}), "invalid_batch", "at least two"),
    (pack({"transactions": [[[1, b"a"], [1, b"a"]]]}), "invalid_batch", "same transaction twice"),
    (pack({"transactions": [[[1, b"a"], [2, b"b"], [3, b"c"], [4, b"d"]]]}), "invalid_batch", "exceeds 3"),
    (pack({"transactions": [[[1, b"a"], [2, b"b"], [3, b"c"]]] * 2 + [[5, b"e"]]}), "invalid_batch",
     "7 transactions (bundles' included) exceed 6"),
], ids=lambda value: value if isinstance(value, str) and " " in value else "")
async def test_malformed_binary_batches_are_400_and_counted(raw: bytes, code: str, detail: str) -> None:
    replica = FakeReplica(LIMITS)
    async with served(replica) as http:
        response = await http.post(BATCH, content=raw, headers=MSGPACK)
    assert response.status_code == 400 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == code and detail in body["detail"], body
    assert replica.items == {}, "nothing of a refused batch is taken"
    assert refused(replica, "bad_request") == 1


async def test_every_malformed_entry_is_named() -> None:
    replica = FakeReplica(LIMITS)
    async with served(replica) as http:
        response = await http.post(BATCH, content=pack({"transactions": [[1, b"a"], [1, b""], "x"]}),
                                   headers=MSGPACK)
    assert [r["index"] for r in response.json()["rejected"]] == [1, 2]


async def test_an_oversize_binary_batch_is_413_and_counted() -> None:
    replica = FakeReplica(LIMITS)
    raw = pack({"transactions": [[1, b"x" * 64]] * 60})
    assert len(raw) > LIMITS.api_max_body_bytes

    async def streamed() -> Any:  # no Content-Length: refused once the stream passes the cap
        for i in range(0, len(raw), 1000):
            yield raw[i:i + 1000]

    async with served(replica) as http:
        declared = await http.post(BATCH, content=raw, headers=MSGPACK)
        assert (declared.status_code, declared.json()["error"]) == (413, "too_large")
        chunked = await http.post(BATCH, content=streamed(), headers=MSGPACK)
        assert (chunked.status_code, chunked.json()["error"]) == (413, "too_large")
    assert refused(replica, "too_large") == 2 and replica.items == {}


async def test_the_content_type_chooses_the_parser() -> None:
    """msgpack sent as JSON is invalid JSON; JSON sent without a msgpack type is still JSON."""
    replica = FakeReplica(LIMITS)
    async with served(replica) as http:
        as_json = await http.post(BATCH, content=pack({"transactions": [[1, b"a"]]}),
                                  headers={"content-type": "application/json"})
        assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_json")
        text = json.dumps({"transactions": [{"rollup_id": 1, "data": "a"}]})
        plain = await http.post(BATCH, content=text, headers={"content-type": "text/plain"})
        assert plain.status_code == 200 and plain.json()["ids"] == [Transaction(1, b"a").id.hex()]
    assert refused(replica, "bad_request") == 1
