"""The replica-to-replica transport: authenticated TCP links to every committee member.

One :class:`Transport` per replica. ``run()`` listens, accepts and authenticates inbound
connections (which carry peers' messages to us) and keeps one outbound connection to every peer
(which carries ours to it). ``send``/``broadcast`` never block and never raise; received messages
arrive in ``inbox`` as ``(sender_id, message)``.

Shutdown: cancel the cancel scope (or nursery) around ``run()``, or call :meth:`Transport.stop`.
Either way every connection and the listener are closed before ``run()`` returns, no task is left
behind, and the inbox's send side is closed, so ``async for`` over ``inbox`` ends. A transport
runs once; make a new one to restart.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping

import trio

from consensus.committee import Committee
from consensus.crypto import KeyPair

from .codec import Codec
from .config import TransportConfig
from .faults import FaultRules
from .framing import encode_frame
from .handshake import Identity
from .inbound import Deliver, InboundServer
from .inbox import Inbox
from .peer import Address, OutboundPeer
from .stats import TransportStats

log = logging.getLogger(__name__)


class Transport:
    """One replica's links to its peers.

    Waits without a deadline are idle waits that end by cancellation: for a queued message, for
    an inbound frame, for a peer's address, and for room in the inbox. A full inbox stops the
    reader of that connection (TCP backpressure, no loss); the sending peer's ``write_timeout``
    then bounds how long it waits before it drops the connection and redials.
    """

    def __init__(
        self, *, me: int, key: KeyPair, committee: Committee, peers: Mapping[int, Address],
        listen: Address, codec: Codec, config: TransportConfig | None = None,
        faults: FaultRules | None = None, rng: random.Random | None = None,
        deliver: Deliver | None = None,
    ) -> None:
        """``peers`` maps other replicas' ids to ``(host, port)``; a committee member missing from it
        is dialled once :meth:`set_peer_address` gives its address. ``listen`` port 0 picks a free
        port (see ``listen_port``). ``rng`` drives reconnect jitter and, if ``faults`` is not given,
        the fault layer's draws. ``deliver(sender, message)``, if given, sees each received message
        first, in the connection's reader: True means it took the message (it must not block and
        must not raise for anything a peer sends), False queues it in ``inbox`` as usual."""
        self.identity = Identity(me, key, committee)
        self.config = config if config is not None else TransportConfig()
        self.codec = codec
        self.rng = rng if rng is not None else random.Random()
        self.faults = faults if faults is not None else FaultRules(random.Random(self.rng.getrandbits(64)))
        self.stats = TransportStats()
        self.listen_port: int | None = None
        self._listen = listen
        for peer in peers:
            if peer == me or not committee.contains(peer):
                raise ValueError(f"peers may only name other committee members, got {peer!r}")
        self._outbound = {
            peer: OutboundPeer(
                peer, self.identity, self.config, self.stats, self.faults, self.rng, peers.get(peer)
            )
            for peer in committee.ids
            if peer != me
        }
        self.inbox = Inbox(self.config.inbox_size, self.config.inbox_bytes)
        self._inbound = InboundServer(self.identity, self.config, self.stats, self.faults, codec, self.inbox,
                                      deliver)
        self._cancel_scope = trio.CancelScope()
        self._ran = False

    @property
    def me(self) -> int:
        return self.identity.replica_id

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled or :meth:`stop`; ``task_status.started(port)`` once listening."""
        if self._ran:
            raise RuntimeError("a Transport runs only once")
        self._ran = True
        host, port = self._listen
        try:
            with self._cancel_scope:
                listeners = await trio.open_tcp_listeners(port, host=host)
                try:
                    self.listen_port = listeners[0].socket.getsockname()[1]
                    async with trio.open_nursery() as nursery:
                        for listener in listeners:
                            nursery.start_soon(self._inbound.serve, listener)
                        for peer in self._outbound.values():
                            nursery.start_soon(peer.run)
                        task_status.started(self.listen_port)
                finally:
                    for listener in listeners:
                        await trio.aclose_forcefully(listener)
        finally:
            self.inbox.close()

    def stop(self) -> None:
        """Make ``run()`` close everything and return (also before it started)."""
        self._cancel_scope.cancel()

    def set_peer_address(self, peer: int, address: Address) -> None:
        self._peer(peer).set_address(address)

    # -- sending ----------------------------------------------------------------------------

    def send(self, to: int, message: object) -> bool:
        """Queue ``message`` for ``to`` without blocking; never raises.

        Returns False (and counts ``send_refused``) if ``to`` is us or not a committee member, or
        if the message cannot be encoded or exceeds ``max_frame_size``. True means queued, or
        dropped by the fault layer: like a real network, it does not promise delivery.
        Overflow policy: each peer's queue holds ``send_queue_size`` messages and
        ``send_queue_bytes`` bytes; when it is full the OLDEST queued messages are dropped (counted
        in ``stats.queue_drops``) to make room.
        """
        peer = self._outbound.get(to)
        if peer is None:
            self.stats.send_refused += 1
            return False
        frame = self._encode(message)
        if frame is None:
            return False
        self._enqueue(peer, frame)
        return True

    def broadcast(self, message: object) -> int:
        """Queue ``message`` for every peer, encoding it once; returns how many peers it was
        queued for (0 if it cannot be encoded). Same overflow policy as :meth:`send`."""
        frame = self._encode(message)
        if frame is None:
            return 0
        for peer in self._outbound.values():
            self._enqueue(peer, frame)
        return len(self._outbound)

    def _encode(self, message: object) -> bytes | None:
        try:
            body = self.codec.encode(message)
        except Exception:
            self.stats.encode_errors += 1
            log.exception("cannot encode %s", type(message).__name__)
            return None
        if not body or len(body) > self.config.max_frame_size:
            self.stats.send_oversize += 1
            log.error("not sending %s: %d bytes encoded", type(message).__name__, len(body))
            return None
        return encode_frame(body)

    def _enqueue(self, peer: OutboundPeer, frame: bytes) -> None:
        hold = self.faults.outgoing(peer.peer_id)
        if hold is None:
            self.stats.fault_drops_out[peer.peer_id] += 1
            return
        release_at = trio.current_time() + hold if hold > 0 else 0.0
        dropped = peer.queue.put(frame, release_at)
        if dropped:
            self.stats.queue_drops[peer.peer_id] += dropped

    # -- state ------------------------------------------------------------------------------

    def outbound_peers(self) -> set[int]:
        """Peers we hold an authenticated outbound connection to (our messages can flow)."""
        return {peer_id for peer_id, peer in self._outbound.items() if peer.connected}

    def inbound_peers(self) -> set[int]:
        """Peers holding an authenticated connection to us (their messages can flow)."""
        return self._inbound.peers

    def connected_peers(self) -> set[int]:
        """Peers linked both ways: our outbound and their inbound connection are authenticated, so
        messages flow in both directions. (One direction alone is not a working link.)"""
        return self.outbound_peers() & self.inbound_peers()

    def queued(self, peer: int) -> int:
        """Messages waiting in ``peer``'s send queue."""
        return len(self._peer(peer).queue)

    def inbound_connections(self) -> int:
        """Open inbound connections: authenticated ones plus those still in the handshake."""
        return len(self._inbound.peers) + self._inbound.pending

    def pending_handshakes(self) -> int:
        """Inbound connections still in the handshake (at most ``max_pending_handshakes``)."""
        return self._inbound.pending

    def _peer(self, peer: int) -> OutboundPeer:
        try:
            return self._outbound[peer]
        except KeyError:
            raise ValueError(f"replica {peer} is not one of our peers") from None
