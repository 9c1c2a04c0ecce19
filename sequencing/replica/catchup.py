"""Catch-up: a replica that is behind (restarted, partitioned, new disk) asks peers how far they
have committed and fetches committed blocks by height, with the commit proof of the last one;
the core adopts them (``Replica.on_synced``) and the executor fetches their batches, while the
rest of the cluster keeps committing.

A peer's claimed height is unverified, so it is only a hint: a claim expires ``claim_ttl``
seconds after it was heard; peers are tried in order of claimed height, and one that fails to
deliver (no answer in time, an unusable answer, a chain shorter than it claimed, blocks the core
does not adopt) is demoted for ``demote_for`` seconds while the next candidate is tried. One
lying peer costs at most one ``timeout`` per ``demote_for``, never the whole catch-up."""

from __future__ import annotations

import logging
import math
from typing import Protocol

import trio
from prometheus_client import Counter

from consensus.commit_proof import CommitProof
from consensus.messages import Block

from ..rollup.batches import Batch
from .input_guard import InputGuard
from .wire import PeerLink, StatusRequest, StatusResponse, SyncRequest, SyncResponse

log = logging.getLogger(__name__)

LAG_THRESHOLD = 2
SYNC_BATCH = 256


class SyncTarget(Protocol):
    """The replica as catch-up sees it (``Node`` satisfies it)."""

    def core_height(self) -> int | None:
        """The consensus core's committed height; None until the core has started."""
        ...

    def adopt_synced(self, blocks: tuple[Block, ...], proof: CommitProof, batches: tuple[Batch, ...]) -> bool:
        """Hand a sync answer's blocks, the commit proof of the last one and the batch bodies sent
        with them to the core; False if its inbox is full."""
        ...


class CatchUp:
    def __init__(self, me: int, peers: PeerLink, target: SyncTarget, guard: InputGuard,
                 demotions: Counter, *, interval: float = 1.0, timeout: float = 3.0,
                 claim_ttl: float = 10.0, demote_for: float = 15.0) -> None:
        self.me = me
        self._peers = peers
        self._target = target
        self._guard = guard
        self._demotions = demotions
        self.interval = interval
        self.timeout = timeout
        self.claim_ttl = claim_ttl
        self.demote_for = demote_for
        self.statuses: dict[int, StatusResponse] = {}  # latest answer per peer (also read by recovery)
        self._heard_at: dict[int, float] = {}
        self._demoted_until: dict[int, float] = {}
        self._status_arrived = trio.Event()
        self._response: tuple[int, SyncResponse] | None = None
        self._response_arrived = trio.Event()
        self.blocks_synced = 0
        self.active = False

    def on_status(self, sender: int, status: StatusResponse) -> None:
        self.statuses[sender] = status
        self._heard_at[sender] = trio.current_time()
        self._status_arrived.set()

    def on_response(self, sender: int, response: SyncResponse) -> None:
        self._response = (sender, response)
        self._response_arrived.set()

    async def ask_statuses(self) -> None:
        self._status_arrived = trio.Event()
        self._peers.broadcast(StatusRequest())
        with trio.move_on_after(self.timeout):
            await self._status_arrived.wait()

    async def run(self) -> None:
        while True:
            await trio.sleep(self.interval)
            with self._guard.handling("sync"):
                await self.ask_statuses()
                await self._sync_if_behind()

    def candidates(self, height: int) -> list[tuple[int, int]]:
        """(peer, claimed height) worth asking, best claim first: fresh, not demoted, ahead of
        ``height`` by at least LAG_THRESHOLD."""
        now = trio.current_time()
        out = [
            (peer, status.committed_height) for peer, status in self.statuses.items()
            if now - self._heard_at.get(peer, -math.inf) <= self.claim_ttl
            and self._demoted_until.get(peer, -math.inf) <= now
            and status.committed_height >= height + LAG_THRESHOLD
        ]
        return sorted(out, key=lambda c: (-c[1], c[0]))

    def demote(self, peer: int, reason: str) -> None:
        self._demoted_until[peer] = trio.current_time() + self.demote_for
        self._demotions.labels(reason).inc()
        log.warning("replica %d catch-up: peer %d set aside for %.0fs (%s)", self.me, peer,
                    self.demote_for, reason)

    async def _sync_if_behind(self) -> None:
        height = self._target.core_height()
        if height is None:
            return
        for peer, claimed in self.candidates(height):
            if self._height() + LAG_THRESHOLD > claimed:
                return  # caught up meanwhile (from an earlier candidate, or by consensus)
            if await self._sync_from(peer, claimed):
                return

    def _height(self) -> int:
        height = self._target.core_height()
        assert height is not None, "the core does not stop once started"
        return height

    async def _sync_from(self, peer: int, claimed: int) -> bool:
        """Fetch from ``peer`` up to the height it claimed; False (and the peer demoted) if it
        failed to deliver."""
        self.active = True
        try:
            while self._height() < claimed:
                before = self._height()
                response = await self._request(peer, before + 1)
                if response is None:
                    self.demote(peer, "timeout")
                    return False
                if response.committed_height < claimed:
                    self.demote(peer, "shorter_than_claimed")
                    return False
                if not response.blocks or response.proof is None:
                    self.demote(peer, "bad_response")
                    return False
                self._target.adopt_synced(response.blocks, response.proof, response.batches)
                with trio.move_on_after(self.timeout):
                    while self._height() == before:
                        await trio.sleep(0.01)
                if self._height() == before:
                    self.demote(peer, "not_adopted")
                    return False
                self.blocks_synced += self._height() - before
            return True
        finally:
            self.active = False

    async def _request(self, peer: int, from_height: int) -> SyncResponse | None:
        self._response = None
        self._response_arrived = trio.Event()
        self._peers.send(peer, SyncRequest(from_height, SYNC_BATCH))
        with trio.move_on_after(self.timeout):
            while True:
                await self._response_arrived.wait()
                if self._response is not None and self._response[0] == peer:
                    return self._response[1]
                self._response_arrived = trio.Event()  # an unasked peer's answer: keep waiting
        return None
