"""Hostile peers for ``scripts/faults/bad-peers``: attacks on a replica's peer port and the
refusal counters that should count them.

Each attack is an async function ``attack(target, until)`` that keeps attacking one replica's
peer port until the trio clock reaches ``until`` (a bounded number of connections at a time) and
returns how many attempts it made. ``REFUSALS`` names the /metrics families that count refused
peer input; :func:`refusals` reads them per reason."""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio
import trio.testing

from consensus.committee import Committee
from consensus.crypto import KeyPair
from consensus.encoding import pack
from network.errors import HandshakeError
from network.framing import encode_frame
from network.handshake import PROTOCOL_VERSION, Identity, accept, dial
from sequencing.cluster.local import LocalCluster
from sequencing.keys import committee_of, key_path, load_keypair

REFUSALS = ("ordo_net_rejected_frames", "ordo_net_handshake_failures", "ordo_net_inbound_refused")
_METRIC_LINE = re.compile(r'^(ordo_net_\w+)_total\{key="([^"]*)"\} (\S+)$', re.MULTILINE)
_STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
PAUSE = 0.05  # between two attempts of one attack on one replica


async def refusals(cluster: LocalCluster, replica: int) -> dict[str, float]:
    """``family:reason -> count`` of the refusal counters on the replica's /metrics."""
    text = (await cluster.get(replica, "/metrics", timeout=5.0)).text
    return {f"{m.group(1).removeprefix('ordo_net_')}:{m.group(2)}": float(m.group(3))
            for m in _METRIC_LINE.finditer(text) if m.group(1) in REFUSALS}


def deltas(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in sorted(after.items()) if v - before.get(k, 0.0) > 0}


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


@dataclass(frozen=True)
class Target:
    """One replica under attack: its peer address, and what an attacker may know or have seen."""

    replica: int
    host: str
    port: int
    committee: Committee
    recorded_handshake: bytes  # a genuine dialer's bytes to this replica, from another session

    @property
    def chain_id(self) -> str:
        return self.committee.chain_id

    @property
    def members(self) -> int:
        return len(self.committee.public_keys)


async def _exchange(target: Target, data: bytes, *, eof: bool = False, hold: float = 10.0) -> None:
    """Connect, send ``data`` (then EOF if asked), read until the replica closes (at most ``hold``)."""
    try:
        stream = await trio.open_tcp_stream(target.host, target.port)
    except OSError:
        return
    async with stream:
        with trio.move_on_after(hold):
            try:
                if data:
                    await stream.send_all(data)
                if eof:
                    await stream.send_eof()
                while await stream.receive_some(4096):
                    pass
            except _STREAM_ERRORS:
                pass


async def _repeat(one: Callable[[], Awaitable[None]], until: float, parallel: int = 4) -> int:
    """Run ``one`` again and again, ``parallel`` at a time, until ``until``."""
    attempts = 0

    async def worker() -> None:
        nonlocal attempts
        while trio.current_time() < until:
            attempts += 1
            await one()
            await trio.sleep(PAUSE)

    async with trio.open_nursery() as nursery:
        for _ in range(parallel):
            nursery.start_soon(worker)
    return attempts


def _hello(chain_id: str, claimed: int) -> bytes:
    return encode_frame(pack(["hello", PROTOCOL_VERSION, chain_id, claimed, os.urandom(32)]))


async def garbage(t: Target, until: float) -> int:
    """A well-framed body that is not msgpack, and random bytes."""
    async def one() -> None:
        await _exchange(t, b"\x00\x00\x00\x05hello" if os.urandom(1)[0] & 1 else b"\xc1" * 16 + os.urandom(200))
    return await _repeat(one, until)


async def oversize(t: Target, until: float) -> int:
    """A length prefix of 2 GiB (and a few body bytes)."""
    return await _repeat(lambda: _exchange(t, struct.pack(">I", 2**31) + os.urandom(64)), until)


async def truncated(t: Target, until: float) -> int:
    """A frame announcing 256 bytes, five sent, then end of stream."""
    return await _repeat(lambda: _exchange(t, b"\x00\x00\x01\x00short", eof=True), until)


async def unknown_key(t: Target, until: float) -> int:
    """A hello from an id outside the committee (a stranger's key)."""
    return await _repeat(lambda: _exchange(t, _hello(t.chain_id, t.members + 7)), until)


async def wrong_chain(t: Target, until: float) -> int:
    """A valid-looking hello from a committee member's id for another chain."""
    claimed = (t.replica + 1) % t.members
    return await _repeat(lambda: _exchange(t, _hello(t.chain_id + "-other", claimed)), until)


async def replayed_handshake(t: Target, until: float) -> int:
    """A genuine dialer's recorded hello and auth, sent again: the auth signature covers the
    listener's fresh nonce of the recorded session, not this one."""
    return await _repeat(lambda: _exchange(t, t.recorded_handshake), until)


