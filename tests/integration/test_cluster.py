"""Real replica processes on loopback: they commit the same blocks, survive a killed leader and a
restarted replica, and shut down cleanly."""

from __future__ import annotations

from pathlib import Path

import trio

from sequencing.cluster.local import FAST_TIMING as TIMING
from sequencing.cluster.local import LocalCluster, write_local_config


async def block_ids(c: LocalCluster, replica_id: int, heights: range) -> list[str]:
    out = []
    for h in heights:
        response = await c.get(replica_id, f"/v1/blocks/{h}")
        assert response.status_code == 200, response.text
        out.append(response.json()["id"])
    return out


async def test_four_processes_commit_the_same_blocks(cluster: LocalCluster) -> None:
    await cluster.wait_height(10)
    chains = [await block_ids(cluster, rid, range(1, 11)) for rid in cluster.ids]
    assert all(chain == chains[0] for chain in chains)
    statuses = await cluster.statuses()
    for status in statuses.values():
        assert status is not None and len(status["peers_connected"]) == 3


async def test_killed_leader_then_commits_resume(cluster: LocalCluster) -> None:
    await cluster.wait_height(5)
    status = await cluster.status(0)
    assert status is not None
    leader = status["leader"]
    await cluster.kill(leader)
    survivors = [r for r in cluster.ids if r != leader]
    before = max((await cluster.heights()).values())
    await cluster.wait_height(before + 10, ids=survivors, timeout=30)
    chains = [await block_ids(cluster, rid, range(1, before + 10)) for rid in survivors]
    assert all(chain == chains[0] for chain in chains)


async def test_restarted_replica_rejoins_and_catches_up(cluster: LocalCluster) -> None:
    await cluster.wait_height(5)
    await cluster.stop(3)
    height = max((await cluster.heights()).values())
    await cluster.wait_height(height + 15, ids=[0, 1, 2], timeout=30)
    await cluster.start(3)
    await cluster.wait_ready([3])
    target = max((await cluster.heights()).values()) + 5
    await cluster.wait_height(target, timeout=30)
    assert await block_ids(cluster, 3, range(1, target)) == await block_ids(cluster, 0, range(1, target))


async def test_sigterm_stops_every_process(tmp_path: Path) -> None:
    c = LocalCluster(write_local_config(tmp_path, n=4, timing=TIMING))
    await c.start_all()
    await c.wait_height(2)
    codes = []
    for rid in c.ids:
        with trio.fail_after(15):
            codes.append(await c.stop(rid))
    await c.stop_all()
    assert codes == [0, 0, 0, 0]


async def test_whole_cluster_restart_resumes_from_disk(cluster: LocalCluster) -> None:
    """Every replica stopped at once and restarted: the block the high QC certifies exists only on
    the voters' disks (voted blocks are persisted with the safety state), so commits resume."""
    await cluster.wait_height(8)
    for rid in cluster.ids:
        await cluster.kill(rid)
    heights = [0] * 4
    for rid in cluster.ids:
        await cluster.start(rid)
    await cluster.wait_ready()
    heights = list((await cluster.heights()).values())
    await cluster.wait_height(max(heights) + 10, timeout=30)
    assert await block_ids(cluster, 1, range(1, 12)) == await block_ids(cluster, 2, range(1, 12))
