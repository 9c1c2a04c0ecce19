"""Sans-IO pieces of the transport: fault rules, backoff, send queue, config, stats, codec."""

from __future__ import annotations

import json
import random

import pytest
import trio
import trio.testing
from netutil import identities, vote

from consensus.errors import DecodeError
from network import ConsensusCodec, FaultRules, PeerFaults, TransportConfig, TransportStats
from network.backoff import Backoff
from network.inbox import Inbox
from network.peer import OutboundPeer
from network.sendqueue import SendQueue

# -- fault rules --------------------------------------------------------------------------------


def test_set_changes_only_the_given_fields_and_snapshot_is_json() -> None:
    rules = FaultRules(random.Random(1))
    rules.set(2, drop=0.25, delay=0.1)
    rules.set(2, jitter=0.05)
    rules.set(3, blocked=True)
    snap = rules.snapshot()
    assert snap == {
        "2": {"drop": 0.25, "delay": 0.1, "jitter": 0.05, "blocked": False},
        "3": {"drop": 0.0, "delay": 0.0, "jitter": 0.0, "blocked": True},
    }
    assert json.loads(json.dumps(snap)) == snap
    assert FaultRules.from_dict(snap).snapshot() == snap


def test_rules_reset_to_nothing_disappear_from_the_snapshot() -> None:
    rules = FaultRules()
    rules.set(1, drop=0.5)
    rules.set(1, drop=0)
    assert rules.snapshot() == {}
    assert rules.rule(1) == PeerFaults()


def test_partition_blocks_exactly_the_given_peers_and_heal_keeps_other_rules() -> None:
    rules = FaultRules()
    rules.set(1, delay=0.2)
    rules.partition([1, 2])
    assert [rules.is_blocked(p) for p in range(4)] == [False, True, True, False]
    rules.partition([3])
    assert [rules.is_blocked(p) for p in range(4)] == [False, False, False, True]
    rules.heal()
    assert not any(rules.is_blocked(p) for p in range(4))
    assert rules.snapshot() == {"1": {"drop": 0.0, "delay": 0.2, "jitter": 0.0, "blocked": False}}
    rules.clear()
    assert rules.snapshot() == {}


def test_update_merges_and_clear_one_peer() -> None:
    rules = FaultRules()
    rules.update({"1": {"drop": 1}, 2: {"blocked": True}})
    rules.update({"1": {"delay": 0.5}})
    assert rules.rule(1) == PeerFaults(drop=1.0, delay=0.5)
    rules.clear(1)
    assert set(rules.snapshot()) == {"2"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"1": {"drop": 1.5}}, "drop must be a probability"),
        ({"1": {"drop": True}}, "drop must be a probability"),
        ({"1": {"drop": float("nan")}}, "drop must be a probability"),
        ({"1": {"delay": -1}}, "delay must be a number of seconds"),
        ({"1": {"jitter": "1"}}, "jitter must be a number of seconds"),
        ({"1": {"blocked": 1}}, "blocked must be true or false"),
        ({"1": {"loss": 0.1}}, "unknown fault field"),
        ({"x": {"drop": 0.1}}, "peer id must be a non-negative integer"),
        ({"-1": {"drop": 0.1}}, "peer id must be a non-negative integer"),
        ({"1": [0.1]}, "must be an object"),
        ([1, 2], "must be an object"),
    ],
)
def test_invalid_rules_are_refused_clearly_and_change_nothing(data: object, message: str) -> None:
    rules = FaultRules()
    rules.set(0, drop=0.5)
    before = rules.snapshot()
    with pytest.raises(ValueError, match=message):
        rules.update({"3": {"blocked": True}, **data} if isinstance(data, dict) else data)  # type: ignore[arg-type]
    assert rules.snapshot() == before


def test_outgoing_decisions_follow_the_rules_with_the_injected_rng() -> None:
    rules = FaultRules(random.Random(42))
    assert rules.outgoing(1) == 0.0
    rules.set(1, drop=0.3)
    drops = sum(rules.outgoing(1) is None for _ in range(10_000))
    assert 2_700 < drops < 3_300
    rules.set(1, drop=0.0, delay=0.1, jitter=0.05)
    holds = [rules.outgoing(1) for _ in range(1000)]
    assert all(h is not None and 0.1 <= h <= 0.15 for h in holds)
    assert len(set(holds)) > 900  # jitter varies
    rules.set(1, blocked=True)
    assert rules.outgoing(1) is None
    first, second = _seeded(42), _seeded(42)
    assert [first.outgoing(1) for _ in range(200)] == [second.outgoing(1) for _ in range(200)]


