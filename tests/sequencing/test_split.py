"""The rollup split (``block_content.assemble``) is a pure, deterministic function of the batches:
block order, in-block dedup (first occurrence wins), stable grouping by rollup id, bundle
positions, NMT data_root — checked against an independent reference, with teeth."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from seq_helpers import (
    ReferenceSplit,
    blocks_of_batches,
    check_split,
    check_split_against,
    item_pools,
    reference_block_root,
    reference_data_root,
)

from sequencing.rollup.batches import Batch
from sequencing.rollup.block_content import BlockContent, BlockPayload, assemble
from sequencing.rollup.chunks import CHUNK_TXS, block_leaves
from sequencing.rollup.nmt import EMPTY_ROOT, NamespacedMerkleTree
from sequencing.rollup.transactions import Bundle, Transaction, item_txs

REPO = Path(__file__).resolve().parents[2]
MAX_BATCH_BYTES = 1 << 22


def tx(rollup: int, payload: bytes | str) -> Transaction:
    return Transaction(rollup, payload.encode() if isinstance(payload, str) else payload)


def batch(*items: Transaction | Bundle, author: int = 0, seq: int = 0, height: int = 0) -> Batch:
    return Batch.of(author, seq, height, tuple(items))


def content_key(c: BlockContent) -> tuple[object, ...]:
    return (c.slices, c.tx_ids, c.bundles, c.data_root)


# -- properties ---------------------------------------------------------------------------------


@given(blocks_of_batches())
def test_split_is_the_reference_split(batches: list[Batch]) -> None:
    content = assemble(batches)
    check_split(batches, content)
    # order within each rollup is block order: the tree order restricted to a rollup is a
    # subsequence of the block order
    ref = ReferenceSplit(batches)
    position = {t.id: i for i, t in reversed(list(enumerate(ref.block_order)))}
    for rollup, txs in ref.slices.items():
        assert [position[t.id] for t in txs] == sorted(position[t.id] for t in txs), rollup


@given(blocks_of_batches())
def test_split_is_pure_and_construction_independent(batches: list[Batch]) -> None:
    first = assemble(batches)
    assert content_key(assemble(batches)) == content_key(first)
    assert content_key(assemble(list(batches))) == content_key(first)
    # the same batches after a wire round trip (what a voter that fetched them holds)
    decoded = [Batch.decode(b.encode(), MAX_BATCH_BYTES) for b in batches]
    assert [b.digest for b in decoded] == [b.digest for b in batches]
    assert content_key(assemble(decoded)) == content_key(first)
    # an equivalent construction: each batch rebuilt from its items by another author
    items = tuple(i for b in batches for i in b.items())
    rebuilt = [Batch.of(9, n, 9, b.items()) for n, b in enumerate(batches)]
    assert content_key(assemble(rebuilt)) == content_key(first)
    # trailing batches that only repeat already-included items change nothing
    if items:
        repeat = Batch.of(7, 1, 0, tuple(reversed(items)))
        assert content_key(assemble([*batches, repeat])) == content_key(first)
    # the root is the NMT root of the grouped leaves, by an NMT written independently of nmt.py
    # (check_split compares it with the root of the reference split's order as well)
    assert first.data_root == reference_data_root(first.leaves())


@given(item_pools(min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_first_occurrence_wins(pool: list[Transaction | Bundle], rnd: random.Random) -> None:
    """Repeating items later (in any batch) never moves or duplicates them."""
    once = [Batch.of(0, 0, 0, tuple(pool))]
    extra = [rnd.choice(pool) for _ in range(rnd.randint(1, 6))]
    split = rnd.randint(0, len(extra))
    twice = [Batch.of(0, 0, 0, tuple(pool) + tuple(extra[:split])), Batch.of(1, 0, 0, tuple(extra[split:]))]
    assert content_key(assemble(twice)) == content_key(assemble(once))
    content = assemble(twice)
    assert len(content.ids()) == len(set(content.ids()))  # tx-disjoint pool: no duplicate leaf
    assert len({b for b, _ in content.bundles}) == len(content.bundles)


def test_first_occurrence_wins_example() -> None:
    a, b, c = tx(1, "a"), tx(1, "b"), tx(2, "c")
    content = assemble([batch(a, c), batch(b, a, c, author=1)])
    assert dict(content.slices)[1] == (b"a", b"b")  # a keeps its first position, before b
    assert dict(content.slices)[2] == (b"c",)
    assert content.ids() == [a.id, b.id, c.id]


def test_stable_grouping_example() -> None:
    # block order: z(3) y(1) x(3) w(1) bundle[v(2) u(1)] t(3)
    z, y, x, w, v, u, t = (tx(3, "z"), tx(1, "y"), tx(3, "x"), tx(1, "w"), tx(2, "v"), tx(1, "u"),
                           tx(3, "t"))
    bundle = Bundle((v, u))
    content = assemble([batch(z, y), batch(x, w, bundle, t, author=2)])
    assert content.transactions() == [(1, b"y"), (1, b"w"), (1, b"u"), (2, b"v"), (3, b"z"), (3, b"x"), (3, b"t")]
    assert content.bundles == ((bundle.id, (3, 2)),)  # bundle order v, u -> leaves 3, 2


def test_bundle_expanded_in_place_and_indices_exact() -> None:
    a, b, c, d = tx(5, "a"), tx(0, "b"), tx(5, "c"), tx(9, "d")
    b1 = Bundle((a, b, c))
    b2 = Bundle((d, tx(0, "e")))
    content = assemble([batch(tx(5, "first"), b1, b2, b1)])
    ids = content.ids()
    for bundle_id, indices in content.bundles:
        bundle = b1 if bundle_id == b1.id else b2
        assert [ids[i] for i in indices] == [t.id for t in bundle.txs]
    assert len(content.bundles) == 2  # the repeated b1 is skipped whole


def test_data_root_known_answer() -> None:
    """A fixed block's data_root, pinned: a change to the split (order, dedup, bundles) or to the
    NMT hashing changes it. The constant is the reference root of the leaves spelled out below."""
    z, y, x, v, u, t = tx(3, "z"), tx(1, "y"), tx(3, "x"), tx(2, "v"), tx(1, "u"), tx(3, "t")
    # block order: z(3) y(1) | x(3) bundle[v(2) u(1)] y(repeat, skipped) t(3)
    content = assemble([batch(z, y), batch(x, Bundle((v, u)), y, t, author=2)])
    slices = {1: [y, u], 2: [v], 3: [z, x, t]}
    assert content.transactions() == [(r, t.payload) for r, txs in slices.items() for t in txs]
    expected = "3f602fa68e97a96980b873e2553362d1feec356063628426e87afbc81e1b20ca"
    assert reference_block_root([(r, t.payload) for r, txs in slices.items() for t in txs]).hex() == expected
    assert content.data_root.hex() == expected


def test_slices_longer_than_a_chunk() -> None:
    """Slices of more than CHUNK_TXS transactions give several leaves each (cut at exact multiples),
    and the root is the reference root over those chunks."""
    sizes = {4: 2 * CHUNK_TXS + 1, 1: CHUNK_TXS, 9: CHUNK_TXS + 1}
    content = assemble([batch(*[tx(r, f"{r}-{i}") for r, n in sizes.items() for i in range(n)])])
    assert [(r, len(p)) for r, p in content.slices] == sorted(sizes.items())
    assert [ns for ns, _ in block_leaves(content.slices)] == [1, 4, 4, 4, 9, 9]
    assert content.data_root == reference_block_root(content.transactions())
    assert content.data_root != reference_block_root(content.transactions()[:-1])


def test_empty_block() -> None:
    content = assemble([])
    assert content.slices == () and content.tx_ids == b"" and content.bundles == ()
    assert content.data_root == EMPTY_ROOT == reference_data_root([])


def test_payload_round_trip_keeps_batch_order() -> None:
    batches = [batch(tx(1, str(i)), seq=i) for i in range(5)]
    payload = BlockPayload(tuple(b.digest for b in batches), ())
    assert BlockPayload.decode(payload.encode()) == payload


_CHILD = r"""
import json, sys
from sequencing.rollup.batches import Batch
from sequencing.rollup.block_content import assemble
out = []
for block in json.load(sys.stdin):
    c = assemble([Batch.decode(bytes.fromhex(b), 1 << 22) for b in block])
    out.append([c.data_root.hex(), c.tx_ids.hex(), [[ns, d.hex()] for ns, d in c.leaves()],
                [[bid.hex(), list(ix)] for bid, ix in c.bundles]])
