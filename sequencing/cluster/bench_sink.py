"""A sink for ``ordo bench --generator-only``: a minimal HTTP/1.1 server in a process of its own
that takes ``POST /v1/transactions/batch`` bodies, decodes each (one ``msgpack.unpackb``, as a
replica does), answers ``{"accepted": n, "duplicates": 0, "rejected": []}`` and keeps nothing. So
the generator meets a server that answers at once, and its own ceiling shows.

Run: ``python -m sequencing.cluster.bench_sink PORT`` (prints ``ready`` once listening)."""

from __future__ import annotations

import sys

import msgpack
import trio

MAX_HEAD = 16 * 1024


async def _serve_connection(stream: trio.SocketStream) -> None:
    buffer = bytearray()
    try:
        while True:
            while b"\r\n\r\n" not in buffer:
                data = await stream.receive_some(1 << 16)
                if not data or len(buffer) > MAX_HEAD:
                    return
                buffer += data
            end = buffer.index(b"\r\n\r\n") + 4
            head = bytes(buffer[:end]).decode("latin-1").lower()
            del buffer[:end]
            length = 0
            for line in head.split("\r\n"):
                if line.startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            while len(buffer) < length:
                data = await stream.receive_some(max(1 << 16, length - len(buffer)))
                if not data:
                    return
                buffer += data
            body = bytes(buffer[:length])
            del buffer[:length]
            try:
                decoded = msgpack.unpackb(body)
                count = _count(decoded)
                status = b"200 OK"
            except (ValueError, TypeError, KeyError, msgpack.UnpackException):
                count, status = 0, b"400 Bad Request"
            answer = msgpack.packb({"accepted": count, "duplicates": 0, "rejected": []})
            await stream.send_all(b"HTTP/1.1 " + status + b"\r\ncontent-type: application/msgpack\r\n"
                                  b"content-length: " + str(len(answer)).encode() + b"\r\n\r\n" + answer)
    except (trio.BrokenResourceError, trio.ClosedResourceError, ValueError):
        return
    finally:
        await stream.aclose()


def _count(decoded: object) -> int:
    """Transactions in a decoded body of either binary form (docs/PROTOCOL.md section 16)."""
    if not isinstance(decoded, dict):
        return 0
    if "groups" in decoded:
        return sum(len(payloads) for _, payloads in decoded["groups"])
    return len(decoded["transactions"])


async def serve(port: int) -> None:
    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    print("ready", flush=True)
    await trio.serve_listeners(_serve_connection, listeners)


def main(argv: list[str]) -> int:
    try:
        trio.run(serve, int(argv[1]))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
