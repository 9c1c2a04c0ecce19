"""Admission control for the public API, so that clients cannot starve consensus (which shares
the replica's trio loop with the API).

- Connections: at most ``api_max_connections`` open at once, and ``api_max_connections_per_client``
  per source address; a connection over either cap is answered 503 five seconds after accept (no
  HTTP parsing) and closed, so a client reconnecting in a loop costs few accepts.
- Rate: a token bucket per source address (``api_client_rate`` tokens/s, ``api_client_burst``).
  A request costs one token; an answer that blames the request (400, 405, 408, 413) costs
  ``api_error_cost`` more, so a flood of malformed input is throttled hardest. A client out of
  tokens gets 429 with ``Retry-After``, held back for a second first: a keep-alive
  connection then sends at most one refused request per second, and an attacker's own loop slows.
- Body: a ``Content-Length`` over ``api_max_body_bytes`` is 413 before a byte of the body is read;
  a body that grows past it while streaming, or takes longer than ``api_body_timeout`` seconds to
  arrive, is refused (413, 408) and its connection closed.

Every refusal and every error answer is counted in ``ordo_api_refused_total{reason}``. The
connection caps are applied by :mod:`sequencing.api.serve`, which serves the guarded app.
"""

from __future__ import annotations

import json
import logging
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge

from ..config import Limits
from .views import ApiError

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOG_EVERY = 10.0
LOGGED = frozenset({"connections", "client_connections", "rate_limited", "too_large", "body_timeout"})
TARPIT = 1.0  # how long a 429 is held back (s)
MAX_TRACKED_CLIENTS = 65_536
BLAMED = frozenset({400, 405, 408, 413})  # answers that say the request itself was bad
REASONS = {0: "no_response", 400: "bad_request", 404: "not_found", 405: "method_not_allowed", 408: "body_timeout",
           409: "conflict", 413: "too_large", 429: "rate_limited", 500: "internal_error", 503: "busy"}


class TokenBuckets:
    """One token bucket per client, refilled at ``rate`` per second up to ``burst``. Debt (a
    surcharge after the fact) is allowed down to ``-burst``. The least recently seen clients are
    forgotten beyond ``max_clients`` (a forgotten client starts with a full bucket)."""

    def __init__(self, rate: float, burst: float, max_clients: int = MAX_TRACKED_CLIENTS) -> None:
        self.rate, self.burst, self.max_clients = rate, burst, max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, client: str, now: float) -> float:
        tokens, last = self._buckets.pop(client, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def _store(self, client: str, tokens: float, now: float) -> None:
        self._buckets[client] = (max(-self.burst, tokens), now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)

    def take(self, client: str, now: float) -> float:
        """Take one token: 0.0 if there was one, else the seconds until there is (nothing taken)."""
        tokens = self._level(client, now)
        if tokens >= 1:
            self._store(client, tokens - 1, now)
            return 0.0
        self._store(client, tokens, now)
        return (1 - tokens) / self.rate

    def charge(self, client: str, cost: float, now: float) -> None:
        self._store(client, self._level(client, now) - cost, now)


class ConnectionGate:
    """Open connections, in total and per client."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total, self.per_client = total, per_client
        self.open = 0
        self._by_client: dict[str, int] = {}

    def admit(self, client: str) -> str | None:
        """Count the connection in and return None, or return why it is refused."""
        if self.open >= self.total:
            return "connections"
        if self._by_client.get(client, 0) >= self.per_client:
            return "client_connections"
        self.open += 1
        self._by_client[client] = self._by_client.get(client, 0) + 1
        return None

    def release(self, client: str) -> None:
        self.open -= 1
        left = self._by_client[client] - 1
        if left:
            self._by_client[client] = left
        else:
            del self._by_client[client]


class ApiGuard:
    """The limits of one replica's public API, and their counters."""

    def __init__(self, limits: Limits, registry: CollectorRegistry | None = None,
                 clock: Callable[[], float] = trio.current_time) -> None:
        self.limits = limits
        self.clock = clock
        self.buckets = TokenBuckets(limits.api_client_rate, limits.api_client_burst)
        self.gate = ConnectionGate(limits.api_max_connections, limits.api_max_connections_per_client)
        self.refused = Counter("ordo_api_refused", "API requests and connections refused or answered with "
                               "an error, by reason", ["reason"], registry=registry)
        gauge = Gauge("ordo_api_connections", "Open connections to the public API", registry=registry)
        gauge.set_function(lambda: self.gate.open)
        self._unlogged: dict[str, int] = {}
        self._logged_at: dict[str, float] = {}

    def count(self, reason: str) -> None:
        self.refused.labels(reason).inc()
        if reason in LOGGED:  # surfaced in the log too, at most once per LOG_EVERY seconds per reason
            self._unlogged[reason] = self._unlogged.get(reason, 0) + 1
            now = self.clock()
            if now - self._logged_at.get(reason, -LOG_EVERY) >= LOG_EVERY:
                log.warning("public API refused %d request(s)/connection(s) (%s) in the last %.0f s",
                            self._unlogged.pop(reason), reason, LOG_EVERY)
                self._logged_at[reason] = now

    def wrap(self, app: AsgiApp) -> AsgiApp:
        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
            else:
                await self._http(app, scope, receive, send)
        return guarded

    async def _http(self, app: AsgiApp, scope: Scope, receive: Receive, send: Send) -> None:
        client = (scope.get("client") or ("?", 0))[0]
        wait = self.buckets.take(client, self.clock())
        if wait > 0:
            await trio.sleep(TARPIT)
            retry = str(max(0, math.ceil(wait - TARPIT)))  # the hold already covered TARPIT of the wait
            await _answer(send, 429, "rate_limited", f"over {self.limits.api_client_rate} requests/s from "
                          f"{client}; retry after {retry} s", {"retry-after": retry})
            self.count(REASONS[429])
            return
        limit = self.limits.api_max_body_bytes
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or len(declared) > 18 or int(declared) > limit):
            status = 413 if declared.isdigit() else 400
            await _answer(send, status, "too_large" if status == 413 else "invalid_request",
                          f"request body over {limit} bytes" if status == 413 else "bad Content-Length",
                          {"connection": "close"})
            self._after(client, status)
            return
        status = 0  # no response started (the client left, or the request was cancelled)
        deadline = self.clock() + self.limits.api_body_timeout
        received = 0
        body_done = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                return await receive()
            with trio.move_on_at(deadline) as scope_:
                message = await receive()
            if scope_.cancelled_caught:
                raise ApiError(408, "body_timeout", f"the body took over {self.limits.api_body_timeout} s")
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise ApiError(413, "too_large", f"request body over {limit} bytes")
                body_done = not message.get("more_body", False)
            return message

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if status in (408, 413):  # the rest of the body is unread: do not reuse the connection
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        try:
            await app(scope, limited_receive, observed_send)
        finally:
            self._after(client, status)

    def _after(self, client: str, status: int) -> None:
        if status in BLAMED:
            self.buckets.charge(client, self.limits.api_error_cost, self.clock())
        if status >= 400 or status == 0:
            self.count(REASONS.get(status, f"http_{status}"))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1").strip()
    return None


async def _answer(send: Send, status: int, code: str, detail: str, headers: dict[str, str]) -> None:
    body = json.dumps({"error": code, "detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
           *((k.encode(), v.encode()) for k, v in headers.items())]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
