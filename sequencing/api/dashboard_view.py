"""The dashboard's view-model: the JSON the page draws (``GET /v1/dashboard/snapshot``, and the
``snapshot`` / ``status`` / ``commit`` events of ``GET /v1/dashboard/events``), built from the
replica's /status document, its :class:`~sequencing.replica.watch.DashboardState`, its
:class:`~sequencing.replica.watch.ClusterWatch` and its recorded evidence.

Pure functions of their arguments: every age is computed against the ``now`` of the state passed
in, so the rules (a peer is "down" when its link is gone or it has not been heard from for
DOWN_AFTER x the base round timeout) are tested with made-up clock values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from consensus.messages import Evidence

from ..replica.watch import SECONDS_KEPT, BlockRow, ClusterWatch, DashboardState, Heard

DOWN_AFTER = 2.0  # x base_timeout without a message from a peer: shown down
RATE_WINDOW = 10.0  # seconds the tx/s figures average over
EVIDENCE_SHOWN = 50  # newest evidence records shown (by round)


def peer_state(connected: bool, heard: Heard, now: float, base_timeout: float) -> str:
    """"up" while the peer is linked both ways and was heard from within DOWN_AFTER x base_timeout."""
    if not connected or heard.at <= 0.0 or now - heard.at > DOWN_AFTER * base_timeout:
        return "down"
    return "up"


def link_state(connected: bool, inbound: bool, outbound: bool) -> str:
    """The transport's links with a peer: "both" (linked), "in" or "out" only (half-linked), "none"."""
    if connected or (inbound and outbound):
        return "both"
    return "in" if inbound else "out" if outbound else "none"


def committee_view(status: dict[str, Any], state: DashboardState, watch: ClusterWatch) -> list[dict[str, Any]]:
    me, leader = status["id"], status["leader"]
    inbound, outbound = set(status.get("peers_inbound", ())), set(status.get("peers_outbound", ()))
    rows = []
    for index, heard in enumerate(watch.heard):
        if index == me:
            rows.append({"id": index, "self": True, "state": "up", "connected": True, "link": "self",
                         "leader": index == leader,
                         "round": status["round"], "height": status["committed_height"], "kind": "self",
                         "heard_ago": 0.0, "last_vote": None})
            continue
        connected = index in state.connected
        rows.append({
            "id": index, "self": False, "state": peer_state(connected, heard, state.now, state.base_timeout),
            "connected": connected, "link": link_state(connected, index in inbound, index in outbound),
            "leader": index == leader, "round": heard.round, "height": heard.height,
            "kind": heard.kind, "heard_ago": None if heard.at <= 0.0 else max(0.0, round(state.now - heard.at, 3)),
            "last_vote": None if heard.vote_block is None else
            {"round": heard.vote_round, "block": heard.vote_block.hex()},
        })
    return rows


def block_view(row: BlockRow, now: float) -> dict[str, Any]:
    return {"height": row.height, "round": row.round, "txs": row.txs, "bytes": row.size, "proposer": row.proposer,
            "kind": "timeout" if row.by_tc else "qc", "skipped_rounds": row.skipped, "id": row.block_id.hex(),
            "ago": round(now - row.at, 3)}


def blocks_view(rows: Iterable[BlockRow], now: float, after: int = 0) -> list[dict[str, Any]]:
    return [block_view(row, now) for row in rows if row.height > after]


def throughput_view(watch: ClusterWatch, now: float) -> dict[str, Any]:
    """Dense per-second series over the last SECONDS_KEPT whole seconds (the current one excluded):
    index i is second ``end - SECONDS_KEPT + 1 + i``; latency in ms (mean of the samples), null
    where no transaction was sampled."""
    end = int(now) - 1
    first = end - SECONDS_KEPT + 1
    txs = [0] * SECONDS_KEPT
    blocks = [0] * SECONDS_KEPT
    latency: list[float | None] = [None] * SECONDS_KEPT
    latency_max: list[float | None] = [None] * SECONDS_KEPT
    for second in watch.seconds:
        i = second.at - first
        if 0 <= i < SECONDS_KEPT:
            txs[i], blocks[i] = second.txs, second.blocks
            if second.latency_n:
                latency[i] = round(1000 * second.latency_sum / second.latency_n, 1)
                latency_max[i] = round(1000 * second.latency_max, 1)
    window = int(RATE_WINDOW)
    return {"seconds": SECONDS_KEPT, "end_ago": round(now - end, 3), "txs": txs, "blocks": blocks,
            "latency_ms": latency, "latency_max_ms": latency_max,
            "tx_s": round(sum(txs[-window:]) / window, 1), "blocks_s": round(sum(blocks[-window:]) / window, 2)}


def rollups_view(watch: ClusterWatch, now: float) -> list[dict[str, Any]]:
    out = []
    for rollup_id, track in sorted(watch.rollups.items()):
        recent = sum(count for at, count in track.rate if now - at <= RATE_WINDOW)
        out.append({
            "id": rollup_id, "tx_s": round(recent / RATE_WINDOW, 1), "txs": track.txs, "height": track.height,
            "tail": [{"height": h, "txs": n, "verified": True, "proof": f"/v1/rollups/{rollup_id}/slices/{h}"}
                     for h, n in reversed(track.tail)],
        })
    return out


def evidence_view(records: Sequence[tuple[Evidence, int | None]]) -> list[dict[str, Any]]:
    """The newest EVIDENCE_SHOWN records; ``json`` links /v1/evidence listing just this record,
    which ``ordo evidence verify`` reads."""
    newest = sorted(records, key=lambda r: (r[0].round, r[0].id))[-EVIDENCE_SHOWN:]
    return [{"id": e.id.hex(), "kind": e.kind.name.lower(), "offender": e.offender, "round": e.round,
             "block_a": e.block_a.hex(), "block_b": e.block_b.hex(), "committed": height is not None,
             "committed_height": height, "json": f"/v1/evidence?id={e.id.hex()}"}
            for e, height in reversed(newest)]


def status_view(status: dict[str, Any], state: DashboardState, watch: ClusterWatch,
                evidence: Sequence[tuple[Evidence, int | None]]) -> dict[str, Any]:
    """Everything but the blocks (the ``status`` event, once a second)."""
    now = state.now
    return {
        "replica": status["id"], "chain_id": status.get("chain_id"), "size": len(watch.heard),
        "round": status["round"], "height": status["committed_height"], "leader": status["leader"],
        "consensus_height": status.get("consensus_height"), "txs_committed": status.get("txs_committed"),
        "mempool_txs": status.get("mempool_txs"), "syncing": status.get("syncing"),
        "base_timeout": state.base_timeout, "down_after": DOWN_AFTER * state.base_timeout,
        "committee": committee_view(status, state, watch),
        "throughput": throughput_view(watch, now),
        "rollups": rollups_view(watch, now), "rollups_untracked_slices": watch.untracked_slices,
        "evidence": evidence_view(evidence),
        "faults": {"rules": state.fault_rules, "byzantine": state.byzantine},
    }


def snapshot_view(status: dict[str, Any], state: DashboardState, watch: ClusterWatch,
                  evidence: Sequence[tuple[Evidence, int | None]]) -> dict[str, Any]:
    """The whole view: :func:`status_view` and the newest committed blocks (oldest first)."""
    return {**status_view(status, state, watch, evidence), "blocks": blocks_view(watch.blocks, state.now)}
