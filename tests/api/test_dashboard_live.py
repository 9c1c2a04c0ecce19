"""The dashboard of a real replica in the shared test cluster, over real HTTP (no browser; the
browser tests are tests/browser): the snapshot describes the live committee and chain, a rollup's
sub-log tail links proofs that verify, the event stream sends a snapshot then commits, a stopped
peer turns "down", and recorded evidence links JSON that ``ordo evidence verify`` accepts."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from consensus.crypto import Verifier
from sequencing.client.client import AsyncOrdoClient
from sequencing.rollup.proofs import SliceProof

from .apiutil import ClusterThread, fresh_rollup
from .test_api_cli import ordo, replica_supports


async def snapshot(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/v1/dashboard/snapshot")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


async def until(http: httpx.AsyncClient, check: Any, timeout: float = 20.0) -> dict[str, Any]:
    """Poll the snapshot until ``check(view)`` holds (with a deadline)."""
    with trio.fail_after(timeout):
        while not check(view := await snapshot(http)):
            await trio.sleep(0.2)
    return view


async def test_the_snapshot_describes_the_live_committee_and_chain(
        cluster: ClusterThread, http: httpx.AsyncClient) -> None:
    view = await until(http, lambda v: all(m["state"] == "up" for m in v["committee"]) and len(v["blocks"]) >= 3
                       and sum(v["throughput"]["blocks"]) > 0)
    status = (await http.get("/status")).json()
    assert view["replica"] == 0 and view["size"] == 4 and view["chain_id"] == cluster.config.chain_id
    assert status["committed_height"] >= view["height"] >= 1
    members = view["committee"]
    assert [m["id"] for m in members] == [0, 1, 2, 3] and members[0]["self"]
    assert sum(m["leader"] for m in members) == 1 and members[view["leader"]]["leader"]
    assert all(m["connected"] and m["round"] is not None and m["heard_ago"] < 2 for m in members)
    heights = [b["height"] for b in view["blocks"]]
    assert heights == list(range(heights[0], heights[0] + len(heights))), "consecutive, oldest first"
    assert heights[-1] <= view["height"] and all(0 <= b["proposer"] < 4 for b in view["blocks"])
    assert all(b["kind"] in ("qc", "timeout") and len(b["id"]) == 64 for b in view["blocks"])
    block = (await http.get(f"/v1/blocks/{heights[-1]}")).json()
    assert block["id"] == view["blocks"][-1]["id"], "the timeline's block is the committed block"
    series = view["throughput"]
    assert len(series["txs"]) == len(series["blocks"]) == len(series["latency_ms"]) == series["seconds"]
    assert sum(series["blocks"]) <= view["height"]
    assert set(view["faults"]) == {"rules", "byzantine"} and view["faults"]["byzantine"] is None


async def test_a_rollups_tail_links_proofs_that_verify(cluster: ClusterThread, http: httpx.AsyncClient) -> None:
    rollup = fresh_rollup()
    await snapshot(http)  # a dashboard is watching from now on: rollups are tracked
    async with AsyncOrdoClient(cluster.api(0)) as client:
        where = await client.wait_for_commit(await client.submit(rollup, b"dash-" + os.urandom(4).hex().encode()))
    view = await until(http, lambda v: any(r["id"] == rollup for r in v["rollups"]))
    [row] = [r for r in view["rollups"] if r["id"] == rollup]
    assert row["height"] == where.height and row["txs"] == 1
    [entry] = row["tail"]
    assert entry["verified"] and entry["proof"] == f"/v1/rollups/{rollup}/slices/{where.height}"
    proof = SliceProof.from_json((await http.get(entry["proof"])).json())
    proof.verify(Verifier(cluster.committee))
    assert proof.rollup_id == rollup and len(proof.transactions) == 1


def metric(text: str, name: str) -> float:
    return next(float(line.split()[1]) for line in text.splitlines() if line.startswith(name + " "))


async def sse(http: httpx.AsyncClient, path: str) -> AsyncGenerator[tuple[str, Any], None]:
    async with http.stream("GET", path, timeout=httpx.Timeout(10, read=30)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        kind, data = None, None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif not line and kind is not None:
                yield kind, data
                kind, data = None, None


async def test_the_event_stream_sends_a_snapshot_then_commits(cluster: ClusterThread, http: httpx.AsyncClient) -> None:
    kinds, heights = [], []
    with trio.fail_after(30):
        async with aclosing(sse(http, "/v1/dashboard/events")) as events:
            async for kind, data in events:
                kinds.append(kind)
                if kind == "snapshot":
                    heights.append(data["height"])
                    metrics = (await http.get("/metrics")).text
                    assert metric(metrics, "ordo_dashboard_streams") >= 1, "the open stream is counted"
                    assert metric(metrics, "ordo_dashboard_streams_dropped_total") == 0
                elif kind == "commit":
                    assert data["blocks"] and data["height"] >= data["blocks"][-1]["height"]
                    heights.append(data["blocks"][-1]["height"])
                if kinds.count("commit") >= 3 and "status" in kinds:
                    break
    assert kinds[0] == "snapshot" and set(kinds) <= {"snapshot", "commit", "status"}
    assert heights == sorted(heights) and heights[-1] > heights[0], "the heights advance"


async def test_a_stopped_peer_turns_down_and_up_again(cluster: ClusterThread, http: httpx.AsyncClient) -> None:
    harness = cluster.harness
    try:
        await cluster.run(harness.stop, 2)
        view = await until(http, lambda v: v["committee"][2]["state"] == "down", timeout=15)
        assert not view["committee"][2]["connected"]
    finally:
        await cluster.run(harness.start, 2)
    await until(http, lambda v: v["committee"][2]["state"] == "up", timeout=30)


async def test_recorded_evidence_links_json_that_evidence_verify_accepts(
        cluster: ClusterThread, http: httpx.AsyncClient, tmp_path: Path) -> None:
    if not replica_supports("--byzantine"):
        pytest.skip("this build's replica has no --byzantine fault injection")
    try:
        await cluster.restart_byzantine(3, "double-vote")
        view = await until(http, lambda v: any(e["offender"] == 3 for e in v["evidence"]), timeout=30)
    finally:
        await cluster.restart(3)
    row = next(e for e in view["evidence"] if e["offender"] == 3)
    assert row["kind"] == "double_vote" and row["block_a"] != row["block_b"] and len(row["block_a"]) == 64
    assert row["committed"] is (row["committed_height"] is not None)
    served = await http.get(row["json"])
    assert served.status_code == 200 and [r["id"] for r in served.json()] == [row["id"]]
    (tmp_path / "evidence.json").write_text(served.text)
    run = await ordo("evidence", "verify", tmp_path / "evidence.json", config=cluster.config_path)
    assert run.code == 0 and "valid: replica 3 signed two different votes" in run.out, run.err
