"""Mutual Ed25519 challenge-response between two committee members of one chain.

Wire (each message a msgpack list in its own frame, at most ``HANDSHAKE_MAX_FRAME`` bytes)::

    dialer   -> ["hello",   version, chain_id, dialer_id, dialer_nonce]
    listener -> ["welcome", version, chain_id, listener_id, listener_nonce, listener_signature]
    dialer   -> ["auth",    dialer_signature]
    listener -> ["ok"]

Either side may answer ``["refuse", reason]`` instead and close. Each signature is made with
``SignatureKind.HANDSHAKE``, round 0, over :func:`transcript`, which binds the signer's role, the
chain id, both replica ids and both fresh nonces: a signature cannot be reflected back to its
maker, replayed on another connection, or used in another cluster. The final ``ok`` tells the
dialer it was accepted, so it only reports a connection once both sides are authenticated.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from consensus.committee import Committee
from consensus.crypto import KeyPair, SignatureKind, Signer, verify_with_key
from consensus.encoding import SIGNATURE_SIZE, pack, unpack
from consensus.errors import DecodeError

from .errors import FrameError, HandshakeError, HandshakeFailure, TruncatedFrame
from .framing import HEADER_SIZE, FrameDecoder, read_frame, send_frame

PROTOCOL_VERSION = 1
HANDSHAKE_MAX_FRAME = 1024
# Before authentication a peer can make us hold at most one frame plus one read of this size.
_HANDSHAKE_CHUNK = HANDSHAKE_MAX_FRAME + HEADER_SIZE
NONCE_SIZE = 32
TRANSCRIPT_DOMAIN = "ordo/handshake/v1"
DIALER = "dialer"
LISTENER = "listener"

# Failures worth telling the other side about before closing (not timeouts or dead streams).
_REPORTED = frozenset(
    {
        HandshakeFailure.VERSION, HandshakeFailure.CHAIN_ID, HandshakeFailure.NOT_IN_COMMITTEE,
        HandshakeFailure.BAD_SIGNATURE, HandshakeFailure.SELF_ID, HandshakeFailure.UNEXPECTED_PEER,
        HandshakeFailure.MALFORMED,
    }
)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who we are: our replica id, its key pair, and the committee (which fixes the chain id)."""

    replica_id: int
    key: KeyPair
    committee: Committee

    def __post_init__(self) -> None:
        if not self.committee.contains(self.replica_id):
            raise ValueError(f"replica {self.replica_id} is not in the committee")
        if self.committee.key_of(self.replica_id) != self.key.public:
            raise ValueError(f"the key pair is not replica {self.replica_id}'s committee key")

    @property
    def chain_id(self) -> str:
        return self.committee.chain_id


def transcript(
    role: str, chain_id: str, dialer_id: int, listener_id: int, dialer_nonce: bytes, listener_nonce: bytes
) -> bytes:
    """The bytes a handshake signature covers."""
    return pack([TRANSCRIPT_DOMAIN, role, chain_id, dialer_id, listener_id, dialer_nonce, listener_nonce])


def _sign(identity: Identity, role: str, *ids_and_nonces: Any) -> bytes:
    signer = Signer(identity.chain_id, identity.replica_id, identity.key)
    return signer.sign(SignatureKind.HANDSHAKE, 0, transcript(role, identity.chain_id, *ids_and_nonces))


def _verify(identity: Identity, signer_id: int, signature: bytes, role: str, *ids_and_nonces: Any) -> None:
    committee = identity.committee
    payload = transcript(role, committee.chain_id, *ids_and_nonces)
    if not verify_with_key(
        committee.key_of(signer_id), committee.chain_id, SignatureKind.HANDSHAKE, 0, payload, signature
    ):
        raise HandshakeError(HandshakeFailure.BAD_SIGNATURE, f"replica {signer_id}'s signature is invalid")


