"""The one interpreter of the core's actions: ``dispatch(action, handler)`` calls the handler's
method for the action's type. Both the replica process (sequencing/replica/action_runner.py) and
the simulator (simulation/node.py) run actions through it.

Exhaustive by construction: ``dispatch`` ends in ``assert_never``, so an ``Action`` member it does
not route is a mypy error; a handler that lacks a method of ``ActionHandler`` is a mypy error where
it is passed to ``dispatch``. The handler chooses what its methods return (``R``): the simulator's
return follow-up actions, the node's return awaitables of them.
"""

from __future__ import annotations

from typing import Protocol, TypeVar, assert_never

from .actions import (
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

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class ActionHandler(Protocol[R_co]):
    """One method per action type (see actions.py for what each asks)."""

    def on_send(self, action: Send) -> R_co: ...

    def on_broadcast(self, action: Broadcast) -> R_co: ...

    def on_set_timer(self, action: SetTimer) -> R_co: ...

    def on_persist_safety(self, action: PersistSafety) -> R_co: ...

    def on_persist_block(self, action: PersistBlock) -> R_co: ...

    def on_commit(self, action: Commit) -> R_co: ...

    def on_record_evidence(self, action: RecordEvidence) -> R_co: ...

    def on_fetch_blocks(self, action: FetchBlocks) -> R_co: ...

    def on_request_payload(self, action: RequestPayload) -> R_co: ...

    def on_verify_payload(self, action: VerifyPayload) -> R_co: ...

    def on_dropped(self, action: Dropped) -> R_co: ...

    def on_round_entered(self, action: RoundEntered) -> R_co: ...


def dispatch(action: Action, handler: ActionHandler[R]) -> R:
    """Route ``action`` to the handler's method for its type and return what that returns."""
    match action:
        case Send():
            return handler.on_send(action)
        case Broadcast():
            return handler.on_broadcast(action)
        case SetTimer():
            return handler.on_set_timer(action)
        case PersistSafety():
            return handler.on_persist_safety(action)
        case PersistBlock():
            return handler.on_persist_block(action)
        case Commit():
            return handler.on_commit(action)
        case RecordEvidence():
            return handler.on_record_evidence(action)
        case FetchBlocks():
            return handler.on_fetch_blocks(action)
        case RequestPayload():
            return handler.on_request_payload(action)
        case VerifyPayload():
            return handler.on_verify_payload(action)
        case Dropped():
            return handler.on_dropped(action)
        case RoundEntered():
            return handler.on_round_entered(action)
        case _:
            assert_never(action)
