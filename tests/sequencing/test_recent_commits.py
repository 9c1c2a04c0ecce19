"""A committed block's content is split and hashed once per replica, and the API serves it from
memory: the executor keeps the newest durable commits with the tree their content was assembled
with (sequencing/replica/executor.py ``RecentCommits``), ``LedgerReads`` (sequencing/api/reads.py)
serves those heights without a ledger read or a tree rebuilt, and one subscription event per
(rollup, height) is shared by every subscriber. What it serves must be byte for byte what the
ledger path serves, and never a height that is not durable yet."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio
import trio.testing
from seq_helpers import SignedChain, World

from consensus.commit_proof import CommitProof
from consensus.messages import Block
from sequencing.api.port import LedgerView
from sequencing.api.reads import EVENT_CACHE, LedgerReads
from sequencing.replica.executor import Committed, Executor, RecentCommits
from sequencing.rollup.batches import Batch
from sequencing.rollup.block_content import BlockContent, BlockPayload, assemble
from sequencing.rollup.block_tree import BlockTree
from sequencing.rollup.bounded_cache import BoundedCache
from sequencing.rollup.transactions import Bundle, Transaction
from sequencing.storage import CommitRecord, LedgerStore

T = TypeVar("T")
WORLD = World.make(4)


def batches_at(height: int) -> list[Batch]:
    """Two batches: plain transactions in three rollups (one chunk boundary crossed) and a bundle."""
    plain = [Transaction(r, f"h{height}-r{r}-{i}".encode()) for r in (1, 4, 9) for i in range(70 if r == 4 else 3)]
    bundle = Bundle((Transaction(4, f"h{height}-b0".encode()), Transaction(9, f"h{height}-b1".encode())))
    return [Batch.of(0, height, 0, plain[:40]), Batch.of(1, height, 0, [*plain[40:], bundle])]


class Chain:
    """Blocks 1..n whose payloads name real batches and whose roots are their contents'."""

    def __init__(self, n: int) -> None:
        self.batches = [batches_at(h) for h in range(1, n + 1)]
        self.contents = [assemble(b) for b in self.batches]
        payloads = [BlockPayload(tuple(b.digest for b in bs), ()).encode() for bs in self.batches]
        self.signed = SignedChain(WORLD, [c.data_root for c in self.contents], payloads)
        self.by_digest = {b.digest: b for bs in self.batches for b in bs}

    def committed(self, height: int) -> Committed:
        return Committed(self.signed.blocks[height - 1], self.signed.commit(height - 1))


class Fetcher:
    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.fetched: list[bytes] = []

    async def get(self, digests: Sequence[bytes], *, prefer: Sequence[int] = (),
                  give_up: Callable[[], bool] = lambda: False) -> list[Batch] | None:
        await trio.lowlevel.checkpoint()
        self.fetched.extend(digests)
        return [self.chain.by_digest[d] for d in digests]


class Port:
    """The slice of ReplicaPort that LedgerReads uses, over a real ledger and (optionally) the
    executor's recent commits."""

    def __init__(self, ledger: LedgerStore, recent: RecentCommits | None) -> None:
        self.ledger = ledger
        self.recent = recent
        self.durable_height = 0
        self.ledger_open = True
        self.reads = 0

    def recent_commit(self, height: int) -> tuple[Block, CommitProof, BlockTree] | None:
        return None if self.recent is None else self.recent.get(height)

    async def read_ledger(self, read: Callable[[LedgerView], T]) -> T:
        self.reads += 1
        await trio.lowlevel.checkpoint()
        return read(self.ledger)


class Rig:
    def __init__(self, tmp_path: Path, chain: Chain, *, cached: bool = True) -> None:
        self.chain = chain
        self.ledger = LedgerStore.open(tmp_path / "ordo.sqlite", chain_id=WORLD.chain_id, replica_id=0, create=True)
        self.taken: list[int] = []
        self.again = 0
        self.written = trio.Event()
        self.hold_write: trio.Event | None = None
        self.seen_during_write: list[object] = []
        self.executor = Executor(Fetcher(chain), self.write, self.on_written,  # type: ignore[arg-type]
                                 self.cached if cached else lambda height, payload: None,
                                 assembled_again=self.assembled_again)
        self.port = Port(self.ledger, self.executor.recent)

    def cached(self, height: int, payload: bytes) -> BlockContent | None:
        self.taken.append(height)
        return self.chain.contents[height - 1]

    def assembled_again(self) -> None:
        self.again += 1

    async def write(self, records: list[CommitRecord]) -> None:
        if self.hold_write is not None:
            self.seen_during_write.append(self.executor.recent.get(records[-1].block.height))
            await self.hold_write.wait()
        self.ledger.append_many(records)

    def on_written(self, records: list[CommitRecord]) -> None:
        self.port.durable_height = records[-1].block.height
        self.written.set()
        self.written = trio.Event()

    async def commit(self, heights: Sequence[int]) -> None:
        for h in heights:
            await self.executor.send.send(self.chain.committed(h))
        while self.port.durable_height < heights[-1]:
            await self.written.wait()