class _Wire:
    """Handshake messages over one stream; every failure becomes a :class:`HandshakeError`."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.decoder = FrameDecoder(HANDSHAKE_MAX_FRAME)

    async def send(self, message: list[Any]) -> None:
        try:
            await send_frame(self.stream, pack(message))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise HandshakeError(HandshakeFailure.CLOSED, f"while sending: {exc!r}") from None

    async def receive(
        self, tag: str, length: int, *, versioned: bool = False, on_frame: Callable[[], None] | None = None
    ) -> list[Any]:
        """The next message, which must be ``[tag, ...]`` with ``length`` fields; a versioned
        message's second field is checked first, so a future version is refused as such.
        ``on_frame`` is called once a whole frame is in, before it is checked."""
        try:
            frame = await read_frame(self.stream, self.decoder, _HANDSHAKE_CHUNK)
        except TruncatedFrame as exc:
            raise HandshakeError(HandshakeFailure.CLOSED, str(exc)) from None
        except FrameError as exc:
            raise HandshakeError(HandshakeFailure.MALFORMED, str(exc)) from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise HandshakeError(HandshakeFailure.CLOSED, f"while receiving: {exc!r}") from None
        if frame is None:
            raise HandshakeError(HandshakeFailure.CLOSED, f"stream ended while waiting for {tag!r}")
        if on_frame is not None:
            on_frame()
        try:
            message = unpack(frame, max_size=HANDSHAKE_MAX_FRAME)
        except DecodeError as exc:
            raise HandshakeError(HandshakeFailure.MALFORMED, str(exc)) from None
        if not isinstance(message, list) or not message:
            raise HandshakeError(HandshakeFailure.MALFORMED, "expected a non-empty list")
        if message[0] == "refuse":
            raise HandshakeError(HandshakeFailure.REFUSED, f"peer refused: {message[1:]!r}"[:200])
        if message[0] != tag:
            raise HandshakeError(HandshakeFailure.MALFORMED, f"expected {tag!r}, got {message[0]!r}"[:200])
        if versioned and (len(message) < 2 or message[1] != PROTOCOL_VERSION):
            raise HandshakeError(HandshakeFailure.VERSION, f"unsupported version in {message!r}"[:200])
        if len(message) != length:
            raise HandshakeError(HandshakeFailure.MALFORMED, f"{tag!r} needs {length} fields")
        return message

    def expect_drained(self) -> None:
        if self.decoder.buffered:
            raise HandshakeError(HandshakeFailure.MALFORMED, "data sent before the handshake completed")

    async def refuse(self, reason: HandshakeFailure) -> None:
        try:
            await send_frame(self.stream, pack(["refuse", reason.value]))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass


def _check_chain(identity: Identity, chain_id: Any) -> None:
    if chain_id != identity.chain_id:
        detail = f"chain id mismatch: expected {identity.chain_id!r}, got {chain_id!r}"
        raise HandshakeError(HandshakeFailure.CHAIN_ID, detail[:200])


def _check_member(identity: Identity, replica: Any) -> int:
    if isinstance(replica, bool) or not isinstance(replica, int) or not identity.committee.contains(replica):
        detail = f"{replica!r} is not a committee member"[:200]
        raise HandshakeError(HandshakeFailure.NOT_IN_COMMITTEE, detail)
    return replica


def _check_bytes(value: Any, size: int, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        raise HandshakeError(HandshakeFailure.MALFORMED, f"{what} must be {size} bytes")
    return value


async def _guarded(stream: trio.abc.Stream, timeout: float, steps: Callable[[_Wire], Awaitable[int]]) -> int:
    wire = _Wire(stream)
    try:
        with trio.fail_after(timeout):
            try:
                return await steps(wire)
            except HandshakeError as exc:
                if exc.reason in _REPORTED:
                    await wire.refuse(exc.reason)
                raise
    except trio.TooSlowError:
        raise HandshakeError(HandshakeFailure.TIMEOUT, f"not completed within {timeout} s") from None


def _fresh_nonce(nonce: bytes | None) -> bytes:
    if nonce is None:
        return os.urandom(NONCE_SIZE)
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"a nonce must be {NONCE_SIZE} bytes")
    return nonce


async def dial(
    stream: trio.abc.Stream, identity: Identity, expected_peer: int, *, timeout: float,
    nonce: bytes | None = None,
) -> int:
    """Authenticate as the dialer of ``stream`` to ``expected_peer``; returns its id.

    Raises :class:`HandshakeError`, within ``timeout`` seconds (reason ``timeout`` if it expires).
    """
    me = identity.replica_id
    if expected_peer == me or not identity.committee.contains(expected_peer):
        raise ValueError(f"cannot dial replica {expected_peer}")
    dialer_nonce = _fresh_nonce(nonce)

    async def steps(wire: _Wire) -> int:
        await wire.send(["hello", PROTOCOL_VERSION, identity.chain_id, me, dialer_nonce])
        try:
            welcome = await wire.receive("welcome", 6, versioned=True)
        except HandshakeError as exc:
            if exc.reason is HandshakeFailure.REFUSED and HandshakeFailure.CHAIN_ID.value in exc.detail:
                detail = f"{exc.detail}: chain id mismatch: the peer is not on our chain {identity.chain_id!r}"
                raise HandshakeError(HandshakeFailure.REFUSED, detail[:300]) from None
            raise
        _, _, chain_id, listener_id, listener_nonce, signature = welcome
        _check_chain(identity, chain_id)
        listener_id = _check_member(identity, listener_id)
        if listener_id != expected_peer:
            raise HandshakeError(
                HandshakeFailure.UNEXPECTED_PEER, f"expected replica {expected_peer}, got {listener_id}"
            )
        _check_bytes(listener_nonce, NONCE_SIZE, "listener nonce")
        _check_bytes(signature, SIGNATURE_SIZE, "listener signature")
        ids = (me, listener_id, dialer_nonce, listener_nonce)
        _verify(identity, listener_id, signature, LISTENER, *ids)
        await wire.send(["auth", _sign(identity, DIALER, *ids)])
        await wire.receive("ok", 1)
        wire.expect_drained()
        return listener_id

    return await _guarded(stream, timeout, steps)


async def accept(
    stream: trio.abc.Stream, identity: Identity, *, timeout: float, nonce: bytes | None = None,
    hello_timeout: float | None = None, on_hello: Callable[[], None] | None = None,
) -> int:
    """Authenticate the dialer at the other end of ``stream``; returns its replica id.

    Raises :class:`HandshakeError`, within ``timeout`` seconds (reason ``timeout`` if it expires).
    With ``hello_timeout``, the dialer's first frame must be in within that many seconds (reason
    ``hello_timeout``: an honest dialer sends it as soon as it connects). ``on_hello`` is called
    once that frame is in (whatever it holds).
    """
    me = identity.replica_id
    listener_nonce = _fresh_nonce(nonce)

    async def receive_hello(wire: _Wire) -> list[Any]:
        if hello_timeout is None:
            return await wire.receive("hello", 5, versioned=True, on_frame=on_hello)
        with trio.move_on_after(hello_timeout):
            return await wire.receive("hello", 5, versioned=True, on_frame=on_hello)
        raise HandshakeError(HandshakeFailure.HELLO_TIMEOUT, f"no first frame within {hello_timeout} s")

    async def steps(wire: _Wire) -> int:
        _, _, chain_id, dialer_id, dialer_nonce = await receive_hello(wire)
        _check_chain(identity, chain_id)
        dialer_id = _check_member(identity, dialer_id)
        if dialer_id == me:
            raise HandshakeError(HandshakeFailure.SELF_ID, f"dialer claims our own id {me}")
        _check_bytes(dialer_nonce, NONCE_SIZE, "dialer nonce")
        ids = (dialer_id, me, dialer_nonce, listener_nonce)
        signature = _sign(identity, LISTENER, *ids)
        await wire.send(["welcome", PROTOCOL_VERSION, identity.chain_id, me, listener_nonce, signature])
        (_, dialer_signature) = await wire.receive("auth", 2)
        _check_bytes(dialer_signature, SIGNATURE_SIZE, "dialer signature")
        _verify(identity, dialer_id, dialer_signature, DIALER, *ids)
        wire.expect_drained()
        await wire.send(["ok"])
        return dialer_id

    return await _guarded(stream, timeout, steps)
