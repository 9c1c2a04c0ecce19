"""Getting batch bodies a replica lacks: from its pool, from disk, else from peers.

Requests go first to the peers most likely to hold a batch (its author, the block's proposer),
then round-robin to everyone, with a per-attempt timeout, until the batches arrive or the caller
gives up (a proposal goes stale; a committed block never does, since f+1 honest replicas hold
every batch they voted for)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import trio

from ..rollup.batches import Batch, BatchPool
from .wire import BatchRequest


class BatchFetcher:
    def __init__(
        self,
        pool: BatchPool,
        load: Callable[[bytes], Awaitable[Batch | None]],
        send: Callable[[int, object], bool],
        peers: Sequence[int],
        *,
        attempt_timeout: float = 1.0,
    ) -> None:
        self.pool = pool
        self._load = load
        self._send = send
        self._peers = list(peers)
        self._arrived: dict[bytes, trio.Event] = {}
        self._waiters: dict[bytes, int] = {}  # fetches waiting per batch: the last one out drops its event
        self.attempt_timeout = attempt_timeout
        self.requests_sent = 0

    @property
    def waiting(self) -> int:
        """Batches some fetch is waiting for."""
        return len(self._arrived)

    def awaited(self, batch_digest: bytes) -> bool:
        """Whether some fetch is waiting for this batch."""
        return batch_digest in self._arrived

    def arrived(self, batch: Batch) -> None:
        """A batch body arrived (broadcast or response) and is in the pool; wake its waiters."""
        event = self._arrived.pop(batch.digest, None)
        if event is not None:
            event.set()

    async def get(self, digests: Sequence[bytes], *, prefer: Sequence[int] = (),
                  give_up: Callable[[], bool] = lambda: False) -> list[Batch] | None:
        """All batches in order, or None if ``give_up()`` turned true first (checked before each
        attempt and once more after the last wait, so a late arrival returns None too)."""
        found: dict[bytes, Batch] = {}
        for d in digests:
            batch = self.pool.get(d) or await self._load(d)
            if batch is not None:
                found[d] = batch
        attempt = 0
        waited: set[bytes] = set()
        try:
            while len(found) < len(set(digests)):
                if give_up():
                    return None
                missing = [d for d in dict.fromkeys(digests) if d not in found]
                targets = self._targets(prefer, attempt)
                for peer in targets:
                    self._send(peer, BatchRequest(tuple(missing)))
                    self.requests_sent += 1
                for d in set(missing) - waited:
                    waited.add(d)
                    self._waiters[d] = self._waiters.get(d, 0) + 1
                events = [self._arrived.setdefault(d, trio.Event()) for d in missing]
                with trio.move_on_after(self.attempt_timeout):
                    for event in events:
                        await event.wait()
                for d in missing:
                    batch = self.pool.get(d)
                    if batch is not None:
                        found[d] = batch
                attempt += 1
        finally:
            self._unwait(waited)
        if attempt and give_up():  # they came, but after the caller moved on (checked after waiting)
            return None
        return [found[d] for d in digests]

    def _unwait(self, digests: set[bytes]) -> None:
        """Batches a fetch no longer waits for (it got them or gave up): an event nobody waits
        for is dropped, so fetches that give up (batches that never come) leave nothing behind."""
        for d in digests:
            left = self._waiters[d] - 1
            if left:
                self._waiters[d] = left
            else:
                del self._waiters[d]
                self._arrived.pop(d, None)

    def _targets(self, prefer: Sequence[int], attempt: int) -> list[int]:
        ordered = list(dict.fromkeys([*prefer, *self._peers]))
        if attempt == 0:
            return ordered[:2] if prefer else ordered[:1]
        return [ordered[attempt % len(ordered)]] if attempt < len(ordered) else ordered
