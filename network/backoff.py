"""Capped exponential backoff with jitter for redialling a peer."""

from __future__ import annotations

import random


class Backoff:
    """Delays ``initial, 2*initial, ...`` capped at ``maximum``, each shortened by a random
    fraction of up to ``jitter`` so that replicas restarted together do not redial in lockstep."""

    __slots__ = ("_attempt", "_rng", "initial", "jitter", "maximum")

    def __init__(self, initial: float, maximum: float, jitter: float, rng: random.Random) -> None:
        if not 0 < initial <= maximum or not 0 <= jitter <= 1:
            raise ValueError("need 0 < initial <= maximum and 0 <= jitter <= 1")
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
        self._rng = rng
        self._attempt = 0

    def next_delay(self) -> float:
        base = min(self.maximum, self.initial * 2.0 ** min(self._attempt, 62))
        self._attempt += 1
        return base * (1.0 - self.jitter * self._rng.random())

    def reset(self) -> None:
        self._attempt = 0
