"""The bench's parts without a cluster: the generator's body builder (bodies the replica's binary
parser takes, with unique transactions and a probe), its accounting, pacing and probe-stream
latency (over a scripted transport), the /proc readers, the agreement verdict and the soak verdict."""

from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path
from unittest.mock import MagicMock

import httpx
import msgpack
import pytest
import trio
import trio.testing

from sequencing.api.binary import parse_binary_batch
from sequencing.cluster.bench_body import BodyBuilder
from sequencing.cluster.bench_core import BenchError
from sequencing.cluster.bench_load import PROBE_ROLLUP, WINDOW_EXPIRY, LoadCounters, LoadGenerator
from sequencing.cluster.bench_modes import labelled, plot, require_matplotlib, sweep_stop
from sequencing.cluster.bench_stats import (
    CpuTimes,
    agreement,
    cpu_delta,
    cpu_times,
    percentile_ms,
    proc_status_mb,
    replica_cpu_us_per_tx,
    soak_verdict,
)
from sequencing.config import Limits

# -- bodies ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [8, 100, 255, 256, 4096])
@pytest.mark.parametrize(("count", "probe"), [(37, None), (37, PROBE_ROLLUP), (1, PROBE_ROLLUP), (3, None), (1000, 0)])
def test_bodies_are_the_grouped_binary_form_with_the_counters_written_in(size: int, count: int,
                                                                        probe: int | None) -> None:
    builder = BodyBuilder(size, count, rollups=5, first_rollup=3, tag=b"t", probe_rollup=probe)
    body = msgpack.unpackb(builder.body(1_000_000))
    assert body["ids"] is False
    flat = [(rollup, payload) for rollup, payloads in body["groups"] for payload in payloads]
    assert len(flat) == count and all(payloads for _, payloads in body["groups"])
    for i, (rollup, payload) in enumerate(flat):
        assert len(payload) == size and BodyBuilder.counter_of(payload) == 1_000_000 + i
        assert (rollup, payload) == builder.tx(1_000_000, i)
    rollups = [rollup for rollup, _ in flat]
    if probe is not None:
        assert rollups[0] == probe and rollups.count(probe) == 1
    load = rollups[probe is not None:]
    assert set(load) <= set(range(3, 8)) and max(map(load.count, set(load)), default=0) - min(
        map(load.count, set(load)), default=0) <= 1, "the load spreads evenly"
    assert BodyBuilder.counter_of(flat[-1][1]) == 1_000_000 + count - 1


def test_the_replica_takes_a_body_and_the_ids_match() -> None:
    builder = BodyBuilder(256, 50, probe_rollup=PROBE_ROLLUP)
    batch = parse_binary_batch(builder.body(77), Limits())
    assert not batch.want_ids and batch.plain is not None  # plain transactions, grouped by rollup
    assert batch.plain.ids() == [builder.tx_id(77, i) for i in range(50)]
    assert [run.rollup_id for run in batch.plain.runs] == [PROBE_ROLLUP, *range(1, 9)]
    assert batch.plain.runs[0].payloads == (builder.tx(77, 0)[1],)


def test_consecutive_bodies_hold_no_transaction_twice() -> None:
    builder = BodyBuilder(64, 100)
    ids = [builder.tx_id(first, i) for first in (0, 100, 200) for i in range(100)]
    assert len(set(ids)) == 300
    decoded = [(rollup, payload) for first in (0, 100)
               for rollup, payloads in msgpack.unpackb(builder.body(first))["groups"] for payload in payloads]
    assert len(set(decoded)) == 200


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"tx_size": 7}, "tx size"),
    ({"tx_size": 70_000}, "tx size"),
    ({"rollups": 200}, "rollup ids"),
    ({"probe_rollup": 128}, "probe rollup"),
    ({"per_request": 0}, "at least one"),
])
def test_impossible_bodies_are_refused(kwargs: dict[str, int], problem: str) -> None:
    args = {"tx_size": 64, "per_request": 10, **kwargs}
    with pytest.raises(ValueError, match=problem):
        BodyBuilder(args.pop("tx_size"), args.pop("per_request"), **args)


