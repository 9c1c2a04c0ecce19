"""Teeth of the fault scripts' verdict (sequencing/cluster/fault_verdict.py, acked_load.py): fed a
fake cluster's answers describing a history with a lost acknowledged transaction, a transaction
committed twice or a conflicting block, the verdict reports each (counted, not just the first)
and fails; the clean history passes. Also the commit watch's gap arithmetic."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

from sequencing.cluster.acked_load import AckedLoad, CheckFailed, check_exactly_once
from sequencing.cluster.commit_watch import commit_latencies, longest_gap
from sequencing.cluster.fault_verdict import conflicting_heights, verdict

HEIGHT = 30


class FakeCluster:
    """Three replicas whose answers come from tables the test edits."""

    def __init__(self) -> None:
        self.ids = [0, 1, 2]
        self.txs: dict[str, dict[str, Any]] = {}  # tx id -> /v1/transactions/{id} body (absent: 404)
        self.counts = {1: 0, 2: 0}  # per-rollup tx counts in the (converged) sub-logs
        self.chains = {r: {h: f"block-{h}" for h in range(1, HEIGHT + 1)} for r in self.ids}

    def running(self, replica_id: int) -> bool:
        return True

    async def status(self, replica_id: int) -> dict[str, Any] | None:
        return {"mempool_txs": 0, "pending_batches": 0, "committed_height": HEIGHT}

    async def get(self, replica_id: int, path: str, **kwargs: Any) -> httpx.Response:
        await trio.lowlevel.checkpoint()
        parts = path.strip("/").split("/")
        if path == "/v1/rollups":
            return httpx.Response(200, json={str(r): {"txs": n, "digest": f"d{n}"} for r, n in self.counts.items()})
        if parts[:2] == ["v1", "transactions"]:
            body = self.txs.get(parts[2])
            return httpx.Response(404, json={"error": "not_found"}) if body is None else httpx.Response(200, json=body)
        if parts[:2] == ["v1", "blocks"]:
            return httpx.Response(200, json={"id": self.chains[replica_id][int(parts[2])]})
        if path == "/v1/evidence":
            return httpx.Response(200, json=[])
        raise AssertionError(path)


def clean_history(txs: int = 6) -> tuple[FakeCluster, AckedLoad]:
    """``txs`` acknowledged transactions over rollups 1 and 2, each committed once."""
    cluster = FakeCluster()
    load = AckedLoad(cluster)  # type: ignore[arg-type]
    for i in range(txs):
        tx_id, rollup = f"{i:064x}", 1 + i % 2
        load.acked[tx_id] = rollup
        cluster.txs[tx_id] = {"status": "committed", "rollup_id": rollup, "height": 10 + i}
        cluster.counts[rollup] += 1
    return cluster, load


async def test_a_clean_history_passes(autojump_clock: trio.abc.Clock) -> None:
    cluster, load = clean_history()
    result = await verdict(cluster, load)
    assert result["ok"] is True, result
    assert (result["acked"], result["acked_lost"], result["committed_twice"]) == (6, 0, 0)
    assert result["agreement"] is True and result["identical_sublogs"] is True
    assert load.report is not None and load.report.heights[f"{0:064x}"] == 10


async def test_every_lost_acknowledged_transaction_is_counted(autojump_clock: trio.abc.Clock) -> None:
    cluster, load = clean_history()
    del cluster.txs[f"{1:064x}"]  # never committed
    cluster.txs[f"{2:064x}"]["status"] = "pending"
    cluster.counts = {1: 2, 2: 2}  # the sub-logs hold only what was committed
    result = await verdict(cluster, load)
    assert result["ok"] is False and result["acked_lost"] == 2, result
    assert result["committed_twice"] == 0 and "2 acknowledged tx(s) not committed" in result["failure"]
    with pytest.raises(CheckFailed) as caught:
        await check_exactly_once(cluster, load, {"1": {"txs": 2}, "2": {"txs": 2}}, 0)
    assert caught.value.report is not None and len(caught.value.report.lost) == 2


async def test_a_transaction_committed_twice_is_counted(autojump_clock: trio.abc.Clock) -> None:
    cluster, load = clean_history()
    cluster.counts[1] += 1  # one more entry in rollup 1's sub-log than distinct committed submissions
    result = await verdict(cluster, load)
    assert result["ok"] is False and result["committed_twice"] == 1 and result["acked_lost"] == 0, result
    assert "committed twice" in result["failure"]


async def test_a_conflicting_block_breaks_agreement(autojump_clock: trio.abc.Clock) -> None:
    cluster, load = clean_history()
    cluster.chains[2][HEIGHT - 3] = "another-block"
    result = await verdict(cluster, load)
    assert result["ok"] is False and result["agreement"] is False, result
    assert result["conflicting_heights"] == [HEIGHT - 3]
    assert (result["acked_lost"], result["committed_twice"]) == (0, 0)


def test_conflicting_heights_names_each_height() -> None:
    assert conflicting_heights({0: {1: "a", 2: "b"}, 1: {1: "a", 2: "b"}}) == []
    assert conflicting_heights({0: {1: "a", 2: "b", 3: "c"}, 1: {1: "x", 2: "b", 3: "y"}}) == [1, 3]


def test_longest_gap_counts_the_ends_of_the_window() -> None:
    assert longest_gap([1.0, 1.5, 4.0], 0.0, 5.0) == (2.5, 1.5)
    assert longest_gap([], 2.0, 3.0) == (1.0, 2.0)  # nothing committed: the whole window
    assert longest_gap([0.5, 9.0], 1.0, 2.0) == (1.0, 1.0)  # events outside the window do not count


def test_commit_latency_is_submission_to_first_sight_of_the_block() -> None:
    sent = {"a": 1.0, "b": 2.0, "c": 5.0}
    assert commit_latencies(sent, {"a": 3, "b": 4, "c": 9}, {3: 1.25, 4: 2.5}, 0.0, 4.0) == [0.25, 0.5]
