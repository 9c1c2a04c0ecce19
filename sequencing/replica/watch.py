"""What the operators' dashboard shows that the replica does not keep otherwise (:class:`ClusterWatch`):
per committee member what was last heard from it, the newest committed blocks, per-second
throughput and sampled commit latency, and (only while a dashboard is watching) per-rollup tails.

Plain data, bounded, fed O(1) per received message and per committed block (never per transaction):
``heard`` from ``Node._deliver``, ``committed`` and ``latency`` from ``Commits.on_written``. Times
are the caller's clock values (trio's); the view-model (sequencing/api/dashboard_view.py) turns
them into ages against a ``now`` it is given, so its rules are testable without a clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from consensus.messages import Block, Proposal, Timeout, Vote

BLOCKS_KEPT = 64  # newest committed blocks
SECONDS_KEPT = 300  # per-second throughput buckets (five minutes)
ROLLUPS_KEPT = 32  # rollups tracked (the first seen while watched; others are counted as "more")
TAIL_KEPT = 8  # heights per rollup's sub-log tail
ROLLUP_RATE_HEIGHTS = 64  # (time, txs) points per rollup for its tx/s
ROUND_HEIGHTS_KEPT = 64  # round -> height of the proposal seen for it (maps a vote to a height)
WATCHED_FOR = 60.0  # seconds a snapshot request keeps the per-rollup tracking on


@dataclass(frozen=True, slots=True)
class DashboardState:
    """What the dashboard reads of a replica besides /status and the watch: plain values."""

    base_timeout: float  # a peer not heard from for 2 x this is shown down
    connected: frozenset[int]  # peers linked both ways (the transport's view)
    fault_rules: dict[str, dict[str, float | bool]]  # the admin fault layer's rules (read-only here)
    byzantine: str | None  # the --byzantine mode this replica was started with
    now: float  # the clock value the watch's times compare with


@dataclass(slots=True)
class Heard:
    """The last consensus message heard from one peer (any message refreshes ``at``)."""

    at: float = 0.0  # clock value of the last message of any kind (batches too); 0: never
    round: int | None = None  # round of its last proposal, vote or timeout
    kind: str | None = None  # "proposal" | "vote" | "timeout"
    height: int | None = None  # height of the newest block it proposed or voted for (when known)
    vote_round: int | None = None  # its last vote heard here (votes go to the next leader only)
    vote_block: bytes | None = None


@dataclass(frozen=True, slots=True)
class BlockRow:
    height: int
    round: int
    txs: int
    size: int  # bytes of the block's batches
    proposer: int
    by_tc: bool  # the block's round was entered with a timeout certificate (its QC is older than round - 1)
    skipped: int  # rounds between its QC's round and its own (rounds that timed out)
    block_id: bytes
    at: float


@dataclass(slots=True)
class Second:
    at: int  # whole seconds of the clock
    txs: int = 0
    blocks: int = 0
    bytes: int = 0
    latency_sum: float = 0.0
    latency_n: int = 0
    latency_max: float = 0.0


@dataclass(slots=True)
class RollupTrack:
    txs: int = 0  # committed since tracked
    height: int = 0  # newest height with transactions for it
    tail: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=TAIL_KEPT))  # (height, txs)
    rate: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=ROLLUP_RATE_HEIGHTS))


class ClusterWatch:
    """Bounded: ``size`` Heard rows, BLOCKS_KEPT blocks, SECONDS_KEPT seconds, ROLLUPS_KEPT x
    (TAIL_KEPT + ROLLUP_RATE_HEIGHTS) rollup points, ROUND_HEIGHTS_KEPT rounds."""

    def __init__(self, me: int, size: int) -> None:
        self.me = me
        self.heard = [Heard() for _ in range(size)]
        self.blocks: deque[BlockRow] = deque(maxlen=BLOCKS_KEPT)
        self.seconds: deque[Second] = deque(maxlen=SECONDS_KEPT)
        self.rollups: dict[int, RollupTrack] = {}
        self.untracked_slices = 0  # slices of rollups beyond ROLLUPS_KEPT seen while watched
        self.streams = 0  # open dashboard event streams
        self.watched_until = 0.0  # a snapshot request keeps per-rollup tracking on until then
        self._round_heights: dict[int, int] = {}

    # -- fed by the replica ----------------------------------------------------------------------

    def heard_from(self, sender: int, message: object, now: float) -> None:
        """Any message from a peer; a consensus message also notes its round (O(1))."""
        if not 0 <= sender < len(self.heard):
            return
        row = self.heard[sender]
        row.at = now
        if isinstance(message, Proposal):
            block = message.block
            if block.author == sender:
                row.round, row.kind, row.height = block.round, "proposal", block.height
            self._note_round(block.round, block.height)
        elif isinstance(message, Vote):
            if message.voter == sender:
                row.round, row.kind = message.round, "vote"
                row.vote_round, row.vote_block = message.round, message.block_id
                height = self._round_heights.get(message.round)
                if height is not None:
                    row.height = max(row.height or 0, height)
        elif isinstance(message, Timeout) and message.author == sender:
            row.round, row.kind = message.round, "timeout"

    def _note_round(self, round: int, height: int) -> None:
        heights = self._round_heights
        heights[round] = height
        if len(heights) > ROUND_HEIGHTS_KEPT:
            del heights[next(iter(heights))]

    def committed(self, block: Block, txs: int, size: int, slices: tuple[tuple[int, tuple[bytes, ...]], ...],
                  now: float) -> None:
        """A block written durably: O(1), plus O(its rollups) while a dashboard watches."""
        by_tc = block.round > block.qc.round + 1
        self.blocks.append(BlockRow(block.height, block.round, txs, size, block.author, by_tc,
                                    max(0, block.round - block.qc.round - 1), block.id, now))
        second = self._second(now)
        second.txs += txs
        second.blocks += 1
        second.bytes += size
        if slices and self.watched(now):
            self._track_rollups(block.height, slices, now)

    def latency(self, seconds: float, now: float) -> None:
        """A sampled submission -> commit latency (intake samples one transaction per client call)."""
        second = self._second(now)
        second.latency_sum += seconds
        second.latency_n += 1
        second.latency_max = max(second.latency_max, seconds)

    # -- who watches -----------------------------------------------------------------------------

    def watched(self, now: float) -> bool:
        return self.streams > 0 or now < self.watched_until

    def touch(self, now: float) -> None:
        """A snapshot was asked for: keep tracking rollups for WATCHED_FOR seconds."""
        self.watched_until = now + WATCHED_FOR

    # -- internals -------------------------------------------------------------------------------

    def _second(self, now: float) -> Second:
        at = int(now)
        seconds = self.seconds
        if not seconds or seconds[-1].at != at:
            seconds.append(Second(at))
        return seconds[-1]

    def _track_rollups(self, height: int, slices: tuple[tuple[int, tuple[bytes, ...]], ...], now: float) -> None:
        rollups = self.rollups
        for rollup_id, payloads in slices:
            track = rollups.get(rollup_id)
            if track is None:
                if len(rollups) >= ROLLUPS_KEPT:
                    self.untracked_slices += 1
                    continue
                track = rollups[rollup_id] = RollupTrack()
            count = len(payloads)
            track.txs += count
            track.height = height
            track.tail.append((height, count))
            track.rate.append((now, count))
