"""Length-prefixed frames: a 4-byte big-endian body length, then the body.

:class:`FrameDecoder` is sans-IO (bytes in, frames out); :func:`read_frame` and :func:`send_frame`
adapt it to trio streams. A length prefix above the limit is refused as soon as its four bytes
are in, so a peer cannot make us buffer a body we will never accept.
"""

from __future__ import annotations

import struct
from typing import NoReturn

import trio

from .errors import EmptyFrame, FrameError, FrameTooLarge, TruncatedFrame

HEADER = struct.Struct(">I")
HEADER_SIZE = HEADER.size
MAX_ENCODABLE = (1 << 32) - 1
RECEIVE_CHUNK = 64 * 1024


def encode_frame(body: bytes) -> bytes:
    """The frame carrying ``body``; raises ValueError for an empty or unencodable body."""
    if not body:
        raise ValueError("a frame body must not be empty")
    if len(body) > MAX_ENCODABLE:
        raise ValueError(f"a frame body of {len(body)} bytes does not fit a 4-byte length")
    return HEADER.pack(len(body)) + body


class FrameDecoder:
    """Reassembles frames from arbitrarily split bytes.

    After the first :class:`FrameError` the decoder is poisoned: every later call re-raises it,
    because the stream has lost its frame boundaries.
    """

    __slots__ = ("_buffer", "_error", "_expected", "max_frame_size")

    def __init__(self, max_frame_size: int) -> None:
        if not 0 < max_frame_size <= MAX_ENCODABLE:
            raise ValueError(f"max_frame_size must be in [1, {MAX_ENCODABLE}]")
        self.max_frame_size = max_frame_size
        self._buffer = bytearray()
        self._expected: int | None = None  # body length once the header is parsed
        self._error: FrameError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet form a complete frame (header bytes included)."""
        return len(self._buffer) + (HEADER_SIZE if self._expected is not None else 0)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if self._error is not None:
            raise self._error
        self._buffer += data

    def next_frame(self) -> bytes | None:
        """The next complete frame body, or None if more bytes are needed."""
        if self._error is not None:
            raise self._error
        if self._expected is None:
            if len(self._buffer) < HEADER_SIZE:
                return None
            (size,) = HEADER.unpack_from(self._buffer)
            if size == 0:
                self._fail(EmptyFrame())
            if size > self.max_frame_size:
                self._fail(FrameTooLarge(size, self.max_frame_size))
            del self._buffer[:HEADER_SIZE]
            self._expected = size
        if len(self._buffer) < self._expected:
            return None
        with memoryview(self._buffer) as view:  # one copy, not two
            body = bytes(view[: self._expected])
        del self._buffer[: self._expected]
        self._expected = None
        return body

    def _fail(self, error: FrameError) -> NoReturn:
        self._error = error
        self._buffer.clear()
        raise error


async def read_frame(
    stream: trio.abc.ReceiveStream, decoder: FrameDecoder, chunk: int = RECEIVE_CHUNK
) -> bytes | None:
    """The next frame from ``stream``; None on a clean end of stream at a frame boundary.

    Each read takes at most ``chunk`` bytes, so the decoder never holds more than one frame plus
    one chunk (an unauthenticated peer gets a small ``chunk``).

    Raises :class:`TruncatedFrame` if the stream ends inside a frame, other :class:`FrameError`
    subclasses on malformed framing, and whatever the stream raises (e.g. BrokenResourceError).
    """
    while True:
        frame = decoder.next_frame()
        if frame is not None:
            return frame
        # At most one chunk arrives before the decoder checks a new length prefix, so an oversize
        # announcement is refused having buffered at most ``chunk`` bytes of its body.
        data = await stream.receive_some(chunk)
        if not data:
            if decoder.buffered:
                raise TruncatedFrame(decoder.buffered)
            return None
        decoder.feed(data)


async def send_frame(stream: trio.abc.SendStream, body: bytes) -> None:
    await stream.send_all(encode_frame(body))
