"""Ed25519 keys and domain-separated signatures.

Every signature covers ``[SIGNATURE_DOMAIN, chain_id, kind, round, payload]``, so a signature made
for one message kind, round or cluster never verifies as another.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .committee import Committee
from .encoding import hash_bytes, pack
from .messages import ReplicaId

SIGNATURE_DOMAIN = b"ordo/sig/v1"


class SignatureKind(StrEnum):
    PROPOSAL = "proposal"
    VOTE = "vote"
    TIMEOUT = "timeout"
    HANDSHAKE = "handshake"


def signing_bytes(chain_id: str, kind: SignatureKind, round: int, payload: bytes) -> bytes:
    return pack([SIGNATURE_DOMAIN, chain_id, kind.value, round, payload])


@dataclass(frozen=True, slots=True)
class KeyPair:
    private: Ed25519PrivateKey = field(repr=False)
    public: bytes

    @classmethod
    def generate(cls) -> KeyPair:
        return cls.from_private_bytes(Ed25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        """A deterministic key for tests and simulations (never for production keys)."""
        return cls.from_private_bytes(hash_bytes(b"ordo/test-key" + seed))

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> KeyPair:
        private = Ed25519PrivateKey.from_private_bytes(raw)
        public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return cls(private, public)

    def private_bytes(self) -> bytes:
        return self.private.private_bytes_raw()


class Signer:
    """Signs on behalf of one replica in one chain."""

    __slots__ = ("_key", "chain_id", "replica_id")

    def __init__(self, chain_id: str, replica_id: ReplicaId, key: KeyPair) -> None:
        self.chain_id = chain_id
        self.replica_id = replica_id
        self._key = key

    @property
    def public_key(self) -> bytes:
        return self._key.public

    def sign(self, kind: SignatureKind, round: int, payload: bytes) -> bytes:
        return self._key.private.sign(signing_bytes(self.chain_id, kind, round, payload))


class VerificationCache:
    """A bounded memo of signatures already found valid. Verification is a pure function, so
    sharing one cache between replicas (as the simulator does) changes no outcome, only speed.
    It needs to span only the few rounds between a vote or timeout and the certificate repeating
    its signature: 16,384 entries (~7 MB) are a minute of a 4-replica cluster at 50 rounds/s."""

    __slots__ = ("_capacity", "_seen")

    def __init__(self, capacity: int = 16384) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[tuple[bytes, bytes, bytes], None] = OrderedDict()

    def contains(self, key: tuple[bytes, bytes, bytes]) -> bool:
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        return False

    def add(self, key: tuple[bytes, bytes, bytes]) -> None:
        self._seen[key] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)


class Verifier:
    """Checks signatures of committee members for one chain."""

    __slots__ = ("_cache", "_keys", "committee")

    def __init__(self, committee: Committee, cache: VerificationCache | None = None) -> None:
        self.committee = committee
        self._keys = [Ed25519PublicKey.from_public_bytes(k) for k in committee.public_keys]
        self._cache = cache if cache is not None else VerificationCache()

    @property
    def chain_id(self) -> str:
        return self.committee.chain_id

    def verify(
        self, signer: ReplicaId, kind: SignatureKind, round: int, payload: bytes, signature: bytes
    ) -> bool:
        if not self.committee.contains(signer):
            return False
        message = signing_bytes(self.committee.chain_id, kind, round, payload)
        key = (self.committee.public_keys[signer], message, signature)
        if self._cache.contains(key):
            return True
        try:
            self._keys[signer].verify(signature, message)
        except InvalidSignature:
            return False
        self._cache.add(key)
        return True

    def remember_own(
        self, signer: Signer, kind: SignatureKind, round: int, payload: bytes, signature: bytes
    ) -> None:
        """Note ``signature``, just made by ``signer`` (a committee member's own key), as valid:
        it comes back inside the certificates peers build (a vote in the next QC, a timeout in a
        TC), and checking it there would cost an Ed25519 verify for nothing."""
        committee = self.committee
        if signer.chain_id != committee.chain_id or not committee.contains(signer.replica_id):
            return
        public_key = committee.public_keys[signer.replica_id]
        if signer.public_key != public_key:
            return
        self._cache.add((public_key, signing_bytes(committee.chain_id, kind, round, payload), signature))


def verify_with_key(
    public_key: bytes, chain_id: str, kind: SignatureKind, round: int, payload: bytes, signature: bytes
) -> bool:
    """Verify a signature against a raw public key (used where there is no committee yet)."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            signature, signing_bytes(chain_id, kind, round, payload)
        )
    except (InvalidSignature, ValueError):
        return False
    return True
