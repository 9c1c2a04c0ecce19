"""``ordo replica``: one replica process — node, API and admin servers — until SIGINT/SIGTERM."""

from __future__ import annotations

import errno
import gc
import logging
import os
import signal
import socket
import sys
from functools import partial
from pathlib import Path
from typing import TypeVar

import trio

from consensus.crypto import KeyPair

from ..api.serve import serve_api
from ..config import ClusterConfig, load_config
from ..keys import KeyFileError, key_path, load_keypair, restore_public_key
from ..replica.errors import NodeStartError
from ..replica.faults import crash_hook_from_env
from ..replica.node import Node, NodeOptions
from ..replica.setup import missing_key_problem
from .heap_dump import dump_dir, serve_dumps, start_tracing

E = TypeVar("E", bound=BaseException)

# The cyclic garbage collector's young-generation threshold (allocations of container objects
# between collections; CPython's default is 700). A replica under load allocates lists and tuples
# by the hundred thousand per second (decoded requests and batches), almost all freed by reference
# counting; with the default it ran ~20 young collections a second and, every few seconds, a full
# one of 60-90 ms with the event loop stalled (measured with gc.callbacks at 45,000 tx/s: 4-6 % of
# a replica's CPU). Cycles are still collected, in larger steps; what the replica loaded at start
# is frozen out of every collection (gc.freeze) once it runs.
GC_YOUNG_THRESHOLD = 50_000


async def run_replica(config: ClusterConfig, replica_id: int, key: KeyPair, options: NodeOptions) -> None:
    node = Node(config, replica_id, key, options)
    me = config.replica(replica_id)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
        if os.environ.get("ORDO_PARENT_PID"):
            nursery.start_soon(_stop_when_orphaned, int(os.environ["ORDO_PARENT_PID"]), nursery.cancel_scope)
        heap_dumps = dump_dir()
        if heap_dumps is not None:
            nursery.start_soon(serve_dumps, heap_dumps, replica_id)
        await nursery.start(node.run)
        await nursery.start(partial(serve_api, node, node.transport.faults, me.host, me.api_port, me.admin_port))
        gc.freeze()  # the state loaded at start is long-lived: no collection needs to scan it again
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


def main(config_path: Path, replica_id: int, *, recover: bool, log_level: str, byzantine: str | None = None) -> int:
    """Run the replica; raises NodeStartError (one line for the CLI, exit 2) if it cannot start."""
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format=f"%(asctime)s replica-{replica_id} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    config = load_config(config_path)
    config.replica(replica_id)
    key = _own_key(config, replica_id)
    check_ports_free(config, replica_id)
    if dump_dir() is not None:
        start_tracing()
    options = NodeOptions(recover=recover, storage_crash_hook=crash_hook_from_env(), byzantine=byzantine)
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    try:
        trio.run(run_replica, config, replica_id, key, options)
    except BaseExceptionGroup as group:
        refusal = _first_leaf(group, NodeStartError)
        if refusal is None:
            bind = _first_leaf(group, OSError)
            if bind is None or bind.errno not in _BIND_ERRORS:
                raise
            refusal = NodeStartError(f"replica {replica_id}: cannot listen: {bind.strerror or bind}")
        raise refusal from None
    return 0


def _own_key(config: ClusterConfig, replica_id: int) -> KeyPair:
    """The replica's private key; never created here (only ``ordo keygen`` and a new cluster's
    ``ordo up`` make keys). Restores a missing ``public.key`` from it."""
    path = key_path(config, replica_id)
    if not path.exists():
        raise NodeStartError(missing_key_problem(config, replica_id))
    try:
        key = load_keypair(path)
    except KeyFileError as exc:
        raise NodeStartError(f"replica {replica_id}: {exc}") from None
    restore_public_key(config, replica_id, key)
    return key


_BIND_ERRORS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)


def check_ports_free(config: ClusterConfig, replica_id: int) -> None:
    """Bind each of the replica's three ports once, as the servers will, so that a port in use is
    one line naming it rather than a traceback from deep inside the servers."""
    me = config.replica(replica_id)
    ports = (("peer_port", me.host, me.peer_port), ("api_port", me.host, me.api_port),
             ("admin_port", "127.0.0.1", me.admin_port))
    for name, host, port in ports:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            problem = f"{name}: cannot resolve host {host!r}: {exc.strerror}"
            raise NodeStartError(f"replica {replica_id}: {problem}") from None
        for family, kind, proto, _, address in infos:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(address)
                except OSError as exc:
                    if exc.errno not in _BIND_ERRORS:
                        raise
                    raise NodeStartError(
                        f"replica {replica_id}: cannot listen on {host}:{port} ({name} in {config.path}): "
                        f"{(exc.strerror or str(exc)).lower()} (another replica or program holds it; stop "
                        f"that or change {name})"
                    ) from None


def _first_leaf(group: BaseExceptionGroup[BaseException], kind: type[E]) -> E | None:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found = _first_leaf(exc, kind)
            if found is not None:
                return found
        elif isinstance(exc, kind):
            return exc
    return None
