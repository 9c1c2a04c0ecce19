"""``ordo bench``: start a throwaway local cluster, drive it, report throughput, latency, agreement,
memory and CPU.

The load is bench_load.py's generator (binary batches of pre-built transactions, a latency sample
from every request); a measured window follows a warm-up. At the end the load stops, the cluster
settles (mempools empty) and the replicas' chains and rollup digests are compared. Modes (one per
run): the default (``--rate`` or as fast as accepted), ``--empty`` (rounds/s with no load),
``--catch-up`` (time a restarted replica catching up), ``--generator-only`` (the generator against
a sink, no cluster: its own ceiling), ``--sweep`` (rising rates to saturation, ``--plot``) and
``--soak`` (steady load, RSS every ``soak_interval`` s; bench_modes.py has those two)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

from .bench_body import BodyBuilder
from .bench_load import PROBE_ROLLUP, LoadCounters, LoadGenerator
from .bench_stats import agreement, cpu_delta, cpu_seconds, percentile_ms, proc_status_mb
from .local import LocalCluster, free_ports, write_local_config

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
    soak_warmup: float | None = None  # default: min(120 s, a third of the soak)
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
        }


# -- the pieces ------------------------------------------------------------------------------------


def process_pids(cluster: LocalCluster | None, extra: dict[str, int] | None = None) -> dict[str, int]:
    pids = {"bench": os.getpid(), **(extra or {})}
    if cluster is not None:
        pids.update({f"replica-{rid}": proc.pid for rid, proc in sorted(cluster.processes.items())
                     if proc.returncode is None})
    return pids


def cpu_reading(pids: dict[str, int]) -> dict[str, float | None]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


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
                    list(generator.latencies) if generator is not None else [], unresolved, cpu_delta(cpu0, cpu1))
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


# -- modes ---------------------------------------------------------------------------------------


async def bench_load(cluster: LocalCluster, options: BenchOptions, progress: Progress | None) -> dict[str, Any]:
    rate = 0 if options.empty else options.rate
    window, _ = await measure(cluster, options, rate, duration=options.duration, warmup=options.warmup,
                              progress=progress, label="empty blocks" if options.empty else "load")
    return {**window.summary(), **await finish(cluster, options)}


async def measure_catch_up(cluster: LocalCluster, options: BenchOptions) -> dict[str, Any]:
    """Stop the last replica, let the others commit ``catch_up`` blocks under load, restart it and
    time how long it takes to reach the height they had when it came back."""
    laggard = cluster.ids[-1]
    await cluster.stop(laggard)
    others = [r for r in cluster.ids if r != laggard]
    start = (await cluster.status(others[0]) or {}).get("committed_height", 0)
    generator = new_generator([cluster.api(r) for r in others], options, options.rate, sample=False)
    async with trio.open_nursery() as nursery:
        await generator.start(nursery)
        await cluster.wait_height(start + options.catch_up, ids=others, timeout=600)
        await generator.stop(drain=0)
    target = (await cluster.status(others[0]) or {})["committed_height"]
    target_txs = (await cluster.status(others[0]) or {})["txs_committed"]
    began = time.perf_counter()
    await cluster.start(laggard)
    await cluster.wait_ready([laggard])
    ready = time.perf_counter()
    await cluster.wait_height(target, ids=[laggard], timeout=600)
    done = time.perf_counter()
    status = await cluster.status(laggard) or {}
    return {"behind_blocks": target, "behind_txs": target_txs,
            "seconds_total": round(done - began, 2), "seconds_after_ready": round(done - ready, 2),
            "blocks_per_s": round(target / (done - ready), 1), "txs_per_s": round(target_txs / (done - ready), 1),
            "caught_up_txs": status.get("txs_committed"), **await finish(cluster, options)}


async def generator_only(options: BenchOptions, progress: Progress | None) -> dict[str, Any]:
    """The generator against bench_sink.py (a process that decodes and discards): its ceiling."""
    port = free_ports(1)[0]
    sink = subprocess.Popen([sys.executable, "-m", "sequencing.cluster.bench_sink", str(port)],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert sink.stdout is not None
        ready = await trio.to_thread.run_sync(sink.stdout.readline)
        if ready.strip() != b"ready":
            raise BenchError("the bench sink did not start")
        generator = new_generator([f"http://127.0.0.1:{port}"], options, options.rate, sample=False)
        pids = process_pids(None, {"sink": sink.pid})
        async with trio.open_nursery() as nursery:
            await generator.start(nursery)
            await tick(progress, "generator: warm-up", options.warmup)
            cpu0, load0, began = cpu_reading(pids), generator.counters, time.perf_counter()
            await tick(progress, "generator", options.duration)
            cpu1, load1, seconds = cpu_reading(pids), generator.counters, time.perf_counter() - began
            await generator.stop(drain=0)
    finally:
        sink.terminate()
        await trio.to_thread.run_sync(sink.wait)
    load = load1.minus(load0)
    cpu = cpu_delta(cpu0, cpu1)
    bench_cpu = cpu.get("bench") or 0.0
    return {"generator_only": True, "seconds": round(seconds, 2),
            "tx_per_s": round(load.accepted / seconds, 1), "offered_tx_per_s": round(load.txs_sent / seconds, 1),
            "requests_per_s": round(load.requests / seconds, 1), "errors": load.errors, "cpu_s": cpu,
            "bench_cpu_share": round(bench_cpu / seconds, 3),
            "tx_per_bench_cpu_s": round(load.accepted / bench_cpu, 1) if bench_cpu else None}


def bench_cluster_config(directory: Path, options: BenchOptions) -> Path:
    timing = {"base_timeout": 1.0, "max_timeout": 5.0,
              "idle_block_delay": 0.0 if options.empty else 0.02, "batch_interval": 0.02}
    # one client address drives the whole cluster: admission control's per-address allowance is lifted
    limits = {"mempool_max_txs": 100_000, "batch_max_txs": 5_000, "submit_max_batch": max(10_000, options.batch),
              "api_client_rate": 1_000_000, "api_client_burst": 1_000_000}
    return write_local_config(directory, n=options.replicas, chain_id="ordo-bench", timing=timing, limits=limits)


async def run_bench(options: BenchOptions, progress: Progress | None = None, log: Log | None = None) -> dict[str, Any]:
    from . import bench_modes

    if options.plot is not None and not options.sweep:
        raise BenchError("--plot draws a --sweep")
    if options.plot is not None:
        bench_modes.require_matplotlib()
    if options.generator_only:
        summary = await generator_only(options, progress)
    else:
        directory = Path(tempfile.mkdtemp(prefix="ordo-bench-"))
        cluster = LocalCluster(bench_cluster_config(directory, options), log_level="warning")
        try:
            await cluster.start_all()
            if options.catch_up:
                summary = await measure_catch_up(cluster, options)
            elif options.sweep:
                summary = await bench_modes.sweep(cluster, options, progress)
            elif options.soak:
                summary = await bench_modes.soak(cluster, options, progress, log)
            else:
                summary = await bench_load(cluster, options, progress)
        finally:
            await cluster.stop_all()
            if not options.keep:
                shutil.rmtree(directory, ignore_errors=True)
    summary = {**summary, "options": options.as_json()}
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(summary, indent=2) + "\n")
    if options.plot is not None:
        bench_modes.plot(summary, options.plot)
    return summary


def failed(summary: dict[str, Any]) -> bool:
    """Whether the run found a problem (the CLI exits 1): replicas that disagree, or a soak whose
    memory grew."""
    return summary.get("agreement") is False or summary.get("rss_flat") is False
