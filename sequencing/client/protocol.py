"""The API protocol shared by both clients: requests as generators of I/O steps and response
parsing (see :mod:`sequencing.client.client`; proof checks in :mod:`.checks`, evidence in
:mod:`.evidence`, the subscription stream in :mod:`.stream`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

import httpx
import msgpack

from consensus.committee import Committee
from consensus.crypto import Verifier

from ..ids import parse_id32
from ..rollup.proofs import BundleProof, InvalidProof, SliceProof
from ..rollup.transactions import Bundle, Transaction
from .checks import check_slice, parse_bundle_proof
from .evidence import check_record, evidence_records
from .model import (
    CHUNK_BYTES,
    CHUNK_TXS,
    DEFAULT_TIMEOUT,
    STREAM_READ_TIMEOUT,
    BatchResult,
    Busy,
    ClientError,
    CommitTimeout,
    EvidenceRecord,
    MissingCommittee,
    NotFound,
    OrdoError,
    ProofFailed,
    RetryPolicy,
    ServerError,
    T,
    TxLocation,
    TxStatus,
    Unavailable,
)
from .stream import Subscription

__all__ = ["STREAM_TIMEOUT", "BaseClient", "Op", "Request", "Sleep", "body_or_raise"]  # what client.py drives

STREAM_TIMEOUT = httpx.Timeout(DEFAULT_TIMEOUT, read=STREAM_READ_TIMEOUT)
MSGPACK = "application/msgpack"  # the binary batch form (PROTOCOL.md section 16)


def is_msgpack(content_type: str | None) -> bool:
    return content_type is not None and content_type.split(";", 1)[0].strip().lower() in (
        MSGPACK, "application/x-msgpack", "application/vnd.msgpack")

# -- the protocol, shared by both clients -------------------------------------------------------


def _checked(rollup_id: int, payload: bytes) -> bytes:
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
    if not isinstance(rollup_id, int) or isinstance(rollup_id, bool):
        raise TypeError(f"rollup_id must be an int, not {type(rollup_id).__name__}")
    return bytes(payload)


def _tx_json(rollup_id: int, payload: bytes) -> dict[str, Any]:
    return {"rollup_id": rollup_id, "payload": _checked(rollup_id, payload).hex()}


def _tx_wire(rollup_id: int, payload: bytes) -> list[Any]:
    """A transaction entry of the binary batch form: ``[rollup_id, payload]`` (PROTOCOL.md section 16)."""
    return [rollup_id, _checked(rollup_id, payload)]


def _hex_id(value: str, what: str) -> str:
    """The id in canonical (lower-case) hex; InvalidId (a ValueError) unless 64 hex digits."""
    return parse_id32(value, what).hex()


def _chunks(items: list[tuple[int, bytes]]) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    size = 0
    for item in items:
        if chunk and (len(chunk) >= CHUNK_TXS or size + len(item[1]) > CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += len(item[1]) + 16
    if chunk:
        yield chunk


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ServerError(f"HTTP {response.status_code}: response is not JSON: {response.text[:200]!r}") from None


def body_or_raise(response: httpx.Response, *, not_found_ok: bool = False) -> Any:
    """The JSON body of a 2xx response (or of a 404 when ``not_found_ok``), else a typed error."""
    status = response.status_code
    if 200 <= status < 300 or (status == 404 and not_found_ok):
        return _body(response)
    try:
        body = response.json()
    except ValueError:
        body = None
    code, detail = "error", response.text[:200]
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        code, detail = body["error"], str(body.get("detail", ""))
    if status in (429, 503):  # rate limited, or mempool full: both say when to retry
        raise Busy(detail, _retry_after(response))
    if status == 404:
        raise NotFound(status, code, detail)
    if 400 <= status < 500:
        raise ClientError(status, code, detail)
    raise ServerError(f"HTTP {status} {code}: {detail}")


def _obj(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ServerError(f"expected a JSON object, got {body!r:.200}")
    return body


def _tx_status(body: Any) -> TxStatus:
    if not isinstance(body, dict) or "id" not in body or "status" not in body:
        raise ServerError(f"unexpected transaction status {body!r:.200}")
    location = None
    if body["status"] == "committed":
        try:
            location = TxLocation(int(body["height"]), int(body["rollup_id"]), int(body["position"]))
        except (KeyError, TypeError, ValueError):
            raise ServerError(f"unexpected transaction status {body!r:.200}") from None
    return TxStatus(body["id"], body["status"], location)


def _batch_body(response: httpx.Response) -> Any:
    """A batch answer's body: msgpack when the server says so (the binary form), else JSON."""
    if is_msgpack(response.headers.get("content-type")):
        try:
            return msgpack.unpackb(response.content, raw=False)
        except (ValueError, TypeError, msgpack.UnpackException):
            raise ServerError(f"HTTP {response.status_code}: response is not msgpack") from None
    return _body(response)


