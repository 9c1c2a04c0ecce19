"""docs/vectors/*.json: the code reproduces them byte for byte, and a verifier written from
docs/PROTOCOL.md alone (hashlib, msgpack and cryptography; nothing of ordo) accepts them and
rejects tampered copies. If PROTOCOL.md is not enough to write such a verifier, this file is where
it shows."""

from __future__ import annotations

import copy
import hashlib
import json
import struct
from typing import Any

import msgpack
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from protocol_vectors import VECTORS_DIR, build_vectors, render


def load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS_DIR / name).read_text())


# -- the code still produces the published vectors -------------------------------------------------


@pytest.mark.parametrize("name", sorted(build_vectors()))
def test_code_reproduces_the_published_vector(name: str) -> None:
    assert (VECTORS_DIR / name).read_text() == render(build_vectors()[name]), (
        f"docs/vectors/{name} no longer matches the code: a wire or hashing change must update "
        "PROTOCOL.md and the vectors (python tests/protocol_vectors.py) together"
    )


# -- an independent verifier, from PROTOCOL.md -----------------------------------------------------


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def h(domain: bytes, obj: Any) -> bytes:
    """PROTOCOL.md section 2: blake2b-256, personalisation = domain padded with zero bytes to 16."""
    return hashlib.blake2b(pack(obj), digest_size=32, person=domain.ljust(16, b"\0")).digest()


def header_wire(hj: dict[str, Any]) -> list[Any]:
    return [hj["round"], hj["height"], bytes.fromhex(hj["parent_id"]), hj["parent_round"], hj["author"],
            bytes.fromhex(hj["payload_hash"]), bytes.fromhex(hj["data_root"])]


def block_id(header: list[Any]) -> bytes:
    return h(b"ordo/block", header)


def signing_message(chain_id: str, kind: str, round: int, payload: bytes) -> bytes:
    return pack([b"ordo/sig/v1", chain_id, kind, round, payload])


