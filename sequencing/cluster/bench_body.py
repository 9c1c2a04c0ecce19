"""Request bodies for the load generator, built with bytes operations (no per-transaction objects).

A body is the grouped binary batch form of ``POST /v1/transactions/batch`` (docs/PROTOCOL.md
section 16), what a rollup's client sends::

    {"ids": false, "groups": [[rollup, [payload, ...]], ...]}

encoded once as a template: the probe's group first (one transaction, with ``probe_rollup``), then
one group per load rollup with the rest spread evenly; within a group every payload is ``<bin
header> <payload>`` with a fixed stride, and a payload is an 8-byte big-endian counter followed by
fixed filler. Transaction ``i`` of a body (in body order) carries counter ``first + i``. A body for
counters ``first .. first + n - 1`` is the template with the counters written in: one
``struct.pack`` for all of them and eight strided slice assignments per group (one per counter
byte), so the cost per request hardly depends on ``n``. Every transaction is unique as long as
counters are (the generator hands out disjoint ranges); the filler carries a per-run tag.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from itertools import accumulate

import msgpack

from ..rollup.transactions import Transaction

COUNTER_BYTES = 8
MAX_FIXINT = 127


class BodyBuilder:
    """Bodies of ``per_request`` transactions of ``tx_size`` bytes spread evenly over rollups
    ``first_rollup .. first_rollup + rollups - 1``, except that with ``probe_rollup`` transaction 0
    of every body is alone in a group of that rollup: a latency probe whose commit a subscriber to
    that rollup sees (bench_load.py)."""

    def __init__(self, tx_size: int, per_request: int, *, rollups: int = 8, first_rollup: int = 1,
                 probe_rollup: int | None = None, tag: bytes = b"ordo-bench") -> None:
        if not COUNTER_BYTES <= tx_size <= 0xFFFF:
            raise ValueError(f"tx size must be in [{COUNTER_BYTES}, {0xFFFF}] bytes, got {tx_size}")
        if per_request < 1:
            raise ValueError("at least one transaction per request")
        if rollups < 1 or first_rollup < 0 or first_rollup + rollups - 1 > MAX_FIXINT:
            raise ValueError(f"rollup ids must lie in [0, {MAX_FIXINT}]")
        self.tx_size, self.per_request = tx_size, per_request
        if probe_rollup is not None and not 0 <= probe_rollup <= MAX_FIXINT:
            raise ValueError(f"the probe rollup must lie in [0, {MAX_FIXINT}]")
        self.rollups, self.first_rollup, self.probe_rollup = rollups, first_rollup, probe_rollup
        filler_len = tx_size - COUNTER_BYTES
        self.filler = (tag * (filler_len // max(1, len(tag)) + 1))[:filler_len] if tag else bytes(filler_len)
        bin_header = (b"\xc4" + bytes([tx_size])) if tx_size < 256 else (b"\xc5" + struct.pack(">H", tx_size))
        self.stride = len(bin_header) + tx_size
        sizes: list[tuple[int, int]] = []  # (rollup, transactions) per group, body order
        rest = per_request
        if probe_rollup is not None:
            sizes.append((probe_rollup, 1))
            rest -= 1
        sizes += [(first_rollup + k, rest // rollups + (k < rest % rollups)) for k in range(rollups)]
        self.groups = [(rollup, n) for rollup, n in sizes if n]
        self.starts = list(accumulate((n for _, n in self.groups), initial=0))[:-1]  # first index per group
        parts = [b"\x82" + msgpack.packb("ids") + b"\xc2" + msgpack.packb("groups") + _array_header(len(self.groups))]
        self.counter_at: list[int] = []  # byte offset of each group's first counter
        entry = bin_header + bytes(COUNTER_BYTES) + self.filler
        for rollup, n in self.groups:
            head = b"\x92" + bytes([rollup]) + _array_header(n)
            offset = sum(map(len, parts)) + len(head)
            self.counter_at.append(offset + len(bin_header))
            parts.append(head + entry * n)
        self.template = b"".join(parts)
        self._pack = struct.Struct(f">{per_request}Q").pack

    def rollup_of(self, index: int) -> int:
        """The rollup of transaction ``index`` (body order)."""
        return self.groups[bisect_right(self.starts, index) - 1][0]

    @staticmethod
    def counter_of(payload: bytes) -> int:
        """The counter a payload of these bodies starts with."""
        return int.from_bytes(payload[:COUNTER_BYTES], "big")

    def body(self, first: int) -> bytes:
        """The request body for counters ``first .. first + per_request - 1``."""
        counters = self._pack(*range(first, first + self.per_request))
        buf = bytearray(self.template)
        step = self.stride
        for (_, n), start, at in zip(self.groups, self.starts, self.counter_at, strict=True):
            mine = counters[COUNTER_BYTES * start:COUNTER_BYTES * (start + n)]
            for j in range(COUNTER_BYTES):
                buf[at + j:at + j + n * step:step] = mine[j::COUNTER_BYTES]
        return bytes(buf)

    def tx(self, first: int, index: int) -> tuple[int, bytes]:
        """Transaction ``index`` (body order) of the body for ``first``: (rollup id, payload)."""
        return self.rollup_of(index), (first + index).to_bytes(COUNTER_BYTES, "big") + self.filler

    def tx_id(self, first: int, index: int) -> bytes:
        return Transaction(*self.tx(first, index)).id


def _array_header(n: int) -> bytes:
    """msgpack's array header for ``n`` items."""
    if n < 16:
        return bytes([0x90 | n])
    if n < 1 << 16:
        return b"\xdc" + struct.pack(">H", n)
    return b"\xdd" + struct.pack(">I", n)
