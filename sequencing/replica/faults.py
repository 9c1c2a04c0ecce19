"""A replica's own fault injection, in one place; never on by default. Two kinds:

- Byzantine behaviour it is started with (``ordo replica --byzantine MODE``, ``ordo up --byzantine
  ID:MODE``): ``double-vote`` follows every vote it broadcasts with a second signed vote for a
  made-up block in the same round (slashing evidence for the others to find).
- Storage crash points (``ORDO_CRASH_AT=<crash point>:<n>``, tests only): the process dies like
  kill -9 the n-th time storage reaches that point.

The node asks one ``FaultInjection`` (built from its ``NodeOptions``) and never tests a mode itself.
Elsewhere: transport faults (drop/delay/partition) are ``network/faults.py``, set at run time through
the admin API (``sequencing/api``); simulated Byzantine replicas are ``consensus/simulation/``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from consensus.crypto import SignatureKind, Signer
from consensus.encoding import hash_bytes
from consensus.messages import ConsensusMessage, Vote

BYZANTINE_MODES = ("double-vote",)
CrashHook = Callable[[str], None]


class UnknownFaultMode(ValueError):
    """A ``--byzantine`` mode this replica does not know."""


def conflicting_vote(signer: Signer, vote: Vote) -> Vote:
    """A second signed vote for a made-up block in the same round ("double-vote")."""
    fake = hash_bytes(b"ordo/byzantine" + vote.block_id)
    return Vote(vote.round, fake, signer.replica_id, signer.sign(SignatureKind.VOTE, vote.round, fake))


class FaultInjection:
    """What a replica does besides the protocol in a fault-injection run (nothing by default)."""

    def __init__(self, signer: Signer, *, byzantine: str | None = None,
                 storage_crash_hook: CrashHook | None = None) -> None:
        if byzantine is not None and byzantine not in BYZANTINE_MODES:
            raise UnknownFaultMode(f"unknown --byzantine mode {byzantine!r}; known: {', '.join(BYZANTINE_MODES)}")
        self._signer = signer
        self.double_vote = byzantine == "double-vote"
        self.storage_crash_hook = storage_crash_hook

    def extra_broadcasts(self, message: ConsensusMessage) -> list[ConsensusMessage]:
        """What to broadcast after ``message`` (which is broadcast as the core asked)."""
        if self.double_vote and isinstance(message, Vote) and message.voter == self._signer.replica_id:
            return [conflicting_vote(self._signer, message)]
        return []


def crash_hook_from_env(environ: Mapping[str, str] = os.environ) -> CrashHook | None:
    """``ORDO_CRASH_AT=<crash point>:<n>`` (test-only): die like kill -9 (``os._exit``, nothing
    flushed or closed) the n-th time storage reaches that point, e.g. ``append:slices:3``."""
    spec = environ.get("ORDO_CRASH_AT")
    if not spec:
        return None
    point, _, count = spec.rpartition(":")
    remaining = [int(count)]

    def hook(name: str) -> None:
        if name == point:
            remaining[0] -= 1
            if remaining[0] <= 0:
                os.write(2, f"ORDO_CRASH_AT: dying at {name}\n".encode())
                os._exit(137)

    return hook
