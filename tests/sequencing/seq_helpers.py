"""Shared builders for the sequencing tests: hypothesis strategies for transactions, bundles and
batches, an independent reference of the rollup split, and a signed chain (real QCs from
``consensus_factories.World``) whose blocks carry chosen data roots, for real commit proofs."""

from __future__ import annotations

import hashlib
import itertools
import sys
from collections.abc import Sequence
from pathlib import Path

import msgpack
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "consensus"))

from consensus_factories import World

from consensus.commit_proof import CommitProof
from consensus.crypto import SignatureKind
from consensus.messages import Block, Evidence, EvidenceKind, QuorumCert
from sequencing.rollup.batches import Batch
from sequencing.rollup.block_content import BlockContent
from sequencing.rollup.nmt import EMPTY_ROOT
from sequencing.rollup.transactions import Bundle, Item, Transaction, item_txs

__all__ = [
    "ReferenceSplit",
    "SignedChain",
    "World",
    "batches_from_pool",
    "bundles_of",
    "check_split",
    "check_split_against",
    "evidence_of",
    "item_pools",
    "reference_block_root",
    "reference_chunk_leaves",
    "reference_data_root",
    "reference_split",
    "txs",
]

MAX_NS = 2**32 - 1

# -- strategies ---------------------------------------------------------------------------------

rollup_ids = st.one_of(st.integers(0, 7), st.sampled_from([0, 1, 100, 2**31, MAX_NS - 1, MAX_NS]))
payloads = st.binary(min_size=1, max_size=6)


def txs(rollups: st.SearchStrategy[int] = rollup_ids) -> st.SearchStrategy[Transaction]:
    return st.builds(Transaction, rollups, payloads)


def bundles_of(tx: st.SearchStrategy[Transaction], max_size: int = 5) -> st.SearchStrategy[Bundle]:
    return st.lists(tx, min_size=2, max_size=max_size, unique_by=lambda t: t.id).map(
        lambda ts: Bundle(tuple(ts))
    )


@st.composite
def item_pools(draw: st.DrawFn, *, min_size: int = 0, max_size: int = 10,
               disjoint: bool = True) -> list[Item]:
    """Distinct items; with ``disjoint`` no transaction belongs to two items (so a transaction
    can be duplicated in a block only by repeating its whole item)."""
    raw = draw(st.lists(st.one_of(txs(), bundles_of(txs())), min_size=min_size, max_size=max_size))
    out: list[Item] = []
    used: set[bytes] = set()
    for item in raw:
        ids = {t.id for t in item_txs(item)}
        if item.id in {i.id for i in out} or (disjoint and ids & used):
            continue
        used |= ids
        out.append(item)
    return out


@st.composite
def batches_from_pool(draw: st.DrawFn, pool: Sequence[Item], *, max_batches: int = 5,
                      max_items: int = 6, height: int = 0) -> list[Batch]:
    """Batches whose items are drawn (with repetition) from ``pool``: repeats model the same item
    batched twice (by two replicas, or re-batched after expiry)."""
    n = draw(st.integers(0, max_batches))
    out = []
    for seq in range(n):
        items = draw(st.lists(st.sampled_from(list(pool)), min_size=1, max_size=max_items)) if pool else []
        if not items:
            continue
        author = draw(st.integers(0, 3))
        out.append(Batch.of(author, seq, height, tuple(items)))
    return out


@st.composite
def blocks_of_batches(draw: st.DrawFn, *, max_batches: int = 5) -> list[Batch]:
    pool = draw(item_pools(max_size=12))
    return draw(batches_from_pool(pool, max_batches=max_batches))


# -- the reference NMT root, written from the docstring of sequencing/rollup/nmt.py ------------------


def _nmt_hash(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32, person=b"ordo/nmt/v1").digest()


def _reference_node(leaves: Sequence[tuple[int, bytes]]) -> tuple[int, int, bytes]:
    if len(leaves) == 1:
        ns, data = leaves[0]
        return ns, ns, _nmt_hash(b"\x00" + ns.to_bytes(4, "big") + data)
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    lmin, lmax, ld = _reference_node(leaves[:k])
    rmin, rmax, rd = _reference_node(leaves[k:])
    body = b"\x01" + b"".join(
        [lmin.to_bytes(4, "big"), lmax.to_bytes(4, "big"), ld,
         rmin.to_bytes(4, "big"), rmax.to_bytes(4, "big"), rd]
    )
    return lmin, rmax, _nmt_hash(body)


