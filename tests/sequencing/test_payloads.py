"""Payloads (sequencing/replica/payloads.py) driven without a Node: a fake core, a fake batch
fetcher, a real batch pool and evidence pool."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import trio
import trio.testing
from node_rig import World
from room_fakes import sample

from consensus.actions import RequestPayload
from consensus.messages import Block
from sequencing.config import Limits
from sequencing.replica.events import Event, Propose, Recheck
from sequencing.replica.evidence_pool import EvidencePool
from sequencing.replica.faults import FaultInjection
from sequencing.replica.input_guard import InputGuard
from sequencing.replica.metrics import NodeMetrics
from sequencing.replica.payloads import Payloads
from sequencing.rollup.batches import Batch, BatchPool
from sequencing.rollup.block_content import BlockPayload, assemble
from sequencing.rollup.transactions import Transaction

IDLE = 1.0
WORLD = World.make(4)


class FakeTree:
    def __init__(self) -> None:
        self.ids: set[bytes] = set()

    def __contains__(self, block_id: object) -> bool:
        return block_id in self.ids

    def path_from_root(self, block_id: bytes) -> list[Block]:
        return []


class FakeCore:
    def __init__(self) -> None:
        self.round = 1
        self.committed = WORLD.genesis
        self.tree = FakeTree()
        self.ready: list[tuple[int, bytes, bytes]] = []
        self.verified: list[tuple[bytes, bool, str]] = []

    def on_payload_ready(self, round: int, payload: bytes, data_root: bytes) -> list[object]:
        self.ready.append((round, payload, data_root))
        return ["ready"]

    def on_payload_verified(self, block_id: bytes, ok: bool, reason: str = "") -> list[object]:
        self.verified.append((block_id, ok, reason))
        return ["verified"]


class FakeFetcher:
    def __init__(self) -> None:
        self.bodies: dict[bytes, Batch] = {}
        self.asked: list[tuple[tuple[bytes, ...], tuple[int, ...], Callable[[], bool]]] = []
        self.arrivals: list[Batch] = []
        self.waiting: set[bytes] = set()

    def awaited(self, batch_digest: bytes) -> bool:
        return batch_digest in self.waiting

    def arrived(self, batch: Batch) -> None:
        self.arrivals.append(batch)

    async def get(self, digests: Sequence[bytes], *, prefer: Sequence[int] = (),
                  give_up: Callable[[], bool] = lambda: False) -> list[Batch] | None:
        self.asked.append((tuple(digests), tuple(prefer), give_up))
        await trio.sleep(0.1)
        return [self.bodies[d] for d in digests]


class Rig:
    def __init__(self, nursery: trio.Nursery, faults: FaultInjection | None = None) -> None:
        self.limits = Limits()
        self.pool = BatchPool(self.limits.batch_ttl_blocks)
        self.evidence = EvidencePool(self.limits)
        self.core = FakeCore()
        self.fetcher = FakeFetcher()
        self.metrics = NodeMetrics(0)
        self.posted: list[tuple[float, Event]] = []
        self.payloads = Payloads(
            limits=self.limits, idle_block_delay=IDLE, batches=self.pool, evidence=self.evidence,
            verifier=WORLD.verifier(), fetcher=self.fetcher,  # type: ignore[arg-type]
            guard=InputGuard(0, self.metrics.input_errors),
            metrics=self.metrics, core=lambda: self.core, post=self.post, nursery=lambda: nursery,
            faults=faults,
        )

    def post(self, event: Event) -> bool:
        self.posted.append((trio.current_time(), event))
        return True

    def block(self, batches: tuple[Batch, ...], data_root: bytes | None = None) -> Block:
        payload = BlockPayload(tuple(b.digest for b in batches), ()).encode()
        root = assemble(list(batches)).data_root if data_root is None else data_root
        block = Block(1, 1, WORLD.genesis_qc, 1, payload, root)
        self.core.tree.ids.add(block.id)
        return block


def batch(author: int, seq: int) -> Batch:
    return Batch.of(author, seq, 0, (Transaction(1, f"tx-{author}-{seq}".encode()),))


@asynccontextmanager
async def rig(byzantine: str | None = None) -> AsyncIterator[Rig]:
    faults = None if byzantine is None else FaultInjection(WORLD.signer(0), byzantine=byzantine)
    async with trio.open_nursery() as nursery:
        yield Rig(nursery, faults)
        nursery.cancel_scope.cancel()


def request() -> RequestPayload:
    return RequestPayload(1, WORLD.genesis, ())


async def test_an_idle_leader_proposes_when_a_batch_arrives_not_only_after_the_delay(
        autojump_clock: trio.testing.MockClock) -> None:
    """Catches: a peer's batch not waking the idle leader (it would wait the whole delay)."""
    async with rig() as r:
        start = trio.current_time()
        assert r.payloads.on_request(request()) == []
        await trio.sleep(0.2)
        assert r.payloads.accept_batch(batch(2, 1), 2)
        await trio.testing.wait_all_tasks_blocked()
        ((at, event),) = r.posted
        assert event == Propose(request()) and at - start < IDLE / 2


