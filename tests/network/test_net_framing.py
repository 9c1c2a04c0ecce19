"""Frames: encoding, the sans-IO decoder (incl. hypothesis properties) and the trio helpers."""

from __future__ import annotations

import itertools
import struct

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from network.errors import EmptyFrame, FrameError, FrameTooLarge, TruncatedFrame
from network.framing import FrameDecoder, encode_frame, read_frame, send_frame

LIMIT = 1024


def prefix(size: int) -> bytes:
    return struct.pack(">I", size)


def drain(decoder: FrameDecoder) -> list[bytes]:
    frames = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    return frames


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# -- unit ---------------------------------------------------------------------------------------


def test_encode_frame_is_length_prefixed() -> None:
    assert encode_frame(b"abc") == b"\x00\x00\x00\x03abc"


def test_encode_frame_refuses_empty_body() -> None:
    with pytest.raises(ValueError, match="empty"):
        encode_frame(b"")


def test_decoder_yields_frames_fed_together_and_waits_for_more() -> None:
    decoder = FrameDecoder(LIMIT)
    decoder.feed(encode_frame(b"one") + encode_frame(b"two") + encode_frame(b"three")[:5])
    assert drain(decoder) == [b"one", b"two"]
    assert decoder.buffered == 5
    decoder.feed(b"hree")
    assert drain(decoder) == [b"three"]
    assert decoder.buffered == 0


def test_frame_of_exactly_the_limit_is_accepted() -> None:
    decoder = FrameDecoder(LIMIT)
    decoder.feed(encode_frame(b"x" * LIMIT))
    assert decoder.next_frame() == b"x" * LIMIT


def test_oversize_prefix_is_refused_before_any_body_byte() -> None:
    decoder = FrameDecoder(LIMIT)
    decoder.feed(prefix(LIMIT + 1))  # only the prefix: no body has arrived
    with pytest.raises(FrameTooLarge) as info:
        decoder.next_frame()
    assert (info.value.size, info.value.limit, info.value.reason) == (LIMIT + 1, LIMIT, "oversize")
    assert decoder.buffered == 0


def test_huge_prefix_is_refused() -> None:
    decoder = FrameDecoder(LIMIT)
    decoder.feed(b"\xff\xff\xff\xff")
    with pytest.raises(FrameTooLarge):
        decoder.next_frame()


def test_zero_length_frame_is_an_error() -> None:
    decoder = FrameDecoder(LIMIT)
    decoder.feed(prefix(0))
    with pytest.raises(EmptyFrame):
        decoder.next_frame()


def test_decoder_stays_poisoned_after_an_error() -> None:
    decoder = FrameDecoder(LIMIT)
    decoder.feed(prefix(LIMIT + 1))
    with pytest.raises(FrameTooLarge):
        decoder.next_frame()
    with pytest.raises(FrameTooLarge):
        decoder.feed(encode_frame(b"ok"))
    with pytest.raises(FrameTooLarge):
        decoder.next_frame()


def test_decoder_rejects_bad_limits() -> None:
    with pytest.raises(ValueError):
        FrameDecoder(0)
    with pytest.raises(ValueError):
        FrameDecoder(1 << 32)


# -- properties ---------------------------------------------------------------------------------


@given(
    bodies=st.lists(st.binary(min_size=1, max_size=300), max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
)
def test_frames_round_trip_under_any_chunking(bodies: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(b) for b in bodies)
    decoder = FrameDecoder(LIMIT)
    out: list[bytes] = []
    for chunk in split(stream, cuts):
        decoder.feed(chunk)
        out.extend(drain(decoder))
    assert out == bodies
    assert decoder.buffered == 0


@given(
    data=st.binary(max_size=2000),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
    limit=st.integers(min_value=1, max_value=600),
)
def test_arbitrary_bytes_raise_only_frame_errors(data: bytes, cuts: list[int], limit: int) -> None:
    decoder = FrameDecoder(limit)
    out: list[bytes] = []
    try:
        for chunk in split(data, cuts):
            decoder.feed(chunk)
            out.extend(drain(decoder))
    except FrameError:
        pass
    for frame in out:
        assert 1 <= len(frame) <= limit
    # Whatever came out is exactly a prefix of the input, re-framed.
    consumed = b"".join(encode_frame(f) for f in out)
    assert data.startswith(consumed)


# -- trio helpers -------------------------------------------------------------------------------


async def test_read_frame_reads_frames_then_clean_eof() -> None:
    left, right = trio.testing.memory_stream_pair()
    await send_frame(left, b"hello")
    await left.send_all(encode_frame(b"wor") + encode_frame(b"ld")[:3])
    await left.send_all(encode_frame(b"ld")[3:])
    await left.aclose()
    decoder = FrameDecoder(LIMIT)
    assert [await read_frame(right, decoder) for _ in range(3)] == [b"hello", b"wor", b"ld"]
    assert await read_frame(right, decoder) is None


@pytest.mark.parametrize("cut", [1, 3, 4, 6])
async def test_eof_inside_a_frame_is_truncation(cut: int) -> None:
    left, right = trio.testing.memory_stream_pair()
    await left.send_all(encode_frame(b"abcdef")[:cut])
    await left.aclose()
    with pytest.raises(TruncatedFrame) as info:
        await read_frame(right, FrameDecoder(LIMIT))
    assert info.value.buffered == cut


async def test_read_frame_refuses_oversize_prefix_without_waiting_for_the_body() -> None:
    left, right = trio.testing.memory_stream_pair()
    await left.send_all(prefix(LIMIT + 1))  # the stream stays open; no body follows
    with trio.fail_after(1), pytest.raises(FrameTooLarge):
        await read_frame(right, FrameDecoder(LIMIT))
