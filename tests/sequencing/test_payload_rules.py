"""Leader ``build_payload`` and voter ``check_payload``: what a leader builds obeys every rule and is
accepted; each rule violation is rejected with PayloadRejected naming the rule; verdicts depend only
on the pools' contents. Teeth: wrong leaders (ignoring exclusions, liveness or limits) are caught."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from seq_helpers import World, evidence_of

from consensus.encoding import hash_bytes
from consensus.messages import Block, Evidence
from sequencing.config import Limits
from sequencing.replica.evidence_pool import EvidencePool
from sequencing.replica.payload_rules import Ancestry, PayloadRejected, build_payload, check_payload
from sequencing.rollup.batches import Batch, BatchPool
from sequencing.rollup.block_content import BlockContent, BlockPayload, assemble
from sequencing.rollup.transactions import Bundle, Transaction

W = World.make(4)
VERIFIER = W.verifier()
EV_SIZE = len(evidence_of(W, 0, 1).encode())
LIMITS = Limits(batch_ttl_blocks=5, block_max_batches=4, block_max_txs=12,
                evidence_max_bytes_per_block=3 * EV_SIZE + EV_SIZE // 2, evidence_max_age_rounds=20,
                batch_max_txs=12)

_EVIDENCE_CACHE: dict[tuple[int, int, bool], Evidence] = {}


def ev(offender: int, rnd: int, *, valid: bool = True) -> Evidence:
    key = (offender, rnd, valid)
    if key not in _EVIDENCE_CACHE:
        _EVIDENCE_CACHE[key] = evidence_of(W, offender, rnd, valid=valid)
    return _EVIDENCE_CACHE[key]


def make_batch(author: int, seq: int, created: int, ntx: int, *, bundle: bool = False) -> Batch:
    txs = [Transaction((author + k) % 3, f"{author}/{seq}/{created}/{k}".encode()) for k in range(ntx)]
    items: tuple[Transaction | Bundle, ...] = (Bundle(tuple(txs)),) if bundle and ntx >= 2 else tuple(txs)
    return Batch.of(author, seq, created, items)


def block_for(height: int, rnd: int, payload: BlockPayload, root: bytes) -> Block:
    return Block(rnd, height, W.genesis_qc, rnd % W.n, payload.encode(), root)


@dataclass
class Scenario:
    height: int
    round: int
    batches: list[Batch]  # arrival order
    ancestor_batches: set[bytes]
    committed: set[bytes]
    evidence: list[Evidence]  # arrival order
    ancestor_evidence: set[bytes]
    committed_evidence: list[Evidence]

    def batch_pool(self, order: Sequence[Batch] | None = None) -> BatchPool:
        pool = BatchPool(LIMITS.batch_ttl_blocks)
        for b in order if order is not None else self.batches:
            pool.add(b)
        pool.mark_committed([d for d in self.committed if d in pool], self.height - 1)
        return pool

    def evidence_pool(self, order: Sequence[Evidence] | None = None) -> EvidencePool:
        pool = EvidencePool(LIMITS)
        for e in [*self.committed_evidence, *(order if order is not None else self.evidence)]:
            pool.add(e)
        pool.mark_committed(self.committed_evidence)
        return pool

    @property
    def ancestry(self) -> Ancestry:
        return Ancestry(frozenset(self.ancestor_batches), frozenset(self.ancestor_evidence))

    def build(self, pool: BatchPool | None = None, evidence: EvidencePool | None = None
              ) -> tuple[BlockPayload, BlockContent]:
        return build_payload(height=self.height, round=self.round, ancestry=self.ancestry,
                             batches=pool or self.batch_pool(), evidence=evidence or self.evidence_pool(),
                             limits=LIMITS)

    def check(self, payload: BlockPayload, bodies: Sequence[Batch], root: bytes | None = None, *,
              pool: EvidencePool | None = None, committed: set[bytes] | None = None) -> BlockContent:
        if root is None:
            root = assemble(bodies).data_root
        done = self.committed if committed is None else committed
        return check_payload(block_for(self.height, self.round, payload, root), payload, bodies,
                             ancestry=self.ancestry, batch_committed=done.__contains__,
                             evidence=pool or self.evidence_pool(), verifier=VERIFIER, limits=LIMITS)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    height = draw(st.integers(1, 30))
    rnd = height + draw(st.integers(0, 6))
    batches = []
    for seq in range(draw(st.integers(0, 10))):
        created = draw(st.integers(max(0, height - 9), height + 1))
        batches.append(make_batch(draw(st.integers(0, 3)), seq, created, draw(st.integers(1, 6)),
                                  bundle=draw(st.booleans())))
    digests = [b.digest for b in batches]
    ancestors = set(draw(st.lists(st.sampled_from(digests), max_size=3))) if digests else set()
    committed = set(draw(st.lists(st.sampled_from(digests), max_size=3))) if digests else set()
    evidence = [ev(draw(st.integers(0, 3)), r) for r in
                draw(st.lists(st.integers(max(1, rnd - 28), rnd), max_size=6, unique=True))]
    evidence = list({e.id: e for e in evidence}.values())
    anc_ev = {e.id for e in evidence if draw(st.integers(0, 4)) == 0}
    committed_ev = [e for e in evidence if e.id not in anc_ev and draw(st.integers(0, 5)) == 0]
    pending_ev = [e for e in evidence if e not in committed_ev]
    return Scenario(height, rnd, batches, ancestors, committed, pending_ev, anc_ev, committed_ev)


def check_built(s: Scenario, payload: BlockPayload, content: BlockContent,
                bodies: Sequence[Batch]) -> None:
    """AssertionError unless a leader's payload obeys every rule (and is the greedy choice)."""
    digests = list(payload.batches)
    assert [b.digest for b in bodies] == digests
    assert len(set(digests)) == len(digests), "a batch twice"
    assert not set(digests) & s.ancestor_batches, "a batch of an ancestor"
    assert not set(digests) & s.committed, "a committed batch"
    assert all(b.live_at(s.height, LIMITS.batch_ttl_blocks) for b in bodies), "a batch not live"
    assert len(digests) <= LIMITS.block_max_batches, "too many batches"
    assert sum(b.tx_count for b in bodies) <= LIMITS.block_max_txs, "too many txs"
    eligible = [b for b in s.batches if b.digest not in s.ancestor_batches | s.committed
                and b.live_at(s.height, LIMITS.batch_ttl_blocks)]
    order = {b.digest: k for k, b in enumerate(eligible)}
    assert [order[d] for d in digests] == sorted(order[d] for d in digests), "oldest first"
    if len(digests) < LIMITS.block_max_batches:  # greedy: every skipped eligible batch did not fit
        used = sum(b.tx_count for b in bodies)
        for b in eligible:
            if b.digest not in digests:
                assert used + b.tx_count > LIMITS.block_max_txs, "an eligible batch that fits was left out"
    ids = [e.id for e in payload.evidence]
    assert len(set(ids)) == len(ids), "evidence twice"
    assert not set(ids) & s.ancestor_evidence, "evidence of an ancestor"
    assert not set(ids) & {e.id for e in s.committed_evidence}, "committed evidence"
    assert all(s.round - e.round <= LIMITS.evidence_max_age_rounds for e in payload.evidence), "expired"
    assert sum(len(e.encode()) for e in payload.evidence) <= LIMITS.evidence_max_bytes_per_block
    assert content == assemble(bodies)


