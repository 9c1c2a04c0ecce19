"""Every public endpoint of a real replica, over real HTTP: submissions land where the API says,
slices and bundles come with proofs that verify against the committee (and fail against another
one), absent rollups get absence proofs, and /metrics is valid Prometheus text."""

from __future__ import annotations

import json
import os

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from consensus.committee import Committee
from consensus.crypto import KeyPair, Verifier
from sequencing.api.openapi import openapi_document
from sequencing.client.client import AsyncOrdoClient, NotFound, ProofFailed
from sequencing.config import Limits
from sequencing.rollup.proofs import InvalidProof, SliceProof

from .apiutil import ClusterThread, fresh_rollup

LIMITS = Limits()


def tag() -> bytes:
    return os.urandom(6).hex().encode()


async def test_status_describes_the_replica(cluster: ClusterThread, http: httpx.AsyncClient) -> None:
    response = await http.get("/status")
    assert response.status_code == 200
    status = response.json()
    required = openapi_document()["components"]["schemas"]["Status"]["required"]
    assert set(required) <= set(status)
    assert status["id"] == 0 and status["chain_id"] == cluster.config.chain_id and status["started"]
    assert status["committed_height"] >= 1
    assert status["committee"] == [key.hex() for key in cluster.committee.public_keys]


async def test_two_rollups_read_back_with_verified_proofs(cluster: ClusterThread, http: httpx.AsyncClient) -> None:
    async with AsyncOrdoClient(cluster.api(0), cluster.committee) as client:
        mine = {11: [b"r11-a-" + tag(), b"r11-b-" + tag()], 12: [b"r12-a-" + tag()]}
        ids = {(r, p): await client.submit(r, p) for r, payloads in mine.items() for p in payloads}
        located = {key: await client.wait_for_commit(tx_id, timeout=30) for key, tx_id in ids.items()}
        for (rollup, payload), where in located.items():
            assert where.rollup_id == rollup
            proof = await client.slice(rollup, where.height)  # verified against the committee
            assert proof.transactions[where.position] == payload
            # the raw JSON is the documented shape and verifies by itself
            raw = (await http.get(f"/v1/rollups/{rollup}/slices/{where.height}")).json()
            assert raw["height"] == where.height and raw["rollup_id"] == rollup
            SliceProof.from_json(raw).verify(Verifier(cluster.committee))
            status = (await http.get(f"/v1/transactions/{ids[(rollup, payload)]}")).json()
            assert status == {"id": ids[(rollup, payload)], "status": "committed", "height": where.height,
                              "rollup_id": rollup, "position": where.position}
        # the rollup summary counts them; every replica serves the same slices
        summary = (await http.get("/v1/rollups")).json()
        assert summary["11"]["txs"] >= 2 and summary["12"]["txs"] >= 1
        height = max(w.height for w in located.values())
        await cluster.wait_height(height)
        async with httpx.AsyncClient(base_url=cluster.api(3), timeout=10) as other:
            for rollup in mine:
                a = (await http.get(f"/v1/rollups/{rollup}/slices/{height}")).json()
                b = (await other.get(f"/v1/rollups/{rollup}/slices/{height}")).json()
                assert a["transactions"] == b["transactions"] and a["block_id"] == b["block_id"]


async def test_absent_rollup_gets_a_verified_absence_proof(cluster: ClusterThread) -> None:
    async with AsyncOrdoClient(cluster.api(1), cluster.committee) as client:
        present = fresh_rollup()
        tx_id = await client.submit(present, b"present-" + tag())
        where = await client.wait_for_commit(tx_id)
        for absent in (present - 1, present + 1, fresh_rollup()):
            proof = await client.slice(absent, where.height)
            assert proof.transactions == () and proof.rollup_id == absent
        # a forged "absence" of rollup 21, or a forged extra transaction, does not verify
        real = await client.slice(present, where.height)
        verifier = Verifier(cluster.committee)
        for forged in (
            SliceProof(present, where.height, (), real.commit, real.namespace),
            SliceProof(present, where.height, (*real.transactions, b"extra"), real.commit, real.namespace),
            SliceProof(present, where.height + 1, real.transactions, real.commit, real.namespace),
        ):
            with pytest.raises(InvalidProof):
                forged.verify(verifier)


async def test_proofs_fail_against_another_committee(cluster: ClusterThread) -> None:
    strangers = Committee(cluster.config.chain_id, tuple(KeyPair.from_seed(bytes([i])).public for i in range(4)))
    async with AsyncOrdoClient(cluster.api(0), strangers) as client:
        with pytest.raises(ProofFailed):
            await client.slice(1, 1)


async def test_bundle_across_three_rollups_lands_whole(cluster: ClusterThread, http: httpx.AsyncClient) -> None:
    txs = [(31, b"leg-a-" + tag()), (32, b"leg-b-" + tag()), (33, b"leg-c-" + tag())]
    async with AsyncOrdoClient(cluster.api(2), cluster.committee) as client:
        bundle_id = await client.submit_bundle(txs)
        proof = await client.wait_for_bundle(bundle_id, timeout=30)  # verified BundleProof
        assert [(t.rollup_id, t.payload) for t in proof.bundle.txs] == txs
        heights = {(await client.wait_for_commit(t.id.hex())).height for t in proof.bundle.txs}
        assert heights == {proof.height}
        for rollup, payload in txs:
            assert payload in (await client.slice(rollup, proof.height)).transactions
    await cluster.wait_height(proof.height)
    body = (await http.get(f"/v1/bundles/{bundle_id}")).json()
    assert body["status"] == "committed" and body["height"] == proof.height
    assert body["proof"]["bundle_id"] == bundle_id
    block = (await http.get(f"/v1/blocks/{proof.height}")).json()
    assert {"31", "32", "33"} <= set(block["rollups"])
    assert block["id"] == body["proof"]["block_id"]


