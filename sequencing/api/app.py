"""The replica's HTTP JSON API (Starlette, served on trio by hypercorn) and its admin API.

Public (``api_port`` on the replica's host): submission, status, blocks, rollup slices with
proofs, a server-sent-events subscription to one rollup's sub-log, evidence, Prometheus metrics
and the OpenAPI document. Admin (``admin_port``, always bound to 127.0.0.1): the transport's fault
rules, for fault-injection scripts. Errors are JSON ``{"error": ..., "detail": ...}`` with a 4xx
status that says whose fault it is; a full mempool is 503 with ``Retry-After``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..replica.mempool import AlreadySubmitted, MempoolFull
from ..rollup.transactions import Bundle, InvalidTransaction
from .limits import ApiGuard
from .openapi import openapi_document
from .serve import serve_guarded
from .views import (
    ApiError,
    block_view,
    bundle_proof,
    is_hex,
    parse_batch,
    parse_item,
    parse_items,
    slice_proof,
)

if TYPE_CHECKING:
    from ..replica.node import Node

log = logging.getLogger(__name__)

MAX_BODY = 32 * 1024 * 1024
SUBSCRIPTION_KEEPALIVE = 15.0
SKIP_EMPTY_VALUES = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def error(status: int, code: str, detail: str, headers: dict[str, str] | None = None,
          extra: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **(extra or {})}, status_code=status, headers=headers)


def handle_errors(fn: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def wrapper(request: Request) -> Response:
        try:
            return await fn(request)
        except ApiError as exc:
            return error(exc.status, exc.code, exc.detail, exc.headers, exc.extra)
        except AlreadySubmitted as exc:
            return error(409, "conflict", str(exc))
        except InvalidTransaction as exc:
            return error(400, "invalid_transaction", str(exc))
        except MempoolFull as exc:
            return error(503, "busy", str(exc), {"Retry-After": "1"})
        except Exception:  # one request's unexpected failure is logged and answered, never fatal
            log.exception("API %s %s failed", request.method, request.url.path)
            return error(500, "internal_error", "the replica failed to handle this request; see its log")
    wrapper.__name__ = fn.__name__
    return wrapper


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


async def read_json(request: Request) -> Any:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError(413, "too_large", f"request body over {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, "too_large", f"request body over {MAX_BODY} bytes")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks), parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, and ints over 4300 digits
        raise ApiError(400, "invalid_json", f"body is not JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "body is nested too deeply") from None


def parse_int(raw: str, name: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    """A decimal integer in [lo, hi]: ASCII digits only (no sign, spaces or underscores); an
    integral decimal such as ``5047.0`` counts, as JSON Schema's ``integer`` says."""
    whole, dot, fraction = raw.partition(".")
    if dot and fraction and fraction.strip("0") == "":
        raw = whole
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        raise ApiError(400, "invalid_parameter", f"{name} must be a non-negative integer, got {raw[:40]!r}")
    value = int(raw)
    if not lo <= value <= hi:
        raise ApiError(400, "invalid_parameter", f"{name} {value} outside [{lo}, {hi}]")
    return value


