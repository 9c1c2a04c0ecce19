"""Micro benchmark (not a test): LedgerStore.append of blocks of 2,000 256-byte transactions over 8
rollups, in rows written per block and microseconds per block. Works on the v2 (per-leaf) and v3
(per-slice) CommitRecord shapes, so the same file measures before and after.

    PYTHONPATH=. python tests/sequencing/bench_append.py [--blocks 300] [--txs 2000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from consensus.commit_proof import CommitProof
from consensus.messages import ZERO_ID, Block, BlockHeader, QuorumCert, genesis_block
from sequencing.storage import CommitRecord, LedgerStore

CHAIN = "bench"
ROLLUPS = 8


def records(blocks: int, txs: int, size: int) -> list[CommitRecord]:
    rng = random.Random(1)
    fields = {f.name for f in dataclasses.fields(CommitRecord)}
    out: list[CommitRecord] = []
    parent = genesis_block(CHAIN)
    for height in range(1, blocks + 1):
        per = sorted(rng.randrange(ROLLUPS) for _ in range(txs))
        slices = [(r, tuple(rng.randbytes(size) for _ in range(per.count(r)))) for r in range(ROLLUPS)]
        slices = [(r, p) for r, p in slices if p]
        ids = [rng.randbytes(32) for _ in range(txs)]
        rnd = parent.round + 1
        block = Block(rnd, height, QuorumCert(rnd - 1, parent.id, ()), 0, b"", rng.randbytes(32))
        child = BlockHeader(rnd + 1, height + 1, block.id, rnd, 0, ZERO_ID, ZERO_ID)
        proof = CommitProof((block.header(), child), QuorumCert(rnd + 1, child.id, ()))
        bundles = ((rng.randbytes(32), (0, 1)),)
        if "slices" in fields:
            shape: dict[str, object] = {"slices": tuple(slices), "tx_ids": b"".join(ids)}
        else:
            shape = {"leaves": tuple((r, p) for r, ps in slices for p in ps), "tx_ids": tuple(ids)}
        out.append(CommitRecord(block=block, proof=proof, bundles=bundles,  # type: ignore[call-arg]
                                batch_digests=(rng.randbytes(32),), evidence=(), **shape))
        parent = block
    return out


def ids_of(record: CommitRecord) -> list[bytes]:
    ids = record.tx_ids
    return list(ids) if isinstance(ids, tuple) else [ids[i:i + 32] for i in range(0, len(ids), 32)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=300)
    parser.add_argument("--txs", type=int, default=2000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    recs = records(args.blocks, args.txs, args.size)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "ordo.sqlite"
        store = LedgerStore.open(path, chain_id=CHAIN, replica_id=0, create=True)
        changes: list[int] = []
        times: list[float] = []
        cpu = time.process_time()
        for r in recs:
            before = store._conn.total_changes
            start = time.perf_counter()
            store.append(r)
            times.append(time.perf_counter() - start)
            changes.append(store._conn.total_changes - before)
        cpu = time.process_time() - cpu
        lookups = {}
        if hasattr(store, "tx_location"):
            rng = random.Random(2)
            probes = {
                "miss": [rng.randbytes(32) for _ in range(50)],
                "hit, newest block": [ids_of(recs[-1])[0]] * 50,
                "hit, any block": [ids_of(rng.choice(recs))[rng.randrange(args.txs)] for _ in range(50)],
            }
            for name, ids in probes.items():
                start = time.perf_counter()
                for tx_id in ids:
                    store.tx_location(tx_id)
                lookups[name] = (time.perf_counter() - start) / len(ids)
        store.close()
        conn = sqlite3.connect(path)
        tables = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
        conn.close()
        size = path.stat().st_size
    n = len(times)
    first, last = times[: n // 6], times[-(n // 6):]
    print(f"{args.blocks} blocks x {args.txs} txs of {args.size} B over {ROLLUPS} rollups")
    print(f"rows changed per block: {statistics.mean(changes):.0f}; rows per table after: {counts}")
    print(f"append: median {statistics.median(times) * 1e6:.0f} us/block,"
          f" first sixth {statistics.mean(first) * 1e6:.0f}, last sixth {statistics.mean(last) * 1e6:.0f} us/block;"
          f" {statistics.mean(times) * 1e6 / args.txs:.2f} us/tx; file {size / 1e6:.0f} MB")
    print("tx_location: " + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in lookups.items()))
    print(f"CPU of this process (main + SQLite): {cpu / n * 1e6:.0f} us/block, {cpu / n / args.txs * 1e6:.2f} us/tx")


if __name__ == "__main__":
    main()
