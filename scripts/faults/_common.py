"""Shared by the fault-injection scripts: a throwaway local cluster (or the one in cluster.toml),
a client load, and the checks every scenario ends with (agreement, identical sub-logs, every
acknowledged transaction committed exactly once).

The verdict survives the cluster it judges: a replica that exits or stops answering, or a
scenario step that fails because of it, is a finding in the JSON (which replica, its exit code or
signal, the tail of its log; the error), never a traceback instead of a verdict. The checks then
run on the replicas still running. The JSON is always printed; the exit status is 0 only if the
verdict is ``ok``.

Every verdict carries at least ``scenario`` (the script's name), ``ok``, ``agreement``,
``identical_sublogs``, ``acked``, ``acked_lost`` and ``committed_twice`` (counts, 0 when good),
``max_commit_gap_s`` and ``evidence`` (per replica), then the scenario's own figures. The gap comes
from a commit watch (sequencing/cluster/commit_watch.py) that main() runs beside the scenario from
the moment the cluster is ready: every replica's commit stream, the longest time no new block was
committed anywhere (``commit_gap_by_replica_s``: per replica, while its process ran). Scenarios
read it as ``args.commits`` for per-phase figures (:func:`phase`)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import trio

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sequencing.cluster.acked_load import AckedLoad  # noqa: E402
from sequencing.cluster.commit_watch import CommitWatch, commit_latencies, percentiles, phase_figures  # noqa: E402
from sequencing.cluster.fault_verdict import describe, verdict  # noqa: E402
from sequencing.cluster import netns  # noqa: E402
from sequencing.cluster.local import FAST_TIMING, LocalCluster, write_local_config  # noqa: E402

__all__ = ["REQUIRED", "ROOT", "AckedLoad", "CommitWatch", "LocalCluster", "commit_latencies", "faults_everywhere",
           "main", "percentiles", "phase", "verdict"]

Scenario = Callable[[LocalCluster, argparse.Namespace, AckedLoad], Awaitable[dict[str, Any]]]

# Every verdict carries these (verdict() fills all but the first and the gap; main() adds those).
REQUIRED = ("scenario", "ok", "agreement", "identical_sublogs", "acked", "acked_lost", "committed_twice",
            "max_commit_gap_s", "evidence")


async def faults_everywhere(cluster: LocalCluster, rules: Callable[[int], dict[str, Any]] | None) -> list[int]:
    """Set ``rules(replica)`` on every replica (clear them all if ``rules`` is None); returns the
    replicas whose admin API did not answer (a dead replica must not end the scenario)."""
    failed = []
    for rid in cluster.ids:
        try:
            if rules is None:
                await cluster.clear_faults(rid)
            else:
                await cluster.set_faults(rid, rules(rid))
        except httpx.HTTPError:
            failed.append(rid)
    return failed


def phase(args: argparse.Namespace, load: AckedLoad, start: float, end: float) -> dict[str, Any]:
    """Blocks/s, tx/s, commit gap and commit latency p50/p99 of [start, end) (after verdict())."""
    heights = load.report.heights if load.report is not None else {}
    return phase_figures(args.commits, load.sent_at, heights, start, end)


async def _findings(cluster: LocalCluster, result: dict[str, Any]) -> dict[str, Any]:
    """What happened to the replicas themselves: exits the scenario did not cause, and running
    replicas that no longer answer. Either makes the verdict fail."""
    cluster.poll_exits()
    result["replicas_exited"] = [e.to_json() for e in cluster.exits]
    result["unreachable"] = [r for r in cluster.ids if cluster.running(r) and await cluster.status(r) is None]
    if result["replicas_exited"] or result["unreachable"]:
        result["ok"] = False
    return result


def _complete(result: dict[str, Any], name: str, watch: CommitWatch | None) -> dict[str, Any]:
    """The scenario's name first, the commit-gap figures of the whole run, and every required
    field: one a scenario left out is null and fails the verdict (``missing_fields``)."""
    result = {"scenario": name, **result}
    if watch is not None:
        result.update(watch.summary())
    missing = [k for k in REQUIRED if k not in result]
    if missing:
        result.update({k: None for k in missing})
        result["missing_fields"] = missing
        result["ok"] = False
    return result


def main(scenario: Scenario, description: str, *, seconds: float = 6.0,
         options: Callable[[argparse.ArgumentParser], None] | None = None) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", type=Path, default=None,
                        help="use this cluster.toml (default: a throwaway 4-replica cluster on free ports)")
    parser.add_argument("--seconds", type=float, default=seconds,
                        help=f"how long the fault lasts (default {seconds:g})")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="give the scenario at most this long, then judge the cluster as it is")
    parser.add_argument("--json", type=Path, default=None, help="write the verdict here")
    parser.add_argument("--netns", action="store_true",
                        help="each replica in its own network namespace with its own address, like separate "
                             "hosts; blocked links cut in the kernel (root; skipped where refused)")
    if options is not None:
        options(parser)
    args = parser.parse_args()
    if args.netns and args.config:
        parser.error("--netns makes its own throwaway cluster: not with --config")

    name = Path(sys.argv[0]).name

    lab = None
    if args.netns:
        reason = netns.refused()
        if reason is not None:
            result = {"scenario": name, "ok": True, "skipped": f"--netns: {reason}"}
            print(f"{name}: skipped, {result['skipped']}", file=sys.stderr)
            print(json.dumps(result, indent=2))
            if args.json:
                args.json.write_text(json.dumps(result, indent=2) + "\n")
            sys.exit(0)
        lab = netns.NetnsLab(4)

    async def run() -> dict[str, Any]:
        directory = Path(tempfile.mkdtemp(prefix="ordo-fault-"))
        config = args.config or write_local_config(directory, timing=FAST_TIMING,
                                                   hosts=lab.hosts if lab is not None else None)
        cluster = LocalCluster(config, log_level="warning", netns=lab)
        load = AckedLoad(cluster)
        watch: CommitWatch | None = None
        try:
            result: dict[str, Any] = {"ok": False}
            try:
                with trio.fail_after(args.timeout):
                    await cluster.start_all()
                    async with trio.open_nursery() as nursery:
                        # the commit watch runs from a ready cluster to the scenario's end; the
                        # scenario reads it as args.commits (per-phase gaps, commit times)
                        watch = args.commits = CommitWatch(cluster)
                        nursery.start_soon(watch.run)
                        result = await scenario(cluster, args, load)
                        nursery.cancel_scope.cancel()
            except Exception as exc:  # a failed step (or the timeout) is a finding, not a crash
                print("scenario step failed (the verdict follows on stdout):", file=sys.stderr)
                traceback.print_exception(exc, file=sys.stderr)
                load.stopping = True
                result = {**await verdict(cluster, load), "ok": False, "error": describe(exc)}
            return _complete(await _findings(cluster, result), name, watch)
        finally:
            await cluster.stop_all()

    try:
        if lab is not None:
            lab.setup()
        result = trio.run(run)
    finally:
        if lab is not None:
            lab.teardown()
    if lab is not None:
        result["netns"] = {"hosts": lab.hosts}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    sys.exit(0 if result.get("ok") else 1)
