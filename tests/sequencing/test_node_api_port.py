"""A real Node is the public API's ReplicaPort (sequencing/api/port.py): the app served over a
node_rig replica (real core, real SQLite ledger) answers from the node's ledger and mempool, and
acknowledges a submission only once the node's batcher has written it to disk."""

from __future__ import annotations

from pathlib import Path

import httpx
import trio
from node_rig import node_rig

from sequencing.api.app import build_app
from sequencing.replica.node import Node
from sequencing.rollup.transactions import Transaction

TX = {"rollup_id": 7, "data": "hello"}


def client(node: Node) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(node)), base_url="http://replica")


async def test_the_api_reads_a_real_nodes_ledger_and_mempool(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    async with node_rig(tmp_path, 0) as rig, client(rig.node) as http:
        status = (await http.get("/status")).json()
        assert status["id"] == 0 and status["committed_height"] == 0
        assert (await http.get("/v1/rollups")).json() == {}
        assert (await http.get("/v1/evidence", params={"offender": 1})).json() == []
        block = await http.get("/v1/blocks/1")
        assert block.status_code == 404 and "committed height is 0" in block.json()["detail"]
        unknown = await http.get("/v1/transactions/" + "ab" * 32)
        assert (unknown.status_code, unknown.json()["status"]) == (404, "unknown")
        assert "ordo_committed_height" in (await http.get("/metrics")).text
        # no batcher runs here: the item is queued, never batched, so it is not acknowledged
        submitted = await http.post("/v1/transactions", json=TX)
        assert (submitted.status_code, submitted.json()["error"]) == (503, "busy")
        assert rig.node.last_arrival == 1
        pending = await http.get("/v1/transactions/" + Transaction(7, b"hello").id.hex())
        assert pending.json()["status"] == "pending"


async def test_a_submission_is_acknowledged_once_the_nodes_batcher_wrote_it(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with node_rig(tmp_path, 0) as rig, client(rig.node) as http:
        rig.node._require_nursery().start_soon(rig.node.intake.run)
        submitted = await http.post("/v1/transactions", json=TX)
        assert (submitted.status_code, submitted.json()["status"]) == (202, "pending")
        assert rig.node.intake.durable_arrival == rig.node.last_arrival == 1