async def forged_signature(t: Target, until: float) -> int:
    """The handshake of a committee member's id, signed with a key that is not its own."""
    claimed = (t.replica + 1) % t.members
    stranger = KeyPair.from_seed(os.urandom(32))

    async def one() -> None:
        committee = _fake_committee(t, claimed, stranger)
        try:
            stream = await trio.open_tcp_stream(t.host, t.port)
        except OSError:
            return
        async with stream:
            try:
                await dial(stream, Identity(claimed, stranger, committee), t.replica, timeout=5.0)
            except HandshakeError:
                pass
            except _STREAM_ERRORS:
                pass
    return await _repeat(one, until)


def _fake_committee(t: Target, claimed: int, stranger: KeyPair) -> Committee:
    """The real committee, except that ``claimed`` has the stranger's key (the welcome from the
    replica still verifies against its real key)."""
    real = t.committee
    keys = list(real.public_keys)
    keys[claimed] = stranger.public
    return Committee(real.chain_id, tuple(keys))


async def slow_loris(t: Target, until: float, connections: int = 8) -> int:
    """Connections that send a valid-looking hello one byte per second, each until the replica
    closes it (new ones are opened until ``until``)."""
    hello = _hello(t.chain_id, (t.replica + 1) % t.members)

    async def one() -> None:
        try:
            stream = await trio.open_tcp_stream(t.host, t.port)
        except OSError:
            return
        async with stream:
            try:
                for i in range(len(hello)):
                    await stream.send_all(hello[i:i + 1])
                    with trio.move_on_after(1.0):
                        while await stream.receive_some(4096):
                            pass
                        return  # the replica closed it
            except _STREAM_ERRORS:
                pass  # the replica closed it
    return await _repeat(one, until, parallel=connections)


async def flood(t: Target, until: float, connections: int = 300, pause: float = 0.5) -> dict[str, Any]:
    """``connections`` idle connections held open at once until ``until``: each one the replica
    closes is opened again after ``pause`` (a sustained flood of bounded size). How many were
    opened, and how many the replica closed."""
    opened = closed = 0

    async def worker() -> None:
        nonlocal opened, closed
        while trio.current_time() < until:
            try:
                stream = await trio.open_tcp_stream(t.host, t.port)
            except OSError:
                await trio.sleep(pause)
                continue
            opened += 1
            async with stream:
                with trio.move_on_at(until):
                    try:
                        while await stream.receive_some(1):
                            pass
                    except _STREAM_ERRORS:
                        pass
                    closed += 1
            await trio.sleep(pause)

    async with trio.open_nursery() as nursery:
        for _ in range(connections):
            nursery.start_soon(worker)
    return {"opened": opened, "closed_by_replica": closed}


class _Recording(trio.abc.Stream):
    """A stream that keeps a copy of everything sent through it."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.sent = bytearray()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.sent += data
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def record_handshake(committee: Committee, dialer: Identity, listener: Identity) -> bytes:
    """The bytes a genuine dialer sends in a complete handshake (over a local memory stream)."""
    left, right = trio.testing.memory_stream_pair()
    recording = _Recording(left)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: accept(right, listener, timeout=5.0))
        await dial(recording, dialer, listener.replica_id, timeout=5.0)
    return bytes(recording.sent)


async def targets(cluster: LocalCluster) -> list[Target]:
    """Every replica of the cluster as a target (the recorded handshakes use the cluster's own
    keys, as an eavesdropper between two members would have seen them)."""
    committee = committee_of(cluster.config)
    members = len(committee.public_keys)
    keys = {r: load_keypair(key_path(cluster.config, r)) for r in cluster.ids}
    result = []
    for r in cluster.ids:
        host, port = cluster.peer_address(r)
        dialer = (r + 1) % members
        recorded = await record_handshake(committee, Identity(dialer, keys[dialer], committee),
                                          Identity(r, keys[r], committee))
        result.append(Target(r, host, port, committee, recorded))
    return result


# name -> (attack, the refusal counters at least one of which it must raise at every replica)
ATTACKS: dict[str, tuple[Callable[[Target, float], Awaitable[Any]], tuple[str, ...]]] = {
    "garbage": (garbage, ("handshake_failures:malformed",)),
    "oversize": (oversize, ("handshake_failures:malformed",)),
    "truncated": (truncated, ("handshake_failures:closed",)),
    "unknown-key": (unknown_key, ("handshake_failures:not_in_committee",)),
    "wrong-chain": (wrong_chain, ("handshake_failures:chain_id",)),
    "replayed-handshake": (replayed_handshake, ("handshake_failures:bad_signature",)),
    "forged-signature": (forged_signature, ("handshake_failures:bad_signature",)),
    "slow-loris": (slow_loris, ("handshake_failures:hello_timeout",)),
    "flood": (flood, ("inbound_refused:evicted_silent",)),
}
