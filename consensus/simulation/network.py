"""The simulated network: seeded per-link delay, loss, duplication, partitions and filters.

Endpoints are *instances* (a Twins replica has two instances sharing one replica id). A message
addressed to a replica id reaches every live instance of that id that the link rules allow.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Instance = int
LinkFilter = Callable[[Instance, Instance, Any, float], bool]

# A link must be able to take at least this long (max_delay). With every delay at (or near) zero,
# rounds advance through QCs alone and take no virtual time, so a run never reaches its end time:
# found when the schedule strategy drew min_delay = max_delay = 0 and one example ran for an hour.
SLOWEST_DELAY_FLOOR = 0.001


@dataclass(frozen=True, slots=True)
class LinkConfig:
    min_delay: float = 0.01
    max_delay: float = 0.05
    drop: float = 0.0
    duplicate: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_delay <= self.max_delay:
            raise ValueError("need 0 <= min_delay <= max_delay")
        if self.max_delay < SLOWEST_DELAY_FLOOR:
            raise ValueError(f"max_delay must be at least {SLOWEST_DELAY_FLOOR} s (virtual time must advance)")
        if not (0 <= self.drop <= 1 and 0 <= self.duplicate <= 1):
            raise ValueError("drop and duplicate are probabilities")


class SimNetwork:
    """Decides, for each message, whether and when it arrives. Pure function of the seed and the
    sequence of calls."""

    def __init__(self, rng: random.Random, default: LinkConfig | None = None) -> None:
        self._rng = rng
        self.default = default or LinkConfig()
        self._links: dict[tuple[Instance, Instance], LinkConfig] = {}
        self._groups: list[frozenset[Instance]] | None = None
        self.filters: list[LinkFilter] = []
        self.sent = 0
        self.dropped = 0

    def set_link(self, src: Instance, dst: Instance, config: LinkConfig) -> None:
        self._links[(src, dst)] = config

    def set_all_links(self, config: LinkConfig) -> None:
        self._links.clear()
        self.default = config

    def partition(self, groups: Iterable[Iterable[Instance]]) -> None:
        """Only instances in the same group can talk; instances in no group are isolated."""
        self._groups = [frozenset(g) for g in groups]

    def heal(self) -> None:
        self._groups = None

    @property
    def partitioned(self) -> bool:
        return self._groups is not None

    def connected(self, src: Instance, dst: Instance, message: Any, now: float) -> bool:
        if src == dst:
            return True
        if self._groups is not None and not any(src in g and dst in g for g in self._groups):
            return False
        return all(f(src, dst, message, now) for f in self.filters)

    def delays(self, src: Instance, dst: Instance, message: Any, now: float) -> list[float]:
        """Delivery delays for one send: [] if lost, two entries if duplicated."""
        self.sent += 1
        if not self.connected(src, dst, message, now):
            self.dropped += 1
            return []
        link = self._links.get((src, dst), self.default)
        rng = self._rng
        if link.drop and rng.random() < link.drop:
            self.dropped += 1
            return []
        out = [rng.uniform(link.min_delay, link.max_delay)]
        if link.duplicate and rng.random() < link.duplicate:
            out.append(rng.uniform(link.min_delay, link.max_delay))
        return out
