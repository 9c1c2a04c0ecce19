"""The link gauges are read at scrape time from the transport, not set by the core loop per event."""

from __future__ import annotations

from sequencing.replica.metrics import NodeMetrics


def test_link_gauges_are_current_at_every_scrape_without_a_core_event() -> None:
    metrics = NodeMetrics(0)
    links = {"inbound": 1, "outbound": 2, "pending": 0, "connected": 1}
    metrics.watch_links(lambda: links["inbound"], lambda: links["outbound"], lambda: links["pending"],
                        lambda: links["connected"])
    assert b"ordo_peers_connected 1.0" in metrics.render()
    links.update(inbound=3, outbound=3, connected=3)
    text = metrics.render()
    assert b"ordo_peers_connected 3.0" in text and b"ordo_peers_inbound 3.0" in text
