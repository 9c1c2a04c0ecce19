"""Transactions, bundles, mempool and batch pool: limits with clear messages, MempoolFull, dedup,
requeue, FIFO take that never splits a bundle, whole-batch selection, and an end-to-end sequence
(submit -> mempool -> batches -> blocks -> commit/expire/requeue) in which every bundle lands whole
in exactly one block and every accepted item is committed exactly once. Teeth included."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seq_helpers import item_pools

from sequencing.config import Limits
from sequencing.replica.mempool import Mempool, MempoolFull
from sequencing.rollup.batches import Batch, BatchPool
from sequencing.rollup.block_content import BlockContent, assemble
from sequencing.rollup.transactions import Bundle, InvalidTransaction, Item, Run, Transaction, item_txs

T = Transaction


# -- transaction / bundle / batch limits ---------------------------------------------------------

SMALL = Limits(max_tx_bytes=10, max_bundle_txs=3, max_rollup_id=100, batch_max_txs=4)


@pytest.mark.parametrize(("tx", "message"), [
    (T(-1, b"x"), r"rollup_id -1 outside \[0, 100\]"),
    (T(101, b"x"), r"rollup_id 101 outside \[0, 100\]"),
    (T(True, b"x"), "rollup_id must be an integer"),  # type: ignore[arg-type]
    (T(1.0, b"x"), "rollup_id must be an integer"),  # type: ignore[arg-type]
    (T(1, b""), "payload must not be empty"),
    (T(1, "text"), "payload must be bytes"),  # type: ignore[arg-type]
    (T(1, bytearray(b"x")), "payload must be bytes"),  # type: ignore[arg-type]
    (T(1, b"x" * 11), "payload of 11 bytes exceeds 10"),
])
def test_transaction_limits(tx: Transaction, message: str) -> None:
    with pytest.raises(InvalidTransaction, match=message):
        tx.validate(SMALL)


def test_transaction_limits_edges_accepted() -> None:
    for tx in (T(0, b"x"), T(100, b"x" * 10)):
        tx.validate(SMALL)
    T(2**32 - 1, b"x").validate(Limits())


@pytest.mark.parametrize(("bundle", "message"), [
    (Bundle(()), "at least two"),
    (Bundle((T(1, b"a"),)), "at least two"),
    (Bundle(tuple(T(1, bytes([65 + k])) for k in range(4))), "bundle of 4 transactions exceeds 3"),
    (Bundle((T(1, b"a"), T(1, b"a"))), "same transaction twice"),
    (Bundle((T(1, b"a"), T(1, b""))), "bundle transaction 1: payload must not be empty"),
    (Bundle((T(500, b"a"), T(1, b"b"))), r"bundle transaction 0: rollup_id 500 outside"),
    (Bundle((T(1, b"a"), T(1, b"b" * 11))), "bundle transaction 1: payload of 11 bytes exceeds 10"),
])
def test_bundle_limits(bundle: Bundle, message: str) -> None:
    with pytest.raises(InvalidTransaction, match=message):
        bundle.validate(SMALL)


def test_bundle_edges_accepted_and_ids() -> None:
    b = Bundle((T(1, b"a"), T(2, b"b"), T(1, b"c")))
    b.validate(SMALL)
    assert b.id != Bundle((T(2, b"b"), T(1, b"a"), T(1, b"c"))).id  # order is part of a bundle
    assert T(1, b"a").id == T(1, b"a").id != T(2, b"a").id
    assert b.size == sum(t.size for t in b.txs)


def test_batch_limits() -> None:
    with pytest.raises(InvalidTransaction, match="empty batch"):
        Batch.of(0, 0, 0, ()).validate(SMALL)
    with pytest.raises(InvalidTransaction, match="batch of 5 transactions exceeds 4"):
        Batch.of(0, 0, 0, (Bundle((T(1, b"a"), T(1, b"b"))), T(1, b"c"), T(1, b"d"), T(1, b"e"))).validate(SMALL)
    with pytest.raises(InvalidTransaction, match="payload must not be empty"):
        Batch.of(0, 0, 0, (T(1, b""),)).validate(SMALL)
    Batch.of(0, 0, 0, (Bundle((T(1, b"a"), T(1, b"b"))), T(1, b"c"), T(1, b"d"))).validate(SMALL)


def test_batch_wire_round_trip() -> None:
    b = Batch.of(3, 7, 11, (T(1, b"a"), Bundle((T(2, b"b"), T(0, b"c")))))
    back = Batch.decode(b.encode(), 1 << 20)
    assert back == b and back.digest == b.digest and back.tx_count == 3


# -- mempool: full, dedup, requeue ---------------------------------------------------------------


def test_mempool_full_by_count() -> None:
    m = Mempool(Limits(mempool_max_txs=3))
    assert m.add(T(1, b"a")) and m.add(T(1, b"b"))
    with pytest.raises(MempoolFull, match=r"2 transactions queued \(limit 3\); retry later"):
        m.add(Bundle((T(1, b"c"), T(1, b"d"))))  # the whole bundle must fit
    assert (len(m), m.tx_count) == (2, 2)  # nothing of the bundle was queued
    assert m.add(T(1, b"c"))
    with pytest.raises(MempoolFull, match="transactions queued"):
        m.add(T(1, b"e"))
    m.take(1, 1 << 20)
    assert m.add(T(1, b"e"))  # space freed by take


def test_mempool_full_by_bytes() -> None:
    m = Mempool(Limits(mempool_max_bytes=30))
    assert m.add(T(1, b"x" * 10))  # 18 bytes
    with pytest.raises(MempoolFull, match=r"18 bytes queued \(limit 30\); retry later"):
        m.add(T(1, b"y" * 5))  # 13 more: 31
    assert m.byte_size == 18
    assert m.add(T(1, b"y" * 4))  # exactly 30
    assert m.byte_size == 30


def test_mempool_dedup_recent() -> None:
    m = Mempool(Limits(), remember=2)
    a, b, c = T(1, b"a"), T(1, b"b"), T(1, b"c")
    assert m.add(a) and not m.add(a) and not m.add(T(1, b"a"))
    assert m.seen(a.id)
    m.take(10, 1 << 20)
    assert not m.add(a), "recently batched items are still duplicates"
    for x in (b, c):
        m.add(x)
        m.take(10, 1 << 20)
    assert not m.seen(a.id) and m.add(a), "only the last `remember` ids are kept"
    with pytest.raises(InvalidTransaction, match="already submitted"):
        m.add(Bundle((b, c)))  # b and c went out alone: bundling them again could commit them twice
    d, e = T(1, b"d"), T(1, b"e")
    assert m.add(Bundle((d, e))) and not m.add(Bundle((d, e)))
    assert not m.add(d), "a transaction queued inside a bundle is a duplicate on its own"


def test_requeue_puts_items_back_in_front() -> None:
    m = Mempool(Limits())
    items: list[Item] = [T(1, b"a"), Bundle((T(1, b"b"), T(2, b"c"))), T(1, b"d")]
    for i in items:
        m.add(i)
    taken = m.take(3, 1 << 20)
    assert units(taken) == units(items[:2])
    m.add(T(1, b"e"))
    m.requeue(taken)  # the batch expired uncommitted
    assert (len(m), m.tx_count) == (4, 5)
    assert m.byte_size == sum(i.size for i in [*items, T(1, b"e")])
    assert all(m.seen(i.id) for i in items)
    assert not m.add(items[0])  # still a duplicate while queued
    assert units(m.take(100, 1 << 20)) == units([*items, T(1, b"e")])
    m.requeue(as_entries([items[2]]))
    m.requeue(as_entries([items[2]]))  # requeueing twice queues once
    assert len(m) == 1 and m.tx_count == 1


def test_requeue_of_a_run_skips_what_is_queued_again() -> None:
    m = Mempool(Limits(), remember=2)
    run = Run.of(3, [b"a", b"b", b"c"])
    assert m.add_run(run).outcomes == [True, True, True]
    taken = m.take(10, 1 << 20)
    for other in (b"x", b"y"):  # two more takes: the recent ids forget a, b, c
        m.add(T(3, other))
        m.take(10, 1 << 20)
    assert m.add(T(3, b"b"))  # the client resubmits b before the batch expires
    m.requeue(taken)
    assert units(m.take(10, 1 << 20)) == units([T(3, b"a"), T(3, b"c"), T(3, b"b")]), "b once"


def test_add_run_queues_new_transactions_and_stops_when_full() -> None:
    m = Mempool(Limits(mempool_max_txs=4))
    assert m.add(T(5, b"b"))
    added = m.add_run(Run.of(5, [b"a", b"b", b"c", b"a", b"d", b"e"]))
    assert added.outcomes == [True, False, True, False, True]  # b queued before; a twice in the call
    assert added.full is not None and "4 transactions queued (limit 4)" in str(added.full)
    assert m.tx_count == 4 and units(m.take(10, 1 << 20)) == units(
        [T(5, b"b"), T(5, b"a"), T(5, b"c"), T(5, b"d")])
    fresh = Mempool(Limits())
    assert fresh.add_run(Run.of(5, [b"a", b"b", b"a"])).outcomes == [True, True, False], "twice in one call"
    assert fresh.tx_count == 2 and units(fresh.take(10, 1 << 20)) == units([T(5, b"a"), T(5, b"b")])
    big = Mempool(Limits(mempool_max_txs=100, mempool_max_bytes=3 * 9 + 5))
    added = big.add_run(Run.of(1, [b"x", b"y", b"z", b"w"]))  # 9 bytes each: three fit
    assert added.outcomes == [True, True, True] and "27 bytes queued" in str(added.full)


# -- mempool.take: FIFO, limits, bundles whole ---------------------------------------------------


Unit = tuple[bytes, int, int]  # (id, transactions, size): a plain transaction or a whole bundle


def units(entries: Sequence[Item | Run]) -> list[Unit]:
    """What a sequence of items or mempool entries hands out, at the grain the mempool must keep
    whole: each plain transaction, each bundle."""
    out: list[Unit] = []
    for e in entries:
        if isinstance(e, Run):
            out.extend((tx.id, 1, tx.size) for tx in e.transactions())
        else:
            out.append((e.id, len(item_txs(e)), e.size))
    return out


def as_entries(items: Sequence[Item]) -> list[Run | Bundle]:
    return [Run.single(i) if isinstance(i, Transaction) else i for i in items]


def check_takes(arrivals: Sequence[Item | Run], takes: list[tuple[int, int, list[Item | Run]]]) -> None:
    """AssertionError unless the takes hand out plain transactions and whole bundles in arrival
    order, within limits (a single oversize one alone), each take stopping only at the first
    transaction or bundle that does not fit."""
    expected = units(arrivals)
    handed = [u for _, _, got in takes for u in units(got)]
    assert [u[0] for u in handed] == [u[0] for u in expected[:len(handed)]], "FIFO, bundles whole"
    for _, _, got in takes:
        for e in got:
            if isinstance(e, Bundle):
                assert e in arrivals, "a bundle the client did not submit (a split bundle?)"
    pos = 0
    for max_txs, max_bytes, got in takes:
        mine = units(got)
        n, size = sum(u[1] for u in mine), sum(u[2] for u in mine)
        if len(mine) > 1:
            assert n <= max_txs and size <= max_bytes, "limits"
        pos += len(mine)
        if pos < len(expected):
            nxt = expected[pos]
            assert got, "a take returned nothing from a non-empty pool"
            assert n + nxt[1] > max_txs or size + nxt[2] > max_bytes, "stopped early"


def runs_of(items: list[Item]) -> list[Run | Bundle]:
    """Consecutive plain transactions of one rollup as one run (what a client call makes)."""
    out: list[Run | Bundle] = []
    for item in items:
        last = out[-1] if out else None
        if isinstance(item, Transaction) and isinstance(last, Run) and last.rollup_id == item.rollup_id:
            out[-1] = Run.of(item.rollup_id, [*last.payloads, item.payload])
        else:
            out.append(Run.single(item) if isinstance(item, Transaction) else item)
    return out


@given(item_pools(max_size=14), st.booleans(),
       st.lists(st.tuples(st.integers(1, 8), st.integers(8, 60)), max_size=10))
def test_take_is_fifo_within_limits_and_never_splits(items: list[Item], as_runs: bool,
                                                     limits: list[tuple[int, int]]) -> None:
    m = Mempool(Limits())
    arrivals: list[Item | Run] = list(runs_of(items)) if as_runs else list(items)
    for e in arrivals:
        if isinstance(e, Run):
            assert m.add_run(e).outcomes == [True] * len(e)
        else:
            assert m.add(e)
    takes = [(a, b, list[Item | Run](m.take(a, b))) for a, b in limits]
    check_takes(arrivals, takes)
    rest = m.take(10**6, 10**9)
    assert [u[0] for _, _, got in takes for u in units(got)] + [u[0] for u in units(rest)] == [
        u[0] for u in units(arrivals)]
    assert (len(m), m.tx_count, m.byte_size) == (0, 0, 0)


def _take_wrong(kind: str) -> Callable[[list[Item], int, int], list[Item]]:
    def take(queue: list[Item], max_txs: int, max_bytes: int) -> list[Item]:
        out: list[Item] = []
        n = size = 0
        while queue:
            item = queue[-1] if kind == "lifo" else queue[0]
            k = len(item_txs(item))
            if kind == "split_bundles" and isinstance(item, Bundle) and n + k > max_txs and out and n < max_txs:
                part = item.txs[: max_txs - n]
                queue[0] = Bundle(item.txs[len(part):]) if len(item.txs) - len(part) > 1 else item.txs[-1]
                out.extend(part)
                break
            over = n + k > max_txs or (kind != "ignores_bytes" and size + item.size > max_bytes)
            if out and over:
                if kind == "skips_ahead":
                    for j, other in enumerate(queue[1:], 1):
                        if n + len(item_txs(other)) <= max_txs and size + other.size <= max_bytes:
                            out.append(queue.pop(j))
                            break
                break
            queue.remove(item)
            out.append(item)
            n, size = n + k, size + item.size
        return out
    return take


def test_a_lone_transaction_over_the_byte_budget_is_taken_whole_leaving_nothing_behind() -> None:
    """Catches (hypothesis found it): the oversize single transaction of a run was taken and an
    empty run left at the head of the queue, which the next batch carried as an empty group: an
    empty slice, and a block the split cannot build."""
    pool = Mempool(Limits())
    assert pool.add(Transaction(0, b"x" * 100))
    [taken] = pool.take(1, 10)
    assert isinstance(taken, Run) and len(taken.ids) == 1
    assert len(pool) == 0 and pool.tx_count == 0 and pool.take(10, 10**6) == []


@pytest.mark.parametrize("kind", ["lifo", "split_bundles", "ignores_bytes", "skips_ahead"])
def test_teeth_wrong_takes_are_caught(kind: str) -> None:
    rnd = random.Random(3)
    caught = 0
    for _ in range(200):
        items: list[Item] = []
        for k in range(rnd.randint(2, 10)):
            if rnd.random() < 0.4:
                items.append(Bundle(tuple(T(rnd.randint(0, 3), f"{k}/{j}".encode() * rnd.randint(1, 4))
                                          for j in range(rnd.randint(2, 4)))))
            else:
                items.append(T(rnd.randint(0, 3), f"{k}".encode() * rnd.randint(1, 8)))
        queue = list(items)
        wrong = _take_wrong(kind)
        takes: list[tuple[int, int, list[Item | Run]]] = []
        for _ in range(4):
            a, b = rnd.randint(1, 6), rnd.randint(10, 50)
            takes.append((a, b, list[Item | Run](wrong(queue, a, b))))
        try:
            check_takes(items, takes)
        except AssertionError:
            caught += 1
    assert caught > 0


# -- BatchPool.select: whole batches, rules, oldest first ----------------------------------------


@st.composite
def pools(draw: st.DrawFn) -> tuple[BatchPool, list[Batch], int, set[bytes]]:
    ttl = draw(st.integers(1, 6))
    height = draw(st.integers(1, 20))
    pool = BatchPool(ttl)
    batches = []
    items = draw(item_pools(max_size=24))  # tx-disjoint across all batches
    seq = 0
    while items:
        k = draw(st.integers(1, 4))
        chunk, items = items[:k], items[k:]
        seq += 1
        created = draw(st.integers(max(0, height - ttl - 2), height + 1))
        b = Batch.of(draw(st.integers(0, 3)), seq, created, tuple(chunk))
        assert pool.add(b)
        batches.append(b)
    exclude = set(draw(st.lists(st.sampled_from([b.digest for b in batches]), max_size=3))) if batches else set()
    return pool, batches, height, exclude


@given(pools(), st.integers(1, 5), st.integers(1, 15))
def test_select_takes_whole_live_batches_oldest_first(
    arg: tuple[BatchPool, list[Batch], int, set[bytes]], max_batches: int, max_txs: int,
) -> None:
    pool, batches, height, exclude = arg
    chosen = pool.select(exclude=exclude, height=height, max_batches=max_batches, max_txs=max_txs)
    digests = [b.digest for b in chosen]
    assert len(set(digests)) == len(digests)
    assert all(pool.get(b.digest) is b for b in chosen), "whole batches of the pool"
    assert not set(digests) & exclude
    assert all(b.live_at(height, pool.ttl) for b in chosen)
    assert len(chosen) <= max_batches
    if len(chosen) > 1:
        assert sum(b.tx_count for b in chosen) <= max_txs
    order = [b.digest for b in batches]
    assert [order.index(d) for d in digests] == sorted(order.index(d) for d in digests)
    # the block takes every item of every chosen batch, every bundle whole
    content = assemble(chosen)
    block_ids = set(content.ids())
    for b in chosen:
        for item in b.items():
            assert {t.id for t in item_txs(item)} <= block_ids
    for b in batches:
        if b not in chosen:
            for item in b.items():
                present = {t.id for t in item_txs(item)} & block_ids
                assert not present or any(item in c.items() for c in chosen)
    assert {bid for bid, _ in content.bundles} == {i.id for b in chosen for i in b.items() if isinstance(i, Bundle)}


def test_batch_pool_add_commit_expire() -> None:
    pool = BatchPool(ttl=3)
    b = [Batch.of(0, k, k, (T(1, bytes([65 + k])),)) for k in range(5)]
    assert all(pool.add(x) for x in b) and not pool.add(b[0])
    pool.mark_committed([b[1].digest], 2)
    assert b[1].digest not in pool and pool.committed_at(b[1].digest) == 2
    assert not pool.add(b[1]), "a committed batch is never pending again"
    expired = pool.expire(4)  # created + 3 < 4: b0
    assert expired == [b[0]] and len(pool) == 3
    assert pool.select(exclude=set(), height=3, max_batches=10, max_txs=100) == [b[2], b[3]]  # b4: future
    assert not pool.add(b[1])


def test_committed_bodies_kept_within_a_byte_budget() -> None:
    """Committed bodies are kept for fetches, but within ``keep_bytes`` however many blocks commit
    (a count alone let 4,096 batches of up to 1 MiB each pile up: the RSS growth of issue 10)."""
    pool = BatchPool(ttl=3, keep_bytes=10_000)
    batches = [Batch.of(0, k, k, tuple(T(1, bytes([k % 256, j]) * 500) for j in range(3))) for k in range(40)]
    for height, batch in enumerate(batches):
        pool.add(batch)
        pool.mark_committed([batch.digest], height)
        assert pool.kept_body_bytes <= 10_000
    assert pool.kept_body_bytes > 5_000, "the budget is used, not just respected"
    kept = pool.get(batches[-1].digest)
    assert kept == batches[-1], "the newest bodies are kept"
    assert kept is not batches[-1] and kept is not None and kept.items() == batches[-1].items(), (
        "kept as the body alone (its payloads as objects would double the memory) and decoded again")
    assert pool.get(batches[0].digest) is None, "the oldest bodies went first"
    huge = Batch.of(1, 1, 40, tuple(T(2, bytes([j]) * 3000) for j in range(5)))
    pool.stash(huge)
    assert pool.get(huge.digest) == huge, "one body over the budget is still kept (the executor needs it)"
    assert pool.kept_body_bytes == BatchPool.body_bytes(huge)


@given(st.integers(0, 20), st.integers(1, 6), st.data())
def test_committed_batch_rejected_while_it_could_be_live(created: int, ttl: int, data: st.DataObject) -> None:
    pool = BatchPool(ttl)
    batch = Batch.of(0, 0, created, (T(1, b"x"),))
    pool.add(batch)
    h = data.draw(st.integers(created, created + ttl))
    pool.mark_committed([batch.digest], h)
    for later in range(h, created + ttl + 1):
        pool.expire(later)
        if batch.live_at(later + 1, ttl):
            assert not pool.add(batch), f"re-added at committed height {later}"


# -- end to end: submit -> mempool -> batches -> blocks ------------------------------------------

PIPE_LIMITS = Limits(mempool_max_txs=30, mempool_max_bytes=600, batch_ttl_blocks=2, block_max_batches=2,
                     block_max_txs=8)


@dataclass
class Pipeline:
    limits: Limits = PIPE_LIMITS
    replicas: int = 3
    requeue: bool = True
    mark_committed: bool = True
    split_bundles: bool = False
    mempools: list[Mempool] = field(init=False)
    pool: BatchPool = field(init=False)
    height: int = 0
    seq: int = 0
    accepted: dict[bytes, Item] = field(default_factory=dict)
    blocks: list[tuple[list[Batch], BlockContent]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.mempools = [Mempool(self.limits) for _ in range(self.replicas)]
        self.pool = BatchPool(self.limits.batch_ttl_blocks)

    def submit(self, item: Item, replica: int) -> None:
        item.validate(self.limits)
        try:
            added = self.mempools[replica].add(item)
        except (MempoolFull, InvalidTransaction):
            return
        if added:
            assert item.id not in self.accepted
            self.accepted[item.id] = item

    def batch(self, replica: int, max_txs: int, max_bytes: int) -> None:
        items = self.mempools[replica].take(max_txs, max_bytes)
        if not items:
            return
        groups: list[list[Item | Run]] = [list(items)]
        if self.split_bundles and any(isinstance(i, Bundle) for i in items):
            k = next(n for n, i in enumerate(items) if isinstance(i, Bundle))
            bundle = items[k]
            assert isinstance(bundle, Bundle)
            groups = [[*items[:k], bundle.txs[0]], [*bundle.txs[1:], *items[k + 1:]]]
        for g in groups:
            self.seq += 1
            self.pool.add(Batch.of(replica, self.seq, self.height, g))

    def block(self, max_batches: int, max_txs: int, *, empty: bool = False) -> None:
        h = self.height + 1
        chosen = [] if empty else self.pool.select(exclude=set(), height=h, max_batches=max_batches,
                                                   max_txs=max_txs)
        self.blocks.append((chosen, assemble(chosen)))
        if self.mark_committed:
            self.pool.mark_committed([b.digest for b in chosen], h)
        for b in self.pool.expire(h):
            if self.requeue:
                self.mempools[b.author].requeue(b.runs())
        self.height = h

    def drain(self) -> None:
        for _ in range(200):
            if not len(self.pool) and not any(len(m) for m in self.mempools):
                return
            for r in range(self.replicas):
                while len(self.mempools[r]):
                    self.batch(r, 6, 10**6)
            self.block(self.limits.block_max_batches, self.limits.block_max_txs)


def check_pipeline(p: Pipeline) -> None:
    """Every accepted item committed exactly once; bundles whole, in one block, at their indices;
    nothing lost, nothing invented, no tx twice; block limits respected."""
    where: dict[bytes, list[int]] = {}
    for n, (chosen, content) in enumerate(p.blocks):
        assert len(chosen) <= p.limits.block_max_batches
        assert sum(b.tx_count for b in chosen) <= p.limits.block_max_txs
        for tx_id in content.ids():
            where.setdefault(tx_id, []).append(n)
    twice = [t for t, blocks in where.items() if len(blocks) > 1]
    assert not twice, f"{len(twice)} transactions committed twice"
    expected = {t.id for i in p.accepted.values() for t in item_txs(i)}
    assert set(where) <= expected, "a committed transaction nobody submitted"
    assert set(where) == expected, f"{len(expected - set(where))} accepted transactions lost"
    bundle_blocks = Counter(bid for _, c in p.blocks for bid, _ in c.bundles)
    for item in p.accepted.values():
        if isinstance(item, Bundle):
            assert bundle_blocks[item.id] == 1, "a bundle not committed exactly once as a bundle"
            homes = {where[t.id][0] for t in item.txs}
            assert len(homes) == 1, "a bundle split across blocks"
            content = p.blocks[homes.pop()][1]
            indices = dict(content.bundles)[item.id]
            assert [content.ids()[i] for i in indices] == [t.id for t in item.txs]


Action = tuple


def actions(n_items: int) -> st.SearchStrategy[list[Action]]:
    return st.lists(st.one_of(
        st.tuples(st.just("submit"), st.integers(0, max(0, n_items - 1))),
        st.tuples(st.just("batch"), st.integers(0, 2), st.integers(1, 7), st.integers(10, 200)),
        st.tuples(st.just("block"), st.integers(1, 3), st.integers(5, 10)),
        st.tuples(st.just("empty")),
    ), max_size=50)


def run(p: Pipeline, items: list[Item], steps: list[Action]) -> Pipeline:
    for step in steps:
        if step[0] == "submit" and items:
            k = step[1] % len(items)
            p.submit(items[k], k % p.replicas)  # an item's resubmissions go to the same replica
        elif step[0] == "batch":
            p.batch(step[1], step[2], step[3])
        elif step[0] == "block":
            p.block(min(step[1], p.limits.block_max_batches), min(step[2], p.limits.block_max_txs))
        elif step[0] == "empty":
            p.block(0, 0, empty=True)
    p.drain()
    return p


@st.composite
def scripts(draw: st.DrawFn) -> tuple[list[Item], list[Action]]:
    items = draw(item_pools(max_size=16))
    return items, draw(actions(len(items)))


@given(scripts())
def test_pipeline_every_item_committed_once_bundles_whole(script: tuple[list[Item], list[Action]]) -> None:
    items, steps = script
    check_pipeline(run(Pipeline(), items, steps))


@pytest.mark.slow
@settings(max_examples=1500)
@given(scripts())
def test_pipeline_large(script: tuple[list[Item], list[Action]]) -> None:
    items, steps = script
    check_pipeline(run(Pipeline(), items, steps))


def _random_script(rnd: random.Random) -> tuple[list[Item], list[Action]]:
    items: list[Item] = []
    for k in range(rnd.randint(4, 14)):
        if rnd.random() < 0.4:
            items.append(Bundle(tuple(T(rnd.randint(0, 4), f"{k}/{j}".encode()) for j in range(rnd.randint(2, 4)))))
        else:
            items.append(T(rnd.randint(0, 4), f"{k}".encode()))
    steps: list[Action] = []
    for _ in range(rnd.randint(5, 40)):
        kind = rnd.choice(["submit", "submit", "batch", "block", "empty"])
        if kind == "submit":
            steps.append(("submit", rnd.randrange(len(items))))
        elif kind == "batch":
            steps.append(("batch", rnd.randrange(3), rnd.randint(1, 7), rnd.randint(10, 200)))
        elif kind == "block":
            steps.append(("block", rnd.randint(1, 3), rnd.randint(5, 10)))
        else:
            steps.append(("empty",))
    return items, steps


@pytest.mark.parametrize("mutant", [{"requeue": False}, {"mark_committed": False}, {"split_bundles": True}])
def test_teeth_wrong_pipelines_are_caught(mutant: dict[str, bool]) -> None:
    rnd = random.Random(11)
    caught = 0
    for _ in range(150):
        items, steps = _random_script(rnd)
        check_pipeline(run(Pipeline(), items, steps))  # the real pipeline passes these scripts
        try:
            check_pipeline(run(Pipeline(**mutant), items, steps))
        except AssertionError:
            caught += 1
    assert caught > 0


# -- a transaction inside a bundle is deduplicated against the same transaction alone ------------


@pytest.mark.parametrize("same_batch", [True, False])
def test_tx_alone_and_in_a_bundle_committed_once(same_batch: bool) -> None:
    p = Pipeline()
    t, u = T(1, b"t"), T(2, b"u")
    p.submit(t, 0)
    if not same_batch:
        p.batch(0, 10, 10**6)
    p.submit(Bundle((t, u)), 0)
    p.drain()
    check_pipeline(p)


def test_the_window_refuses_committed_copies_and_a_batch_leaves_out_those_committed_meanwhile() -> None:
    """Exactly once across replicas, the mempool's part (docs/PROTOCOL.md section 12): a copy of a
    transaction committed in the window is a duplicate at submission; one committed after it was
    queued (its copy at another replica committed first) is left out when the batch is cut, and a
    bundle holding one is left out whole."""
    committed: set[bytes] = set()
    pool = Mempool(Limits(), committed=committed)
    early, late, other = Transaction(1, b"early"), Transaction(1, b"late"), Transaction(2, b"other")
    bundle = Bundle((Transaction(3, b"b1"), late))
    committed.add(early.id)
    assert not pool.add(early), "committed in the window: a duplicate"
    run = Run.of(1, [late.payload, b"fresh"], [late.id, Transaction(1, b"fresh").id])
    assert pool.add_run(run).outcomes == [True, True] and pool.add(other)
    with pytest.raises(InvalidTransaction):
        pool.add(bundle)  # repeats a queued transaction
    committed.add(late.id)  # its copy elsewhere commits while it waits here
    kept = pool.without_committed(pool.take(100, 10**6))
    assert [(type(e).__name__, e.ids) for e in kept] == [("Run", (Transaction(1, b"fresh").id,)),
                                                          ("Run", (other.id,))]
    lone = Bundle((Transaction(3, b"b2"), Transaction(4, b"b3")))
    assert pool.add(lone)
    committed.add(lone.txs[1].id)
    assert pool.without_committed(pool.take(100, 10**6)) == []