# -- the generator ---------------------------------------------------------------------------------


def answer(status: int, body: object, content_type: str = "application/msgpack") -> httpx.Response:
    return httpx.Response(status, content=msgpack.packb(body), headers={"content-type": content_type})


def test_answers_are_counted_and_probes_of_refused_requests_dropped() -> None:
    generator = LoadGenerator(["http://r0", "http://r1"], BodyBuilder(16, 10, probe_rollup=PROBE_ROLLUP),
                              connections=2)
    generator._pending = [{20: (7.0, True), 30: (8.0, True), 40: (9.0, True)}, {10: (6.0, True)}]
    ok = answer(200, {"accepted": 10, "duplicates": 0, "rejected": []})
    assert generator._account(ok, 1, 10) == 0.0
    part = answer(200, {"accepted": 9, "duplicates": 0, "rejected": [{"index": 0, "error": "mempool full"}]})
    assert generator._account(part, 0, 20) == 0.0  # the probe itself was refused: no sample
    assert generator._account(httpx.Response(503, json={"error": "busy"}), 0, 30) > 0
    assert generator._account(httpx.Response(200, content=b"\xc1"), 0, 40) > 0
    assert generator._pending == [{}, {10: (6.0, True)}]
    assert generator.counters == LoadCounters(requests=4, txs_sent=40, accepted=19, busy=1, errors=1)


async def test_paced_requests_follow_the_rate(autojump_clock: trio.testing.MockClock) -> None:
    sent: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(trio.current_time())
        return answer(200, {"accepted": 100, "duplicates": 0, "rejected": []})

    generator = LoadGenerator(["http://r0"], BodyBuilder(16, 100), connections=4, rate=1000.0, sample=False,
                              transport=httpx.MockTransport(handler))
    async with trio.open_nursery() as nursery:
        await generator.start(nursery)
        await trio.sleep(1.0)
        await generator.stop(drain=0)
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(sent)]
    assert len(sent) == 10 and set(gaps) == {0.1}, sent  # 1000 tx/s of 100-tx requests: one every 0.1 s


async def test_latency_comes_from_the_probe_rollups_stream() -> None:
    """Every request's probe that appears in a slice event of the replica it went to is one latency
    sample; a probe of another replica, or another rollup's event, is not."""
    builder = BodyBuilder(16, 5, probe_rollup=PROBE_ROLLUP)
    posted: list[int] = []
    streams: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            body = msgpack.unpackb(request.content)
            posted.append(BodyBuilder.counter_of(body["groups"][0][1][0]))
            return answer(200, {"accepted": 5, "duplicates": 0, "rejected": []})
        streams.append(request)
        height = len(streams)
        probes = [builder.tx(c, 0)[1].hex() for c in posted] + [(10**12).to_bytes(8, "big").hex()]
        events = f"retry: 1000\n\nid: {height}\nevent: slice\ndata: {json.dumps({'transactions': probes})}\n\n"
        return httpx.Response(200, content=events.encode(), headers={"content-type": "text/event-stream"})

    generator = LoadGenerator(["http://r0"], builder, connections=1, rate=50.0,
                              transport=httpx.MockTransport(handler))
    generator.measuring = True
    async with trio.open_nursery() as nursery:
        await generator.start(nursery)
        with trio.fail_after(10):
            while len(posted) < 3:
                await trio.sleep(0.01)
        assert await generator.stop(drain=5) == 0, "every probe was seen committed"
    assert len(generator.latencies) >= 3 and all(0 <= t < 5 for t in generator.latencies)
    assert streams[0].url.path == f"/v1/rollups/{PROBE_ROLLUP}/subscribe"
    assert streams[1].url.params["from"] == "2", "a broken stream resumes after the last height"


