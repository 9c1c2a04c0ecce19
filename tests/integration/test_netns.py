"""Replicas as separate hosts (sequencing/cluster/netns.py): each in its own network namespace with
its own address; a cut link is a kernel route, not the transport's fault layer. Skipped, with the
reason, where namespaces are refused (not root, no iproute2, a container without the capability)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sequencing.cluster import netns
from sequencing.cluster.local import FAST_TIMING, LocalCluster, write_local_config

REFUSED = netns.refused()
pytestmark = pytest.mark.skipif(REFUSED is not None, reason=f"network namespaces: {REFUSED}")


@pytest.fixture
async def lab_cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    lab = netns.NetnsLab(4, tag=f"t{abs(hash(tmp_path)) % 4096:x}")
    lab.setup()
    cluster = LocalCluster(write_local_config(tmp_path, n=4, timing=FAST_TIMING, hosts=lab.hosts),
                           log_level="warning", netns=lab)
    try:
        await cluster.start_all()
        yield cluster
    finally:
        await cluster.stop_all()
        lab.teardown()


async def test_a_replica_cut_off_in_the_kernel_stalls_and_catches_up_after_the_heal(lab_cluster: LocalCluster) -> None:
    """Catches: faults that only the transport's fault layer could apply (the kernel cut must
    stop replica 3 for real, the others go on) and a lab whose heal leaves a route behind."""
    cluster, lab = lab_cluster, lab_cluster.netns
    assert lab is not None
    await cluster.wait_height(3)
    assert {r.host for r in cluster.config.replicas} == set(lab.hosts), "each replica on its own address"
    for peer in (0, 1, 2):
        await cluster.set_faults(3, {str(peer): {"blocked": True}})
        await cluster.set_faults(peer, {"3": {"blocked": True}})
    assert lab.blocked(3) == [0, 1, 2] and lab.blocked(0) == [3]
    transport = (await cluster.set_faults(0, {"1": {"delay": 0.001}}))["transport"]
    assert transport["1"]["delay"] == 0.001, "other rules still reach the admin API inside the namespace"
    stalled = (await cluster.heights())[3]
    others = max((await cluster.heights()).values())
    await cluster.wait_height(others + 10, ids=[0, 1, 2])
    assert (await cluster.heights())[3] <= stalled + 1, "replica 3 kept committing through a kernel cut"
    for rid in cluster.ids:
        await cluster.clear_faults(rid)
    assert all(lab.blocked(r) == [] for r in cluster.ids)
    await cluster.wait_height(others + 13)


@pytest.mark.slow
def test_a_fault_script_runs_with_netns(tmp_path: Path) -> None:
    """`--netns` on a scenario: its replicas on their own addresses, the partition cut in the
    kernel, the verdict ok; no namespace is left behind."""
    import json
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "scripts" / "faults" / "partition"
    before = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    done = subprocess.run([sys.executable, str(script), "--netns", "--seconds", "2"], capture_output=True,
                          text=True, timeout=300, check=False)
    verdict = json.loads(done.stdout)
    assert done.returncode == 0 and verdict["ok"], done.stderr[-3000:]
    assert len(set(verdict["netns"]["hosts"])) == 4
    after = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    assert after == before, "the script left network namespaces behind"
