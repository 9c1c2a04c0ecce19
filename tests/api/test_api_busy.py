"""A full mempool answers 503 + Retry-After (never silence), a bulk submission that fills it
part-way says which entries to resend, and the client library retries busy submissions.

Its own cluster: a 5-transaction mempool and a 3 s batch interval, so the mempool stays full
long enough to probe."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import trio

from sequencing.client.client import AsyncOrdoClient, Busy, RetryPolicy

from .apiutil import TIMING, ClusterThread, start_cluster

MEMPOOL = 5
BATCH_INTERVAL = 3.0


@pytest.fixture(scope="module")
def busy_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterThread]:
    thread = start_cluster(tmp_path_factory.mktemp("busy-cluster"),
                           timing={**TIMING, "batch_interval": BATCH_INTERVAL},
                           limits={"mempool_max_txs": MEMPOOL})
    try:
        yield thread
    finally:
        thread.stop()


class Recording(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        self.statuses.append(response.status_code)
        return response


def txs(prefix: str, n: int) -> list[dict[str, Any]]:
    return [{"rollup_id": 70, "data": f"{prefix}-{i}"} for i in range(n)]


async def mempool(http: httpx.AsyncClient) -> int:
    return int((await http.get("/status")).json()["mempool_txs"])


async def probe_full_mempool(cluster: ClusterThread, http: httpx.AsyncClient, n: int) -> dict[str, Any] | None:
    """Fill the mempool with a batch of MEMPOOL + 3, then probe while it is full; None if the
    batcher drained it mid-probe (the probes would then not have met a full pool)."""
    with trio.fail_after(BATCH_INTERVAL + 2):
        while await mempool(http) != 0:
            await trio.sleep(0.05)
    got: dict[str, Any] = {"client_errors": [], "recording": Recording()}

    async def fill() -> None:  # answers once its accepted entries are batched
        got["filler"] = await http.post("/v1/transactions/batch", json={"transactions": txs(f"fill{n}", MEMPOOL + 3)})

    async with trio.open_nursery() as nursery:
        nursery.start_soon(fill)
        with trio.fail_after(5):
            while await mempool(http) < MEMPOOL:
                await trio.sleep(0.01)
        got["single"] = await http.post("/v1/transactions", json={"rollup_id": 70, "data": f"p{n}"})
        got["batch"] = await http.post("/v1/transactions/batch", json={"transactions": txs(f"b{n}", 2)})
        got["bundle"] = await http.post("/v1/bundles", json={"transactions": txs(f"u{n}", 2)})
        async with AsyncOrdoClient(cluster.api(0), retry=RetryPolicy(attempts=0)) as impatient:
            try:
                await impatient.submit(70, b"impatient-%d" % n)
            except Busy as exc:
                got["client_errors"].append(exc)
        still_full = await mempool(http) == MEMPOOL
        # a patient client gets through once the batcher drains the pool
        async with AsyncOrdoClient(cluster.api(0), transport=got["recording"],
                                   retry=RetryPolicy(attempts=20, base=0.2, cap=1.0)) as patient:
            await patient.submit(70, b"patient-%d" % n)
    return got if still_full else None


async def test_full_mempool_is_503_with_retry_after(busy_cluster: ClusterThread) -> None:
    async with httpx.AsyncClient(base_url=busy_cluster.api(0), timeout=30) as http:
        for n in range(6):
            probes = await probe_full_mempool(busy_cluster, http, n)
            if probes is not None:
                break
        else:
            pytest.fail("could not catch the mempool full")

    for name in ("single", "bundle"):
        response = probes[name]
        assert response.status_code == 503, (name, response.text)
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"] == "busy" and "mempool full" in response.json()["detail"]
    batch = probes["batch"]
    assert batch.status_code == 503 and batch.headers["retry-after"] == "1"
    assert batch.json()["accepted"] == 0 and len(batch.json()["rejected"]) == 2
    errors = probes["client_errors"]
    assert errors and isinstance(errors[0], Busy) and errors[0].retry_after == 1

    partial = probes["filler"]
    assert partial.status_code == 200 and partial.headers["retry-after"] == "1"
    result = partial.json()
    assert result["accepted"] == MEMPOOL and [r["index"] for r in result["rejected"]] == [5, 6, 7]
    assert all("mempool full" in r["error"] for r in result["rejected"])
    statuses = probes["recording"].statuses
    assert 503 in statuses and statuses[-1] in (200, 202), statuses