async def committed(tmp_path: Path, chain: Chain, *, cached: bool = True) -> Rig:
    """A rig whose executor has committed every height of ``chain``."""
    rig = Rig(tmp_path, chain, cached=cached)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rig.executor.run)
        await rig.commit(list(range(1, len(chain.batches) + 1)))
        nursery.cancel_scope.cancel()
    return rig


async def test_the_batches_handed_over_at_commit_are_used_and_stored_under_their_own_digests(
        tmp_path: Path) -> None:
    """The batches the pool held at commit go with the block, so the executor fetches (and
    decodes) nothing; handed over in another order (or not all), they are fetched, so every
    stored body is the batch its digest names. Catches bodies stored under another batch's digest."""
    chain = Chain(2)
    rig = Rig(tmp_path, chain)
    fetcher = rig.executor._fetcher
    assert isinstance(fetcher, Fetcher)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rig.executor.run)
        first, second = chain.committed(1), chain.committed(2)
        await rig.executor.send.send(Committed(first.block, first.proof, tuple(chain.batches[0])))
        await rig.executor.send.send(Committed(second.block, second.proof, tuple(reversed(chain.batches[1]))))
        while rig.port.durable_height < 2:
            await rig.written.wait()
        nursery.cancel_scope.cancel()
    assert fetcher.fetched == [b.digest for b in chain.batches[1]]
    for b in chain.batches[0] + chain.batches[1]:
        assert rig.ledger.load_batch(b.digest) == b.body


def ledger_only(port: Port) -> Port:
    """The same ledger, no recent commits: what a replica serves after a restart."""
    other = Port(port.ledger, None)
    other.durable_height = port.durable_height
    return other


async def test_the_tree_assembled_when_voting_is_the_one_the_api_proves_from_with_no_ledger_read(
        tmp_path: Path) -> None:
    """Catches: the executor assembling a block it voted for again, or the API rebuilding the tree
    (hashing the whole block once more) and reading the ledger twice per height."""
    chain = Chain(3)
    rig = await committed(tmp_path, chain)
    assert rig.taken == [1, 2, 3] and rig.again == 0
    assert rig.executor.recent.bytes == sum(len(b.body) for bs in chain.batches for b in bs), "what it pins"
    reads = LedgerReads(rig.port)  # type: ignore[arg-type]
    for height in (1, 2, 3):
        found = await reads.stored(height)
        assert found is not None and found[2] is chain.contents[height - 1].tree
        assert found[0] == chain.signed.blocks[height - 1]
    await reads.slice_event(4, 2)
    assert rig.port.reads == 0


async def test_a_block_not_proposed_or_verified_here_is_assembled_at_commit_and_counted(tmp_path: Path) -> None:
    chain = Chain(1)
    rig = await committed(tmp_path, chain, cached=False)
    assert rig.again == 1
    found = rig.executor.recent.get(1)
    assert found is not None and found[2].root == chain.signed.blocks[0].data_root


async def test_what_memory_serves_is_byte_identical_to_what_the_ledger_serves(tmp_path: Path) -> None:
    """Catches: a recent-commit path that serves another proof, block view or bundle proof than
    the ledger path (which a restarted replica, or any older height, takes)."""
    chain = Chain(3)
    rig = await committed(tmp_path, chain)
    memory, disk = LedgerReads(rig.port), LedgerReads(ledger_only(rig.port))  # type: ignore[arg-type]
    for height in (1, 2, 3):
        for rollup in (0, 1, 4, 5, 9, 10):
            got = await memory.slice_event(rollup, height)
            assert got is not None and got == await disk.slice_event(rollup, height)
        assert await memory.block_view(height) == await disk.block_view(height)
        ((bundle_id, _),) = chain.contents[height - 1].bundles
        from_memory, from_disk = await memory.bundle_proof(bundle_id), await disk.bundle_proof(bundle_id)
        assert from_memory is not None and from_disk is not None
        assert from_memory.to_json() == from_disk.to_json()
    assert rig.port.reads == 3, "only the bundle locations were read from the ledger"


async def test_a_height_is_remembered_only_once_its_write_is_durable(tmp_path: Path) -> None:
    """Catches: the recent commit put before the write (the API would serve a height a crash can
    still lose if the durable_height check were ever skipped)."""
    chain = Chain(1)
    rig = Rig(tmp_path, chain)
    rig.hold_write = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rig.executor.run)
        await rig.executor.send.send(chain.committed(1))
        await trio.testing.wait_all_tasks_blocked()
        assert rig.seen_during_write == [None] and rig.executor.recent.get(1) is None
        reads = LedgerReads(rig.port)  # type: ignore[arg-type]
        assert await reads.slice_event(1, 1) is None
        rig.hold_write.set()
        while rig.port.durable_height < 1:
            await rig.written.wait()
        assert rig.executor.recent.get(1) is not None and await reads.slice_event(1, 1) is not None
        nursery.cancel_scope.cancel()


