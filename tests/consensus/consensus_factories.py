"""Builders for signed protocol objects in tests: a committee with deterministic keys and helpers
that sign as any member (including forgeries for negative tests)."""

from __future__ import annotations

from dataclasses import dataclass

from consensus.committee import Committee
from consensus.crypto import KeyPair, SignatureKind, Signer, Verifier
from consensus.encoding import hash_bytes
from consensus.messages import (
    Block,
    Proposal,
    QuorumCert,
    Timeout,
    TimeoutCert,
    Vote,
    genesis_block,
)
from consensus.validation import timeout_payload

CHAIN = "ordo-test"


@dataclass
class World:
    chain_id: str
    keys: list[KeyPair]
    committee: Committee

    @classmethod
    def make(cls, n: int = 4, chain_id: str = CHAIN) -> World:
        keys = [KeyPair.from_seed(f"{chain_id}/{i}".encode()) for i in range(n)]
        return cls(chain_id, keys, Committee(chain_id, tuple(k.public for k in keys)))

    @property
    def n(self) -> int:
        return len(self.keys)

    @property
    def genesis(self) -> Block:
        return genesis_block(self.chain_id)

    @property
    def genesis_qc(self) -> QuorumCert:
        return QuorumCert(0, self.genesis.id, ())

    def signer(self, i: int, chain_id: str | None = None) -> Signer:
        return Signer(chain_id or self.chain_id, i, self.keys[i])

    def verifier(self) -> Verifier:
        return Verifier(self.committee)

    def vote(self, i: int, round: int, block_id: bytes, chain_id: str | None = None) -> Vote:
        sig = self.signer(i, chain_id).sign(SignatureKind.VOTE, round, block_id)
        return Vote(round, block_id, i, sig)

    def qc(self, block: Block, voters: list[int] | None = None) -> QuorumCert:
        voters = list(range(self.committee.quorum)) if voters is None else voters
        votes = sorted((v, self.vote(v, block.round, block.id).signature) for v in voters)
        return QuorumCert(block.round, block.id, tuple(votes))

    def block(self, round: int, parent: Block, qc: QuorumCert | None = None, author: int | None = None,
              payload: bytes = b"") -> Block:
        qc = qc if qc is not None else (self.genesis_qc if parent.height == 0 else self.qc(parent))
        author = round % self.n if author is None else author
        return Block(round, parent.height + 1, qc, author, payload, hash_bytes(payload))

    def proposal(self, block: Block, tc: TimeoutCert | None = None, signer: int | None = None) -> Proposal:
        who = block.author if signer is None else signer
        sig = self.signer(who).sign(SignatureKind.PROPOSAL, block.round, block.id)
        return Proposal(block, tc, sig)

    def timeout(self, i: int, round: int, high_qc: QuorumCert, tc: TimeoutCert | None = None) -> Timeout:
        sig = self.signer(i).sign(SignatureKind.TIMEOUT, round, timeout_payload(high_qc.round))
        return Timeout(round, high_qc, i, sig, tc)

    def tc(self, round: int, high_qcs: dict[int, QuorumCert]) -> TimeoutCert:
        entries = []
        for i, hqc in sorted(high_qcs.items()):
            sig = self.signer(i).sign(SignatureKind.TIMEOUT, round, timeout_payload(hqc.round))
            entries.append((i, hqc.round, sig))
        high = max(high_qcs.values(), key=lambda q: q.round)
        return TimeoutCert(round, high, tuple(entries))

    def chain(self, rounds: list[int]) -> list[Block]:
        """Blocks at the given rounds, each extending the previous, certified by quorums."""
        blocks: list[Block] = []
        parent = self.genesis
        for r in rounds:
            block = self.block(r, parent)
            blocks.append(block)
            parent = block
        return blocks
