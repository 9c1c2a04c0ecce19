"""A replica's heap probe for operators, off unless ``ORDO_TRACEMALLOC_DUMP`` names a directory.

With it set, ``ordo replica`` starts :mod:`tracemalloc` (``ORDO_TRACEMALLOC_FRAMES`` frames per
allocation, default 1; 0 = no tracing, the summary only) and, on each SIGUSR2, writes into that
directory ``replica-<id>-<n>.txt`` (VmRSS/RssAnon/RssFile, what tracemalloc, SQLite and glibc malloc
hold, the 25 biggest allocation sites, the 25 most numerous object types),
``replica-<id>-<n>.malloc.xml`` (glibc ``malloc_info``, one ``<heap>`` per arena) and, when tracing,
``replica-<id>-<n>.snapshot`` (``tracemalloc.Snapshot.load``; compare two taken minutes apart with
``new.compare_to(old, "lineno")``). Tracing slows a replica down by about half: use it to find what
grows, not to bench (docs/OPERATIONS.md, "Observing")."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import signal
import tracemalloc
from collections import Counter
from pathlib import Path

import trio

ENV = "ORDO_TRACEMALLOC_DUMP"


def dump_dir() -> Path | None:
    value = os.environ.get(ENV, "")
    return Path(value) if value else None


def start_tracing() -> None:
    """Start tracemalloc unless ``ORDO_TRACEMALLOC_FRAMES=0`` (then dumps hold the summary only)."""
    frames = int(os.environ.get("ORDO_TRACEMALLOC_FRAMES", "1") or "1")
    if frames > 0 and not tracemalloc.is_tracing():
        tracemalloc.start(frames)


def rss_kb() -> dict[str, int]:
    """VmRSS, RssAnon and RssFile of this process in KiB (empty where /proc is missing)."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    fields = (line.split() for line in lines if line.startswith(("VmRSS:", "RssAnon:", "RssFile:")))
    return {f[0].rstrip(":"): int(f[1]) for f in fields}


def sqlite_memory_used() -> int:
    """Bytes SQLite holds in this process (page caches of every connection, statements), or -1."""
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
        current, high = ctypes.c_int64(), ctypes.c_int64()
        if lib.sqlite3_status64(0, ctypes.byref(current), ctypes.byref(high), 0) != 0:
            return -1
    except (OSError, AttributeError):
        return -1
    return current.value


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
        "keepcost")]


def malloc_info() -> str:
    """glibc's view of the heap: in use vs free (fragmentation), or "" elsewhere."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return ""
    return (f"malloc: arena {info.arena >> 10} kB, mmapped {info.hblkhd >> 10} kB, in use {info.uordblks >> 10} kB, "
            f"free {info.fordblks >> 10} kB")


def write_malloc_xml(path: Path) -> None:
    """glibc's ``malloc_info``: every arena (one per thread that allocated, up to 8 per core)."""
    try:
        libc = ctypes.CDLL(None)
        libc.fopen.restype = ctypes.c_void_p
        libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
        libc.fclose.argtypes = [ctypes.c_void_p]
        handle = libc.fopen(str(path).encode(), b"w")
        if handle:
            libc.malloc_info(0, handle)
            libc.fclose(handle)
    except (OSError, AttributeError):
        pass


def write_dump(directory: Path, replica_id: int, n: int) -> Path:
    """Write snapshot ``n`` and its summary; returns the summary's path."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / f"replica-{replica_id}-{n}"
    tracing = tracemalloc.is_tracing()
    snapshot = tracemalloc.take_snapshot() if tracing else None
    if snapshot is not None:
        snapshot.dump(str(stem.with_suffix(".snapshot")))
    current, peak = tracemalloc.get_traced_memory()
    types = Counter(type(o).__name__ for o in gc.get_objects())
    rss = ", ".join(f"{name} {kb} kB" for name, kb in rss_kb().items())
    lines = [rss, f"tracemalloc {current >> 10} kB (peak {peak >> 10} kB); sqlite {sqlite_memory_used() >> 10} kB",
             malloc_info(), "", "top sites:"]
    lines += [str(stat) for stat in snapshot.statistics("lineno")[:25]] if snapshot is not None else []
    lines += ["", "gc-tracked objects by type:"]
    lines += [f"{count:>10} {name}" for name, count in types.most_common(25)]
    write_malloc_xml(stem.with_suffix(".malloc.xml"))
    summary = stem.with_suffix(".txt")
    summary.write_text("\n".join(lines) + "\n")
    return summary


async def serve_dumps(directory: Path, replica_id: int) -> None:
    """Write a dump on every SIGUSR2 until cancelled."""
    n = 0
    with trio.open_signal_receiver(signal.SIGUSR2) as signals:
        async for _ in signals:
            n += 1
            path = write_dump(directory, replica_id, n)
            logging.getLogger("ordo").warning("heap dump written: %s", path)