def _seeded(seed: int) -> FaultRules:
    rules = FaultRules(random.Random(seed))
    rules.set(1, drop=0.3, delay=0.1, jitter=0.1)
    return rules


# -- backoff ------------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_with_bounded_jitter_and_resets() -> None:
    plain = Backoff(0.05, 2.0, 0.0, random.Random(0))
    assert [plain.next_delay() for _ in range(8)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    plain.reset()
    assert plain.next_delay() == 0.05
    jittery = Backoff(0.05, 2.0, 0.5, random.Random(0))
    delays = [jittery.next_delay() for _ in range(200)]
    assert all(1.0 <= d <= 2.0 for d in delays[10:])
    assert len(set(delays)) == len(delays)
    with pytest.raises(ValueError):
        Backoff(1.0, 0.5, 0.1, random.Random())


# -- send queue ---------------------------------------------------------------------------------


async def test_send_queue_drops_the_oldest_when_full() -> None:
    queue = SendQueue(3)
    evicted = [queue.put(bytes([i])) for i in range(5)]
    assert evicted == [False, False, False, True, True]
    assert len(queue) == 3
    assert [(await queue.get())[0] for _ in range(3)] == [b"\x02", b"\x03", b"\x04"]


async def test_send_queue_drops_the_oldest_beyond_its_byte_budget() -> None:
    """A peer that is down keeps its queue: 4,096 batch frames of up to 1 MiB each would be GiBs
    (issue 10); a byte budget bounds it, the newest frame always kept."""
    queue = SendQueue(100, max_bytes=1000)
    evicted = [queue.put(bytes([i]) * 300) for i in range(5)]
    assert evicted == [0, 0, 0, 1, 1]
    assert len(queue) == 3 and queue.byte_size == 900
    assert queue.put(b"x" * 2500) == 3, "one frame over the budget replaces all the others"
    assert len(queue) == 1 and queue.byte_size == 2500
    assert (await queue.get())[0] == b"x" * 2500
    assert queue.byte_size == 0


async def test_send_queue_release_times_never_go_backwards() -> None:
    queue = SendQueue(10)
    queue.put(b"a", 5.0)
    queue.put(b"b", 1.0)  # released after a, whatever its own hold
    queue.put(b"c", 7.0)
    assert [await queue.get() for _ in range(3)] == [(b"a", 5.0), (b"b", 5.0), (b"c", 7.0)]


async def test_send_queue_take_ready_stops_at_a_held_frame_and_at_the_byte_cap() -> None:
    queue = SendQueue(10)
    for payload, release in ((b"a" * 4, 0.0), (b"b" * 4, 0.0), (b"c" * 4, 0.0), (b"d", 9.0)):
        queue.put(payload, release)
    assert queue.take_ready(1.0, 9) == [b"a" * 4, b"b" * 4]  # the next would pass 9 bytes
    assert queue.take_ready(1.0, 100) == [b"c" * 4]  # "d" is held until 9.0
    assert queue.take_ready(9.0, 100) == [b"d"] and len(queue) == 0 and queue.byte_size == 0


async def test_send_queue_get_waits_for_a_put(autojump_clock: trio.abc.Clock) -> None:
    queue = SendQueue(2)
    got: list[bytes] = []
    async with trio.open_nursery() as nursery:

        async def consumer() -> None:
            got.append((await queue.get())[0])

        nursery.start_soon(consumer)
        await trio.sleep(1)
        assert got == []
        queue.put(b"x")
    assert got == [b"x"]


# -- inbox ---------------------------------------------------------------------------------------


async def test_inbox_readers_wait_for_room_in_bytes_too() -> None:
    """Received messages wait in the inbox while the node is busy (e.g. answering a batch request
    from disk): 4,096 of them of up to max_frame_size each was unbounded in practice (issue 10).
    A reader now also waits while ``max_bytes`` are queued; an empty inbox takes any message."""
    inbox = Inbox(100, max_bytes=100)
    await inbox.put(1, "a", 60)
    done: list[str] = []

    async def put_b() -> None:
        await inbox.put(2, "b", 60)
        done.append("b")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(put_b)
        await trio.testing.wait_all_tasks_blocked()
        assert done == [] and inbox.byte_size == 60, "no room for 60 more bytes"
        assert await inbox.receive() == (1, "a")
        await trio.testing.wait_all_tasks_blocked()
        assert done == ["b"] and inbox.byte_size == 60
    assert inbox.receive_nowait() == (2, "b") and inbox.byte_size == 0
    await inbox.put(3, "huge", 500)  # alone, a message larger than the budget still goes in
    inbox.close()
    assert [item async for item in inbox] == [(3, "huge")]


async def test_inbox_a_cancelled_wait_takes_no_room() -> None:
    inbox = Inbox(100, max_bytes=100)
    await inbox.put(1, "a", 90)
    with trio.move_on_after(0.01):
        await inbox.put(2, "b", 90)
    assert inbox.byte_size == 90
    inbox.receive_nowait()
    await inbox.put(3, "c", 100)
    assert inbox.byte_size == 100


# -- config, stats, codec -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"max_frame_size": 10},
        {"handshake_timeout": 0},
        {"send_queue_size": 0},
        {"send_queue_bytes": 0},
        {"inbox_bytes": 0},
        {"inbox_size": 1.5},
        {"reconnect_initial": 3.0, "reconnect_max": 2.0},
        {"reconnect_jitter": 2},
        {"max_pending_handshakes": True},
        {"max_pending_handshakes": 0},
        {"hello_timeout": 0},
        {"write_timeout": -1},
    ],
)
def test_config_rejects_nonsense(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        TransportConfig(**bad)  # type: ignore[arg-type]


def test_stats_snapshot_is_json_friendly() -> None:
    stats = TransportStats()
    stats.frames_out[2] += 3
    stats.rejected_frames["oversize"] += 1
    stats.inbound_refused["evicted_silent"] += 4
    snap = json.loads(json.dumps(stats.snapshot()))
    assert snap["frames_out"] == {"2": 3}
    assert snap["rejected_frames"] == {"oversize": 1}
    assert snap["inbound_refused"] == {"evicted_silent": 4}


def test_consensus_codec_round_trips_and_rejects_garbage() -> None:
    codec = ConsensusCodec()
    message = vote(identities()[2], 9)
    assert codec.decode(codec.encode(message)) == message
    with pytest.raises(DecodeError):
        codec.decode(b"\x93\x01\x02")
    with pytest.raises(TypeError):
        codec.encode("not a message")


# -- outbound writes -----------------------------------------------------------------------------


class _RecordingStream:
    """The send side of a connection: records each write; ``stall`` makes writes hang."""

    def __init__(self, stall: bool = False) -> None:
        self.writes: list[bytes] = []
        self.stall = stall

    async def send_all(self, data: bytes) -> None:
        if self.stall:
            await trio.sleep_forever()
        self.writes.append(bytes(data))
        await trio.lowlevel.checkpoint()


def _outbound(config: TransportConfig) -> tuple[OutboundPeer, TransportStats]:
    stats = TransportStats()
    peer = OutboundPeer(1, identities()[0], config, stats, FaultRules(random.Random(1)), random.Random(1),
                        None)
    return peer, stats


async def test_frames_queued_together_leave_in_one_write(autojump_clock: trio.abc.Clock) -> None:
    """A round queues several frames for a peer at once (a leader's proposal and vote; votes and
    batches under load): they go out in one write, in order, counted one by one."""
    peer, stats = _outbound(TransportConfig())
    stream = _RecordingStream()
    frames = [bytes([i]) * (10 + i) for i in range(3)]
    for frame in frames:
        peer.queue.put(frame)
    with trio.move_on_after(1):
        await peer._drain(stream)  # type: ignore[arg-type]
    assert stream.writes == [b"".join(frames)]
    assert stats.frames_out[1] == 3 and stats.bytes_out[1] == sum(map(len, frames))
    assert len(peer.queue) == 0


async def test_a_stalled_write_ends_the_connection_after_write_timeout(autojump_clock: trio.abc.Clock) -> None:
    peer, stats = _outbound(TransportConfig(write_timeout=3.0))
    peer.queue.put(b"frame")
    start = trio.current_time()
    reason = await peer._drain(_RecordingStream(stall=True))  # type: ignore[arg-type]
    assert "write blocked" in reason and stats.write_timeouts[1] == 1
    assert trio.current_time() - start == pytest.approx(3.0)


async def test_waiting_for_frames_has_no_write_deadline(autojump_clock: trio.abc.Clock) -> None:
    """An idle connection stays up however long the queue stays empty."""
    peer, stats = _outbound(TransportConfig(write_timeout=3.0))
    stream = _RecordingStream()
    with trio.move_on_after(100):
        await peer._drain(stream)  # type: ignore[arg-type]
    peer.queue.put(b"late")
    with trio.move_on_after(1):
        await peer._drain(stream)  # type: ignore[arg-type]
    assert stream.writes == [b"late"] and stats.write_timeouts[1] == 0
