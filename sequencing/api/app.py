"""The replica's public HTTP JSON API (Starlette, served on trio by hypercorn; see serve.py).

Submission, status, blocks, rollup slices with proofs, a server-sent-events subscription to one
rollup's sub-log, evidence, Prometheus metrics and the OpenAPI document, over a
:class:`~sequencing.api.port.ReplicaPort` (never the node itself). Errors are JSON
``{"error": ..., "detail": ...}`` with a 4xx status that says whose fault it is; a full mempool is
503 with ``Retry-After``. The loopback admin API is admin.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import trio
from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from consensus.messages import Evidence

from ..rollup.transactions import Bundle, Item
from .binary import MSGPACK, PlainTransactions, encode_result, is_msgpack, parse_binary_batch
from .dashboard import Dashboard
from .http_util import (
    handle_errors,
    hex_id,
    not_allowed,
    not_found,
    parse_id_param,
    parse_int,
    path_int,
    query_int,
    read_body,
    read_json,
)
from .openapi import openapi_document
from .port import ReplicaPort
from .reads import LedgerReads
from .views import ApiError, parse_batch, parse_item, parse_items

SUBSCRIPTION_KEEPALIVE = 15.0
SKIP_EMPTY_VALUES = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def build_app(replica: ReplicaPort) -> Starlette:
    api = PublicApi(replica)
    return Starlette(routes=api.routes(), exception_handlers={404: not_found, 405: not_allowed})


def evidence_json(e: Evidence, committed_height: int | None) -> dict[str, Any]:
    return {"id": e.id.hex(), "kind": e.kind.name.lower(), "offender": e.offender, "round": e.round,
            "committed_height": committed_height, "evidence": e.encode().hex()}


@dataclass(frozen=True, slots=True)
class BatchAnswer:
    """What a bulk submission answers: counts, per entry its id or None (refused; None: not asked
    for), the refusals, and whether the mempool filled."""

    accepted: int
    duplicates: int
    ids: list[bytes | None] | None
    rejected: list[dict[str, Any]]
    busy: bool

    @property
    def nothing_taken(self) -> bool:
        return self.busy and self.accepted == 0 and self.duplicates == 0


class PublicApi:
    """The public API's handlers over one replica."""

    def __init__(self, replica: ReplicaPort) -> None:
        self.replica = replica
        self.limits = replica.limits
        self.ledger = LedgerReads(replica)
        self.document = openapi_document(self.limits)
        self.dashboard = Dashboard(replica, self.ledger)

    def routes(self) -> list[Route]:
        h = handle_errors
        return [
            Route("/status", h(self.status)),
            Route("/v1/transactions", h(self.submit_tx), methods=["POST"]),
            Route("/v1/transactions/batch", h(self.submit_many), methods=["POST"]),
            Route("/v1/transactions/{tx_id}", h(self.tx_status)),
            Route("/v1/bundles", h(self.submit_bundle), methods=["POST"]),
            Route("/v1/bundles/{bundle_id}", h(self.bundle_status)),
            Route("/v1/blocks/{height}", h(self.block)),
            Route("/v1/rollups", h(self.rollups)),
            Route("/v1/rollups/{rollup_id}/slices/{height}", h(self.rollup_slice)),
            Route("/v1/rollups/{rollup_id}/subscribe", h(self.subscribe)),
            Route("/v1/evidence", h(self.evidence)),
            Route("/metrics", self.metrics),
            Route("/openapi.json", self.openapi),
            *self.dashboard.routes(),
        ]

    async def durable(self, accepted: bool) -> None:
        """Acknowledge only what a crash of this replica can no longer lose: wait until the newest
        accepted submission is in a batch on disk."""
        if accepted and not await self.replica.wait_durable(self.replica.last_arrival):
            raise ApiError(503, "busy", "accepted but not yet batched to disk; check its status or retry")

    # -- submission ----------------------------------------------------------------------------

    async def submit_tx(self, request: Request) -> Response:
        tx = parse_item(await read_json(request), self.limits)
        added = self.replica.submit(tx)
        await self.durable(added)
        return JSONResponse({"id": tx.id.hex(), "status": "pending" if added else "duplicate"},
                            status_code=202 if added else 200)

    async def submit_bundle(self, request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict) or set(body) != {"transactions"}:
            raise ApiError(400, "invalid_bundle", 'expected {"transactions": [...]} and no other field')
        txs = parse_items(body["transactions"], self.limits, max_items=self.limits.max_bundle_txs)
        bundle = Bundle(tuple(txs))
        added = self.replica.submit(bundle)
        await self.durable(added)
        return JSONResponse(
            {"id": bundle.id.hex(), "tx_ids": [t.id.hex() for t in bundle.txs],
             "status": "pending" if added else "duplicate"},
            status_code=202 if added else 200,
        )

    async def submit_many(self, request: Request) -> Response:
        """The bulk path: JSON (hex payloads) or, with ``Content-Type: application/msgpack``, the
        binary form of api/binary.py, answered in msgpack."""
        if is_msgpack(request.headers.get("content-type")):
            batch = parse_binary_batch(await read_body(request), self.limits)
            if batch.plain is not None:
                answer = await self._submit_plain(batch.plain, want_ids=batch.want_ids)
            else:
                answer = await self._submit_entries(batch.items)
            ids = answer.ids if batch.want_ids else None
            return Response(encode_result(answer.accepted, answer.duplicates, ids, answer.rejected),
                            status_code=503 if answer.nothing_taken else 200,
                            media_type=MSGPACK, headers={"Retry-After": "1"} if answer.busy else None)
        answer = await self._submit_entries(parse_batch(await read_json(request), self.limits))
        return JSONResponse(
            {"accepted": answer.accepted, "duplicates": answer.duplicates,
             "ids": [None if i is None else i.hex() for i in answer.ids or ()], "rejected": answer.rejected},
            status_code=503 if answer.nothing_taken else 200,
            headers={"Retry-After": "1"} if answer.busy else None,
        )

    async def _submit_entries(self, entries: Sequence[Item | str]) -> BatchAnswer:
        """Queue each entry (a string: why it is refused); answered per entry, once durable."""
        items = [e for e in entries if not isinstance(e, str)]
        result = self.replica.submit_many(items)  # one call: metrics and gauges once per request
        outcomes = iter(result.outcomes)
        ids: list[bytes | None] = []
        rejected: list[dict[str, Any]] = []
        for index, entry in enumerate(entries):
            outcome = entry if isinstance(entry, str) else next(outcomes)
            if isinstance(outcome, str) or isinstance(entry, str):
                rejected.append({"index": index, "error": str(outcome)})
                ids.append(None)
                continue
            ids.append(entry.id)
        await self.durable(result.accepted > 0)
        return BatchAnswer(result.accepted, result.outcomes.count(False), ids, rejected, result.busy)

    async def _submit_plain(self, plain: PlainTransactions, *, want_ids: bool) -> BatchAnswer:
        """:meth:`_submit_entries` for a request of plain transactions (runs: work per rollup, and
        per transaction only for the ids asked for and the refusals of a full mempool)."""
        result = self.replica.submit_runs(plain.runs)
        ids: list[bytes | None] | None = list(plain.ids()) if want_ids else None
        rejected: list[dict[str, Any]] = []
        if result.busy:  # only then is an outcome a refusal
            for index, outcome in enumerate(plain.in_request_order(result.outcomes)):
                if isinstance(outcome, str):
                    rejected.append({"index": index, "error": outcome})
                    if ids is not None:
                        ids[index] = None
        await self.durable(result.accepted > 0)
        return BatchAnswer(result.accepted, result.outcomes.count(False), ids, rejected, result.busy)

    # -- reads ---------------------------------------------------------------------------------

    async def status(self, request: Request) -> Response:
        return JSONResponse(self.replica.status())

    async def tx_status(self, request: Request) -> Response:
        tx_id = hex_id(request, "tx_id")
        location = await self.ledger.read(lambda ledger: ledger.tx_location(tx_id))
        if location is not None:
            height, rollup_id, position = location
            return JSONResponse({"id": tx_id.hex(), "status": "committed", "height": height,
                                 "rollup_id": rollup_id, "position": position})
        # the mempool remembers every recent item id, bundles' too: a committed bundle is not pending
        bundle = await self.ledger.read(lambda ledger: ledger.bundle_location(tx_id))
        if self.replica.is_pending(tx_id) and bundle is None:
            return JSONResponse({"id": tx_id.hex(), "status": "pending"})
        detail = ("that is a committed bundle's id: see /v1/bundles/{id}" if bundle is not None
                  else "no such transaction is committed or pending at this replica")
        return JSONResponse({"id": tx_id.hex(), "status": "unknown", "error": "not_found", "detail": detail},
                            status_code=404)

    async def bundle_status(self, request: Request) -> Response:
        bundle_id = hex_id(request, "bundle_id")
        proof = await self.ledger.bundle_proof(bundle_id)
        if proof is None:
            tx = await self.ledger.read(lambda ledger: ledger.tx_location(bundle_id))
            if self.replica.is_pending(bundle_id) and tx is None:
                return JSONResponse({"id": bundle_id.hex(), "status": "pending"})
            detail = ("that is a committed transaction's id: see /v1/transactions/{id}" if tx is not None
                      else "no such bundle is committed or pending at this replica")
            return JSONResponse({"id": bundle_id.hex(), "status": "unknown", "error": "not_found",
                                 "detail": detail}, status_code=404)
        return JSONResponse({"id": bundle_id.hex(), "status": "committed", "height": proof.height,
                             "proof": proof.to_json()})

    async def block(self, request: Request) -> Response:
        height = path_int(request, "height", lo=1)
        view = await self.ledger.block_view(height)
        if view is None:
            raise ApiError(404, "not_found", f"no committed block at height {height} "
                           f"(committed height is {self.replica.durable_height})")
        return JSONResponse(view)

    async def rollup_slice(self, request: Request) -> Response:
        rollup_id = path_int(request, "rollup_id", hi=self.limits.max_rollup_id)
        height = path_int(request, "height", lo=1)
        proof = await self.ledger.slice_proof(rollup_id, height)
        if proof is None:
            raise ApiError(404, "not_found", f"height {height} is not committed yet "
                           f"(committed height is {self.replica.durable_height})")
        return JSONResponse(proof.to_json())

    async def rollups(self, request: Request) -> Response:
        summary = await self.ledger.read(lambda ledger: ledger.rollup_summary())
        return JSONResponse({
            str(rid): {"txs": count, "digest": digest.hex()} for rid, (count, digest) in sorted(summary.items())
        })

    async def evidence(self, request: Request) -> Response:
        offender = request.query_params.get("offender")
        offender_id = None if offender is None else query_int(request, "offender", 0, 0, 1023)
        wanted = request.query_params.get("id")  # one record (the dashboard links it): still a list
        evidence_id = None if wanted is None else parse_id_param(wanted, "id")
        items = await self.ledger.read(lambda ledger: ledger.evidence_list(offender=offender_id))
        return JSONResponse([evidence_json(e, height) for e, height in items
                             if evidence_id is None or e.id == evidence_id])

    async def metrics(self, request: Request) -> Response:
        return Response(generate_latest(self.replica.metrics_registry),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(self.document)

    # -- subscription --------------------------------------------------------------------------

    async def subscribe(self, request: Request) -> Response:
        rollup_id = path_int(request, "rollup_id", hi=self.limits.max_rollup_id)
        start = query_int(request, "from", default=max(1, self.replica.durable_height), lo=1)
        if "last-event-id" in request.headers:
            start = parse_int(request.headers["last-event-id"], "Last-Event-ID", hi=2**62) + 1
        flag = request.query_params.get("skip_empty", "false").lower()
        if flag not in SKIP_EMPTY_VALUES:
            raise ApiError(400, "invalid_parameter", f"skip_empty must be one of {', '.join(SKIP_EMPTY_VALUES)}")
        skip_empty = SKIP_EMPTY_VALUES[flag]
        return StreamingResponse(self._stream(rollup_id, start, skip_empty),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def _stream(self, rollup_id: int, start: int, skip_empty: bool) -> AsyncIterator[str]:
        """One SSE event per committed height from ``start`` on (id = height, data = slice proof):
        resuming with Last-Event-ID continues at the next height, so nothing is skipped or repeated."""
        height = start
        yield f"retry: 1000\n: subscribed to rollup {rollup_id} from height {start}\n\n"
        while True:
            while height <= self.replica.durable_height:
                event = await self.ledger.slice_event(rollup_id, height)  # one proof for every subscriber
                if event is None:
                    break
                if event[0] or not skip_empty:
                    yield event[1]
                height += 1
            with trio.move_on_after(SUBSCRIPTION_KEEPALIVE) as scope:
                await self.replica.wait_committed()
            if scope.cancelled_caught:
                yield ": keep-alive\n\n"
