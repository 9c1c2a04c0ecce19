"""The Python client library: the sync client against the real cluster (in a worker thread), the
async one under trio, and its failure handling — typed errors, busy retries, subscription gaps,
duplicates, tampered proofs and resumption — with a scripted transport around real proofs."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from contextlib import aclosing
from typing import Any

import httpx
import msgpack
import pytest
import trio

from consensus.committee import Committee
from consensus.crypto import KeyPair, SignatureKind, Signer
from consensus.messages import Evidence, EvidenceKind
from sequencing.client import (
    AsyncOrdoClient,
    Busy,
    ClientError,
    MissingCommittee,
    NotFound,
    OrdoClient,
    ProofFailed,
    RetryPolicy,
    ServerError,
    SubscriptionGap,
    Unavailable,
)
from sequencing.cluster.local import free_ports
from sequencing.rollup.transactions import Transaction

from .apiutil import ClusterThread, fresh_rollup

FAST_RETRY = RetryPolicy(attempts=3, base=0.001, cap=0.01)


def tag() -> bytes:
    return os.urandom(5).hex().encode()


# -- against the real cluster ---------------------------------------------------------------------


def sync_flow(cluster: ClusterThread) -> None:
    with OrdoClient.from_config(cluster.config_path, replica=3) as client:
        assert client.status()["id"] == 3
        tx_id = client.submit(51, b"sync-" + tag())
        where = client.wait_for_commit(tx_id, timeout=30)
        assert where.rollup_id == 51 and client.tx_status(tx_id).status == "committed"
        proof = client.slice(51, where.height)
        assert Transaction(51, proof.transactions[where.position]).id.hex() == tx_id
        assert client.block(where.height)["height"] == where.height
        assert client.rollups()[51]["txs"] >= 1

        bundle_id = client.submit_bundle([(52, b"b1-" + tag()), (53, b"b2-" + tag())])
        bundle = client.wait_for_bundle(bundle_id, timeout=30)
        assert bundle.bundle.id.hex() == bundle_id and len(bundle.bundle.txs) == 2

        many = fresh_rollup()
        items = [(many, b"many-%d-" % i + tag()) for i in range(30)]
        before = client.status()["committed_height"] + 1
        with pytest.raises(ClientError) as refused:  # an entry breaking the schema refuses its batch
            client.submit_many([*items, (many, b"")])
        assert refused.value.code == "invalid_batch" and "entry 30" in refused.value.detail
        result = client.submit_many([*items, items[0]])
        assert result.accepted == 30 and result.duplicates == 1 and result.ids[30] == result.ids[0]
        assert result.rejected == []
        client.wait_for_commit(result.ids[29] or "", timeout=30)

        got = []
        for proof in client.subscribe(many, from_height=before, include_empty=False):
            got.extend(proof.transactions)
            if len(got) >= 30:
                break
        assert sorted(got) == sorted(p for _, p in items)
        assert isinstance(client.evidence(), list)

        with pytest.raises(ClientError) as bad:
            client.submit(2**32, b"x")
        assert bad.value.status == 400 and bad.value.code == "invalid_transaction"
        with pytest.raises(NotFound):
            client.slice(1, 2**40)
        with pytest.raises(ValueError):
            client.tx_status("not-an-id")
    with OrdoClient(cluster.api(0)) as unverified, pytest.raises(MissingCommittee):
        unverified.slice(1, 1)
    strangers = Committee(cluster.config.chain_id, tuple(KeyPair.from_seed(b"x%d" % i).public for i in range(4)))
    with OrdoClient(cluster.api(0), strangers) as wrong, pytest.raises(ProofFailed):
        wrong.slice(1, 1)
    with OrdoClient(f"http://127.0.0.1:{free_ports(1)[0]}") as nobody, pytest.raises(Unavailable):
        nobody.status()


async def test_sync_client_against_the_cluster(cluster: ClusterThread) -> None:
    await trio.to_thread.run_sync(sync_flow, cluster)


async def test_async_client_under_trio(cluster: ClusterThread) -> None:
    async with AsyncOrdoClient.from_config(cluster.config_path, replica=1) as client:
        items = [(55, b"bulk-%d-" % i + tag()) for i in range(2_500)]  # three chunks of <= 1000
        result = await client.submit_many(items)
        assert result.accepted == 2_500 and not result.rejected and len(result.ids) == 2_500
        where = await client.wait_for_commit(result.ids[-1] or "", timeout=30)
        assert where.rollup_id == 55
        tx_id = await client.submit(56, b"async-" + tag())
        located = await client.wait_for_commit(tx_id)
        assert (await client.slice(56, located.height)).rollup_id == 56
        with pytest.raises(Unavailable):
            async with AsyncOrdoClient(f"http://127.0.0.1:{free_ports(1)[0]}") as nobody:
                await nobody.status()


# -- scripted transports around real proofs ------------------------------------------------------


async def real_slices(cluster: ClusterThread, rollup: int, first: int, count: int) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=cluster.api(0)) as http:
        return [(await http.get(f"/v1/rollups/{rollup}/slices/{h}")).json() for h in range(first, first + count)]


def sse(*slices: dict[str, Any]) -> bytes:
    return b"retry: 1000\n: hello\n\n" + b"".join(
        f"id: {s['height']}\nevent: slice\ndata: {json.dumps(s)}\n\n".encode() for s in slices)


Handler = Callable[[httpx.Request], httpx.Response]


def scripted(responses: list[Handler], seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses[min(len(seen), len(responses)) - 1](request)

    return httpx.MockTransport(handler)


def stream_of(*slices: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(200, content=sse(*slices), headers={"content-type": "text/event-stream"})


async def collect(client: AsyncOrdoClient, rollup: int, start: int, count: int) -> list[int]:
    out: list[int] = []
    with trio.fail_after(10):
        async with aclosing(client.subscribe(rollup, from_height=start, reconnect_timeout=5)) as stream:  # type: ignore[type-var]
            async for proof in stream:
                out.append(proof.height)
                if len(out) == count:
                    break
    return out


async def test_subscription_resumes_with_last_event_id(cluster: ClusterThread) -> None:
    s = await real_slices(cluster, 61, 2, 3)
    seen: list[httpx.Request] = []
    transport = scripted([stream_of(s[0]), stream_of(s[1]), stream_of(s[2])], seen)
    async with AsyncOrdoClient("http://replica", cluster.committee, transport=transport) as client:
        assert await collect(client, 61, 2, 3) == [2, 3, 4]
    assert [r.headers.get("last-event-id") for r in seen] == [None, "2", "3"]
    assert all(r.url.params["from"] == "2" for r in seen)


@pytest.mark.parametrize(("order", "expected", "got"), [((0, 2), 3, 4), ((0, 0), 3, 2), ((1,), 2, 3)])
async def test_subscription_gap_or_duplicate_is_a_typed_error(
    cluster: ClusterThread, order: tuple[int, ...], expected: int, got: int
) -> None:
    s = await real_slices(cluster, 62, 2, 3)
    transport = scripted([stream_of(*(s[i] for i in order))], [])
    async with AsyncOrdoClient("http://replica", cluster.committee, transport=transport) as client:
        with pytest.raises(SubscriptionGap) as gap:
            await collect(client, 62, 2, 3)
    assert (gap.value.expected, gap.value.got) == (expected, got)


async def test_tampered_slice_in_a_stream_fails_verification(cluster: ClusterThread) -> None:
    async with AsyncOrdoClient(cluster.api(0)) as writer:
        where = await writer.wait_for_commit(await writer.submit(63, b"real-" + tag()))
    forged = (await real_slices(cluster, 63, where.height, 1))[0]
    forged["transactions"] = [b"forged".hex()]
    transport = scripted([stream_of(forged)], [])
    async with AsyncOrdoClient("http://replica", cluster.committee, transport=transport) as client:
        with pytest.raises(ProofFailed):
            await collect(client, 63, where.height, 1)


async def test_tampered_bundle_proof_fails_verification(cluster: ClusterThread) -> None:
    """The client checks each bundle transaction against the chunk (NMT leaf) it claims to be in
    (PROTOCOL.md section 13.5): a changed chunk, a wrong offset or swapped places are refused."""
    async with AsyncOrdoClient(cluster.api(0)) as writer:
        bundle_id = await writer.submit_bundle([(66, b"bundle-a-" + tag()), (67, b"bundle-b-" + tag())])
        await writer.wait_for_bundle(bundle_id, timeout=30, verify=False)
    async with httpx.AsyncClient(base_url=cluster.api(0)) as http:
        body = (await http.get(f"/v1/bundles/{bundle_id}")).json()
    good = body["proof"]
    changed_chunk, off_by_one, swapped = copy.deepcopy(good), copy.deepcopy(good), copy.deepcopy(good)
    changed_chunk["chunks"][0][-1] = "00" + changed_chunk["chunks"][0][-1]
    off_by_one["locations"][0][1] += 1
    swapped["locations"].reverse()
    status = reply({"chain_id": cluster.config.chain_id})  # asked when a proof fails
    for served, ok in ((good, True), (changed_chunk, False), (off_by_one, False), (swapped, False)):
        transport = scripted([reply({**body, "proof": served}), status], [])
        async with AsyncOrdoClient("http://replica", cluster.committee, transport=transport) as client:
            if ok:
                assert (await client.bundle_proof(bundle_id)) is not None
            else:
                with pytest.raises(ProofFailed):
                    await client.bundle_proof(bundle_id)


def error(status: int, code: str, headers: dict[str, str] | None = None) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(status, json={"error": code, "detail": f"{code} happened"}, headers=headers)


def accepted(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    tx = Transaction(body["rollup_id"], bytes.fromhex(body["payload"]))
    return httpx.Response(202, json={"id": tx.id.hex(), "status": "pending"})


async def test_busy_submissions_are_retried_then_reported() -> None:
    seen: list[httpx.Request] = []
    busy = error(503, "busy", {"Retry-After": "0"})
    transport = scripted([busy, busy, accepted], seen)
    async with AsyncOrdoClient("http://replica", retry=FAST_RETRY, transport=transport) as client:
        assert await client.submit(1, b"x") == Transaction(1, b"x").id.hex()
    assert len(seen) == 3
    transport = scripted([busy], [])
    async with AsyncOrdoClient("http://replica", retry=FAST_RETRY, transport=transport) as client:
        with pytest.raises(Busy) as exc:
            await client.submit(1, b"x")
    assert exc.value.retry_after == 0


async def test_rate_limited_submissions_are_retried_after_retry_after() -> None:
    seen: list[httpx.Request] = []
    limited = error(429, "rate_limited", {"Retry-After": "0"})
    transport = scripted([limited, accepted], seen)
    async with AsyncOrdoClient("http://replica", retry=FAST_RETRY, transport=transport) as client:
        assert await client.submit(1, b"x") == Transaction(1, b"x").id.hex()
    assert len(seen) == 2
    transport = scripted([error(429, "rate_limited", {"Retry-After": "3"})], [])
    with OrdoClient("http://replica", transport=transport) as sync, pytest.raises(Busy) as exc:
        sync.status()
    assert exc.value.retry_after == 3


async def test_batch_entries_rejected_as_busy_are_resent() -> None:
    ids = [Transaction(1, bytes([i])).id.hex() for i in range(4)]
    first = httpx.Response(200, headers={"Retry-After": "0"}, json={
        "accepted": 2, "duplicates": 0, "ids": [ids[0], ids[1], None, None],
        "rejected": [{"index": 2, "error": "mempool full: 5 queued; retry later"},
                     {"index": 3, "error": "mempool full; retry later"}]})
    second = httpx.Response(200, json={"accepted": 2, "duplicates": 0, "ids": ids[2:], "rejected": []})
    seen: list[httpx.Request] = []
    transport = scripted([lambda _: first, lambda _: second], seen)
    async with AsyncOrdoClient("http://replica", retry=FAST_RETRY, transport=transport) as client:
        result = await client.submit_many([(1, bytes([i])) for i in range(4)])
    assert result.accepted == 4 and result.ids == ids and result.rejected == []
    assert seen[0].headers["content-type"] == "application/msgpack"
    assert msgpack.unpackb(seen[1].content)["transactions"] == [[1, bytes([2])], [1, bytes([3])]]


async def test_batch_ids_left_out_of_a_binary_answer_are_computed_by_the_client() -> None:
    ids = [Transaction(4, b"p%d" % i).id.hex() for i in range(3)]
    answer = msgpack.packb({"accepted": 1, "duplicates": 1, "rejected": [{"index": 1, "error": "mempool full"}]})
    seen: list[httpx.Request] = []
    reply = httpx.Response(200, content=answer, headers={"content-type": "application/msgpack"})
    transport = scripted([lambda _: reply], seen)
    retry = RetryPolicy(attempts=0)
    async with AsyncOrdoClient("http://replica", retry=retry, transport=transport) as client:
        result = await client.submit_many([(4, b"p%d" % i) for i in range(3)])
        text: Any = "text"
        with pytest.raises(TypeError):  # the caller's mistake, refused before any request
            await client.submit_many([(4, text)])
    assert result.ids == [ids[0], None, ids[2]] and result.accepted == 1 and result.duplicates == 1
    assert msgpack.unpackb(seen[0].content)["ids"] is False and len(seen) == 1
    garbled = httpx.Response(200, content=b"\xc1", headers={"content-type": "application/msgpack"})
    async with AsyncOrdoClient("http://replica", transport=scripted([lambda _: garbled], [])) as client:
        with pytest.raises(ServerError):
            await client.submit_many([(4, b"x")])


@pytest.mark.parametrize(("response", "kind"), [
    (error(400, "invalid_transaction"), ClientError),
    (error(404, "not_found"), NotFound),
    (error(500, "boom"), ServerError),
    (lambda _: httpx.Response(502, text="<html>bad gateway</html>"), ServerError),
    (lambda _: httpx.Response(200, text="not json"), ServerError),
])
def test_responses_map_to_typed_errors(response: Callable[[httpx.Request], httpx.Response], kind: type) -> None:
    with OrdoClient("http://replica", transport=scripted([response], [])) as client, pytest.raises(kind) as exc:
        client.status()
    if kind is ClientError:
        assert exc.value.code == "invalid_transaction" and "happened" in exc.value.detail


def test_transport_failures_are_unavailable_not_httpx() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with OrdoClient("http://replica", transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(Unavailable):
            client.submit(1, b"x")
        with pytest.raises(Unavailable):
            client.tx_status("00" * 32)


# -- input checked before any request, and evidence checked against its listing ----------------


def reply(body: object) -> Handler:
    return lambda _: httpx.Response(200, json=body)


@pytest.mark.parametrize("bad", [
    "ab" * 16 + " " * 32,  # 64 characters that bytes.fromhex reads as 16 bytes
    " " + "ab" * 31 + "a ",
    "0x" + "ab" * 31,
    "ab" * 31,
    "zz" * 32,
])
def test_a_malformed_id_is_refused_before_any_request(bad: str) -> None:
    seen: list[httpx.Request] = []
    with OrdoClient("http://replica", transport=scripted([error(400, "invalid_parameter")], seen)) as client:
        with pytest.raises(ValueError, match="64 hex digits"):
            client.tx_status(bad)
        with pytest.raises(ValueError, match="64 hex digits"):
            client.bundle_proof(bad, verify=False)
    assert seen == []


def test_an_upper_case_id_is_sent_in_lower_case() -> None:
    seen: list[httpx.Request] = []
    unknown = reply({"id": "ab" * 32, "status": "unknown"})
    with OrdoClient("http://replica", transport=scripted([unknown], seen)) as client:
        assert client.tx_status("AB" * 32).id == "ab" * 32
    assert seen[0].url.path == "/v1/transactions/" + "ab" * 32


def signed_double_vote(chain_id: str, keys: list[KeyPair], offender: int, round: int) -> Evidence:
    signer = Signer(chain_id, offender, keys[offender])
    a, b = bytes([1]) * 32, bytes([2]) * 32
    return Evidence.of(EvidenceKind.DOUBLE_VOTE, offender, round,
                       (a, signer.sign(SignatureKind.VOTE, round, a)), (b, signer.sign(SignatureKind.VOTE, round, b)))


LIES = [("id", "00" * 32), ("offender", 1), ("round", 8), ("kind", "double_proposal")]


@pytest.mark.parametrize(("field", "lie"), LIES)
def test_evidence_whose_listing_contradicts_it_fails(field: str, lie: object) -> None:
    """The listing /v1/evidence serves next to each piece must match the signed contents (the client
    checked only id and offender; `ordo evidence verify` also round and kind)."""
    keys = [KeyPair.from_seed(b"k%d" % i) for i in range(4)]
    committee = Committee("ev", tuple(k.public for k in keys))
    ev = signed_double_vote("ev", keys, 2, 7)
    record = {"id": ev.id.hex(), "kind": "double_vote", "offender": 2, "round": 7, "committed_height": None,
              "evidence": ev.encode().hex()}
    with OrdoClient("http://replica", committee, transport=scripted([reply([record])], [])) as client:
        assert [r.evidence for r in client.evidence()] == [ev]
    lying = [record, {**record, field: lie}]
    status = reply({"chain_id": "ev"})  # asked when a proof fails, to tell a wrong chain apart
    with OrdoClient("http://replica", committee, transport=scripted([reply(lying), status, reply(lying)], [])) as c:
        with pytest.raises(ProofFailed, match=f"evidence .*{field}"):
            c.evidence()
        assert len(c.evidence(verify=False)) == 2
    forged = signed_double_vote("another chain", keys, 2, 7)
    served_forged = [{**record, "id": forged.id.hex(), "evidence": forged.encode().hex()}]
    transport = scripted([reply(served_forged), status], [])
    with OrdoClient("http://replica", committee, transport=transport) as c, pytest.raises(ProofFailed, match="signat"):
        c.evidence()
