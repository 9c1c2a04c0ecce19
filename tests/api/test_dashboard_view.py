"""The dashboard's view-model (sequencing/api/dashboard_view.py) over a ClusterWatch fed by hand,
with made-up clock values: when a peer is shown down, what a block row says, the throughput series,
per-rollup tracking only while watched, and every ring's bound."""

from __future__ import annotations

from typing import Any

from consensus.messages import Block, Evidence, EvidenceKind, Proposal, QuorumCert, Timeout, Vote
from sequencing.api.dashboard_view import DOWN_AFTER, evidence_view, peer_state, snapshot_view, throughput_view
from sequencing.replica.watch import (
    BLOCKS_KEPT,
    ROLLUPS_KEPT,
    ROUND_HEIGHTS_KEPT,
    SECONDS_KEPT,
    TAIL_KEPT,
    ClusterWatch,
    DashboardState,
    Heard,
)

SIG = b"s" * 64
ROOT = b"r" * 32


def qc(round: int) -> QuorumCert:
    return QuorumCert(round, bytes([round % 256]) * 32, ((0, SIG), (1, SIG), (2, SIG)) if round else ())


def block(height: int, round: int, qc_round: int | None = None, author: int = 1) -> Block:
    return Block(round, height, qc(round - 1 if qc_round is None else qc_round), author, b"", ROOT)


def status(me: int = 0, round: int = 10, leader: int = 2, height: int = 7) -> dict[str, Any]:
    return {"id": me, "chain_id": "test", "round": round, "leader": leader, "committed_height": height,
            "evidence": 0}


def state(now: float, connected: frozenset[int] = frozenset({1, 2, 3}), base_timeout: float = 1.0) -> DashboardState:
    return DashboardState(base_timeout=base_timeout, connected=connected, fault_rules={"2": {"drop": 0.5}},
                          byzantine=None, now=now)


