"""Lost-disk recovery: the floor below which a replica that forgot its safety state must not
sign (docs/PROTOCOL.md, "Lost disk: the recovery floor").

The replica asks every peer for its highest certificates, waits for verified answers from
:func:`answers_needed` distinct peers, and sets ``floor = R + 2`` with ``R`` the highest certified
round among them (:func:`floor_from`): anything it may have signed before was at a round
``<= R + 2``. While it waits it logs, every few seconds, who has answered and who is missing."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from contextlib import closing
from pathlib import Path
from typing import Protocol

import trio

from consensus.committee import Committee
from consensus.crypto import Verifier
from consensus.errors import InvalidMessage
from consensus.messages import QuorumCert
from consensus.validation import verify_qc, verify_tc

from .errors import NodeStartError
from .wire import StatusResponse

log = logging.getLogger(__name__)
REPORT_EVERY = 5.0  # seconds between "still waiting" lines


def foreign_database(path: Path, chain_id: str, replica_id: int) -> str | None:
    """What is wrong if the database at ``path`` belongs to another chain or replica (a wrong
    cluster.toml or data_dir, which ``--recover`` must not "repair" by setting it aside); None if
    it does not, or if it cannot tell."""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            meta = dict(conn.execute(
                "SELECT key, value FROM meta WHERE key IN ('chain_id', 'replica_id')").fetchall())
    except sqlite3.Error:
        return None
    if meta.get("chain_id") not in (None, chain_id):
        return f"chain id mismatch: expected {chain_id!r} (cluster.toml), got {meta['chain_id']!r} in {path}"
    if meta.get("replica_id") not in (None, str(replica_id)):
        return f"{path} is replica {meta['replica_id']}'s database, not replica {replica_id}'s"
    return None


def answers_needed(committee: Committee) -> int:
    """Distinct peers whose certificates bound what a replica that lost its disk may have signed:
    ``n - q + f + 1``. A certificate for round ``s - 1`` has ``q`` signers, of which at least
    ``q - 1 - f`` are honest peers (not the recovering replica, not Byzantine); any
    ``n - 1 - (q - 1 - f) + 1`` of the ``n - 1`` peers include one of them, and no fewer do.
    This is ``q`` (every other replica at n = 4) when n = 3f + 1, fewer for n = 5 or 8."""
    return committee.size - committee.quorum + committee.max_faulty + 1


def floor_from(rounds: Mapping[int, int], committee: Committee, me: int) -> int | None:
    """The recovery floor from verified answers (peer -> highest certified round it showed), or
    None while fewer than :func:`answers_needed` distinct peers have answered."""
    peers = {p: r for p, r in rounds.items() if p != me and committee.contains(p)}
    if len(peers) < answers_needed(committee):
        return None
    return max(peers.values()) + 2


class StatusPoll(Protocol):
    """Asks every peer for its status and keeps the latest answer per peer (``CatchUp``)."""

    @property
    def statuses(self) -> Mapping[int, StatusResponse]: ...

    async def ask_statuses(self) -> None: ...


async def recovery_floor(me: int, committee: Committee, verifier: Verifier, genesis_id: bytes,
                         poll: StatusPoll, connected: Callable[[], set[int]], *,
                         retry: float = 1.0) -> tuple[int, QuorumCert]:
    """Wait for :func:`answers_needed` peers' verified certificates (asking through ``poll``);
    the floor and the best QC among them. ``connected`` (the transport's linked peers) only
    explains in the log who is missing."""
    needed = answers_needed(committee)
    peers = [p for p in committee.ids if p != me]
    if needed > len(peers):
        raise NodeStartError(f"replica {me}: cannot recover: a {committee.size}-replica cluster has "
                             f"no peers to learn its recovery floor from (it needs {needed})")
    verified: dict[int, tuple[int, QuorumCert]] = {}
    log.warning("replica %d recovery: lost its safety state; signs nothing until %d of its %d peers "
                "(%s) answer with their certificates", me, needed, len(peers), _ids(peers))
    reported = trio.current_time()
    while (floor := floor_from({p: r for p, (r, _) in verified.items()}, committee, me)) is None:
        await poll.ask_statuses()
        for peer, status in list(poll.statuses.items()):
            if peer in verified:
                continue
            try:
                verify_qc(status.high_qc, verifier, genesis_id)
                round = status.high_qc.round
                if status.last_tc is not None:
                    verify_tc(status.last_tc, verifier, genesis_id)
                    round = max(round, status.last_tc.round)
            except InvalidMessage as exc:
                log.warning("replica %d recovery: bad certificate from %d: %s", me, peer, exc)
                continue
            verified[peer] = (round, status.high_qc)
        if len(verified) < needed:
            if trio.current_time() - reported >= REPORT_EVERY:
                reported = trio.current_time()
                linked = connected()
                missing = [f"{p} ({'connected, no answer' if p in linked else 'not connected'})"
                           for p in peers if p not in verified]
                log.warning(
                    "replica %d recovery: waiting for certificates from %d of %d peers (n=%d tolerates "
                    "f=%d; recovery needs n - q + f + 1 answers, so it waits while more peers are down); "
                    "answered: %s; missing: %s", me, needed, len(peers), committee.size,
                    committee.max_faulty, _ids(sorted(verified)), ", ".join(missing))
            await trio.sleep(retry)
    best_qc = max((qc for _, qc in verified.values()), key=lambda qc: qc.round)
    log.warning("replica %d recovery: answers from %s; floor %d", me, _ids(sorted(verified)), floor)
    return floor, best_qc


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids)) or "none"
