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
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from .bench_core import (
    BenchError,
    BenchOptions,
    Log,
    Progress,
    cpu_reading,
    finish,
    measure,
    new_generator,
    process_pids,
    tick,
)
from .bench_stats import cpu_delta
from .local import LocalCluster, free_ports, write_local_config

__all__ = ["BenchError", "BenchOptions", "failed", "run_bench"]


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
            "cpu_sys_s": cpu_delta(cpu0, cpu1, kernel=True),
            "bench_cpu_share": round(bench_cpu / seconds, 3),
            "tx_per_bench_cpu_s": round(load.accepted / bench_cpu, 1) if bench_cpu else None}


def bench_cluster_config(directory: Path, options: BenchOptions) -> Path:
    timing = {"base_timeout": 1.0, "max_timeout": 5.0,
              "idle_block_delay": 0.0 if options.empty else 0.02, "batch_interval": 0.02}
    # one client address drives the whole cluster: admission control's per-address allowance is lifted
    body = options.batch * (options.tx_bytes + 16) + 1024
    limits = {"mempool_max_txs": 100_000, "batch_max_txs": 5_000, "submit_max_batch": max(10_000, options.batch),
              "api_max_body_bytes": max(10 * 1024 * 1024, body),
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