print(json.dumps(out))
"""


def _random_blocks(seed: int, count: int) -> list[list[Batch]]:
    rnd = random.Random(seed)
    blocks = []
    for _ in range(count):
        pool: list[Transaction | Bundle] = []
        for _ in range(rnd.randint(0, 12)):
            if rnd.random() < 0.3:
                pool.append(Bundle(tuple(tx(rnd.choice([0, 1, 2, 7, 2**32 - 1]), rnd.randbytes(4))
                                         for _ in range(rnd.randint(2, 4)))))
            else:
                pool.append(tx(rnd.choice([0, 1, 2, 7, 2**32 - 1]), rnd.randbytes(rnd.randint(1, 5))))
        batches = [Batch.of(rnd.randint(0, 3), s, 0, tuple(rnd.choice(pool) for _ in range(rnd.randint(1, 6))))
                   for s in range(rnd.randint(0, 4))] if pool else []
        blocks.append(batches)
    return blocks


def test_split_is_identical_in_other_processes() -> None:
    """Other interpreters (other hash seeds: set/dict iteration orders differ) compute the same
    data roots, ids and bundle positions from the batches' wire bytes."""
    blocks = _random_blocks(20240601, 40)
    here = []
    for batches in blocks:
        c = assemble(batches)
        here.append([c.data_root.hex(), c.tx_ids.hex(), [[ns, d.hex()] for ns, d in c.leaves()],
                     [[bid.hex(), list(ix)] for bid, ix in c.bundles]])
    stdin = json.dumps([[b.encode().hex() for b in batches] for batches in blocks])
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
        done = subprocess.run([sys.executable, "-c", _CHILD], input=stdin, capture_output=True, text=True,
                              cwd=REPO, env=env, timeout=60, check=True)
        assert json.loads(done.stdout) == here, f"PYTHONHASHSEED={seed}"