def signature_ok(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except InvalidSignature:
        return False
    return True


# NMT (PROTOCOL.md section 13)


def nmt_h(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32, person=b"ordo/nmt/v1".ljust(16, b"\0")).digest()


def leaf(ns: int, data: bytes) -> tuple[int, int, bytes]:
    return ns, ns, nmt_h(b"\x00" + struct.pack(">I", ns) + data)


def inner(left: tuple[int, int, bytes], right: tuple[int, int, bytes]) -> tuple[int, int, bytes]:
    assert left[1] <= right[0], "children out of namespace order"
    body = (b"\x01" + struct.pack(">II", left[0], left[1]) + left[2]
            + struct.pack(">II", right[0], right[1]) + right[2])
    return left[0], right[1], nmt_h(body)


def root_of(n: int, node: tuple[int, int, bytes]) -> bytes:
    return nmt_h(b"\x02" + struct.pack(">QII", n, node[0], node[1]) + node[2])


def split(m: int) -> int:
    k = 1
    while k * 2 < m:
        k *= 2
    return k


def tree_root(leaves: list[tuple[int, bytes]]) -> bytes:
    """The data root of leaves ``(namespace, data)``, RFC 6962 shape (section 13)."""
    nodes = [leaf(ns, d) for ns, d in leaves]

    def build(lo: int, hi: int) -> tuple[int, int, bytes]:
        if hi - lo == 1:
            return nodes[lo]
        k = split(hi - lo)
        return inner(build(lo, lo + k), build(lo + k, hi))

    return root_of(len(leaves), build(0, len(leaves)))


def fold(n: int, opaque: Any, leaves: list[tuple[int, int, bytes]], nodes: list[tuple[int, int, bytes]]
         ) -> tuple[tuple[int, int, bytes], list[tuple[int, int, tuple[int, int, bytes]]]]:
    """Rebuild the root from leaves (in order) and opaque nodes (left to right)."""
    leaf_iter, node_iter = iter(leaves), iter(nodes)
    used: list[tuple[int, int, tuple[int, int, bytes]]] = []

    def walk(lo: int, hi: int) -> tuple[int, int, bytes]:
        if opaque(lo, hi):
            node = next(node_iter)
            used.append((lo, hi, node))
            return node
        if hi - lo == 1:
            return next(leaf_iter)
        k = split(hi - lo)
        return inner(walk(lo, lo + k), walk(lo + k, hi))

    top = walk(0, n)
    assert next(node_iter, None) is None and next(leaf_iter, None) is None, "unused proof items"
    return top, used


def namespace_proof_ok(root: bytes, namespace: int, datas: list[bytes], proof: dict[str, Any]) -> bool:
    n, s, e = proof["total"], proof["start"], proof["end"]
    nodes = [(lo, hi, bytes.fromhex(d)) for lo, hi, d in proof["nodes"]]
    if proof["namespace"] != namespace or len(datas) != e - s or not 0 <= s <= e <= n:
        return False
    if n == 0:
        return not nodes and root == root_of(0, (0, 0, b"\0" * 32))

    def opaque(lo: int, hi: int) -> bool:
        if s == e:  # absence: split only the subtrees that straddle position s
            return not lo < s < hi
        return hi <= s or lo >= e

    try:
        top, used = fold(n, opaque, [leaf(namespace, d) for d in datas], nodes)
    except (AssertionError, StopIteration):
        return False
    for lo, hi, node in used:
        if hi <= s and node[1] >= namespace:
            return False
        if lo >= e and node[0] <= namespace:
            return False
    return root_of(n, top) == root


def multi_proof_ok(root: bytes, leaves: list[tuple[int, bytes]], proof: dict[str, Any]) -> bool:
    n, indices = proof["total"], proof["indices"]
    nodes = [(lo, hi, bytes.fromhex(d)) for lo, hi, d in proof["nodes"]]
    wanted = set(indices)
    try:
        top, _ = fold(n, lambda lo, hi: not any(lo <= i < hi for i in wanted),
                      [leaf(ns, d) for ns, d in leaves], nodes)
    except (AssertionError, StopIteration):
        return False
    return root_of(n, top) == root


def chunk_datas(payloads: list[bytes], chunk_txs: int) -> list[bytes]:
    """Section 13.1: a slice's leaves are its payloads cut into chunks, each leaf's data msgpack of one."""
    return [pack(payloads[k:k + chunk_txs]) for k in range(0, len(payloads), chunk_txs)]


def slice_proof_ok(header: list[Any], sp: dict[str, Any], chunk_txs: int) -> bool:
    datas = chunk_datas([bytes.fromhex(t) for t in sp["transactions"]], chunk_txs)
    return header[1] == sp["height"] and namespace_proof_ok(header[6], sp["rollup_id"], datas, sp["namespace_proof"])


def bundle_proof_ok(root: bytes, bp: dict[str, Any]) -> bool:
    """Section 13.5: every bundle transaction is the claimed entry of a proven chunk of its rollup."""
    txs = [(t["rollup_id"], bytes.fromhex(t["payload"])) for t in bp["transactions"]]
    if h(b"ordo/bundle", [h(b"ordo/tx", [r, p]) for r, p in txs]).hex() != bp["bundle_id"]:
        return False
    indices = bp["leaves_proof"]["indices"]
    chunks = [[bytes.fromhex(p) for p in c] for c in bp["chunks"]]
    locations = [tuple(x) for x in bp["locations"]]
    if len(locations) != len(txs) or len(set(locations)) != len(locations) or len(chunks) != len(indices):
        return False
    namespace: dict[int, int] = {}
    for (rollup, payload), (leaf, offset) in zip(txs, locations, strict=True):
        if leaf not in indices:
            return False
        chunk = chunks[indices.index(leaf)]
        if not 0 <= offset < len(chunk) or chunk[offset] != payload or namespace.setdefault(leaf, rollup) != rollup:
            return False
    if set(namespace) != set(indices):
        return False
    return multi_proof_ok(root, [(namespace[i], pack(c)) for i, c in zip(indices, chunks, strict=True)],
                          bp["leaves_proof"])


def commit_proof_ok(proof: list[Any], committee: dict[str, Any]) -> bytes | None:
    """PROTOCOL.md section 13: returns the committed block's id, or None."""
    headers, (qc_round, qc_block, votes) = proof
    ids = [block_id(hd) for hd in headers]
    if len(headers) < 2:
        return None
    for parent, child, pid in zip(headers, headers[1:], ids, strict=False):
        if child[2] != pid or child[3] != parent[0] or child[1] != parent[1] + 1:
            return None
    if headers[-1][0] != headers[-2][0] + 1 or qc_block != ids[-1] or qc_round != headers[-1][0]:
        return None
    keys = [bytes.fromhex(r["public_key"]) for r in committee["replicas"]]
    voters = [v for v, _ in votes]
    if voters != sorted(set(voters)) or len(voters) < committee["quorum"] or qc_round == 0:
        return None
    for voter, sig in votes:
        message = signing_message(committee["chain_id"], "vote", qc_round, qc_block)
        if not 0 <= voter < len(keys) or not signature_ok(keys[voter], message, sig):
            return None
    return ids[0]


def unhex(value: Any) -> Any:
    if isinstance(value, str):
        return bytes.fromhex(value)
    if isinstance(value, list):
        return [unhex(v) for v in value]
    return value


def test_committee_keys_derive_from_the_private_keys() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    for replica in load("committee.json")["replicas"]:
        private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(replica["private_key"]))
        assert private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex() == replica["public_key"]


