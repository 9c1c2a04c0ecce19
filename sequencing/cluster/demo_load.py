"""Demo traffic for ``ordo up --load TX_PER_S``: transactions over several rollups, about one in
twenty submissions an atomic bundle across two or three rollups, spread over all replicas.

Paced by the clock, not by the answers: every tick sends what is due since the start
(``rate * elapsed`` minus what was already sent) without waiting for earlier requests, so slow
answers do not lower the offered rate. Requests in flight are bounded (``max_in_flight``, each
given ``REQUEST_TIMEOUT``); what a full window cannot send is counted as ``skipped``."""

from __future__ import annotations

import random
from typing import Any

import httpx
import trio

from ..config import ClusterConfig

ROLLUPS = (1, 2, 3, 4)
TICK = 0.1
BUNDLE_SHARE = 0.02  # bundles per offered transaction
REQUEST_TIMEOUT = 5.0
MAX_IN_FLIGHT = 64


class LoadGenerator:
    def __init__(self, config: ClusterConfig, client: httpx.AsyncClient, rate: float, *, seed: int = 7,
                 max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.config = config
        self.client = client
        self.rate = rate
        self.max_in_flight = max_in_flight
        self.rng = random.Random(seed)
        self.submitted = 0
        self.accepted = 0
        self.busy = 0
        self.errors = 0
        self.skipped = 0
        self.bundles = 0
        self.elapsed = 0.0
        self._scheduled = 0
        self._in_flight = 0
        self._seq = 0

    def _tx(self) -> dict[str, Any]:
        self._seq += 1
        rollup = self.rng.choice(ROLLUPS)
        return {"rollup_id": rollup, "data": f"demo-{self._seq}-rollup{rollup}"}

    async def run(self) -> None:
        urls = [self.config.api_url(r.id) for r in self.config.replicas]
        start = trio.current_time()
        turn = 0
        async with trio.open_nursery() as nursery:
            while True:
                turn += 1
                await trio.sleep_until(start + turn * TICK)
                self.elapsed = trio.current_time() - start
                due = int(self.rate * self.elapsed) - self._scheduled
                if due <= 0:
                    continue
                bundle_sizes = [self.rng.choice((2, 3)) for _ in range(int(due * BUNDLE_SHARE + self.rng.random()))]
                batch = max(0, due - sum(bundle_sizes))
                self._scheduled += batch + sum(bundle_sizes)
                for i, url in enumerate(urls):
                    share = batch // len(urls) + (1 if (i - turn) % len(urls) < batch % len(urls) else 0)
                    if share:
                        self._spawn(nursery, self._send_batch, url, share)
                for size in bundle_sizes:
                    self._spawn(nursery, self._send_bundle, urls[(turn + size) % len(urls)], size)

    def _spawn(self, nursery: trio.Nursery, send: Any, url: str, count: int) -> None:
        if self._in_flight >= self.max_in_flight:
            self.skipped += count
            return
        self._in_flight += 1
        self.submitted += count
        nursery.start_soon(self._bounded, send, url, count)

    async def _bounded(self, send: Any, url: str, count: int) -> None:
        try:
            with trio.move_on_after(REQUEST_TIMEOUT) as scope:
                await send(url, count)
            if scope.cancelled_caught:
                self.errors += count
        finally:
            self._in_flight -= 1

    async def _send_batch(self, url: str, count: int) -> None:
        txs = [self._tx() for _ in range(count)]
        try:
            response = await self.client.post(f"{url}/v1/transactions/batch", json={"transactions": txs},
                                              timeout=REQUEST_TIMEOUT)
            if response.status_code == 503:
                self.busy += count
                return
            body = response.json()
            self.accepted += body.get("accepted", 0)
            self.busy += sum(1 for r in body.get("rejected", []) if "full" in r.get("error", ""))
        except (httpx.HTTPError, ValueError):
            self.errors += count

    async def _send_bundle(self, url: str, size: int) -> None:
        rollups = self.rng.sample(ROLLUPS, size)
        self._seq += 1
        txs = [{"rollup_id": r, "data": f"bundle-{self._seq}-rollup{r}"} for r in rollups]
        try:
            response = await self.client.post(f"{url}/v1/bundles", json={"transactions": txs},
                                              timeout=REQUEST_TIMEOUT)
            if response.status_code in (200, 202):
                self.accepted += len(txs)
                self.bundles += 1
            elif response.status_code == 503:
                self.busy += len(txs)
        except (httpx.HTTPError, ValueError):
            self.errors += len(txs)

    def report(self) -> dict[str, Any]:
        offered = self.submitted / self.elapsed if self.elapsed > 0 else 0.0
        return {"target_tx_per_s": self.rate, "offered_tx_per_s": round(offered, 1), "seconds": round(self.elapsed, 1),
                "submitted": self.submitted, "accepted": self.accepted, "bundles": self.bundles,
                "busy": self.busy, "errors": self.errors, "skipped": self.skipped}
