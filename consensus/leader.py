"""Leader schedules. The core asks ``leader(round)`` and tells the schedule every block it commits
(``observe_commit``, in height order) and when an input it aborted had committed some
(``rewind``); round-robin ignores both, the reputation schedule (:mod:`reputation`) learns from
them. A schedule only ever costs liveness: the core checks a proposal's author against it, and the
safety rules (safety.py) never look at it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from .messages import Block, ReplicaId


class LeaderSchedule(Protocol):
    def leader(self, round: int) -> ReplicaId: ...

    def observe_commit(self, block: Block) -> None:
        """``block`` was committed (called in height order, possibly again for a known height)."""
        ...

    def rewind(self, height: int) -> None:
        """Forget what was learned from blocks above ``height`` (an aborted input committed them)."""
        ...


# A schedule for one replica incarnation, built from its committed log (oldest first): what a
# restarted replica needs to choose the same leaders as the others.
LeaderFactory = Callable[[Sequence[Block]], LeaderSchedule]


class _Stateless:
    __slots__ = ()

    def observe_commit(self, block: Block) -> None:
        return None

    def rewind(self, height: int) -> None:
        return None


class RoundRobin(_Stateless):
    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size

    def leader(self, round: int) -> ReplicaId:
        return round % self.size


class FixedSchedule:
    """A scenario-chosen leader per round (Twins), falling back to another schedule."""

    __slots__ = ("_fallback", "_leaders")

    def __init__(self, leaders: Mapping[int, ReplicaId], fallback: LeaderSchedule) -> None:
        self._leaders = dict(leaders)
        self._fallback = fallback

    def leader(self, round: int) -> ReplicaId:
        chosen = self._leaders.get(round)
        return self._fallback.leader(round) if chosen is None else chosen

    def observe_commit(self, block: Block) -> None:
        self._fallback.observe_commit(block)

    def rewind(self, height: int) -> None:
        self._fallback.rewind(height)


class FunctionSchedule(_Stateless):
    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[[int], ReplicaId]) -> None:
        self._fn = fn

    def leader(self, round: int) -> ReplicaId:
        return self._fn(round)
