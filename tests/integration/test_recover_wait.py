"""Lost-disk recovery at n = 4 needs all three other replicas: with one of them down the
recovering replica waits, and says every few seconds what for and who is missing; once the peer
is back it recovers and votes again."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from sequencing.cluster.local import LocalCluster


@pytest.mark.slow
async def test_recover_waits_visibly_for_a_down_peer(cluster: LocalCluster) -> None:
    await cluster.wait_height(5)
    await cluster.stop(2)
    await cluster.stop(3)
    for name in ("ordo.sqlite", "safety.sqlite"):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{cluster.config.replica_dir(3) / name}{suffix}").unlink(missing_ok=True)
    await cluster.start(3, "--recover")
    with trio.fail_after(40):
        while "missing: 2 (not connected)" not in cluster.log_tail(3, 50):
            assert cluster.running(3), cluster.log_tail(3)
            await trio.sleep(0.2)
    tail = cluster.log_tail(3, 50)
    assert "waiting for certificates from 3 of 3 peers" in tail and "answered: 0, 1" in tail
    await cluster.start(2)
    await cluster.wait_ready([2, 3], timeout=60)
    assert "recovery: answers from 0, 1, 2; floor" in cluster.log_tail(3, 200)
    target = max((await cluster.heights()).values()) + 5
    await cluster.wait_height(target, timeout=60)
