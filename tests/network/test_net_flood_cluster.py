"""A restarted replica rejoins while every replica's peer port is flooded (issue 8, item 8).

Real processes: a 4-replica cluster; every peer port gets idle unauthenticated connections,
each reopened shortly after it is dropped. One replica is killed with SIGKILL and restarted under
the flood; it must link with every peer both ways (/status and /metrics say so), catch up and
commit within a bound, and its /metrics count the evicted flood connections. The slow variant
restarts a second replica after the first. Before the fix the flood held all 64 inbound slots (each for the 5 s
handshake timeout), so the restarted replica could exchange nothing at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from netutil import flood, idle

from sequencing.cluster.local import FAST_TIMING, LocalCluster, running_cluster, write_local_config

PER_REPLICA = 100  # idle connections per peer port (the attack)
REOPEN_AFTER = 0.1  # seconds between a connection being dropped and its replacement
REJOIN_BOUND = 15.0  # seconds from its API answering to linked both ways with everyone, caught up, committing


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    async with running_cluster(write_local_config(tmp_path, n=4, timing=FAST_TIMING), wait_height=3) as c:
        yield c






async def rejoin(cluster: LocalCluster, victim: int) -> None:
    """kill -9 ``victim``, restart it, and require it back in the cluster within the bound."""
    others = [r for r in cluster.ids if r != victim]
    await cluster.kill(victim)
    before = max((await cluster.heights()).values())
    await cluster.start(victim)
    await cluster.wait_ready([victim])  # its API answers (process start-up is not measured)
    start = trio.current_time()
    with trio.fail_after(REJOIN_BOUND):
        while True:
            status = await cluster.status(victim)
            if status is not None and status["peers_inbound"] == others and status["peers_outbound"] == others:
                break
            await trio.sleep(0.1)
    assert status["peers_connected"] == others
    remaining = REJOIN_BOUND - (trio.current_time() - start)
    await cluster.wait_height(before + 5, ids=[victim], timeout=remaining)
    assert await cluster.metric(victim, "ordo_net_inbound_refused_total") >= 1  # flooded too
    assert await cluster.metric(victim, "ordo_peers_inbound") == len(others)
    assert await cluster.metric(victim, "ordo_peers_outbound") == len(others)


@pytest.mark.parametrize(
    "victims",
    [
        pytest.param((2,), id="one-restart"),
        # one after the other: before the fix, two restarts under the flood halted the cluster
        pytest.param((2, 3), id="two-restarts", marks=pytest.mark.slow),
    ],
)
async def test_restarted_replicas_rejoin_while_the_peer_ports_are_flooded(
    cluster: LocalCluster, victims: tuple[int, ...]
) -> None:
    async with trio.open_nursery() as nursery:
        opened = [0]
        for rid in cluster.ids:
            nursery.start_soon(flood, cluster.peer_address(rid), PER_REPLICA, idle, opened, REOPEN_AFTER)
        with trio.fail_after(30):
            while opened[0] < 2 * PER_REPLICA * len(cluster.ids):  # all open, and churning
                await trio.sleep(0.1)
        for victim in victims:
            await rejoin(cluster, victim)
        nursery.cancel_scope.cancel()
