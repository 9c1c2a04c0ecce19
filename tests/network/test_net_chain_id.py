"""A peer on another chain is refused with a reason that says so (not just "invalid signature")."""

from __future__ import annotations

import trio
import trio.testing
from netutil import identities

from network import HandshakeError, HandshakeFailure, accept, dial


async def test_the_listener_names_both_chain_ids() -> None:
    ours, theirs = identities(4), identities(4, chain_id="other-chain")
    left, right = trio.testing.memory_stream_pair()
    errors: list[HandshakeError] = []

    async def side(stream: trio.abc.Stream, go: object) -> None:
        async with stream:
            try:
                await go(stream)  # type: ignore[operator]
            except HandshakeError as exc:
                errors.append(exc)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(side, left, lambda s: dial(s, theirs[1], 0, timeout=5))
            nursery.start_soon(side, right, lambda s: accept(s, ours[0], timeout=5))
    listener = next(e for e in errors if e.reason == HandshakeFailure.CHAIN_ID)
    assert listener.detail == f"chain id mismatch: expected {ours[0].chain_id!r}, got 'other-chain'"
    dialer = next(e for e in errors if e.reason == HandshakeFailure.REFUSED)
    assert "chain id mismatch: the peer is not on our chain 'other-chain'" in dialer.detail
