"""Client load that remembers what the cluster acknowledged, and the end-of-run checks every
scenario needs: sub-logs converged and identical, every acknowledged transaction committed exactly
once, bundles whole. Shared by the integration tests and scripts/faults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import trio

from ..rollup.transactions import Transaction
from .local import LocalCluster

ROLLUPS = (1, 2, 3, 4)


class Queryable(Protocol):
    """What the checks need of a cluster (LocalCluster; a fake one in the unit tests)."""

    @property
    def ids(self) -> list[int]: ...

    def running(self, replica_id: int) -> bool: ...

    async def status(self, replica_id: int) -> dict[str, Any] | None: ...

    async def get(self, replica_id: int, path: str, **kwargs: Any) -> httpx.Response: ...


class CheckFailed(AssertionError):
    def __init__(self, message: str, report: ExactlyOnce | None = None) -> None:
        super().__init__(message)
        self.report = report


class AckedLoad:
    """Submits transactions over several rollups (and bundles) until :meth:`stop`; requests in
    flight are completed, never abandoned (an abandoned request may still be accepted later)."""

    def __init__(self, cluster: LocalCluster, *, rollups: tuple[int, ...] = ROLLUPS, bundle_every: int = 10) -> None:
        self.cluster = cluster
        self.rollups = rollups
        self.bundle_every = bundle_every
        self.acked: dict[str, int] = {}  # tx id -> rollup
        self.sent_at: dict[str, float] = {}  # acknowledged tx id -> when its request was sent (trio clock)
        self.unacked: list[dict[str, Any]] = []  # submitted, no answer: may or may not commit
        self.bundles: list[list[str]] = []  # [bundle id, tx ids...]
        self.report: ExactlyOnce | None = None  # the last verdict's exactly-once report
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
        sent = trio.current_time()
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
                self.sent_at[tx_id] = sent

    async def _submit_bundle(self, replica: int) -> None:
        self.seq += 1
        txs: list[dict[str, Any]] = [{"rollup_id": r, "data": f"bundle-{self.seq}-{r}"} for r in self.rollups[:3]]
        sent = trio.current_time()
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
                self.sent_at[tx_id] = sent
            self.bundles.append([body["id"], *body["tx_ids"]])


async def converged_rollups(cluster: Queryable, ids: list[int] | None = None,
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


async def _quiescent_digests(cluster: Queryable, ids: list[int]) -> list[Any] | None:
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


async def _lookup_all(cluster: Queryable, replica: int, tx_ids: list[str]) -> dict[str, httpx.Response]:
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


@dataclass
class ExactlyOnce:
    """What the exactly-once check found, every problem counted (not just the first)."""

    acked: int = 0
    lost: list[str] = field(default_factory=list)  # acknowledged, not committed (or in another rollup)
    committed_twice: int = 0  # sub-log entries beyond the distinct submissions found committed
    missing: int = 0  # submissions found committed that the sub-logs do not count
    split_bundles: list[str] = field(default_factory=list)
    heights: dict[str, int] = field(default_factory=dict)  # acknowledged tx id -> committed height
    counted: bool = True  # False: no converged sub-logs to count against (twice is unknown)

    @property
    def ok(self) -> bool:
        return self.counted and not (self.lost or self.committed_twice or self.missing or self.split_bundles)

    def problems(self) -> list[str]:
        found = []
        if self.lost:
            found.append(f"{len(self.lost)} acknowledged tx(s) not committed, e.g. {self.lost[:3]}")
        if self.committed_twice:
            found.append(f"{self.committed_twice} tx(s) committed twice (or invented)")
        if self.missing:
            found.append(f"{self.missing} committed tx(s) missing from the sub-logs")
        if self.split_bundles:
            found.append(f"{len(self.split_bundles)} bundle(s) split across heights, e.g. {self.split_bundles[:3]}")
        if not self.counted:
            found.append("sub-logs not counted (they did not converge)")
        return found


Answer = tuple[int, dict[str, Any]]  # a lookup's HTTP status and JSON body


def judge(acked: dict[str, int], acked_answers: dict[str, Answer], unacked_answers: dict[str, tuple[int, Answer]],
          counts: dict[int, int] | None, bundles: list[list[str]],
          bundle_answers: dict[str, Answer]) -> ExactlyOnce:
    """The pure part of :func:`check_exactly_once`: lookups in, every problem out.
    ``unacked_answers`` maps a submitted-but-unanswered tx id to (its rollup, its lookup)."""
    report = ExactlyOnce(acked=len(acked), counted=counts is not None)
    committed: dict[int, int] = {}
    for tx_id, rollup in acked.items():
        code, body = acked_answers[tx_id]
        if code != 200 or body.get("status") != "committed" or body.get("rollup_id") != rollup:
            report.lost.append(tx_id)
            continue
        committed[rollup] = committed.get(rollup, 0) + 1
        report.heights[tx_id] = body["height"]
    for rollup, (_, body) in unacked_answers.values():
        if body.get("status") == "committed":
            committed[rollup] = committed.get(rollup, 0) + 1
    if counts is not None:
        for rollup in set(counts) | set(committed):
            surplus = counts.get(rollup, 0) - committed.get(rollup, 0)
            report.committed_twice += max(0, surplus)
            report.missing += max(0, -surplus)
    for bundle in bundles:
        if len({bundle_answers[t][1].get("height") for t in bundle[1:]}) != 1:
            report.split_bundles.append(bundle[0])
    return report


async def exactly_once_report(cluster: Queryable, load: AckedLoad, summary: dict[str, Any] | None,
                              replica: int) -> ExactlyOnce:
    """Look every submission up at ``replica`` and :func:`judge` the answers against the
    converged per-rollup counts ``summary`` (None: not converged, nothing to count against)."""
    def answers(responses: dict[str, httpx.Response]) -> dict[str, Answer]:
        return {t: (r.status_code, _body(r)) for t, r in responses.items()}

    acked = answers(await _lookup_all(cluster, replica, list(load.acked)))
    unacked = {Transaction(tx["rollup_id"], tx["data"].encode()).id.hex(): tx["rollup_id"] for tx in load.unacked}
    unacked = {tx_id: rollup for tx_id, rollup in unacked.items() if tx_id not in load.acked}
    found = answers(await _lookup_all(cluster, replica, list(unacked)))
    in_bundles = answers(await _lookup_all(cluster, replica, [t for bundle in load.bundles for t in bundle[1:]]))
    counts = None if summary is None else {int(r): v["txs"] for r, v in summary.items()}
    return judge(load.acked, acked, {t: (unacked[t], a) for t, a in found.items()}, counts, load.bundles, in_bundles)


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


async def check_exactly_once(cluster: Queryable, load: AckedLoad, summary: dict[str, Any],
                             replica: int) -> ExactlyOnce:
    """Every acknowledged transaction is committed; what was submitted without an answer may or
    may not be; nothing is committed twice or invented (per-rollup counts match exactly); every
    bundle landed in one block. Raises :class:`CheckFailed` naming every kind of problem found
    (with the counts in its ``report``); returns the report when there is none."""
    report = await exactly_once_report(cluster, load, summary, replica)
    if not report.ok:
        raise CheckFailed("; ".join(report.problems()), report)
    return report
