"""Hostile and broken peers against a running cluster: each is refused, counted, and the honest
replicas keep exchanging messages. Replicas 0-2 run; the test plays replica 3 (or an outsider)."""

from __future__ import annotations

import random
import struct
from collections.abc import Awaitable, Callable

import pytest
import trio
from netutil import CHAIN, HOST, Cluster, committee, identities, keys, open_cluster, receive, vote, wait_until

from consensus.committee import Committee
from consensus.crypto import KeyPair
from consensus.encoding import pack
from consensus.messages import encode_message
from network import HandshakeError, HandshakeFailure, Identity, TransportConfig, accept, dial
from network.framing import encode_frame

CONFIG = TransportConfig(
    handshake_timeout=0.5, reconnect_initial=0.02, reconnect_max=0.2, max_frame_size=64 * 1024
)
F = HandshakeFailure


async def connect(cluster: Cluster, replica: int = 0) -> trio.SocketStream:
    return await trio.open_tcp_stream(*cluster.address(replica))


async def connect_as(cluster: Cluster, identity: Identity, replica: int = 0) -> trio.SocketStream:
    stream = await connect(cluster, replica)
    try:
        await dial(stream, identity, replica, timeout=5)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return stream


async def closed_by_peer(stream: trio.SocketStream, timeout: float = 5.0) -> None:
    """Wait until the other side closes ``stream`` (EOF or reset)."""
    with trio.fail_after(timeout):
        try:
            while await stream.receive_some(4096):
                pass
        except trio.BrokenResourceError:
            pass
    await stream.aclose()


# -- before the handshake -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        random.Random(7).randbytes(256),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\xff\xff\xff\xff",
        encode_frame(b"\xc1\xc1"),
    ],
    ids=["random", "http", "huge-prefix", "not-msgpack"],
)
async def test_garbage_instead_of_a_handshake_is_refused(garbage: bytes) -> None:
    async with open_cluster([0, 1, 2], config=CONFIG) as cluster:
        stream = await connect(cluster)
        await stream.send_all(garbage)
        await closed_by_peer(stream)
        assert cluster[0].stats.handshake_failures == {F.MALFORMED: 1}
        assert cluster[0].stats.connections_opened["inbound"] == 2  # only the honest peers
        await cluster.check_exchange(round=1)


async def test_silent_connection_is_dropped_after_the_handshake_timeout() -> None:
    async with open_cluster([0, 1, 2], config=CONFIG) as cluster:
        start = trio.current_time()
        stream = await connect(cluster)
        await closed_by_peer(stream, timeout=3)
        assert trio.current_time() - start >= CONFIG.handshake_timeout
        assert cluster[0].stats.handshake_failures == {F.TIMEOUT: 1}
        await cluster.check_exchange(round=1)


