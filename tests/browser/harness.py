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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from sequencing.cluster.cluster_thread import ClusterThread
from sequencing.cluster.demo_load import LoadGenerator
from sequencing.cluster.local import FAST_TIMING, LocalCluster, write_local_config

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


class LiveCluster(ClusterThread):
    """A 4-replica :class:`LocalCluster` (fast timing, free ports) with demo load at ``rate`` tx/s,
    run in a trio run on a background thread from :meth:`start` to :meth:`stop`."""

    def __init__(self, directory: Path, *, rate: float = 150.0) -> None:
        super().__init__(write_local_config(directory, n=4, timing=FAST_TIMING), log_level="warning",
                         name="ordo-browser-cluster")
        self.rate = rate
        self.load: LoadGenerator | None = None

    def start(self, timeout: float = 120.0) -> None:
        super().start(timeout)

    async def while_up(self, cluster: LocalCluster) -> None:
        async with httpx.AsyncClient() as client, trio.open_nursery() as nursery:
            self.load = LoadGenerator(cluster.config, client, self.rate)
            nursery.start_soon(self.load.run)
            await super().while_up(cluster)
            nursery.cancel_scope.cancel()

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
