"""The transport over real loopback TCP (ephemeral ports): exchange, overflow, reconnect, faults,
backpressure and shutdown."""

from __future__ import annotations

import pytest
import trio
from netutil import (
    HOST,
    assert_inbox_empty,
    make_transport,
    open_cluster,
    receive,
    receive_n,
    vote,
    wait_until,
)

from network import ConsensusCodec, Identity, TransportConfig


class BloatedCodec(ConsensusCodec):
    def encode(self, message: object) -> bytes:
        return b"x" * 5000


FAST = TransportConfig(reconnect_initial=0.02, reconnect_max=0.2, handshake_timeout=2.0)


async def test_four_replicas_exchange_broadcasts_and_direct_messages() -> None:
    async with open_cluster(range(4), config=FAST) as cluster:
        await cluster.check_exchange(round=1)
        for r in range(4):
            assert cluster[r].connected_peers() == {0, 1, 2, 3} - {r}
        ids = cluster.ids
        assert cluster[0].send(2, vote(ids[0], 5))
        assert cluster[3].send(2, vote(ids[3], 6))
        got = await receive_n(cluster[2], 2)
        assert sorted(got, key=lambda item: item[0]) == [(0, vote(ids[0], 5)), (3, vote(ids[3], 6))]
        stats = cluster[0].stats
        assert stats.frames_out == {1: 1, 2: 2, 3: 1}
        assert cluster[2].stats.frames_in == {0: 2, 1: 1, 3: 2}
        assert stats.handshake_failures == {} and stats.rejected_frames == {}


async def test_a_link_up_in_one_direction_only_is_not_reported_as_connected() -> None:
    """Replica 0 knows where 1 listens, 1 does not know 0: 0's messages flow to 1, none back.
    Each side reports that direction alone; neither reports the other as connected."""
    async with open_cluster([0, 1], config=FAST, wire=False) as cluster:
        cluster.connect(0, 1)
        await wait_until(lambda: 1 in cluster[0].outbound_peers() and 0 in cluster[1].inbound_peers())
        assert cluster[0].inbound_peers() == set() and cluster[1].outbound_peers() == set()
        assert cluster[0].connected_peers() == set() and cluster[1].connected_peers() == set()
        cluster.connect(1, 0)
        await wait_until(lambda: cluster[0].connected_peers() == {1} and cluster[1].connected_peers() == {0})


async def test_messages_to_one_peer_arrive_in_order() -> None:
    async with open_cluster([0, 1], config=FAST) as cluster:
        for r in range(200):
            cluster[0].send(1, vote(cluster.ids[0], r))
        got = await receive_n(cluster[1], 200)
        assert [message.round for _, message in got] == list(range(200))  # type: ignore[attr-defined]


async def test_send_refuses_self_strangers_and_unencodable_messages(ids: list[Identity]) -> None:
    transport = make_transport(ids[0], TransportConfig(max_frame_size=4096))
    assert not transport.send(0, vote(ids[0], 1))
    assert not transport.send(4, vote(ids[0], 1))
    assert not transport.send(-1, vote(ids[0], 1))
    assert transport.stats.send_refused == 3
    assert not transport.send(1, "not a consensus message")
    assert transport.broadcast(object()) == 0
    assert transport.stats.encode_errors == 2
    transport.codec = BloatedCodec()
    assert not transport.send(1, vote(ids[0], 1))
    assert transport.stats.send_oversize == 1
    assert transport.queued(1) == 0


async def test_full_send_queue_drops_the_oldest_and_counts_it() -> None:
    config = TransportConfig(send_queue_size=5, reconnect_initial=0.02, reconnect_max=0.2)
    async with open_cluster([0, 1], config=config, wire=False) as cluster:
        sender = cluster[0]
        assert all(sender.send(1, vote(cluster.ids[0], r)) for r in range(12))  # 1 is unreachable
        assert sender.stats.queue_drops[1] == 7
        assert sender.queued(1) == 5
        cluster.connect(0, 1)
        got = await receive_n(cluster[1], 5)
        assert [m.round for _, m in got] == [7, 8, 9, 10, 11]  # type: ignore[attr-defined]
        sender.send(1, vote(cluster.ids[0], 99))
        assert await receive(cluster[1]) == (0, vote(cluster.ids[0], 99))  # nothing else came


