"""The voting and timeout rules (Jolteon / DiemBFT-v4, 2-chain) and the state they need.

:class:`SafetyState` is what must be durably persisted before any vote or timeout that depends on
it leaves the replica; the core emits it as a ``PersistSafety`` action ahead of the send.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, ClassVar

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


class Refusal(StrEnum):
    """Which safety rule refused a signature (the value is the metric label). The rules are
    checked in this order and the first that fails is reported."""

    STALE_ROUND = "stale_round"  # vote: round <= highest voted round; timeout: round < it
    RECOVERY_FLOOR = "recovery_floor"  # round <= recovery floor (a replica that lost its disk)
    STALE_QC = "stale_qc"  # timeout: it would carry a QC older than its own high QC (the lock)
    NOT_JUSTIFIED = "not_justified"  # neither the QC nor a TC is of round - 1
    TC_LOCK = "tc_lock"  # vote after a TC: the block's QC is older than the TC's highest QC


@dataclass(frozen=True, slots=True)
class NotSafeToVote:
    """Why a vote (or an own proposal) was refused (after aptos' ``NotSafeToVote``): the rule,
    the block's round and QC round, the TC's round and highest QC round if any, and the safety
    state the rule compared them with."""

    reason: Refusal
    round: int
    qc_round: int
    tc_round: int | None
    tc_high_qc_round: int | None
    highest_voted_round: int
    recovery_floor: int
    signing: ClassVar[str] = "vote"

    @classmethod
    def of(
        cls, reason: Refusal, state: SafetyState, block: Block, last_tc: TimeoutCert | None
    ) -> NotSafeToVote:
        return cls(reason, block.round, block.qc.round,
                   None if last_tc is None else last_tc.round,
                   None if last_tc is None else last_tc.max_hqc_round,
                   state.highest_voted_round, state.recovery_floor)

    def __str__(self) -> str:
        return (f"not safe to vote ({self.reason}): round {self.round}, qc round {self.qc_round}, "
                f"tc round {_opt(self.tc_round)}, tc high qc round {_opt(self.tc_high_qc_round)}, "
                f"highest voted round {self.highest_voted_round}, recovery floor {self.recovery_floor}")


@dataclass(frozen=True, slots=True)
class NotSafeToTimeout:
    """Why a timeout was refused: the rule, the round, the round of the QC it would carry, the
    TC's round if any, and the safety state compared (``locked_round``: its high QC's round)."""

    reason: Refusal
    round: int
    qc_round: int
    tc_round: int | None
    highest_voted_round: int
    recovery_floor: int
    locked_round: int
    signing: ClassVar[str] = "timeout"

    @classmethod
    def of(
        cls, reason: Refusal, state: SafetyState, round: int, high_qc: QuorumCert,
        last_tc: TimeoutCert | None,
    ) -> NotSafeToTimeout:
        return cls(reason, round, high_qc.round, None if last_tc is None else last_tc.round,
                   state.highest_voted_round, state.recovery_floor, state.high_qc.round)

    def __str__(self) -> str:
        return (f"not safe to time out ({self.reason}): round {self.round}, qc round {self.qc_round}, "
                f"tc round {_opt(self.tc_round)}, highest voted round {self.highest_voted_round}, "
                f"recovery floor {self.recovery_floor}, locked round {self.locked_round}")


def _opt(value: int | None) -> str:
    return "none" if value is None else str(value)


class SafetyRules:
    """The rules as pure functions of (state, input); a refusal comes back as a typed reason with
    the numbers compared, ``None`` means safe. Tests subclass this to weaken one rule and check
    that the property checkers notice (see tests/consensus/broken.py and test_teeth.py)."""

    def observe_qc(self, state: SafetyState, qc: QuorumCert) -> SafetyState:
        if qc.round > state.high_qc.round:
            return replace(state, high_qc=qc)
        return state

    def observe_tc(self, state: SafetyState, tc: TimeoutCert) -> SafetyState:
        if state.high_tc is None or tc.round > state.high_tc.round:
            return replace(state, high_tc=tc)
        return state

    def vote_refusal(
        self, state: SafetyState, block: Block, last_tc: TimeoutCert | None
    ) -> NotSafeToVote | None:
        r = block.round
        if r <= state.highest_voted_round:
            return NotSafeToVote.of(Refusal.STALE_ROUND, state, block, last_tc)
        if r <= state.recovery_floor:
            return NotSafeToVote.of(Refusal.RECOVERY_FLOOR, state, block, last_tc)
        if block.qc.round + 1 == r:
            return None
        if last_tc is None or last_tc.round + 1 != r:
            return NotSafeToVote.of(Refusal.NOT_JUSTIFIED, state, block, last_tc)
        if block.qc.round < last_tc.max_hqc_round:
            return NotSafeToVote.of(Refusal.TC_LOCK, state, block, last_tc)
        return None

    def timeout_refusal(
        self, state: SafetyState, round: int, high_qc: QuorumCert, last_tc: TimeoutCert | None
    ) -> NotSafeToTimeout | None:
        reason: Refusal | None = None
        if round < state.highest_voted_round:
            reason = Refusal.STALE_ROUND
        elif round <= state.recovery_floor:
            reason = Refusal.RECOVERY_FLOOR
        elif high_qc.round < state.high_qc.round:
            reason = Refusal.STALE_QC
        elif high_qc.round + 1 != round and (last_tc is None or last_tc.round + 1 != round):
            reason = Refusal.NOT_JUSTIFIED
        return None if reason is None else NotSafeToTimeout.of(reason, state, round, high_qc, last_tc)

    def record_vote(self, state: SafetyState, round: int) -> SafetyState:
        return replace(state, highest_voted_round=max(state.highest_voted_round, round))
