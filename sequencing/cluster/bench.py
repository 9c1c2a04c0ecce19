"""``ordo bench``: start a throwaway local cluster, drive it, print throughput and latency.

Without load (``--empty``) it measures rounds/s and blocks/s committed with empty blocks. With
load, client tasks submit batches of transactions over several rollups to every replica as fast
as the cluster takes them (or at ``--rate``); it reports submitted/committed tx/s, and commit
latency as seen by a client (a sample of transactions polled until committed) and by the
replicas (submission to durable commit histogram)."""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from .local import LocalCluster, write_local_config


@dataclass
class BenchOptions:
    replicas: int = 4
    duration: float = 20.0
    warmup: float = 3.0
    rate: float | None = None  # tx/s in total; None = as fast as accepted
    tx_bytes: int = 100
    batch: int = 200  # transactions per HTTP request
    clients: int = 8
    rollups: int = 8
    empty: bool = False
    catch_up: int = 0  # > 0: measure catching up this many blocks instead
    json_path: Path | None = None
    keep: bool = False


@dataclass
class BenchResult:
    options: dict[str, Any]
    seconds: float = 0.0
    rounds: int = 0
    blocks: int = 0
    submitted: int = 0
    accepted: int = 0
    busy: int = 0
    committed: int = 0
    client_latency: list[float] = field(default_factory=list)
    server_latency: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.client_latency)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 4) if lat else None

        return {
            "options": self.options,
            "seconds": round(self.seconds, 2),
            "rounds_per_s": round(self.rounds / self.seconds, 1),
            "blocks_per_s": round(self.blocks / self.seconds, 1),
            "submitted_tx_per_s": round(self.submitted / self.seconds, 1),
            "accepted_tx_per_s": round(self.accepted / self.seconds, 1),
            "committed_tx_per_s": round(self.committed / self.seconds, 1),
            "busy_answers": self.busy,
            "client_latency_s": {"samples": len(lat), "p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99),
                                 "mean": round(statistics.fmean(lat), 4) if lat else None},
            "server_latency_s": self.server_latency,
        }


class Bench:
    def __init__(self, cluster: LocalCluster, options: BenchOptions) -> None:
        self.cluster = cluster
        self.options = options
        self.result = BenchResult({k: str(v) if isinstance(v, Path) else v for k, v in vars(options).items()})
        self.rng = random.Random(1)
        self.measuring = False
        self._seq = 0
        self.targets = list(cluster.ids)  # replicas the clients submit to

    async def run(self) -> BenchResult:
        o = self.options
        async with trio.open_nursery() as nursery:
            if not o.empty:
                for client in range(o.clients):
                    nursery.start_soon(self._client, client)
            await trio.sleep(o.warmup)
            start = await self._snapshot()
            self.measuring = True
            began = time.perf_counter()
            await trio.sleep(o.duration)
            self.measuring = False
            end = await self._snapshot()
            self.result.seconds = time.perf_counter() - began
            nursery.cancel_scope.cancel()
        self.result.rounds = end["round"] - start["round"]
        self.result.blocks = end["height"] - start["height"]
        self.result.committed = end["txs"] - start["txs"]
        self.result.server_latency = await self._server_latency()
        return self.result

    async def _snapshot(self) -> dict[str, int]:
        status = await self.cluster.status(0) or {}
        return {"round": status.get("round", 0), "height": status.get("committed_height", 0),
                "txs": status.get("txs_committed", 0)}

    def _payload(self) -> str:
        self._seq += 1
        head = f"{self._seq}:"
        return (head + "x" * max(0, self.options.tx_bytes - len(head))).encode().hex()

    async def _client(self, index: int) -> None:
        o = self.options
        ids = self.targets
        interval = 0.0 if o.rate is None else o.batch * o.clients / o.rate
        turn = index
        while True:
            started = time.perf_counter()
            turn += 1
            replica = ids[turn % len(ids)]
            txs = [{"rollup_id": 1 + self.rng.randrange(o.rollups), "payload": self._payload()}
                   for _ in range(o.batch)]
            try:
                response = await self.cluster.post(replica, "/v1/transactions/batch", json={"transactions": txs})
                body = response.json()
            except Exception:
                await trio.sleep(0.1)
                continue
            if self.measuring:
                self.result.submitted += len(txs)
                self.result.accepted += body.get("accepted", 0)
                self.result.busy += 1 if response.status_code == 503 else 0
                sample = next((i for i in body.get("ids", []) if i), None)
                if sample is not None and turn % 4 == 0:
                    trio.lowlevel.spawn_system_task(self._watch, replica, sample, started)
            if response.status_code == 503:
                await trio.sleep(0.2)
            elif interval:
                await trio.sleep(max(0.0, interval - (time.perf_counter() - started)))

    async def _watch(self, replica: int, tx_id: str, submitted: float) -> None:
        deadline = submitted + 60
        while time.perf_counter() < deadline:
            try:
                response = await self.cluster.get(replica, f"/v1/transactions/{tx_id}")
                if response.status_code == 200 and response.json().get("status") == "committed":
                    self.result.client_latency.append(time.perf_counter() - submitted)
                    return
            except Exception:
                return
            await trio.sleep(0.01)

    async def _server_latency(self) -> dict[str, float]:
        from prometheus_client.parser import text_string_to_metric_families

        text = (await self.cluster.get(0, "/metrics")).text
        buckets: list[tuple[float, float]] = []
        count = total = 0.0
        for family in text_string_to_metric_families(text):
            if family.name != "ordo_commit_latency_seconds":
                continue
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    buckets.append((float(sample.labels["le"]), sample.value))
                elif sample.name.endswith("_count"):
                    count = sample.value
                elif sample.name.endswith("_sum"):
                    total = sample.value
        out: dict[str, float] = {"samples": count, "mean": round(total / count, 4) if count else 0.0}
        for q in (0.5, 0.95, 0.99):
            out[f"p{int(q * 100)}_le"] = next((le for le, c in sorted(buckets) if count and c >= q * count), 0.0)
        return out


