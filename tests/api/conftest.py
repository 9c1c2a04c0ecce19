"""One real cluster shared by every test in tests/api (see apiutil.ClusterThread)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from .apiutil import ClusterThread, start_cluster


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterThread]:
    thread = start_cluster(tmp_path_factory.mktemp("api-cluster"))
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
async def http(cluster: ClusterThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cluster.api(0), timeout=10) as client:
        yield client