def bodies_of(s: Scenario, payload: BlockPayload) -> list[Batch]:
    by_digest = {b.digest: b for b in s.batches}
    return [by_digest[d] for d in payload.batches]


# -- build -> check ------------------------------------------------------------------------------


@given(scenarios())
def test_leader_payload_obeys_the_rules_and_voters_accept_it(s: Scenario) -> None:
    payload, content = s.build()
    bodies = bodies_of(s, payload)
    check_built(s, payload, content, bodies)
    assert BlockPayload.decode(payload.encode()) == payload
    assert s.check(payload, bodies, content.data_root) == content


@given(scenarios(), st.randoms(use_true_random=False))
def test_verdicts_are_deterministic_across_independent_pools(s: Scenario, rnd: random.Random) -> None:
    """Two replicas holding the same batches and evidence (arrived in other orders) reach the same
    verdict on any proposal, good or bad, and select the same evidence."""
    payload, _content = s.build()
    bodies = bodies_of(s, payload)
    shuffled_ev = list(s.evidence)
    rnd.shuffle(shuffled_ev)
    pool_a, pool_b = s.evidence_pool(), s.evidence_pool(shuffled_ev)
    assert s.build(evidence=pool_b)[0].evidence == payload.evidence
    # candidate proposals: the built one, plus random (possibly bad) ones
    candidates = [(payload, bodies)]
    for _ in range(4):
        chosen = rnd.sample(s.batches, rnd.randint(0, min(len(s.batches), 6)))
        if chosen and rnd.random() < 0.3:
            chosen.append(chosen[0])
        evs = rnd.sample(s.evidence + s.committed_evidence, rnd.randint(0, len(s.evidence + s.committed_evidence)))
        candidates.append((BlockPayload(tuple(b.digest for b in chosen), tuple(evs)), chosen))

    def verdict(p: BlockPayload, b: list[Batch], pool: EvidencePool) -> str:
        try:
            return s.check(p, b, pool=pool).data_root.hex()
        except PayloadRejected as exc:
            return f"rejected: {exc}"

    for p, b in candidates:
        assert verdict(p, b, pool_a) == verdict(p, b, pool_b)


