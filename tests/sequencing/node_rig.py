"""An in-process replica for node-level tests: a real :class:`sequencing.replica.node.Node` (real core,
real SQLite storage) whose transport is replaced by a recorder and whose storage calls run inline
(no worker threads), so under trio's MockClock ``settle()`` is an exact "everything has run".

Peers are played by the test with ``consensus_factories.World`` keys (the committee's keys are
written to the data directory as ``public.key`` files)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import trio
import trio.testing

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "consensus"))

from consensus_factories import World

from consensus.messages import Block, QuorumCert
from sequencing.cluster.local import write_local_config
from sequencing.config import load_config
from sequencing.keys import key_path, write_keypair
from sequencing.replica.node import Node, NodeOptions
from sequencing.rollup.batches import Batch
from sequencing.rollup.block_content import BlockPayload, assemble
from sequencing.rollup.transactions import Transaction
from sequencing.storage import open_stores

T = TypeVar("T")


class Recorder:
    """Stands in for the transport's send and broadcast: remembers what the node sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[int | None, object]] = []  # (peer or None for broadcast, message)
        self.on_send: Callable[[int | None, object], None] | None = None

    def send(self, to: int, message: object) -> bool:
        self.sent.append((to, message))
        if self.on_send is not None:
            self.on_send(to, message)
        return True

    def broadcast(self, message: object) -> int:
        self.sent.append((None, message))
        if self.on_send is not None:
            self.on_send(None, message)
        return 3

    def of_type(self, kind: type[T]) -> list[T]:
        return [m for _, m in self.sent if isinstance(m, kind)]


class NodeRig:
    def __init__(self, world: World, node: Node, net: Recorder) -> None:
        self.world = world
        self.node = node
        self.net = net

    @property
    def replica(self) -> Any:
        assert self.node.replica is not None
        return self.node.replica

    async def settle(self) -> None:
        await trio.testing.wait_all_tasks_blocked()

    async def deliver(self, sender: int, message: object) -> None:
        """A message from a peer, through the node's inbound dispatch (as the transport hands it)."""
        await self.node.transport.inbox.put(sender, message, 0)
        await self.settle()

    # -- building blocks -------------------------------------------------------------------------

    def batch(self, author: int, seq: int, rollup: int = 1) -> Batch:
        return Batch.of(author, seq, 0, (Transaction(rollup, f"tx-{author}-{seq}".encode()),))

    def block(self, round: int, parent: Block, qc: QuorumCert, batches: tuple[Batch, ...] = ()) -> Block:
        payload = BlockPayload(tuple(b.digest for b in batches), ()).encode()
        return Block(round, parent.height + 1, qc, round % self.world.n, payload,
                     assemble(list(batches)).data_root)


@asynccontextmanager
async def node_rig(tmp_path: Path, me: int, *, options: NodeOptions | None = None,
                   run_executor: bool = False, limits: dict[str, int] | None = None,
                   consensus: dict[str, str] | None = None) -> AsyncIterator[NodeRig]:
    """Replica ``me`` of a 4-replica World committee, started (core loop running) in a nursery."""
    world = World.make(4)
    config = load_config(write_local_config(tmp_path, n=4, chain_id=world.chain_id, limits=limits,
                                            consensus=consensus))
    for i, key in enumerate(world.keys):
        if not key_path(config, i).exists():  # a second rig on the same directory: a restart
            write_keypair(config.replica_dir(i), key)
    for store in open_stores(config.replica_dir(me), chain_id=config.chain_id, replica_id=me, create=True):
        store.close()
    node = Node(config, me, world.keys[me], options)
    net = Recorder()
    node.transport.send = net.send  # type: ignore[method-assign]
    node.transport.broadcast = net.broadcast  # type: ignore[method-assign]
    node.fetcher._send = net.send

    async def inline(fn: Callable[..., T], *args: Any) -> T:
        await trio.lowlevel.checkpoint()
        return fn(*args)

    await node._open_storage()
    node.stores.ledger_call = inline  # type: ignore[method-assign]
    node.stores.safety_call = inline  # type: ignore[method-assign]
    try:
        async with trio.open_nursery() as nursery:
            node._nursery = nursery
            await node._start_core()
            nursery.start_soon(node._core_loop)
            nursery.start_soon(node._dispatch_inbound)
            if run_executor:
                nursery.start_soon(node.executor.run)
            rig = NodeRig(world, node, net)
            await rig.settle()
            yield rig
            nursery.cancel_scope.cancel()
    finally:
        for store in (node.stores.ledger, node.stores.safety):
            if store is not None:
                store.close()
