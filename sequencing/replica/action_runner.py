"""Carries out the core's actions for one replica process, in the order returned
(``consensus.dispatch`` routes each to its method here). A ``PersistSafety`` is awaited, so it is
durable before any later ``Send``/``Broadcast`` leaves; the ``PersistBlock``s before it are written
in the same transaction. What touches the node's state (commit, evidence, payloads) is passed in as
the few callables the runner needs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable

from consensus.actions import (
    Action,
    Broadcast,
    Commit,
    Dropped,
    FetchBlocks,
    PersistBlock,
    PersistSafety,
    RecordEvidence,
    RequestPayload,
    RoundEntered,
    Send,
    SetTimer,
    VerifyPayload,
)
from consensus.dispatch import dispatch
from consensus.messages import Block, Evidence, Proposal
from consensus.safety import SafetyState

from .faults import FaultInjection
from .round_timer import RoundTimer
from .wire import BlockRequest, PeerLink


class ActionRunner:
    def __init__(
        self,
        *,
        link: PeerLink,
        timer: RoundTimer,
        faults: FaultInjection,
        save_safety: Callable[[SafetyState, list[Block]], Awaitable[None]],
        commit: Callable[[Commit], Awaitable[None]],
        record_evidence: Callable[[Evidence], Awaitable[None]],
        request_payload: Callable[[RequestPayload], list[Action]],
        verify_payload: Callable[[Block], Awaitable[list[Action]]],
        proposed: Callable[[Proposal], None],
        dropped: Callable[[Dropped], None],
        round_entered: Callable[[RoundEntered], None],
    ) -> None:
        self._link = link
        self._timer = timer
        self._faults = faults
        self._save_safety = save_safety
        self._commit = commit
        self._record_evidence = record_evidence
        self._request_payload = request_payload
        self._verify_payload = verify_payload
        self._proposed = proposed
        self._dropped = dropped
        self._round_entered = round_entered
        self._voted: list[Block] = []

    async def run(self, actions: list[Action]) -> None:
        """Execute ``actions`` and the follow-ups they produce, one at a time, in order."""
        queue: deque[Action] = deque(actions)
        self._voted = []
        while queue:
            queue.extend(await dispatch(queue.popleft(), self))

    # The ActionHandler methods (consensus/dispatch.py); each returns its follow-up actions.

    async def on_send(self, action: Send) -> list[Action]:
        self._link.send(action.to, action.message)
        return []

    async def on_broadcast(self, action: Broadcast) -> list[Action]:
        for to, message in self._faults.broadcast(action.message):
            if to is None:
                self._link.broadcast(message)
            else:
                self._link.send(to, message)
        if isinstance(action.message, Proposal):
            self._proposed(action.message)
        return []

    async def on_set_timer(self, action: SetTimer) -> list[Action]:
        self._timer.set(action.round, action.duration)
        return []

    async def on_persist_block(self, action: PersistBlock) -> list[Action]:
        self._voted.append(action.block)  # written with the safety state that follows it
        return []

    async def on_persist_safety(self, action: PersistSafety) -> list[Action]:
        voted, self._voted = self._voted, []
        await self._save_safety(action.state, voted)
        return []

    async def on_commit(self, action: Commit) -> list[Action]:
        await self._commit(action)
        return []

    async def on_record_evidence(self, action: RecordEvidence) -> list[Action]:
        await self._record_evidence(action.evidence)
        return []

    async def on_fetch_blocks(self, action: FetchBlocks) -> list[Action]:
        self._link.send(action.peer, BlockRequest(action.target, action.above_height))
        return []

    async def on_request_payload(self, action: RequestPayload) -> list[Action]:
        return self._request_payload(action)

    async def on_verify_payload(self, action: VerifyPayload) -> list[Action]:
        return await self._verify_payload(action.block)

    async def on_dropped(self, action: Dropped) -> list[Action]:
        self._dropped(action)
        return []

    async def on_round_entered(self, action: RoundEntered) -> list[Action]:
        self._round_entered(action)
        return []
