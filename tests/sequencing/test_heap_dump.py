"""The operator's heap probe (sequencing/cli/heap_dump.py, docs/OPERATIONS.md "Observing"): off
without ORDO_TRACEMALLOC_DUMP; with it, SIGUSR2 writes a summary naming what holds memory and a
tracemalloc snapshot that loads."""

from __future__ import annotations

import os
import signal
import tracemalloc
from pathlib import Path

import pytest
import trio
import trio.testing

from sequencing.cli import heap_dump


def test_off_unless_the_variable_names_a_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(heap_dump.ENV, raising=False)
    assert heap_dump.dump_dir() is None
    monkeypatch.setenv(heap_dump.ENV, "")
    assert heap_dump.dump_dir() is None
    monkeypatch.setenv(heap_dump.ENV, str(tmp_path))
    assert heap_dump.dump_dir() == tmp_path


def test_frames_zero_means_no_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDO_TRACEMALLOC_FRAMES", "0")
    was = tracemalloc.is_tracing()
    heap_dump.start_tracing()
    assert tracemalloc.is_tracing() == was


class Hoard:
    """Something for the dump to find."""


async def test_sigusr2_writes_a_dump(tmp_path: Path) -> None:
    tracemalloc.start()
    try:
        hoard = [Hoard() for _ in range(50_000)]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(heap_dump.serve_dumps, tmp_path, 7)
            await trio.testing.wait_all_tasks_blocked()
            os.kill(os.getpid(), signal.SIGUSR2)
            summary = tmp_path / "replica-7-1.txt"
            with trio.fail_after(20):
                while not summary.exists():
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    finally:
        tracemalloc.stop()
    text = summary.read_text()
    assert "VmRSS" in text and "sqlite" in text and "top sites:" in text
    assert any(line.split()[0] == "50000" and line.split()[1] == "Hoard" for line in
               (ln for ln in text.splitlines() if ln.strip()[:1].isdigit()))
    assert "test_heap_dump.py" in text, "the allocation site is named"
    snapshot = tracemalloc.Snapshot.load(str(tmp_path / "replica-7-1.snapshot"))
    assert snapshot.statistics("filename")
    assert (tmp_path / "replica-7-1.malloc.xml").read_text().startswith("<malloc")
    del hoard
