"""When each block was committed, as seen from outside: one server-sent-event subscription per
replica (``GET /v1/rollups/0/subscribe``, one event per committed height, empty ones included;
rollup 0 carries no fault-script load, so every event is a small empty slice), the arrival time
of every height recorded per replica. The fault scripts take the commit gap from it (the longest
time without a new committed block, over the whole scenario and per phase) and commit latency (a
transaction's height, first seen committed, minus when it was submitted).

A stream that breaks (its replica stopped, killed or restarted) is resumed from the next height;
the time a replica's process was not running is not a gap of that replica (its figures say how
often that happened). A paused (SIGSTOPped) replica still runs: its silence is a gap."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
import trio

from ..client.stream import SseParser
from .bench_stats import percentile_ms
from .local import LocalCluster

WATCH_ROLLUP = 0
RETRY_PAUSE = 0.1


def longest_gap(times: Sequence[float], start: float, end: float) -> tuple[float, float]:
    """The longest interval in [start, end] without an event of ``times`` (sorted), and when it
    began. The ends count: no event at all is one gap of the whole window."""
    points = [start, *(t for t in times if start < t < end), end]
    best, at = 0.0, start
    for a, b in itertools.pairwise(points):
        if b - a > best:
            best, at = b - a, a
    return best, at


@dataclass
class ReplicaTimeline:
    """Arrival times of one replica's committed heights; ``segments`` splits them where its
    process was not running (a gap never spans a stop)."""

    segments: list[list[tuple[int, float]]] = field(default_factory=lambda: [[]])
    breaks: int = 0  # streams that ended or failed

    def add(self, height: int, at: float) -> None:
        self.segments[-1].append((height, at))

    def cut(self) -> None:
        if self.segments[-1]:
            self.segments.append([])


class CommitWatch:
    """Follows every replica's commit stream from :meth:`run` until cancelled."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.started = trio.current_time()
        self.stopped: float | None = None
        self.first_seen: dict[int, float] = {}  # height -> earliest arrival at any replica
        self.timelines = {rid: ReplicaTimeline() for rid in cluster.ids}
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=None))

    def now(self) -> float:
        return trio.current_time()

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                for rid in self.cluster.ids:
                    nursery.start_soon(self._follow, rid)
        finally:
            self.stopped = self.now()
            with trio.CancelScope(shield=True):
                await self._http.aclose()

    async def _follow(self, rid: int) -> None:
        timeline = self.timelines[rid]
        last: int | None = None
        while True:
            url = f"{self.cluster.api(rid)}/v1/rollups/{WATCH_ROLLUP}/subscribe"
            params = {} if last is None else {"from": str(last + 1)}
            parser = SseParser()
            try:
                async with self._http.stream("GET", url, params=params) as response:
                    if response.status_code != 200:
                        raise httpx.HTTPError(f"subscription answered {response.status_code}")
                    async for line in response.aiter_lines():
                        event = parser.feed(line)
                        if event is None or event[1] != "slice" or not event[0]:
                            continue
                        now, height = self.now(), int(event[0])
                        json.loads(event[2])  # a whole event, not a torn one
                        last = height
                        timeline.add(height, now)
                        if height not in self.first_seen:
                            self.first_seen[height] = now
            except (httpx.HTTPError, ValueError):
                pass
            timeline.breaks += 1
            if not self.cluster.running(rid):
                timeline.cut()
                while not self.cluster.running(rid):
                    await trio.sleep(RETRY_PAUSE)
            await trio.sleep(RETRY_PAUSE)

    # -- figures -------------------------------------------------------------------------------

    def new_heights(self) -> list[float]:
        """Times at which the cluster's highest committed height grew (as first seen anywhere)."""
        times, top = [], 0
        for height, at in sorted(self.first_seen.items(), key=lambda kv: kv[1]):
            if height > top:
                top = height
                times.append(at)
        return times

    def gap(self, start: float | None = None, end: float | None = None) -> float:
        """The longest time in [start, end] (default: the whole watch) without a new committed
        block anywhere in the cluster."""
        start = self.started if start is None else start
        end = (self.stopped or self.now()) if end is None else end
        return round(longest_gap(self.new_heights(), start, end)[0], 3)

    def replica_gaps(self, start: float | None = None, end: float | None = None) -> dict[int, float]:
        """Per replica, the longest time in [start, end] its stream delivered no new height while
        its process ran; after a stop, counting resumes at its first height after the restart
        (the stretch while stopped is left out; ``stream_breaks`` says it happened)."""
        start = self.started if start is None else start
        end = (self.stopped or self.now()) if end is None else end
        result = {}
        for rid, timeline in self.timelines.items():
            worst = 0.0
            for i, segment in enumerate(timeline.segments):
                times = [at for _, at in segment]
                if not times:
                    continue
                last_segment = i == len(timeline.segments) - 1
                seg_start = max(start, times[0]) if i else start
                seg_end = end if last_segment else min(end, times[-1])
                if seg_end > seg_start:
                    worst = max(worst, longest_gap(times, seg_start, seg_end)[0])
            result[rid] = round(worst, 3)
        return result

    def summary(self) -> dict[str, object]:
        return {"max_commit_gap_s": self.gap(),
                "commit_gap_by_replica_s": self.replica_gaps(),
                "stream_breaks": {rid: t.breaks for rid, t in self.timelines.items()},
                "heights_seen": len(self.first_seen)}

    def committed_at(self, height: int) -> float | None:
        return self.first_seen.get(height)

    def first_commit_after(self, moment: float) -> float | None:
        """Seconds from ``moment`` to the first new block after it: a height above every height
        seen before ``moment`` (a resumed stream's backlog does not count). None: none yet."""
        top = max((h for h, at in self.first_seen.items() if at <= moment), default=0)
        later = [at for h, at in self.first_seen.items() if h > top and at > moment]
        return round(min(later) - moment, 3) if later else None


def commit_latencies(sent_at: dict[str, float], heights: dict[str, int], first_seen: dict[int, float],
                     start: float, end: float) -> list[float]:
    """Seconds from submission to the first sight of the block that committed it, for the
    transactions submitted in [start, end) whose height is known and seen."""
    result = []
    for tx_id, sent in sent_at.items():
        height = heights.get(tx_id)
        seen = None if height is None else first_seen.get(height)
        if start <= sent < end and seen is not None:
            result.append(max(0.0, seen - sent))
    return result


def percentiles(values: Sequence[float]) -> dict[str, float | int | None]:
    """p50 and p99 (nearest rank) in ms, and how many samples."""
    return {"p50_ms": percentile_ms(values, 0.5), "p99_ms": percentile_ms(values, 0.99), "samples": len(values)}


def phase_figures(watch: CommitWatch, sent_at: dict[str, float], heights: dict[str, int],
                  start: float, end: float) -> dict[str, object]:
    """One phase of a scenario, [start, end): blocks/s and acknowledged tx/s committed in it (by
    the time their block was first seen), the commit gap, and the commit latency of the
    transactions submitted in it."""
    seconds = max(end - start, 1e-9)
    blocks = sum(1 for at in watch.first_seen.values() if start <= at < end)
    txs = sum(1 for tx_id, h in heights.items()
              if tx_id in sent_at and (at := watch.first_seen.get(h)) is not None and start <= at < end)
    return {"seconds": round(seconds, 2), "blocks_per_s": round(blocks / seconds, 1),
            "tx_per_s": round(txs / seconds, 1), "max_commit_gap_s": watch.gap(start, end),
            "commit_latency": percentiles(commit_latencies(sent_at, heights, watch.first_seen, start, end))}