async def test_without_a_rate_the_window_bounds_requests_in_flight(autojump_clock: trio.testing.MockClock) -> None:
    """No commit seen: two requests and then nothing until their probes expire (WINDOW_EXPIRY)."""
    posted: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posted.append(trio.current_time())
            return answer(200, {"accepted": 5, "duplicates": 0, "rejected": []})
        return httpx.Response(200, content=b"retry: 1000\n\n", headers={"content-type": "text/event-stream"})

    generator = LoadGenerator(["http://r0"], BodyBuilder(16, 5, probe_rollup=PROBE_ROLLUP), connections=4,
                              window=2, transport=httpx.MockTransport(handler))
    async with trio.open_nursery() as nursery:
        began = trio.current_time()
        await generator.start(nursery)
        await trio.sleep(WINDOW_EXPIRY - 1)
        assert len(posted) == 2
        await trio.sleep(3)
        assert len(posted) == 4 and posted[2] - began >= WINDOW_EXPIRY
        await generator.stop(drain=0)


def test_sampling_needs_the_probe() -> None:
    with pytest.raises(ValueError, match="probe"):
        LoadGenerator(["http://r0"], BodyBuilder(16, 5), connections=1)


# -- /proc, percentiles, verdicts ----------------------------------------------------------------


def test_proc_readers(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "status").write_text("Name:\tx\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n")
    (tmp_path / "42" / "stat").write_text("42 (a name) with) S " + " ".join(["0"] * 10) + " 250 150 0 0\n")
    assert proc_status_mb(42, "VmHWM", tmp_path) == 200.0 and proc_status_mb(42, "VmRSS", tmp_path) == 100.0
    assert proc_status_mb(42, "VmSwap", tmp_path) is None and proc_status_mb(43, "VmRSS", tmp_path) is None
    ticks = os.sysconf("SC_CLK_TCK")
    assert cpu_times(42, tmp_path) == CpuTimes(250 / ticks, 150 / ticks) and cpu_times(43, tmp_path) is None
    assert (own := cpu_times(os.getpid())) is not None and own.user + own.system > 0
    assert (proc_status_mb(os.getpid(), "VmRSS") or 0) > 1


def test_cpu_deltas_total_and_kernel() -> None:
    before = {"a": CpuTimes(1.0, 0.5), "b": None}
    after = {"a": CpuTimes(3.0, 2.0), "b": CpuTimes(2.0, 1.0), "c": CpuTimes(1.0, 1.0)}
    assert cpu_delta(before, after) == {"a": 3.5, "b": None, "c": None}
    assert cpu_delta(before, after, kernel=True) == {"a": 1.5, "b": None, "c": None}


def test_replica_cpu_per_tx_counts_the_replicas_alone() -> None:
    cpu = {"bench": 9.0, "replica-0": 1.5, "replica-1": 2.5}
    assert replica_cpu_us_per_tx(cpu, 1_000_000) == 4.0  # 4 s of replica CPU over 1M txs, not the bench's
    assert replica_cpu_us_per_tx(cpu, 0) is None
    assert replica_cpu_us_per_tx({**cpu, "replica-2": None}, 1_000_000) is None  # a part would understate
    assert replica_cpu_us_per_tx({"bench": 1.0}, 10) is None


def test_percentiles_are_nearest_rank_in_ms() -> None:
    samples = [i / 1000 for i in range(1, 101)]  # 1 .. 100 ms
    assert percentile_ms(samples, 0.5) == 50.0 and percentile_ms(samples, 0.99) == 99.0
    assert percentile_ms([0.2], 0.99) == 200.0 and percentile_ms([], 0.5) is None


def test_agreement_needs_equal_blocks_and_rollups_from_everyone() -> None:
    rollups = {"1": {"txs": 5, "digest": "aa"}}
    same = [{"id": r, "block_id": "b1", "rollups": rollups} for r in range(4)]
    assert agreement(same) == {"agreement": True, "blocks_agree": True, "rollups_agree": True, "differing": []}
    fork = [*same[:3], {"id": 3, "block_id": "b2", "rollups": rollups}]
    assert agreement(fork)["agreement"] is False and agreement(fork)["differing"] == [3]
    diverged = [*same[:3], {"id": 3, "block_id": "b1", "rollups": {"1": {"txs": 5, "digest": "bb"}}}]
    verdict = agreement(diverged)
    assert (verdict["agreement"], verdict["blocks_agree"], verdict["differing"]) == (False, True, [3])
    silent = [*same[:3], {"id": 3, "block_id": None, "rollups": None}]
    assert agreement(silent)["agreement"] is False and agreement(silent)["differing"] == [3]
    assert agreement([])["agreement"] is False