def _batch_response(response: httpx.Response, sent: Sequence[list[Any]]) -> BatchResult:
    """A batch result; a 503 carries one too (nothing taken) unless it is a plain busy error. The
    ids of the entries taken are computed here from ``sent`` when the answer leaves them out."""
    if response.status_code in (200, 503) and is_msgpack(response.headers.get("content-type")):
        body = _batch_body(response)
    elif response.status_code == 503:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not (isinstance(body, dict) and "accepted" in body):
            body_or_raise(response)
    else:
        body = body_or_raise(response)
    try:
        rejected = [{"index": int(r["index"]), "error": str(r["error"])} for r in body["rejected"]]
        if "ids" in body:
            ids = [i.hex() if isinstance(i, bytes) else i for i in body["ids"]]
        else:
            refused = {r["index"] for r in rejected}
            ids = [None if i in refused else Transaction(*entry).id.hex() for i, entry in enumerate(sent)]
        if len(ids) != len(sent):
            raise ValueError("one id per entry")
        return BatchResult(int(body["accepted"]), int(body["duplicates"]), ids, rejected)
    except (KeyError, TypeError, ValueError):
        raise ServerError(f"unexpected batch result {body!r:.200}") from None


def _merge(first: BatchResult, retried: BatchResult, positions: list[int]) -> BatchResult:
    """``retried`` re-sent the entries at ``positions`` of ``first``."""
    ids = list(first.ids)
    rejected = [r for r in first.rejected if r["index"] not in set(positions)]
    for i, pos in enumerate(positions):
        ids[pos] = retried.ids[i]
    rejected += [{**r, "index": positions[r["index"]]} for r in retried.rejected]
    rejected.sort(key=lambda r: r["index"])
    return BatchResult(first.accepted + retried.accepted, first.duplicates + retried.duplicates, ids, rejected)


def _busy_positions(result: BatchResult) -> list[int]:
    return [r["index"] for r in result.rejected if str(r.get("error", "")).startswith("mempool full")]


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    kwargs: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


# An operation is a generator: it yields requests (and sleeps), is sent each response (or thrown
# Unavailable), and returns its result. OrdoClient and AsyncOrdoClient only drive it.
Op = Generator[Request | Sleep, httpx.Response | None, T]


def _get(path: str, **kwargs: Any) -> Request:
    return Request("GET", path, kwargs)


