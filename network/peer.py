"""Our side of one peer: its bounded send queue and the loop that dials it and drains the queue.

Each TCP connection carries messages one way. The dial loop connects, authenticates as the
dialer, then writes queued frames until the connection breaks (write error, write timeout, or
the peer closing it), and redials with capped exponential backoff and jitter. Queued messages
survive reconnects; the frames being written when the connection breaks are lost (frames queued
together are written together, up to ``COALESCE_BYTES``).
"""

from __future__ import annotations

import logging
import math
import random
import socket

import trio

from .backoff import Backoff
from .config import TransportConfig
from .errors import HandshakeError
from .faults import FaultRules
from .handshake import Identity, dial
from .sendqueue import SendQueue
from .stats import OUTBOUND, UNEXPECTED_DATA, TransportStats

log = logging.getLogger(__name__)

Address = tuple[str, int]
_STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
COALESCE_BYTES = 256 * 1024  # at most this much of a peer's queue goes out in one write


def enable_keepalive(stream: trio.SocketStream) -> None:
    """Let the kernel notice a silently dead peer on an idle connection."""
    try:
        stream.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    except OSError:  # pragma: no cover - e.g. an already reset socket
        pass


class OutboundPeer:
    __slots__ = (
        "_address", "_address_set", "_backoff", "_config", "_faults", "_identity", "_stats",
        "connected", "peer_id", "queue",
    )

    def __init__(
        self, peer_id: int, identity: Identity, config: TransportConfig, stats: TransportStats,
        faults: FaultRules, rng: random.Random, address: Address | None,
    ) -> None:
        self.peer_id = peer_id
        self.queue = SendQueue(config.send_queue_size, config.send_queue_bytes)
        self.connected = False
        self._identity = identity
        self._config = config
        self._stats = stats
        self._faults = faults
        self._backoff = Backoff(config.reconnect_initial, config.reconnect_max, config.reconnect_jitter, rng)
        self._address = address
        self._address_set = trio.Event()

    def set_address(self, address: Address) -> None:
        """Dial ``address`` from the next attempt on (the current connection, if any, stays)."""
        self._address = address
        self._address_set.set()
        self._address_set = trio.Event()

    async def run(self) -> None:
        """Dial, authenticate and drain the queue, forever; ends only by cancellation."""
        while True:
            while self._address is None:
                await self._address_set.wait()
            stream = await self._connect(self._address)
            if stream is None:
                self._stats.dial_failures[self.peer_id] += 1
            else:
                await self._session(stream)
            await trio.sleep(self._backoff.next_delay())

    async def _connect(self, address: Address) -> trio.SocketStream | None:
        host, port = address
        with trio.move_on_after(self._config.connect_timeout):
            try:
                return await trio.open_tcp_stream(host, port)
            except OSError as exc:
                log.debug("dial %s at %s:%s failed: %r", self.peer_id, host, port, exc)
        return None

    async def _session(self, stream: trio.SocketStream) -> None:
        async with stream:
            enable_keepalive(stream)
            try:
                await dial(stream, self._identity, self.peer_id, timeout=self._config.handshake_timeout)
            except HandshakeError as exc:
                self._stats.handshake_failures[exc.reason] += 1
                log.info("handshake with replica %s failed: %s", self.peer_id, exc)
                return
            self.connected = True
            self._stats.connections_opened[OUTBOUND] += 1
            self._backoff.reset()
            try:
                reason = await self._pump(stream)
            finally:
                self.connected = False
                self._stats.connections_closed[OUTBOUND] += 1
            log.info("connection to replica %s closed: %s", self.peer_id, reason)

    async def _pump(self, stream: trio.SocketStream) -> str:
        """Write queued frames until the connection fails; returns why it ended."""
        reason = "closed"
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                nonlocal reason
                reason = await self._watch(stream)
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            reason = await self._drain(stream)
            nursery.cancel_scope.cancel()
        return reason

    async def _drain(self, stream: trio.SocketStream) -> str:
        """Frames queued together (released by now, up to ``COALESCE_BYTES``) go out in one write:
        one syscall and one wake-up for a round's proposal and vote, or a burst of batches. The
        write deadline is one cancel scope whose deadline is set around each write, not a new scope
        per frame."""
        peer, queue, stats = self.peer_id, self.queue, self._stats
        write_timeout = self._config.write_timeout
        with trio.CancelScope() as deadline:
            try:
                while True:
                    frame, release_at = await queue.get()
                    if release_at > trio.current_time():
                        await trio.sleep_until(release_at)
                    if self._faults.is_blocked(peer):
                        stats.fault_drops_out[peer] += 1
                        continue
                    now = trio.current_time()
                    more = queue.take_ready(now, COALESCE_BYTES - len(frame)) if len(frame) < COALESCE_BYTES else []
                    data = b"".join([frame, *more]) if more else frame
                    deadline.deadline = now + write_timeout
                    await stream.send_all(data)
                    deadline.deadline = math.inf
                    stats.frames_out[peer] += 1 + len(more)
                    stats.bytes_out[peer] += len(data)
            except _STREAM_ERRORS as exc:
                return f"write failed: {exc!r}"
        stats.write_timeouts[peer] += 1
        return f"write blocked for {write_timeout} s"

    async def _watch(self, stream: trio.SocketStream) -> str:
        """Our outbound connections carry nothing back: any byte or EOF ends the connection."""
        try:
            data = await stream.receive_some(1024)
        except _STREAM_ERRORS as exc:
            return f"read failed: {exc!r}"
        if data:
            self._stats.rejected_frames[UNEXPECTED_DATA] += 1
            return "peer wrote on our outbound connection"
        return "closed by peer"
