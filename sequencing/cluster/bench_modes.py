"""``ordo bench --sweep`` (rising offered rates until the committed rate stops rising or latency
explodes; ``--plot FILE.png`` draws the throughput-latency curve) and ``ordo bench --soak SECONDS``
(steady load at ``--rate``, each replica's RSS every ``--soak-interval`` s; fails when a replica's
RSS grew by more than ``--soak-tolerance-mb`` after the warm-up)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from .bench_core import DEFAULT_SWEEP, BenchError, BenchOptions, Log, Progress, finish, measure, settle
from .bench_stats import proc_status_mb, soak_verdict
from .local import LocalCluster

# a replica's caches (SQLite pages, the tx-index window, recent commits) fill for 3-4 minutes at
# 20-25k tx/s (docs/OPERATIONS.md, What to expect): growth counts from then on
SOAK_WARMUP = 240.0

SWEEP_SETTLE = 30.0
SATURATED = 0.85  # committed below this share of the offered rate ...
NOT_RISING = 1.05  # ... and not 5 % above the best step so far: saturated
EXPLODED_MS = 10_000.0  # or a p99 beyond this
DEFAULT_SOAK_RATE = 1_000.0


def sweep_stop(rate: float, committed: float, p99_ms: float | None, best: float) -> str | None:
    """Why the sweep stops after a step at ``rate`` (None: go on): the committed rate fell well
    short of the offered one and did not beat the best step so far, or latency exploded."""
    if committed < SATURATED * rate and committed < NOT_RISING * best:
        return f"saturated: {committed:,.0f} tx/s committed of {rate:,.0f} offered, no better than before"
    if p99_ms is not None and p99_ms > EXPLODED_MS:
        return f"latency exploded: p99 {p99_ms:,.0f} ms"
    return None


async def sweep(cluster: LocalCluster, options: BenchOptions, progress: Progress | None) -> dict[str, Any]:
    rates = options.sweep_rates or DEFAULT_SWEEP
    steps: list[dict[str, Any]] = []
    counter = 0
    best = 0.0
    stopped = "rates exhausted"
    for number, rate in enumerate(rates, 1):
        label = f"sweep {number}/{len(rates)}: {rate:,.0f} tx/s"
        window, counter = await measure(cluster, options, rate, duration=options.duration, warmup=options.warmup,
                                        first_counter=counter, progress=progress, label=label)
        step = {"rate": rate, **window.summary()}
        steps.append(step)
        why = sweep_stop(rate, step["tx_per_s"], step["p99_ms"], best)
        if why is not None:
            stopped = why
            break
        best = max(best, step["tx_per_s"])
        await settle(cluster, SWEEP_SETTLE)  # the next step starts with empty mempools
    top = max(steps, key=lambda s: s["tx_per_s"])
    return {"sweep": steps, "stopped": stopped, "tx_per_s": top["tx_per_s"], "p50_ms": top["p50_ms"],
            "p99_ms": top["p99_ms"], "rounds_per_s": top["rounds_per_s"],
            "cpu_s": top["cpu_s"], **await finish(cluster, options)}


async def soak(cluster: LocalCluster, options: BenchOptions, progress: Progress | None,
               log: Log | None) -> dict[str, Any]:
    rate = options.rate or DEFAULT_SOAK_RATE
    warmup = options.soak_warmup if options.soak_warmup is not None else min(SOAK_WARMUP, options.soak / 3)
    samples: list[tuple[float, dict[int, float | None]]] = []

    def sample(elapsed: float) -> None:
        rss = {rid: proc_status_mb(proc.pid, "VmRSS") for rid, proc in sorted(cluster.processes.items())}
        samples.append((round(elapsed, 1), rss))
        if log is not None:
            figures = "  ".join(f"replica-{rid} {mb if mb is not None else '-'} MB" for rid, mb in rss.items())
            log(f"soak {elapsed:6.0f} s  RSS  {figures}")

    async def during(duration: float) -> None:
        began = trio.current_time()
        sample(0.0)
        while (elapsed := trio.current_time() - began) < duration:
            step = min(options.soak_interval, duration - elapsed)
            with trio.move_on_after(step):
                while True:
                    if progress is not None:
                        progress(f"soak at {rate:,.0f} tx/s", trio.current_time() - began, duration)
                    await trio.sleep(0.5)
            sample(trio.current_time() - began)

    window, _ = await measure(cluster, options, rate, duration=options.soak, warmup=options.warmup,
                              progress=progress, label="soak", during=during)
    verdict = soak_verdict(samples, warmup, options.soak_tolerance_mb)
    return {**window.summary(), "rss_samples": [{"t": t, **{f"replica-{r}": mb for r, mb in rss.items()}}
                                                for t, rss in samples],
            "rss_warmup_s": round(warmup, 1), "rss_grew_mb": {f"replica-{r}": g for r, g in verdict.grew_mb.items()},
            "rss_tolerance_mb": verdict.tolerance_mb, "rss_flat": verdict.flat, **await finish(cluster, options)}


def require_matplotlib() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BenchError("--plot needs matplotlib: pip install 'ordo[bench]' (or pip install matplotlib)") from None
    return plt


def labelled(steps: list[dict[str, Any]], gap: float = 0.08) -> list[dict[str, Any]]:
    """The steps whose figures are written on the plot: each at least ``gap`` of the widest
    committed rate from the last one labelled, or as high a rate as any (the saturated steps
    crowd together at the top, the low ones at the left; the curve still shows every step)."""
    if not steps:
        return []
    top = max(s["tx_per_s"] for s in steps)
    chosen: list[dict[str, Any]] = []
    for step in steps:
        if not chosen or step["tx_per_s"] - chosen[-1]["tx_per_s"] >= gap * top or step["tx_per_s"] == top:
            chosen.append(step)
    return chosen


def plot(summary: dict[str, Any], path: Path) -> None:
    """Committed tx/s against client latency (p50, p99) for each step of a sweep, figures on it."""
    plt = require_matplotlib()
    steps = [s for s in summary["sweep"] if s["p50_ms"] is not None]
    x = [s["tx_per_s"] for s in steps]
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot(x, [s["p50_ms"] for s in steps], "o-", label="p50")
    ax.plot(x, [s["p99_ms"] for s in steps], "s--", label="p99")
    for s in labelled(steps):
        ax.annotate(f"{s['rate'] / 1000:,.0f}k offered\n{s['tx_per_s'] / 1000:,.1f}k, {s['p50_ms']:.0f} ms",
                    (s["tx_per_s"], s["p50_ms"]), textcoords="offset points", xytext=(4, 6), fontsize=7)
    options = summary["options"]
    ax.set_yscale("log")
    ax.set_xlabel("committed tx/s")
    ax.set_ylabel("client latency submit -> commit (ms)")
    ax.set_title(f"ordo bench sweep: {options['replicas']} replicas, {options['tx_bytes']}-byte txs; "
                 f"max {summary['tx_per_s']:,.0f} tx/s", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
