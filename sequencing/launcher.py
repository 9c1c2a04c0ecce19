"""``ordo up``: launch every replica of cluster.toml as a child process on this machine, show a
live status table, optionally drive demo traffic, and stop them all on Ctrl-C or after
``--duration``. Children also stop if the launcher dies without cleaning up: each watches its
parent process (ORDO_PARENT_PID) and exits when it is gone."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

from .config import ClusterConfig
from .harness import LocalCluster
from .harness_load import CheckFailed, converged_rollups
from .load import LoadGenerator
from .status_view import StatusView

log = logging.getLogger("ordo.up")
STARTUP_TIMEOUT = 60.0
SETTLE_TIMEOUT = 30.0


class LaunchError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class LaunchOptions:
    duration: float | None = None
    json_path: Path | None = None
    load: float = 0.0
    live: bool = True
    reset: bool = False
    log_level: str = "info"
    byzantine: tuple[tuple[int, str], ...] = ()  # (replica id, mode) started with --byzantine




async def collect_summary(config: ClusterConfig, client: httpx.AsyncClient) -> dict[str, Any]:
    """The ``--json`` summary: per replica its position and per-rollup digests, and whether every
    committed chain is a prefix of the longest one."""
    replicas: list[dict[str, Any]] = []
    for r in config.replicas:
        base = config.api_url(r.id)
        try:
            status = (await client.get(f"{base}/status", timeout=5.0)).json()
            rollups = (await client.get(f"{base}/v1/rollups", timeout=5.0)).json()
        except (httpx.HTTPError, ValueError) as exc:
            replicas.append({"id": r.id, "error": str(exc), "round": None, "committed_height": 0,
                             "last_block_hash": None, "txs_committed": 0, "rollups": {}})
            continue
        replicas.append({
            "id": r.id,
            "round": status["round"],
            "committed_height": status["committed_height"],
            "last_block_hash": status["last_block_hash"],
            "txs_committed": status["txs_committed"],
            "rollups": rollups,
        })
    return {"agreement": await _agreement(config, client, replicas), "replicas": replicas}


async def _agreement(config: ClusterConfig, client: httpx.AsyncClient, replicas: list[dict[str, Any]]) -> bool:
    live = [r for r in replicas if "error" not in r]
    if len(live) != len(replicas) or not live:
        return False
    longest = max(live, key=lambda r: r["committed_height"])
    base = config.api_url(longest["id"])
    for r in live:
        height = r["committed_height"]
        if height == 0:
            continue
        response = await client.get(f"{base}/v1/blocks/{height}", timeout=5.0)
        if response.status_code != 200 or response.json()["id"] != r["last_block_hash"]:
            return False
    return True


async def _settle(cluster: LocalCluster) -> None:
    """After the load stops, wait until the cluster is quiescent (see :func:`converged_rollups`);
    only then is a summary read replica by replica comparable."""
    try:
        await converged_rollups(cluster, timeout=SETTLE_TIMEOUT)
    except CheckFailed:
        print(f"ordo: cluster still busy {SETTLE_TIMEOUT:.0f} s after the load stopped; "
              "the summary compares replicas at different heights", file=sys.stderr)


async def launch(config: ClusterConfig, options: LaunchOptions) -> int:
    cluster = LocalCluster(config, log_level=options.log_level)
    if options.reset and config.data_dir.exists():
        shutil.rmtree(config.data_dir)
    created = cluster.prepare()
    if created:
        print(f"created keys and databases for replicas {created} in {config.data_dir}", file=sys.stderr)
    summary: dict[str, Any] | None = None
    load: LoadGenerator | None = None
    async with httpx.AsyncClient() as client:
        try:
            modes = dict(options.byzantine)
            for rid in cluster.ids:
                extra = ("--byzantine", modes[rid]) if rid in modes else ()
                await cluster.start(rid, *extra)
            await cluster.wait_ready()
            print(f"cluster {config.chain_id!r} up: {config.size} replicas "
                  f"({', '.join(config.api_url(r.id) for r in config.replicas)})", file=sys.stderr)
            async with trio.open_nursery() as nursery:
                view = StatusView(config, client, cluster, live=options.live)
                nursery.start_soon(view.run)
                if options.load > 0:
                    load = LoadGenerator(config, client, options.load)
                    nursery.start_soon(load.run)
                nursery.start_soon(_watch_children, cluster, nursery.cancel_scope)
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    with trio.move_on_after(options.duration if options.duration else float("inf")):
                        async for _ in signals:
                            break
                nursery.cancel_scope.cancel()
            if load is not None:
                await _settle(cluster)
            summary = await collect_summary(config, client)
            if load is not None:
                summary["load"] = load.report()
        finally:
            await cluster.stop_all()
    if summary is not None:
        _print_summary(summary)
        if options.json_path is not None:
            options.json_path.write_text(json.dumps(summary, indent=2) + "\n")
        return 0 if summary["agreement"] else 1
    return 1


async def _watch_children(cluster: LocalCluster, scope: trio.CancelScope) -> None:
    while True:
        for rid, proc in cluster.processes.items():
            if proc.returncode is not None:
                print(f"replica {rid} exited with code {proc.returncode}:\n{cluster.log_tail(rid)}",
                      file=sys.stderr)
                scope.cancel()
                return
        await trio.sleep(0.5)


def _print_summary(summary: dict[str, Any]) -> None:
    print(f"agreement: {summary['agreement']}", file=sys.stderr)
    for r in summary["replicas"]:
        print(f"  replica {r['id']}: height {r['committed_height']}, round {r['round']}, "
              f"{r['txs_committed']} txs, {len(r['rollups'])} rollups", file=sys.stderr)