@given(scenarios())
def test_build_is_a_function_of_the_pool_contents(s: Scenario) -> None:
    a = s.build(s.batch_pool(), s.evidence_pool())
    b = s.build(s.batch_pool(), s.evidence_pool(list(reversed(s.evidence))))
    assert a == b


# -- each rule violation rejected ----------------------------------------------------------------


def base() -> tuple[Scenario, BlockPayload, list[Batch]]:
    """A scenario whose leader payload has 3 batches and 2 pieces of evidence."""
    h = 10
    batches = [make_batch(k, k, h - 2 + k % 2, 2, bundle=k == 1) for k in range(3)]
    s = Scenario(h, 40, batches, set(), set(), [ev(1, 25), ev(2, 28)], set(), [])
    payload, _ = s.build()
    assert len(payload.batches) == 3 and len(payload.evidence) == 2
    return s, payload, bodies_of(s, payload)


def test_base_accepted() -> None:
    s, payload, bodies = base()
    s.check(payload, bodies)


def test_reject_batch_in_ancestor() -> None:
    s, payload, bodies = base()
    s.ancestor_batches = {bodies[1].digest}
    with pytest.raises(PayloadRejected, match="ancestor"):
        s.check(payload, bodies)


def test_ancestry_of_blocks() -> None:
    s, payload, bodies = base()
    parent = block_for(9, 39, payload, assemble(bodies).data_root)
    foreign = Block(10, 9, W.genesis_qc, 0, b"\xc1not msgpack", hash_bytes(b""))
    anc = Ancestry.of([parent, foreign])
    assert anc.batches == frozenset(payload.batches)
    assert anc.evidence == frozenset(e.id for e in payload.evidence)
    with pytest.raises(PayloadRejected, match="ancestor"):
        check_payload(block_for(s.height, s.round, payload, assemble(bodies).data_root), payload, bodies,
                      ancestry=anc, batch_committed=lambda d: False, evidence=s.evidence_pool(),
                      verifier=VERIFIER, limits=LIMITS)


def test_reject_committed_batch() -> None:
    s, payload, bodies = base()
    with pytest.raises(PayloadRejected, match="already committed"):
        s.check(payload, bodies, committed={bodies[2].digest})


@pytest.mark.parametrize("created", ["expired", "future"])
def test_reject_batch_not_live(created: str) -> None:
    s, payload, bodies = base()
    c = s.height - LIMITS.batch_ttl_blocks - 1 if created == "expired" else s.height + 1
    late = make_batch(3, 99, c, 1)
    bad = replace(payload, batches=(*payload.batches[:2], late.digest))
    with pytest.raises(PayloadRejected, match="not live"):
        s.check(bad, [*bodies[:2], late])
    edge = make_batch(3, 98, s.height - LIMITS.batch_ttl_blocks, 1)  # last live height: accepted
    s.check(replace(payload, batches=(*payload.batches[:2], edge.digest)), [*bodies[:2], edge])


