"""The mempool: client transactions waiting to be batched. Bounded in transactions and bytes; a full
pool answers with :class:`MempoolFull` (the API turns it into 503 + Retry-After), never silence.

It holds *entries*: a :class:`Run` (plain transactions of one rollup from one client call, kept as
one object with their ids) or a :class:`Bundle`. A call's new transactions are found with set
operations over the run's ids, not one lookup per transaction, and a batch takes whole runs (or
the head of one: plain transactions may be split between batches; a bundle never is).

Every accepted entry gets an arrival number (``arrivals`` after an add); ``take`` hands entries
out in arrival order and records ``taken_through``, the newest arrival taken whole, so the node
knows when a client's transactions are in a batch."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from ..config import Limits
from ..rollup.transactions import TX_OVERHEAD, Bundle, InvalidTransaction, Item, Run
from .recent_ids import RecentIds

Entry = Run | Bundle


class MempoolFull(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(f"mempool full: {reason}; retry later")


class AlreadySubmitted(InvalidTransaction):
    """A bundle carries a transaction that was already submitted (the API answers 409)."""


@dataclass(frozen=True, slots=True)
class RunAdded:
    """What :meth:`Mempool.add_run` did: per transaction of the run, in order, True (queued) or
    False (a duplicate), for the first ``len(outcomes)`` of them; ``full`` if the pool filled
    there (the rest were refused)."""

    outcomes: list[bool]
    full: MempoolFull | None


def entry_ids(entry: Entry) -> tuple[bytes, ...]:
    """Every id an entry occupies: a run's transaction ids; a bundle's id and its transactions' ids."""
    if isinstance(entry, Run):
        return entry.ids
    return (entry.id, *(tx.id for tx in entry.txs))


def entry_txs(entry: Entry) -> int:
    return len(entry.ids) if isinstance(entry, Run) else len(entry.txs)


class CommittedIds(Protocol):
    """The ids of recently committed transactions as the mempool tests them (the split's window,
    ``RecentTxWindow.recent``; a set in tests too)."""

    def __contains__(self, tx_id: object, /) -> bool: ...
    def isdisjoint(self, ids: Iterable[bytes], /) -> bool: ...
    def __len__(self) -> int: ...


