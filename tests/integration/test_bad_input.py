"""Hostile input at a live replica's peer port. Each attack is rejected and counted (Prometheus
counters on /metrics), no replica crashes, and the cluster keeps committing afterwards."""

from __future__ import annotations

import random
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from consensus.messages import Vote
from network.handshake import Identity, dial
from sequencing.cluster.local import FAST_TIMING as TIMING
from sequencing.cluster.local import LocalCluster, running_cluster, write_local_config
from sequencing.keys import committee_of, key_path, load_keypair
from sequencing.replica.wire import NodeCodec

VICTIM = 0
REJECTION_METRICS = ("ordo_net_rejected_frames", "ordo_net_handshake_failures", "ordo_net_inbound_refused")


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    async with running_cluster(write_local_config(tmp_path, n=4, timing=TIMING), wait_height=3) as c:
        yield c






async def rejected_total(c: LocalCluster, replica_id: int) -> float:
    text = (await c.get(replica_id, "/metrics")).text
    total = 0.0
    for line in text.splitlines():
        name = line.split(" ")[0]
        if name.startswith(REJECTION_METRICS) and "_created" not in name:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def still_committing(c: LocalCluster) -> None:
    height = max((await c.heights()).values())
    await c.wait_height(height + 5, timeout=30)
    for status in (await c.statuses()).values():
        assert status is not None, "a replica stopped answering"


async def raw_connection(c: LocalCluster) -> trio.SocketStream:
    host, port = c.peer_address(VICTIM)
    return await trio.open_tcp_stream(host, port)


async def send_and_wait_close(c: LocalCluster, data: bytes) -> None:
    stream = await raw_connection(c)
    with trio.move_on_after(10):
        try:
            await stream.send_all(data)
            while await stream.receive_some(4096):
                pass
        except trio.BrokenResourceError:
            pass
    await stream.aclose()


@pytest.mark.parametrize(
    "attack",
    [
        pytest.param(b"\x00\x00\x00\x05hello", id="garbage-frame"),
        pytest.param(struct.pack(">I", 2**31) + b"x", id="oversize-length-prefix"),
        pytest.param(b"\x00\x00\x01\x00" + b"short", id="truncated-frame"),
        pytest.param(b"\x00\x00\x00\x00", id="empty-frame"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="http-request"),
    ],
)
async def test_malformed_bytes_are_rejected_and_counted(cluster: LocalCluster, attack: bytes) -> None:
    before = await rejected_total(cluster, VICTIM)
    await send_and_wait_close(cluster, attack)
    with trio.fail_after(10):
        while await rejected_total(cluster, VICTIM) <= before:
            await trio.sleep(0.05)
    await still_committing(cluster)


async def test_random_bytes_never_hurt_the_replica(cluster: LocalCluster) -> None:
    """Seeded random blobs, sent concurrently (each may wait out the handshake timeout); the
    unit-level property tests in tests/network cover arbitrary bytes and chunkings."""
    rng = random.Random(2026)
    blobs = [rng.randbytes(rng.randint(1, 600)) for _ in range(24)]
    async with trio.open_nursery() as nursery:
        for blob in blobs:
            nursery.start_soon(send_and_wait_close, cluster, blob)
    assert await rejected_total(cluster, VICTIM) >= len(blobs) // 2
    await still_committing(cluster)


async def test_slow_loris_is_dropped_after_the_first_frame_deadline(cluster: LocalCluster) -> None:
    before = await cluster.metric(VICTIM, "ordo_net_handshake_failures_total", '{key="hello_timeout"}')
    stream = await raw_connection(cluster)
    with trio.fail_after(20):
        try:
            while await stream.receive_some(4096):
                pass
        except trio.BrokenResourceError:
            pass
    await stream.aclose()
    after = await cluster.metric(VICTIM, "ordo_net_handshake_failures_total", '{key="hello_timeout"}')
    assert after > before
    await still_committing(cluster)


async def test_connection_flood_is_bounded(cluster: LocalCluster) -> None:
    streams = []
    try:
        for _ in range(150):
            try:
                streams.append(await raw_connection(cluster))
            except OSError:
                break
        with trio.fail_after(10):
            while await cluster.metric(VICTIM, "ordo_net_inbound_refused_total") < 1:
                await trio.sleep(0.05)
    finally:
        for s in streams:
            await s.aclose()
    await still_committing(cluster)


async def test_stranger_key_and_wrong_chain_are_refused(cluster: LocalCluster, tmp_path: Path) -> None:
    from consensus.committee import Committee
    from consensus.crypto import KeyPair
    from network.errors import HandshakeError

    committee = committee_of(cluster.config)
    stranger = KeyPair.from_seed(b"stranger")
    # claims to be replica 2 but holds another key
    stream = await raw_connection(cluster)
    keys = list(committee.public_keys)
    keys[2] = stranger.public
    with pytest.raises(HandshakeError):
        await dial(stream, Identity(2, stranger, Committee(committee.chain_id, tuple(keys))), VICTIM, timeout=5)
    await stream.aclose()
    # a real member key, but for another chain
    key3 = load_keypair(key_path(cluster.config, 3))
    other_chain = Committee("another-chain", committee.public_keys)
    stream = await raw_connection(cluster)
    with pytest.raises(HandshakeError):
        await dial(stream, Identity(3, key3, other_chain), VICTIM, timeout=5)
    await stream.aclose()
    refused = await cluster.metric(VICTIM, "ordo_net_handshake_failures_total")
    assert refused >= 2
    await still_committing(cluster)


async def test_authenticated_peer_sending_forged_and_undecodable_messages(cluster: LocalCluster) -> None:
    """A committee member (we hold replica 3's key) sends a vote with a forged signature, then a
    well-framed body that does not decode. The forgery is dropped by the core and counted; the
    undecodable frame closes that connection and is counted; the cluster keeps committing."""
    from network.framing import encode_frame

    await cluster.stop(3)  # take over replica 3's identity while it is down
    committee = committee_of(cluster.config)
    key3 = load_keypair(key_path(cluster.config, 3))
    codec = NodeCodec(cluster.config.limits.max_frame_bytes)
    stream = await raw_connection(cluster)
    assert await dial(stream, Identity(3, key3, committee), VICTIM, timeout=5) == VICTIM
    status = await cluster.status(VICTIM)
    assert status is not None
    round_ = status["round"]
    forged_signature = key3.private.sign(b"not what a vote signs")
    forged = Vote(round_, b"\x01" * 32, 2, forged_signature)  # claims to be replica 2's vote
    dropped_before = await cluster.metric(VICTIM, "ordo_dropped_inputs_total", '{kind="Vote"}')
    await stream.send_all(encode_frame(codec.encode(forged)))
    with trio.fail_after(10):
        while await cluster.metric(VICTIM, "ordo_dropped_inputs_total", '{kind="Vote"}') <= dropped_before:
            await trio.sleep(0.05)
    undecodable_before = await cluster.metric(VICTIM, "ordo_net_rejected_frames_total", '{key="undecodable"}')
    await stream.send_all(encode_frame(b"\x92\x02\xc1"))
    with trio.fail_after(10):
        while await cluster.metric(VICTIM, "ordo_net_rejected_frames_total",
                           '{key="undecodable"}') <= undecodable_before:
            await trio.sleep(0.05)
    await stream.aclose()
    await cluster.start(3)
    await cluster.wait_ready([3])
    await still_committing(cluster)
