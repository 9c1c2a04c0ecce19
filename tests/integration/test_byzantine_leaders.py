"""Byzantine leaders on real processes, short forms of scripts/faults/equivocating-leader and
scripts/faults/censor: replica 3 runs a ``--byzantine`` mode from the start, the others are
honest and carry the load."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from consensus.crypto import Verifier
from sequencing.client.evidence import check_record, evidence_records
from sequencing.cluster.acked_load import AckedLoad, check_exactly_once, converged_rollups
from sequencing.cluster.local import FAST_TIMING, LocalCluster, write_local_config
from sequencing.keys import committee_of

HONEST = [0, 1, 2]
TARGET = 7


@pytest.fixture
async def byzantine_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LocalCluster]:
    c = LocalCluster(write_local_config(tmp_path, n=4, timing=FAST_TIMING), log_level="warning")
    try:
        c.prepare()
        for rid in HONEST:
            await c.start(rid)
        await c.start(3, "--byzantine", request.param)
        await c.wait_ready()
        yield c
    finally:
        await c.stop_all()


async def same_blocks(c: LocalCluster) -> None:
    """Agreement: the honest replicas hold the same blocks at the last heights all of them committed
    (a block id fixes its ancestors)."""
    heights = await c.heights()
    low = min(heights[r] for r in HONEST)
    for height in range(max(1, low - 10), low + 1):
        ids = [(await c.get(r, f"/v1/blocks/{height}")).json()["id"] for r in HONEST]
        assert len(set(ids)) == 1, f"conflicting blocks at height {height}"


@pytest.mark.parametrize("byzantine_cluster", ["equivocating-leader"], indirect=True)
async def test_an_equivocating_leader_is_caught_and_commits_nothing_conflicting(
        byzantine_cluster: LocalCluster) -> None:
    c = byzantine_cluster
    load = AckedLoad(c)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: load.run(per_tick=10, targets=lambda: HONEST))
        with trio.fail_after(40):
            while True:
                listed = (await c.get(0, "/v1/evidence")).json()
                if any(e["committed_height"] is not None for e in listed):
                    break
                await trio.sleep(0.2)
        await load.stop()
    verifier = Verifier(committee_of(c.config))
    for rid in HONEST:  # every honest replica knows it, whether it saw both proposals or heard the gossip
        records = evidence_records((await c.get(rid, "/v1/evidence")).json())
        assert records
        for record in records:
            check_record(record, verifier)
            assert (record.kind, record.evidence.offender) == ("double_proposal", 3)
    summary = await converged_rollups(c, HONEST)
    await check_exactly_once(c, load, summary, replica=0)
    await same_blocks(c)


@pytest.mark.parametrize("byzantine_cluster", [f"censor:{TARGET}"], indirect=True)
async def test_a_censored_rollup_still_commits_through_the_honest_leaders(byzantine_cluster: LocalCluster) -> None:
    c = byzantine_cluster
    load = AckedLoad(c, rollups=(TARGET,), bundle_every=0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: load.run(per_tick=5, targets=lambda: HONEST))
        with trio.fail_after(40):
            while len(load.acked) < 300:
                await trio.sleep(0.1)
        await load.stop()
    summary = await converged_rollups(c, HONEST)
    await check_exactly_once(c, load, summary, replica=0)
    by_censor, with_target = 0, 0
    for height in range(1, (await c.heights())[0] + 1):
        block = (await c.get(0, f"/v1/blocks/{height}")).json()
        by_censor += block["author"] == 3
        with_target += str(TARGET) in block["rollups"]
        assert not (block["author"] == 3 and str(TARGET) in block["rollups"]), f"the censor proposed {TARGET}"
    assert by_censor > 0 and with_target > 0  # the censor led (and proposed) too; the target committed
    await same_blocks(c)
