"""Rounds and round timeouts with exponential backoff. Time is only ever a duration here: the
I/O layer owns the clock and calls back ``on_timeout(round)``."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import LocalProtocolError


@dataclass(frozen=True, slots=True)
class PacemakerConfig:
    base_timeout: float = 1.0
    backoff: float = 2.0
    max_timeout: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.base_timeout <= self.max_timeout:
            raise LocalProtocolError("need 0 < base_timeout <= max_timeout")
        if self.backoff < 1.0:
            raise LocalProtocolError("backoff must be >= 1")


class Pacemaker:
    """Tracks the current round and how many rounds in a row ended by timeout."""

    __slots__ = ("config", "consecutive_timeouts", "entered_by_tc", "round")

    def __init__(self, config: PacemakerConfig, round: int = 1) -> None:
        self.config = config
        self.round = round
        self.consecutive_timeouts = 0
        self.entered_by_tc = False

    def copy(self) -> Pacemaker:
        other = Pacemaker(self.config, self.round)
        other.consecutive_timeouts = self.consecutive_timeouts
        other.entered_by_tc = self.entered_by_tc
        return other

    def advance(self, new_round: int, *, by_tc: bool) -> bool:
        """Enter ``new_round`` if it is ahead; returns whether the round changed."""
        if new_round <= self.round:
            return False
        self.round = new_round
        self.entered_by_tc = by_tc
        self.consecutive_timeouts = self.consecutive_timeouts + 1 if by_tc else 0
        return True

    def duration(self) -> float:
        c = self.config
        return min(c.max_timeout, c.base_timeout * c.backoff ** min(self.consecutive_timeouts, 32))
