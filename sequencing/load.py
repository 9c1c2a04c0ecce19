"""Demo traffic for ``ordo up --load TX_PER_S``: transactions over several rollups, about one in
twenty submissions an atomic bundle across two or three rollups, spread over all replicas."""

from __future__ import annotations

import random
from typing import Any

import httpx
import trio

from .config import ClusterConfig

ROLLUPS = (1, 2, 3, 4)
TICK = 0.1
BUNDLE_SHARE = 0.02  # bundles per submitted transaction


class LoadGenerator:
    def __init__(self, config: ClusterConfig, client: httpx.AsyncClient, rate: float, *, seed: int = 7) -> None:
        self.config = config
        self.client = client
        self.rate = rate
        self.rng = random.Random(seed)
        self.submitted = 0
        self.accepted = 0
        self.busy = 0
        self.errors = 0
        self.bundles = 0
        self._seq = 0

    def _tx(self) -> dict[str, Any]:
        self._seq += 1
        rollup = self.rng.choice(ROLLUPS)
        return {"rollup_id": rollup, "data": f"demo-{self._seq}-rollup{rollup}"}

    async def run(self) -> None:
        urls = [self.config.api_url(r.id) for r in self.config.replicas]
        carry = 0.0
        turn = 0
        while True:
            carry += self.rate * TICK
            count, carry = int(carry), carry - int(carry)
            async with trio.open_nursery() as nursery:
                per = max(1, count // len(urls)) if count else 0
                remaining = count
                for url in urls:
                    if remaining <= 0:
                        break
                    n = min(per, remaining)
                    remaining -= n
                    nursery.start_soon(self._send_batch, url, n)
                if remaining > 0:
                    nursery.start_soon(self._send_batch, urls[turn % len(urls)], remaining)
                for _ in range(int(count * BUNDLE_SHARE + self.rng.random())):
                    turn += 1
                    nursery.start_soon(self._send_bundle, urls[turn % len(urls)])
            await trio.sleep(TICK)

    async def _send_batch(self, url: str, count: int) -> None:
        txs = [self._tx() for _ in range(count)]
        self.submitted += count
        try:
            response = await self.client.post(f"{url}/v1/transactions/batch", json={"transactions": txs},
                                              timeout=5.0)
            body = response.json()
            if response.status_code == 503:
                self.busy += count
                return
            self.accepted += body.get("accepted", 0)
            self.busy += sum(1 for r in body.get("rejected", []) if "full" in r.get("error", ""))
        except (httpx.HTTPError, ValueError):
            self.errors += count

    async def _send_bundle(self, url: str) -> None:
        rollups = self.rng.sample(ROLLUPS, self.rng.choice((2, 3)))
        self._seq += 1
        txs = [{"rollup_id": r, "data": f"bundle-{self._seq}-rollup{r}"} for r in rollups]
        self.submitted += len(txs)
        try:
            response = await self.client.post(f"{url}/v1/bundles", json={"transactions": txs}, timeout=5.0)
            if response.status_code in (200, 202):
                self.accepted += len(txs)
                self.bundles += 1
            elif response.status_code == 503:
                self.busy += len(txs)
        except (httpx.HTTPError, ValueError):
            self.errors += len(txs)

    def report(self) -> dict[str, Any]:
        return {"target_tx_per_s": self.rate, "submitted": self.submitted, "accepted": self.accepted,
                "bundles": self.bundles, "busy": self.busy, "errors": self.errors}
