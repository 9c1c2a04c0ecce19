"""One honest replica against three Byzantine peers that sign whatever they like: random
sequences of proposals, votes, timeouts, fetch answers and sync answers built from a pool of honest,
forked, malformed and rewritten (forged-QC) blocks and certificates. Whatever arrives, no exception
escapes the core, and everything it keeps or hands out verifies: its high QC, its highest TC, every
block in its tree, and every commit proof it emits, at consecutive heights."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

from consensus_factories import World
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from consensus.actions import Action, Commit
from consensus.commit_proof import CommitProof
from consensus.core import Replica
from consensus.crypto import SignatureKind, signing_bytes
from consensus.encoding import hash_bytes
from consensus.leader import RoundRobin
from consensus.messages import Block, QuorumCert, TimeoutCert
from consensus.validation import timeout_payload

W = World.make(4)
G = W.genesis.id
BAD_SIG = b"\x55" * 64


def forged(qc: QuorumCert) -> QuorumCert:
    return QuorumCert(qc.round, qc.block_id, tuple((v, BAD_SIG) for v, _ in qc.votes))


CHAIN = W.chain([1, 2, 3, 4, 5, 6, 7])
FORK3 = W.block(3, CHAIN[0], payload=b"fork")  # needs a TC for round 2
FORK4 = W.block(4, FORK3)
MALFORMED = Block(5, 9, W.qc(CHAIN[3]), 1, b"", hash_bytes(b""))  # wrong height
REWRITTEN = [replace(b, qc=forged(b.qc)) for b in CHAIN[1:]]  # same ids, forged QCs
BLOCKS = [*CHAIN, FORK3, FORK4, MALFORMED, *REWRITTEN]
GOOD_QCS = [W.genesis_qc, *(W.qc(b) for b in (*CHAIN, FORK3, FORK4))]
QCS = [*GOOD_QCS, *(forged(q) for q in GOOD_QCS[1:4]), *(W.qc(b, voters=[1, 2]) for b in CHAIN[:3])]


TC_KINDS = ("none", "good", "bad-signatures", "under-quorum", "forged-high-qc")


def _tcs() -> dict[tuple[int, str], TimeoutCert | None]:
    """For each round, a good TC and forgeries of it."""
    tcs: dict[tuple[int, str], TimeoutCert | None] = {}
    for r in range(0, 10):
        tcs[r, "none"] = None
        high = max((q for q in GOOD_QCS if q.round < r - 1), key=lambda q: q.round, default=W.genesis_qc)
        tc = W.tc(r, {1: high, 2: W.genesis_qc, 3: W.genesis_qc})
        tcs[r, "good"] = tc
        tcs[r, "bad-signatures"] = replace(tc, entries=tuple((a, q, BAD_SIG) for a, q, _ in tc.entries))
        tcs[r, "under-quorum"] = replace(tc, entries=tc.entries[:2])
        tcs[r, "forged-high-qc"] = replace(tc, high_qc=forged(tc.high_qc)) if high.round else tc
    return tcs


TCS = _tcs()
PROOFS = {(i, kind): CommitProof((CHAIN[i].header(), CHAIN[i + 1].header()), qc)
          for i in range(len(CHAIN) - 1)
          for kind, qc in (("good", W.qc(CHAIN[i + 1])), ("forged", forged(W.qc(CHAIN[i + 1]))))}


# -- an oracle independent of consensus.validation (a mutant there must not blind the check) -------

KEYS = [Ed25519PublicKey.from_public_bytes(k.public) for k in W.keys]


def signed(signer: int, kind: SignatureKind, round: int, payload: bytes, sig: bytes) -> bool:
    try:
        KEYS[signer].verify(sig, signing_bytes(W.chain_id, kind, round, payload))
    except InvalidSignature:
        return False
    return True


def sound_qc(qc: QuorumCert) -> bool:
    if qc.round == 0:
        return qc == W.genesis_qc
    voters = [v for v, _ in qc.votes]
    return (len(set(voters)) == len(voters) >= 3 and all(0 <= v < 4 for v in voters)
            and all(signed(v, SignatureKind.VOTE, qc.round, qc.block_id, s) for v, s in qc.votes))


def sound_tc(tc: TimeoutCert) -> bool:
    authors = [a for a, _, _ in tc.entries]
    return (len(set(authors)) == len(authors) >= 3 and all(0 <= a < 4 for a in authors)
            and all(signed(a, SignatureKind.TIMEOUT, tc.round, timeout_payload(q), s)
                    for a, q, s in tc.entries)
            and tc.high_qc.round == max(q for _, q, _ in tc.entries) and sound_qc(tc.high_qc))


def sound_proof(proof: CommitProof, block: Block) -> bool:
    h = proof.headers
    return (len(h) >= 2 and h[0].id == block.id
            and all(c.parent_id == p.id and c.parent_round == p.round and c.height == p.height + 1
                    for p, c in itertools.pairwise(h))
            and h[-1].round == h[-2].round + 1 and proof.qc.block_id == h[-1].id
            and proof.qc.round == h[-1].round and proof.qc.round > 0 and sound_qc(proof.qc))


idx = st.integers
inputs = st.one_of(
    st.tuples(st.just("proposal"), idx(0, len(BLOCKS) - 1), st.sampled_from(TC_KINDS), st.booleans()),
    st.tuples(st.just("vote"), idx(1, 3), idx(0, len(BLOCKS) - 1)),
    st.tuples(st.just("timeout"), idx(1, 3), idx(1, 9), idx(0, len(QCS) - 1), st.sampled_from(TC_KINDS)),
    st.tuples(st.just("blocks"), idx(1, 3), st.lists(idx(0, len(BLOCKS) - 1), min_size=1, max_size=4)),
    st.tuples(st.just("synced"), idx(1, 4), st.sampled_from(["good", "forged"]),
              st.sets(idx(0, 3), max_size=2)),
    st.tuples(st.just("timer"), idx(1, 9)),
    st.tuples(st.just("verified"), idx(0, len(BLOCKS) - 1), st.booleans()),
    st.tuples(st.just("ready"), idx(1, 9)),
)


def feed(r: Replica, item: tuple[Any, ...]) -> list[Action]:
    kind, *args = item
    if kind == "proposal":
        block, honest = BLOCKS[args[0]], args[2]
        tc = TCS[block.round - 1, args[1]]
        return r.on_message(block.author, W.proposal(block, tc, None if honest else (block.author + 1) % 4))
    if kind == "vote":
        block = BLOCKS[args[1]]
        return r.on_message(args[0], W.vote(args[0], block.round, block.id))
    if kind == "timeout":
        return r.on_message(args[0], W.timeout(args[0], args[1], QCS[args[2]], TCS[args[1] - 1, args[3]]))
    if kind == "blocks":
        return r.on_blocks(args[0], [BLOCKS[i] for i in args[1]])
    if kind == "synced":  # a chain right above our root, sometimes with rewritten QCs inside
        length, proof_kind, rewrite = args
        start = r.committed.height
        end = min(start + length, len(CHAIN) - 1)
        if end <= start:
            return []
        chain = [REWRITTEN[i - 1] if i - start in rewrite and i > 0 else CHAIN[i] for i in range(start, end)]
        return r.on_synced(chain, PROOFS[end - 1, proof_kind])
    if kind == "timer":
        return r.on_timeout(args[0])
    if kind == "verified":
        return r.on_payload_verified(BLOCKS[args[0]].id, args[1])
    return r.on_payload_ready(args[0], b"", hash_bytes(b""))


@given(st.lists(inputs, max_size=30))
def test_no_input_escapes_or_leaves_an_unverifiable_certificate_behind(items: list[tuple[Any, ...]]) -> None:
    r = Replica(signer=W.signer(0), verifier=W.verifier(), leaders=RoundRobin(4))
    r.start()
    height, tip = 0, W.genesis.id
    for item in items:
        out = feed(r, item)
        assert sound_qc(r.high_qc), item
        assert r.last_tc is None or sound_tc(r.last_tc), item
        for block_id in r.tree._blocks:
            block = r.tree.get(block_id)
            assert block is not None and (block.height == 0 or sound_qc(block.qc)), item
        for commit in (a for a in out if isinstance(a, Commit)):
            assert sound_proof(commit.proof, commit.block), item
            assert commit.block.height == height + 1 and commit.block.parent_id == tip
            height, tip = commit.block.height, commit.block.id
        assert r.committed.id == tip
