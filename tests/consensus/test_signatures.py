"""Ed25519 signatures (consensus/crypto.py): a signature verifies for exactly what it signed (the
key, message kind, round, payload and chain), and a signature or key of the wrong length is
refused, never raised."""

from __future__ import annotations

from consensus.crypto import KeyPair, SignatureKind, Signer, verify_with_key

CHAIN = "sig-test"


def _signer(seed: bytes = b"a") -> Signer:
    return Signer(CHAIN, 0, KeyPair.from_seed(seed))


def test_a_signature_does_not_verify_for_another_message_key_kind_round_or_chain() -> None:
    signer = _signer()
    signature = signer.sign(SignatureKind.VOTE, 7, b"block")
    public = signer.public_key
    assert verify_with_key(public, CHAIN, SignatureKind.VOTE, 7, b"block", signature)
    assert not verify_with_key(public, CHAIN, SignatureKind.VOTE, 7, b"other", signature)
    assert not verify_with_key(_signer(b"b").public_key, CHAIN, SignatureKind.VOTE, 7, b"block", signature)
    assert not verify_with_key(public, CHAIN, SignatureKind.PROPOSAL, 7, b"block", signature)
    assert not verify_with_key(public, CHAIN, SignatureKind.VOTE, 8, b"block", signature)
    assert not verify_with_key(public, "other-chain", SignatureKind.VOTE, 7, b"block", signature)
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    assert not verify_with_key(public, CHAIN, SignatureKind.VOTE, 7, b"block", flipped)


def test_wrong_lengths_are_refused_not_raised() -> None:
    signer = _signer()
    signature = signer.sign(SignatureKind.VOTE, 7, b"block")
    public = signer.public_key
    for bad in (b"", signature[:63], signature + b"\0", signature * 2):
        assert not verify_with_key(public, CHAIN, SignatureKind.VOTE, 7, b"block", bad)
    for bad_key in (b"", public[:31], public + b"\0"):
        assert not verify_with_key(bad_key, CHAIN, SignatureKind.VOTE, 7, b"block", signature)

