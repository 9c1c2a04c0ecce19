"""Measures the bench reports that need no cluster: process memory and CPU from /proc, latency
percentiles, the agreement verdict over the replicas' final state, and the soak's RSS verdict.
Pure functions over plain data (and /proc reads), so tests call them directly."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_status_mb(pid: int, field: str, proc: Path = Path("/proc")) -> float | None:
    """A ``kB`` field of /proc/PID/status (``VmRSS``: now, ``VmHWM``: peak) in MB; None if gone."""
    try:
        text = (proc / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


class CpuTimes(NamedTuple):
    """CPU seconds of a process (all its threads): in its own code and in the kernel for it."""

    user: float
    system: float


def cpu_times(pid: int, proc: Path = Path("/proc")) -> CpuTimes | None:
    """User and system CPU time of a process from /proc/PID/stat; None if gone."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the name may contain spaces and parentheses
    return CpuTimes(int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS)  # fields 14, 15


def cpu_delta(before: Mapping[str, CpuTimes | None], after: Mapping[str, CpuTimes | None],
              *, kernel: bool = False) -> dict[str, float | None]:
    """CPU seconds each process used between two readings, user + system (``kernel``: system
    alone); None where either reading is missing."""
    out: dict[str, float | None] = {}
    for name, end in after.items():
        start = before.get(name)
        if start is None or end is None:
            out[name] = None
        elif kernel:
            out[name] = round(end.system - start.system, 2)
        else:
            out[name] = round(end.user + end.system - start.user - start.system, 2)
    return out


def replica_cpu_us_per_tx(cpu_s: Mapping[str, float | None], committed: int) -> float | None:
    """The replicas' CPU (all of them together, the bench process left out) per committed
    transaction, in microseconds: what a transaction costs the cluster. None without a committed
    transaction, or if a replica's reading is missing (a replica that exited): a partial sum would
    understate it."""
    replicas = [v for k, v in cpu_s.items() if k.startswith("replica-")]
    readings = [v for v in replicas if v is not None]
    if committed <= 0 or not replicas or len(readings) < len(replicas):
        return None
    return round(sum(readings) * 1e6 / committed, 2)


def percentile_ms(seconds: Sequence[float], p: float) -> float | None:
    """The ``p`` quantile (nearest rank, 0 < p <= 1) of latencies in seconds, in ms."""
    if not seconds:
        return None
    ordered = sorted(seconds)
    rank = max(0, min(len(ordered) - 1, int(p * len(ordered) + 0.999999) - 1))
    return round(ordered[rank] * 1000, 1)


def agreement(replicas: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The verdict over each replica's final state: ``{"id", "block_id"}`` (its block id at the common
    height, None if it could not say) and ``"rollups"`` (its /v1/rollups: per rollup count and
    digest, None if unread). Agreement: every replica answered, the block ids are equal and so are
    the rollup digests (read once the replicas were quiescent)."""
    block_ids = {r["id"]: r.get("block_id") for r in replicas}
    rollups = {r["id"]: r.get("rollups") for r in replicas}
    blocks_agree = bool(replicas) and None not in block_ids.values() and len(set(block_ids.values())) == 1
    first = next(iter(rollups.values()), None)
    rollups_agree = bool(replicas) and first is not None and all(r == first for r in rollups.values())
    differing = sorted(rid for rid in rollups if block_ids[rid] is None or rollups[rid] is None
                       or rollups[rid] != first or block_ids[rid] != next(iter(block_ids.values())))
    return {"agreement": blocks_agree and rollups_agree, "blocks_agree": blocks_agree,
            "rollups_agree": rollups_agree, "differing": differing}


@dataclass(frozen=True, slots=True)
class SoakVerdict:
    grew_mb: dict[int, float]  # per replica: last sample minus the sample at the end of warm-up
    tolerance_mb: float
    flat: bool


def soak_verdict(samples: Sequence[tuple[float, Mapping[int, float | None]]], warmup: float,
                 tolerance_mb: float) -> SoakVerdict:
    """RSS samples ``(seconds since start, {replica: MB})``: flat unless some replica's last sample
    exceeds its first sample at or after ``warmup`` by more than ``tolerance_mb``. A replica with
    no sample after warm-up (it died) counts as grown without bound."""
    after = [(t, rss) for t, rss in samples if t >= warmup]
    replicas = sorted({rid for _, rss in samples for rid in rss})
    grew: dict[int, float] = {}
    for rid in replicas:
        values = [v for _, rss in after if (v := rss.get(rid)) is not None]
        grew[rid] = round(values[-1] - values[0], 1) if values else float("inf")
    return SoakVerdict(grew, tolerance_mb, bool(after) and all(g <= tolerance_mb for g in grew.values()))