def members(view: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {m["id"]: m for m in view["committee"]}


def test_a_peer_not_heard_from_for_two_base_timeouts_turns_down() -> None:
    watch = ClusterWatch(0, 4)
    for peer in (1, 2, 3):
        watch.heard_from(peer, Timeout(9, qc(8), peer, SIG), now=100.0)
    up = members(snapshot_view(status(), state(now=100.0 + DOWN_AFTER - 0.01), watch, []))
    assert [up[i]["state"] for i in range(4)] == ["up", "up", "up", "up"]
    watch.heard_from(1, Vote(10, b"b" * 32, 1, SIG), now=101.5)  # 1 speaks again; 2 and 3 go quiet
    later = members(snapshot_view(status(), state(now=100.0 + DOWN_AFTER + 0.01), watch, []))
    assert [later[i]["state"] for i in range(4)] == ["up", "up", "down", "down"]
    assert later[0]["self"] and later[2]["leader"] and not later[1]["leader"]
    assert later[1]["last_vote"] == {"round": 10, "block": (b"b" * 32).hex()} and later[1]["kind"] == "vote"
    assert later[3]["round"] == 9 and later[3]["kind"] == "timeout"
    # the threshold scales with the base timeout
    slow = members(snapshot_view(status(), state(now=103.0, base_timeout=2.0), watch, []))
    assert slow[2]["state"] == "up"


def test_a_peer_whose_link_is_gone_is_down_at_once_and_one_never_heard_is_down() -> None:
    watch = ClusterWatch(0, 4)
    watch.heard_from(1, b"a batch, say", now=50.0)  # any message counts as heard
    watch.heard_from(2, b"a batch, say", now=50.0)
    view = members(snapshot_view(status(), state(now=50.1, connected=frozenset({1})), watch, []))
    assert (view[1]["state"], view[2]["state"], view[3]["state"]) == ("up", "down", "down")
    assert view[2]["connected"] is False and view[3]["heard_ago"] is None
    assert peer_state(True, Heard(at=10.0), 10.0 + DOWN_AFTER, 1.0) == "up"  # the boundary itself is still up


def test_a_vote_takes_the_height_of_the_proposal_seen_for_its_round() -> None:
    watch = ClusterWatch(0, 4)
    proposal = Proposal(block(height=5, round=8, author=2), None, SIG)
    watch.heard_from(2, proposal, now=1.0)
    watch.heard_from(3, Vote(8, proposal.block.id, 3, SIG), now=1.1)
    watch.heard_from(1, Vote(9, b"x" * 32, 1, SIG), now=1.1)  # no proposal seen for round 9
    assert (watch.heard[2].height, watch.heard[2].kind) == (5, "proposal")
    assert watch.heard[3].height == 5 and watch.heard[1].height is None
    watch.heard_from(3, Vote(11, b"y" * 32, 2, SIG), now=1.2)  # a vote 3 passes on is not 3's own
    assert (watch.heard[3].vote_round, watch.heard[3].round, watch.heard[3].at) == (8, 8, 1.2)
    for r in range(100, 100 + 3 * ROUND_HEIGHTS_KEPT):
        watch.heard_from(2, Proposal(block(height=r, round=r, author=2), None, SIG), now=2.0)
    assert len(watch._round_heights) == ROUND_HEIGHTS_KEPT


def test_blocks_mark_a_round_reached_by_a_timeout_certificate_and_the_ring_is_bounded() -> None:
    watch = ClusterWatch(0, 4)
    watch.committed(block(height=1, round=1), txs=3, size=300, slices=(), now=10.0)
    watch.committed(block(height=2, round=5, qc_round=1, author=2), txs=0, size=0, slices=(), now=10.5)
    view = snapshot_view(status(), state(now=11.0), watch, [])
    first, second = view["blocks"]
    assert (first["kind"], first["txs"], first["bytes"], first["proposer"]) == ("qc", 3, 300, 1)
    assert first["skipped_rounds"] == 0
    assert (second["kind"], second["proposer"], second["skipped_rounds"], second["ago"]) == ("timeout", 2, 3, 0.5)
    for h in range(3, 3 + 2 * BLOCKS_KEPT):
        watch.committed(block(height=h, round=h + 10), txs=1, size=1, slices=(), now=12.0)
    heights = [b["height"] for b in snapshot_view(status(), state(now=12.0), watch, [])["blocks"]]
    assert len(heights) == BLOCKS_KEPT and heights[-1] == 2 + 2 * BLOCKS_KEPT and heights == sorted(heights)


def test_throughput_is_a_dense_per_second_series_of_the_last_minutes() -> None:
    watch = ClusterWatch(0, 4)
    watch.committed(block(height=1, round=1), txs=40, size=1, slices=(), now=1000.2)
    watch.committed(block(height=2, round=2), txs=60, size=1, slices=(), now=1000.7)
    watch.latency(0.1, now=1000.7)
    watch.latency(0.3, now=1000.8)
    watch.committed(block(height=3, round=3), txs=5, size=1, slices=(), now=1002.1)
    series = throughput_view(watch, now=1003.5)
    assert len(series["txs"]) == len(series["latency_ms"]) == SECONDS_KEPT
    assert series["txs"][-3:] == [100, 0, 5] and series["blocks"][-3:] == [2, 0, 1]
    assert series["latency_ms"][-3:] == [200.0, None, None] and series["latency_max_ms"][-3] == 300.0
    assert series["tx_s"] == 10.5  # 105 over the 10 s window
    assert throughput_view(watch, now=1003.5 + SECONDS_KEPT)["txs"] == [0] * SECONDS_KEPT  # aged out
    for second in range(2 * SECONDS_KEPT):
        watch.committed(block(height=4 + second, round=4 + second), txs=1, size=1, slices=(), now=2000.0 + second)
    assert len(watch.seconds) == SECONDS_KEPT


def test_rollups_are_tracked_only_while_a_dashboard_watches_and_stay_bounded() -> None:
    watch = ClusterWatch(0, 4)
    slices = ((7, (b"a", b"b")), (9, (b"c",)))
    watch.committed(block(height=1, round=1), txs=3, size=3, slices=slices, now=5.0)
    assert watch.rollups == {}, "no work per rollup while nobody watches"
    watch.touch(now=5.0)
    watch.committed(block(height=2, round=2), txs=3, size=3, slices=slices, now=6.0)
    watch.committed(block(height=3, round=3), txs=2, size=2, slices=((7, (b"d", b"e")),), now=7.0)
    rollups = {r["id"]: r for r in snapshot_view(status(), state(now=8.0), watch, [])["rollups"]}
    assert rollups[7]["txs"] == 4 and rollups[7]["height"] == 3 and rollups[9]["height"] == 2
    assert [t["height"] for t in rollups[7]["tail"]] == [3, 2]  # newest first
    assert rollups[7]["tail"][0] == {"height": 3, "txs": 2, "verified": True, "proof": "/v1/rollups/7/slices/3"}
    assert rollups[7]["tx_s"] == 0.4  # 4 in the 10 s window
    for h in range(4, 4 + 3 * TAIL_KEPT):
        watch.committed(block(height=h, round=h), txs=1, size=1,
                        slices=tuple((rid, (b"x",)) for rid in range(100, 100 + 2 * ROLLUPS_KEPT)), now=9.0)
    assert len(watch.rollups) == ROLLUPS_KEPT and watch.untracked_slices > 0
    assert all(len(t.tail) <= TAIL_KEPT for t in watch.rollups.values())
    watch.rollups.clear()
    watch.committed(block(height=99, round=99), txs=1, size=1, slices=slices, now=5.0 + 61.0)
    assert watch.rollups == {}, "a snapshot keeps tracking on for a minute, not for ever"
    watch.streams = 1
    watch.committed(block(height=100, round=100), txs=1, size=1, slices=slices, now=5.0 + 62.0)
    assert set(watch.rollups) == {7, 9}, "an open event stream keeps it on"


def test_evidence_rows_name_both_blocks_and_link_the_json_verify_reads() -> None:
    a, b = b"\x01" * 32, b"\x02" * 32
    pending = Evidence(EvidenceKind.DOUBLE_VOTE, 3, 12, a, SIG, b, SIG)
    committed = Evidence(EvidenceKind.DOUBLE_PROPOSAL, 1, 20, a, SIG, b, SIG)
    rows = evidence_view([(pending, None), (committed, 25)])
    assert [r["offender"] for r in rows] == [1, 3]  # newest round first
    assert rows[0]["committed"] and rows[0]["committed_height"] == 25 and rows[0]["kind"] == "double_proposal"
    assert not rows[1]["committed"] and (rows[1]["block_a"], rows[1]["block_b"]) == (a.hex(), b.hex())
    assert rows[1]["json"] == f"/v1/evidence?id={pending.id.hex()}"


def test_the_snapshot_carries_the_fault_rules_read_only_and_the_replicas_own_position() -> None:
    view = snapshot_view(status(round=44, height=40, leader=0), state(now=1.0), ClusterWatch(0, 4), [])
    assert view["faults"] == {"rules": {"2": {"drop": 0.5}}, "byzantine": None}
    assert (view["round"], view["height"], view["leader"], view["size"]) == (44, 40, 0, 4)
    me = members(view)[0]
    assert (me["round"], me["height"], me["leader"], me["state"]) == (44, 40, True, "up")