def test_reject_duplicate_batch_digest() -> None:
    s, payload, bodies = base()
    bad = replace(payload, batches=(*payload.batches[:2], payload.batches[0]))
    with pytest.raises(PayloadRejected, match="twice"):
        s.check(bad, [*bodies[:2], bodies[0]])


def test_reject_too_many_batches() -> None:
    s, payload, bodies = base()
    extra = [make_batch(3, 50 + k, s.height, 1) for k in range(LIMITS.block_max_batches + 1 - len(bodies))]
    all_bodies = [*bodies, *extra]
    bad = replace(payload, batches=tuple(b.digest for b in all_bodies))
    assert sum(b.tx_count for b in all_bodies) <= LIMITS.block_max_txs
    with pytest.raises(PayloadRejected, match="batches exceed"):
        s.check(bad, all_bodies)


def test_reject_too_many_txs() -> None:
    s, payload, bodies = base()
    big = make_batch(3, 60, s.height, LIMITS.block_max_txs - sum(b.tx_count for b in bodies) + 1)
    bad = replace(payload, batches=(*payload.batches, big.digest))
    with pytest.raises(PayloadRejected, match="more than"):
        s.check(bad, [*bodies, big])
    fits = make_batch(3, 61, s.height, LIMITS.block_max_txs - sum(b.tx_count for b in bodies))
    s.check(replace(payload, batches=(*payload.batches, fits.digest)), [*bodies, fits])


@pytest.mark.parametrize("how", ["bad_signature", "outside_committee"])
def test_reject_invalid_evidence(how: str) -> None:
    s, payload, bodies = base()
    if how == "bad_signature":
        bad_ev = ev(0, 31, valid=False)
    else:
        good = ev(0, 31)
        bad_ev = replace(good, offender=W.n)
    bad = replace(payload, evidence=(*payload.evidence, bad_ev))
    with pytest.raises(PayloadRejected, match="invalid evidence"):
        s.check(bad, bodies)


def test_reject_expired_evidence() -> None:
    s, payload, bodies = base()
    old = ev(3, s.round - LIMITS.evidence_max_age_rounds - 1)
    with pytest.raises(PayloadRejected, match="expired"):
        s.check(replace(payload, evidence=(old,)), bodies)
    edge = ev(3, s.round - LIMITS.evidence_max_age_rounds)
    s.check(replace(payload, evidence=(edge,)), bodies)


@pytest.mark.parametrize("where", ["twice_in_payload", "in_ancestor", "committed"])
def test_reject_duplicate_evidence(where: str) -> None:
    s, payload, bodies = base()
    e = payload.evidence[0]
    pool = None
    bad = payload
    if where == "twice_in_payload":
        bad = replace(payload, evidence=(*payload.evidence, e))
    elif where == "in_ancestor":
        s.ancestor_evidence = {e.id}
    else:
        pool = s.evidence_pool()
        pool.mark_committed([e])
    with pytest.raises(PayloadRejected, match="twice"):
        s.check(bad, bodies, pool=pool)


def test_reject_evidence_over_the_byte_cap() -> None:
    s, payload, bodies = base()
    many = tuple(ev(k % 4, 30 + k) for k in range(4))
    assert sum(len(e.encode()) for e in many) > LIMITS.evidence_max_bytes_per_block
    with pytest.raises(PayloadRejected, match="bytes of evidence exceed"):
        s.check(replace(payload, evidence=many), bodies)
    s.check(replace(payload, evidence=many[:3]), bodies)


@pytest.mark.parametrize("how", ["other_root", "reordered_bodies", "dropped_batch_root", "empty_root"])
def test_reject_data_root_mismatch(how: str) -> None:
    s, payload, bodies = base()
    if how == "other_root":
        root = hash_bytes(b"not the root")
    elif how == "reordered_bodies":
        root = assemble(list(reversed(bodies))).data_root
    elif how == "dropped_batch_root":
        root = assemble(bodies[:-1]).data_root
    else:
        root = assemble([]).data_root
    assert root != assemble(bodies).data_root
    with pytest.raises(PayloadRejected, match="data_root"):
        s.check(payload, bodies, root)


# -- teeth: wrong leaders are caught -------------------------------------------------------------


