"""The voting and timeout rules (Jolteon / DiemBFT-v4, 2-chain) and the state they need.

:class:`SafetyState` is what must be durably persisted before any vote or timeout that depends on
it leaves the replica; the core emits it as a ``PersistSafety`` action ahead of the send.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .encoding import expect_int, expect_list, pack, unpack
from .messages import Block, QuorumCert, TimeoutCert


@dataclass(frozen=True, slots=True)
class SafetyState:
    """``highest_voted_round``: the last round this replica voted or timed out in.
    ``high_qc``: the highest QC it has seen (2-chain lock: timeouts must carry at least this).
    ``recovery_floor``: after losing its disk, a replica signs nothing at or below this round.
    """

    highest_voted_round: int
    high_qc: QuorumCert
    recovery_floor: int = 0

    @classmethod
    def initial(cls, genesis_qc: QuorumCert) -> SafetyState:
        return cls(0, genesis_qc, 0)

    def to_wire(self) -> list[Any]:
        return [self.highest_voted_round, self.high_qc.to_wire(), self.recovery_floor]

    @classmethod
    def from_wire(cls, wire: Any) -> SafetyState:
        hvr, hqc, floor = expect_list(wire, "safety", length=3)
        return cls(
            expect_int(hvr, "safety.highest_voted_round"),
            QuorumCert.from_wire(hqc),
            expect_int(floor, "safety.recovery_floor"),
        )

    def encode(self) -> bytes:
        return pack(self.to_wire())

    @classmethod
    def decode(cls, data: bytes) -> SafetyState:
        return cls.from_wire(unpack(data, max_size=1 << 20))


class SafetyRules:
    """The rules as pure functions of (state, input). Tests subclass this to weaken one rule and
    check that the property checkers notice (see tests/test_teeth.py)."""

    def observe_qc(self, state: SafetyState, qc: QuorumCert) -> SafetyState:
        if qc.round > state.high_qc.round:
            return replace(state, high_qc=qc)
        return state

    def safe_to_vote(self, state: SafetyState, block: Block, last_tc: TimeoutCert | None) -> bool:
        r = block.round
        if r <= state.highest_voted_round or r <= state.recovery_floor:
            return False
        if block.qc.round + 1 == r:
            return True
        return last_tc is not None and last_tc.round + 1 == r and block.qc.round >= last_tc.max_hqc_round

    def safe_to_timeout(
        self, state: SafetyState, round: int, high_qc: QuorumCert, last_tc: TimeoutCert | None
    ) -> bool:
        if round < state.highest_voted_round or round <= state.recovery_floor:
            return False
        if high_qc.round < state.high_qc.round:
            return False
        return high_qc.round + 1 == round or (last_tc is not None and last_tc.round + 1 == round)

    def record_vote(self, state: SafetyState, round: int) -> SafetyState:
        return replace(state, highest_voted_round=max(state.highest_voted_round, round))