async def test_an_idle_leader_proposes_an_empty_block_after_the_delay(
        autojump_clock: trio.testing.MockClock) -> None:
    async with rig() as r:
        start = trio.current_time()
        r.payloads.on_request(request())
        await trio.sleep(2 * IDLE)
        ((at, event),) = r.posted
        assert event == Propose(request()) and at - start == IDLE


async def test_a_leader_with_batches_proposes_at_once_and_keeps_the_content_for_the_executor() -> None:
    """Catches: the assembled content not cached (the executor would assemble it again)."""
    async with rig() as r:
        r.pool.add(batch(0, 1))
        assert r.payloads.on_request(request()) == ["ready"]
        ((round, payload, data_root),) = r.core.ready
        assert round == 1
        assert BlockPayload.decode(payload).batches == (batch(0, 1).digest,)
        content = r.payloads.cached_content(1, payload)
        assert content is not None and content.data_root == data_root
        assert r.payloads.cached_content(1, payload) is None, "taken once"


async def test_a_voter_accepts_a_payload_it_holds_and_rejects_a_wrong_root() -> None:
    async with rig() as r:
        b = batch(1, 1)
        r.pool.add(b)
        good = r.block((b,))
        assert await r.payloads.verify(good) == ["verified"]
        assert r.core.verified[-1] == (good.id, True, "")
        assert r.payloads.cached_content(1, good.payload) is not None
        bad = r.block((b,), data_root=b"\x00" * 32)
        await r.payloads.verify(bad)
        assert r.core.verified[-1][:2] == (bad.id, False) and sample(r.metrics.rejected_payloads) == 1


async def test_a_voter_fetches_missing_batches_from_the_proposer_first_then_rechecks(
        autojump_clock: trio.testing.MockClock) -> None:
    """Catches: a fetch that never gives up when the round moves on, or no Recheck after it."""
    async with rig() as r:
        b = batch(3, 1)
        r.fetcher.bodies[b.digest] = b
        block = r.block((b,))
        assert await r.payloads.verify(block) == [] and r.core.verified == []
        await trio.sleep(1)
        ((digests, prefer, give_up),) = r.fetcher.asked
        assert digests == (b.digest,) and prefer == (block.author,)
        assert r.pool.get(b.digest) == b
        assert [e for _, e in r.posted] == [Recheck(block)]
        assert not give_up()
        r.core.round = block.round + 1
        assert give_up()


async def test_a_payload_check_for_a_block_no_longer_in_the_tree_is_dropped_as_stale() -> None:
    async with rig() as r:
        block = r.block(())
        r.core.tree.ids.clear()
        assert await r.payloads.verify(block) == [] and r.core.verified == []
        assert sample(r.metrics.dropped, ("StalePayload",)) == 1


async def test_a_batch_is_taken_only_from_its_author_and_a_committed_one_is_kept_aside() -> None:
    async with rig() as r:
        assert not r.payloads.accept_batch(batch(2, 1), 3)  # relayed by someone else
        assert r.pool.get(batch(2, 1).digest) is None
        done = batch(2, 2)
        r.pool.mark_committed([done.digest], 5)
        assert not r.payloads.accept_batch(done, None)
        assert len(r.pool) == 0 and r.fetcher.arrivals == [done]
        assert r.payloads.accept_batch(batch(2, 3), 2) and len(r.pool) == 1