def reference_data_root(leaves: Sequence[tuple[int, bytes]]) -> bytes:
    """``data_root`` over ``leaves`` in the given order, without ``sequencing.rollup.nmt``."""
    lo, hi, d = _reference_node(leaves) if leaves else (0, 0, b"\0" * 32)
    return _nmt_hash(b"\x02" + len(leaves).to_bytes(8, "big") + lo.to_bytes(4, "big") + hi.to_bytes(4, "big") + d)


REFERENCE_CHUNK_TXS = 64  # PROTOCOL.md section 13.1


def reference_chunk_leaves(txs: Sequence[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """The NMT leaves of a block's transactions ``(rollup id, payload)`` in tree order: each rollup's
    run cut into chunks of 64 payloads, leaf data = msgpack of the chunk (from PROTOCOL.md section
    13.1, without ``sequencing.rollup.chunks``)."""
    out = []
    for ns, group in itertools.groupby(txs, key=lambda tx: tx[0]):
        payloads = [p for _, p in group]
        for k in range(0, len(payloads), REFERENCE_CHUNK_TXS):
            out.append((ns, msgpack.packb(payloads[k:k + REFERENCE_CHUNK_TXS], use_bin_type=True)))
    return out


def reference_block_root(txs: Sequence[tuple[int, bytes]]) -> bytes:
    """A block's ``data_root`` from its transactions in tree order (chunk leaves, reference NMT)."""
    return reference_data_root(reference_chunk_leaves(txs))


# -- the reference split ------------------------------------------------------------------------


class ReferenceSplit:
    """Written from the split rules (docs/ARCHITECTURE.md, "Deterministic split"), independently
    of ``assemble``: block order = batches' items in payload order, an item whose id was seen
    earlier in the block skipped, bundles expanded in place; then a group-by rollup id that keeps
    block order inside each rollup."""

    def __init__(self, batches: Sequence[Batch]) -> None:
        self.items: list[Item] = []
        seen: set[bytes] = set()
        for batch in batches:
            for item in batch.items():  # a batch's order: plain txs group by group, then bundles
                if item.id not in seen:
                    seen.add(item.id)
                    self.items.append(item)
        self.block_order: list[Transaction] = [t for item in self.items for t in item_txs(item)]
        groups: dict[int, list[Transaction]] = {}
        for tx in self.block_order:
            groups.setdefault(tx.rollup_id, []).append(tx)
        self.slices: dict[int, list[Transaction]] = {r: groups[r] for r in sorted(groups)}
        self.tree_order: list[Transaction] = [t for r in self.slices for t in self.slices[r]]
        self.bundles: list[Bundle] = [i for i in self.items if isinstance(i, Bundle)]


def reference_split(batches: Sequence[Batch]) -> ReferenceSplit:
    return ReferenceSplit(batches)


def check_split_against(ref: ReferenceSplit, content: BlockContent) -> None:
    """AssertionError unless ``content`` is exactly the reference split (transactions, ids,
    per-rollup slices, bundle positions, data_root)."""
    assert content.transactions() == [(t.rollup_id, t.payload) for t in ref.tree_order], "transactions"
    assert content.ids() == [t.id for t in ref.tree_order], "tx ids"
    assert content.tx_count == len(ref.block_order), "tx count"
    assert [r for r, _ in content.slices] == list(ref.slices), "rollups present"
    for (rollup, payloads), slice_txs in zip(content.slices, ref.slices.values(), strict=True):
        assert list(payloads) == [t.payload for t in slice_txs], f"slice of rollup {rollup}"
    # the root is recomputed from the reference's own slices by the reference NMT, so neither
    # assemble nor sequencing.rollup.nmt is compared with itself
    expected_root = reference_block_root([(t.rollup_id, t.payload) for t in ref.tree_order])
    assert content.data_root == expected_root, "data_root is not the reference NMT root of the reference split"
    txs = content.transactions()
    ids = content.ids()
    assert len(content.bundles) == len(ref.bundles), "one bundle entry per included bundle"
    for (bundle_id, indices), bundle in zip(content.bundles, ref.bundles, strict=True):
        assert bundle_id == bundle.id, "bundle entries in block order"
        assert len(indices) == len(bundle.txs), "bundle index count"
        assert [ids[i] for i in indices] == [t.id for t in bundle.txs], "bundle indices"
        assert [txs[i] for i in indices] == [(t.rollup_id, t.payload) for t in bundle.txs]


def check_split(batches: Sequence[Batch], content: BlockContent) -> None:
    check_split_against(reference_split(batches), content)


# -- a signed chain with chosen data roots ------------------------------------------------------


class SignedChain:
    """genesis <- b1 <- ... <- bn <- tail with rounds 1..n+1 (consecutive), each certified by a
    real quorum of ``world``; block i carries ``roots[i]``. ``commit(i)`` is a real 2-chain commit
    proof for block i: (b_i, b_{i+1}) and QC(b_{i+1})."""

    def __init__(self, world: World, roots: Sequence[bytes], payloads: Sequence[bytes] | None = None,
                 first_round: int = 1) -> None:
        self.world = world
        parent = world.genesis
        qc = world.genesis_qc
        self.blocks: list[Block] = []
        self.qcs: list[QuorumCert] = []
        for i, root in enumerate([*roots, EMPTY_ROOT]):
            payload = payloads[i] if payloads is not None and i < len(payloads) else b""
            rnd = first_round + i
            block = Block(rnd, parent.height + 1, qc, rnd % world.n, payload, root)
            qc = world.qc(block)
            self.blocks.append(block)
            self.qcs.append(qc)
            parent = block

    def commit(self, i: int) -> CommitProof:
        return CommitProof((self.blocks[i].header(), self.blocks[i + 1].header()), self.qcs[i + 1])

    def height(self, i: int) -> int:
        return self.blocks[i].height


def forged_qc(world: World, block: Block, how: str) -> QuorumCert:
    """A certificate for ``block`` that must not verify."""
    q = world.committee.quorum
    if how == "insufficient":
        return world.qc(block, voters=list(range(q - 1)))
    if how == "empty":
        return QuorumCert(block.round, block.id, ())
    if how == "wrong_signer":  # replica 3's signature filed under replica 0
        votes = [(v, world.vote(v, block.round, block.id).signature) for v in range(q)]
        votes[0] = (0, world.vote(world.n - 1, block.round, block.id).signature)
        return QuorumCert(block.round, block.id, tuple(votes))
    if how == "other_chain":
        votes = [(v, world.vote(v, block.round, block.id, chain_id="other-chain").signature) for v in range(q)]
        return QuorumCert(block.round, block.id, tuple(votes))
    if how == "other_keys":
        other = World.make(world.n, chain_id=world.chain_id + "-impostor")
        votes = [(v, other.signer(v, world.chain_id).sign(SignatureKind.VOTE, block.round, block.id))
                 for v in range(q)]
        return QuorumCert(block.round, block.id, tuple(votes))
    if how == "other_round":  # real signatures for the block, but over another round
        votes = [(v, world.vote(v, block.round + 7, block.id).signature) for v in range(q)]
        return QuorumCert(block.round, block.id, tuple(votes))
    raise ValueError(how)


FORGERIES = ("insufficient", "empty", "wrong_signer", "other_chain", "other_keys", "other_round")


def evidence_of(world: World, offender: int, rnd: int, tag: bytes = b"", *, valid: bool = True) -> Evidence:
    """A double vote by ``offender`` in ``rnd`` (``valid=False``: the second signature is another
    replica's, so it does not verify)."""
    from consensus.encoding import hash_bytes

    a = hash_bytes(b"ev-a" + tag + bytes([offender]) + rnd.to_bytes(8, "big"))
    b = hash_bytes(b"ev-b" + tag + bytes([offender]) + rnd.to_bytes(8, "big"))
    sa = world.vote(offender, rnd, a).signature
    signer_b = offender if valid else (offender + 1) % world.n
    sb = world.vote(signer_b, rnd, b).signature
    return Evidence.of(EvidenceKind.DOUBLE_VOTE, offender, rnd, (a, sa), (b, sb))