async def test_dialer_reconnects_to_a_peer_restarted_on_the_same_port(ids: list[Identity]) -> None:
    with trio.fail_after(15):
        async with trio.open_nursery() as first_life:
            port = await first_life.start(make_transport(ids[1], FAST).run)
            first_life.cancel_scope.cancel()
        async with trio.open_nursery() as nursery:
            sender = make_transport(ids[0], FAST)
            await nursery.start(sender.run)
            sender.set_peer_address(1, (HOST, port))
            sender.send(1, vote(ids[0], 1))  # queued while 1 is down
            await wait_until(lambda: sender.stats.dial_failures[1] >= 3, what="failed dials")
            assert 1 not in sender.outbound_peers()
            for life in (2, 3):
                async with trio.open_nursery() as peer_nursery:
                    peer = make_transport(ids[1], FAST, port=port)
                    await peer_nursery.start(peer.run)
                    sender.send(1, vote(ids[0], life))
                    got = [m.round for _, m in await receive_n(peer, 2 if life == 2 else 1)]  # type: ignore[attr-defined]
                    assert got == ([1, 2] if life == 2 else [3])
                    assert 1 in sender.outbound_peers()
                    peer_nursery.cancel_scope.cancel()
                await wait_until(lambda: 1 not in sender.outbound_peers(), what="the loss being noticed")
            assert sender.stats.connections_opened["outbound"] == 2
            nursery.cancel_scope.cancel()


async def test_full_inbox_applies_backpressure_without_losing_messages() -> None:
    configs = {1: TransportConfig(inbox_size=2)}
    async with open_cluster([0, 1], config=FAST, configs=configs) as cluster:
        await wait_until(cluster.fully_connected)
        for r in range(300):
            cluster[0].send(1, vote(cluster.ids[0], r))
        await wait_until(lambda: cluster[0].queued(1) == 0, what="the queue written to the socket")
        await wait_until(lambda: cluster[1].stats.frames_in[0] == 3, what="the reader to block")
        assert cluster[1].stats.frames_in[0] == 3  # two in the inbox, one waiting: reading stopped
        got = await receive_n(cluster[1], 300)
        assert [m.round for _, m in got] == list(range(300))  # type: ignore[attr-defined]


# -- faults -------------------------------------------------------------------------------------


async def test_drop_rule_drops_everything_to_that_peer_only() -> None:
    async with open_cluster([0, 1, 2], config=FAST) as cluster:
        await wait_until(cluster.fully_connected)
        sender, ids = cluster[0], cluster.ids
        sender.faults.set(1, drop=1.0)
        for r in range(5):
            assert sender.send(1, vote(ids[0], r))
        sender.send(2, vote(ids[0], 50))
        assert await receive(cluster[2]) == (0, vote(ids[0], 50))
        assert sender.stats.fault_drops_out[1] == 5
        sender.faults.clear()
        sender.send(1, vote(ids[0], 60))
        assert await receive(cluster[1]) == (0, vote(ids[0], 60))  # the dropped five never came


async def test_partition_blocks_both_directions_and_heal_restores() -> None:
    async with open_cluster([0, 1, 2], config=FAST) as cluster:
        await wait_until(cluster.fully_connected)
        a, b, ids = cluster[0], cluster[1], cluster.ids
        a.faults.partition([1])
        a.send(1, vote(ids[0], 1))
        b.send(0, vote(ids[1], 2))
        await wait_until(lambda: a.stats.fault_drops_in[1] == 1, what="the incoming drop")
        cluster[2].send(0, vote(ids[2], 3))
        assert await receive(a) == (2, vote(ids[2], 3))  # the other peer still gets through
        assert a.stats.fault_drops_out[1] == 1
        assert_inbox_empty(b)
        a.faults.heal()
        a.send(1, vote(ids[0], 4))
        b.send(0, vote(ids[1], 5))
        assert await receive(b) == (0, vote(ids[0], 4))
        assert await receive(a) == (1, vote(ids[1], 5))


