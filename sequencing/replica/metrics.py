"""Prometheus metrics of one replica, in a registry of its own (no process-global state)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class NodeMetrics:
    def __init__(self, replica_id: int) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.replica_id = replica_id
        self.round = Gauge("ordo_round", "Current consensus round", registry=r)
        self.rounds_entered = Counter("ordo_rounds_entered", "Rounds entered", ["via"], registry=r)
        self.committed_height = Gauge("ordo_committed_height", "Durably committed height", registry=r)
        self.blocks_committed = Counter("ordo_blocks_committed", "Blocks committed (durable)", registry=r)
        self.txs_committed = Counter("ordo_txs_committed", "Transactions committed (durable)", registry=r)
        self.commit_latency = Histogram(
            "ordo_commit_latency_seconds",
            "Submission to durable commit of own clients' transactions (the first of each request)",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.block_latency = Histogram(
            "ordo_block_commit_latency_seconds", "Proposal to durable commit, own blocks",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.mempool_txs = Gauge("ordo_mempool_transactions", "Transactions waiting in the mempool", registry=r)
        self.mempool_bytes = Gauge("ordo_mempool_bytes", "Bytes waiting in the mempool", registry=r)
        self.pending_batches = Gauge("ordo_pending_batches", "Known uncommitted batches", registry=r)
        self.batches_created = Counter("ordo_batches_created", "Batches this replica made", registry=r)
        self.submissions = Counter("ordo_submissions", "Client submissions", ["result"], registry=r)
        self.dropped = Counter(
            "ordo_dropped_inputs", "Inputs rejected, or signatures refused, by the core", ["kind"], registry=r,
        )
        self.refusals = Counter(
            "ordo_safety_refusals", "Votes and timeouts the safety rules refused, by rule", ["signing", "reason"],
            registry=r,
        )
        self.input_errors = Counter(
            "ordo_input_errors", "Inputs dropped after an unexpected error (logged with traceback)",
            ["input", "reason"], registry=r,
        )
        self.rejected_payloads = Counter("ordo_rejected_payloads", "Proposals whose payload failed", registry=r)
        self.assembled_again = Counter(
            "ordo_blocks_assembled_again",
            "Committed blocks the executor split and hashed again (not proposed or verified here)", registry=r,
        )
        self.window_not_known = Counter(
            "ordo_window_not_known",
            "Proposals made without batches, or checks put off, until the executor split the committed "
            "blocks a window reaches (after catch-up)", ["role"], registry=r,
        )
        self.duplicates_skipped = Counter(
            "ordo_duplicate_txs_skipped",
            "Transactions of committed batches the split skipped: earlier in the block or committed in "
            "its window (the same transaction sent to two replicas)", registry=r,
        )
        self.evidence = Counter("ordo_evidence_recorded", "New equivocation evidence", ["kind"], registry=r)
        self.sync_blocks = Counter("ordo_sync_blocks", "Blocks adopted through catch-up", registry=r)
        self.sync_demotions = Counter(
            "ordo_sync_peer_demotions", "Catch-up peers set aside for failing to deliver", ["reason"], registry=r,
        )
        self.inbox_drops = Counter("ordo_inbox_drops", "Consensus messages dropped: core busy", registry=r)
        self.peers_connected = Gauge("ordo_peers_connected", "Peers linked both ways", registry=r)
        self.peers_inbound = Gauge("ordo_peers_inbound", "Peers with an authenticated link to us", registry=r)
        self.peers_outbound = Gauge("ordo_peers_outbound", "Peers we hold an authenticated link to", registry=r)
        self.pending_handshakes = Gauge("ordo_net_pending_handshakes", "Inbound connections in the handshake",
                                        registry=r)
        self.dashboard_streams = Gauge("ordo_dashboard_streams", "Open dashboard event streams", registry=r)
        self.dashboard_dropped = Counter("ordo_dashboard_streams_dropped", "Dashboard event streams dropped: "
                                         "the client took no event for 10 s", registry=r)

    def watch_transport(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.registry.register(_TransportCollector(snapshot))

    def watch_links(self, inbound: Callable[[], int], outbound: Callable[[], int], pending: Callable[[], int],
                    connected: Callable[[], int]) -> None:
        """Read at every scrape, so the gauges are current even while the core is idle (and no
        event of the core pays for them)."""
        self.peers_connected.set_function(connected)
        self.peers_inbound.set_function(inbound)
        self.peers_outbound.set_function(outbound)
        self.pending_handshakes.set_function(pending)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _TransportCollector(Collector):
    """Exports network.TransportStats.snapshot() as counters (bytes, frames, rejections)."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._snapshot()
        for name, value in stats.items():
            metric = f"ordo_net_{name}"
            if isinstance(value, dict):
                family = CounterMetricFamily(metric, f"transport {name}", labels=["key"])
                for key, count in value.items():
                    if isinstance(count, (int, float)):
                        family.add_metric([str(key)], count)
                yield family
            elif isinstance(value, (int, float)):
                yield CounterMetricFamily(metric, f"transport {name}", value=value)
