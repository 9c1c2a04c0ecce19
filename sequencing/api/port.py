"""What the public API needs of a replica, and nothing more: :class:`ReplicaPort`.

The API never sees the replica's internals. ``sequencing.replica.node.Node`` satisfies the port
structurally (its "API port" section); tests serve the app over a fake (tests/api/fake_replica.py).
Ledger reads go through :meth:`ReplicaPort.read_ledger` with a function of a :class:`LedgerView`,
the few read methods of the ledger database the API uses, so the replica keeps running them in
its worker thread one at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from prometheus_client import CollectorRegistry

from consensus.commit_proof import CommitProof
from consensus.messages import Block, Evidence

from ..config import Limits
from ..replica.intake import Submitted
from ..replica.watch import ClusterWatch, DashboardState
from ..rollup.block_tree import BlockTree
from ..rollup.transactions import Item, Run

T = TypeVar("T")


class LedgerView(Protocol):
    """The reads of the ledger database (sequencing/storage) the API makes."""

    def block_at(self, height: int) -> tuple[Block, CommitProof] | None: ...

    def slices_at(self, height: int) -> tuple[tuple[int, tuple[bytes, ...]], ...] | None:
        """The block's slices ``(rollup id, payloads)``, ascending ids; None if not committed."""
        ...

    def tx_location(self, tx_id: bytes) -> tuple[int, int, int] | None: ...

    def bundle_location(self, bundle_id: bytes) -> tuple[int, tuple[int, ...]] | None: ...

    def rollup_summary(self) -> dict[int, tuple[int, bytes]]: ...

    def evidence_list(self, *, offender: int | None = None) -> list[tuple[Evidence, int | None]]: ...


class ReplicaPort(Protocol):
    """One replica as the public API and the admin log see it."""

    @property
    def id(self) -> int: ...

    @property
    def limits(self) -> Limits: ...

    @property
    def durable_height(self) -> int:
        """The committed height written to the ledger (what the API serves up to)."""
        ...

    @property
    def metrics_registry(self) -> CollectorRegistry:
        """Served at /metrics; the API's own refusal counters are registered in it too."""
        ...

    def status(self) -> dict[str, Any]:
        """The /status document."""
        ...

    def submit(self, item: Item) -> bool:
        """Validate and queue a client item: False for a duplicate of a recent one; raises
        InvalidTransaction, MempoolFull or AlreadySubmitted."""
        ...

    def submit_many(self, items: Sequence[Item]) -> Submitted:
        """``submit`` for a client's list of items; never raises for a client's input."""
        ...

    def submit_runs(self, runs: Sequence[Run]) -> Submitted:
        """Queue a client's plain transactions grouped in runs (payloads checked against the
        limits): one outcome per transaction, the runs' in order; never raises for a client's input."""
        ...

    @property
    def last_arrival(self) -> int:
        """The arrival number of the newest item the mempool accepted."""
        ...

    async def wait_durable(self, arrival: int) -> bool:
        """Wait until the item with this arrival number is in a batch on disk; False on timeout."""
        ...

    def is_pending(self, item_id: bytes) -> bool:
        """The item (transaction or bundle id) was accepted recently and may not be committed yet."""
        ...

    async def wait_committed(self) -> None:
        """Return at the next change of ``durable_height``."""
        ...

    def recent_commit(self, height: int) -> tuple[Block, CommitProof, BlockTree] | None:
        """A recent durable commit: its block, commit proof and the tree its content was assembled
        with (the executor keeps the newest few); None: read the ledger."""
        ...

    @property
    def watch(self) -> ClusterWatch:
        """What the dashboard shows that the replica keeps for it (bounded; replica/watch.py)."""
        ...

    def dashboard_state(self) -> DashboardState:
        """The transport's links, the fault rules and the clock value, for the dashboard."""
        ...

    @property
    def ledger_open(self) -> bool:
        """False while the replica is still opening its database."""
        ...

    async def read_ledger(self, read: Callable[[LedgerView], T]) -> T:
        """``read(ledger)`` in the replica's storage thread (only once ``ledger_open``)."""
        ...