async def test_partition_also_drops_messages_already_queued() -> None:
    async with open_cluster([0, 1], config=FAST) as cluster:
        await wait_until(cluster.fully_connected)
        a = cluster[0]
        a.faults.set(1, delay=0.3)
        for r in range(3):
            a.send(1, vote(cluster.ids[0], r))
        a.faults.partition([1])
        await wait_until(lambda: a.stats.fault_drops_out[1] == 3, what="queued messages dropped")
        a.faults.clear()
        a.send(1, vote(cluster.ids[0], 9))
        assert await receive(cluster[1]) == (0, vote(cluster.ids[0], 9))


async def test_delay_holds_messages_and_keeps_their_order() -> None:
    async with open_cluster([0, 1], config=FAST) as cluster:
        await wait_until(cluster.fully_connected)
        a = cluster[0]
        a.faults.set(1, delay=0.25, jitter=0.1)
        start = trio.current_time()
        for r in range(40):
            a.send(1, vote(cluster.ids[0], r))
        first = await receive(cluster[1])
        assert trio.current_time() - start >= 0.25
        rest = await receive_n(cluster[1], 39)
        assert [m.round for _, m in [first, *rest]] == list(range(40))  # type: ignore[attr-defined]


# -- shutdown -----------------------------------------------------------------------------------


async def test_cancelling_run_closes_listener_connections_and_inbox() -> None:
    with trio.fail_after(5):
        async with open_cluster([0, 1, 2], config=FAST) as cluster:
            await cluster.check_exchange(round=1)
            addresses = [cluster.address(r) for r in range(3)]
        for r in range(3):
            with pytest.raises(trio.EndOfChannel):
                await cluster[r].inbox.receive()
            with pytest.raises(OSError):
                await trio.open_tcp_stream(*addresses[r])


async def test_stop_ends_run_and_a_transport_runs_once(ids: list[Identity]) -> None:
    transport = make_transport(ids[0], FAST)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(transport.run)
            transport.stop()
        async for _ in transport.inbox:
            raise AssertionError("the inbox should be closed and empty")
    with pytest.raises(RuntimeError):
        await transport.run()


async def test_a_deliver_hook_takes_what_it_accepts_and_the_inbox_gets_the_rest(ids: list[Identity]) -> None:
    """The node takes consensus messages straight from the connection's reader (one task hop less
    per message); whatever the hook declines still reaches the inbox, in order."""
    import random

    from network import Transport

    taken: list[tuple[int, int]] = []

    def deliver(sender: int, message: object) -> bool:
        round = getattr(message, "round", 0)
        if round % 2 == 0:
            taken.append((sender, round))
            return True
        return False

    receiver = Transport(me=1, key=ids[1].key, committee=ids[1].committee, peers={}, listen=(HOST, 0),
                         codec=ConsensusCodec(), config=FAST, rng=random.Random(1), deliver=deliver)
    sender = make_transport(ids[0], FAST)
    async with trio.open_nursery() as nursery:
        await nursery.start(receiver.run)
        await nursery.start(sender.run)
        assert receiver.listen_port is not None
        sender.set_peer_address(1, (HOST, receiver.listen_port))
        await wait_until(lambda: 1 in sender.outbound_peers(), what="a link")
        for round in range(1, 7):
            assert sender.send(1, vote(ids[0], round))
        got = await receive_n(receiver, 3)
        assert [message.round for _, message in got] == [1, 3, 5]  # type: ignore[attr-defined]
        await wait_until(lambda: len(taken) == 3, what="the hook's three messages")
        assert taken == [(0, 2), (0, 4), (0, 6)]
        assert_inbox_empty(receiver)
        nursery.cancel_scope.cancel()
