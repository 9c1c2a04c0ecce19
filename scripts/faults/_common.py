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

from sequencing.harness import LocalCluster, write_local_config  # noqa: E402

TIMING = {"base_timeout": 0.5, "max_timeout": 3.0, "idle_block_delay": 0.02, "batch_interval": 0.02}
ROLLUPS = (1, 2, 3, 4)


class Load:
    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.acked: dict[str, int] = {}
        self.seq = 0
        self.stopping = False
        self.done = trio.Event()

    async def run(self, targets: Callable[[], list[int]] | None = None) -> None:
        turn = 0
        while not self.stopping:
            ids = targets() if targets else self.cluster.ids
            turn += 1
            rid = ids[turn % len(ids)]
            txs = []
            for _ in range(20):
                self.seq += 1
                txs.append({"rollup_id": ROLLUPS[self.seq % 4], "data": f"fault-{self.seq}"})
            try:
                response = await self.cluster.post(rid, "/v1/transactions/batch", json={"transactions": txs})
                if response.status_code == 200:
                    for tx, tx_id in zip(txs, response.json()["ids"], strict=True):
                        if tx_id:
                            self.acked[tx_id] = tx["rollup_id"]
            except Exception:
                pass
            await trio.sleep(0.05)
        self.done.set()

    async def stop(self) -> None:
        self.stopping = True
        await self.done.wait()


async def verdict(cluster: LocalCluster, load: Load | None, ids: list[int] | None = None) -> dict[str, Any]:
    """Wait for the sub-logs to converge, then check agreement and exactly-once delivery."""
    ids = cluster.ids if ids is None else ids
    summaries: list[Any] = []
    with trio.move_on_after(60):
        while True:
            summaries = [(await cluster.get(r, "/v1/rollups")).json() for r in ids]
            statuses = [await cluster.status(r) for r in ids]
            if all(s and s["mempool_txs"] == 0 and s["pending_batches"] == 0 for s in statuses) and all(
                x == summaries[0] for x in summaries
            ):
                break
            await trio.sleep(0.5)
    heights = {r: (await cluster.status(r) or {}).get("committed_height", 0) for r in ids}
    low = min(heights.values())
    chains = {r: [(await cluster.get(r, f"/v1/blocks/{h}")).json()["id"] for h in range(max(1, low - 20), low + 1)]
              for r in ids}
    agreement = all(c == chains[ids[0]] for c in chains.values())
    identical = all(x == summaries[0] for x in summaries)
    missing = 0
    if load is not None:
        for tx_id in load.acked:
            body = (await cluster.get(ids[0], f"/v1/transactions/{tx_id}")).json()
            missing += body.get("status") != "committed"
    evidence = {r: len((await cluster.get(r, "/v1/evidence")).json()) for r in ids}
    result = {"agreement": agreement, "identical_sublogs": identical, "heights": heights,
              "acked": len(load.acked) if load else 0, "acked_missing": missing, "evidence": evidence}
    result["ok"] = agreement and identical and missing == 0
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
        config = args.config or write_local_config(Path(tempfile.mkdtemp(prefix="ordo-fault-")), timing=TIMING)
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
