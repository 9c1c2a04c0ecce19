"""The node counts what its core drops by kind, and each refused vote or timeout by the safety rule
that refused it (``ordo_safety_refusals_total{signing, reason}``), and logs the rounds compared. A
real Node on trio's MockClock."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio
from node_rig import NodeRig, node_rig

from consensus.messages import Timeout
from sequencing.replica.events import TimerFired

ME = 0  # leaders of rounds 1, 2, 3 are replicas 1, 2, 3: this replica only follows


def metric(rig: NodeRig, name: str, **labels: str) -> float:
    value = rig.node.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_a_refused_vote_is_counted_by_rule_and_logged_with_its_rounds(
    tmp_path: Path, mock_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sequencing")
    async with node_rig(tmp_path, ME) as rig:
        assert rig.node.post(TimerFired(1))
        await rig.settle()
        assert rig.net.of_type(Timeout), "it timed out in round 1"
        w = rig.world
        b1 = rig.block(1, w.genesis, w.genesis_qc)
        await rig.deliver(1, w.proposal(b1))  # round 1's proposal, late: it already timed out
        assert metric(rig, "ordo_dropped_inputs_total", kind="NotSafeToVote") == 1
        assert metric(rig, "ordo_safety_refusals_total", signing="vote", reason="stale_round") == 1
        assert metric(rig, "ordo_safety_refusals_total", signing="timeout", reason="stale_round") == 0
        assert "not safe to vote (stale_round): round 1, qc round 0" in caplog.text