def test_genesis_is_derived_from_the_chain_id() -> None:
    c = load("committee.json")
    payload = c["chain_id"].encode()
    data_root = h(b"ordo/genesis", c["chain_id"])
    header = [0, 0, b"\0" * 32, 0, 0, hashlib.blake2b(payload, digest_size=32).digest(), data_root]
    assert data_root.hex() == c["genesis"]["data_root"]
    assert pack(header).hex() == c["genesis"]["header_wire"]
    assert block_id(header).hex() == c["genesis"]["id"]


def test_header_id_and_block_wire() -> None:
    v = load("header.json")
    header = header_wire(v["header"])
    assert pack(header).hex() == v["header_wire"]
    assert block_id(header).hex() == v["block_id"]
    assert v["personalisation"] == b"ordo/block".ljust(16, b"\0").hex()
    # the block's wire form [round, height, qc, author, payload, data_root] gives the same header
    r, height, qc, author, payload, data_root = msgpack.unpackb(bytes.fromhex(v["block_wire"]), raw=False)
    assert payload == bytes.fromhex(v["payload"])
    rebuilt = [r, height, qc[1], qc[0], author, hashlib.blake2b(payload, digest_size=32).digest(), data_root]
    assert block_id(rebuilt).hex() == v["block_id"]


def test_vote_and_timeout_signatures() -> None:
    c, v = load("committee.json"), load("signatures.json")
    keys = {r["id"]: bytes.fromhex(r["public_key"]) for r in c["replicas"]}
    vote = v["vote"]
    message = signing_message(c["chain_id"], "vote", vote["round"], bytes.fromhex(vote["block_id"]))
    assert message.hex() == vote["signing_bytes"]
    assert signature_ok(keys[vote["signer"]], message, bytes.fromhex(vote["signature"]))
    assert not signature_ok(keys[vote["signer"]], signing_message("other-chain", "vote", vote["round"],
                            bytes.fromhex(vote["block_id"])), bytes.fromhex(vote["signature"]))
    assert not signature_ok(keys[vote["signer"]], signing_message(c["chain_id"], "proposal", vote["round"],
                            bytes.fromhex(vote["block_id"])), bytes.fromhex(vote["signature"]))
    t = v["timeout"]
    message = signing_message(c["chain_id"], "timeout", t["round"], t["high_qc_round"].to_bytes(8, "big"))
    assert message.hex() == t["signing_bytes"]
    assert signature_ok(keys[t["signer"]], message, bytes.fromhex(t["signature"]))


def test_nmt_inclusion_completeness_absence_and_multi() -> None:
    v = load("nmt.json")
    root = bytes.fromhex(v["data_root"])
    leaves = [(x["namespace"], bytes.fromhex(x["data"])) for x in v["leaves"]]
    # the root from the leaves, RFC 6962 shape
    assert tree_root(leaves) == root
    assert root_of(0, (0, 0, b"\0" * 32)).hex() == v["empty_root"]

    inc = v["inclusion"]
    datas = [bytes.fromhex(d) for d in inc["data"]]
    assert datas == [d for ns, d in leaves if ns == inc["namespace"]]
    assert namespace_proof_ok(root, inc["namespace"], datas, inc["proof"])
    assert not namespace_proof_ok(root, inc["namespace"], datas[:-1], inc["proof"]), "a dropped leaf"
    short = dict(inc["proof"], end=inc["proof"]["end"] - 1)
    assert not namespace_proof_ok(root, inc["namespace"], datas[:-1], short), "incomplete slice"

    absent = v["absence"]
    assert namespace_proof_ok(root, absent["namespace"], [], absent["proof"])
    present_as_absent = dict(absent["proof"], namespace=inc["namespace"])
    assert not namespace_proof_ok(root, inc["namespace"], [], present_as_absent)

    multi = v["multi"]
    chosen = [leaves[i] for i in multi["indices"]]
    assert multi_proof_ok(root, chosen, multi["proof"])
    assert not multi_proof_ok(root, [leaves[0], leaves[4]], multi["proof"])


