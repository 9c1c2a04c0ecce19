"""Deliberately broken protocol variants. Test-only: each weakens exactly one rule so the teeth
tests can show that the property checkers notice."""

from __future__ import annotations

from dataclasses import replace

from consensus.actions import Action, Commit, PersistSafety
from consensus.commit_proof import CommitProof
from consensus.committee import Committee
from consensus.core import Replica
from consensus.crypto import SignatureKind, Verifier
from consensus.messages import Block, QuorumCert, ReplicaId, Timeout, TimeoutCert
from consensus.safety import NotSafeToVote, Refusal, SafetyRules, SafetyState
from consensus.simulation.node import SimNode
from consensus.simulation.sync import CatchUp


class NoRoundCheckRules(SafetyRules):
    """Votes even in a round it already voted or timed out in."""

    def vote_refusal(
        self, state: SafetyState, block: Block, last_tc: TimeoutCert | None
    ) -> NotSafeToVote | None:
        relaxed = SafetyState(0, state.high_qc, 0)
        return super().vote_refusal(relaxed, block, last_tc)


class NoLockRules(SafetyRules):
    """After a TC, votes for a block extending any QC (drops qc.round >= max high-QC round)."""

    def vote_refusal(
        self, state: SafetyState, block: Block, last_tc: TimeoutCert | None
    ) -> NotSafeToVote | None:
        refusal = super().vote_refusal(state, block, last_tc)
        return None if refusal is not None and refusal.reason == Refusal.TC_LOCK else refusal


class OneChainReplica(Replica):
    """Commits a block as soon as it is certified (1-chain) instead of waiting for the 2-chain."""

    def _try_commit(self, qc: QuorumCert, out: list[Action]) -> None:
        certified = self.tree.get(qc.block_id)
        if certified is None or certified.height <= self.tree.root.height:
            return
        committed = self.tree.commit(certified.id)
        for block in committed:
            out.append(Commit(block, CommitProof((block.header(), block.header()), qc)))


class LatePersistReplica(Replica):
    """Persists its safety state only after the votes/timeouts that depend on it were sent."""

    def _persist(self, out: list[Action]) -> None:
        self._dirty = True

    def _flush(self, out: list[Action]) -> list[Action]:
        if getattr(self, "_dirty", False):
            self._dirty = False
            out.append(PersistSafety(self.safety))
        return out

    def on_message(self, sender, message):  # type: ignore[no-untyped-def]
        return self._flush(super().on_message(sender, message))

    def on_timeout(self, round):  # type: ignore[no-untyped-def]
        return self._flush(super().on_timeout(round))

    def on_payload_ready(self, round, payload, data_root):  # type: ignore[no-untyped-def]
        return self._flush(super().on_payload_ready(round, payload, data_root))

    def on_payload_verified(self, block_id, ok, reason=""):  # type: ignore[no-untyped-def]
        return self._flush(super().on_payload_verified(block_id, ok, reason))


class IgnoreTcReplica(Replica):
    """A pacemaker that never advances on a timeout certificate."""

    def _process_certificates(self, qc, tc, out):  # type: ignore[no-untyped-def]
        super()._process_certificates(qc, None, out)


class NoEvidenceReplica(Replica):
    """An equivocation detector that never reports."""

    def _observe(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def node_with(replica_class: type[Replica]) -> type[SimNode]:
    return type(f"{replica_class.__name__}Node", (SimNode,), {"replica_class": replica_class})


class AcceptAnyPayloadNode(SimNode):
    """Votes for any payload without checking it."""

    def check_payload(self, block: Block) -> tuple[bool, str]:
        return True, ""


class InventingLeader(SimNode):
    """Byzantine: proposes transactions no client submitted."""

    honest = False

    def build_payload(self, request):  # type: ignore[no-untyped-def]
        from consensus.simulation.node import encode_payload

        return encode_payload([b"invented-%d" % request.round])


class TcForgettingNode(SimNode):
    """Persists its safety state without the highest TC, as ordo did before high_tc was kept: a
    replica that entered its last round by a TC restarts in an earlier round."""

    def handle(self, action: Action) -> list[Action]:
        if isinstance(action, PersistSafety):
            action = PersistSafety(replace(action.state, high_tc=None))
        return super().handle(action)


# -- certificate checks (overridden at the verifier, so they do not depend on how the core calls it)


class _BlindVerifier(Verifier):
    """Accepts every signature of the given kinds, checks the others."""

    def __init__(self, inner: Verifier, kinds: frozenset[SignatureKind]) -> None:
        self.committee = inner.committee
        self._inner = inner
        self._kinds = kinds

    def verify(self, signer, kind, round, payload, signature):  # type: ignore[no-untyped-def]
        if kind in self._kinds:
            return self.committee.contains(signer)
        return self._inner.verify(signer, kind, round, payload, signature)

    def remember_own(self, signer, kind, round, payload, signature):  # type: ignore[no-untyped-def]
        self._inner.remember_own(signer, kind, round, payload, signature)


class _LaxQuorumCommittee(Committee):
    @property
    def quorum(self) -> int:
        return super().quorum - 1


def blind_replica(*kinds: SignatureKind) -> type[Replica]:
    """A replica that never checks signatures of ``kinds`` (TIMEOUT: TC entries and timeouts;
    VOTE: QC signatures and votes). Its own aggregation is unchanged."""

    class Blind(Replica):
        def __init__(self, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(**kwargs)
            self._verifier = _BlindVerifier(self._verifier, frozenset(kinds))

    Blind.__name__ = "Blind" + "".join(k.name.title() for k in kinds) + "Replica"
    return Blind


class UnderQuorumReplica(Replica):
    """Accepts QCs and TCs one signature short of a quorum (its own vote and timeout aggregation
    still waits for a full quorum)."""

    def __init__(self, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        c = self.committee
        lax = _LaxQuorumCommittee(c.chain_id, c.public_keys)
        self._verifier = Verifier(lax)


class UncheckedLatePayloadNode(SimNode):
    """Checks a late (withheld) payload against its chain without asking whether its block is
    still in the tree, as ordo's node did (issue 8 item 1)."""

    def late_payload_usable(self, block: Block) -> bool:
        return True


class TrustingCatchUp(CatchUp):
    """Keeps asking the peer with the highest claimed height, however often it fails to answer
    (sequencing/replica/catchup.py before issue 8 item 3)."""

    def distrust(self, peer: ReplicaId) -> None:
        return


class TrustingCatchUpNode(SimNode):
    catchup_class = TrustingCatchUp


class TrustingSyncReplica(Replica):
    """Adopts synced blocks with commit proofs built from the QCs embedded in them, none of them
    verified (consensus/core.py before issue 8 item 2)."""

    def _verify_embedded_qcs(self, blocks: list[Block]) -> None:
        pass


class NoLastTcCheckReplica(Replica):
    """Verifies a timeout but not the TC it carries (nor that TC's high QC), then acts on it."""

    def _on_timeout_message(self, timeout: Timeout, out: list[Action]) -> None:
        super()._on_timeout_message(replace(timeout, last_tc=None), out)
        if timeout.last_tc is not None and timeout.round + 1 >= self.pacemaker.round:
            self._process_certificates(None, timeout.last_tc, out)
