"""Helpers for tests/api: a real cluster (4 replica processes on loopback) in a background thread.

pytest-trio runs each test in its own ``trio.run`` and allows only function-scoped async
fixtures, so the shared cluster lives in a trio run of its own on a background thread
(:class:`ClusterThread`); tests talk to it over HTTP like any client, and call harness operations
(restart a replica, ...) through :meth:`ClusterThread.run`."""

from __future__ import annotations

import random
import threading
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import trio

from consensus.committee import Committee
from sequencing.cluster.local import FAST_TIMING as TIMING
from sequencing.cluster.local import LocalCluster, write_local_config
from sequencing.config import ClusterConfig
from sequencing.keys import committee_of

T = TypeVar("T")


class ClusterThread:
    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.cluster: LocalCluster | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="ordo-test-cluster", daemon=True)

    # -- lifecycle (called from pytest's thread) ---------------------------------------------------

    def start(self, timeout: float = 90.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the test cluster did not start")
        if self._error is not None:
            raise RuntimeError(f"the test cluster did not start: {self._error}") from self._error

    def stop(self) -> None:
        if self._token is not None and self._stop is not None:
            try:
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        self._thread.join(60)

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        cluster = LocalCluster(self.config_path)
        try:
            await cluster.start_all()
            await cluster.wait_height(2)
            self.cluster = cluster
            self._ready.set()
            await self._stop.wait()
        finally:
            await cluster.stop_all()

    # -- use (from a test's own trio run) ----------------------------------------------------------

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await fn(*args)`` in the cluster's trio run (e.g. ``cluster.restart``)."""
        assert self._token is not None
        call = partial(trio.from_thread.run, fn, *args, trio_token=self._token)
        return await trio.to_thread.run_sync(call)

    @property
    def harness(self) -> LocalCluster:
        assert self.cluster is not None
        return self.cluster

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
