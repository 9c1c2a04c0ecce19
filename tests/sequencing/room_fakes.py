"""Fakes for driving the replica's rooms (intake, payloads, commits) without a Node."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import trio

from sequencing.replica.stores import Stores

T = TypeVar("T")


class FakeLedger:
    """The ledger calls the rooms make, recorded; ``gate`` (when set) holds each batch write."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.gate: trio.Event | None = None
        self.pending: list[tuple[bytes, int, int, bytes]] = []
        self.evidence: list[tuple[object, int | None]] = []
        self.committed_batches: list[tuple[bytes, int]] = []
        self.txs = 0

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: self.calls.append((name, args))

    def save_batch(self, *args: Any) -> None:
        self.calls.append(("save_batch", args))

    def txs_committed(self) -> int:
        return self.txs

    def pending_batches(self) -> list[tuple[bytes, int, int, bytes]]:
        return self.pending

    def evidence_list(self) -> list[tuple[object, int | None]]:
        return self.evidence

    def committed_batches_since(self, height: int) -> list[tuple[bytes, int]]:
        self.calls.append(("committed_batches_since", (height,)))
        return self.committed_batches

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.calls if n == name]


def inline_stores(ledger: FakeLedger, safety: FakeLedger | None = None) -> Stores:
    """Stores over fakes, called inline (no worker thread); a gated ``save_batch`` waits for the gate."""
    stores = Stores(max_frame_bytes=1 << 20)
    stores.ledger, stores.safety = ledger, safety or FakeLedger()  # type: ignore[assignment]

    async def inline(fn: Callable[..., T], *args: Any) -> T:
        await trio.lowlevel.checkpoint()
        if getattr(fn, "__name__", "") == "save_batch" and ledger.gate is not None:
            await ledger.gate.wait()
        return fn(*args)

    stores.ledger_call = inline  # type: ignore[method-assign]
    stores.safety_call = inline  # type: ignore[method-assign]
    return stores


class FakeLink:
    def __init__(self, peers: set[int] | None = None) -> None:
        self.broadcasts: list[object] = []
        self.sent: list[tuple[int, object]] = []
        self.peers = peers if peers is not None else {1, 2, 3}

    def send(self, to: int, message: object) -> bool:
        self.sent.append((to, message))
        return True

    def broadcast(self, message: object) -> int:
        self.broadcasts.append(message)
        return len(self.peers)

    def connected_peers(self) -> set[int]:
        return self.peers


def sample(metric: Any, labels: tuple[str, ...] = ()) -> float:
    """The current value of a prometheus counter/gauge (optionally one labelled child)."""
    child = metric.labels(*labels) if labels else metric
    return float(child._value.get())