def test_commit_proof_and_slice_proof() -> None:
    c, v = load("committee.json"), load("commit_proof.json")
    wire = msgpack.unpackb(bytes.fromhex(v["commit_proof_wire"]), raw=False)
    assert commit_proof_ok(wire, c) == bytes.fromhex(v["block_id"])

    sp = v["slice_proof"]
    proof = unhex(sp["commit_proof"])
    assert proof == wire, "the JSON form is the wire form with bytes as lowercase hex"
    committed = commit_proof_ok(proof, c)
    assert committed is not None and committed.hex() == sp["block_id"]
    header = proof[0][0]
    c_txs = v["chunk_txs"]
    # the data root is over the chunks of the slices (sections 12, 13.1)
    slices = {s["rollup_id"]: [bytes.fromhex(t) for t in s["transactions"]] for s in v["slices"]}
    leaves = [(r, d) for r in sorted(slices) for d in chunk_datas(slices[r], c_txs)]
    assert len(leaves) > len(slices), "some slice has more than one chunk"
    assert tree_root(leaves) == header[6]
    assert [bytes.fromhex(t) for t in sp["transactions"]] == slices[sp["rollup_id"]]
    assert len(sp["transactions"]) > c_txs
    assert slice_proof_ok(header, sp, c_txs)
    absent = v["absence_proof"]
    assert absent["transactions"] == [] and absent["rollup_id"] not in slices
    assert slice_proof_ok(header, absent, c_txs)
    bp = v["bundle_proof"]
    assert unhex(bp["commit_proof"]) == wire and bp["block_id"] == sp["block_id"]
    assert bundle_proof_ok(header[6], bp)


def test_the_independent_verifier_rejects_tampered_slice_and_bundle_proofs() -> None:
    v = load("commit_proof.json")
    header = msgpack.unpackb(bytes.fromhex(v["commit_proof_wire"]), raw=False)[0][0]
    c_txs = v["chunk_txs"]
    sp = v["slice_proof"]
    for tampered in (sp["transactions"][:-1], sp["transactions"][1:], sp["transactions"][:c_txs],
                     [sp["transactions"][1], sp["transactions"][0], *sp["transactions"][2:]]):
        assert not slice_proof_ok(header, dict(sp, transactions=tampered), c_txs)
    assert not slice_proof_ok(header, sp, c_txs + 1), "chunks of another size"
    assert not slice_proof_ok(header, dict(v["absence_proof"], rollup_id=sp["rollup_id"]), c_txs)
    bp = v["bundle_proof"]
    assert bundle_proof_ok(header[6], copy.deepcopy(bp))
    t = copy.deepcopy(bp)
    t["locations"][1][1] += 1  # not at its offset
    assert not bundle_proof_ok(header[6], t)
    t = copy.deepcopy(bp)
    t["chunks"][1][0] = "00"  # a payload of a proven chunk changed
    assert not bundle_proof_ok(header[6], t)
    t = copy.deepcopy(bp)
    t["transactions"][0]["rollup_id"] += 1  # the wrong namespace (and bundle id)
    t["bundle_id"] = h(b"ordo/bundle", [h(b"ordo/tx", [x["rollup_id"], bytes.fromhex(x["payload"])])
                                        for x in t["transactions"]]).hex()
    assert not bundle_proof_ok(header[6], t)


def test_the_independent_verifier_rejects_tampered_commit_proofs() -> None:
    c, v = load("committee.json"), load("commit_proof.json")
    good = msgpack.unpackb(bytes.fromhex(v["commit_proof_wire"]), raw=False)
    tampered = []
    t = copy.deepcopy(good)
    t[1][2] = t[1][2][:2]  # under quorum
    tampered.append(t)
    t = copy.deepcopy(good)
    t[1][2][0][1] = bytes(64)  # a forged signature
    tampered.append(t)
    t = copy.deepcopy(good)
    t[0][0][6] = bytes(32)  # another data root in the committed header
    tampered.append(t)
    t = copy.deepcopy(good)
    t[0][1][0] += 1  # the child is not the next round: no 2-chain
    tampered.append(t)
    for proof in tampered:
        assert commit_proof_ok(proof, c) is None
    other_chain = dict(c, chain_id="another-chain")
    assert commit_proof_ok(good, other_chain) is None
