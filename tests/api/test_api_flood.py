"""A client flood cannot starve consensus (issue 8, item 9): malformed JSON (or valid GET /status)
on 200 keep-alive connections to one replica, with the default API limits, leaves the cluster's
block rate within 2x of the unflooded rate measured in the same test, and every refusal is counted
in /metrics.

With the caps and rates lifted (every api_* limit at 10**9) either flood cut the rate from ~33 to
~6 blocks/s on the development machine, as the issue reported (51 -> 7); a GET /status flood at
~450 requests/s cut it 3x under a 1000/s per-address rate, hence the 200/s default."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import trio

from .apiutil import ClusterThread, start_cluster
from .flood import MALFORMED, STATUS, FloodStats, block_rate, committed_height, flood

CONNECTIONS = 200
WINDOW = 3.0
FLOODED = 0


@pytest.fixture(scope="module")
def default_limits_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterThread]:
    thread = start_cluster(tmp_path_factory.mktemp("flood-cluster"), relaxed_api=False)
    try:
        yield thread
    finally:
        thread.stop()


async def refusals(http: httpx.AsyncClient, url: str) -> dict[str, float]:
    """ordo_api_refused_total by reason (retrying while the flooder's address is still throttled)."""
    with trio.fail_after(20):
        while (response := await http.get(f"{url}/metrics", timeout=5)).status_code == 429:
            await trio.sleep(float(response.headers["retry-after"]))
    out = {}
    for line in response.text.splitlines():
        if line.startswith("ordo_api_refused_total{"):
            labels, value = line.rsplit(" ", 1)
            out[labels.split('"')[1]] = float(value)
    return out


# the valid-request flood has the thinner margin (0.65-0.95 of the unflooded rate under load): slow profile
@pytest.mark.parametrize(("request_bytes", "answer", "reason"), [
    pytest.param(MALFORMED, 400, "bad_request", id="malformed-json"),
    pytest.param(STATUS, 200, None, id="valid-status", marks=pytest.mark.slow)])
async def test_api_flood_leaves_the_block_rate_within_2x(default_limits_cluster: ClusterThread, request_bytes: bytes,
                                                        answer: int, reason: str | None) -> None:
    cluster = default_limits_cluster
    observer = cluster.api(1)  # the block rate as a replica that is not flooded sees it
    target = cluster.api(FLOODED)
    host, port = "127.0.0.1", int(target.rsplit(":", 1)[1])
    async with httpx.AsyncClient() as http:
        before = await block_rate(http, observer, WINDOW)
        stats = FloodStats()
        async with trio.open_nursery() as nursery:
            async def run_flood() -> None:
                nonlocal stats
                stats = await flood(host, port, CONNECTIONS, WINDOW + 1.5, request_bytes)
            nursery.start_soon(run_flood)
            await trio.sleep(1.0)  # let the flood ramp up before measuring
            during = await block_rate(http, observer, WINDOW)
        after = await block_rate(http, observer, WINDOW)
        unflooded = (before + after) / 2
        print(f"blocks/s: before {before:.1f}, flooded {during:.1f}, after {after:.1f}; flood: "
              f"{stats.requests} answers {dict(stats.statuses)} over {stats.connections} connections")
        assert stats.statuses[answer] > 0, "the flood reached the replica"
        assert before > 0 and after > 0
        assert during * 2 >= unflooded, (before, during, after)

        reasons = await refusals(http, target)
        if reason is not None:
            assert reasons.get(reason, 0) >= stats.statuses[answer] > 0
        assert reasons.get("rate_limited", 0) >= stats.statuses[429] > 0
        assert reasons.get("client_connections", 0) > 0, reasons
        # the flooded replica kept up
        with trio.fail_after(15):
            while await committed_height(http, target) < await committed_height(http, observer) - 5:
                await trio.sleep(0.2)


def rss_mb(cluster: ClusterThread, replica: int) -> float:
    pid = cluster.harness.processes[replica].pid
    for line in open(f"/proc/{pid}/status").read().splitlines():  # noqa: SIM115
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_a_31_mb_batch_is_refused_before_it_costs_memory(default_limits_cluster: ClusterThread) -> None:
    """The issue's valid 31 MB batch raised a replica's RSS from 128 to 234 MB for good."""
    cluster = default_limits_cluster
    limit = cluster.config.limits.api_max_body_bytes
    entry = {"rollup_id": 3, "payload": "ab" * 3000}
    count = 31 * 1024 * 1024 // len(json.dumps(entry))
    body = json.dumps({"transactions": [{**entry, "payload": f"{i:08x}" + entry["payload"]}
                                        for i in range(count)]}).encode()
    assert len(body) > 30 * 1024 * 1024
    before = rss_mb(cluster, 2)
    async with httpx.AsyncClient(base_url=cluster.api(2), timeout=30) as http:
        declared = await http.post("/v1/transactions/batch", content=body,
                                   headers={"content-type": "application/json"})
        assert declared.status_code == 413 and declared.json()["error"] == "too_large"

        async def chunks() -> Any:  # no Content-Length: refused once the stream passes the cap
            for i in range(0, len(body), 1 << 20):
                yield body[i:i + (1 << 20)]

        streamed = await http.post("/v1/transactions/batch", content=chunks())
        assert streamed.status_code == 413 and f"{limit} bytes" in streamed.json()["detail"]
    assert rss_mb(cluster, 2) - before < 40, (before, rss_mb(cluster, 2))