class _PausedDialer(trio.abc.Stream):
    """A dialer's stream that holds its second write (the ``auth`` frame) until ``go`` is set:
    the connection has said hello and sits in the listener's handshake."""

    def __init__(self, inner: trio.SocketStream) -> None:
        self.inner = inner
        self.writes = 0
        self.welcomed = trio.Event()
        self.go = trio.Event()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.writes += 1
        if self.writes == 2:
            self.welcomed.set()
            await self.go.wait()
        await self.inner.send_all(data)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return await self.inner.receive_some(max_bytes)

    async def wait_send_all_might_not_block(self) -> None:  # pragma: no cover
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:  # pragma: no cover
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_pending_handshakes_have_a_budget_and_the_oldest_silent_one_is_evicted() -> None:
    """Four handshake slots. Two connections say hello and pause; silent connections then churn
    through the other two slots (each newcomer evicts the oldest silent one) while the two that
    spoke keep theirs, complete later and authenticate. Once every pending connection has spoken,
    a newcomer evicts the oldest of them. Authenticated peers never count against the budget."""
    limited = TransportConfig(
        handshake_timeout=10.0, hello_timeout=10.0, reconnect_initial=0.02, reconnect_max=0.2,
        max_pending_handshakes=4,
    )
    async with open_cluster([0, 1, 2], config=CONFIG, configs={0: limited}) as cluster, \
            trio.open_nursery() as nursery:
        target = cluster[0]
        stats = target.stats
        assert target.inbound_connections() == 2 and target.pending_handshakes() == 0
        results: list[int | HandshakeError] = []

        async def paused_dial(stream: _PausedDialer) -> None:
            try:
                results.append(await dial(stream, cluster.ids[3], 0, timeout=10))
            except HandshakeError as exc:
                results.append(exc)

        talkers = [_PausedDialer(await connect(cluster)) for _ in range(2)]
        for talker in talkers:
            nursery.start_soon(paused_dial, talker)
            await talker.welcomed.wait()  # the listener has its hello and answered
        silent = [await connect(cluster) for _ in range(5)]
        for stream in silent[:3]:  # the three oldest silent ones made room for the newer ones
            await closed_by_peer(stream)
        assert stats.inbound_refused == {"evicted_silent": 3}
        assert target.pending_handshakes() == 4 and target.inbound_connections() == 2 + 4
        for talker in talkers:
            talker.go.set()
        await wait_until(lambda: len(results) == 2, what="both paused handshakes to finish")
        assert results == [0, 0]  # they kept their slots and authenticated
        await wait_until(lambda: target.pending_handshakes() == 2, what="the talkers to leave the budget")
        assert stats.connections_replaced == 1  # the second talker replaced the first as replica 3

        # Four more say hello: two fill the free slots, two evict the last silent ones. Now every
        # pending connection has spoken, and a newcomer evicts the oldest of them.
        talkers = [_PausedDialer(await connect(cluster)) for _ in range(4)]
        for talker in talkers:
            nursery.start_soon(paused_dial, talker)
            await talker.welcomed.wait()
        for stream in silent[3:]:
            await closed_by_peer(stream)
        assert stats.inbound_refused == {"evicted_silent": 5}
        newcomer = await connect(cluster)
        await wait_until(lambda: stats.inbound_refused["evicted_in_handshake"] == 1, what="an eviction")
        talkers[0].go.set()
        await wait_until(lambda: len(results) == 3, what="the evicted handshake to fail")
        assert isinstance(results[2], HandshakeError)
        assert stats.handshake_failures == {}  # evictions are counted as such, not as failures
        await newcomer.aclose()
        await cluster.check_exchange(round=1)
        nursery.cancel_scope.cancel()


async def test_dialer_on_another_chain_is_refused_and_counted() -> None:
    async with open_cluster([0, 1, 2], config=CONFIG) as cluster:
        stranger = identities(4, chain_id="another-chain")[3]
        with pytest.raises(HandshakeError) as info:
            await connect_as(cluster, stranger)
        assert info.value.reason == F.REFUSED
        await wait_until(lambda: cluster[0].stats.handshake_failures == {F.CHAIN_ID: 1})
        await cluster.check_exchange(round=1)


@pytest.mark.parametrize("case", ["forged-key", "not-a-member"])
async def test_key_outside_the_committee_is_refused_and_counted(case: str) -> None:
    async with open_cluster([0, 1, 2], config=CONFIG) as cluster:
        forged = keys(5 if case == "not-a-member" else 4)
        claimed = len(forged) - 1  # 3 with a key of its own, or 4 in a 5-member committee
        forged[claimed] = KeyPair.from_seed(b"mallory")
        mallory = Identity(claimed, forged[claimed], committee(forged))
        with pytest.raises(HandshakeError) as info:
            await connect_as(cluster, mallory)
        assert info.value.reason == F.REFUSED
        expected = F.BAD_SIGNATURE if case == "forged-key" else F.NOT_IN_COMMITTEE
        await wait_until(lambda: cluster[0].stats.handshake_failures == {expected: 1})
        assert 3 not in cluster[0].connected_peers()
        await cluster.check_exchange(round=1)


# -- after the handshake (a Byzantine committee member) -----------------------------------------


def _prefix(size: int) -> bytes:
    return struct.pack(">I", size)