async def test_block_view_and_submit_responses(cluster: ClusterThread, http: httpx.AsyncClient) -> None:
    payload = tag()
    first = await http.post("/v1/transactions", json={"rollup_id": 5, "payload": payload.hex()})
    assert first.status_code == 202 and first.json()["status"] == "pending"
    again = await http.post("/v1/transactions", json={"rollup_id": 5, "payload": payload.hex()})
    assert again.status_code == 200 and again.json() == {"id": first.json()["id"], "status": "duplicate"}
    text = await http.post("/v1/transactions", json={"rollup_id": 5, "data": "héllo " + payload.decode()})
    assert text.status_code == 202
    block = (await http.get("/v1/blocks/1")).json()
    required = openapi_document()["components"]["schemas"]["Block"]["required"]
    assert set(required) <= set(block) and block["height"] == 1
    assert len(block["commit_qc"]["signers"]) >= cluster.committee.quorum


async def test_batch_submission_reports_each_entry(http: httpx.AsyncClient) -> None:
    """Entries the schema allows but the replica refuses are reported one by one in a 200 (entries
    that break the schema refuse the whole batch: test_api_contract)."""
    good = tag().hex()
    body = {"transactions": [
        {"rollup_id": 8, "payload": good},
        {"rollup_id": 8, "data": "é" * LIMITS.max_tx_bytes},  # max_tx_bytes characters, twice the bytes
        {"rollup_id": 8, "data": "\udab0"},
        {"rollup_id": 8, "payload": good},
    ]}
    response = await http.post("/v1/transactions/batch", content=json.dumps(body).encode(),
                               headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 1 and result["duplicates"] == 1
    assert result["ids"][0] == result["ids"][3] and result["ids"][1] is None
    assert [r["index"] for r in result["rejected"]] == [1, 2]
    assert "exceeds" in result["rejected"][0]["error"] and "surrogate" in result["rejected"][1]["error"]


async def test_bundle_and_tx_status_pending_and_unknown(http: httpx.AsyncClient) -> None:
    unknown = "ab" * 32
    for path in (f"/v1/transactions/{unknown}", f"/v1/bundles/{unknown}"):
        response = await http.get(path)
        assert response.status_code == 404
        assert response.json()["status"] == "unknown" and response.json()["error"] == "not_found"
    async with AsyncOrdoClient(str(http.base_url)) as client:
        status = await client.tx_status(unknown)
        assert status.status == "unknown" and status.location is None
        with pytest.raises(NotFound):
            await client.bundle_proof(unknown, verify=False)


async def test_evidence_list_is_json(cluster: ClusterThread, http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/evidence")
    assert response.status_code == 200, response.text  # was a 500: evidence_list got a positional arg
    assert isinstance(response.json(), list)
    assert (await http.get("/v1/evidence", params={"offender": "1"})).status_code == 200
    async with AsyncOrdoClient(cluster.api(0), cluster.committee) as client:
        assert all(r.offender in range(4) for r in await client.evidence())


EXPECTED_FAMILIES = {
    "ordo_round": "gauge", "ordo_committed_height": "gauge", "ordo_txs_committed": "counter",
    "ordo_blocks_committed": "counter", "ordo_commit_latency_seconds": "histogram",
    "ordo_mempool_transactions": "gauge", "ordo_mempool_bytes": "gauge", "ordo_rounds_entered": "counter",
    "ordo_evidence_recorded": "counter", "ordo_submissions": "counter", "ordo_peers_connected": "gauge",
    "ordo_net_bytes_in": "counter", "ordo_net_rejected_frames": "counter",
}


async def test_metrics_parse_and_hold_the_expected_families(cluster: ClusterThread) -> None:
    async with AsyncOrdoClient(cluster.api(0)) as client:
        await client.wait_for_commit(await client.submit(9, b"metrics-" + tag()))
        text = await client.metrics()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, kind in EXPECTED_FAMILIES.items():
        assert name in families, f"{name} missing from /metrics"
        assert families[name].type == kind, (name, families[name].type)

    def value(name: str, suffix: str = "", **labels: str) -> float:
        return sum(s.value for s in families[name].samples
                   if s.name == name + suffix and all(s.labels.get(k) == v for k, v in labels.items()))

    assert value("ordo_committed_height") >= 1 and value("ordo_round") >= 1
    assert value("ordo_txs_committed", "_total") >= 1
    assert value("ordo_commit_latency_seconds", "_count") >= 1
    assert value("ordo_rounds_entered", "_total", via="qc") >= 1
    assert value("ordo_net_bytes_in", "_total") > 0
    assert {s.labels.get("via") for s in families["ordo_rounds_entered"].samples} <= {"qc", "tc"}
    assert value("ordo_peers_connected") == 3


async def test_openapi_is_served_with_the_replicas_limits(cluster: ClusterThread, http: httpx.AsyncClient) -> None:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == openapi_document(cluster.config.limits)
    metrics = await http.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
