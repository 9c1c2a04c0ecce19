"""Catch-up: a replica that is behind (restarted, partitioned, new disk) asks peers how far they
have committed and fetches committed blocks by height, with the commit proof of the last one;
the core adopts them (``Replica.on_synced``) and the executor fetches their batches, while the
rest of the cluster keeps committing."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from .wire import StatusRequest, StatusResponse, SyncRequest, SyncResponse

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger(__name__)

LAG_THRESHOLD = 2
SYNC_BATCH = 256


class CatchUp:
    def __init__(self, node: Node, *, interval: float = 1.0, timeout: float = 3.0) -> None:
        self.node = node
        self.interval = interval
        self.timeout = timeout
        self.statuses: dict[int, StatusResponse] = {}
        self._status_arrived = trio.Event()
        self._response: tuple[int, SyncResponse] | None = None
        self._response_arrived = trio.Event()
        self._peer_turn = 0
        self.blocks_synced = 0
        self.active = False

    def on_status(self, sender: int, status: StatusResponse) -> None:
        self.statuses[sender] = status
        self._status_arrived.set()

    def on_response(self, sender: int, response: SyncResponse) -> None:
        self._response = (sender, response)
        self._response_arrived.set()

    async def ask_statuses(self) -> None:
        self._status_arrived = trio.Event()
        self.node.transport.broadcast(StatusRequest())
        with trio.move_on_after(self.timeout):
            await self._status_arrived.wait()

    async def run(self) -> None:
        while True:
            await trio.sleep(self.interval)
            await self.ask_statuses()
            await self._sync_if_behind()

    async def _sync_if_behind(self) -> None:
        node = self.node
        replica = node.replica
        if replica is None or not self.statuses:
            return
        peer, best = max(self.statuses.items(), key=lambda kv: kv[1].committed_height)
        if best.committed_height < replica.committed.height + LAG_THRESHOLD:
            return
        self.active = True
        try:
            while replica.committed.height < best.committed_height:
                before = replica.committed.height
                response = await self._request(peer, before + 1)
                if response is None or not response.blocks or response.proof is None:
                    return
                for batch in response.batches:  # identified by digest: safe to keep from anyone
                    node.batches.stash(batch)
                node.post("synced", list(response.blocks), response.proof)
                with trio.move_on_after(self.timeout):
                    while replica.committed.height == before:
                        await trio.sleep(0.01)
                if replica.committed.height == before:
                    return
                self.blocks_synced += replica.committed.height - before
        finally:
            self.active = False

    async def _request(self, peer: int, from_height: int) -> SyncResponse | None:
        self._response = None
        self._response_arrived = trio.Event()
        self.node.transport.send(peer, SyncRequest(from_height, SYNC_BATCH))
        with trio.move_on_after(self.timeout):
            await self._response_arrived.wait()
        if self._response is None or self._response[0] != peer:
            return None
        return self._response[1]
