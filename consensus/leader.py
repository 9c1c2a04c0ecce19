"""Leader schedules. The core only needs ``leader(round)``; reputation schemes fit behind it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from .messages import ReplicaId


class LeaderSchedule(Protocol):
    def leader(self, round: int) -> ReplicaId: ...


class RoundRobin:
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


class FunctionSchedule:
    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[[int], ReplicaId]) -> None:
        self._fn = fn

    def leader(self, round: int) -> ReplicaId:
        return self._fn(round)
