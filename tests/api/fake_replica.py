"""An in-memory :class:`sequencing.api.port.ReplicaPort` for driving the API apps without a
replica: a mempool that accepts everything (or is full), an empty ledger, a registry of its own."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import trio
from prometheus_client import CollectorRegistry

from consensus.commit_proof import CommitProof
from consensus.messages import Block, Evidence
from sequencing.api.port import LedgerView
from sequencing.config import Limits
from sequencing.replica.intake import Submitted
from sequencing.replica.mempool import MempoolFull
from sequencing.replica.watch import ClusterWatch, DashboardState
from sequencing.rollup.block_tree import BlockTree
from sequencing.rollup.transactions import InvalidTransaction, Item, Run

T = TypeVar("T")


class EmptyLedger:
    """A ledger with nothing committed."""

    def block_at(self, height: int) -> tuple[Block, CommitProof] | None:
        return None

    def slices_at(self, height: int) -> tuple[tuple[int, tuple[bytes, ...]], ...] | None:
        return None

    def tx_location(self, tx_id: bytes) -> tuple[int, int, int] | None:
        return None

    def bundle_location(self, bundle_id: bytes) -> tuple[int, tuple[int, ...]] | None:
        return None

    def rollup_summary(self) -> dict[int, tuple[int, bytes]]:
        return {}

    def evidence_list(self, *, offender: int | None = None) -> list[tuple[Evidence, int | None]]:
        return []


class FakeReplica:
    def __init__(self, limits: Limits | None = None, *, ledger_open: bool = True, room: int = 1_000_000,
                 batched: bool = True) -> None:
        self.id = 0
        self.limits = limits or Limits()
        self.durable_height = 0
        self.metrics_registry = CollectorRegistry()
        self.ledger_open = ledger_open
        self.ledger: LedgerView = EmptyLedger()
        self.room = room  # items the mempool takes before it is full
        self.batched = batched  # whether wait_durable sees the item batched
        self.items: dict[bytes, Item] = {}
        self.last_arrival = 0
        self.reads = 0
        self.watch = ClusterWatch(self.id, 4)
        self.connected: frozenset[int] = frozenset()
        self.now: float | None = None  # the dashboard's clock value (None: trio's)

    def status(self) -> dict[str, Any]:
        return {"id": self.id, "started": True, "round": 0, "leader": None, "committed_height": self.durable_height,
                "evidence": 0}

    def dashboard_state(self) -> DashboardState:
        now = trio.current_time() if self.now is None else self.now
        return DashboardState(base_timeout=1.0, connected=self.connected, fault_rules={}, byzantine=None, now=now)

    def submit(self, item: Item) -> bool:
        item.validate(self.limits)
        if item.id in self.items:
            return False
        if len(self.items) >= self.room:
            raise MempoolFull("full")
        self.items[item.id] = item
        self.last_arrival += 1
        return True

    def submit_many(self, items: Sequence[Item]) -> Submitted:
        outcomes: list[bool | str] = []
        busy = False
        for item in items:
            try:
                outcomes.append("mempool full; retry later" if busy else self.submit(item))
            except MempoolFull as exc:
                busy = True
                outcomes.append(str(exc))
            except InvalidTransaction as exc:
                outcomes.append(str(exc))
        return Submitted(outcomes, busy)

    def submit_runs(self, runs: Sequence[Run]) -> Submitted:
        return self.submit_many([tx for run in runs for tx in run.transactions()])

    async def wait_durable(self, arrival: int) -> bool:
        await trio.lowlevel.checkpoint()
        return self.batched

    def is_pending(self, item_id: bytes) -> bool:
        return item_id in self.items

    async def wait_committed(self) -> None:
        await trio.sleep_forever()

    def recent_commit(self, height: int) -> tuple[Block, CommitProof, BlockTree] | None:
        return None  # everything from the ledger

    async def read_ledger(self, read: Callable[[LedgerView], T]) -> T:
        assert self.ledger_open, "read before the ledger is open"
        self.reads += 1
        await trio.lowlevel.checkpoint()
        return read(self.ledger)