def _wrong_select(kind: str) -> Callable[..., list[Batch]]:
    def select(self: BatchPool, *, exclude: set[bytes], height: int, max_batches: int, max_txs: int,
               skip: Callable[[Batch], bool] | None = None) -> list[Batch]:
        assert skip is None  # an honest leader skips nothing
        out: list[Batch] = []
        for b in self._pending.values():
            if kind != "ignores_exclude" and b.digest in exclude:
                continue
            if kind != "ignores_liveness" and not b.live_at(height, self.ttl):
                continue
            if kind != "ignores_tx_limit" and sum(x.tx_count for x in out) + b.tx_count > max_txs:
                continue
            out.append(b)
            if kind != "ignores_batch_limit" and len(out) >= max_batches:
                break
        if kind == "newest_first":
            out.reverse()
        return out
    return select


def _wrong_scenarios(seed: int, count: int) -> list[Scenario]:
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        h = rnd.randint(1, 30)
        batches = [make_batch(rnd.randint(0, 3), q, rnd.randint(max(0, h - 9), h + 1), rnd.randint(1, 6))
                   for q in range(rnd.randint(0, 10))]
        digests = [b.digest for b in batches]
        out.append(Scenario(h, h + 1, batches, set(rnd.sample(digests, min(len(digests), rnd.randint(0, 2)))),
                            set(), [], set(), []))
    return out


@pytest.mark.parametrize("kind", ["ignores_exclude", "ignores_liveness", "ignores_tx_limit",
                                  "ignores_batch_limit", "newest_first"])
def test_teeth_wrong_leaders_are_caught(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BatchPool, "select", _wrong_select(kind))
    caught_by_rules = caught_by_voter = 0
    for s in _wrong_scenarios(5, 150):
        payload, content = s.build()
        bodies = bodies_of(s, payload)
        try:
            check_built(s, payload, content, bodies)
        except AssertionError:
            caught_by_rules += 1
        try:
            s.check(payload, bodies, content.data_root)
        except PayloadRejected:
            caught_by_voter += 1
    assert caught_by_rules > 0
    if kind != "newest_first":  # order is a leader's choice the voters do not police
        assert caught_by_voter > 0


def test_teeth_lax_voter_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A voter that skipped the ancestor check would accept the ancestor violation above."""
    s, payload, bodies = base()
    s.ancestor_batches = {bodies[0].digest}
    lax = replace(s, ancestor_batches=set())
    lax.check(payload, bodies)  # what the lax voter sees: accepted
    with pytest.raises(PayloadRejected):
        s.check(payload, bodies)


# -- a leader never builds a payload every voter rejects ------------------------------------------


def test_leader_skips_a_batch_larger_than_a_block() -> None:
    """A batch over block_max_txs (possible only with limits the config file refuses) is never
    proposed: proposing it would make every voter reject the block, round after round."""
    limits = Limits(block_max_txs=4)
    big, small = make_batch(0, 0, 0, 5), make_batch(1, 0, 0, 3)
    pool = BatchPool(limits.batch_ttl_blocks)
    pool.add(big)
    pool.add(small)
    payload, content = build_payload(height=1, round=1, ancestry=Ancestry(frozenset(), frozenset()),
                                     batches=pool, evidence=EvidencePool(limits), limits=limits)
    assert payload.batches == (small.digest,)
    check_payload(block_for(1, 1, payload, content.data_root), payload, [small],
                  ancestry=Ancestry(frozenset(), frozenset()), batch_committed=lambda d: False,
                  evidence=EvidencePool(limits), verifier=VERIFIER, limits=limits)


def test_config_refuses_batches_that_cannot_fit_a_block(tmp_path: Path) -> None:
    from sequencing.config import ConfigError, parse_config

    base = {"cluster": {"chain_id": "c"}, "replica": [{"id": 0, "peer_port": 1, "api_port": 2}]}
    with pytest.raises(ConfigError, match="batch_max_txs"):
        parse_config({**base, "limits": {"block_max_txs": 1000, "batch_max_txs": 2000}}, tmp_path / "c.toml")
    with pytest.raises(ConfigError, match="max_bundle_txs"):
        parse_config({**base, "limits": {"batch_max_txs": 10, "max_bundle_txs": 64}}, tmp_path / "c.toml")
