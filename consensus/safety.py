"""The voting and timeout rules (Jolteon / DiemBFT-v4, 2-chain) and the state they need.

:class:`SafetyState` is what must be durably persisted before any vote or timeout that depends on
it leaves the replica; the core emits it as a ``PersistSafety`` action ahead of the send.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .encoding import expect_int, expect_list, pack, unpack
from .errors import DecodeError
from .messages import Block, QuorumCert, TimeoutCert


@dataclass(frozen=True, slots=True)
class SafetyState:
    """``highest_voted_round``: the last round this replica voted or timed out in.
    ``high_qc``: the highest QC it has seen (2-chain lock: timeouts must carry at least this).
    ``recovery_floor``: after losing its disk, a replica signs nothing at or below this round.
    ``high_tc``: the highest TC it has seen. Not needed for safety but for liveness after a
    restart: a replica that signed in round ``r`` entered it with a certificate for ``r - 1``
    (a QC, kept as ``high_qc``, or this TC), and must resume in ``r`` with it. Without the TC it
    would restart in an earlier round in which it may no longer sign a timeout (its
    ``highest_voted_round`` is above it), and a whole cluster restarted that way never forms a
    TC again (found by the slow property profile).
    """

    highest_voted_round: int
    high_qc: QuorumCert
    recovery_floor: int = 0
    high_tc: TimeoutCert | None = None

    @classmethod
    def initial(cls, genesis_qc: QuorumCert) -> SafetyState:
        return cls(0, genesis_qc, 0)

    @property
    def resume_round(self) -> int:
        """The round a replica restarted from this state enters."""
        tc_round = self.high_tc.round if self.high_tc is not None else 0
        return max(self.high_qc.round, tc_round) + 1

    def to_wire(self) -> list[Any]:
        tc = None if self.high_tc is None else self.high_tc.to_wire()
        return [self.highest_voted_round, self.high_qc.to_wire(), self.recovery_floor, tc]

    @classmethod
    def from_wire(cls, wire: Any) -> SafetyState:
        fields = expect_list(wire, "safety", max_len=4)
        if len(fields) == 3:  # written before high_tc was kept
            fields = [*fields, None]
        if len(fields) != 4:
            raise DecodeError(f"safety: expected 4 fields, got {len(fields)}")
        hvr, hqc, floor, tc = fields
        return cls(
            expect_int(hvr, "safety.highest_voted_round"),
            QuorumCert.from_wire(hqc),
            expect_int(floor, "safety.recovery_floor"),
            None if tc is None else TimeoutCert.from_wire(tc),
        )

    def encode(self) -> bytes:
        return pack(self.to_wire())

    @classmethod
    def decode(cls, data: bytes) -> SafetyState:
        return cls.from_wire(unpack(data, max_size=1 << 20))


@dataclass(frozen=True, slots=True)
class NotSafeToVote:
    """Why a vote was refused, for logs (after aptos' ``NotSafeToVote``): the block's round and
    QC round, the TC's round if any, and the safety state the rule compared them with."""

    round: int
    qc_round: int
    tc_round: int | None
    highest_voted_round: int
    recovery_floor: int

    @classmethod
    def of(cls, state: SafetyState, block: Block, last_tc: TimeoutCert | None) -> NotSafeToVote:
        return cls(block.round, block.qc.round, None if last_tc is None else last_tc.round,
                   state.highest_voted_round, state.recovery_floor)

    def __str__(self) -> str:
        tc = "none" if self.tc_round is None else str(self.tc_round)
        return (f"not safe to vote: round {self.round}, qc round {self.qc_round}, tc round {tc}, "
                f"highest voted round {self.highest_voted_round}, recovery floor {self.recovery_floor}")


class SafetyRules:
    """The rules as pure functions of (state, input). Tests subclass this to weaken one rule and
    check that the property checkers notice (see tests/consensus/broken.py and test_teeth.py)."""

    def observe_qc(self, state: SafetyState, qc: QuorumCert) -> SafetyState:
        if qc.round > state.high_qc.round:
            return replace(state, high_qc=qc)
        return state

    def observe_tc(self, state: SafetyState, tc: TimeoutCert) -> SafetyState:
        if state.high_tc is None or tc.round > state.high_tc.round:
            return replace(state, high_tc=tc)
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
