"""Leader reputation: the leader of a round is chosen from the replicas that were active in recent
committed history, so a crashed replica stops costing a round timeout every n-th round.

The rule (docs/PROTOCOL.md, "Leader election"): for round r, take the last ``window`` committed
blocks whose round is at most ``r - lag``. A replica is *active* if it authored one of them or
signed the QC one of them carries (the votes for its parent). If at least a quorum of replicas is
active, the leader is ``sorted(active)[r mod len(active)]``; otherwise (short history: only the
genesis QC, or nothing committed yet) it is round-robin, ``r mod n``. The candidate set is never
empty, and a replica that comes back and votes is active again once its vote is in a committed QC.

It is a function of the committed chain up to round ``r - lag`` only, which every honest replica
agrees on (agreement) once it has committed that far; the ``lag`` rounds cover replicas whose
commits trail their round by a few rounds. Replicas that still disagree (one far behind) only
waste a round: the schedule decides whose proposal is looked at, never what is safe to vote for.
Liveness with at most f faulty replicas: the candidates include a QC's signers, so there are at
least 2f+1 of them and at most f faulty, more than half are correct, and in the cyclic order two
correct candidates lead consecutive rounds (what the 2-chain commit needs) within one rotation.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from .messages import Block, ReplicaId

DEFAULT_WINDOW = 10  # committed blocks (at least 2n)
DEFAULT_LAG = 10  # rounds between the newest block a choice looks at and the round chosen for
_CACHE = 64


@dataclass(frozen=True, slots=True)
class _Entry:
    height: int
    round: int
    active: frozenset[ReplicaId]


def quorum_of(size: int) -> int:
    return (size + (size - 1) // 3 + 2) // 2


class ReputationSchedule:
    """One replica's reputation schedule. Feed it the committed blocks in height order
    (``observe_commit``; a restarted replica passes its stored tail as ``history``)."""

    __slots__ = ("_cache", "_entries", "lag", "quorum", "size", "window")

    def __init__(
        self, size: int, *, window: int | None = None, lag: int = DEFAULT_LAG, history: Sequence[Block] = ()
    ) -> None:
        if size < 1 or lag < 0 or (window is not None and window < 1):
            raise ValueError("need size >= 1, window >= 1 and lag >= 0")
        self.size = size
        self.window = window if window is not None else max(DEFAULT_WINDOW, 2 * size)
        self.lag = lag
        self.quorum = quorum_of(size)
        # Queries are for rounds above the committed root, so at most lag - 1 newer entries are
        # skipped before the window starts: window + lag entries answer every such query.
        self._entries: deque[_Entry] = deque(maxlen=self.keep)
        self._cache: dict[int, ReplicaId] = {}
        for block in history[-self.keep:]:
            self.observe_commit(block)

    @property
    def keep(self) -> int:
        """How many of the newest committed blocks the schedule needs (a restart loads these)."""
        return self.window + self.lag

    def observe_commit(self, block: Block) -> None:
        if self._entries and block.height <= self._entries[-1].height:
            return
        voters = frozenset(voter for voter, _ in block.qc.votes)
        self._entries.append(_Entry(block.height, block.round, voters | {block.author}))
        self._cache.clear()

    def rewind(self, height: int) -> None:
        while self._entries and self._entries[-1].height > height:
            self._entries.pop()
            self._cache.clear()

    def candidates(self, round: int) -> tuple[ReplicaId, ...]:
        horizon = round - self.lag
        active: set[ReplicaId] = set()
        taken = 0
        for entry in reversed(self._entries):
            if entry.round > horizon:
                continue
            active |= entry.active
            taken += 1
            if taken == self.window:
                break
        active = {r for r in active if 0 <= r < self.size}
        if len(active) < self.quorum:
            return tuple(range(self.size))
        return tuple(sorted(active))

    def leader(self, round: int) -> ReplicaId:
        chosen = self._cache.get(round)
        if chosen is None:
            candidates = self.candidates(round)
            chosen = candidates[round % len(candidates)]
            if len(self._cache) >= _CACHE:
                self._cache.clear()
            self._cache[round] = chosen
        return chosen
