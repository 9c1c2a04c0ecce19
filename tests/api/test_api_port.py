"""The public and admin apps driven in-process (httpx's ASGI transport): the public app over a
fake ReplicaPort, the admin app over a real FaultRules. What these check needs no cluster: what the
API asks of the port, and when."""

from __future__ import annotations

import httpx
from prometheus_client import Counter
from starlette.applications import Starlette

from network import FaultRules
from sequencing.api.admin import build_admin_app
from sequencing.api.app import build_app

from .fake_replica import FakeReplica

TX = {"rollup_id": 7, "data": "hello"}


def client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://replica")


async def test_reads_before_the_ledger_is_open_are_503_starting() -> None:
    replica = FakeReplica(ledger_open=False)
    async with client(build_app(replica)) as http:
        for path in ("/v1/transactions/" + "ab" * 32, "/v1/bundles/" + "ab" * 32, "/v1/rollups", "/v1/evidence"):
            response = await http.get(path)
            assert (response.status_code, response.json()["error"]) == (503, "starting"), path
        assert (await http.get("/status")).status_code == 200
    assert replica.reads == 0, "the ledger was not read before it was open"


async def test_a_submission_is_acknowledged_only_once_batched_to_disk() -> None:
    replica = FakeReplica(batched=False)
    async with client(build_app(replica)) as http:
        response = await http.post("/v1/transactions", json=TX)
        assert (response.status_code, response.json()["error"]) == (503, "busy")
        replica.batched = True
        again = await http.post("/v1/transactions", json=TX)
        assert (again.status_code, again.json()["status"]) == (200, "duplicate")
        tx_id = again.json()["id"]
        status = await http.get(f"/v1/transactions/{tx_id}")
        assert (status.status_code, status.json()["status"]) == (200, "pending")
        other = await http.post("/v1/transactions", json={**TX, "data": "other"})
        assert (other.status_code, other.json()["status"]) == (202, "pending")
        assert replica.reads == 2, "the status read the ledger: tx location, then bundle location"


async def test_a_batch_into_a_full_mempool_takes_what_fits() -> None:
    replica = FakeReplica(room=1)
    batch = {"transactions": [{**TX, "data": str(i)} for i in range(3)]}
    async with client(build_app(replica)) as http:
        response = await http.post("/v1/transactions/batch", json=batch)
        body = response.json()
        assert response.status_code == 200 and response.headers["retry-after"] == "1"
        assert body["accepted"] == 1 and body["ids"][1:] == [None, None]
        assert [r["index"] for r in body["rejected"]] == [1, 2]
        full = await http.post("/v1/transactions/batch", json={"transactions": [{**TX, "data": "x"}]})
        assert full.status_code == 503 and full.json()["accepted"] == 0


async def test_metrics_are_the_ports_registry_and_unknown_routes_are_json_404() -> None:
    replica = FakeReplica()
    Counter("ordo_example", "a counter of the replica's", registry=replica.metrics_registry).inc(3)
    async with client(build_app(replica)) as http:
        assert "ordo_example_total 3.0" in (await http.get("/metrics")).text
        missing = await http.get("/v1/nothing")
        assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
        wrong = await http.delete("/status")
        assert (wrong.status_code, wrong.json()["error"]) == (405, "method_not_allowed")


async def test_admin_faults_put_replaces_patch_merges_delete_clears() -> None:
    faults = FaultRules()
    async with client(build_admin_app(faults, replica_id=3)) as http:
        put = await http.put("/admin/faults", json={"1": {"drop": 0.5}, "2": {"blocked": True}})
        assert put.status_code == 200 and set(put.json()) == {"1", "2"}
        patch = await http.patch("/admin/faults", json={"1": {"delay": 0.25}})
        assert patch.json()["1"] == {"drop": 0.5, "delay": 0.25, "jitter": 0.0, "blocked": False}
        assert faults.is_blocked(2), "PATCH kept the peers it did not name"
        replaced = await http.put("/admin/faults", json={"1": {"delay": 0.25}})
        assert set(replaced.json()) == {"1"} and not faults.is_blocked(2), "PUT replaced every rule"
        bad = await http.patch("/admin/faults", json={"1": {"drop": 2}, "2": {"blocked": True}})
        assert (bad.status_code, bad.json()["error"]) == (400, "invalid_faults")
        assert not faults.is_blocked(2), "a refused change changes nothing"
        assert (await http.put("/admin/faults", json=[1])).json()["error"] == "invalid_faults"
        assert (await http.get("/admin/faults")).json() == faults.snapshot()
        assert (await http.delete("/admin/faults")).json() == {} and faults.snapshot() == {}
        assert (await http.post("/admin/faults", json={})).status_code == 405
