"""Helpers for tests/api: a real cluster (4 replica processes on loopback) in a background thread.

pytest-trio runs each test in its own ``trio.run`` and allows only function-scoped async
fixtures, so the shared cluster lives in a trio run of its own on a background thread
(:class:`sequencing.cluster.cluster_thread.ClusterThread`); tests talk to it over HTTP like any
client, and call harness operations (restart a replica, ...) through :meth:`ClusterThread.run`."""

from __future__ import annotations

import random
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from consensus.committee import Committee
from sequencing.cluster.cluster_thread import ClusterThread as BaseClusterThread
from sequencing.cluster.local import FAST_TIMING as TIMING
from sequencing.cluster.local import write_local_config
from sequencing.config import ClusterConfig
from sequencing.keys import committee_of


class ClusterThread(BaseClusterThread):
    def __init__(self, config_path: Path) -> None:
        super().__init__(config_path, name="ordo-test-cluster")

    @property
    def config(self) -> ClusterConfig:
        return self.harness.config

    @property
    def committee(self) -> Committee:
        return committee_of(self.config)

    def api(self, replica_id: int = 0) -> str:
        return self.harness.api(replica_id)

    async def restart(self, replica_id: int) -> None:
        await self.run(self.harness.restart, replica_id)

    async def restart_byzantine(self, replica_id: int, mode: str) -> None:
        """Restart ``replica_id`` in a ``--byzantine`` mode (``restart`` brings it back honest)."""
        harness = self.harness

        async def restart() -> None:
            await harness.stop(replica_id)
            await harness.start(replica_id, "--byzantine", mode)
            await harness.wait_ready([replica_id])

        await self.run(restart)

    async def status(self, replica_id: int = 0) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=5) as http:
            return (await http.get(f"{self.api(replica_id)}/status")).json()  # type: ignore[no-any-return]

    async def wait_height(self, height: int, timeout: float = 30.0) -> None:
        await self.run(partial(self.harness.wait_height, height, timeout=timeout))


# The API tests probe semantics with many bad requests from one address: admission control
# (sequencing/api/limits.py, tested in test_api_limits and test_api_flood) would throttle them.
RELAXED_API = {"api_client_rate": 1_000_000, "api_client_burst": 1_000_000}


def start_cluster(directory: Path, *, relaxed_api: bool = True, **config: Any) -> ClusterThread:
    limits = {**(RELAXED_API if relaxed_api else {}), **config.pop("limits", {})}
    thread = ClusterThread(write_local_config(directory, n=4, timing=config.pop("timing", TIMING),
                                              limits=limits, **config))
    thread.start()
    return thread


def fresh_rollup() -> int:
    """A rollup id no other test (nor the fuzzer, which favours small ids) is likely to use, for
    tests that check a sub-log's exact contents on the shared cluster."""
    return random.randrange(10**6, 2**32 - 1)
