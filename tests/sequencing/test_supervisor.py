"""ordo up's supervisor: a replica that exits is restarted after 1, 2, 4 ... s (capped), the others
are left alone, and after max_restarts restarts within the window it is given up, with the reason
in the report. A fake cluster and a virtual clock: no processes, no waiting."""

from __future__ import annotations

import io

import trio
import trio.testing

from sequencing.cluster.local import ReplicaExit
from sequencing.cluster.supervisor import RestartPolicy, Supervisor


class FakeCluster:
    ids = [0, 1, 2, 3]

    def __init__(self, crash_after: dict[int, float]) -> None:
        self.crash_after = crash_after  # replica -> seconds it lives after each (re)start
        self.pending: list[tuple[float, ReplicaExit]] = []
        self.starts: list[tuple[float, int]] = []

    def crash(self, rid: int, code: int = -9) -> None:
        self.pending.append((trio.current_time(), ReplicaExit(rid, code, f"log of {rid}")))

    def poll_exits(self) -> list[ReplicaExit]:
        now = trio.current_time()
        due = [e for t, e in self.pending if t <= now]
        self.pending = [(t, e) for t, e in self.pending if t > now]
        return due

    async def start(self, rid: int, *extra: str) -> None:
        self.starts.append((trio.current_time(), rid))
        if rid in self.crash_after:
            self.pending.append((trio.current_time() + self.crash_after[rid], ReplicaExit(rid, 1, "boom")))


def supervisor_start(supervisor: Supervisor) -> float:
    return supervisor._started


async def run_for(supervisor: Supervisor, seconds: float) -> None:
    with trio.move_on_after(seconds):
        await supervisor.run()


async def test_one_exit_is_restarted_after_a_second_and_nothing_else_is_touched(
        autojump_clock: trio.testing.MockClock) -> None:
    cluster = FakeCluster({})
    supervisor = Supervisor(cluster, {2: ("--byzantine", "double-vote")}, out=io.StringIO())  # type: ignore[arg-type]
    start = trio.current_time()
    cluster.crash(2)
    await run_for(supervisor, 10.0)
    assert [(round(t - start), rid) for t, rid in cluster.starts] == [(1, 2)]
    report = supervisor.report()
    assert list(report) == ["2"]
    assert report["2"]["restarts"] == 1 and report["2"]["state"] == "running" and report["2"]["gave_up"] is None
    assert report["2"]["exits"][0]["signal"] == "SIGKILL"


async def test_a_crash_loop_backs_off_and_is_given_up(autojump_clock: trio.testing.MockClock) -> None:
    cluster = FakeCluster({3: 0.5})  # dies half a second after every start
    out = io.StringIO()
    policy = RestartPolicy(first_delay=1.0, max_delay=8.0, max_restarts=5, window=120.0)
    supervisor = Supervisor(cluster, policy=policy, out=out)  # type: ignore[arg-type]
    cluster.crash(3, 1)
    await run_for(supervisor, 100.0)
    report = supervisor.report()["3"]
    assert [e["restart_in_s"] for e in report["exits"]] == [1.0, 2.0, 4.0, 8.0, 8.0, None]  # doubling, capped
    starts = [t for t, rid in cluster.starts if rid == 3]
    exits = [e["at_s"] for e in report["exits"]]
    assert [round(t - supervisor_start(supervisor) - x, 1) for t, x in zip(starts, exits, strict=False)] == \
        [1.0, 2.0, 4.0, 8.0, 8.0]  # and it really waited that long
    assert report["state"] == "gave up" and report["restarts"] == 5 and len(report["exits"]) == 6
    assert "after 5 restarts within 120 s" in report["gave_up"]
    assert "replica 3 exit code 1" in out.getvalue() and "boom" in out.getvalue()
    assert supervisor.note(3) == "exit code 1, given up"


async def test_restarts_older_than_the_window_no_longer_count(autojump_clock: trio.testing.MockClock) -> None:
    cluster = FakeCluster({1: 50.0})  # lives 50 s each time
    policy = RestartPolicy(first_delay=1.0, max_delay=30.0, max_restarts=2, window=40.0)
    supervisor = Supervisor(cluster, policy=policy, out=io.StringIO())  # type: ignore[arg-type]
    cluster.crash(1)
    await run_for(supervisor, 300.0)
    report = supervisor.report()["1"]
    assert report["state"] == "running" and report["restarts"] >= 5
    assert all(e["restart_in_s"] == 1.0 for e in report["exits"])


async def test_a_replica_that_refused_to_start_is_not_restarted(autojump_clock: trio.testing.MockClock) -> None:
    """Exit code 2 means the replica refused before doing anything (a lost key, a bad config): a
    restart would be refused the same way, so the supervisor reports it and leaves it down."""
    cluster = FakeCluster({})
    out = io.StringIO()
    supervisor = Supervisor(cluster, out=out)  # type: ignore[arg-type]
    cluster.pending.append((trio.current_time(), ReplicaExit(1, 2, "header\nordo: no key at data/replica-1/key")))
    await run_for(supervisor, 60.0)
    assert cluster.starts == []
    report = supervisor.report()["1"]
    assert report["state"] == "gave up" and report["restarts"] == 0
    assert "refused to start" in report["gave_up"] and "no key" in report["gave_up"]
    assert "not restarted" in out.getvalue()