async def test_the_api_never_serves_a_remembered_height_above_the_durable_one(tmp_path: Path) -> None:
    chain = Chain(1)
    recent = RecentCommits()
    content = chain.contents[0]
    assert content.tree is not None
    recent.put(1, (chain.signed.blocks[0], chain.signed.commit(0), content.tree), 1)
    ledger = LedgerStore.open(tmp_path / "ordo.sqlite", chain_id=WORLD.chain_id, replica_id=0, create=True)
    port = Port(ledger, recent)
    reads = LedgerReads(port)  # type: ignore[arg-type]
    assert await reads.stored(1) is None and await reads.slice_event(1, 1) is None
    port.durable_height = 1
    assert await reads.stored(1) is not None


def test_recent_commits_keep_the_newest_heights_within_a_count_and_a_byte_budget() -> None:
    chain = Chain(1)
    tree = chain.contents[0].tree
    assert tree is not None
    size = 1000
    proof = chain.signed.commit(0)
    blocks = [Block(h, h, WORLD.genesis_qc, 0, b"", tree.root) for h in range(1, 11)]
    by_count, by_bytes, tiny = RecentCommits(size=4), RecentCommits(max_bytes=3 * size), RecentCommits(max_bytes=1)
    for block in blocks:
        for recent in (by_count, by_bytes, tiny):
            recent.put(block.height, (block, proof, tree), size)
    assert [h for h in range(1, 11) if by_count.get(h)] == [7, 8, 9, 10]
    assert [h for h in range(1, 11) if by_bytes.get(h)] == [8, 9, 10] and by_bytes.bytes == 3 * size
    assert [h for h in range(1, 11) if tiny.get(h)] == [10], "the newest is kept whatever its size"


async def test_one_event_per_rollup_and_height_serves_every_subscriber(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches: a slice proof built and serialized again for each subscriber of a height."""
    chain = Chain(2)
    rig = await committed(tmp_path, chain)
    proved: list[tuple[int, int]] = []
    prove = BlockTree.prove_slice

    def counting(self: BlockTree, rollup_id: int, height: int, commit: CommitProof) -> Any:
        proved.append((rollup_id, height))
        return prove(self, rollup_id, height, commit)

    monkeypatch.setattr(BlockTree, "prove_slice", counting)
    reads = LedgerReads(rig.port)  # type: ignore[arg-type]
    events = [await reads.slice_event(rollup, height) for _ in range(5) for rollup in (4, 7) for height in (1, 2)]
    assert len(set(events)) == 4 and sorted(proved) == [(4, 1), (4, 2), (7, 1), (7, 2)]
    for k in range(EVENT_CACHE + 1):  # bounded: the oldest goes first
        await reads.slice_event(100 + k, 1)
    proved.clear()
    await reads.slice_event(4, 1)
    assert proved == [(4, 1)]
    reads.events.max_bytes = 1  # and by size: the newest only
    await reads.slice_event(4, 2)
    await reads.slice_event(7, 2)
    proved.clear()
    await reads.slice_event(7, 2)
    await reads.slice_event(4, 2)
    assert proved == [(4, 2)] and reads.events.bytes == len(events[1][1])


def test_the_api_keeps_older_heights_trees_within_a_count_and_a_byte_budget() -> None:
    by_count, by_bytes = BoundedCache[int, str](size=3), BoundedCache[int, str](32, max_bytes=250)
    for height in range(1, 8):
        by_count.put(height, f"tree {height}", 100)
        by_bytes.put(height, f"tree {height}", 100)
    assert [h for h in range(1, 8) if by_count.get(h)] == [5, 6, 7]
    assert [h for h in range(1, 8) if by_bytes.get(h)] == [6, 7] and by_bytes.bytes == 200
    by_bytes.put(8, "huge", 10_000)
    assert by_bytes.get(8) == "huge" and by_bytes.get(7) is None, "the newest is kept whatever its size"


async def test_a_tree_read_from_the_ledger_is_sized_by_its_payloads(tmp_path: Path) -> None:
    chain = Chain(2)
    rig = await committed(tmp_path, chain)
    disk = LedgerReads(ledger_only(rig.port))  # type: ignore[arg-type]
    await disk.slice_event(1, 2)
    slices = chain.contents[1].slices
    assert disk.trees.bytes == sum(len(p) for _, payloads in slices for p in payloads)
