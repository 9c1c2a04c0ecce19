"""Helpers shared by the network tests: keys, a consensus codec, signed votes, a TCP cluster."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager

import trio

from consensus.committee import Committee
from consensus.crypto import KeyPair, SignatureKind, Signer
from consensus.encoding import pack
from consensus.messages import Vote
from network import ConsensusCodec, Identity, Transport, TransportConfig
from network.framing import encode_frame
from network.handshake import PROTOCOL_VERSION

CHAIN = "ordo-test"
HOST = "127.0.0.1"


def keys(n: int, salt: bytes = b"") -> list[KeyPair]:
    return [KeyPair.from_seed(salt + bytes([i])) for i in range(n)]


def committee(key_pairs: Iterable[KeyPair], chain_id: str = CHAIN) -> Committee:
    return Committee(chain_id, tuple(k.public for k in key_pairs))


def identities(n: int = 4, chain_id: str = CHAIN) -> list[Identity]:
    ks = keys(n)
    com = committee(ks, chain_id)
    return [Identity(i, k, com) for i, k in enumerate(ks)]


def vote(identity: Identity, round: int, block: bytes = b"\x07" * 32) -> Vote:
    signer = Signer(identity.chain_id, identity.replica_id, identity.key)
    return Vote(round, block, identity.replica_id, signer.sign(SignatureKind.VOTE, round, block))


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``predicate`` (real sockets need real time) until it holds, or fail the test."""
    try:
        with trio.fail_after(timeout):
            while not predicate():
                await trio.sleep(0.01)
    except trio.TooSlowError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None


async def receive(transport: Transport, timeout: float = 5.0) -> tuple[int, object]:
    with trio.fail_after(timeout):
        return await transport.inbox.receive()


async def receive_n(transport: Transport, n: int, timeout: float = 5.0) -> list[tuple[int, object]]:
    with trio.fail_after(timeout):
        return [await transport.inbox.receive() for _ in range(n)]


def assert_inbox_empty(transport: Transport) -> None:
    try:
        item = transport.inbox.receive_nowait()
    except trio.WouldBlock:
        return
    raise AssertionError(f"unexpected message {item!r}")


def make_transport(
    identity: Identity, config: TransportConfig | None = None, port: int = 0, seed: int = 0
) -> Transport:
    return Transport(
        me=identity.replica_id, key=identity.key, committee=identity.committee, peers={},
        listen=(HOST, port), codec=ConsensusCodec(), config=config, rng=random.Random(seed),
    )


class Cluster:
    """Running transports for some committee members, wired to each other's ephemeral ports."""

    def __init__(self, ids: list[Identity], transports: dict[int, Transport]) -> None:
        self.ids = ids
        self.transports = transports

    def __getitem__(self, replica: int) -> Transport:
        return self.transports[replica]

    def address(self, replica: int) -> tuple[str, int]:
        port = self.transports[replica].listen_port
        assert port is not None
        return (HOST, port)

    def connect(self, dialer: int, listener: int) -> None:
        """Tell ``dialer`` where ``listener`` listens."""
        self.transports[dialer].set_peer_address(listener, self.address(listener))

    def fully_connected(self) -> bool:
        members = set(self.transports)
        return all(
            t.outbound_peers() >= members - {r} and t.inbound_peers() >= members - {r}
            for r, t in self.transports.items()
        )

    async def check_exchange(self, round: int) -> None:
        """Every running replica broadcasts a vote and every other one receives exactly it."""
        await wait_until(self.fully_connected, what="a fully connected cluster")
        for r, t in self.transports.items():
            assert t.broadcast(vote(self.ids[r], round)) == len(self.ids) - 1
        for r, t in self.transports.items():
            got = await receive_n(t, len(self.transports) - 1)
            expected = {(s, vote(self.ids[s], round)) for s in self.transports if s != r}
            assert set(got) == expected


@asynccontextmanager
async def open_cluster(
    running: Iterable[int], size: int = 4, config: TransportConfig | None = None,
    configs: dict[int, TransportConfig] | None = None, wire: bool = True,
) -> AsyncIterator[Cluster]:
    """Start transports for the ``running`` replicas of a ``size`` committee; with ``wire`` each
    learns the others' ports and the block starts once all are connected. Everything is
    cancelled when the block exits."""
    ids = identities(size)
    async with trio.open_nursery() as nursery:
        transports: dict[int, Transport] = {}
        for r in running:
            cfg = (configs or {}).get(r, config)
            transports[r] = make_transport(ids[r], cfg, seed=r)
            await nursery.start(transports[r].run)
        cluster = Cluster(ids, transports)
        if wire:
            for r in transports:
                for other in transports:
                    if other != r:
                        cluster.connect(r, other)
            await wait_until(cluster.fully_connected, what="a fully connected cluster")
        yield cluster
        nursery.cancel_scope.cancel()


# -- a flood of unauthenticated connections ------------------------------------------------------


async def idle(stream: trio.SocketStream) -> None:
    """Hold the connection and never speak."""


async def drip(stream: trio.SocketStream) -> None:
    """Slow loris: a length prefix announcing a small frame, then a byte every 50 ms."""
    await stream.send_all(b"\x00\x00\x00\x40")
    while True:
        await trio.sleep(0.05)
        await stream.send_all(b"\x00")


async def hello_then_stall(stream: trio.SocketStream) -> None:
    """A well-formed hello claiming replica 1 (costing the listener a signature), then silence."""
    await stream.send_all(encode_frame(pack(["hello", PROTOCOL_VERSION, CHAIN, 1, os.urandom(32)])))


Behaviour = Callable[[trio.SocketStream], Awaitable[None]]


async def hold(stream: trio.SocketStream, behaviour: Behaviour) -> None:
    """Run ``behaviour`` on ``stream`` until the other side closes it."""
    async with stream, trio.open_nursery() as nursery:

        async def until_closed() -> None:
            try:
                while await stream.receive_some(4096):
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            nursery.cancel_scope.cancel()

        nursery.start_soon(until_closed)
        try:
            await behaviour(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        await trio.sleep_forever()


async def flood(
    address: tuple[str, int], count: int, behaviour: Behaviour, opened: list[int], reopen_after: float = 0.005,
    source: str | None = None,
) -> None:
    """``count`` connections (from the local address ``source``, e.g. another 127.x address),
    each reopened ``reopen_after`` seconds after the other side drops it (or refuses it), until
    cancelled. ``opened[0]`` counts the connections made."""

    async def one() -> None:
        while True:
            try:
                stream = await trio.open_tcp_stream(*address, local_address=source)
            except OSError:  # nobody listening (a restarting replica), or out of ports for a moment
                await trio.sleep(max(reopen_after, 0.01))
                continue
            opened[0] += 1
            await hold(stream, behaviour)
            await trio.sleep(reopen_after)  # a pause that keeps the test process usable

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)