# -- teeth: wrong splits the checks catch ---------------------------------------------------------


def _slices(ordered: Sequence[Transaction]) -> tuple[tuple[int, tuple[bytes, ...]], ...]:
    """Runs of equal rollup ids (in the order given, sorted or not) as slices."""
    out: list[tuple[int, list[bytes]]] = []
    for t in ordered:
        if out and out[-1][0] == t.rollup_id:
            out[-1][1].append(t.payload)
        else:
            out.append((t.rollup_id, [t.payload]))
    return tuple((r, tuple(ps)) for r, ps in out)


def _built(ordered: Sequence[Transaction], bundles: tuple[tuple[bytes, tuple[int, ...]], ...],
           root: bytes | None = None) -> BlockContent:
    slices = _slices(ordered)
    return BlockContent(slices, b"".join(t.id for t in ordered), bundles,
                        NamespacedMerkleTree(block_leaves(slices)).root if root is None else root)


def _content(txs: Sequence[Transaction], bundles: Sequence[tuple[bytes, list[int]]],
             order: list[int]) -> BlockContent:
    position = {original: leaf for leaf, original in enumerate(order)}
    return _built([txs[i] for i in order], tuple((bid, tuple(position[i] for i in m)) for bid, m in bundles))


def _block_order(
    batches: Sequence[Batch], *, dedup: str = "first",
) -> tuple[list[Transaction], list[tuple[bytes, list[int]]]]:
    items = [i for b in batches for i in b.items()]
    if dedup == "first":
        seen: set[bytes] = set()
        kept = []
        for i in items:
            if i.id not in seen:
                seen.add(i.id)
                kept.append(i)
        items = kept
    elif dedup == "last":
        last = {i.id: n for n, i in enumerate(items)}
        items = [i for n, i in enumerate(items) if last[i.id] == n]
    txs: list[Transaction] = []
    bundles: list[tuple[bytes, list[int]]] = []
    for item in items:
        if isinstance(item, Bundle):
            bundles.append((item.id, list(range(len(txs), len(txs) + len(item.txs)))))
        txs.extend(item_txs(item))
    return txs, bundles


def mutant_unstable(batches: Sequence[Batch]) -> BlockContent:
    txs, bundles = _block_order(batches)
    return _content(txs, bundles, sorted(range(len(txs)), key=lambda i: (txs[i].rollup_id, txs[i].payload)))


def mutant_no_dedup(batches: Sequence[Batch]) -> BlockContent:
    txs, bundles = _block_order(batches, dedup="none")
    return _content(txs, bundles, sorted(range(len(txs)), key=lambda i: txs[i].rollup_id))


def mutant_last_wins(batches: Sequence[Batch]) -> BlockContent:
    txs, bundles = _block_order(batches, dedup="last")
    return _content(txs, bundles, sorted(range(len(txs)), key=lambda i: txs[i].rollup_id))


def mutant_bundle_block_positions(batches: Sequence[Batch]) -> BlockContent:
    txs, bundles = _block_order(batches)
    good = _content(txs, bundles, sorted(range(len(txs)), key=lambda i: txs[i].rollup_id))
    return BlockContent(good.slices, good.tx_ids, tuple((b, tuple(m)) for b, m in bundles), good.data_root)


