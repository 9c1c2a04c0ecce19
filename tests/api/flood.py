"""A request flood (malformed JSON, or valid cheap requests) over many keep-alive connections (raw
sockets, so the flooder itself stays cheap), and the cluster's block rate measured from a replica's /status."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import httpx
import trio

MALFORMED = (b"POST /v1/transactions HTTP/1.1\r\nHost: replica\r\nContent-Type: application/json\r\n"
             b"Content-Length: 9\r\n\r\n{not json")
STATUS = b"GET /status HTTP/1.1\r\nHost: replica\r\n\r\n"  # valid and cheap: volume alone


@dataclass
class FloodStats:
    requests: int = 0
    connections: int = 0
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)


async def _read_response(stream: trio.SocketStream, buffer: bytearray) -> int | None:
    """One HTTP/1.1 response (Content-Length framed): its status, or None at EOF."""
    while b"\r\n\r\n" not in buffer:
        data = await stream.receive_some(65536)
        if not data:
            return None
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        data = await stream.receive_some(65536)
        if not data:
            return None
        rest += data
    buffer[:] = rest[length:]
    return status


async def _flood_connection(host: str, port: int, request: bytes, stats: FloodStats) -> None:
    while True:
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError:
            await trio.sleep(0.05)
            continue
        stats.connections += 1
        buffer = bytearray()
        try:
            async with stream:
                while True:
                    await stream.send_all(request)
                    status = await _read_response(stream, buffer)
                    if status is None:
                        break
                    stats.requests += 1
                    stats.statuses[status] += 1
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ValueError, IndexError):
            pass
        await trio.sleep(0.05)  # a closed connection is reopened, as a persistent attacker would


async def flood(host: str, port: int, connections: int, seconds: float, request: bytes = MALFORMED) -> FloodStats:
    stats = FloodStats()
    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:
            for _ in range(connections):
                nursery.start_soon(_flood_connection, host, port, request, stats)
    return stats


async def committed_height(http: httpx.AsyncClient, url: str) -> int:
    return int((await http.get(f"{url}/status", timeout=5)).json()["committed_height"])


async def block_rate(http: httpx.AsyncClient, url: str, seconds: float) -> float:
    """Blocks per second committed at the replica behind ``url`` over ``seconds``."""
    start, begin = await committed_height(http, url), trio.current_time()
    await trio.sleep(seconds)  # the measurement window, not synchronisation
    end, finish = await committed_height(http, url), trio.current_time()
    return (end - start) / (finish - begin)
