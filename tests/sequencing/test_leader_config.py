"""The node's leader schedule: ``[consensus] leader`` picks reputation (the default) or round-robin,
a bad value is a config error naming the key, and a restarted replica rebuilds the reputation
schedule from its stored committed blocks, so it chooses the leaders the others choose."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from node_rig import World, node_rig

from consensus.commit_proof import CommitProof
from consensus.leader import RoundRobin
from consensus.messages import Block
from consensus.reputation import ReputationSchedule
from sequencing.cluster.local import write_local_config
from sequencing.config import ConfigError, load_config
from sequencing.replica.events import Synced
from sequencing.rollup.block_content import BlockPayload, assemble


def config_with(tmp_path: Path, text: str) -> Path:
    path = write_local_config(tmp_path)
    path.write_text(path.read_text() + text)
    return path


def test_reputation_is_the_default_and_round_robin_can_be_chosen(tmp_path: Path) -> None:
    assert load_config(write_local_config(tmp_path / "a")).consensus.leader == "reputation"
    chosen = load_config(write_local_config(tmp_path / "b", consensus={"leader": "round-robin"}))
    assert chosen.consensus.leader == "round-robin"


@pytest.mark.parametrize("text,problem", [
    ('\n[consensus]\nleader = "random"\n', "must be one of 'reputation', 'round-robin', got 'random'"),
    ("\n[consensus]\nleader = 3\n", "must be str"),
    ('\n[consensus]\nwindow = 5\n', "unknown key"),
])
def test_a_bad_leader_setting_is_a_config_error(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(config_with(tmp_path, text))
    assert err.value.key.startswith("consensus.") and problem in err.value.problem


def synced_chain(w: World, count: int) -> tuple[list[Block], CommitProof]:
    """``count`` committed (empty) blocks that replica 3 neither authored nor voted for, with the
    commit proof of the last (its child at the next round, certified)."""
    payload = BlockPayload((), ()).encode()
    blocks: list[Block] = []
    parent = w.genesis
    for round in range(1, count + 2):
        qc = w.genesis_qc if parent.height == 0 else w.qc(parent, [0, 1, 2])
        block = Block(round, parent.height + 1, qc, round % 3, payload, assemble([]).data_root)
        blocks.append(block)
        parent = block
    child = blocks.pop()
    return blocks, CommitProof((blocks[-1].header(), child.header()), w.qc(child, [0, 1, 2]))


async def test_a_restarted_replica_rebuilds_the_reputation_schedule(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with node_rig(tmp_path, 0, run_executor=True) as rig:
        assert isinstance(rig.node.leaders, ReputationSchedule)
        blocks, proof = synced_chain(rig.world, 40)
        assert rig.node.post(Synced(tuple(blocks), proof))
        with trio.move_on_after(10):
            while rig.node.durable_height < 40:
                await trio.sleep(0.01)
        assert rig.node.durable_height == 40
        before = [rig.node.leaders.leader(r) for r in range(45, 60)]
    assert 3 not in before, "replica 3 neither proposed nor voted in the window"
    async with node_rig(tmp_path, 0) as rig:
        assert rig.replica.committed.height == 40
        assert [rig.node.leaders.leader(r) for r in range(45, 60)] == before
        assert rig.node.status()["leader"] == rig.node.leaders.leader(rig.replica.round)


async def test_round_robin_when_configured(tmp_path: Path, mock_clock: trio.abc.Clock) -> None:
    async with node_rig(tmp_path, 0, consensus={"leader": "round-robin"}) as rig:
        assert isinstance(rig.node.leaders, RoundRobin)