def mutant_descending(batches: Sequence[Batch]) -> BlockContent:
    txs, bundles = _block_order(batches)
    bad = _content(txs, bundles, sorted(range(len(txs)), key=lambda i: txs[i].rollup_id))
    order = sorted(range(len(txs)), key=lambda i: -txs[i].rollup_id)
    return _built([txs[i] for i in order], bad.bundles, bad.data_root)


def mutant_reversed_within_rollup(batches: Sequence[Batch]) -> BlockContent:
    txs, bundles = _block_order(batches)
    return _content(txs, bundles, sorted(range(len(txs)), key=lambda i: (txs[i].rollup_id, -i)))


def mutant_root_over_block_order(batches: Sequence[Batch]) -> BlockContent:
    good = assemble(batches)
    txs, _ = _block_order(batches)
    ordered = sorted(txs, key=lambda t: t.rollup_id)
    # root over the grouped slices but with the block's last transaction dropped
    dropped = NamespacedMerkleTree(block_leaves(_slices(ordered[:-1]))).root
    return BlockContent(good.slices, good.tx_ids, good.bundles, dropped)


MUTANTS: dict[str, Callable[[Sequence[Batch]], BlockContent]] = {
    "unstable": mutant_unstable,
    "no_dedup": mutant_no_dedup,
    "last_wins": mutant_last_wins,
    "bundle_block_positions": mutant_bundle_block_positions,
    "descending": mutant_descending,
    "reversed_within_rollup": mutant_reversed_within_rollup,
    "root_drops_a_leaf": mutant_root_over_block_order,
}


def _caught(mutant: Callable[[Sequence[Batch]], BlockContent], batches: list[Batch]) -> bool:
    try:
        check_split_against(ReferenceSplit(batches), mutant(batches))
    except AssertionError:
        return True
    return False


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_teeth_wrong_splits_are_caught(name: str) -> None:
    """Each wrong split is caught by the same checker on blocks of the kind the properties draw
    (plain seeded generation: no shrinking, so this stays fast)."""
    mutant = MUTANTS[name]
    blocks = _random_blocks(99, 200)
    caught = sum(_caught(mutant, b) for b in blocks)
    assert caught > 0, f"mutant {name} survived {len(blocks)} blocks"


def test_teeth_reference_accepts_the_real_split() -> None:
    for batches in _random_blocks(7, 50):
        check_split(batches, assemble(batches))


# -- BUG: a transaction both alone and inside a bundle lands twice in one block ------------------


@pytest.mark.parametrize("shape", ["tx_then_bundle", "bundle_then_tx", "two_bundles"])
def test_no_transaction_twice_in_one_block(shape: str) -> None:
    t, u, v = tx(1, "t"), tx(2, "u"), tx(3, "v")
    items = {
        "tx_then_bundle": [t, Bundle((t, u))],
        "bundle_then_tx": [Bundle((t, u)), t],
        "two_bundles": [Bundle((t, u)), Bundle((t, v))],
    }[shape]
    content = assemble([batch(items[0]), batch(items[1], author=1)])
    assert len(set(content.ids())) == len(content.ids()), "a transaction is in the block twice"


@pytest.mark.parametrize("shape", ["tx_then_bundle", "two_bundles", "same_batch"])
def test_a_bundle_with_a_transaction_seen_earlier_is_skipped_whole(shape: str) -> None:
    """Catches: a bundle landing in part (its unseen transactions) when another of its transactions
    is already in the block (mutant bundle-not-atomic)."""
    t, u, v = tx(1, "t"), tx(2, "u"), tx(3, "v")
    late = Bundle((t, v))
    batches = {
        "tx_then_bundle": [batch(t), batch(late, author=1)],
        "two_bundles": [batch(Bundle((t, u))), batch(late, author=1)],
        "same_batch": [batch(t, late)],  # plain transactions go first, so t is seen before the bundle
    }[shape]
    content = assemble(batches)
    assert late.id not in dict(content.bundles), "the late bundle has an entry"
    assert v.id not in content.ids(), "the late bundle's unseen transaction landed alone"
    assert content.ids().count(t.id) == 1


def test_an_authors_batch_reuses_its_transactions_ids() -> None:
    """Batch.of takes the ids its items already carry; they equal the ids a receiver computes from
    the body (catches a mix-up of groups and ids when an author's batch skips rehashing)."""
    items = (tx(9, "a"), tx(2, "b"), Bundle((tx(3, "c"), tx(2, "d"))), tx(9, "e"), tx(2, "f"))
    own = batch(*items)
    received = Batch.decode(own.encode(), MAX_BATCH_BYTES)
    assert own.group_ids() == received.group_ids() == [[items[1].id, items[4].id], [items[0].id, items[3].id]]
    assert content_key(assemble([own])) == content_key(assemble([received]))
