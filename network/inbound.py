"""Inbound connections: admit, authenticate, read frames into the inbox.

Admission keeps unauthenticated connections from starving committee members. A connection in
the handshake holds one of ``max_pending_handshakes`` slots; when they are all taken, a newcomer
is still admitted and a pending connection is closed instead: one from the source address
holding the most pending connections, the oldest of those that have not sent a whole frame if
any (an honest dialer sends its first frame at once), else its oldest. Its first frame must
arrive within ``hello_timeout`` and the whole handshake within ``handshake_timeout``; before
authentication frames are at most 1 KiB and reads at most one such frame. An authenticated
connection leaves the pending budget: each committee member holds one slot of its own, and a
newer authenticated connection from the same peer replaces (cancels) the older one. So a flood
of idle or slow connections is churned through the pending budget while peers keep connecting.

Per authenticated connection, frames are decoded with the node's codec and offered to the node's
``deliver`` hook if it has one (it takes what it can handle at once, e.g. consensus messages,
saving a task hop per message), else put into the bounded inbox; a full inbox (messages or
bytes) stops reading that connection (TCP backpressure). Any bad input closes that connection and
is counted; nothing a peer sends raises out of :meth:`InboundServer.serve`.
"""

from __future__ import annotations

import errno
import itertools
import logging
from collections import Counter
from collections.abc import Callable
from typing import NoReturn

import trio

from .codec import Codec
from .config import TransportConfig
from .errors import FrameError, HandshakeError, HandshakeFailure
from .faults import FaultRules
from .framing import HEADER_SIZE, FrameDecoder, read_frame
from .handshake import Identity, accept
from .inbox import Inbox
from .peer import enable_keepalive
from .stats import EVICTED_IN_HANDSHAKE, EVICTED_SILENT, INBOUND, UNDECODABLE, TransportStats

log = logging.getLogger(__name__)

_STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
# accept() errors that mean "out of resources right now": wait and retry instead of dying.
_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_CAPACITY_PAUSE = 0.1
# Failures anyone can cause in bulk (a flood): logged at debug level only, counted all the same.
_QUIET = frozenset({HandshakeFailure.TIMEOUT, HandshakeFailure.HELLO_TIMEOUT, HandshakeFailure.CLOSED})


Deliver = Callable[[int, object], bool]  # (sender, message) -> taken; see Transport


class _Pending:
    """One unauthenticated connection: its source address, its cancel scope, and whether its
    first frame is in."""

    __slots__ = ("key", "scope", "source", "spoke")

    def __init__(self, key: int, source: str) -> None:
        self.key = key
        self.source = source
        self.scope = trio.CancelScope()
        self.spoke = False

    def heard(self) -> None:
        self.spoke = True


def _source(stream: trio.SocketStream) -> str:
    try:
        return str(stream.socket.getpeername()[0])
    except (OSError, IndexError, TypeError):  # already reset, or an exotic socket
        return ""


