"""``ordo up``: launch every replica of cluster.toml as a child process on this machine, show a
live status table, optionally drive demo traffic, and stop them all on Ctrl-C or after
``--duration``. A replica that exits is reported and restarted with a backoff (see
:mod:`.supervisor`); the others keep running. Replicas run in sessions of their own, so a
terminal's Ctrl-C reaches only the launcher, which settles the cluster, reads the summary and then
stops them. Children also stop if the launcher dies without cleaning up: each watches its parent
process (ORDO_PARENT_PID) and exits when it is gone."""

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

from ..config import ClusterConfig
from .acked_load import CheckFailed, converged_rollups
from .demo_load import LoadGenerator
from .local import HarnessError, LocalCluster
from .status_view import StatusView
from .supervisor import Supervisor

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


async def collect_summary(config: ClusterConfig, client: httpx.AsyncClient,
                          supervisor: Supervisor | None = None) -> dict[str, Any]:
    """The ``--json`` summary: per replica its position and per-rollup digests (``error`` and null
    positions for one that does not answer); ``agreement``: whether the committed chains of the
    replicas that answer (``answering``) are prefixes of the longest one; ``down``: which replicas
    do not answer and why; ``restarts``: every exit the supervisor saw and what it did."""
    replicas: list[dict[str, Any]] = []
    for r in config.replicas:
        base = config.api_url(r.id)
        try:
            status = (await client.get(f"{base}/status", timeout=5.0)).json()
            rollups = (await client.get(f"{base}/v1/rollups", timeout=5.0)).json()
        except (httpx.HTTPError, ValueError) as exc:
            replicas.append({"id": r.id, "error": str(exc) or type(exc).__name__, "round": None,
                             "committed_height": None, "last_block_hash": None, "txs_committed": None,
                             "rollups": {}})
            continue
        replicas.append({
            "id": r.id,
            "round": status["round"],
            "committed_height": status["committed_height"],
            "last_block_hash": status["last_block_hash"],
            "txs_committed": status["txs_committed"],
            "rollups": rollups,
        })
    answering = [r for r in replicas if "error" not in r]
    restarts = supervisor.report() if supervisor is not None else {}
    down = []
    for silent in (r for r in replicas if "error" in r):
        record = restarts.get(str(silent["id"]))
        reason = (record["gave_up"] or f"{record['exits'][-1]['exit']}, {record['state']}") if record \
            else f"not answering: {silent['error']}"
        down.append({"id": silent["id"], "reason": reason, "restarts": record["restarts"] if record else 0})
    return {"agreement": await _agreement(config, client, answering), "answering": [r["id"] for r in answering],
            "down": down, "restarts": restarts, "replicas": replicas}


async def _agreement(config: ClusterConfig, client: httpx.AsyncClient, answering: list[dict[str, Any]]) -> bool:
    if not answering:
        return False
    longest = max(answering, key=lambda r: r["committed_height"])
    base = config.api_url(longest["id"])
    for r in answering:
        height = r["committed_height"]
        if height == 0:
            continue
        try:
            response = await client.get(f"{base}/v1/blocks/{height}", timeout=5.0)
        except httpx.HTTPError:
            return False
        if response.status_code != 200 or response.json()["id"] != r["last_block_hash"]:
            return False
    return True


async def _settle(cluster: LocalCluster) -> None:
    """After the load stops, wait until the running replicas are quiescent (see
    :func:`converged_rollups`); only then is a summary read replica by replica comparable."""
    try:
        await converged_rollups(cluster, [rid for rid in cluster.ids if cluster.running(rid)],
                                timeout=SETTLE_TIMEOUT)
    except CheckFailed:
        print(f"ordo: cluster still busy {SETTLE_TIMEOUT:.0f} s after the load stopped; "
              "the summary compares replicas at different heights", file=sys.stderr)


class _Stopper:
    """SIGINT/SIGTERM: the first stops the run (settle, summary, stop in order), a second skips
    the wait for the cluster to settle, a third gives up on the summary."""

    def __init__(self) -> None:
        self.stop = trio.Event()
        self.settle_scope = trio.CancelScope()
        self.summary_scope = trio.CancelScope()

    async def watch(self, signals: Any) -> None:
        count = 0
        async for signum in signals:
            count += 1
            name = signal.Signals(signum).name
            if count == 1:
                print(f"ordo: {name}: stopping (again: do not wait for the cluster to settle)", file=sys.stderr)
                self.stop.set()
            elif count == 2:
                print(f"ordo: {name}: not waiting for the cluster to settle", file=sys.stderr)
                self.settle_scope.cancel()
            else:
                print(f"ordo: {name}: stopping the replicas without a summary", file=sys.stderr)
                self.summary_scope.cancel()


