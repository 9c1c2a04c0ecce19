"""The sequencer end to end with real processes: load across rollups with a replica killed (-9)
and restarted mid-run, crashes in the middle of a commit, a lost disk, a double-voting replica,
and catch-up."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from consensus.crypto import Verifier
from consensus.evidence import verify_evidence
from consensus.messages import Evidence
from sequencing.cluster.acked_load import ROLLUPS, AckedLoad, check_exactly_once, converged_rollups
from sequencing.cluster.local import FAST_TIMING as TIMING
from sequencing.cluster.local import HarnessError, LocalCluster, write_local_config
from sequencing.keys import committee_of


async def duplicates(c: LocalCluster, replica_id: int) -> str:
    """Diagnostic: payloads that appear more than once in the committed sub-logs, with heights."""
    height = (await c.status(replica_id) or {}).get("committed_height", 0)
    seen: dict[str, list[int]] = {}
    for h in range(1, height + 1):
        for rollup in ROLLUPS:
            proof = (await c.get(replica_id, f"/v1/rollups/{rollup}/slices/{h}")).json()
            for tx in proof["transactions"]:
                seen.setdefault(f"{rollup}:{bytes.fromhex(tx).decode(errors='replace')}", []).append(h)
    dups = {k: v for k, v in seen.items() if len(v) > 1}
    return f"{len(dups)} duplicated payloads, e.g. {list(dups.items())[:5]}"


async def until_acked(load: AckedLoad, count: int, timeout: float = 60.0) -> None:
    with trio.fail_after(timeout):
        while len(load.acked) < count or len(load.bundles) <= 5:
            await trio.sleep(0.1)


async def test_load_with_a_replica_killed_and_restarted(cluster: LocalCluster) -> None:
    load = AckedLoad(cluster)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(load.run)
        await until_acked(load, 1000)  # by count, not time: a loaded CI machine acks fewer per second
        await cluster.kill(2)
        await load.stop()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: load.run(targets=lambda: [0, 1, 3]))
        await trio.sleep(3)
        await cluster.start(2)
        await cluster.wait_ready([2])
        await trio.sleep(3)
        await load.stop()
    summary = await converged_rollups(cluster)
    assert len(load.acked) > 1000 and len(load.bundles) > 5
    await check_exactly_once(cluster, load, summary, replica=2)


@dataclass(frozen=True)
class CrashScenario:
    """Where replica 3 dies (a storage crash point, the n-th time it is reached) and what makes it
    reach that point: steady commits, catching up (several blocks written at once) or evidence
    from a double-voting replica 2."""

    point: str
    hit: int = 15
    behind: int = 0  # start replica 3 this many blocks late, so it catches up with append_many
    double_voter: bool = False

    def __str__(self) -> str:
        return self.point


CRASH_SCENARIOS = [
    CrashScenario("append:blocks"), CrashScenario("append:txindex"), CrashScenario("append:rollups"),
    CrashScenario("append:before-commit"), CrashScenario("append:after-commit"),
    CrashScenario("save_safety:write"), CrashScenario("save_safety:after-commit"),
    CrashScenario("append_many:slices", hit=1, behind=40),
    CrashScenario("append_many:after-commit", hit=1, behind=40),
    CrashScenario("save_evidence:before-commit", hit=1, double_voter=True),
    CrashScenario("save_evidence:after-commit", hit=1, double_voter=True),
]
DEFAULT_CRASH_POINTS = ("append:txindex", "append:after-commit")


@pytest.mark.parametrize("scenario", [s for s in CRASH_SCENARIOS if s.point in DEFAULT_CRASH_POINTS], ids=str)
async def test_crash_in_the_middle_of_a_commit_loses_nothing(tmp_path: Path, scenario: CrashScenario) -> None:
    await crash_and_recover(tmp_path, scenario)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", [s for s in CRASH_SCENARIOS if s.point not in DEFAULT_CRASH_POINTS], ids=str)
async def test_crash_in_the_middle_of_a_commit_more_points(tmp_path: Path, scenario: CrashScenario) -> None:
    await crash_and_recover(tmp_path, scenario)


async def crash_and_recover(tmp_path: Path, scenario: CrashScenario) -> None:
    c = LocalCluster(write_local_config(tmp_path, n=4, timing=TIMING))
    try:
        c.prepare()
        await c.start(0)
        await c.start(1)
        await c.start(2, *(("--byzantine", "double-vote") if scenario.double_voter else ()))
        load = AckedLoad(c)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: load.run(targets=lambda: [0, 1, 2]))
            if scenario.behind:
                await c.wait_height(scenario.behind, ids=[0, 1, 2], timeout=60)
            os.environ["ORDO_CRASH_AT"] = f"{scenario.point}:{scenario.hit}"
            try:
                await c.start(3)
            finally:
                del os.environ["ORDO_CRASH_AT"]
            with trio.fail_after(60):
                while c.processes[3].returncode is None:
                    await trio.sleep(0.1)
            assert c.processes[3].returncode == 137, c.log_tail(3)
            before = await c.heights()
            await c.start(3)
            await c.wait_ready([3])
            await trio.sleep(2)
            await load.stop()
        summary = await converged_rollups(c)
        await check_exactly_once(c, load, summary, replica=3)
        height = max(before.values())
        ids0 = [(await c.get(0, f"/v1/blocks/{h}")).json()["id"] for h in range(1, height)]
        ids3 = [(await c.get(3, f"/v1/blocks/{h}")).json()["id"] for h in range(1, height)]
        assert ids0 == ids3
        for rid in c.ids:
            offenders = {e["offender"] for e in (await c.get(rid, "/v1/evidence")).json()}
            assert offenders <= ({2} if scenario.double_voter else set()), (
                f"replica {rid} holds evidence against {offenders} after the crash")
        if scenario.double_voter:  # the restarted replica knows the committed evidence exactly once
            await wait_for_committed_evidence(c, 3)
    finally:
        await c.stop_all()


async def wait_for_committed_evidence(c: LocalCluster, replica_id: int) -> None:
    with trio.fail_after(40):
        while True:
            listed = (await c.get(replica_id, "/v1/evidence")).json()
            if any(e["committed_height"] is not None for e in listed):
                break
            await trio.sleep(0.2)
    assert len({e["id"] for e in listed}) == len(listed), f"evidence listed twice: {listed}"


async def test_lost_disk_needs_recover_and_then_rejoins_safely(cluster: LocalCluster) -> None:
    await cluster.wait_height(10)
    await cluster.stop(3)
    database = cluster.config.replica_dir(3) / "ordo.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    await cluster.start(3)
    with trio.fail_after(30):
        await cluster.processes[3].wait()
    assert cluster.processes[3].returncode != 0
    assert "--recover" in cluster.log_tail(3)
    await cluster.start(3, "--recover")
    await cluster.wait_ready([3], timeout=60)
    target = max((await cluster.heights()).values()) + 10
    await cluster.wait_height(target, timeout=60)
    # replica 3 votes again: it signs QCs of blocks committed after its recovery
    signers = set()
    for h in range(target - 8, target):
        signers.update((await cluster.get(0, f"/v1/blocks/{h}")).json()["qc"]["signers"])
    assert 3 in signers
    for rid in cluster.ids:
        assert (await cluster.get(rid, "/v1/evidence")).json() == []


async def test_double_voter_evidence_is_gossiped_committed_and_verifiable(tmp_path: Path) -> None:
    c = LocalCluster(write_local_config(tmp_path, n=4, timing=TIMING))
    try:
        c.prepare()
        for rid in (0, 1, 2):
            await c.start(rid)
        await c.start(3, "--byzantine", "double-vote")
        await c.wait_ready()
        verifier = Verifier(committee_of(c.config))
        with trio.fail_after(40):
            while True:
                listed = (await c.get(1, "/v1/evidence")).json()
                if any(e["committed_height"] is not None for e in listed):
                    break
                await trio.sleep(0.2)
        committed = [e for e in listed if e["committed_height"] is not None]
        for entry in committed:
            evidence = Evidence.decode(bytes.fromhex(entry["evidence"]))
            verify_evidence(evidence, verifier)
            assert evidence.offender == 3
            block = (await c.get(0, f"/v1/blocks/{entry['committed_height']}")).json()
            assert entry["id"] in block["evidence"]
        for rid in (0, 2):  # every honest replica knows it (recorded itself or through gossip)
            ids = {e["id"] for e in (await c.get(rid, "/v1/evidence")).json()}
            assert committed[0]["id"] in ids
    finally:
        await c.stop_all()


async def test_catch_up_after_falling_behind(cluster: LocalCluster) -> None:
    await cluster.stop(3)
    load = AckedLoad(cluster)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: load.run(targets=lambda: [0, 1, 2], per_tick=10, tick=0.1))
        start_height = max((await cluster.heights()).values())
        await cluster.wait_height(start_height + 100, ids=[0, 1, 2], timeout=90)
        await load.stop()
    target = max((await cluster.heights()).values())
    behind = target - ((await cluster.heights())[3] if cluster.running(3) else 0)
    started = time.perf_counter()
    await cluster.start(3)
    try:
        await cluster.wait_ready([3])
        await cluster.wait_height(target, ids=[3], timeout=90)
    except HarnessError:
        raise AssertionError(cluster.log_tail(3)) from None
    elapsed = time.perf_counter() - started
    print(f"\ncatch-up: {behind} blocks in {elapsed:.1f}s ({behind / elapsed:.0f} blocks/s, process start included)")
    summary = await converged_rollups(cluster)
    await check_exactly_once(cluster, load, summary, replica=3)


async def test_a_transaction_submitted_to_two_replicas_commits_once(cluster: LocalCluster) -> None:
    """Exactly once across replicas (docs/PROTOCOL.md section 12): the same transactions sent to
    two replicas (a client retrying elsewhere) are acknowledged by both and commit once. Replica 3
    is cut off while they commit through replica 0, so its copies stay in its own batches; after
    the heal those batches reach a later block, whose split skips what its window already holds.
    Catches the split without its window (the per-rollup counts then exceed the submissions)."""
    load = AckedLoad(cluster)

    async def submit(replica: int, txs: list[dict[str, object]]) -> None:
        response = await cluster.post(replica, "/v1/transactions/batch", json={"transactions": txs})
        assert response.status_code == 200, response.text
        for tx, tx_id in zip(txs, response.json()["ids"], strict=True):
            assert tx_id is not None, f"replica {replica} refused {tx}: it cannot know of the other copy"
            load.acked[tx_id] = int(str(tx["rollup_id"]))

    await cluster.set_faults(3, {str(p): {"blocked": True} for p in (0, 1, 2)})
    for p in (0, 1, 2):
        await cluster.set_faults(p, {"3": {"blocked": True}})
    txs: list[dict[str, object]] = [{"rollup_id": ROLLUPS[k % len(ROLLUPS)], "data": f"twice-{k}"}
                                    for k in range(200)]
    height = max((await cluster.heights()).values())
    await submit(0, txs)
    await submit(3, txs)
    await cluster.wait_height(height + 5, ids=[0, 1, 2])
    for p in cluster.ids:
        await cluster.clear_faults(p)
    summary = await converged_rollups(cluster)
    await check_exactly_once(cluster, load, summary, replica=3)
    skipped = [await cluster.metric(r, "ordo_duplicate_txs_skipped_total") for r in cluster.ids]
    assert all(s >= len(txs) for s in skipped), f"the copies were not skipped by every split: {skipped}"
