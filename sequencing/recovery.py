"""Lost-disk recovery: the floor below which a replica that forgot its safety state must not
sign (docs/PROTOCOL.md, "Lost disk: the recovery floor").

The replica asks every peer for its highest certificates, waits for verified answers from at least
a quorum of distinct peers, and sets ``floor = R + 2`` with ``R`` the highest certified round
among them: anything it may have signed before was at a round ``<= R + 2``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from consensus.errors import InvalidMessage
from consensus.messages import QuorumCert
from consensus.validation import verify_qc, verify_tc

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger(__name__)


async def recovery_floor(node: Node, *, retry: float = 1.0) -> tuple[int, QuorumCert]:
    quorum = node.committee.quorum
    genesis = node.replica.genesis.id if node.replica is not None else None
    from consensus.messages import genesis_block

    genesis_id = genesis or genesis_block(node.config.chain_id).id
    verified: dict[int, tuple[int, QuorumCert]] = {}
    while len(verified) < quorum:
        await node.catch_up.ask_statuses()
        for peer, status in list(node.catch_up.statuses.items()):
            if peer in verified:
                continue
            try:
                verify_qc(status.high_qc, node.verifier, genesis_id)
                round = status.high_qc.round
                if status.last_tc is not None:
                    verify_tc(status.last_tc, node.verifier, genesis_id)
                    round = max(round, status.last_tc.round)
            except InvalidMessage as exc:
                log.warning("replica %d recovery: bad certificate from %d: %s", node.id, peer, exc)
                continue
            verified[peer] = (round, status.high_qc)
        if len(verified) < quorum:
            log.warning("replica %d recovery: %d/%d peers answered, waiting", node.id, len(verified), quorum)
            await trio.sleep(retry)
    highest = max(r for r, _ in verified.values())
    best_qc = max((qc for _, qc in verified.values()), key=lambda qc: qc.round)
    return highest + 2, best_qc
