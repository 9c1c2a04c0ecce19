"""The ``ordo`` command line. Every command prints one clear line on error and exits non-zero."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import ConfigError, load_config
from ..replica.faults import BYZANTINE_HELP, BYZANTINE_MODES, UnknownFaultMode, parse_byzantine

if TYPE_CHECKING:
    from rich.progress import TaskID

DEFAULT_CONFIG = "cluster.toml"


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", type=Path, default=Path(DEFAULT_CONFIG),
                        help=f"cluster file (default: {DEFAULT_CONFIG})")


def _byzantine_mode(spec: str) -> str:
    try:
        return parse_byzantine(spec)
    except UnknownFaultMode as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_replica(args: argparse.Namespace) -> int:
    from .replica import main

    return main(args.config, args.id, recover=args.recover, log_level=args.log_level, byzantine=args.byzantine)


def cmd_up(args: argparse.Namespace) -> int:
    import logging

    import trio

    from ..cluster.launcher import LaunchOptions, launch

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    byzantine = []
    for spec in args.byzantine:
        rid, _, mode = spec.partition(":")
        try:
            parse_byzantine(mode)
        except UnknownFaultMode:
            rid = ""
        if not rid.isdigit():
            raise ConfigError(args.config, "--byzantine",
                              f"expected ID:MODE with MODE in {BYZANTINE_MODES}, got {spec!r}")
        config.replica(int(rid))
        byzantine.append((int(rid), mode))
    if not args.reset:  # a replica that lost its key: say so here, before starting the others
        from ..keys import key_path
        from ..replica.errors import NodeStartError
        from ..replica.setup import cluster_is_new, missing_key_problem

        if not cluster_is_new(config):
            for r in config.replicas:
                if not key_path(config, r.id).exists():
                    raise NodeStartError(missing_key_problem(config, r.id))
    options = LaunchOptions(duration=args.duration, json_path=args.json, load=args.load,
                            live=not args.no_live, reset=args.reset, log_level=args.log_level,
                            byzantine=tuple(byzantine))
    return trio.run(launch, config, options)


def cmd_status(args: argparse.Namespace) -> int:
    import httpx
    import trio
    from rich.console import Console

    from ..cluster.status_view import StatusView, fetch_statuses, render_table

    config = load_config(args.config)

    async def run() -> int:
        async with httpx.AsyncClient() as client:
            if args.watch:
                await StatusView(config, client, live=True).run()
            statuses = await fetch_statuses(config, client)
        if args.json:
            print(json.dumps(statuses, indent=2))
        else:
            Console().print(render_table(config, statuses))
        return 0 if any(s.get("state") == "up" for s in statuses) else 1

    return trio.run(run)


def cmd_keygen(args: argparse.Namespace) -> int:
    from ..keys import key_path, load_keypair, public_key_path, restore_public_key
    from ..replica.setup import init_replica_dir
    from ..storage import DATABASE_FILES

    config = load_config(args.config)
    ids = [args.id] if args.id is not None else [r.id for r in config.replicas]
    for replica_id in ids:
        pinned = config.replica(replica_id).public_key
        path = public_key_path(config, replica_id)
        previous = path.read_text().strip() if path.exists() else None
        had_state = any((config.replica_dir(replica_id) / name).exists() for name in DATABASE_FILES)
        created = init_replica_dir(config, replica_id)
        restore_public_key(config, replica_id, load_keypair(key_path(config, replica_id)))
        public = path.read_text().strip()
        state = "created" if created else "exists"
        print(f"replica {replica_id}: public_key = \"{public}\"  ({state}: {key_path(config, replica_id)})")
        replaced = (previous not in (None, public)) or (pinned is not None and pinned.hex() != public)
        if created and (replaced or had_state):
            print(f"ordo: replica {replica_id} has a NEW key: the committee changes. Put this public_key "
                  f"into its [[replica]] table in cluster.toml on every replica and restart them all; "
                  "proofs signed with the old key no longer verify against the new committee",
                  file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import trio
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from ..cluster.bench import BenchError, BenchOptions, failed, run_bench

    options = BenchOptions(
        replicas=args.replicas, duration=args.duration, warmup=args.warmup, rate=args.rate, tx_bytes=args.tx_bytes,
        batch=args.batch, clients=args.clients, window=args.window, rollups=args.rollups,
        latency=not args.no_latency, empty=args.empty, catch_up=args.catch_up, generator_only=args.generator_only,
        sweep=args.sweep,
        sweep_rates=tuple(args.sweep_rates or ()), plot=args.plot, soak=args.soak or 0.0,
        soak_interval=args.soak_interval, soak_warmup=args.soak_warmup, soak_tolerance_mb=args.soak_tolerance_mb,
        json_path=args.json, keep=args.keep)
    console = Console(stderr=True)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[done]}"),
                   TimeRemainingColumn(), console=console, transient=True)
    tasks: dict[str, TaskID] = {}

    def progress(what: str, done: float, total: float) -> None:
        if what not in tasks:
            for old in tasks.values():
                bar.remove_task(old)
            tasks.clear()
            tasks[what] = bar.add_task(what, total=total, done="")
        bar.update(tasks[what], completed=done, done=f"{done:.0f}/{total:.0f} s")

    console.print(f"ordo bench: starting a {args.replicas}-replica cluster ..." if not args.generator_only
                  else "ordo bench: the generator against a sink ...")
    try:
        with bar:
            summary = trio.run(run_bench, options, progress, console.print)
    except BenchError as exc:
        print(f"ordo: {exc}", file=sys.stderr)
        return 2
    table = Table(title="ordo bench", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        if key in ("options", "sweep", "rss_samples", "agreement_detail"):
            continue
        for sub, item in (value.items() if isinstance(value, dict) else [("", value)]):
            table.add_row(f"{key}.{sub}" if sub else key, str(item))
    for step in summary.get("sweep", []):
        table.add_row(f"sweep {step['rate']:,.0f} tx/s", f"{step['tx_per_s']:,.0f} tx/s committed, "
                      f"p50 {step['p50_ms']} ms, p99 {step['p99_ms']} ms")
    Console().print(table)
    if failed(summary):
        detail = summary.get("agreement_detail", {})
        why = "the replicas disagree" if summary.get("agreement") is False else "RSS grew after warm-up"
        print(f"ordo bench: FAILED: {why} {json.dumps(detail) if detail else ''}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ordo", description="ordo: a Byzantine-fault-tolerant shared sequencer for many rollups.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("up", help="launch the local cluster from cluster.toml with a live status view",
                       description="Start every replica of the cluster file as a child process, show a "
                                   "live status table, stop them all on Ctrl-C or after --duration.")
    _config_arg(p)
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS", help="stop after this long")
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="write a final summary (agreement, per-replica heights and rollup digests)")
    p.add_argument("--load", type=float, default=0.0, metavar="TX_PER_S",
                   help="drive demo traffic over several rollups, including bundles")
    p.add_argument("--reset", action="store_true", help="delete the data directory first (a new chain)")
    p.add_argument("--no-live", action="store_true", help="plain status lines instead of the live table")
    p.add_argument("--byzantine", action="append", default=[], metavar="ID:MODE",
                   help="fault injection: start replica ID misbehaving, e.g. 3:equivocating-leader or "
                        f"3:censor:7 (modes: {BYZANTINE_HELP}); repeatable")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("replica", help="run one replica process",
                       description="Run replica --id of the cluster file until SIGINT/SIGTERM.")
    _config_arg(p)
    p.add_argument("--id", type=int, required=True, help="this replica's id in the cluster file")
    p.add_argument("--recover", action="store_true",
                   help="rebuild a lost or unreadable database from peers (signs nothing until safe)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--byzantine", type=_byzantine_mode, default=None, metavar="MODE",
                   help=f"fault injection: misbehave on purpose ({BYZANTINE_HELP})")
    p.set_defaults(func=cmd_replica)

    p = sub.add_parser("status", help="show the status of a running cluster")
    _config_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--watch", action="store_true", help="keep refreshing (Ctrl-C to stop)")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("bench", help="measure throughput and latency on a throwaway local cluster",
                       description="Start a temporary cluster on free local ports, drive it with binary batches "
                                   "and report committed tx/s, rounds/s, client latency (a sample from every "
                                   "request), agreement, RSS and CPU per process (docs/OPERATIONS.md, "
                                   "Benchmarking).")
    p.add_argument("--replicas", type=int, default=4)
    p.add_argument("--duration", type=float, default=20.0, metavar="SECONDS", help="measured time (per sweep step)")
    p.add_argument("--warmup", type=float, default=3.0, metavar="SECONDS", help="load before measuring")
    p.add_argument("--rate", type=float, default=None, metavar="TX_PER_S", help="offered load (default: max)")
    p.add_argument("--tx-size", "--tx-bytes", dest="tx_bytes", type=int, default=256, metavar="BYTES",
                   help="payload bytes per transaction (>= 8)")
    p.add_argument("--batch", type=int, default=1000, help="transactions per HTTP request")
    p.add_argument("--clients", type=int, default=8, help="connections, spread over the replicas")
    p.add_argument("--window", type=int, default=32, metavar="REQUESTS",
                   help="without --rate: at most this many requests sent but not yet committed (0: no limit, "
                        "only full mempools hold the load back)")
    p.add_argument("--rollups", type=int, default=8)
    p.add_argument("--no-latency", action="store_true",
                   help="no latency probes or subscriptions (p50_ms/p99_ms null): what the measuring costs")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--empty", action="store_true", help="no load: rounds/s with empty blocks")
    mode.add_argument("--catch-up", type=int, default=0, metavar="BLOCKS",
                      help="instead: stop a replica, let the others commit BLOCKS blocks under load, restart it "
                           "and measure how fast it catches up")
    mode.add_argument("--generator-only", action="store_true",
                      help="no cluster: the load generator against a sink that discards, to show its own ceiling")
    mode.add_argument("--sweep", action="store_true",
                      help="rising offered rates until the committed rate stops rising or latency explodes")
    mode.add_argument("--soak", type=float, default=None, metavar="SECONDS",
                      help="steady load at --rate (default 1000) for SECONDS; RSS per replica every "
                           "--soak-interval s; exit 1 if it grows after warm-up beyond --soak-tolerance-mb")
    p.add_argument("--sweep-rates", type=lambda v: [float(x) for x in v.split(",")], default=None,
                   metavar="R1,R2,...", help="the sweep's offered rates (tx/s)")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                   help="with --sweep: draw the throughput-latency curve (needs matplotlib: ordo[bench])")
    p.add_argument("--soak-interval", type=float, default=30.0, metavar="SECONDS")
    p.add_argument("--soak-warmup", type=float, default=None, metavar="SECONDS",
                   help="RSS growth counts from here (default: min(240, a third of the soak))")
    p.add_argument("--soak-tolerance-mb", type=float, default=25.0, metavar="MB")
    p.add_argument("--json", type=Path, default=None, metavar="FILE")
    p.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("keygen", help="create a replica's key (and empty database) in the data directory",
                       description="Create missing keys; prints each public key to paste into cluster.toml "
                                   "when replicas run on different hosts.")
    _config_arg(p)
    p.add_argument("--id", type=int, default=None, help="only this replica (default: all)")
    p.set_defaults(func=cmd_keygen)

    from .rollup_commands import add_client_commands  # submit, bundle, tx, log, evidence

    add_client_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        print(f"ordo: config error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one clear line, not a traceback, for expected failures
        from ..cluster.launcher import LaunchError
        from ..cluster.local import HarnessError
        from ..keys import KeyFileError
        from ..replica.errors import NodeStartError

        if isinstance(exc, (LaunchError, HarnessError, NodeStartError, KeyFileError, OSError)):
            print(f"ordo: {exc}", file=sys.stderr)
        else:
            raise
    return 2


if __name__ == "__main__":
    sys.exit(main())
