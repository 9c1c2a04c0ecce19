"""A fresh 4-replica cluster of real processes per test (free ports, data under tmp_path)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sequencing.cluster.local import FAST_TIMING, LocalCluster, running_cluster, write_local_config


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    async with running_cluster(write_local_config(tmp_path, n=4, timing=FAST_TIMING)) as c:
        yield c
