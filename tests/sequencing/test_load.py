"""``ordo up --load N`` offers N transactions per second whatever the replicas' answer latency
(it used to wait for every answer before the next tick, so 60 ms latency meant 2/3 of N)."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
import trio.testing

from sequencing.cluster.demo_load import LoadGenerator
from sequencing.cluster.local import write_local_config
from sequencing.config import load_config


def slow_replicas(latency: float, offered: list[int]) -> httpx.AsyncClient:
    async def handler(request: httpx.Request) -> httpx.Response:
        txs = json.loads(request.content)["transactions"]
        offered.append(len(txs))
        await trio.sleep(latency)
        if request.url.path.endswith("/bundles"):
            return httpx.Response(202, json={"id": "b", "tx_ids": ["t"] * len(txs)})
        return httpx.Response(200, json={"accepted": len(txs), "rejected": [], "ids": ["t"] * len(txs)})

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize("latency", [0.0, 0.06, 0.5])
async def test_offered_rate_is_the_target_whatever_the_latency(
        tmp_path, autojump_clock: trio.testing.MockClock, latency: float) -> None:
    config = load_config(write_local_config(tmp_path, n=4))
    offered: list[int] = []
    async with slow_replicas(latency, offered) as client:
        load = LoadGenerator(config, client, 200.0)
        with trio.move_on_after(5.0):
            await load.run()
    total = sum(offered)
    assert 900 <= total <= 1100, f"offered {total} transactions in 5 s at a target of 200/s"
    assert load.report()["submitted"] == total
    assert load.report()["offered_tx_per_s"] == pytest.approx(200.0, rel=0.1)


async def test_stalled_replicas_bound_the_requests_in_flight(
        tmp_path, autojump_clock: trio.testing.MockClock) -> None:
    config = load_config(write_local_config(tmp_path, n=4))
    in_flight = [0, 0]  # now, peak

    async def handler(request: httpx.Request) -> httpx.Response:
        in_flight[0] += 1
        in_flight[1] = max(in_flight[1], in_flight[0])
        try:
            await trio.sleep(1000.0)  # nobody answers
        finally:
            in_flight[0] -= 1
        raise AssertionError("unreachable")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        load = LoadGenerator(config, client, 200.0)
        with trio.move_on_after(30.0):
            await load.run()
    assert in_flight[1] == load.max_in_flight
    report = load.report()
    assert report["skipped"] > 0
    assert 0 < report["errors"] < report["submitted"]  # timed out; the last window was cut off by the end
