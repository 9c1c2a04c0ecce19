"""Shared by the fault-injection scripts: a throwaway local cluster (or the one in cluster.toml),
a client load, and the checks every scenario ends with (agreement, identical sub-logs, every
acknowledged transaction committed exactly once).

The verdict survives the cluster it judges: a replica that exits or stops answering, or a
scenario step that fails because of it, is a finding in the JSON (which replica, its exit code or
signal, the tail of its log; the error), never a traceback instead of a verdict. The checks then
run on the replicas still running. The JSON is always printed; the exit status is 0 only if the
verdict is ``ok``."""

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

from sequencing.cluster.local import FAST_TIMING, LocalCluster, write_local_config  # noqa: E402
from sequencing.cluster.acked_load import AckedLoad, CheckFailed, check_exactly_once, converged_rollups  # noqa: E402

__all__ = ["ROOT", "AckedLoad", "LocalCluster", "faults_everywhere", "main", "verdict"]

Scenario = Callable[[LocalCluster, argparse.Namespace, AckedLoad], Awaitable[dict[str, Any]]]


async def verdict(cluster: LocalCluster, load: AckedLoad | None, ids: list[int] | None = None) -> dict[str, Any]:
    """Converged sub-logs, agreement on the last blocks, every acknowledged transaction exactly
    once, checked on the replicas of ``ids`` that are still running."""
    wanted = cluster.ids if ids is None else ids
    ids = [r for r in wanted if cluster.running(r)]
    result: dict[str, Any] = {"ok": False, "checked": ids}
    try:
        if not ids:
            raise CheckFailed("no replica left running")
        summary = await converged_rollups(cluster, ids)
        result["identical_sublogs"] = True
        if load is not None:
            await check_exactly_once(cluster, load, summary, ids[0])
        result["acked_all_committed_once"] = True
    except Exception as exc:  # whatever failed (a group from parallel lookups too) is the finding
        result["failure"] = _describe(exc)
    heights = {r: ((await cluster.status(r)) or {}).get("committed_height") for r in wanted}
    result["agreement"] = await _agreement(cluster, [r for r in ids if heights[r] is not None], heights)
    result["heights"] = heights
    result["acked"] = len(load.acked) if load else 0
    result["evidence"] = {r: await _evidence_count(cluster, r) for r in ids}
    result["ok"] = "failure" not in result and result["agreement"]
    return result


async def _agreement(cluster: LocalCluster, ids: list[int], heights: dict[int, Any]) -> bool:
    """The answering replicas hold the same ids for the last 20 blocks all of them committed."""
    if not ids:
        return False
    low = min(heights[r] for r in ids)
    chains = set()
    for r in ids:
        try:
            chains.add(tuple([(await cluster.get(r, f"/v1/blocks/{h}", timeout=5.0)).json()["id"]
                              for h in range(max(1, low - 20), low + 1)]))
        except (httpx.HTTPError, ValueError, KeyError):
            return False
    return len(chains) == 1


async def _evidence_count(cluster: LocalCluster, replica: int) -> int | None:
    try:
        return len((await cluster.get(replica, "/v1/evidence", timeout=5.0)).json())
    except (httpx.HTTPError, ValueError):
        return None


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


def _describe(exc: BaseException) -> str:
    """One line per leaf of an exception (group): ``Type: message``."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}".strip()


async def _findings(cluster: LocalCluster, result: dict[str, Any]) -> dict[str, Any]:
    """What happened to the replicas themselves: exits the scenario did not cause, and running
    replicas that no longer answer. Either makes the verdict fail."""
    cluster.poll_exits()
    result["replicas_exited"] = [e.to_json() for e in cluster.exits]
    result["unreachable"] = [r for r in cluster.ids if cluster.running(r) and await cluster.status(r) is None]
    if result["replicas_exited"] or result["unreachable"]:
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
    if options is not None:
        options(parser)
    args = parser.parse_args()

    async def run() -> dict[str, Any]:
        config = args.config or write_local_config(Path(tempfile.mkdtemp(prefix="ordo-fault-")), timing=FAST_TIMING)
        cluster = LocalCluster(config, log_level="warning")
        load = AckedLoad(cluster)
        try:
            result: dict[str, Any] = {"ok": False}
            try:
                with trio.fail_after(args.timeout):
                    await cluster.start_all()
                    result = await scenario(cluster, args, load)
            except Exception as exc:  # a failed step (or the timeout) is a finding, not a crash
                print("scenario step failed (the verdict follows on stdout):", file=sys.stderr)
                traceback.print_exception(exc, file=sys.stderr)
                load.stopping = True
                result = {**await verdict(cluster, load), "ok": False, "error": _describe(exc)}
            return await _findings(cluster, result)
        finally:
            await cluster.stop_all()

    result = trio.run(run)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    sys.exit(0 if result.get("ok") else 1)
