"""What every ``ordo bench`` mode shares (bench.py runs them, bench_modes.py has the sweep and
the soak): the options, one measured window of load on a cluster (:func:`measure`), settling,
comparing the replicas and reading their memory at the end (:func:`finish`)."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

from .bench_body import BodyBuilder
from .bench_load import PROBE_ROLLUP, LoadCounters, LoadGenerator
from .bench_stats import CpuTimes, agreement, cpu_delta, cpu_times, percentile_ms, proc_status_mb, replica_cpu_us_per_tx
from .local import LocalCluster

Progress = Callable[[str, float, float], None]  # (what, seconds done, seconds in all)
Log = Callable[[str], None]

SETTLE_TIMEOUT = 60.0
DEFAULT_SWEEP = (5_000.0, 10_000.0, 20_000.0, 40_000.0, 60_000.0, 80_000.0, 100_000.0, 130_000.0, 160_000.0,
                 200_000.0, 250_000.0)


class BenchError(Exception):
    """The bench cannot run as asked (a missing optional dependency, a bad option)."""


@dataclass
class BenchOptions:
    replicas: int = 4
    duration: float = 20.0
    warmup: float = 3.0
    rate: float | None = None  # tx/s in total; None = as fast as accepted
    tx_bytes: int = 256
    batch: int = 1000  # transactions per HTTP request
    clients: int = 8  # connections, spread over the replicas
    window: int = 32  # without a rate: requests in flight (sent, not yet committed); 0 = no limit
    rollups: int = 8
    latency: bool = True  # probes and subscriptions for client latency
    empty: bool = False
    catch_up: int = 0  # > 0: measure catching up this many blocks instead
    generator_only: bool = False
    sweep: bool = False
    sweep_rates: tuple[float, ...] = ()
    plot: Path | None = None
    soak: float = 0.0  # > 0: a soak of this many seconds
    soak_interval: float = 30.0
    soak_warmup: float | None = None  # default: min(240 s, a third of the soak)
    soak_tolerance_mb: float = 25.0
    json_path: Path | None = None
    keep: bool = False
    settle_timeout: float = SETTLE_TIMEOUT

    def as_json(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v
                for k, v in vars(self).items()}


@dataclass
class Window:
    """What one measured window saw."""

    seconds: float
    rounds: int
    blocks: int
    committed: int
    load: LoadCounters
    latencies: list[float] = field(default_factory=list)
    unresolved: int = 0
    cpu_s: dict[str, float | None] = field(default_factory=dict)
    cpu_sys_s: dict[str, float | None] = field(default_factory=dict)  # the kernel's part of cpu_s

    def summary(self) -> dict[str, Any]:
        s = max(self.seconds, 1e-9)
        return {
            "seconds": round(self.seconds, 2),
            "tx_per_s": round(self.committed / s, 1),
            "offered_tx_per_s": round(self.load.txs_sent / s, 1),
            "accepted_tx_per_s": round(self.load.accepted / s, 1),
            "rounds_per_s": round(self.rounds / s, 1),
            "blocks_per_s": round(self.blocks / s, 1),
            "p50_ms": percentile_ms(self.latencies, 0.5),
            "p99_ms": percentile_ms(self.latencies, 0.99),
            "latency_samples": len(self.latencies),
            "unresolved_samples": self.unresolved,
            "requests": self.load.requests,
            "busy_answers": self.load.busy,
            "errors": self.load.errors,
            "cpu_s": self.cpu_s,
            "cpu_sys_s": self.cpu_sys_s,
            "replica_cpu_us_per_tx": replica_cpu_us_per_tx(self.cpu_s, self.committed),
        }


# -- the pieces ------------------------------------------------------------------------------------


def process_pids(cluster: LocalCluster | None, extra: dict[str, int] | None = None) -> dict[str, int]:
    pids = {"bench": os.getpid(), **(extra or {})}
    if cluster is not None:
        pids.update({f"replica-{rid}": proc.pid for rid, proc in sorted(cluster.processes.items())
                     if proc.returncode is None})
    return pids


def cpu_reading(pids: dict[str, int]) -> dict[str, CpuTimes | None]:
    return {name: cpu_times(pid) for name, pid in pids.items()}


async def tick(progress: Progress | None, what: str, seconds: float, step: float = 0.5) -> None:
    """Sleep ``seconds``, reporting progress every ``step``."""
    began = trio.current_time()
    end = began + seconds
    while (now := trio.current_time()) < end:
        if progress is not None:
            progress(what, now - began, seconds)
        await trio.sleep(min(step, end - now))
    if progress is not None:
        progress(what, seconds, seconds)


async def status_of(cluster: LocalCluster) -> dict[str, int]:
    for rid in cluster.ids:
        status = await cluster.status(rid) if cluster.running(rid) else None
        if status is not None:
            return {"round": status.get("round", 0), "height": status.get("committed_height", 0),
                    "txs": status.get("txs_committed", 0)}
    return {"round": 0, "height": 0, "txs": 0}


def new_generator(urls: list[str], options: BenchOptions, rate: float | None, first_counter: int = 0,
                  sample: bool = True) -> LoadGenerator:
    """Paced to ``rate``, or (None) as fast as accepted within the options' window of requests in flight."""
    window = options.window if rate is None and sample and options.window > 0 else None
    try:
        builder = BodyBuilder(options.tx_bytes, options.batch, rollups=options.rollups,
                              probe_rollup=PROBE_ROLLUP if sample else None, tag=os.urandom(4).hex().encode())
    except ValueError as exc:
        raise BenchError(str(exc)) from None
    return LoadGenerator(urls, builder, connections=options.clients, rate=rate, window=window, sample=sample,
                         first_counter=first_counter)


