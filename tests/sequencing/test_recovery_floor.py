"""The lost-disk recovery floor (docs/PROTOCOL.md, "Lost disk: the recovery floor"): from a quorum
of verified peer statuses, ``floor = R + 2`` with ``R`` the highest certified round (QC or TC)
among them; forged certificates are ignored. Kills the mutant `recovery-floor-arithmetic`
(tests/mutation/catalogue.py), which survived the whole suite: with ``R + 1`` a recovered replica
could sign again in a round it may already have signed in before losing its disk."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "consensus"))

from consensus_factories import World

from consensus.messages import QuorumCert
from sequencing.recovery import recovery_floor
from sequencing.wire import StatusResponse

W = World.make(4)
B1, B2, B3, B4, B5 = W.chain([1, 2, 3, 4, 5])


class FakeCatchUp:
    """Answers each ``ask_statuses`` with the next round of peer statuses (the last one repeats)."""

    def __init__(self, *answers: dict[int, StatusResponse]) -> None:
        self.statuses: dict[int, StatusResponse] = {}
        self._answers = list(answers)
        self.asked = 0

    async def ask_statuses(self) -> None:
        self.statuses.update(self._answers[min(self.asked, len(self._answers) - 1)])
        self.asked += 1


def fake_node(*answers: dict[int, StatusResponse]) -> SimpleNamespace:
    return SimpleNamespace(
        id=0, committee=W.committee, verifier=W.verifier(), replica=None,
        config=SimpleNamespace(chain_id=W.chain_id), catch_up=FakeCatchUp(*answers),
    )


def status(qc: QuorumCert, tc_round: int | None = None) -> StatusResponse:
    tc = None if tc_round is None else W.tc(tc_round, {i: qc for i in range(W.committee.quorum)})
    return StatusResponse(qc, tc, qc.round)


async def test_floor_is_two_above_the_highest_certified_round() -> None:
    node = fake_node({1: status(W.qc(B3)), 2: status(W.qc(B5)), 3: status(W.qc(B4))})
    floor, high_qc = await recovery_floor(node, retry=0)  # type: ignore[arg-type]
    assert (floor, high_qc) == (5 + 2, W.qc(B5))


async def test_a_timeout_certificate_counts_as_a_certified_round() -> None:
    node = fake_node({1: status(W.qc(B3)), 2: status(W.qc(B4), tc_round=8), 3: status(W.qc(B4))})
    floor, high_qc = await recovery_floor(node, retry=0)  # type: ignore[arg-type]
    assert (floor, high_qc) == (8 + 2, W.qc(B4))


async def test_a_forged_certificate_is_not_counted_and_the_replica_waits_for_a_quorum() -> None:
    real = W.qc(B5)
    forged = dataclasses.replace(real, round=40)  # its signatures are for round 5
    node = fake_node({1: status(W.qc(B3)), 2: status(forged), 3: status(W.qc(B4))}, {2: status(W.qc(B2))})
    floor, high_qc = await recovery_floor(node, retry=0)  # type: ignore[arg-type]
    assert (floor, high_qc) == (4 + 2, W.qc(B4))
    assert node.catch_up.asked == 2
