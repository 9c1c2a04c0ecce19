"""The bench's load generator: binary batch requests (bench_body.py) over several keep-alive
connections, spread round-robin over the replicas, paced to a rate or, without one, as fast as the
cluster commits them (at most ``window`` requests in flight, i.e. sent but not yet seen committed),
and a latency sample from every request.

Latency without polling: entry 0 of every request is a *probe*, a transaction in rollup
``PROBE_ROLLUP`` (no other load goes there). The generator records when each request was sent,
keyed by its probe's counter (dropped again if the probe is refused), and follows each replica's
subscription to that rollup (``GET /v1/rollups/0/subscribe``, server-sent events, one event per
committed height): every probe in an event is a request of which a transaction was just committed,
and its latency is the time from sending the request to receiving the event, from the replica the
request went to. One connection per replica whatever the load; the replica builds one slice proof
per height for it (``--no-latency`` leaves the probes and streams out, to see what they cost).
Polling ``GET /v1/transactions/{id}`` every 10 ms per replica instead cost the replicas more than
the load: rounds/s fell from 7 to 1 on the development machine."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

import httpx
import msgpack
import trio

from ..client.stream import SseParser
from .bench_body import BodyBuilder

MSGPACK_HEADERS = {"content-type": "application/msgpack"}
BUSY_PAUSE = 0.05  # a busy (503) connection retries after this long, not Retry-After: the bench keeps the pressure on
ERROR_PAUSE = 0.1
MAX_LAG = 0.5  # a paced generator that fell behind catches up at most this many seconds of requests
PROBE_ROLLUP = 0
SUBSCRIBE_WAIT = 15.0
WINDOW_EXPIRY = 30.0


@dataclass(frozen=True, slots=True)
class LoadCounters:
    requests: int = 0
    txs_sent: int = 0
    accepted: int = 0
    busy: int = 0  # answers 503 (mempool full) or 429 (rate limited)
    errors: int = 0  # transport failures and other answers

    def minus(self, other: LoadCounters) -> LoadCounters:
        return LoadCounters(self.requests - other.requests, self.txs_sent - other.txs_sent,
                            self.accepted - other.accepted, self.busy - other.busy, self.errors - other.errors)


class LoadGenerator:
    def __init__(self, urls: Sequence[str], builder: BodyBuilder, *, connections: int, rate: float | None = None,
                 window: int | None = None, sample: bool = True, first_counter: int = 0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if connections < 1:
            raise ValueError("at least one connection")
        self.urls = [u.rstrip("/") for u in urls]
        self.builder = builder
        self.connections = connections
        self.rate = rate
        self.sample = sample
        self.counters = LoadCounters()
        self.measuring = False  # samples are taken only while measuring
        self.latencies: list[float] = []  # seconds, submit -> seen committed
        self.next_counter = first_counter
        if sample and builder.probe_rollup != PROBE_ROLLUP:
            raise ValueError(f"sampling needs bodies with a probe in rollup {PROBE_ROLLUP}")
        if window is not None and (window < 1 or not sample):
            raise ValueError("a window of requests in flight needs sampling (it ends at the probe's commit)")
        self.window = window
        # per replica: probe counter -> (sent, measured): the requests in flight, until their probe commits
        self._pending: list[dict[int, tuple[float, bool]]] = [{} for _ in self.urls]
        self._freed = trio.Event()
        self._watching = [trio.Event() for _ in self.urls]
        self._due = 0.0
        self._go = trio.Event()
        self._sent = trio.Event()  # the senders ended
        self._ran = trio.Event()  # everything ended
        self._workers = trio.CancelScope()
        self._all = trio.CancelScope()
        limits = httpx.Limits(max_connections=connections + len(self.urls) + 4,
                              max_keepalive_connections=connections + len(self.urls) + 4)
        # the timeout is above the API's durable-ack wait (10 s)
        self.http = httpx.AsyncClient(timeout=30.0, limits=limits, transport=transport)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, nursery: trio.Nursery) -> None:
        """Subscribe (with sampling), then start sending."""
        nursery.start_soon(self._run)
        with trio.move_on_after(SUBSCRIBE_WAIT):  # a replica that does not answer gets no samples
            for subscribed in self._watching if self.sample else ():
                await subscribed.wait()
        self._due = trio.current_time()
        self._go.set()

    async def _run(self) -> None:
        try:
            with self._all:
                async with trio.open_nursery() as nursery:
                    if self.sample:
                        for replica in range(len(self.urls)):
                            nursery.start_soon(self._watch, replica)
                    await self._go.wait()
                    nursery.start_soon(self._send_all)
        finally:
            self._ran.set()

    async def _send_all(self) -> None:
        try:
            with self._workers:
                async with trio.open_nursery() as nursery:
                    for index in range(self.connections):
                        nursery.start_soon(self._worker, index)
        finally:
            self._sent.set()

    async def stop(self, drain: float = 15.0) -> int:
        """Stop sending, give the watchers up to ``drain`` seconds to see the samples committed,
        stop them; returns how many samples were never seen committed."""
        self.measuring = False
        self._workers.cancel()
        with trio.CancelScope(shield=True):
            if self._go.is_set():
                await self._sent.wait()  # no worker is between two awaits any more
            with trio.move_on_after(drain):
                while self.unresolved:
                    await trio.sleep(0.05)
            self._all.cancel()
            await self._ran.wait()
            await self.http.aclose()
        return self.unresolved

    @property
    def unresolved(self) -> int:
        """Measured samples not seen committed (yet)."""
        return sum(1 for p in self._pending for _, measured in p.values() if measured)

    async def _window_slot(self) -> None:
        """Without a rate: wait while ``window`` requests are in flight (sent, probe not yet seen
        committed), so an overloaded cluster is not buried under ever more queued work; a probe
        not seen within WINDOW_EXPIRY no longer counts."""
        if self.window is None:
            return
        while sum(len(p) for p in self._pending) >= self.window:
            self._freed = trio.Event()
            with trio.move_on_after(1.0):
                await self._freed.wait()
            cutoff = trio.current_time() - WINDOW_EXPIRY
            for pending in self._pending:
                for counter in [c for c, (sent, _) in pending.items() if sent < cutoff]:
                    del pending[counter]

    # -- sending -------------------------------------------------------------------------------

    async def _next_slot(self) -> None:
        if self.rate is None:
            return
        now = trio.current_time()
        self._due = max(self._due, now - MAX_LAG) + self.builder.per_request / self.rate
        await trio.sleep_until(self._due)

    async def _worker(self, index: int) -> None:
        replica = index % len(self.urls)
        url = f"{self.urls[replica]}/v1/transactions/batch"
        count = self.builder.per_request
        while True:
            await self._next_slot()
            await self._window_slot()
            first = self.next_counter
            self.next_counter += count
            body = self.builder.body(first)
            sent = trio.current_time()
            if self.sample:  # before the answer: the commit may be seen first
                self._pending[replica][first] = (sent, self.measuring)
            try:
                response = await self.http.post(url, content=body, headers=MSGPACK_HEADERS)
            except httpx.HTTPError:
                self._pending[replica].pop(first, None)
                self.counters = replace(self.counters, requests=self.counters.requests + 1,
                                        txs_sent=self.counters.txs_sent + count, errors=self.counters.errors + 1)
                await trio.sleep(ERROR_PAUSE)
                continue
            except trio.Cancelled:  # stopped mid-request: no answer, no sample
                self._pending[replica].pop(first, None)
                raise
            pause = self._account(response, replica, first)
            if pause:
                await trio.sleep(pause)

    def _account(self, response: httpx.Response, replica: int, first: int) -> float:
        """Count an answer (a request whose probe was not taken is no sample); how long this
        connection should pause."""
        c = self.counters
        count = self.builder.per_request
        if response.status_code != 200:
            self._pending[replica].pop(first, None)
        if response.status_code in (429, 503):
            self.counters = replace(c, requests=c.requests + 1, txs_sent=c.txs_sent + count, busy=c.busy + 1)
            return BUSY_PAUSE
        try:
            result = msgpack.unpackb(response.content) if response.status_code == 200 else None
            accepted = int(result["accepted"]) if isinstance(result, dict) else -1
            refused = {int(r["index"]) for r in result["rejected"]} if isinstance(result, dict) else set()
        except (ValueError, TypeError, KeyError, msgpack.UnpackException):
            accepted, refused = -1, set()
        if accepted < 0 or 0 in refused:
            self._pending[replica].pop(first, None)
        if accepted < 0:
            self.counters = replace(c, requests=c.requests + 1, txs_sent=c.txs_sent + count, errors=c.errors + 1)
            return ERROR_PAUSE
        self.counters = replace(c, requests=c.requests + 1, txs_sent=c.txs_sent + count, accepted=c.accepted + accepted)
        return 0.0

    # -- latency -------------------------------------------------------------------------------

    async def _watch(self, replica: int) -> None:
        """Follow the replica's probe-rollup subscription; resume after a broken stream."""
        url = f"{self.urls[replica]}/v1/rollups/{PROBE_ROLLUP}/subscribe"
        pending = self._pending[replica]
        last: int | None = None
        while True:
            params = {"skip_empty": "true"} if last is None else {"from": str(last + 1), "skip_empty": "true"}
            parser = SseParser()
            try:
                async with self.http.stream("GET", url, params=params, timeout=httpx.Timeout(30.0, read=60.0)) as r:
                    if r.status_code != 200:
                        raise httpx.HTTPError(f"subscription answered {r.status_code}")
                    self._watching[replica].set()
                    async for line in r.aiter_lines():
                        event = parser.feed(line)
                        if event is None or event[1] != "slice":
                            continue
                        now = trio.current_time()
                        last = int(event[0]) if event[0] else last
                        for payload in json.loads(event[2])["transactions"]:
                            entry = pending.pop(BodyBuilder.counter_of(bytes.fromhex(payload[:16])), None)
                            if entry is not None and entry[1]:
                                self.latencies.append(now - entry[0])
                        self._freed.set()
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            await trio.sleep(ERROR_PAUSE)  # the stream ended or broke: resume it shortly
