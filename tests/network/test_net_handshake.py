"""The authenticated handshake over in-memory streams: success, every refusal, timeouts, replay."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from netutil import CHAIN, committee, identities, keys

from consensus.crypto import KeyPair, SignatureKind, Signer
from consensus.encoding import pack, unpack
from network import FrameDecoder, HandshakeError, HandshakeFailure, Identity, accept, dial
from network.framing import encode_frame, read_frame
from network.handshake import DIALER, HANDSHAKE_MAX_FRAME, PROTOCOL_VERSION, transcript

F = HandshakeFailure
NONCE_D = b"\x11" * 32
NONCE_L = b"\x22" * 32
V = PROTOCOL_VERSION
Side = Callable[[trio.abc.Stream], Awaitable[int]]


async def run_handshake(dialer: Side, listener: Side) -> tuple[int | HandshakeError, int | HandshakeError]:
    """Both sides concurrently over a memory stream pair; each closes its end when done."""
    left, right = trio.testing.memory_stream_pair()
    results: dict[str, int | HandshakeError] = {}

    async def side(name: str, fn: Side, stream: trio.abc.Stream) -> None:
        async with stream:
            try:
                results[name] = await fn(stream)
            except HandshakeError as exc:
                results[name] = exc

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(side, "dialer", dialer, left)
            nursery.start_soon(side, "listener", listener, right)
    return results["dialer"], results["listener"]


def dialer_of(identity: Identity, expected: int) -> Side:
    return lambda stream: dial(stream, identity, expected, timeout=5)


def listener_of(identity: Identity) -> Side:
    return lambda stream: accept(stream, identity, timeout=5)


def reason(result: int | HandshakeError) -> HandshakeFailure:
    assert isinstance(result, HandshakeError), f"expected a refusal, got {result!r}"
    return result.reason


def frame(message: Any) -> bytes:
    return encode_frame(pack(message))


async def read_all(stream: trio.abc.ReceiveStream) -> list[Any]:
    decoder = FrameDecoder(HANDSHAKE_MAX_FRAME)
    out = []
    while (body := await read_frame(stream, decoder)) is not None:
        out.append(unpack(body, max_size=HANDSHAKE_MAX_FRAME))
    return out


def auth_signature(identity: Identity, listener_id: int, nonce_d: bytes, nonce_l: bytes) -> bytes:
    signer = Signer(identity.chain_id, identity.replica_id, identity.key)
    payload = transcript(DIALER, identity.chain_id, identity.replica_id, listener_id, nonce_d, nonce_l)
    return signer.sign(SignatureKind.HANDSHAKE, 0, payload)


# -- success ------------------------------------------------------------------------------------


async def test_handshake_authenticates_both_sides(ids: list[Identity]) -> None:
    dialer_result, listener_result = await run_handshake(dialer_of(ids[1], 0), listener_of(ids[0]))
    assert (dialer_result, listener_result) == (0, 1)


async def test_handshake_works_over_lockstep_streams(ids: list[Identity]) -> None:
    left, right = trio.testing.lockstep_stream_pair()
    results: list[int] = []
    async with trio.open_nursery() as nursery:

        async def listen() -> None:
            results.append(await accept(right, ids[3], timeout=5))

        nursery.start_soon(listen)
        assert await dial(left, ids[2], 3, timeout=5) == 3
    assert results == [2]


# -- refusals seen by the listener --------------------------------------------------------------


async def test_dialer_on_another_chain_is_refused() -> None:
    other_chain = identities(4, chain_id="other-chain")
    d, listener_result = await run_handshake(dialer_of(other_chain[1], 0), listener_of(identities(4)[0]))
    assert reason(listener_result) == F.CHAIN_ID
    assert reason(d) == F.REFUSED and "chain_id" in d.detail  # type: ignore[union-attr]


async def test_dialer_outside_the_committee_is_refused(ids: list[Identity]) -> None:
    bigger = keys(5)
    outsider = Identity(4, bigger[4], committee(bigger))  # same chain, 5 members, claims id 4
    d, listener_result = await run_handshake(dialer_of(outsider, 0), listener_of(ids[0]))
    assert reason(listener_result) == F.NOT_IN_COMMITTEE
    assert reason(d) == F.REFUSED


async def test_dialer_with_a_key_not_the_committee_key_for_its_id_is_refused(ids: list[Identity]) -> None:
    forged = keys(4)
    forged[1] = KeyPair.from_seed(b"attacker")
    impostor = Identity(1, forged[1], committee(forged))  # claims 1 with its own key
    d, listener_result = await run_handshake(dialer_of(impostor, 0), listener_of(ids[0]))
    assert reason(listener_result) == F.BAD_SIGNATURE
    assert reason(d) == F.REFUSED


async def test_dialer_claiming_the_listeners_own_id_is_refused(ids: list[Identity]) -> None:
    # ids[0] dials "replica 1", but the listener is replica 0 itself (a reflected connection).
    d, listener_result = await run_handshake(dialer_of(ids[0], 1), listener_of(ids[0]))
    assert reason(listener_result) == F.SELF_ID
    assert reason(d) == F.REFUSED


HELLO = ["hello", PROTOCOL_VERSION, CHAIN, 1, NONCE_D]


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        pytest.param([frame(["hello", 2, CHAIN, 1, NONCE_D])], F.VERSION, id="version"),
        pytest.param([frame(["hello", PROTOCOL_VERSION, "other", 1, NONCE_D])], F.CHAIN_ID, id="chain"),
        pytest.param([frame(["hello", PROTOCOL_VERSION, CHAIN, 9, NONCE_D])], F.NOT_IN_COMMITTEE, id="id"),
        pytest.param([frame(["hello", V, CHAIN, True, NONCE_D])], F.NOT_IN_COMMITTEE, id="bool"),
        pytest.param([frame(["hello", PROTOCOL_VERSION, CHAIN, 1, b"short"])], F.MALFORMED, id="nonce"),
        pytest.param([frame(HELLO[:4])], F.MALFORMED, id="fields"),
        pytest.param([frame(["auth", b"x" * 64])], F.MALFORMED, id="tag"),
        pytest.param([frame({"hello": 1})], F.MALFORMED, id="map"),
        pytest.param([frame([])], F.MALFORMED, id="empty-list"),
        pytest.param([encode_frame(b"\xc1")], F.MALFORMED, id="not-msgpack"),
        pytest.param([b"\x00\x00\x00\x00"], F.MALFORMED, id="empty-frame"),
        pytest.param([encode_frame(b"x" * (HANDSHAKE_MAX_FRAME + 1))], F.MALFORMED, id="oversize"),
        pytest.param([b"GET / HTTP/1.1\r\n\r\n"], F.MALFORMED, id="http"),
        pytest.param([], F.CLOSED, id="eof"),
        pytest.param([frame(HELLO)[:7]], F.CLOSED, id="truncated"),
        pytest.param([frame(HELLO)], F.CLOSED, id="eof-after-hello"),
        pytest.param([frame(HELLO), frame(["auth", b"\0" * 64])], F.BAD_SIGNATURE, id="bad-signature"),
        pytest.param([frame(HELLO), frame(["auth", b"\0" * 63])], F.MALFORMED, id="short-signature"),
    ],
)
async def test_listener_refuses_bad_dialer_messages(
    ids: list[Identity], sent: list[bytes], expected: HandshakeFailure
) -> None:
    left, right = trio.testing.memory_stream_pair()
    for data in sent:
        await left.send_all(data)
    await left.send_stream.aclose()
    with pytest.raises(HandshakeError) as info:
        await accept(right, ids[0], timeout=5)
    assert info.value.reason == expected
    await right.aclose()
    replies = await read_all(left)
    if expected not in (F.CLOSED, F.TIMEOUT):
        assert replies[-1] == ["refuse", expected.value]


async def test_listener_refuses_data_pipelined_before_it_accepted(ids: list[Identity]) -> None:
    left, right = trio.testing.memory_stream_pair()

    async def raw_dialer() -> None:
        await left.send_all(frame(HELLO))
        decoder = FrameDecoder(HANDSHAKE_MAX_FRAME)
        welcome = unpack(await read_frame(left, decoder) or b"", max_size=HANDSHAKE_MAX_FRAME)
        sig = auth_signature(ids[1], 0, NONCE_D, welcome[4])
        await left.send_all(frame(["auth", sig]) + frame(["early"]))  # valid auth + data too soon

    async with trio.open_nursery() as nursery:
        nursery.start_soon(raw_dialer)
        with pytest.raises(HandshakeError) as info:
            await accept(right, ids[0], timeout=5)
    assert info.value.reason == F.MALFORMED


async def test_a_recorded_dialer_signature_cannot_be_replayed(ids: list[Identity]) -> None:
    recorded = auth_signature(ids[1], 0, NONCE_D, NONCE_L)  # valid for listener nonce NONCE_L only

    async def replay(listener_nonce: bytes) -> int | HandshakeError:
        left, right = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:

            async def attacker() -> None:
                await left.send_all(frame(HELLO))
                await read_frame(left, FrameDecoder(HANDSHAKE_MAX_FRAME))  # the welcome
                await left.send_all(frame(["auth", recorded]))

            nursery.start_soon(attacker)
            try:
                return await accept(right, ids[0], timeout=5, nonce=listener_nonce)
            except HandshakeError as exc:
                return exc

    assert await replay(NONCE_L) == 1  # the recording is genuine...
    assert reason(await replay(b"\x33" * 32)) == F.BAD_SIGNATURE  # ...but useless with a fresh nonce


# -- refusals seen by the dialer ----------------------------------------------------------------


async def test_dialer_refuses_an_unexpected_peer(ids: list[Identity]) -> None:
    d, listener_result = await run_handshake(dialer_of(ids[1], 0), listener_of(ids[2]))
    assert reason(d) == F.UNEXPECTED_PEER
    assert reason(listener_result) == F.REFUSED


async def test_dialer_refuses_a_listener_with_a_forged_key(ids: list[Identity]) -> None:
    forged = keys(4)
    forged[0] = KeyPair.from_seed(b"attacker")
    impostor = Identity(0, forged[0], committee(forged))
    d, listener_result = await run_handshake(dialer_of(ids[1], 0), listener_of(impostor))
    assert reason(d) == F.BAD_SIGNATURE
    assert reason(listener_result) == F.REFUSED


@pytest.mark.parametrize(
    ("welcome", "expected"),
    [
        pytest.param(["welcome", 7, CHAIN, 0, NONCE_L, b"s" * 64], F.VERSION, id="version"),
        pytest.param(["welcome", PROTOCOL_VERSION, "other", 0, NONCE_L, b"s" * 64], F.CHAIN_ID, id="chain"),
        pytest.param(["welcome", V, CHAIN, 17, NONCE_L, b"s" * 64], F.NOT_IN_COMMITTEE, id="id"),
        pytest.param(["welcome", PROTOCOL_VERSION, CHAIN, 0, b"n", b"s" * 64], F.MALFORMED, id="nonce"),
        pytest.param(["welcome", PROTOCOL_VERSION, CHAIN, 0, NONCE_L, b"s" * 64], F.BAD_SIGNATURE, id="sig"),
        pytest.param(["refuse", "chain_id"], F.REFUSED, id="refused"),
        pytest.param(["hello", PROTOCOL_VERSION, CHAIN, 0, NONCE_L], F.MALFORMED, id="tag"),
    ],
)
async def test_dialer_refuses_bad_listener_messages(
    ids: list[Identity], welcome: list[Any], expected: HandshakeFailure
) -> None:
    left, right = trio.testing.memory_stream_pair()
    await right.send_all(frame(welcome))
    with pytest.raises(HandshakeError) as info:
        await dial(left, ids[1], 0, timeout=5)
    assert info.value.reason == expected


def test_dialing_ourselves_or_a_stranger_is_a_local_error(ids: list[Identity]) -> None:
    _, right = trio.testing.memory_stream_pair()
    for target in (1, 4, -1):
        with pytest.raises(ValueError):
            trio.run(lambda t=target: dial(right, ids[1], t, timeout=1))  # type: ignore[misc]


def test_identity_must_hold_its_committee_key(ids: list[Identity]) -> None:
    with pytest.raises(ValueError, match="committee key"):
        Identity(1, ids[2].key, ids[0].committee)
    with pytest.raises(ValueError, match="not in the committee"):
        Identity(4, ids[0].key, ids[0].committee)


# -- timeouts (virtual time) --------------------------------------------------------------------


async def test_silent_dialer_times_out(ids: list[Identity], autojump_clock: trio.abc.Clock) -> None:
    _, right = trio.testing.memory_stream_pair()
    start = trio.current_time()
    with pytest.raises(HandshakeError) as info:
        await accept(right, ids[0], timeout=5)
    assert info.value.reason == F.TIMEOUT
    assert trio.current_time() - start == pytest.approx(5)


async def test_dialer_dripping_bytes_times_out(ids: list[Identity], autojump_clock: trio.abc.Clock) -> None:
    left, right = trio.testing.memory_stream_pair()

    async def drip() -> None:
        for byte in frame(HELLO):
            await left.send_all(bytes([byte]))
            await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(drip)
        with pytest.raises(HandshakeError) as info:
            await accept(right, ids[0], timeout=3)
        nursery.cancel_scope.cancel()
    assert info.value.reason == F.TIMEOUT


async def test_silent_listener_times_out(ids: list[Identity], autojump_clock: trio.abc.Clock) -> None:
    left, _ = trio.testing.memory_stream_pair()
    start = trio.current_time()
    with pytest.raises(HandshakeError) as info:
        await dial(left, ids[1], 0, timeout=2.5)
    assert info.value.reason == F.TIMEOUT
    assert trio.current_time() - start == pytest.approx(2.5)


async def test_a_dripped_first_frame_misses_the_hello_deadline(
    ids: list[Identity], autojump_clock: trio.abc.Clock
) -> None:
    """Slow loris: the first frame must be complete within ``hello_timeout``, however steadily
    its bytes trickle in (without the first-frame deadline it holds on for the whole ``timeout``)."""
    left, right = trio.testing.memory_stream_pair()
    heard: list[float] = []

    async def drip() -> None:
        for byte in frame(HELLO):
            await left.send_all(bytes([byte]))
            await trio.sleep(0.1)

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(drip)
        with pytest.raises(HandshakeError) as info:
            await accept(right, ids[0], timeout=30, hello_timeout=1.5, on_hello=lambda: heard.append(1))
        nursery.cancel_scope.cancel()
    assert info.value.reason == F.HELLO_TIMEOUT
    assert trio.current_time() - start == pytest.approx(1.5)
    assert heard == []


async def test_on_hello_fires_once_the_first_frame_is_in(ids: list[Identity]) -> None:
    heard: list[int] = []

    async def listener(stream: trio.abc.Stream) -> int:
        return await accept(stream, ids[0], timeout=5, hello_timeout=1, on_hello=lambda: heard.append(1))

    dialer_result, listener_result = await run_handshake(dialer_of(ids[1], 0), listener)
    assert (dialer_result, listener_result) == (0, 1)
    assert heard == [1]


class _RecordingStream(trio.abc.Stream):
    """Wraps a stream and records the largest read anyone asked of it."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.largest_read = 0

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        self.largest_read = max(self.largest_read, max_bytes or 1 << 30)
        return await self.inner.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:  # pragma: no cover - not used by the handshake
        raise NotImplementedError

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_an_unauthenticated_peer_cannot_make_the_listener_buffer_more_than_a_handshake_frame(
    ids: list[Identity],
) -> None:
    """Every read before authentication asks for at most one handshake frame's worth of bytes,
    however much the dialer sends (a 64 KiB read would buffer 64 KiB per pending connection)."""
    left, right = trio.testing.memory_stream_pair()
    recording = _RecordingStream(right)
    await left.send_all(frame(HELLO) + b"\x00" * 100_000)
    with pytest.raises(HandshakeError):
        await accept(recording, ids[0], timeout=5)
    assert 0 < recording.largest_read <= HANDSHAKE_MAX_FRAME + 4
