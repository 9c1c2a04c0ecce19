"""Messages received from peers, waiting for the node: bounded in count and in bytes.

Each inbound connection's reader ``put``s what it decoded and waits while the inbox holds
``size`` messages or ``max_bytes`` encoded bytes (TCP backpressure then slows the sender; no
message is lost). An empty inbox takes any one message, however large. The node takes messages
with ``receive``/``receive_nowait`` or ``async for``, as ``(sender, message)``; after ``close`` an
``async for`` ends once the inbox is drained."""

from __future__ import annotations

import trio


class Inbox:
    __slots__ = ("_max_bytes", "_receive", "_room", "_send", "byte_size")

    def __init__(self, size: int, max_bytes: int) -> None:
        if size < 1 or max_bytes < 1:
            raise ValueError("size and max_bytes must be positive")
        self._send, self._receive = trio.open_memory_channel[tuple[int, object, int]](size)
        self._max_bytes = max_bytes
        self._room = trio.lowlevel.ParkingLot()
        self.byte_size = 0

    async def put(self, sender: int, message: object, size: int) -> None:
        """Queue ``message`` (``size`` encoded bytes), waiting for room. Raises
        trio.ClosedResourceError after :meth:`close`."""
        while self.byte_size > 0 and self.byte_size + size > self._max_bytes:
            await self._room.park()
        self.byte_size += size
        try:
            await self._send.send((sender, message, size))
        except BaseException:  # cancelled (or closed) while waiting for a slot: it takes no room
            self._taken(size)
            raise

    def put_nowait(self, sender: int, message: object, size: int) -> None:
        """:meth:`put` without waiting: raises trio.WouldBlock if there is no room."""
        if self.byte_size > 0 and self.byte_size + size > self._max_bytes:
            raise trio.WouldBlock
        self._send.send_nowait((sender, message, size))
        self.byte_size += size

    def close(self) -> None:
        self._send.close()

    def _taken(self, size: int) -> None:
        self.byte_size -= size
        self._room.unpark_all()

    async def receive(self) -> tuple[int, object]:
        sender, message, size = await self._receive.receive()
        self._taken(size)
        return sender, message

    def receive_nowait(self) -> tuple[int, object]:
        sender, message, size = self._receive.receive_nowait()
        self._taken(size)
        return sender, message

    def __aiter__(self) -> Inbox:
        return self

    async def __anext__(self) -> tuple[int, object]:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