class BaseClient:
    """The operations, shared by both clients (no I/O here)."""

    def __init__(self, base_url: str, committee: Committee | None, retry: RetryPolicy | None) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = str(base_url).rstrip("/")
        self.committee = committee
        self.retry = retry or RetryPolicy()
        self._verifier = Verifier(committee) if committee is not None else None

    @overload
    def verifier(self, verify: Literal[True]) -> Verifier: ...
    @overload
    def verifier(self, verify: bool) -> Verifier | None: ...

    def verifier(self, verify: bool) -> Verifier | None:
        """The committee's verifier, or None when ``verify`` is false; MissingCommittee if it has none."""
        if not verify:
            return None
        if self._verifier is None:
            raise MissingCommittee("verification needs the committee: pass committee=..., use "
                                   "from_config(), or verify=False")
        return self._verifier

    @classmethod
    def _config(cls, path: str | Path, replica: int) -> tuple[str, Committee]:
        from ..config import load_config
        from ..keys import committee_of
        config = load_config(path)
        return config.api_url(replica), committee_of(config)

    def _explain_op(self, failure: ProofFailed) -> Op[None]:
        """A proof failed to verify: if the replica serves another chain than the committee's,
        raise that (a wrong chain id otherwise shows only as "invalid signature")."""
        if self._verifier is None:
            return
        try:
            theirs = (yield from self._status_op()).get("chain_id")
        except OrdoError:
            return
        ours = self._verifier.chain_id
        if isinstance(theirs, str) and theirs != ours:
            raise ProofFailed(f"chain id mismatch: expected {ours!r} (the committee's), got {theirs!r} "
                              f"from {self.base_url} ({failure})") from None

    def _unavailable(self, exc: Exception) -> Unavailable:
        reason = str(exc) or type(exc).__name__
        return Unavailable(f"cannot reach {self.base_url}: {reason}")

    # -- operations --------------------------------------------------------------------------------

    def _call(self, request: Request, *, not_found_ok: bool = False) -> Op[Any]:
        response = yield request
        assert response is not None
        return body_or_raise(response, not_found_ok=not_found_ok)

    def _submit(self, path: str, body: dict[str, Any]) -> Op[dict[str, Any]]:
        for attempt in range(self.retry.attempts + 1):
            try:
                return _obj((yield from self._call(Request("POST", path, {"json": body}))))
            except Busy as exc:
                if attempt == self.retry.attempts:
                    raise
                yield Sleep(self.retry.delay(attempt, exc.retry_after))
        raise AssertionError("unreachable")

    def _submit_op(self, rollup_id: int, payload: bytes) -> Op[str]:
        body = yield from self._submit("/v1/transactions", _tx_json(rollup_id, payload))
        expected = Transaction(rollup_id, bytes(payload)).id.hex()
        if body.get("id") != expected:
            raise ServerError(f"the replica answered with id {body.get('id')!r}, expected {expected}")
        return expected

    def _submit_many_op(self, items: Iterable[tuple[int, bytes]]) -> Op[BatchResult]:
        results = []
        for chunk in _chunks(list(items)):
            results.append((yield from self._submit_chunk(chunk)))
        return _concat(results)

    def _submit_chunk(self, chunk: list[tuple[int, bytes]]) -> Op[BatchResult]:
        result: BatchResult | None = None
        positions = list(range(len(chunk)))
        for attempt in range(self.retry.attempts + 1):
            sent = [_tx_wire(*chunk[i]) for i in positions]
            body = msgpack.packb({"transactions": sent, "ids": False}, use_bin_type=True)
            response = yield Request("POST", "/v1/transactions/batch",
                                     {"content": body, "headers": {"content-type": MSGPACK}})
            assert response is not None
            got = _batch_response(response, sent)
            result = got if result is None else _merge(result, got, positions)
            positions = _busy_positions(result)
            if not positions or attempt == self.retry.attempts:
                break
            yield Sleep(self.retry.delay(attempt, _retry_after(response)))
        assert result is not None
        if result.accepted == 0 and result.duplicates == 0 and len(positions) == len(chunk):
            raise Busy("mempool full", 1.0)
        return result

    def _submit_bundle_op(self, txs: Sequence[tuple[int, bytes]]) -> Op[str]:
        body = yield from self._submit("/v1/bundles", {"transactions": [_tx_json(r, p) for r, p in txs]})
        expected = Bundle(tuple(Transaction(r, bytes(p)) for r, p in txs)).id.hex()
        if body.get("id") != expected:
            raise ServerError(f"the replica answered with bundle id {body.get('id')!r}, expected {expected}")
        return expected

    def _status_op(self) -> Op[dict[str, Any]]:
        return _obj((yield from self._call(_get("/status"))))

    def _rollups_op(self) -> Op[dict[int, dict[str, Any]]]:
        return {int(k): v for k, v in _obj((yield from self._call(_get("/v1/rollups")))).items()}

    def _block_op(self, height: int) -> Op[dict[str, Any]]:
        return _obj((yield from self._call(_get(f"/v1/blocks/{int(height)}"))))

    def _tx_status_op(self, tx_id: str) -> Op[TxStatus]:
        request = _get(f"/v1/transactions/{_hex_id(tx_id, 'tx_id')}")
        return _tx_status((yield from self._call(request, not_found_ok=True)))

    def _wait_op(self, what: str, timeout: float, poll: Callable[[], Op[T | None]]) -> Op[T]:
        """Repeat ``poll`` (riding out unreachable or busy moments) until it returns a result."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        last: OrdoError | None = None
        while True:
            try:
                result = yield from poll()
                if result is not None:
                    return result
            except (Unavailable, Busy) as exc:
                last = exc
            if time.monotonic() + delay > deadline:
                raise CommitTimeout(f"{what} not committed within {timeout:g}s"
                                    + (f" (last error: {last})" if last else ""))
            yield Sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _wait_for_commit_op(self, tx_id: str, timeout: float) -> Op[TxLocation]:
        def poll() -> Op[TxLocation | None]:
            return (yield from self._tx_status_op(tx_id)).location

        return (yield from self._wait_op(f"transaction {tx_id}", timeout, poll))

    def _bundle_proof_op(self, bundle_id: str, verify: bool) -> Op[BundleProof | None]:
        verifier = self.verifier(verify)
        bundle_id = _hex_id(bundle_id, "bundle_id")
        body = _obj((yield from self._call(_get(f"/v1/bundles/{bundle_id}"))))
        if body.get("status") != "committed":
            return None
        try:
            return parse_bundle_proof(body, bundle_id, verifier)
        except ProofFailed as exc:
            yield from self._explain_op(exc)
            raise

    def _wait_for_bundle_op(self, bundle_id: str, timeout: float, verify: bool) -> Op[BundleProof]:
        return (yield from self._wait_op(f"bundle {bundle_id}", timeout,
                                         lambda: self._bundle_proof_op(bundle_id, verify)))

    def _slice_op(self, rollup_id: int, height: int, verify: bool) -> Op[SliceProof]:
        verifier = self.verifier(verify)
        body = _obj((yield from self._call(_get(f"/v1/rollups/{int(rollup_id)}/slices/{int(height)}"))))
        try:
            proof = SliceProof.from_json(body)
        except InvalidProof as exc:
            raise ProofFailed(str(exc)) from None
        try:
            check_slice(proof, rollup_id, height, verifier)
        except ProofFailed as exc:
            yield from self._explain_op(exc)
            raise
        return proof

    def _evidence_op(self, offender: int | None, verify: bool) -> Op[list[EvidenceRecord]]:
        verifier = self.verifier(verify)
        params = {} if offender is None else {"offender": str(offender)}
        records = evidence_records((yield from self._call(_get("/v1/evidence", params=params))))
        if verifier is None:
            return records
        try:
            for record in records:
                check_record(record, verifier)
        except ProofFailed as exc:
            yield from self._explain_op(exc)
            raise
        return records

    def _metrics_op(self) -> Op[str]:
        response = yield _get("/metrics")
        assert response is not None
        if response.status_code != 200:
            body_or_raise(response)
        return response.text

    def _subscription(self, rollup_id: int, from_height: int, verify: bool) -> Subscription:
        return Subscription(rollup_id, from_height, self.verifier(verify))

    def _reconnect_delay(self, problem: Exception, down_since: float, attempt: int, reconnect_timeout: float,
                         on_reconnect: Callable[[Exception], None] | None) -> float:
        """Raise Unavailable once the stream has been down too long; else how long to wait."""
        if time.monotonic() - down_since > reconnect_timeout:
            raise self._unavailable(problem)
        if on_reconnect is not None:
            on_reconnect(problem)
        return min(2.0, 0.1 * 2.0**attempt)


def _concat(results: list[BatchResult]) -> BatchResult:
    ids: list[str | None] = []
    rejected: list[dict[str, Any]] = []
    for r in results:
        rejected += [{**x, "index": x["index"] + len(ids)} for x in r.rejected]
        ids += r.ids
    return BatchResult(sum(r.accepted for r in results), sum(r.duplicates for r in results), ids, rejected)