async def test_an_expired_batch_from_a_fetch_is_handed_over_but_never_pending() -> None:
    """Catches (chaos seed 1: 190 transactions committed twice): after a lost disk, a replica's
    executor far behind its core fetched its own old batches for committed blocks; the pool had
    forgotten those commits (it remembers 2 x ttl heights), took them as pending, expired them at
    the next commit, and the intake re-batched their items: each committed a second time, ~1,400
    blocks later, beyond any window. An expired batch goes to the fetch waiting for it, not into
    the pool."""
    async with rig() as r:
        ttl = r.limits.batch_ttl_blocks
        old = Batch.of(0, 1, 860, (Transaction(1, b"committed long ago"),))
        r.pool.mark_committed([old.digest], 865)
        for h in range(866, 866 + 2 * ttl + ttl // 2):
            r.pool.mark_committed((), h)
            r.pool.expire(h)
        assert r.pool.committed_at(old.digest) is None, "the pool forgot the commit, as designed"
        stray = Batch.of(0, 2, 861, (Transaction(1, b"nobody asked"),))
        assert not r.payloads.accept_batch(stray, 0) and r.pool.get(stray.digest) is None
        r.fetcher.waiting.add(old.digest)  # the executor's fetch for the committed block
        assert not r.payloads.accept_batch(old, 0)
        assert r.fetcher.arrivals[-1] == old and r.pool.get(old.digest) == old, "the fetch still gets it"
        assert len(r.pool) == 0 and r.pool.expire(r.pool.height + 1) == []
        assert sample(r.metrics.dropped, ("ExpiredBatch",)) == 2


async def test_a_batch_that_could_not_be_live_for_a_ttl_is_refused_and_counted() -> None:
    """A batch's created_height is the author's word: one far above the committed height never
    expires (expiry is created_height + ttl below the committed height), so a Byzantine peer
    could fill the pool for good. Refused beyond committed + ttl (fetched again if ever needed)."""
    async with rig() as r:
        ttl = r.limits.batch_ttl_blocks
        r.pool.mark_committed((), 40)  # every commit reports its height, empty blocks too
        future = Batch.of(2, 1, 40 + ttl + 1, (Transaction(1, b"later"),))
        assert not r.payloads.accept_batch(future, 2)
        assert len(r.pool) == 0 and r.pool.get(future.digest) is None
        assert sample(r.metrics.dropped, ("FutureBatch",)) == 1
        assert r.fetcher.arrivals == [], "a fetch is not woken by a batch that was refused"
        edge = Batch.of(2, 2, 40 + ttl, (Transaction(1, b"edge"),))
        assert r.payloads.accept_batch(edge, 2) and len(r.pool) == 1
        for h in range(41, 42 + 2 * ttl):  # the accepted one expires, as it should
            r.pool.mark_committed((), h)
            r.pool.expire(h)
        assert len(r.pool) == 0


async def test_an_author_flooding_batches_is_refused_beyond_its_share_unless_a_fetch_waits() -> None:
    """Pending batches are bounded per author (batch_pool_author_bytes): a peer cutting batches
    faster than blocks commit them (a flood, or no back pressure) is refused and counted, others
    are not held back, a batch a proposal's fetch waits for is taken anyway, and a commit frees room
    (catches: no bound, a bound that also refuses needed batches, or room never given back)."""
    async with rig() as r:
        r.pool.author_bytes = 2 * len(batch(2, 1).body) + 5
        assert r.payloads.accept_batch(batch(2, 1), 2) and r.payloads.accept_batch(batch(2, 2), 2)
        flood = batch(2, 3)
        assert not r.payloads.accept_batch(flood, 2) and r.pool.get(flood.digest) is None
        assert sample(r.metrics.dropped, ("BatchPoolFull",)) == 1
        assert r.payloads.accept_batch(batch(3, 1), 3), "another author has its own share"
        r.fetcher.waiting.add(flood.digest)
        assert r.payloads.accept_batch(flood, 2), "a batch a proposal needs is taken whatever the bound"
        assert r.pool.pending_bytes(2) == 3 * len(flood.body)
        r.pool.mark_committed([batch(2, 1).digest, batch(2, 2).digest, flood.digest], 1)
        assert r.pool.pending_bytes(2) == 0 and r.payloads.accept_batch(batch(2, 4), 2)


async def test_contents_of_blocks_that_never_commit_go_once_the_executor_passes_their_height() -> None:
    """A verified proposal that loses (a timeout, a fork) left its content in the cache until 256
    newer ones pushed it out: up to 256 blocks' transactions pinned for good in a long run."""
    async with rig() as r:
        b1, b2, b3 = batch(1, 1), batch(2, 1), batch(3, 1)
        for b in (b1, b2, b3):
            r.pool.add(b)

        def at(height: int, batches: tuple[Batch, ...]) -> Block:
            payload = BlockPayload(tuple(b.digest for b in batches), ()).encode()
            block = Block(height, height, WORLD.genesis_qc, 1, payload, assemble(list(batches)).data_root)
            r.core.tree.ids.add(block.id)
            return block

        winner, loser, child = at(1, (b1,)), at(1, (b2,)), at(2, (b3,))
        for block in (winner, loser):
            assert await r.payloads.verify(block) == ["verified"]
        r.payloads.committed(winner)  # the core commits height 1 (its ids join the child's window)
        assert await r.payloads.verify(child) == ["verified"]
        assert r.payloads.cached_content(1, winner.payload) is not None  # the executor writes height 1
        assert r.payloads.cached_content(2, child.payload) is not None  # then height 2
        assert r.payloads.cached_content(1, loser.payload) is None, "the loser at height 1 was dropped"


async def test_the_same_payload_at_two_heights_is_two_entries_and_each_is_taken_at_its_height() -> None:
    """Catches: the cache keyed by the payload alone. Empty blocks all have the same payload: the
    one verified at height 3 replaced the entry of height 1, the executor took it at height 1 and
    dropped everything up to height 3 with it, so heights 2 and 3 were assembled again at commit
    (~1 block in 8 under load in the bench, the non-empty ones included)."""
    async with rig() as r:
        b = batch(1, 1)
        r.pool.add(b)
        empty = BlockPayload((), ()).encode()

        def at(height: int, batches: tuple[Batch, ...]) -> Block:
            payload = BlockPayload(tuple(x.digest for x in batches), ()).encode()
            block = Block(height, height, WORLD.genesis_qc, 1, payload, assemble(list(batches)).data_root)
            r.core.tree.ids.add(block.id)
            return block

        blocks = [at(1, ()), at(2, (b,)), at(3, ())]
        for block in blocks:
            assert await r.payloads.verify(block) == ["verified"]
            r.payloads.committed(block)  # the next block's window reaches it
        assert blocks[0].payload == blocks[2].payload == empty
        for block in blocks:  # the executor, in height order
            content = r.payloads.cached_content(block.height, block.payload)
            assert content is not None, f"height {block.height} assembled again"
            assert content.data_root == block.data_root and content.tree is not None


async def test_a_censoring_leader_proposes_everything_but_the_target_rollups_batches() -> None:
    async with rig("censor:7") as r:
        target = Batch.of(2, 1, 0, (Transaction(7, b"censored"), Transaction(1, b"alongside")))
        others = [batch(2, 2), batch(3, 1)]
        for b in (target, *others):
            r.pool.add(b)
        assert r.payloads.on_request(request()) == ["ready"]
        [(_, payload, root)] = r.core.ready
        assert BlockPayload.decode(payload).batches == tuple(b.digest for b in others)
        assert root == assemble(others).data_root


async def test_a_leader_that_censors_all_proposes_nothing(autojump_clock: trio.testing.MockClock) -> None:
    async with rig("censor-all") as r:
        r.pool.add(batch(2, 1))
        assert r.payloads.on_request(request()) == []
        await trio.sleep(3 * IDLE)
        assert r.core.ready == [] and r.posted == []