class Mempool:
    def __init__(self, limits: Limits, *, remember: int = 500_000,
                 committed: CommittedIds | None = None) -> None:
        self.limits = limits
        self._committed: CommittedIds = committed if committed is not None else set()  # recently committed ids
        self._queue: deque[tuple[int, Entry]] = deque()  # (arrival number, 0 if requeued; entry)
        self._queued: set[bytes] = set()  # every id of every queued entry (entry_ids)
        self._bytes = 0
        self._txs = 0
        self._recent = RecentIds(remember)  # ids taken recently: the newest remember/2 .. remember
        self.arrivals = 0
        self.taken_through = 0

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def tx_count(self) -> int:
        return self._txs

    @property
    def byte_size(self) -> int:
        return self._bytes

    def seen(self, item_id: bytes) -> bool:
        """Whether a transaction or bundle id is queued or was queued recently (a transaction that
        went out inside a bundle counts too), or a transaction id was committed recently (the
        window of the split: submitted to another replica too)."""
        return item_id in self._queued or item_id in self._recent or item_id in self._committed

    def _full(self, txs: int, size: int) -> MempoolFull | None:
        if self._txs + txs > self.limits.mempool_max_txs:
            return MempoolFull(f"{self._txs} transactions queued (limit {self.limits.mempool_max_txs})")
        if self._bytes + size > self.limits.mempool_max_bytes:
            return MempoolFull(f"{self._bytes} bytes queued (limit {self.limits.mempool_max_bytes})")
        return None

    def _queue_entry(self, entry: Entry, ids: tuple[bytes, ...] | list[bytes]) -> None:
        self.arrivals += 1
        self._queue.append((self.arrivals, entry))
        self._queued.update(ids)
        self._bytes += entry.size
        self._txs += entry_txs(entry)

    def add(self, item: Item) -> bool:
        """Queue one validated item; False if it is a duplicate of one seen recently. Raises
        MempoolFull, or AlreadySubmitted for a bundle that repeats a transaction (see add_bundle)."""
        if isinstance(item, Bundle):
            return self.add_bundle(item)
        added = self.add_run(Run.single(item))
        if added.full is not None:
            raise added.full
        return added.outcomes[0]

    def add_bundle(self, bundle: Bundle) -> bool:
        """Queue a validated bundle; False if it is a duplicate. A bundle that repeats a transaction
        already submitted is refused (AlreadySubmitted): the block split would have to drop the
        whole bundle to keep that transaction from committing twice."""
        if self.seen(bundle.id):
            return False
        for tx in bundle.txs:
            if self.seen(tx.id):
                raise AlreadySubmitted(
                    f"transaction {tx.id.hex()[:16]} of this bundle was already submitted; "
                    "a bundle must carry new transactions"
                )
        full = self._full(len(bundle.txs), bundle.size)
        if full is not None:
            raise full
        self._queue_entry(bundle, entry_ids(bundle))
        return True

    def add_run(self, run: Run) -> RunAdded:
        """Queue a run's transactions that are new (not queued or seen recently, nor earlier in the
        run), in order, until the pool is full. Their payloads were validated by the caller."""
        ids = run.ids
        if not ids:
            return RunAdded([], None)
        if (len(set(ids)) == len(ids) and self._queued.isdisjoint(ids) and self._recent.isdisjoint(ids)
                and self._committed.isdisjoint(ids)):
            fits = run.fitting(self.limits.mempool_max_txs - self._txs, self.limits.mempool_max_bytes - self._bytes)
            if fits:
                taken = run if fits == len(ids) else run.head(fits)
                self._queue_entry(taken, taken.ids)
            if fits == len(ids):
                return RunAdded([True] * fits, None)
            full = self._full(1, len(run.payloads[fits]) + TX_OVERHEAD) or MempoolFull("no room")
            return RunAdded([True] * fits, full)
        return self._add_run_slowly(run)

    def _add_run_slowly(self, run: Run) -> RunAdded:
        """add_run for a run with duplicates: one transaction at a time."""
        outcomes: list[bool] = []
        fresh: list[int] = []
        chosen: set[bytes] = set()
        room_txs = self.limits.mempool_max_txs - self._txs
        room_bytes = self.limits.mempool_max_bytes - self._bytes
        refused: int | None = None  # the size of the transaction that found the pool full
        for index, (tx_id, payload) in enumerate(zip(run.ids, run.payloads, strict=True)):
            if tx_id in chosen or self.seen(tx_id):
                outcomes.append(False)
                continue
            tx_size = len(payload) + TX_OVERHEAD
            if room_txs < 1 or room_bytes < tx_size:
                refused = tx_size
                break
            chosen.add(tx_id)
            fresh.append(index)
            outcomes.append(True)
            room_txs -= 1
            room_bytes -= tx_size
        if fresh:
            new = run.pick(fresh)
            self._queue_entry(new, new.ids)
        full = None if refused is None else self._full(1, refused) or MempoolFull("no room")
        return RunAdded(outcomes, full)

    def take(self, max_txs: int, max_bytes: int) -> list[Entry]:
        """Remove and return entries in arrival order, up to the limits. A run that does not fit
        whole gives its head and stays first; a bundle is never split; one oversize entry is
        still returned alone so nothing gets stuck."""
        out: list[Entry] = []
        txs = size = 0
        queue = self._queue
        taken_through = self.taken_through
        while queue:
            arrival, entry = queue[0]
            n = entry_txs(entry)
            whole = txs + n <= max_txs and size + entry.size <= max_bytes
            if whole or (not out and isinstance(entry, Bundle)):
                queue.popleft()
                taken_through = max(taken_through, arrival)
            elif isinstance(entry, Run):
                fits = entry.fitting(max_txs - txs, max_bytes - size) or (0 if out else 1)
                if not fits:
                    break
                if fits < n:
                    queue[0] = (arrival, entry.tail(fits))
                    entry = entry.head(fits)
                    n = fits
                else:  # one transaction larger than max_bytes, alone: taken whole, nothing left behind
                    queue.popleft()
                    taken_through = max(taken_through, arrival)
            else:
                break
            out.append(entry)
            txs += n
            size += entry.size
            ids = entry_ids(entry)
            self._queued.difference_update(ids)
            self._recent.add_many(ids)
            if txs >= max_txs or size >= max_bytes:
                break
        self.taken_through = taken_through
        self._bytes -= size
        self._txs -= txs
        return out

    def without_committed(self, entries: list[Entry]) -> list[Entry]:
        """The entries minus transactions committed meanwhile (a copy sent to another replica
        committed first, docs/PROTOCOL.md section 12): a run loses them, a bundle holding one is
        dropped whole (its transactions commit together or not at all)."""
        if not self._committed:
            return entries
        committed = self._committed
        out: list[Entry] = []
        for entry in entries:
            if committed.isdisjoint(entry_ids(entry)):
                out.append(entry)
            elif isinstance(entry, Run):
                keep = [i for i, tx_id in enumerate(entry.ids) if tx_id not in committed]
                if keep:
                    out.append(entry.pick(keep))
        return out

    def requeue(self, entries: list[Entry]) -> None:
        """Put back the entries of a batch that expired uncommitted (front of the queue); what is
        queued again already is skipped."""
        for original in reversed(entries):
            entry, ids = original, entry_ids(original)
            if isinstance(entry, Run) and not self._queued.isdisjoint(ids):
                keep = [i for i, tx_id in enumerate(ids) if tx_id not in self._queued]
                if not keep:
                    continue
                entry = entry.pick(keep)
                ids = entry.ids
            elif isinstance(entry, Bundle) and entry.id in self._queued:
                continue
            self._recent.discard_many(ids)
            self._queue.appendleft((0, entry))
            self._queued.update(ids)
            self._bytes += entry.size
            self._txs += entry_txs(entry)

