"""Serving a replica's two HTTP apps (:func:`serve_api`): the public API on hypercorn's trio
``TCPServer`` behind :class:`ApiGuard`'s connection caps (hypercorn's ``serve`` has no hook at
accept), and the admin API on loopback. Relies on hypercorn internals
(``hypercorn.trio.tcp_server.TCPServer``, ``WorkerContext``); ``tests/api/test_api_limits.py``
serves a real socket through it."""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import trio

from network import FaultRules

from .admin import build_admin_app
from .app import build_app
from .limits import ApiGuard, AsgiApp
from .port import ReplicaPort

if TYPE_CHECKING:
    from hypercorn.config import Config

REFUSAL_HOLD = 5.0  # a connection over the caps is answered (503) and closed this long after accept
REFUSED_AT_ACCEPT = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
                     b"retry-after: 1\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s")


def refusal_bytes(reason: str) -> bytes:
    body = json.dumps({"error": "busy", "detail": f"too many open connections ({reason}); retry later"}).encode()
    return REFUSED_AT_ACCEPT % (len(body), body)


class GuardedListener(trio.abc.Listener[trio.SocketStream]):
    """A TCP listener that refuses connections over the gate's caps at accept. A refused
    connection is answered after REFUSAL_HOLD (up to as many at once as the gate's total cap;
    beyond that at once), so that a client reconnecting in a loop costs few accepts per socket."""

    def __init__(self, inner: trio.SocketListener, guard: ApiGuard, clients: dict[trio.SocketStream, str],
                 nursery: trio.Nursery) -> None:
        self.inner, self.guard, self.nursery = inner, guard, nursery
        self.clients = clients  # accepted stream -> its client, until the handler takes it
        self.held = 0

    async def accept(self) -> trio.SocketStream:
        while True:
            stream = await self.inner.accept()
            try:
                client = str(stream.socket.getpeername()[0])
            except OSError:  # already gone
                await stream.aclose()
                continue
            reason = self.guard.gate.admit(client)
            if reason is None:
                self.clients[stream] = client
                return stream
            self.guard.count(reason)
            if self.held < self.guard.gate.total:
                self.held += 1
                self.nursery.start_soon(self._refuse, stream, reason, REFUSAL_HOLD)
            else:
                await self._refuse(stream, reason, 0.0)

    async def _refuse(self, stream: trio.SocketStream, reason: str, delay: float) -> None:
        try:
            await trio.sleep(delay)
            with trio.move_on_after(0.1):
                await stream.send_all(refusal_bytes(reason))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            if delay:
                self.held -= 1
            await stream.aclose()

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Ending:
    """The socket stream hypercorn serves, ending the connection's tasks once the connection is
    over: hypercorn's own connection task outlives a client's close by up to keep_alive_timeout
    (it waits for its idle timer), and would hold the connection's slot that long."""

    def __init__(self, stream: trio.SocketStream, scope: trio.CancelScope) -> None:
        self._stream, self._scope = stream, scope
        self.socket = stream.socket

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        try:
            data = await self._stream.receive_some(max_bytes)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._scope.cancel()
            raise
        if not data:
            self._scope.cancel()
        return bytes(data)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        self._scope.cancel()
        await self._stream.aclose()


async def serve_guarded(app: AsgiApp, config: Any, guard: ApiGuard, bind: tuple[str, int], *,
                        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """hypercorn's trio worker loop for one plain-HTTP socket, with the guard's connection caps at
    accept and its request limits around ``app``."""
    from hypercorn.trio.tcp_server import TCPServer
    from hypercorn.trio.worker_context import WorkerContext
    from hypercorn.typing import ASGIFramework, ConnectionState
    from hypercorn.utils import wrap_app

    # our ASGI types are plain mappings; hypercorn's are TypedDicts of the same messages
    wrapped = wrap_app(cast("ASGIFramework", guard.wrap(app)), config.wsgi_max_body_size, "asgi")
    context = WorkerContext(None)
    listeners = await trio.open_tcp_listeners(bind[1], host=bind[0], backlog=config.backlog)
    clients: dict[trio.SocketStream, str] = {}

    async def handle(stream: trio.SocketStream) -> None:
        client = clients.pop(stream)
        try:
            with trio.CancelScope() as scope:
                server = TCPServer(wrapped, config, context, ConnectionState({}), _Ending(stream, scope))  # type: ignore[arg-type]
                await server.run()
        finally:
            guard.gate.release(client)
            await stream.aclose()

    try:
        async with trio.open_nursery() as nursery:
            guarded = [GuardedListener(listener, guard, clients, nursery) for listener in listeners]
            await nursery.start(partial(trio.serve_listeners, handle, guarded, handler_nursery=nursery))
            task_status.started()
    finally:
        with trio.CancelScope(shield=True):
            await context.terminated.set()


async def serve_api(replica: ReplicaPort, faults: FaultRules, host: str, port: int, admin_port: int,
                    *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The public API on ``host:port`` behind the admission limits of limits.py, and the admin API
    (the transport's ``faults``) on ``127.0.0.1:admin_port``."""
    from hypercorn.trio import serve

    guard = ApiGuard(replica.limits, replica.metrics_registry)
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_guarded, build_app(replica), _config(""), guard, (host, port)))
        await nursery.start(serve, build_admin_app(faults, replica.id), _config(f"127.0.0.1:{admin_port}"))
        task_status.started()


def _config(bind: str) -> Config:
    from hypercorn.config import Config

    c = Config()
    c.bind = [bind]
    c.accesslog = None
    c.errorlog = logging.getLogger("hypercorn.error")
    c.graceful_timeout = 1.0
    c.keep_alive_timeout = 30
    return c
