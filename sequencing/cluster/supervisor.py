"""Keeps ``ordo up``'s replicas running as a process supervisor would: a replica that exits is
reported (which one, how it ended, the tail of its log) and restarted after a backoff that doubles
with each recent restart (1 s, 2 s, 4 s ... capped); after ``max_restarts`` restarts within
``window`` seconds it is left down and the supervisor says so. The other replicas never notice:
a cluster of 3f + 1 exists to outlive f failures."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

import trio

from .local import LocalCluster, ReplicaExit

POLL_INTERVAL = 0.2
REFUSED_TO_START = 2  # the CLI's exit code for "refused before doing anything" (docs/OPERATIONS.md)


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    first_delay: float = 1.0
    max_delay: float = 30.0
    max_restarts: int = 5  # within `window`; one more exit and the replica is left down
    window: float = 120.0

    def delay(self, recent: int) -> float:
        return min(self.max_delay, self.first_delay * 2.0 ** recent)


@dataclass(slots=True)
class _Record:
    exits: list[dict[str, Any]] = field(default_factory=list)
    restart_times: list[float] = field(default_factory=list)
    state: str = "running"  # running | restarting | gave up
    gave_up_reason: str | None = None


class Supervisor:
    def __init__(self, cluster: LocalCluster, extra_args: dict[int, tuple[str, ...]] | None = None, *,
                 policy: RestartPolicy | None = None, out: TextIO | None = None) -> None:
        self.cluster = cluster
        self.extra_args = extra_args or {}
        self.policy = policy or RestartPolicy()
        self.out = out if out is not None else sys.stderr
        self.records: dict[int, _Record] = {rid: _Record() for rid in cluster.ids}
        self._started = trio.current_time()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                for exited in self.cluster.poll_exits():
                    self._on_exit(exited, nursery)
                await trio.sleep(POLL_INTERVAL)

    def _on_exit(self, exited: ReplicaExit, nursery: trio.Nursery) -> None:
        now = trio.current_time()
        record = self.records[exited.replica]
        recent = [t for t in record.restart_times if now - t <= self.policy.window]
        entry = {**exited.to_json(), "at_s": round(now - self._started, 1), "restart_in_s": None}
        record.exits.append(entry)
        print(f"ordo: replica {exited.replica} {exited.describe()}\n{exited.log_tail}", file=self.out, flush=True)
        if exited.returncode == REFUSED_TO_START:
            record.state = "gave up"
            record.gave_up_reason = (f"refused to start ({exited.last_line}); a restart would be refused "
                                     "the same way, so it is not restarted")
        elif len(recent) >= self.policy.max_restarts:
            record.state = "gave up"
            record.gave_up_reason = (f"{exited.describe()} after {len(recent)} restarts within "
                                     f"{self.policy.window:.0f} s; not restarting it again")
        if record.state == "gave up":
            print(f"ordo: replica {exited.replica} {record.gave_up_reason}", file=self.out, flush=True)
            return
        delay = self.policy.delay(len(recent))
        entry["restart_in_s"] = delay
        record.state = "restarting"
        print(f"ordo: restarting replica {exited.replica} in {delay:.0f} s "
              f"(restart {len(recent) + 1} of at most {self.policy.max_restarts} "
              f"within {self.policy.window:.0f} s)", file=self.out, flush=True)
        nursery.start_soon(self._restart, exited.replica, delay)

    async def _restart(self, rid: int, delay: float) -> None:
        await trio.sleep(delay)
        record = self.records[rid]
        record.restart_times.append(trio.current_time())
        await self.cluster.start(rid, *self.extra_args.get(rid, ()))
        record.state = "running"

    def note(self, rid: int) -> str | None:
        """One word or phrase for the status table about a replica that is down."""
        record = self.records.get(rid)
        if record is None or not record.exits:
            return None
        last = record.exits[-1]["exit"]
        return {"restarting": f"{last}, restarting", "gave up": f"{last}, given up"}.get(record.state)

    def report(self) -> dict[str, Any]:
        """Per replica that exited at least once: its exits and restarts, and whether it was given up."""
        return {str(rid): {"exits": r.exits, "restarts": len(r.restart_times), "state": r.state,
                           "gave_up": r.gave_up_reason}
                for rid, r in self.records.items() if r.exits}
