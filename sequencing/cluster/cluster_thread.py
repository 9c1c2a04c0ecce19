"""A :class:`LocalCluster` run in a trio run of its own on a background thread, for callers that
cannot host it in theirs: pytest-trio runs each test in its own ``trio.run`` (so a cluster shared by
tests lives elsewhere), and Playwright's sync API blocks the thread it runs in (so the browser
tests drive the page from pytest's thread while the cluster runs here).

Operations on the cluster (restart a replica, ...) are sent into its run: :meth:`ClusterThread.run`
from another trio run, :meth:`ClusterThread.call` from a plain thread."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import trio

from .local import LocalCluster

T = TypeVar("T")


class ClusterThread:
    def __init__(self, config_path: Path, *, log_level: str = "info", name: str = "ordo-cluster-thread") -> None:
        self.config_path = config_path
        self.log_level = log_level
        self.cluster: LocalCluster | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    # -- lifecycle (called from the owner's thread) ----------------------------------------------

    def start(self, timeout: float = 90.0) -> None:
        """Start the cluster and return once it committed height 2 (raises if it did not)."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the cluster did not start")
        if self._error is not None:
            raise RuntimeError(f"the cluster did not start: {self._error!r}") from self._error

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
        cluster = LocalCluster(self.config_path, log_level=self.log_level)
        try:
            await cluster.start_all()
            await cluster.wait_height(2)
            self.cluster = cluster
            await self.while_up(cluster)
        finally:
            await cluster.stop_all()

    async def while_up(self, cluster: LocalCluster) -> None:
        """Runs while the cluster is up: says it is ready, then waits for :meth:`stop`. A subclass
        may run more around it (load, ...)."""
        assert self._stop is not None
        self._ready.set()
        await self._stop.wait()

    # -- use --------------------------------------------------------------------------------------

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``await fn(*args)`` in the cluster's trio run, from another trio run."""
        return await trio.to_thread.run_sync(partial(self.call, fn, *args))

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``await fn(*args)`` in the cluster's trio run, from a plain thread."""
        assert self._token is not None
        return trio.from_thread.run(fn, *args, trio_token=self._token)

    @property
    def harness(self) -> LocalCluster:
        assert self.cluster is not None
        return self.cluster
