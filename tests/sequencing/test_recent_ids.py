"""RecentIds, the mempool's memory of recently queued ids: bounded in count, exact (no false
positives), the newest half always kept, and compact (issue 10: the OrderedDict it replaces cost
~105 bytes per id on top of the id itself, 177 MB for the mempool's million)."""

from __future__ import annotations

import os
import tracemalloc

from sequencing.replica.recent_ids import RecentIds


def test_bounded_and_keeps_the_newest_half() -> None:
    recent = RecentIds(10)
    for n in range(100):
        recent.add(n.to_bytes(4, "big"))
        assert len(recent) <= 10
        assert all(k.to_bytes(4, "big") in recent for k in range(max(0, n - 4), n + 1))
    assert b"\x00\x00\x00\x00" not in recent, "old ids are forgotten"
    assert (200).to_bytes(4, "big") not in recent, "never added: not remembered"


def test_discard_forgets_in_either_generation() -> None:
    recent = RecentIds(4)
    for k in (b"a", b"b", b"c"):
        recent.add(k)
    recent.discard(b"a")  # in the older generation by now
    recent.discard(b"c")
    recent.discard(b"zz")  # absent: no error
    assert b"a" not in recent and b"c" not in recent and b"b" in recent


def test_compact() -> None:
    ids = [os.urandom(32) for _ in range(100_000)]
    recent = RecentIds(len(ids))
    tracemalloc.start()
    try:
        for i in ids:
            recent.add(i)
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all(i in recent for i in ids[-len(ids) // 2:])
    assert used / len(ids) < 64, f"{used / len(ids):.0f} bytes per id besides the id itself"
