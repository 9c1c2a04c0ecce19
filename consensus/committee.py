"""The committee: who the replicas are, their public keys, and the quorum arithmetic."""

from __future__ import annotations

from dataclasses import dataclass

from .encoding import PUBLIC_KEY_SIZE
from .errors import LocalProtocolError
from .messages import ReplicaId


@dataclass(frozen=True, slots=True)
class Committee:
    """Replica ``i`` owns ``public_keys[i]``. ``chain_id`` separates clusters' signatures."""

    chain_id: str
    public_keys: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not self.chain_id:
            raise LocalProtocolError("chain_id must not be empty")
        if len(self.public_keys) < 1:
            raise LocalProtocolError("a committee needs at least one replica")
        if len(set(self.public_keys)) != len(self.public_keys):
            raise LocalProtocolError("committee public keys must be distinct")
        for key in self.public_keys:
            if len(key) != PUBLIC_KEY_SIZE:
                raise LocalProtocolError("committee public keys must be 32-byte Ed25519 keys")

    @property
    def size(self) -> int:
        return len(self.public_keys)

    @property
    def max_faulty(self) -> int:
        """f: the largest number of Byzantine replicas the committee tolerates."""
        return (self.size - 1) // 3

    @property
    def quorum(self) -> int:
        """Smallest q with 2q - n >= f + 1: any two quorums share an honest replica (2f+1 at n=3f+1)."""
        return (self.size + self.max_faulty + 2) // 2

    @property
    def validity_threshold(self) -> int:
        """f + 1: any set this large contains an honest replica."""
        return self.max_faulty + 1

    @property
    def ids(self) -> range:
        return range(self.size)

    def contains(self, replica: int) -> bool:
        return isinstance(replica, int) and 0 <= replica < self.size

    def key_of(self, replica: ReplicaId) -> bytes:
        if not self.contains(replica):
            raise LocalProtocolError(f"replica {replica} is not in the committee")
        return self.public_keys[replica]

    def id_of(self, public_key: bytes) -> ReplicaId | None:
        try:
            return self.public_keys.index(public_key)
        except ValueError:
            return None
