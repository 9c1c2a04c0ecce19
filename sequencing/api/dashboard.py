"""The operators' dashboard on the public API port: the page (``GET /dashboard``), its static files
(``GET /dashboard/static/<name>``, shipped in the package: sequencing/api/dashboard_static/), the
whole view as JSON (``GET /v1/dashboard/snapshot``) and a live event stream
(``GET /v1/dashboard/events``).

The stream (server-sent events): ``snapshot`` first (the whole view), then ``commit`` (blocks
committed since the last event, coalesced: at most one event per COMMIT_GAP) and ``status``
(everything but the blocks) every STATUS_EVERY seconds, which is also the heartbeat. Events are
made when the client can take them (pull), so nothing queues for a slow client: what committed
meanwhile is coalesced into the next event (a client further behind than the watch keeps gets a
new ``snapshot``), and a client that takes no event for SEND_TIMEOUT is dropped (the page
reconnects). The view-model is dashboard_view.py; the replica feeds the watch
(sequencing/replica/watch.py) whether a dashboard is open or not, O(1) per block.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from importlib import resources
from typing import Any

import trio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from consensus.messages import Evidence

from .dashboard_view import blocks_view, snapshot_view, status_view
from .http_util import handle_errors
from .port import ReplicaPort
from .reads import LedgerReads
from .views import ApiError

STATUS_EVERY = 1.0  # seconds between status events (the heartbeat)
COMMIT_GAP = 0.2  # at least this long between two commit events (commits in between coalesce)
SEND_TIMEOUT = 10.0  # a client that takes no event for this long is dropped
EVIDENCE_REFRESH = 5.0  # seconds the evidence list read from the ledger is reused (unless it grew)
STATIC_PACKAGE = "sequencing.api"
STATIC_DIR = "dashboard_static"
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".txt": "text/plain; charset=utf-8"}
NO_STORE = {"Cache-Control": "no-store"}


def static_files() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, media type) of every file shipped in dashboard_static/ (read once)."""
    out: dict[str, tuple[bytes, str]] = {}
    for entry in (resources.files(STATIC_PACKAGE) / STATIC_DIR).iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if entry.is_file() and suffix in MEDIA_TYPES:
            out[entry.name] = (entry.read_bytes(), MEDIA_TYPES[suffix])
    return out


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class Dashboard:
    def __init__(self, replica: ReplicaPort, ledger: LedgerReads) -> None:
        self.replica = replica
        self.ledger = ledger
        self.files = static_files()
        self._evidence: list[tuple[Evidence, int | None]] = []
        self._evidence_key: tuple[float, Any] = (-1e9, None)

    def routes(self) -> list[Route]:
        h = handle_errors
        return [
            Route("/dashboard", h(self.page)),
            Route("/dashboard/static/{name}", h(self.static)),
            Route("/v1/dashboard/snapshot", h(self.snapshot)),
            Route("/v1/dashboard/events", self.events),
        ]

    async def page(self, request: Request) -> Response:
        body, media = self.files["index.html"]
        return Response(body, media_type=media, headers=NO_STORE)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        found = self.files.get(name) if name != "index.html" else None
        if found is None:
            raise ApiError(404, "not_found", f"no dashboard file {name!r}")
        return Response(found[0], media_type=found[1], headers=NO_STORE)

    # -- the view ------------------------------------------------------------------------------

    async def evidence(self, status: dict[str, Any], now: float) -> list[tuple[Evidence, int | None]]:
        """The recorded evidence, read again when the replica's count changed or after EVIDENCE_REFRESH."""
        at, known = self._evidence_key
        if known != status.get("evidence") or now - at > EVIDENCE_REFRESH:
            if self.replica.ledger_open:
                self._evidence = await self.ledger.read(lambda ledger: ledger.evidence_list())
            self._evidence_key = (now, status.get("evidence"))
        return self._evidence

    async def view(self, *, blocks: bool) -> dict[str, Any]:
        evidence = await self.evidence(self.replica.status(), self.replica.dashboard_state().now)
        # status, state and watch read together after the only await: a block committed while the
        # evidence was read would otherwise show in the timeline above the view's height
        status = self.replica.status()
        state = self.replica.dashboard_state()
        return (snapshot_view if blocks else status_view)(status, state, self.replica.watch, evidence)

    async def snapshot(self, request: Request) -> Response:
        self.replica.watch.touch(self.replica.dashboard_state().now)
        return JSONResponse(await self.view(blocks=True), headers=NO_STORE)

    # -- the stream ----------------------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        return EventStream(self)

    async def stream(self) -> AsyncGenerator[str, None]:
        """The events for one client, made as it takes them (see the module docstring)."""
        watch = self.replica.watch
        watch.streams += 1
        try:
            yield "retry: 2000\n\n"
            snapshot = await self.view(blocks=True)
            last = snapshot["blocks"][-1]["height"] if snapshot["blocks"] else 0
            yield sse("snapshot", snapshot)
            next_status = trio.current_time() + STATUS_EVERY
            while True:
                if (watch.blocks[-1].height if watch.blocks else 0) <= last:
                    with trio.move_on_at(next_status):
                        await self.replica.wait_committed()
                now = trio.current_time()
                newest = watch.blocks[-1].height if watch.blocks else 0
                if newest > last:
                    if watch.blocks[0].height > last + 1 and last:  # fell behind what the watch keeps
                        snapshot = await self.view(blocks=True)  # (a commit may land while it reads)
                        newest = max(newest, snapshot["blocks"][-1]["height"])
                        yield sse("snapshot", snapshot)
                        next_status = now + STATUS_EVERY
                    else:
                        status = self.replica.status()
                        yield sse("commit", {"height": status["committed_height"], "round": status["round"],
                                             "leader": status["leader"],
                                             "blocks": blocks_view(watch.blocks, now, after=last)})
                    last = newest
                    await trio.sleep_until(now + COMMIT_GAP)  # later commits coalesce into one event
                if trio.current_time() >= next_status:
                    yield sse("status", await self.view(blocks=False))
                    next_status = trio.current_time() + STATUS_EVERY
        finally:
            watch.streams -= 1


class EventStream(Response):
    """The event stream as a response that times each send out (Starlette's StreamingResponse
    would wait on a client that takes nothing for ever)."""

    def __init__(self, dashboard: Dashboard) -> None:  # no body: no content-length
        self.status_code = 200
        self.background = None
        self.media_type = "text/event-stream"
        self.raw_headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-store"),
                            (b"x-accel-buffering", b"no")]
        self.dashboard = dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if scope.get("method") == "HEAD":  # the headers only, not a stream that never ends
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_until_disconnect, receive, nursery.cancel_scope)
            async with aclosing(self.dashboard.stream()) as events:
                async for chunk in events:
                    with trio.move_on_after(SEND_TIMEOUT) as timed:
                        await send({"type": "http.response.body", "body": chunk.encode(), "more_body": True})
                    if timed.cancelled_caught:
                        self.dashboard.replica.watch.stream_dropped()
                        break
            nursery.cancel_scope.cancel()


async def _until_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return
