"""Helpers for tests/browser: Debian's chromium driven by Playwright, and a live cluster under
load in a trio run of its own.

Why threads: Playwright's sync API runs its own event loop (greenlets over a driver process) in
the calling thread and its objects belong to that thread. Called from a trio test it would block
trio's loop (the cluster harness and the load would stall whenever the browser waits), and
trio.to_thread's worker pool may hand each call a different thread. So the browser tests are
plain (non-trio) tests that drive the browser from pytest's thread, and the cluster with its load
runs in a trio run on a background thread (:class:`LiveCluster`); harness operations (kill a
replica, restart one as a double voter) are sent there with :meth:`LiveCluster.call`."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import trio

from sequencing.cluster.demo_load import LoadGenerator
from sequencing.cluster.local import FAST_TIMING, LocalCluster, write_local_config

T = TypeVar("T")
SCREENSHOT_DIR_ENV = "ORDO_SCREENSHOT_DIR"  # set: the README's screenshot is written there too


@dataclass
class Tab:
    """A browser page and what it logged: console errors and uncaught exceptions."""

    page: Any
    errors: list[str] = field(default_factory=list)


def chromium_or_skip() -> str:
    """The system's chromium (Debian's package), or skip with the reason. Playwright's own
    browser download is never used (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 in scripts/_venv.sh)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (it is in the test extra: pip install -e '.[test]')")
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("no Chromium on PATH: install Debian's chromium package (apt-get install -y chromium; "
                    "scripts/test does so when run as root)")
    return path


class LiveCluster:
    """A 4-replica :class:`LocalCluster` (fast timing, free ports) with demo load at ``rate`` tx/s,
    run in a trio run on a background thread from :meth:`start` to :meth:`stop`."""

    def __init__(self, directory: Path, *, rate: float = 150.0) -> None:
        self.config_path = write_local_config(directory, n=4, timing=FAST_TIMING)
        self.rate = rate
        self.cluster: LocalCluster | None = None
        self.load: LoadGenerator | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="ordo-browser-cluster", daemon=True)

    def start(self, timeout: float = 120.0) -> None:
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
        cluster = LocalCluster(self.config_path, log_level="warning")
        try:
            async with httpx.AsyncClient() as client, trio.open_nursery() as nursery:
                await cluster.start_all()
                await cluster.wait_height(2)
                self.cluster = cluster
                self.load = LoadGenerator(cluster.config, client, self.rate)
                nursery.start_soon(self.load.run)
                self._ready.set()
                await self._stop.wait()
                nursery.cancel_scope.cancel()
        finally:
            await cluster.stop_all()

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``await fn(*args)`` in the cluster's trio run, from pytest's thread."""
        assert self._token is not None
        return trio.from_thread.run(fn, *args, trio_token=self._token)

    @property
    def harness(self) -> LocalCluster:
        assert self.cluster is not None
        return self.cluster

    def url(self, replica: int, path: str = "/dashboard") -> str:
        return f"{self.harness.api(replica)}{path}"

    def status(self, replica: int) -> dict[str, Any] | None:
        return self.call(self.harness.status, replica)

    def log_tails(self) -> str:
        return "\n".join(self.harness.log_tail(r) for r in self.harness.ids)


def save_screenshot(page: Any, directory: Path, state: str, *, readme: bool = False) -> Path:
    """``directory/dashboard-<state>.png`` (the test's tmp dir); the README's one (``readme``) also
    goes to $ORDO_SCREENSHOT_DIR/dashboard.png when that is set (regenerates docs/dashboard.png)."""
    path = directory / f"dashboard-{state}.png"
    page.screenshot(path=str(path), full_page=True)
    target = os.environ.get(SCREENSHOT_DIR_ENV)
    if readme and target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(target) / "dashboard.png")
    return path
