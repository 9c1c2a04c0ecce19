"""Collects votes into QCs and timeouts into TCs, each exactly once per (round, block)."""

from __future__ import annotations

from .messages import BlockId, QuorumCert, ReplicaId, Timeout, TimeoutCert, Vote


class VoteAggregator:
    __slots__ = ("_done", "_quorum", "_votes")

    def __init__(self, quorum: int) -> None:
        self._quorum = quorum
        self._votes: dict[tuple[int, BlockId], dict[ReplicaId, bytes]] = {}
        self._done: set[tuple[int, BlockId]] = set()

    def add(self, vote: Vote) -> QuorumCert | None:
        key = (vote.round, vote.block_id)
        if key in self._done:
            return None
        bucket = self._votes.setdefault(key, {})
        bucket.setdefault(vote.voter, vote.signature)
        if len(bucket) < self._quorum:
            return None
        self._done.add(key)
        del self._votes[key]
        return QuorumCert(vote.round, vote.block_id, tuple(sorted(bucket.items())))

    def copy(self) -> VoteAggregator:
        other = VoteAggregator(self._quorum)
        other._votes = {k: dict(v) for k, v in self._votes.items()}
        other._done = set(self._done)
        return other

    def prune(self, below_round: int) -> None:
        self._votes = {k: v for k, v in self._votes.items() if k[0] >= below_round}
        self._done = {k for k in self._done if k[0] >= below_round}


class TimeoutAggregator:
    __slots__ = ("_done", "_quorum", "_timeouts")

    def __init__(self, quorum: int) -> None:
        self._quorum = quorum
        self._timeouts: dict[int, dict[ReplicaId, Timeout]] = {}
        self._done: set[int] = set()

    def add(self, timeout: Timeout) -> TimeoutCert | None:
        if timeout.round in self._done:
            return None
        bucket = self._timeouts.setdefault(timeout.round, {})
        bucket.setdefault(timeout.author, timeout)
        if len(bucket) < self._quorum:
            return None
        self._done.add(timeout.round)
        del self._timeouts[timeout.round]
        high_qc = max((t.high_qc for t in bucket.values()), key=lambda qc: qc.round)
        entries = tuple(
            (author, t.high_qc.round, t.signature) for author, t in sorted(bucket.items())
        )
        return TimeoutCert(timeout.round, high_qc, entries)

    def count(self, round: int) -> int:
        return len(self._timeouts.get(round, ()))

    def copy(self) -> TimeoutAggregator:
        other = TimeoutAggregator(self._quorum)
        other._timeouts = {k: dict(v) for k, v in self._timeouts.items()}
        other._done = set(self._done)
        return other

    def prune(self, below_round: int) -> None:
        self._timeouts = {r: v for r, v in self._timeouts.items() if r >= below_round}
        self._done = {r for r in self._done if r >= below_round}
