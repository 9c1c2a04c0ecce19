"""Admission control of the public API (sequencing/api/limits.py), driven through the real app
with ASGI calls (a mock clock, so the 1 s holds cost nothing), plus the connection caps on a real
socket."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry

from sequencing.api import app as api
from sequencing.api.limits import TARPIT, ApiGuard, ConnectionGate, TokenBuckets
from sequencing.api.serve import serve_guarded
from sequencing.config import Limits

from .fake_replica import FakeReplica

Message = dict[str, Any]


def guarded_app(**limits: int) -> tuple[Callable[..., Awaitable[None]], ApiGuard, CollectorRegistry]:
    registry = CollectorRegistry()
    guard = ApiGuard(Limits(**limits), registry)
    return guard.wrap(api.build_app(FakeReplica(Limits(**limits)))), guard, registry


async def call(app: Callable[..., Awaitable[None]], method: str, path: str, body: list[bytes] | None = None,
               headers: dict[str, str] | None = None, client: str = "10.0.0.1",
               stall: bool = False) -> tuple[int, dict[str, str], Any]:
    """One request through the ASGI app; ``body`` chunks are sent as they are asked for, then (if
    ``stall``) the body never completes."""
    chunks = list(body or [b""])
    sent: list[Message] = []
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
             "client": (client, 5000), "server": ("127.0.0.1", 80)}

    async def receive() -> Message:
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks) or stall}
        await trio.sleep_forever()
        raise AssertionError

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    assert start["type"] == "http.response.start"
    response_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    payload = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], response_headers, json.loads(payload) if payload else None


def refused(registry: CollectorRegistry, reason: str) -> float:
    return registry.get_sample_value("ordo_api_refused_total", {"reason": reason}) or 0.0


async def test_over_the_rate_is_429_with_retry_after(autojump_clock: trio.testing.MockClock,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    app, _, registry = guarded_app(api_client_rate=2, api_client_burst=3)
    for _ in range(3):
        assert (await call(app, "GET", "/status"))[0] == 200
    begin = trio.current_time()
    status, headers, body = await call(app, "GET", "/status")
    assert status == 429 and body["error"] == "rate_limited"
    assert headers["retry-after"] == "0", "the 1 s hold covered the 0.5 s to the next token"
    assert trio.current_time() - begin >= TARPIT, "a 429 is held back"
    assert refused(registry, "rate_limited") == 1
    assert "refused 1 request(s)/connection(s) (rate_limited)" in caplog.text, "surfaced in the log"
    # another client is not affected; the first one is served again once its bucket refills
    assert (await call(app, "GET", "/status", client="10.0.0.2"))[0] == 200
    await trio.sleep(1)
    assert (await call(app, "GET", "/status"))[0] == 200


async def test_malformed_requests_drain_the_bucket_faster(autojump_clock: trio.testing.MockClock) -> None:
    app, _, registry = guarded_app(api_client_rate=1, api_client_burst=20, api_error_cost=9)
    bad: dict[str, Any] = {"body": [b"{not json"], "headers": {"content-type": "application/json"}}
    assert (await call(app, "POST", "/v1/transactions", **bad))[0] == 400
    assert (await call(app, "POST", "/v1/transactions", **bad))[0] == 400  # 20 tokens - 2 * (1 + 9) = 0
    assert (await call(app, "GET", "/status"))[0] == 429
    assert refused(registry, "bad_request") == 2 and refused(registry, "rate_limited") == 1
    app, _, _ = guarded_app(api_client_rate=1, api_client_burst=20, api_error_cost=30)
    assert (await call(app, "POST", "/v1/transactions", **bad))[0] == 400  # 20 - 1 - 30 = -11
    status, headers, _ = await call(app, "GET", "/status")  # 12 s to the next token, 1 s of it held
    assert status == 429 and headers["retry-after"] == "11"


async def test_declared_body_over_the_cap_is_413_before_reading() -> None:
    app, _, registry = guarded_app(api_max_body_bytes=1000)
    status, headers, body = await call(app, "POST", "/v1/transactions", body=[b"x" * 10], stall=True,
                                       headers={"content-length": "1001", "content-type": "application/json"})
    assert status == 413 and body["error"] == "too_large" and headers["connection"] == "close"
    assert refused(registry, "too_large") == 1
    status, _, body = await call(app, "POST", "/v1/transactions", headers={"content-length": "-5"})
    assert status == 400
    status, _, body = await call(app, "POST", "/v1/transactions", headers={"content-length": "9" * 5000})
    assert status == 413, "not a 500 from int()'s 4300-digit limit"


async def test_streamed_body_over_the_cap_is_413() -> None:
    app, _, _ = guarded_app(api_max_body_bytes=1000)
    status, headers, body = await call(app, "POST", "/v1/transactions/batch", body=[b"[" * 600] * 2, stall=True)
    assert status == 413 and "1000 bytes" in body["detail"] and headers["connection"] == "close"


async def test_a_body_that_never_ends_is_408(autojump_clock: trio.testing.MockClock) -> None:
    app, _, registry = guarded_app(api_body_timeout=3)
    status, headers, body = await call(app, "POST", "/v1/bundles", body=[b'{"transactions": ['], stall=True)
    assert status == 408 and body["error"] == "body_timeout" and headers["connection"] == "close"
    assert trio.current_time() >= 3 and refused(registry, "body_timeout") == 1


def test_token_bucket_forgets_the_oldest_clients_and_bounds_debt() -> None:
    buckets = TokenBuckets(rate=1, burst=2, max_clients=2)
    assert buckets.take("a", 0) == 0 and buckets.take("a", 0) == 0 and buckets.take("a", 0) == 1.0
    buckets.charge("a", 100, 0)
    assert buckets.take("a", 0) == 3.0, "debt is bounded by the burst"
    buckets.take("b", 0)
    buckets.take("c", 0)
    assert buckets.take("a", 0) == 0, "a was forgotten"


def test_connection_gate_caps_total_and_per_client() -> None:
    gate = ConnectionGate(total=3, per_client=2)
    assert gate.admit("a") is None and gate.admit("a") is None
    assert gate.admit("a") == "client_connections"
    assert gate.admit("b") is None and gate.admit("c") == "connections"
    gate.release("a")
    assert gate.admit("c") is None and gate.open == 3


async def read_until_closed(stream: trio.SocketStream) -> bytes:
    data = b""
    with trio.fail_after(10):
        while chunk := await stream.receive_some(65536):
            data += chunk
    return data


async def test_connections_over_the_cap_are_refused_at_accept() -> None:
    from hypercorn.config import Config

    per_client = 2
    registry = CollectorRegistry()
    guard = ApiGuard(Limits(api_max_connections_per_client=per_client), registry)
    app = api.build_app(FakeReplica())
    with trio.socket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with trio.open_nursery() as nursery:
        config = Config()
        config.keep_alive_timeout = 30  # hypercorn's own connection task would outlive a close this long
        await nursery.start(serve_guarded, app, config, guard, ("127.0.0.1", port))
        kept = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(per_client)]
        request = b"GET /status HTTP/1.1\r\nhost: x\r\n\r\n"
        for stream in kept:
            await stream.send_all(request)
            assert (await stream.receive_some(65536)).startswith(b"HTTP/1.1 200")
        extra = await trio.open_tcp_stream("127.0.0.1", port)
        answer = await read_until_closed(extra)
        assert answer.startswith(b"HTTP/1.1 503") and b"client_connections" in answer
        assert registry.get_sample_value("ordo_api_refused_total", {"reason": "client_connections"}) == 1
        assert registry.get_sample_value("ordo_api_connections") == per_client
        await kept[0].aclose()  # a slot frees when a connection closes
        with trio.fail_after(2):
            while guard.gate.open == per_client:
                await trio.sleep(0.01)
        again = await trio.open_tcp_stream("127.0.0.1", port)
        await again.send_all(request)
        assert (await again.receive_some(65536)).startswith(b"HTTP/1.1 200")
        for stream in [*kept[1:], extra, again]:
            await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_the_harness_resends_a_rate_limited_request(tmp_path: Any) -> None:
    import httpx

    from sequencing.cluster.local import LocalCluster, write_local_config

    answers = [httpx.Response(429, headers={"retry-after": "0"}, json={"error": "rate_limited", "detail": ""}),
               httpx.Response(200, json={"status": "committed"})]
    seen: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    cluster = LocalCluster(write_local_config(tmp_path))
    await cluster.client.aclose()
    cluster.client = httpx.AsyncClient(transport=httpx.MockTransport(respond))
    response = await cluster.get(0, "/v1/transactions/" + "ab" * 32)
    assert response.status_code == 200 and len(seen) == 2
    await cluster.client.aclose()


def test_api_limits_are_read_from_cluster_toml(tmp_path: Any) -> None:
    from sequencing.cluster.local import write_local_config
    from sequencing.config import ConfigError, load_config

    path = write_local_config(tmp_path, limits={"api_client_rate": 7, "api_max_body_bytes": 200_000})
    limits = load_config(path).limits
    assert limits.api_client_rate == 7 and limits.api_max_body_bytes == 200_000
    path = write_local_config(tmp_path, limits={"api_max_body_bytes": 1000})
    with pytest.raises(ConfigError, match="api_max_body_bytes"):
        load_config(path)
