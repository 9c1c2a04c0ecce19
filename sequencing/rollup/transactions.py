"""Transactions and atomic bundles, their ids, encodings and limits.

A transaction is ``(rollup_id, payload)``; its id is a digest of both, so resubmitting the same
transaction is deduplicated. A bundle is an ordered list of at least two transactions that must
land in one block, all or none; the batcher never splits one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from consensus.encoding import digest, expect_bytes, expect_int, expect_list
from consensus.errors import DecodeError

from ..config import Limits


class InvalidTransaction(ValueError):
    """A client's transaction or bundle breaks a limit; the message says which."""


@dataclass(frozen=True, slots=True)
class Transaction:
    rollup_id: int
    payload: bytes
    id: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", digest(b"ordo/tx", [self.rollup_id, self.payload]))

    def validate(self, limits: Limits) -> None:
        if not isinstance(self.rollup_id, int) or isinstance(self.rollup_id, bool):
            raise InvalidTransaction("rollup_id must be an integer")
        if not 0 <= self.rollup_id <= limits.max_rollup_id:
            raise InvalidTransaction(f"rollup_id {self.rollup_id} outside [0, {limits.max_rollup_id}]")
        if not isinstance(self.payload, bytes):
            raise InvalidTransaction("payload must be bytes")
        if not self.payload:
            raise InvalidTransaction("payload must not be empty")
        if len(self.payload) > limits.max_tx_bytes:
            raise InvalidTransaction(f"payload of {len(self.payload)} bytes exceeds {limits.max_tx_bytes}")

    @property
    def size(self) -> int:
        return len(self.payload) + 8

    def to_wire(self) -> list[Any]:
        return [self.rollup_id, self.payload]

    @classmethod
    def from_wire(cls, wire: Any) -> Transaction:
        rollup_id, payload = expect_list(wire, "tx", length=2)
        return cls(expect_int(rollup_id, "tx.rollup_id", hi=2**32 - 1), expect_bytes(payload, "tx.payload"))


@dataclass(frozen=True, slots=True)
class Bundle:
    txs: tuple[Transaction, ...]
    id: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", digest(b"ordo/bundle", [tx.id for tx in self.txs]))

    def validate(self, limits: Limits) -> None:
        if len(self.txs) < 2:
            raise InvalidTransaction("a bundle needs at least two transactions")
        if len(self.txs) > limits.max_bundle_txs:
            raise InvalidTransaction(
                f"bundle of {len(self.txs)} transactions exceeds {limits.max_bundle_txs}"
            )
        for i, tx in enumerate(self.txs):
            try:
                tx.validate(limits)
            except InvalidTransaction as exc:
                raise InvalidTransaction(f"bundle transaction {i}: {exc}") from None
        if len({tx.id for tx in self.txs}) != len(self.txs):
            raise InvalidTransaction("a bundle must not contain the same transaction twice")

    @property
    def size(self) -> int:
        return sum(tx.size for tx in self.txs)

    def to_wire(self) -> list[Any]:
        return [tx.to_wire() for tx in self.txs]

    @classmethod
    def from_wire(cls, wire: Any) -> Bundle:
        return cls(tuple(Transaction.from_wire(t) for t in expect_list(wire, "bundle", max_len=4096)))


Item = Transaction | Bundle


def item_to_wire(item: Item) -> list[Any]:
    return [0, item.to_wire()] if isinstance(item, Transaction) else [1, item.to_wire()]


def item_from_wire(wire: Any) -> Item:
    kind, body = expect_list(wire, "item", length=2)
    if kind == 0:
        return Transaction.from_wire(body)
    if kind == 1:
        return Bundle.from_wire(body)
    raise DecodeError(f"unknown item kind {kind!r}")


def item_txs(item: Item) -> tuple[Transaction, ...]:
    return (item,) if isinstance(item, Transaction) else item.txs
