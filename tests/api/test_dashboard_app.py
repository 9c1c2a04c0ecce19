"""The dashboard's routes and event stream in-process, over a fake replica (no cluster): the page
and its static files (and nothing else) are served, the snapshot is the view-model's JSON, the
stream sends a snapshot then coalesced commit events and status heartbeats, a client far behind
gets a new snapshot of bounded size, and a client that takes nothing is dropped."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import AsyncGenerator, MutableMapping
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import httpx
import trio
import trio.testing

from consensus.messages import Block, Evidence, EvidenceKind, QuorumCert
from sequencing.api import dashboard as dashboard_module
from sequencing.api.app import build_app
from sequencing.api.dashboard import COMMIT_GAP, SEND_TIMEOUT, Dashboard, EventStream, static_files
from sequencing.api.openapi import DASHBOARD_FILES
from sequencing.api.reads import LedgerReads
from sequencing.replica.watch import BLOCKS_KEPT

from .fake_replica import EmptyLedger, FakeReplica

ROOT = Path(__file__).resolve().parents[2]
SIG = b"s" * 64


def block(height: int) -> Block:
    return Block(height, height, QuorumCert(height - 1, b"p" * 32, ((0, SIG),) if height > 1 else ()), height % 4,
                 b"", b"r" * 32)


class CommittingReplica(FakeReplica):
    """A fake replica whose commits the test makes: each feeds the watch and wakes wait_committed."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = trio.Event()

    async def wait_committed(self) -> None:
        await self.changed.wait()

    def commit(self, count: int = 1) -> None:
        for _ in range(count):
            self.durable_height += 1
            self.watch.committed(block(self.durable_height), 2, 100, ((5, (b"a", b"b")),), trio.current_time())
        self.changed.set()
        self.changed = trio.Event()


class EvidenceLedger(EmptyLedger):
    def __init__(self, records: list[tuple[Evidence, int | None]]) -> None:
        self.records = records

    def evidence_list(self, *, offender: int | None = None) -> list[tuple[Evidence, int | None]]:
        return [r for r in self.records if offender is None or r[0].offender == offender]


def client(replica: FakeReplica) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(replica)), base_url="http://replica")


def parse(chunk: str) -> tuple[str, Any]:
    fields = dict(line.split(": ", 1) for line in chunk.strip().splitlines())
    return fields["event"], json.loads(fields["data"])


async def test_the_page_and_its_static_files_are_served_and_nothing_else() -> None:
    async with client(FakeReplica()) as http:
        page = await http.get("/dashboard")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-store"
        referenced = re.findall(r'(?:src|href)="/dashboard/static/([^"]+)"', page.text)
        assert sorted(referenced) == ["dashboard.css", "dashboard.js"]
        for name, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
            got = await http.get(f"/dashboard/static/{name}")
            assert got.status_code == 200 and got.headers["content-type"].startswith(kind), name
            assert got.content == (ROOT / "sequencing/api/dashboard_static" / name).read_bytes()
        for name in ("nope.js", "index.html", "..%2Fapp.py", "%2e%2e%2Fdashboard.py", "__init__.py"):
            missing = await http.get(f"/dashboard/static/{name}")
            assert (missing.status_code, missing.json()["error"]) == (404, "not_found"), name
        assert (await http.get("/dashboard/static/../app.py")).status_code == 404
        assert 'rel="icon" href="data:,"' in page.text, "no favicon request (a 404 is a console error)"
        for hook in ("committee", "height", "round", "timeline", "throughput", "rollups", "evidence", "faults",
                     "connection"):
            assert f'id="{hook}"' in page.text, hook