def test_the_soak_fails_on_growth_after_warm_up() -> None:
    flat = [(0.0, {0: 100.0, 1: 90.0}), (30.0, {0: 150.0, 1: 140.0}), (60.0, {0: 152.0, 1: 141.0}),
            (90.0, {0: 160.0, 1: 139.0})]
    verdict = soak_verdict(flat, warmup=30.0, tolerance_mb=10.0)
    assert verdict.flat and verdict.grew_mb == {0: 10.0, 1: -1.0}, "growth during warm-up does not count"
    assert not soak_verdict(flat, warmup=30.0, tolerance_mb=9.9).flat
    died = [*flat[:3], (90.0, {0: 150.0, 1: None})]
    assert soak_verdict(died, warmup=30.0, tolerance_mb=10.0).flat, "a last sample missing: the earlier count"
    gone = [(0.0, {0: 100.0}), (30.0, {0: None})]
    assert not soak_verdict(gone, warmup=30.0, tolerance_mb=10.0).flat, "no sample after warm-up"
    assert not soak_verdict(flat, warmup=100.0, tolerance_mb=10.0).flat, "nothing after warm-up to judge"


# -- the sweep's rule and its plot ---------------------------------------------------------------


def test_the_sweep_stops_at_saturation_or_exploding_latency() -> None:
    assert sweep_stop(10_000, 9_900, 300.0, best=5_000) is None
    assert sweep_stop(20_000, 15_000, 800.0, best=9_900) is None, "short of the rate but still rising"
    assert "saturated" in (sweep_stop(40_000, 15_500, 900.0, best=15_000) or "")
    assert "exploded" in (sweep_stop(40_000, 39_000, 12_000.0, best=20_000) or "")
    assert sweep_stop(40_000, 39_000, None, best=20_000) is None


def test_the_plot_draws_every_measured_step(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pyplot = MagicMock()
    fig, ax = MagicMock(), MagicMock()
    pyplot.subplots.return_value = (fig, ax)
    matplotlib = MagicMock(pyplot=pyplot)
    monkeypatch.setitem(sys.modules, "matplotlib", matplotlib)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", pyplot)
    steps = [{"rate": 5000.0, "tx_per_s": 4990.0, "p50_ms": 40.0, "p99_ms": 90.0},
             {"rate": 10000.0, "tx_per_s": 9000.0, "p50_ms": 300.0, "p99_ms": 900.0},
             {"rate": 20000.0, "tx_per_s": 0.0, "p50_ms": None, "p99_ms": None}]
    summary = {"sweep": steps, "tx_per_s": 9000.0, "options": {"replicas": 4, "tx_bytes": 256}}
    plot(summary, tmp_path / "curve.png")
    matplotlib.use.assert_called_once_with("Agg")
    fig.savefig.assert_called_once_with(tmp_path / "curve.png", dpi=120)
    (x, p50, _), _ = ax.plot.call_args_list[0]
    assert x == [4990.0, 9000.0] and p50 == [40.0, 300.0], "a step without latency samples is left out"
    assert ax.annotate.call_count == 2 and "9,000 tx/s" in ax.set_title.call_args[0][0]


def test_crowded_steps_are_drawn_but_not_all_labelled() -> None:
    """Labels are kept apart (8 % of the top rate) and the top step is always labelled."""
    rates = [5_000, 10_000, 20_000, 40_000, 92_800, 101_000, 106_000, 104_000]
    steps = [{"rate": r, "tx_per_s": float(r)} for r in rates]
    assert [s["tx_per_s"] for s in labelled(steps)] == [5_000, 20_000, 40_000, 92_800, 106_000]
    assert labelled([]) == [] and labelled(steps[:1]) == steps[:1]


def test_a_missing_matplotlib_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(BenchError, match=r"ordo\[bench\]"):
        require_matplotlib()
