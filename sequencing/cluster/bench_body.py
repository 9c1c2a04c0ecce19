"""Request bodies for the load generator, built with bytes operations (no per-transaction objects).

A body is the binary batch form of ``POST /v1/transactions/batch`` (docs/PROTOCOL.md section 16)::

    {"ids": false, "transactions": [[rollup, payload], ...]}

encoded once as a template: each entry is ``0x92 <rollup as fixint> <bin header> <payload>`` with a
fixed stride, and a payload is an 8-byte big-endian counter followed by fixed filler. A body for
counters ``first .. first + n - 1`` is the template with the counters written in: one
``struct.pack`` for all of them and eight strided slice assignments (one per counter byte), so the
cost per request hardly depends on ``n``. Every transaction is unique as long as counters are
(the generator hands out disjoint ranges); the filler carries a per-run tag.
"""

from __future__ import annotations

import struct

import msgpack

from ..rollup.transactions import Transaction

COUNTER_BYTES = 8
MAX_FIXINT = 127


class BodyBuilder:
    """Bodies of ``per_request`` transactions of ``tx_size`` bytes over rollups
    ``first_rollup .. first_rollup + rollups - 1`` (entry ``i`` is in rollup ``first_rollup + i % rollups``),
    except that with ``probe_rollup`` entry 0 of every body is in that rollup: a latency probe
    whose commit a subscriber to that rollup sees (bench_load.py)."""

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
        self.head = (b"\x82" + msgpack.packb("ids") + b"\xc2" + msgpack.packb("transactions")
                     + b"\xdd" + struct.pack(">I", per_request))
        entries = [b"\x92" + bytes([self.rollup_of(i)]) + bin_header + bytes(COUNTER_BYTES) + self.filler
                   for i in range(per_request)]
        self.stride = len(entries[0])
        self.template = self.head + b"".join(entries)
        self.first_counter_at = len(self.head) + 2 + len(bin_header)  # offset of entry 0's counter
        self._pack = struct.Struct(f">{per_request}Q").pack

    def rollup_of(self, index: int) -> int:
        if index == 0 and self.probe_rollup is not None:
            return self.probe_rollup
        return self.first_rollup + index % self.rollups

    @staticmethod
    def counter_of(payload: bytes) -> int:
        """The counter a payload of these bodies starts with."""
        return int.from_bytes(payload[:COUNTER_BYTES], "big")

    def body(self, first: int) -> bytes:
        """The request body for counters ``first .. first + per_request - 1``."""
        counters = self._pack(*range(first, first + self.per_request))
        buf = bytearray(self.template)
        start, end, step = self.first_counter_at, self.first_counter_at + self.per_request * self.stride, self.stride
        for j in range(COUNTER_BYTES):
            buf[start + j:end + j:step] = counters[j::COUNTER_BYTES]
        return bytes(buf)

    def tx(self, first: int, index: int) -> tuple[int, bytes]:
        """Entry ``index`` of the body for ``first``: (rollup id, payload)."""
        return self.rollup_of(index), (first + index).to_bytes(COUNTER_BYTES, "big") + self.filler

    def tx_id(self, first: int, index: int) -> bytes:
        return Transaction(*self.tx(first, index)).id
