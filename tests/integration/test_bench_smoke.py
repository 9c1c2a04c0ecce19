"""CI's smoke test of ``ordo bench`` (issue 10): a few seconds of real load on a throwaway
4-replica cluster through the CLI, checking that the JSON report has what it promises and that
the replicas agree; and the generator alone against its sink. Speed is the bench's to measure, not
this test's: it only requires that something was committed and measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

KEYS = {"tx_per_s", "p50_ms", "p99_ms", "rounds_per_s", "agreement", "rss_mb_max", "cpu_s", "options",
        "offered_tx_per_s", "latency_samples", "agreement_detail", "cpu_sys_s", "replica_cpu_us_per_tx"}


async def ordo_bench(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "sequencing.cli", "bench", *args, "--json", str(out)]
    with trio.fail_after(240):
        result = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False)
    assert result.returncode == 0, (result.stdout.decode()[-3000:], result.stderr.decode()[-3000:])
    summary: dict[str, Any] = json.loads(out.read_text())
    return summary


async def test_a_short_bench_reports_every_figure_and_agreement(tmp_path: Path) -> None:
    summary = await ordo_bench(tmp_path, "--replicas", "4", "--duration", "3", "--warmup", "1",
                               "--rate", "2000", "--tx-size", "256", "--batch", "200")
    assert set(summary) >= KEYS, KEYS - set(summary)
    assert summary["agreement"] is True, summary["agreement_detail"]
    assert summary["agreement_detail"]["settled"] is True
    assert summary["tx_per_s"] > 0 and summary["rounds_per_s"] > 0
    assert summary["latency_samples"] > 0 and 0 < summary["p50_ms"] <= summary["p99_ms"]
    replicas = {f"replica-{i}" for i in range(4)}
    assert set(summary["rss_mb_max"]) == replicas and all(v > 10 for v in summary["rss_mb_max"].values())
    assert set(summary["cpu_s"]) == {"bench", *replicas}
    assert all(v is not None and v > 0 for v in summary["cpu_s"].values()), summary["cpu_s"]
    assert set(summary["cpu_sys_s"]) == set(summary["cpu_s"])
    assert all(0 <= summary["cpu_sys_s"][k] <= v for k, v in summary["cpu_s"].items()), summary["cpu_sys_s"]
    assert summary["replica_cpu_us_per_tx"] > 0
    assert summary["options"]["tx_bytes"] == 256 and summary["options"]["rate"] == 2000


async def test_the_generator_alone_reports_its_ceiling(tmp_path: Path) -> None:
    summary = await ordo_bench(tmp_path, "--generator-only", "--duration", "2", "--warmup", "0.5")
    assert summary["generator_only"] is True and summary["errors"] == 0
    assert summary["tx_per_s"] > 0 and summary["tx_per_bench_cpu_s"] > summary["tx_per_s"] / 2
    assert set(summary["cpu_s"]) == set(summary["cpu_sys_s"]) == {"bench", "sink"}


def test_the_bench_refuses_a_plot_without_a_sweep(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "sequencing.cli", "bench", "--plot", str(tmp_path / "p.png")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "--plot draws a --sweep" in result.stderr
