"""Shared by the fault-injection scripts: a throwaway local cluster (or the one in cluster.toml),
a client load, and the checks every scenario ends with (agreement, identical sub-logs, every
acknowledged transaction committed exactly once)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sequencing.harness import FAST_TIMING, LocalCluster, write_local_config  # noqa: E402
from sequencing.harness_load import AckedLoad, CheckFailed, check_exactly_once, converged_rollups  # noqa: E402


async def verdict(cluster: LocalCluster, load: AckedLoad | None, ids: list[int] | None = None) -> dict[str, Any]:
    """Converged sub-logs, agreement on the last blocks, every acknowledged transaction exactly once."""
    ids = cluster.ids if ids is None else ids
    result: dict[str, Any] = {"ok": False}
    try:
        summary = await converged_rollups(cluster, ids)
        result["identical_sublogs"] = True
        if load is not None:
            await check_exactly_once(cluster, load, summary, ids[0])
        result["acked_all_committed_once"] = True
    except CheckFailed as exc:
        result["failure"] = str(exc)
    heights = {r: (await cluster.status(r) or {}).get("committed_height", 0) for r in ids}
    low = min(heights.values())
    chains = {r: [(await cluster.get(r, f"/v1/blocks/{h}")).json()["id"] for h in range(max(1, low - 20), low + 1)]
              for r in ids}
    result["agreement"] = all(c == chains[ids[0]] for c in chains.values())
    result["heights"] = heights
    result["acked"] = len(load.acked) if load else 0
    result["evidence"] = {r: len((await cluster.get(r, "/v1/evidence")).json()) for r in ids}
    result["ok"] = "failure" not in result and result["agreement"]
    return result


def main(scenario: Callable[[LocalCluster, argparse.Namespace], Awaitable[dict[str, Any]]],
         description: str) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", type=Path, default=None,
                        help="use this cluster.toml (default: a throwaway 4-replica cluster on free ports)")
    parser.add_argument("--seconds", type=float, default=6.0, help="how long the fault lasts")
    parser.add_argument("--json", type=Path, default=None, help="write the verdict here")
    args = parser.parse_args()

    async def run() -> dict[str, Any]:
        config = args.config or write_local_config(Path(tempfile.mkdtemp(prefix="ordo-fault-")), timing=FAST_TIMING)
        cluster = LocalCluster(config, log_level="warning")
        try:
            await cluster.start_all()
            return await scenario(cluster, args)
        finally:
            await cluster.stop_all()

    result = trio.run(run)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    sys.exit(0 if result.get("ok") else 1)
