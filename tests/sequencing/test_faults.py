"""A replica's fault injection (sequencing/replica/faults.py): modes, and the storage crash hook
that ORDO_CRASH_AT sets up."""

from __future__ import annotations

import pytest
from node_rig import World

from sequencing.replica import faults
from sequencing.replica.faults import BYZANTINE_MODES, FaultInjection, UnknownFaultMode, crash_hook_from_env


class Died(Exception):
    pass


def test_an_unknown_byzantine_mode_is_refused_not_ignored() -> None:
    signer = World.make(4).signer(1)
    with pytest.raises(UnknownFaultMode, match="double-vote"):
        FaultInjection(signer, byzantine="double-voet")
    for mode in BYZANTINE_MODES:
        FaultInjection(signer, byzantine=mode)


def test_double_vote_answers_only_for_own_votes() -> None:
    world = World.make(4)
    injection = FaultInjection(world.signer(1), byzantine="double-vote")
    assert injection.extra_broadcasts(world.vote(2, 1, b"\x01" * 32)) == []
    assert len(injection.extra_broadcasts(world.vote(1, 1, b"\x01" * 32))) == 1


def test_no_crash_hook_without_the_variable() -> None:
    assert crash_hook_from_env({}) is None
    assert crash_hook_from_env({"ORDO_CRASH_AT": ""}) is None


def test_the_crash_hook_dies_at_the_nth_visit_of_its_point(monkeypatch: pytest.MonkeyPatch) -> None:
    def die(code: int) -> None:
        raise Died(code)

    monkeypatch.setattr(faults.os, "_exit", die)
    hook = crash_hook_from_env({"ORDO_CRASH_AT": "append:slices:2"})
    assert hook is not None
    hook("append:slices")
    hook("append:blocks")
    with pytest.raises(Died, match="137"):
        hook("append:slices")