BAD_INPUT: dict[str, tuple[bytes, str]] = {
    "oversize": (_prefix(CONFIG.max_frame_size + 1), "oversize"),
    "empty": (_prefix(0), "empty"),
    "truncated": (encode_frame(b"abcdef")[:6], "truncated"),
    "not-msgpack": (encode_frame(b"\xc1\xc1\xc1"), "undecodable"),
    "not-a-message": (encode_frame(pack([2, [1, 2]])), "undecodable"),
    "unknown-tag": (encode_frame(pack([77, []])), "undecodable"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
async def test_bad_input_from_an_authenticated_peer_closes_only_that_connection(case: str) -> None:
    data, label = BAD_INPUT[case]
    async with open_cluster([0, 1, 2], config=CONFIG) as cluster:
        byzantine = cluster.ids[3]
        stream = await connect_as(cluster, byzantine)
        await stream.send_all(encode_frame(encode_message(vote(byzantine, 1))))
        assert await receive(cluster[0]) == (3, vote(byzantine, 1))  # authenticated and working
        await stream.send_all(data)
        if label == "truncated":
            await stream.send_eof()
        await closed_by_peer(stream)
        stats = cluster[0].stats
        assert stats.rejected_frames == {label: 1}
        assert stats.frames_in[3] == (2 if label == "undecodable" else 1)  # whole frames read
        await wait_until(lambda: 3 not in cluster[0].inbound_peers(), what="the connection dropped")
        await cluster.check_exchange(round=2)


async def test_random_bytes_after_the_handshake_are_rejected() -> None:
    async with open_cluster([0, 1, 2], config=CONFIG) as cluster:
        for seed in range(5):
            stream = await connect_as(cluster, cluster.ids[3])
            await stream.send_all(random.Random(seed).randbytes(512))
            await stream.send_eof()
            await closed_by_peer(stream)
        assert sum(cluster[0].stats.rejected_frames.values()) == 5
        await cluster.check_exchange(round=1)


async def test_a_newer_connection_from_a_peer_replaces_the_older() -> None:
    async with open_cluster([0, 1, 2], config=CONFIG) as cluster:
        byzantine = cluster.ids[3]
        old = await connect_as(cluster, byzantine)
        new = await connect_as(cluster, byzantine)
        await closed_by_peer(old)
        assert cluster[0].stats.connections_replaced == 1
        await new.send_all(encode_frame(encode_message(vote(byzantine, 4))))
        assert await receive(cluster[0]) == (3, vote(byzantine, 4))
        assert 3 in cluster[0].inbound_peers()
        await new.aclose()


# -- a hostile listener, seen from our dialer ---------------------------------------------------


async def serve_fake_peer(
    nursery: trio.Nursery, handler: Callable[[trio.SocketStream], Awaitable[None]]
) -> tuple[str, int]:
    listeners = await nursery.start(trio.serve_tcp, handler, 0)
    return (HOST, listeners[0].socket.getsockname()[1])


async def test_dialer_refuses_a_listener_with_a_forged_key() -> None:
    forged = keys(4)
    forged[3] = KeyPair.from_seed(b"mallory")
    mallory = Identity(3, forged[3], Committee(CHAIN, tuple(k.public for k in forged)))

    async def impostor(stream: trio.SocketStream) -> None:
        try:
            await accept(stream, mallory, timeout=5)
        except HandshakeError:
            pass

    async with open_cluster([0, 1, 2], config=CONFIG) as cluster, trio.open_nursery() as nursery:
        cluster[0].set_peer_address(3, await serve_fake_peer(nursery, impostor))
        await wait_until(lambda: cluster[0].stats.handshake_failures[F.BAD_SIGNATURE] >= 2)
        assert 3 not in cluster[0].outbound_peers()
        await cluster.check_exchange(round=1)
        nursery.cancel_scope.cancel()


async def test_a_peer_writing_on_our_outbound_connection_is_dropped_and_redialled() -> None:
    async with open_cluster([0, 1, 2], config=CONFIG) as cluster, trio.open_nursery() as nursery:
        sessions: list[int] = []

        async def chatty(stream: trio.SocketStream) -> None:
            await accept(stream, cluster.ids[3], timeout=5)
            sessions.append(1)
            if len(sessions) == 1:  # once our dialer has seen the handshake complete, talk back
                await wait_until(lambda: 3 in cluster[0].outbound_peers())
                await stream.send_all(b"unexpected")
            await trio.sleep_forever()

        cluster[0].set_peer_address(3, await serve_fake_peer(nursery, chatty))
        await wait_until(lambda: len(sessions) == 2 and 3 in cluster[0].outbound_peers(), what="a redial")
        assert cluster[0].stats.rejected_frames == {"unexpected_data": 1}
        assert cluster[0].stats.connections_opened["outbound"] == 2 + 2  # to 1 and 2, then 3 twice
        await cluster.check_exchange(round=1)
        nursery.cancel_scope.cancel()