class InboundServer:
    __slots__ = ("_by_peer", "_codec", "_config", "_deliver", "_faults", "_identity", "_inbox", "_keys", "_pending",
                 "_stats")

    def __init__(
        self, identity: Identity, config: TransportConfig, stats: TransportStats, faults: FaultRules,
        codec: Codec, inbox: Inbox, deliver: Deliver | None = None,
    ) -> None:
        self._identity = identity
        self._config = config
        self._stats = stats
        self._faults = faults
        self._codec = codec
        self._inbox = inbox
        self._deliver = deliver
        self._pending: dict[int, _Pending] = {}  # in the handshake, oldest first
        self._keys = itertools.count()
        self._by_peer: dict[int, trio.CancelScope] = {}

    @property
    def peers(self) -> set[int]:
        """Peers with an authenticated inbound connection."""
        return set(self._by_peer)

    @property
    def pending(self) -> int:
        """Inbound connections still in the handshake."""
        return len(self._pending)

    async def serve(self, listener: trio.SocketListener) -> NoReturn:
        async with trio.open_nursery() as nursery:
            while True:
                stream = await self._accept(listener)
                if len(self._pending) >= self._config.max_pending_handshakes:
                    self._evict()
                slot = _Pending(next(self._keys), _source(stream))
                self._pending[slot.key] = slot
                nursery.start_soon(self._handle, stream, slot)
        raise AssertionError("unreachable")  # pragma: no cover

    def _evict(self) -> None:
        """Close a pending connection of the source address holding the most of them: its oldest
        that has not spoken, else its oldest. A flood from one address thus never evicts a peer
        dialling from another; among equals the silent and the old go first."""
        per_source = Counter(p.source for p in self._pending.values())
        source = max(per_source, key=per_source.__getitem__)  # ties: the source seen first
        mine = [p for p in self._pending.values() if p.source == source]
        victim = next((p for p in mine if not p.spoke), mine[0])
        del self._pending[victim.key]
        victim.scope.cancel()
        self._stats.inbound_refused[EVICTED_IN_HANDSHAKE if victim.spoke else EVICTED_SILENT] += 1

    async def _accept(self, listener: trio.SocketListener) -> trio.SocketStream:
        while True:
            try:
                return await listener.accept()
            except OSError as exc:
                if exc.errno not in _CAPACITY_ERRNOS:
                    raise
                log.error("accept failed (%s); pausing %s s", errno.errorcode[exc.errno], _CAPACITY_PAUSE)
                await trio.sleep(_CAPACITY_PAUSE)

    async def _handle(self, stream: trio.SocketStream, slot: _Pending) -> None:
        try:
            async with stream:
                peer: int | None = None
                with slot.scope:
                    enable_keepalive(stream)
                    try:
                        peer = await accept(
                            stream, self._identity, timeout=self._config.handshake_timeout,
                            hello_timeout=self._config.hello_timeout, on_hello=slot.heard,
                        )
                    except HandshakeError as exc:
                        self._stats.handshake_failures[exc.reason] += 1
                        log.log(logging.DEBUG if exc.reason in _QUIET else logging.INFO,
                                "inbound handshake failed: %s", exc)
                if peer is None or self._pending.pop(slot.key, None) is None:
                    return  # failed, or evicted (and counted) while the handshake completed
                await self._serve_peer(stream, peer)
        finally:
            self._pending.pop(slot.key, None)

    async def _serve_peer(self, stream: trio.SocketStream, peer: int) -> None:
        with trio.CancelScope() as scope:
            previous = self._by_peer.get(peer)
            if previous is not None:
                previous.cancel()
                self._stats.connections_replaced += 1
            self._by_peer[peer] = scope
            self._stats.connections_opened[INBOUND] += 1
            try:
                reason = await self._read(stream, peer)
                log.info("connection from replica %s closed: %s", peer, reason)
            finally:
                if self._by_peer.get(peer) is scope:
                    del self._by_peer[peer]
                self._stats.connections_closed[INBOUND] += 1

    async def _read(self, stream: trio.SocketStream, peer: int) -> str:
        """Deliver frames from ``peer`` until the connection ends; returns why it ended."""
        decoder = FrameDecoder(self._config.max_frame_size)
        deliver = self._deliver
        while True:
            try:
                frame = await read_frame(stream, decoder)
            except FrameError as exc:
                self._stats.rejected_frames[exc.reason] += 1
                return f"bad framing: {exc}"
            except _STREAM_ERRORS as exc:
                return f"read failed: {exc!r}"
            if frame is None:
                return "closed by peer"
            self._stats.frames_in[peer] += 1
            self._stats.bytes_in[peer] += HEADER_SIZE + len(frame)
            if self._faults.is_blocked(peer):
                self._stats.fault_drops_in[peer] += 1
                continue
            try:
                message = self._codec.decode(frame)
            except Exception as exc:  # the codec's contract: any exception means undecodable
                self._stats.rejected_frames[UNDECODABLE] += 1
                return f"undecodable message: {exc!r}"[:300]
            if deliver is not None and deliver(peer, message):
                continue
            try:
                await self._inbox.put(peer, message, len(frame))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return "inbox closed"