async def measure(cluster: LocalCluster, options: BenchOptions, rate: float | None, *, duration: float,
                  warmup: float, first_counter: int = 0, progress: Progress | None = None, label: str = "load",
                  during: Callable[[float], Awaitable[None]] | None = None) -> tuple[Window, int]:
    """Load at ``rate`` (None: as fast as accepted; 0: no load) for ``warmup`` then a measured
    ``duration``; returns the window and the next free transaction counter. ``during(duration)``
    replaces the plain wait of the measured part (the soak samples memory there)."""
    urls = [cluster.api(rid) for rid in cluster.ids if cluster.running(rid)]
    generator = None if rate == 0 else new_generator(urls, options, rate, first_counter, sample=options.latency)
    async with trio.open_nursery() as nursery:
        if generator is not None:
            await generator.start(nursery)
        await tick(progress, f"{label}: warm-up", warmup)
        pids = process_pids(cluster)
        start, cpu0 = await status_of(cluster), cpu_reading(pids)
        load0 = generator.counters if generator is not None else LoadCounters()
        if generator is not None:
            generator.measuring = True
        began = time.perf_counter()
        if during is not None:
            await during(duration)
        else:
            await tick(progress, label, duration)
        seconds = time.perf_counter() - began
        end, cpu1 = await status_of(cluster), cpu_reading(pids)
        load1 = generator.counters if generator is not None else LoadCounters()
        unresolved = await generator.stop() if generator is not None else 0
    window = Window(seconds, end["round"] - start["round"], end["height"] - start["height"],
                    end["txs"] - start["txs"], load1.minus(load0),
                    list(generator.latencies) if generator is not None else [], unresolved, cpu_delta(cpu0, cpu1),
                    cpu_delta(cpu0, cpu1, kernel=True))
    return window, generator.next_counter if generator is not None else first_counter


async def settle(cluster: LocalCluster, timeout: float) -> bool:
    """Wait until every running replica has an empty mempool and no pending batch, and all report
    the same committed transactions twice in a row; False on timeout."""
    previous: int | None = None
    with trio.move_on_after(timeout):
        while True:
            statuses = [await cluster.status(rid) for rid in cluster.ids if cluster.running(rid)]
            quiet = all(s is not None and not s["mempool_txs"] and not s["pending_batches"] for s in statuses)
            counts = {s["txs_committed"] for s in statuses if s is not None}
            if statuses and quiet and len(counts) == 1:
                (count,) = counts
                if count == previous:
                    return True
                previous = count
            else:
                previous = None
            await trio.sleep(0.3)
    return False


async def compare_replicas(cluster: LocalCluster, timeout: float) -> dict[str, Any]:
    """Settle, then each replica's block id at the lowest committed height and its rollup digests."""
    settled = await settle(cluster, timeout)
    heights = {rid: ((await cluster.status(rid)) or {}).get("committed_height", 0) for rid in cluster.ids}
    height = min(heights.values())
    replicas: list[dict[str, Any]] = []
    for rid in cluster.ids:
        entry: dict[str, Any] = {"id": rid, "block_id": None, "rollups": None}
        try:
            if height > 0:
                block = await cluster.get(rid, f"/v1/blocks/{height}", timeout=5.0)
                entry["block_id"] = block.json().get("id") if block.status_code == 200 else None
            rollups = await cluster.get(rid, "/v1/rollups", timeout=5.0)
            entry["rollups"] = rollups.json() if rollups.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            pass
        replicas.append(entry)
    verdict = agreement(replicas)
    return {**verdict, "settled": settled, "height": height, "heights": heights}


def memory(cluster: LocalCluster) -> dict[str, dict[str, float | None]]:
    """Peak (VmHWM) and current (VmRSS) resident memory of each replica, MB."""
    pids = {f"replica-{rid}": proc.pid for rid, proc in sorted(cluster.processes.items())}
    return {"rss_mb_max": {n: proc_status_mb(p, "VmHWM") for n, p in pids.items()},
            "rss_mb_now": {n: proc_status_mb(p, "VmRSS") for n, p in pids.items()}}


async def server_latency(cluster: LocalCluster) -> dict[str, float]:
    """Replica 0's own submission-to-durable-commit histogram (ordo_commit_latency_seconds)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = (await cluster.get(0, "/metrics")).text
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
    for q in (0.5, 0.99):
        out[f"p{int(q * 100)}_le"] = next((le for le, c in sorted(buckets) if count and c >= q * count), 0.0)
    return out


async def finish(cluster: LocalCluster, options: BenchOptions) -> dict[str, Any]:
    """The end of every run on a cluster: agreement, memory, the replicas' own latency figure."""
    detail = await compare_replicas(cluster, options.settle_timeout)
    return {"agreement": detail["agreement"], "agreement_detail": detail, **memory(cluster),
            "server_commit_latency_s": await server_latency(cluster)}