async def launch(config: ClusterConfig, options: LaunchOptions) -> int:
    cluster = LocalCluster(config, log_level=options.log_level)
    if options.reset and config.data_dir.exists():
        shutil.rmtree(config.data_dir)
    created = cluster.prepare()
    if created:
        print(f"created keys and databases for replicas {created} in {config.data_dir}", file=sys.stderr)
    summary: dict[str, Any] | None = None
    extra: dict[int, tuple[str, ...]] = {rid: ("--byzantine", mode) for rid, mode in options.byzantine}
    async with httpx.AsyncClient() as client:
        try:
            for rid in cluster.ids:
                await cluster.start(rid, *extra.get(rid, ()))
            try:
                await cluster.wait_ready()  # Ctrl-C here: KeyboardInterrupt, replicas stopped below
            except HarnessError as exc:
                raise LaunchError(_startup_failure(cluster, exc)) from None
            print(f"cluster {config.chain_id!r} up: {config.size} replicas "
                  f"({', '.join(config.api_url(r.id) for r in config.replicas)})", file=sys.stderr)
            print("\n".join(dashboard_lines(config)), file=sys.stderr)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                summary = await _run(config, options, cluster, client, extra, signals)
        finally:
            await cluster.stop_all()
    if summary is None:
        return 130
    _print_summary(summary)
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if summary["agreement"] and not summary["down"] else 1


def dashboard_lines(config: ClusterConfig) -> list[str]:
    """Where the operators' dashboard is: the first replica's, and every other replica's own."""
    first, *others = [f"{config.api_url(r.id)}/dashboard" for r in config.replicas]
    lines = [f"dashboard: {first}"]
    if others:
        lines.append(f"  (every replica serves its own: {', '.join(others)})")
    return lines


def _startup_failure(cluster: LocalCluster, exc: HarnessError) -> str:
    """One line: which replica ended during startup, how, and the last line of its log."""
    for exited in cluster.poll_exits():
        log = cluster.config.replica_dir(exited.replica) / "replica.log"
        return f"replica {exited.replica} {exited.describe()} while starting: {exited.last_line} (log: {log})"
    return f"the cluster did not start: {str(exc).splitlines()[0]}"


async def _run(config: ClusterConfig, options: LaunchOptions, cluster: LocalCluster, client: httpx.AsyncClient,
               extra: dict[int, tuple[str, ...]], signals: Any) -> dict[str, Any] | None:
    stopper = _Stopper()
    summary: dict[str, Any] | None = None
    load: LoadGenerator | None = None
    async with trio.open_nursery() as outer:
        outer.start_soon(stopper.watch, signals)
        supervisor = Supervisor(cluster, extra)
        outer.start_soon(supervisor.run)
        async with trio.open_nursery() as traffic:
            view = StatusView(config, client, cluster, live=options.live, notes=supervisor.note)
            traffic.start_soon(view.run)
            if options.load > 0:
                load = LoadGenerator(config, client, options.load)
                traffic.start_soon(load.run)
            with trio.move_on_after(options.duration if options.duration else float("inf")):
                await stopper.stop.wait()
            traffic.cancel_scope.cancel()
        with stopper.summary_scope:
            if load is not None:
                with stopper.settle_scope:
                    await _settle(cluster)
            summary = await collect_summary(config, client, supervisor)
            if load is not None:
                summary["load"] = load.report()
        outer.cancel_scope.cancel()
    return summary


def _print_summary(summary: dict[str, Any]) -> None:
    answering = ", ".join(str(i) for i in summary["answering"]) or "none"
    print(f"agreement among the replicas that answer ({answering}): {summary['agreement']}", file=sys.stderr)
    for r in summary["replicas"]:
        if "error" in r:
            print(f"  replica {r['id']}: not answering", file=sys.stderr)
            continue
        print(f"  replica {r['id']}: height {r['committed_height']}, round {r['round']}, "
              f"{r['txs_committed']} txs, {len(r['rollups'])} rollups", file=sys.stderr)
    for d in summary["down"]:
        print(f"down: replica {d['id']}: {d['reason']} ({d['restarts']} restarts)", file=sys.stderr)
    for rid, record in summary["restarts"].items():
        exits = "; ".join(f"{e['exit']} at {e['at_s']} s" for e in record["exits"])
        print(f"restarts: replica {rid} restarted {record['restarts']} times ({exits})", file=sys.stderr)
    if "load" in summary:
        load = summary["load"]
        print(f"load: offered {load['offered_tx_per_s']} tx/s (target {load['target_tx_per_s']:g}), "
              f"{load['accepted']} accepted, {load['busy']} busy, {load['errors']} errors", file=sys.stderr)