async def measure_catch_up(cluster: LocalCluster, options: BenchOptions) -> dict[str, Any]:
    """Stop the last replica, let the others commit ``catch_up`` blocks under load, restart it and
    time how long it takes to reach the height they had when it came back."""
    laggard = cluster.ids[-1]
    await cluster.stop(laggard)
    bench = Bench(cluster, options)
    others = [r for r in cluster.ids if r != laggard]
    bench.targets = others
    start = (await cluster.status(others[0]) or {}).get("committed_height", 0)
    async with trio.open_nursery() as nursery:
        for client in range(options.clients):
            nursery.start_soon(bench._client, client)
        await cluster.wait_height(start + options.catch_up, ids=others, timeout=600)
        nursery.cancel_scope.cancel()
    target = (await cluster.status(others[0]) or {})["committed_height"]
    target_txs = (await cluster.status(others[0]) or {})["txs_committed"]
    began = time.perf_counter()
    await cluster.start(laggard)
    await cluster.wait_ready([laggard])
    ready = time.perf_counter()
    await cluster.wait_height(target, ids=[laggard], timeout=600)
    done = time.perf_counter()
    status = await cluster.status(laggard) or {}
    return {"options": bench.result.options, "behind_blocks": target, "behind_txs": target_txs,
            "seconds_total": round(done - began, 2), "seconds_after_ready": round(done - ready, 2),
            "blocks_per_s": round(target / (done - ready), 1), "txs_per_s": round(target_txs / (done - ready), 1),
            "caught_up_txs": status.get("txs_committed")}


async def run_bench(options: BenchOptions) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="ordo-bench-"))
    timing = {"base_timeout": 1.0, "max_timeout": 5.0,
              "idle_block_delay": 0.0 if options.empty else 0.02, "batch_interval": 0.02}
    config = write_local_config(directory, n=options.replicas, chain_id="ordo-bench", timing=timing,
                                limits={"mempool_max_txs": 400_000, "batch_max_txs": 5_000})
    cluster = LocalCluster(config, log_level="warning")
    try:
        await cluster.start_all()
        if options.catch_up:
            summary = await measure_catch_up(cluster, options)
        else:
            summary = (await Bench(cluster, options).run()).summary()
    finally:
        await cluster.stop_all()
        if not options.keep:
            import shutil

            shutil.rmtree(directory, ignore_errors=True)
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
