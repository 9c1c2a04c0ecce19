"""Test vectors for docs/PROTOCOL.md, built with ordo's own code from fixed test keys.

``python tests/protocol_vectors.py`` rewrites docs/vectors/*.json; tests/test_protocol_vectors.py
checks that the code still produces exactly these files and that an independent verifier, written
from PROTOCOL.md alone, accepts them. Keys come from fixed seeds and Ed25519 signatures are
deterministic, so every byte is reproducible.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from consensus.commit_proof import CommitProof
from consensus.committee import Committee
from consensus.crypto import KeyPair, SignatureKind, Signer, signing_bytes
from consensus.encoding import pack
from consensus.messages import Block, QuorumCert, genesis_block, genesis_qc
from consensus.validation import timeout_payload
from sequencing.rollup.block_tree import BlockTree
from sequencing.rollup.chunks import CHUNK_TXS
from sequencing.rollup.nmt import EMPTY_ROOT, NamespacedMerkleTree

CHAIN_ID = "ordo-vectors"
N = 4
VECTORS_DIR = Path(__file__).resolve().parent.parent / "docs" / "vectors"

LEAVES: list[tuple[int, bytes]] = [
    (3, b"alpha"), (3, b"beta"), (7, b"gamma"), (7, b"delta"), (7, b"epsilon"), (9, b"zeta"),
]
INCLUDED_NAMESPACE = 7
ABSENT_NAMESPACE = 5
MULTI_INDICES = (1, 4)

# block 1's transactions, as slices (section 12): rollup 7's slice is two chunks (section 13.1)
SLICES: tuple[tuple[int, tuple[bytes, ...]], ...] = (
    (3, (b"alpha", b"beta")),
    (7, (b"gamma", b"delta", b"epsilon", *(b"tx-%03d" % k for k in range(3, CHUNK_TXS + 6)))),
    (9, (b"zeta",)),
)
BUNDLE_POSITIONS = (1, 2 + CHUNK_TXS + 1, 2 + CHUNK_TXS + 6)  # beta; rollup 7's 66th (chunk 1); zeta


def _keys() -> list[KeyPair]:
    return [KeyPair.from_seed(f"vector-replica-{i}".encode()) for i in range(N)]


def _signers() -> list[Signer]:
    return [Signer(CHAIN_ID, i, key) for i, key in enumerate(_keys())]


def _qc(block: Block, signers: list[Signer], voters: tuple[int, ...]) -> QuorumCert:
    votes = tuple((v, signers[v].sign(SignatureKind.VOTE, block.round, block.id)) for v in voters)
    return QuorumCert(block.round, block.id, votes)


def _header_json(block: Block) -> dict[str, Any]:
    h = block.header()
    return {
        "round": h.round, "height": h.height, "parent_id": h.parent_id.hex(),
        "parent_round": h.parent_round, "author": h.author, "payload_hash": h.payload_hash.hex(),
        "data_root": h.data_root.hex(),
    }


def committee_vector() -> dict[str, Any]:
    keys = _keys()
    committee = Committee(CHAIN_ID, tuple(k.public for k in keys))
    return {
        "about": "the committee every other vector is signed by; private keys are test keys only",
        "chain_id": CHAIN_ID,
        "quorum": committee.quorum,
        "replicas": [
            {"id": i, "private_key": k.private_bytes().hex(), "public_key": k.public.hex()}
            for i, k in enumerate(keys)
        ],
        "genesis": {
            "id": genesis_block(CHAIN_ID).id.hex(),
            "data_root": genesis_block(CHAIN_ID).data_root.hex(),
            "header_wire": pack(genesis_block(CHAIN_ID).header().to_wire()).hex(),
        },
    }


def _chain() -> tuple[list[Block], list[QuorumCert]]:
    """Genesis <- B1 (round 1) <- B2 (round 2) <- B3 (round 3), each certified by 0, 1, 2."""
    signers = _signers()
    root = BlockTree(SLICES).root
    payload = b"vector payload: opaque to consensus"
    blocks: list[Block] = []
    qcs: list[QuorumCert] = []
    qc = genesis_qc(CHAIN_ID)
    for r in (1, 2, 3):
        block = Block(r, r, qc, r % N, payload if r == 1 else b"", root if r == 1 else EMPTY_ROOT)
        qc = _qc(block, signers, (0, 1, 2))
        blocks.append(block)
        qcs.append(qc)
    return blocks, qcs


def header_vector() -> dict[str, Any]:
    blocks, _ = _chain()
    b1 = blocks[0]
    wire = pack(b1.header().to_wire())
    return {
        "about": "block 1's header: the block id is blake2b-256(header_wire) personalised 'ordo/block'",
        "block_wire": pack(b1.to_wire()).hex(),
        "payload": b1.payload.hex(),
        "header": _header_json(b1),
        "header_wire": wire.hex(),
        "personalisation": b"ordo/block".ljust(16, b"\0").hex(),
        "block_id": b1.id.hex(),
    }


def signature_vector() -> dict[str, Any]:
    blocks, _ = _chain()
    b1 = blocks[0]
    signers = _signers()
    vote_msg = signing_bytes(CHAIN_ID, SignatureKind.VOTE, b1.round, b1.id)
    timeout_msg = signing_bytes(CHAIN_ID, SignatureKind.TIMEOUT, 2, timeout_payload(b1.round))
    return {
        "about": "Ed25519 over msgpack([b'ordo/sig/v1' (bin), chain_id (str), kind (str), round, payload (bin)])",
        "vote": {
            "signer": 1, "round": b1.round, "block_id": b1.id.hex(),
            "signing_bytes": vote_msg.hex(),
            "signature": signers[1].sign(SignatureKind.VOTE, b1.round, b1.id).hex(),
        },
        "timeout": {
            "signer": 2, "round": 2, "high_qc_round": b1.round,
            "signing_bytes": timeout_msg.hex(),
            "signature": signers[2].sign(SignatureKind.TIMEOUT, 2, timeout_payload(b1.round)).hex(),
        },
    }


def nmt_vector() -> dict[str, Any]:
    tree = NamespacedMerkleTree(LEAVES)
    return {
        "about": "namespaced Merkle tree over leaves already sorted by namespace (rollup id)",
        "leaves": [{"namespace": ns, "data": data.hex()} for ns, data in LEAVES],
        "data_root": tree.root.hex(),
        "empty_root": EMPTY_ROOT.hex(),
        "inclusion": {
            "namespace": INCLUDED_NAMESPACE,
            "data": [d.hex() for d in tree.leaves_of(INCLUDED_NAMESPACE)],
            "proof": tree.prove_namespace(INCLUDED_NAMESPACE).to_json(),
        },
        "absence": {
            "namespace": ABSENT_NAMESPACE,
            "proof": tree.prove_namespace(ABSENT_NAMESPACE).to_json(),
        },
        "multi": {
            "indices": list(MULTI_INDICES),
            "proof": tree.prove_leaves(MULTI_INDICES).to_json(),
        },
    }


def commit_proof_vector() -> dict[str, Any]:
    """Block 1 is committed: B2 has round(B1) + 1 and QC(B2) exists (2-chain)."""
    blocks, qcs = _chain()
    proof = CommitProof((blocks[0].header(), blocks[1].header()), qcs[1])
    tree = BlockTree(SLICES)
    return {
        "about": "commit proof of block 1 (headers [B1, B2] + QC(B2)), whose data_root is over the chunks "
                 "of its slices, and a slice proof, an absence proof and a bundle proof as the API serves them",
        "block_id": blocks[0].id.hex(),
        "chunk_txs": CHUNK_TXS,
        "slices": [{"rollup_id": r, "transactions": [p.hex() for p in ps]} for r, ps in SLICES],
        "commit_proof_wire": pack(proof.to_wire()).hex(),
        "slice_proof": tree.prove_slice(INCLUDED_NAMESPACE, blocks[0].height, proof).to_json(),
        "absence_proof": tree.prove_slice(ABSENT_NAMESPACE, blocks[0].height, proof).to_json(),
        "bundle_proof": tree.prove_bundle(BUNDLE_POSITIONS, blocks[0].height, proof).to_json(),
    }


def build_vectors() -> dict[str, dict[str, Any]]:
    return {
        "committee.json": committee_vector(),
        "header.json": header_vector(),
        "signatures.json": signature_vector(),
        "nmt.json": nmt_vector(),
        "commit_proof.json": commit_proof_vector(),
    }


def render(vector: dict[str, Any]) -> str:
    return json.dumps(vector, indent=2, sort_keys=True) + "\n"


def main() -> int:
    VECTORS_DIR.mkdir(parents=True, exist_ok=True)
    for name, vector in build_vectors().items():
        (VECTORS_DIR / name).write_text(render(vector))
        print(f"wrote {VECTORS_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