def path_int(request: Request, name: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    return parse_int(request.path_params[name], name, lo, hi)


def query_int(request: Request, name: str, default: int, lo: int = 0, hi: int = 2**63 - 1) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    return parse_int(raw, name, lo, hi)


def hex_id(request: Request, name: str) -> bytes:
    raw = request.path_params[name]
    if name == "tx_id" and raw == "batch":  # GET /v1/transactions/batch is a method error, not a bad id
        raise ApiError(405, "method_not_allowed", f"{request.method} not allowed on {request.url.path}",
                       headers={"Allow": "POST"})
    if len(raw) != 64 or not is_hex(raw):
        raise ApiError(400, "invalid_parameter", f"{name} must be 64 hex digits (32 bytes), got {raw[:80]!r}")
    return bytes.fromhex(raw)


def build_app(node: Node) -> Starlette:
    limits = node.limits

    async def storage_call(fn: Callable[..., Any], *args: Any) -> Any:
        if node.storage is None:
            raise ApiError(503, "starting", "the replica is still starting")
        return await node.storage_call(fn, *args)

    async def durable(arrival: int) -> None:
        """Acknowledge only what a crash of this replica can no longer lose: wait until the
        submission is in a batch on disk."""
        if arrival and not await node.wait_durable(arrival):
            raise ApiError(503, "busy", "accepted but not yet batched to disk; check its status or retry")

    @handle_errors
    async def status(request: Request) -> Response:
        return JSONResponse(node.status())

    @handle_errors
    async def submit_tx(request: Request) -> Response:
        tx = parse_item(await read_json(request), limits)
        added = node.submit(tx)
        await durable(node.mempool.arrivals if added else 0)
        return JSONResponse({"id": tx.id.hex(), "status": "pending" if added else "duplicate"},
                            status_code=202 if added else 200)

    @handle_errors
    async def submit_bundle(request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict) or set(body) != {"transactions"}:
            raise ApiError(400, "invalid_bundle", 'expected {"transactions": [...]} and no other field')
        bundle = Bundle(tuple(parse_items(body["transactions"], limits, max_items=limits.max_bundle_txs)))
        added = node.submit(bundle)
        await durable(node.mempool.arrivals if added else 0)
        return JSONResponse(
            {"id": bundle.id.hex(), "tx_ids": [t.id.hex() for t in bundle.txs],
             "status": "pending" if added else "duplicate"},
            status_code=202 if added else 200,
        )

    @handle_errors
    async def submit_many(request: Request) -> Response:
        entries = parse_batch(await read_json(request), limits)
        ids: list[str | None] = []
        rejected: list[dict[str, Any]] = []
        duplicates = 0
        busy = False
        for index, tx in enumerate(entries):
            if busy or isinstance(tx, str):
                rejected.append({"index": index, "error": tx if isinstance(tx, str) else "mempool full; retry later"})
                ids.append(None)
                continue
            try:
                if not node.submit(tx):
                    duplicates += 1
                ids.append(tx.id.hex())
            except (ApiError, InvalidTransaction) as exc:
                rejected.append({"index": index, "error": str(getattr(exc, "detail", exc))})
                ids.append(None)
            except MempoolFull as exc:
                busy = True
                rejected.append({"index": index, "error": str(exc)})
                ids.append(None)
        accepted = sum(1 for i in ids if i is not None) - duplicates
        await durable(node.mempool.arrivals if accepted else 0)
        nothing_taken = busy and accepted == 0 and duplicates == 0
        return JSONResponse(
            {"accepted": accepted, "duplicates": duplicates, "ids": ids, "rejected": rejected},
            status_code=503 if nothing_taken else 200,
            headers={"Retry-After": "1"} if busy else None,
        )

    @handle_errors
    async def tx_status(request: Request) -> Response:
        tx_id = hex_id(request, "tx_id")
        location = await storage_call(node.storage.tx_location, tx_id)  # type: ignore[union-attr]
        if location is not None:
            height, rollup_id, position = location
            return JSONResponse({"id": tx_id.hex(), "status": "committed", "height": height,
                                 "rollup_id": rollup_id, "position": position})
        # the mempool remembers every recent item id, bundles' too: a committed bundle is not pending
        bundle = await storage_call(node.storage.bundle_location, tx_id)  # type: ignore[union-attr]
        if node.is_pending(tx_id) and bundle is None:
            return JSONResponse({"id": tx_id.hex(), "status": "pending"})
        detail = ("that is a committed bundle's id: see /v1/bundles/{id}" if bundle is not None
                  else "no such transaction is committed or pending at this replica")
        return JSONResponse({"id": tx_id.hex(), "status": "unknown", "error": "not_found", "detail": detail},
                            status_code=404)

    @handle_errors
    async def bundle_status(request: Request) -> Response:
        bundle_id = hex_id(request, "bundle_id")
        proof = await bundle_proof(node, bundle_id)
        if proof is None:
            tx = await storage_call(node.storage.tx_location, bundle_id)  # type: ignore[union-attr]
            if node.is_pending(bundle_id) and tx is None:
                return JSONResponse({"id": bundle_id.hex(), "status": "pending"})
            detail = ("that is a committed transaction's id: see /v1/transactions/{id}" if tx is not None
                      else "no such bundle is committed or pending at this replica")
            return JSONResponse({"id": bundle_id.hex(), "status": "unknown", "error": "not_found",
                                 "detail": detail}, status_code=404)
        return JSONResponse({"id": bundle_id.hex(), "status": "committed", "height": proof.height,
                             "proof": proof.to_json()})

    @handle_errors
    async def block(request: Request) -> Response:
        height = path_int(request, "height", lo=1)
        view = await block_view(node, height)
        if view is None:
            raise ApiError(404, "not_found", f"no committed block at height {height} "
                           f"(committed height is {node.durable_height})")
        return JSONResponse(view)

    @handle_errors
    async def rollup_slice(request: Request) -> Response:
        rollup_id = path_int(request, "rollup_id", hi=limits.max_rollup_id)
        height = path_int(request, "height", lo=1)
        proof = await slice_proof(node, rollup_id, height)
        if proof is None:
            raise ApiError(404, "not_found", f"height {height} is not committed yet "
                           f"(committed height is {node.durable_height})")
        return JSONResponse(proof.to_json())

    @handle_errors
    async def rollups(request: Request) -> Response:
        summary = await storage_call(node.storage.rollup_summary)  # type: ignore[union-attr]
        return JSONResponse({
            str(rid): {"txs": count, "digest": digest.hex()} for rid, (count, digest) in sorted(summary.items())
        })

    @handle_errors
    async def subscribe(request: Request) -> Response:
        rollup_id = path_int(request, "rollup_id", hi=limits.max_rollup_id)
        start = query_int(request, "from", default=max(1, node.durable_height), lo=1)
        if "last-event-id" in request.headers:
            start = parse_int(request.headers["last-event-id"], "Last-Event-ID", hi=2**62) + 1
        flag = request.query_params.get("skip_empty", "false").lower()
        if flag not in SKIP_EMPTY_VALUES:
            raise ApiError(400, "invalid_parameter", f"skip_empty must be one of {', '.join(SKIP_EMPTY_VALUES)}")
        skip_empty = SKIP_EMPTY_VALUES[flag]
        return StreamingResponse(_stream(node, rollup_id, start, skip_empty),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @handle_errors
    async def evidence(request: Request) -> Response:
        offender = request.query_params.get("offender")
        offender_id = None if offender is None else query_int(request, "offender", 0, 0, 1023)
        items = await storage_call(partial(node.storage.evidence_list, offender=offender_id))  # type: ignore[union-attr]
        return JSONResponse([
            {"id": e.id.hex(), "kind": e.kind.name.lower(), "offender": e.offender, "round": e.round,
             "committed_height": height, "evidence": e.encode().hex()}
            for e, height in items
        ])

    async def metrics(request: Request) -> Response:
        return Response(node.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    document = openapi_document(limits)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    routes = [
        Route("/status", status),
        Route("/v1/transactions", submit_tx, methods=["POST"]),
        Route("/v1/transactions/batch", submit_many, methods=["POST"]),
        Route("/v1/transactions/{tx_id}", tx_status),
        Route("/v1/bundles", submit_bundle, methods=["POST"]),
        Route("/v1/bundles/{bundle_id}", bundle_status),
        Route("/v1/blocks/{height}", block),
        Route("/v1/rollups", rollups),
        Route("/v1/rollups/{rollup_id}/slices/{height}", rollup_slice),
        Route("/v1/rollups/{rollup_id}/subscribe", subscribe),
        Route("/v1/evidence", evidence),
        Route("/metrics", metrics),
        Route("/openapi.json", openapi),
    ]
    return Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_allowed})


async def _not_found(request: Request, exc: Exception) -> Response:
    return error(404, "not_found", f"no route {request.method} {request.url.path}")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    allow = getattr(exc, "headers", None) or {}
    return error(405, "method_not_allowed", f"{request.method} not allowed on {request.url.path}",
                 {"Allow": allow["Allow"]} if "Allow" in allow else None)


async def _stream(node: Node, rollup_id: int, start: int, skip_empty: bool) -> AsyncIterator[str]:
    """One SSE event per committed height from ``start`` on (id = height, data = slice proof):
    resuming with Last-Event-ID continues at the next height, so nothing is skipped or repeated."""
    height = start
    yield f"retry: 1000\n: subscribed to rollup {rollup_id} from height {start}\n\n"
    while True:
        while height <= node.durable_height:
            proof = await slice_proof(node, rollup_id, height)
            if proof is None:
                break
            if proof.transactions or not skip_empty:
                yield f"id: {height}\nevent: slice\ndata: {json.dumps(proof.to_json())}\n\n"
            height += 1
        with trio.move_on_after(SUBSCRIPTION_KEEPALIVE) as scope:
            await node.committed_changed.wait()
        if scope.cancelled_caught:
            yield ": keep-alive\n\n"


def build_admin_app(node: Node) -> Starlette:
    async def get_faults(request: Request) -> Response:
        return JSONResponse(node.transport.faults.snapshot())

    async def put_faults(request: Request) -> Response:
        try:
            body = await read_json(request)
            if not isinstance(body, dict):
                raise ApiError(400, "invalid_faults", "expected an object keyed by peer id")
            if request.method == "PUT":
                node.transport.faults.replace_all(body)
            else:
                node.transport.faults.update(body)
        except ApiError as exc:
            return error(exc.status, exc.code, exc.detail)
        except (ValueError, TypeError) as exc:
            return error(400, "invalid_faults", str(exc))
        log.warning("replica %d: fault rules now %s", node.id, node.transport.faults.snapshot())
        return JSONResponse(node.transport.faults.snapshot())

    async def clear_faults(request: Request) -> Response:
        node.transport.faults.clear()
        return JSONResponse(node.transport.faults.snapshot())

    return Starlette(routes=[
        Route("/admin/faults", get_faults, methods=["GET"]),
        Route("/admin/faults", put_faults, methods=["PUT", "PATCH"]),
        Route("/admin/faults", clear_faults, methods=["DELETE"]),
    ], exception_handlers={404: _not_found, 405: _not_allowed})


async def serve_api(node: Node, host: str, port: int, admin_port: int,
                    *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The public API behind the admission limits of ``api/limits.py``, and the admin API."""
    from hypercorn.config import Config
    from hypercorn.trio import serve

    def config(bind: str) -> Config:
        c = Config()
        c.bind = [bind]
        c.accesslog = None
        c.errorlog = logging.getLogger("hypercorn.error")
        c.graceful_timeout = 1.0
        c.keep_alive_timeout = 30
        return c

    guard = ApiGuard(node.limits, node.metrics.registry)
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_guarded, build_app(node), config(""), guard, (host, port)))
        await nursery.start(serve, build_admin_app(node), config(f"127.0.0.1:{admin_port}"))
        task_status.started()
