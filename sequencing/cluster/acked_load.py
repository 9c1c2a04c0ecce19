"""Client load that remembers what the cluster acknowledged, and the end-of-run checks every
scenario needs: sub-logs converged and identical, every acknowledged transaction committed exactly
once, bundles whole. Shared by the integration tests and scripts/faults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import trio

from ..rollup.transactions import Transaction
from .local import LocalCluster

ROLLUPS = (1, 2, 3, 4)


class CheckFailed(AssertionError):
    pass


class AckedLoad:
    """Submits transactions over several rollups (and bundles) until :meth:`stop`; requests in
    flight are completed, never abandoned (an abandoned request may still be accepted later)."""

    def __init__(self, cluster: LocalCluster, *, rollups: tuple[int, ...] = ROLLUPS, bundle_every: int = 10) -> None:
        self.cluster = cluster
        self.rollups = rollups
        self.bundle_every = bundle_every
        self.acked: dict[str, int] = {}  # tx id -> rollup
        self.unacked: list[dict[str, Any]] = []  # submitted, no answer: may or may not commit
        self.bundles: list[list[str]] = []  # [bundle id, tx ids...]
        self.seq = 0
        self.stopping = False
        self._idle = trio.Event()

    async def run(self, *, per_tick: int = 30, tick: float = 0.05,
                  targets: Callable[[], list[int]] | None = None) -> None:
        self.stopping = False
        self._idle = trio.Event()
        turn = 0
        while not self.stopping:
            ids = targets() if targets is not None else self.cluster.ids
            turn += 1
            replica = ids[turn % len(ids)]
            await self._submit_batch(replica, per_tick)
            if self.bundle_every and turn % self.bundle_every == 0:
                await self._submit_bundle(replica)
            await trio.sleep(tick)
        self._idle.set()

    async def stop(self) -> None:
        self.stopping = True
        await self._idle.wait()

    async def _submit_batch(self, replica: int, count: int) -> None:
        txs: list[dict[str, Any]] = []
        for _ in range(count):
            self.seq += 1
            txs.append({"rollup_id": self.rollups[self.seq % len(self.rollups)], "data": f"tx-{self.seq}"})
        try:
            response = await self.cluster.post(replica, "/v1/transactions/batch", json={"transactions": txs})
        except BaseException as exc:  # died, too slow, or we were cancelled: nothing acknowledged
            self.unacked.extend(txs)
            if not isinstance(exc, Exception):
                raise
            return
        if response.status_code != 200:
            self.unacked.extend(txs)
            return
        for tx, tx_id in zip(txs, response.json()["ids"], strict=True):
            if tx_id is not None:
                self.acked[tx_id] = tx["rollup_id"]

    async def _submit_bundle(self, replica: int) -> None:
        self.seq += 1
        txs: list[dict[str, Any]] = [{"rollup_id": r, "data": f"bundle-{self.seq}-{r}"} for r in self.rollups[:3]]
        try:
            response = await self.cluster.post(replica, "/v1/bundles", json={"transactions": txs})
        except BaseException as exc:
            self.unacked.extend(txs)
            if not isinstance(exc, Exception):
                raise
            return
        if response.status_code in (200, 202):
            body = response.json()
            for tx, tx_id in zip(txs, body["tx_ids"], strict=True):
                self.acked[tx_id] = tx["rollup_id"]
            self.bundles.append([body["id"], *body["tx_ids"]])


async def converged_rollups(cluster: LocalCluster, ids: list[int] | None = None,
                            timeout: float = 60) -> dict[str, Any]:
    """Wait until the replicas are quiescent and agree; returns their per-rollup digests.

    Quiescent: no replica holds an uncommitted transaction or batch, and every one reports the
    same digests on two polls in a row. One poll is not enough: a block whose batches are already
    marked committed may still be on its way to disk, so equal digests can be about to change."""
    ids = cluster.ids if ids is None else ids
    previous: list[Any] | None = None
    snapshot: list[Any] | None = None
    with trio.move_on_after(timeout):
        while True:
            snapshot = await _quiescent_digests(cluster, ids)
            if snapshot is not None and snapshot == previous:
                return snapshot[0]  # type: ignore[no-any-return]
            previous = snapshot
            await trio.sleep(0.3)
    raise CheckFailed(f"rollup sub-logs did not converge within {timeout}s: {snapshot}")


async def _quiescent_digests(cluster: LocalCluster, ids: list[int]) -> list[Any] | None:
    """Every replica's rollup digests, or None while one is unreachable, holds uncommitted work,
    or disagrees with the others."""
    digests: list[Any] = []
    for rid in ids:
        status = await cluster.status(rid)
        if status is None or status["mempool_txs"] or status["pending_batches"]:
            return None
        try:
            digests.append((await cluster.get(rid, "/v1/rollups", timeout=2.0)).json())
        except (httpx.HTTPError, ValueError):
            return None
    return digests if all(d == digests[0] for d in digests) else None


LOOKUPS_IN_FLIGHT = 16  # transaction lookups at once (one by one, a long run took minutes)


async def _lookup_all(cluster: LocalCluster, replica: int, tx_ids: list[str]) -> dict[str, httpx.Response]:
    """``GET /v1/transactions/{id}`` for every id, ``LOOKUPS_IN_FLIGHT`` workers at a time."""
    answers: dict[str, httpx.Response] = {}
    pending = iter(tx_ids)

    async def worker() -> None:
        for tx_id in pending:  # shared: each id is taken by exactly one worker
            answers[tx_id] = await cluster.get(replica, f"/v1/transactions/{tx_id}")

    async with trio.open_nursery() as nursery:
        for _ in range(LOOKUPS_IN_FLIGHT):
            nursery.start_soon(worker)
    return answers


async def check_exactly_once(cluster: LocalCluster, load: AckedLoad, summary: dict[str, Any],
                             replica: int) -> None:
    """Every acknowledged transaction is committed; what was submitted without an answer may or
    may not be; nothing is committed twice or invented (per-rollup counts match exactly); every
    bundle landed in one block."""
    committed: dict[int, int] = {}
    acked = await _lookup_all(cluster, replica, list(load.acked))
    for tx_id, rollup in load.acked.items():
        response = acked[tx_id]
        body = response.json()
        if response.status_code != 200 or body.get("status") != "committed" or body.get("rollup_id") != rollup:
            raise CheckFailed(f"acknowledged tx {tx_id} not committed: {response.text}")
        committed[rollup] = committed.get(rollup, 0) + 1
    unacked = {Transaction(tx["rollup_id"], tx["data"].encode()).id.hex(): tx["rollup_id"] for tx in load.unacked}
    unacked = {tx_id: rollup for tx_id, rollup in unacked.items() if tx_id not in load.acked}
    for tx_id, response in (await _lookup_all(cluster, replica, list(unacked))).items():
        if response.json().get("status") == "committed":
            committed[unacked[tx_id]] = committed.get(unacked[tx_id], 0) + 1
    counts = {int(r): v["txs"] for r, v in summary.items()}
    if counts != committed:
        raise CheckFailed(f"per-rollup counts {counts} differ from the committed submissions {committed}")
    in_bundles = await _lookup_all(cluster, replica, [t for bundle in load.bundles for t in bundle[1:]])
    for bundle in load.bundles:
        heights = {in_bundles[t].json()["height"] for t in bundle[1:]}
        if len(heights) != 1:
            raise CheckFailed(f"bundle {bundle[0]} split across heights {sorted(heights)}")
