"""A commit proof's headers must be a parent chain by id, not only by round: otherwise any block
of the same round as a committed one (a sibling, e.g. an equivocating leader's second proposal)
gets a valid-looking commit proof from the real block's child and QC. Kills the mutant
`commit-proof-not-linked` (tests/mutation/catalogue.py), which survived the whole suite."""

from __future__ import annotations

import pytest
from consensus_factories import World

from consensus.commit_proof import CommitProof, verify_commit_proof
from consensus.errors import InvalidMessage

W = World.make()


def test_a_sibling_of_the_committed_block_gets_no_commit_proof() -> None:
    b1, b2, b3 = W.chain([1, 2, 3])
    sibling = W.block(1, W.genesis, payload=b"the leader's other proposal")
    assert sibling.round == b1.round and sibling.id != b1.id
    genesis = W.genesis.id
    verify_commit_proof(CommitProof((b1.header(), b2.header()), W.qc(b2)), b1.id, W.verifier(), genesis)
    with pytest.raises(InvalidMessage, match="parent chain"):
        verify_commit_proof(CommitProof((sibling.header(), b2.header()), W.qc(b2)), sibling.id,
                            W.verifier(), genesis)
    with pytest.raises(InvalidMessage, match="parent chain"):
        verify_commit_proof(CommitProof((sibling.header(), b2.header(), b3.header()), W.qc(b3)), sibling.id,
                            W.verifier(), genesis)