def test_the_static_files_are_package_data() -> None:
    """A non-editable install ships every file the page is served from (pyproject's package-data)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["sequencing.api"]
    files = static_files()
    assert set(files) == {"index.html", *DASHBOARD_FILES}, "the OpenAPI document names every static file"
    for name in files:
        assert any(fnmatch(f"dashboard_static/{name}", p) for p in patterns), f"{name} is not package data"


async def test_the_snapshot_is_the_view_and_evidence_links_to_one_verifiable_record() -> None:
    replica = CommittingReplica()
    evidence = Evidence(EvidenceKind.DOUBLE_VOTE, 2, 9, b"\x01" * 32, SIG, b"\x02" * 32, SIG)
    other = Evidence(EvidenceKind.DOUBLE_VOTE, 2, 8, b"\x01" * 32, SIG, b"\x03" * 32, SIG)
    replica.ledger = EvidenceLedger([(other, 30), (evidence, None)])
    replica.commit(3)
    async with client(replica) as http:
        snap = (await http.get("/v1/dashboard/snapshot")).json()
        assert [b["height"] for b in snap["blocks"]] == [1, 2, 3] and snap["height"] == 3
        assert [m["id"] for m in snap["committee"]] == [0, 1, 2, 3]
        assert {"committee", "blocks", "throughput", "rollups", "evidence", "faults", "round", "leader"} <= set(snap)
        assert replica.watch.watched(trio.current_time()), "a snapshot turns the per-rollup tracking on"
        row = next(e for e in snap["evidence"] if e["id"] == evidence.id.hex())
        record = await http.get(row["json"])
        assert record.status_code == 200
        assert record.json() == [(await http.get("/v1/evidence")).json()[1]], "the record as /v1/evidence lists it"
        assert Evidence.decode(bytes.fromhex(record.json()[0]["evidence"])) == evidence
        unknown = await http.get("/v1/evidence", params={"id": "ab" * 32})
        assert (unknown.status_code, unknown.json()) == (200, [])
        bad = await http.get("/v1/evidence", params={"id": "xyz"})
        assert (bad.status_code, bad.json()["error"]) == (400, "invalid_parameter")


async def take(stream: AsyncGenerator[str, None]) -> tuple[str, Any]:
    return parse(await stream.__anext__())


async def test_the_stream_sends_a_snapshot_then_coalesced_commits_and_status_heartbeats(
        autojump_clock: trio.abc.Clock) -> None:
    replica = CommittingReplica()
    replica.commit(2)
    dashboard = Dashboard(replica, LedgerReads(replica))
    stream = dashboard.stream()
    assert (await stream.__anext__()).startswith("retry:")
    kind, snap = await take(stream)
    assert kind == "snapshot" and [b["height"] for b in snap["blocks"]] == [1, 2]
    assert replica.watch.streams == 1
    replica.commit(3)  # three commits before the client asks again: one event
    kind, commit = await take(stream)
    assert kind == "commit" and [b["height"] for b in commit["blocks"]] == [3, 4, 5] and commit["height"] == 5
    start = trio.current_time()
    kind, status = await take(stream)  # nothing committed: the heartbeat, within a second
    assert kind == "status" and "blocks" not in status and trio.current_time() - start <= 1.0
    replica.commit()
    kind, commit = await take(stream)
    assert kind == "commit" and [b["height"] for b in commit["blocks"]] == [6]
    sent_at = trio.current_time()
    replica.commit()
    while (event := await take(stream))[0] == "status":
        pass
    assert event[0] == "commit" and trio.current_time() - sent_at >= COMMIT_GAP - 1e-9, "one per COMMIT_GAP"
    await stream.aclose()
    assert replica.watch.streams == 0


async def test_a_client_far_behind_gets_a_bounded_snapshot_not_a_backlog(autojump_clock: trio.abc.Clock) -> None:
    replica = CommittingReplica()
    replica.commit()
    stream = Dashboard(replica, LedgerReads(replica)).stream()
    await stream.__anext__()
    await take(stream)
    replica.commit(20 * BLOCKS_KEPT)  # the client took nothing meanwhile
    kind, snap = await take(stream)
    assert kind == "snapshot", "a gap the watch no longer holds is a new snapshot"
    assert len(snap["blocks"]) == BLOCKS_KEPT and snap["blocks"][-1]["height"] == 1 + 20 * BLOCKS_KEPT
    replica.commit(2)
    kind, commit = await take(stream)
    assert kind == "commit" and len(commit["blocks"]) == 2
    await stream.aclose()


async def test_a_client_that_takes_nothing_is_dropped(autojump_clock: trio.abc.Clock) -> None:
    replica = CommittingReplica()
    dashboard = Dashboard(replica, LedgerReads(replica))
    sent: list[bytes] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body" and sent:
            await trio.sleep_forever()  # its socket buffer is full and stays full
        sent.append(message.get("body", b""))

    async def receive() -> dict[str, Any]:
        await trio.sleep_forever()
        raise AssertionError

    with trio.fail_after(SEND_TIMEOUT + 5):
        await EventStream(dashboard)({"type": "http"}, receive, send)
    assert dashboard.dropped == 1 and replica.watch.streams == 0


async def test_a_disconnect_ends_the_stream(autojump_clock: trio.abc.Clock) -> None:
    replica = CommittingReplica()
    dashboard = Dashboard(replica, LedgerReads(replica))
    gone = trio.Event()
    chunks: list[bytes] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        chunks.append(message.get("body", b""))
        if len(chunks) == 3:
            gone.set()

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    with trio.fail_after(5):
        await EventStream(dashboard)({"type": "http"}, receive, send)
    assert dashboard.dropped == 0 and replica.watch.streams == 0
    assert b"event: snapshot" in chunks[2]
    assert dashboard_module.STATUS_EVERY <= 1.0
