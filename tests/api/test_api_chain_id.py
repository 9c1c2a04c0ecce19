"""A client whose committee names another chain id than the replica's is told "chain id
mismatch", not only that a QC carries an invalid signature."""

from __future__ import annotations

import pytest

from consensus.committee import Committee
from sequencing.client.client import AsyncOrdoClient, ProofFailed

from .apiutil import ClusterThread


async def test_a_wrong_chain_id_is_named_by_the_client(cluster: ClusterThread) -> None:
    await cluster.wait_height(2)
    wrong = Committee("not-this-chain", cluster.committee.public_keys)
    async with AsyncOrdoClient(cluster.api(0), wrong) as client:
        with pytest.raises(ProofFailed) as err:
            await client.slice(1, 1)
        assert str(err.value).startswith(
            f"chain id mismatch: expected 'not-this-chain' (the committee's), got {cluster.config.chain_id!r}")
        with pytest.raises(ProofFailed, match=r"^chain id mismatch"):
            async for _ in client.subscribe(1, 1):
                break
    async with AsyncOrdoClient(cluster.api(0), cluster.committee) as client:
        await client.slice(1, 1)  # the right committee verifies
