"""Inbound connections: accept under a concurrency limit, authenticate, read frames into the inbox.

Per connection: handshake within ``handshake_timeout`` (a silent connection is dropped then),
then frames are decoded with the node's codec and put into the bounded inbox; a full inbox stops
reading that connection (TCP backpressure). Any bad input closes that connection and is counted;
nothing a peer sends raises out of :meth:`InboundServer.serve`. A newer authenticated connection
from the same peer replaces (cancels) the older one.
"""

from __future__ import annotations

import errno
import logging
from typing import NoReturn

import trio

from .codec import Codec
from .config import TransportConfig
from .errors import FrameError, HandshakeError
from .faults import FaultRules
from .framing import HEADER_SIZE, FrameDecoder, read_frame
from .handshake import Identity, accept
from .peer import enable_keepalive
from .stats import INBOUND, UNDECODABLE, TransportStats

log = logging.getLogger(__name__)

Inbox = trio.MemorySendChannel[tuple[int, object]]
_STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
# accept() errors that mean "out of resources right now": wait and retry instead of dying.
_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_CAPACITY_PAUSE = 0.1


class InboundServer:
    __slots__ = ("_active", "_by_peer", "_codec", "_config", "_faults", "_identity", "_inbox", "_stats")

    def __init__(
        self, identity: Identity, config: TransportConfig, stats: TransportStats, faults: FaultRules,
        codec: Codec, inbox: Inbox,
    ) -> None:
        self._identity = identity
        self._config = config
        self._stats = stats
        self._faults = faults
        self._codec = codec
        self._inbox = inbox
        self._active = 0  # open inbound connections, authenticated or still in the handshake
        self._by_peer: dict[int, trio.CancelScope] = {}

    @property
    def peers(self) -> set[int]:
        """Peers with an authenticated inbound connection."""
        return set(self._by_peer)

    @property
    def active(self) -> int:
        return self._active

    async def serve(self, listener: trio.SocketListener) -> NoReturn:
        async with trio.open_nursery() as nursery:
            while True:
                stream = await self._accept(listener)
                if self._active >= self._config.max_inbound_connections:
                    self._stats.inbound_refused += 1
                    await trio.aclose_forcefully(stream)
                    continue
                self._active += 1
                nursery.start_soon(self._handle, stream)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _accept(self, listener: trio.SocketListener) -> trio.SocketStream:
        while True:
            try:
                return await listener.accept()
            except OSError as exc:
                if exc.errno not in _CAPACITY_ERRNOS:
                    raise
                log.error("accept failed (%s); pausing %s s", errno.errorcode[exc.errno], _CAPACITY_PAUSE)
                await trio.sleep(_CAPACITY_PAUSE)

    async def _handle(self, stream: trio.SocketStream) -> None:
        try:
            async with stream:
                enable_keepalive(stream)
                try:
                    peer = await accept(stream, self._identity, timeout=self._config.handshake_timeout)
                except HandshakeError as exc:
                    self._stats.handshake_failures[exc.reason] += 1
                    log.info("inbound handshake failed: %s", exc)
                    return
                await self._serve_peer(stream, peer)
        finally:
            self._active -= 1

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
            try:
                await self._inbox.send((peer, message))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return "inbox closed"
