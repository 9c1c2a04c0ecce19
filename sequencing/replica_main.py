"""``ordo replica``: one replica process — node, API and admin servers — until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import trio

from .api import serve_api
from .config import ClusterConfig, load_config
from .keys import ensure_keypair, key_path, load_keypair
from .node import DATABASE_FILES, Node, NodeOptions, NodeStartError
from .storage import Storage


def init_replica_dir(config: ClusterConfig, replica_id: int) -> bool:
    """Create the key and an empty database for a replica that has neither (first start of a new
    cluster). Returns True if it created them. A key without a database is left alone: that is a
    lost disk, which only ``--recover`` may repair."""
    if key_path(config, replica_id).exists():
        return False
    ensure_keypair(config, replica_id)
    for name in DATABASE_FILES:
        storage = Storage.open(config.replica_dir(replica_id) / name, chain_id=config.chain_id,
                               replica_id=replica_id, create=True)
        storage.close()
    return True


async def run_replica(config: ClusterConfig, replica_id: int, options: NodeOptions) -> None:
    key = load_keypair(key_path(config, replica_id))
    node = Node(config, replica_id, key, options)
    me = config.replica(replica_id)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
        if os.environ.get("ORDO_PARENT_PID"):
            nursery.start_soon(_stop_when_orphaned, int(os.environ["ORDO_PARENT_PID"]), nursery.cancel_scope)
        await nursery.start(node.run)
        await nursery.start(serve_api, node, me.host, me.api_port, me.admin_port)
        logging.getLogger("ordo").info(
            "replica %d up: peers %s:%d, api http://%s:%d, admin http://127.0.0.1:%d",
            replica_id, me.host, me.peer_port, me.host, me.api_port, me.admin_port,
        )


async def _stop_on_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            logging.getLogger("ordo").info("replica stopping on %s", signal.Signals(signum).name)
            scope.cancel()
            return


async def _stop_when_orphaned(parent: int, scope: trio.CancelScope) -> None:
    """Launched by `ordo up`: stop if the launcher is gone (killed without cleaning up)."""
    while os.getppid() == parent:
        await trio.sleep(0.5)
    logging.getLogger("ordo").warning("launcher %d is gone; stopping", parent)
    scope.cancel()


def crash_hook_from_env() -> Callable[[str], None] | None:
    """``ORDO_CRASH_AT=<crash point>:<n>`` (test-only): die like kill -9 (``os._exit``, nothing
    flushed or closed) the n-th time storage reaches that point, e.g. ``append:slices:3``."""
    spec = os.environ.get("ORDO_CRASH_AT")
    if not spec:
        return None
    point, _, count = spec.rpartition(":")
    remaining = [int(count)]

    def hook(name: str) -> None:
        if name == point:
            remaining[0] -= 1
            if remaining[0] <= 0:
                os.write(2, f"ORDO_CRASH_AT: dying at {name}\n".encode())
                os._exit(137)

    return hook


def main(config_path: Path, replica_id: int, *, recover: bool, log_level: str, byzantine: str | None = None) -> int:
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format=f"%(asctime)s replica-{replica_id} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    config = load_config(config_path)
    config.replica(replica_id)
    if not key_path(config, replica_id).exists():
        if recover:
            raise NodeStartError(f"{key_path(config, replica_id)}: no key to recover with")
        init_replica_dir(config, replica_id)
    options = NodeOptions(recover=recover, storage_crash_hook=crash_hook_from_env(), byzantine=byzantine)
    trio.run(run_replica, config, replica_id, options)
    return 0
