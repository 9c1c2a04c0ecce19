"""A Python client for ordo's HTTP API, for rollup teams: :class:`OrdoClient` (sync, httpx.Client)
and :class:`AsyncOrdoClient` (async, httpx.AsyncClient; runs under trio or asyncio).

Every proof the client hands back has been verified against the committee's public keys (unless a
call says ``verify=False``), so a rollup needs to trust no replica::

    client = OrdoClient.from_config("cluster.toml", replica=0)     # URL + committee from the file
    tx_id = client.submit(7, b"hello")
    where = client.wait_for_commit(tx_id, timeout=30)              # TxLocation(height, rollup_id, position)
    for proof in client.subscribe(7, from_height=1):               # verified SliceProofs, in height order
        ...

Failures are typed, never raw httpx exceptions: :class:`ClientError` (4xx: the server's ``error``
code and ``detail``; :class:`NotFound` for 404), :class:`Busy` (503, with ``retry_after``; busy
submissions are first retried with backoff), :class:`ProofFailed` (a proof that does not verify,
or a response that contradicts the request), :class:`SubscriptionGap` (a stream skipped or
repeated a height), :class:`Unavailable` (cannot reach the replica), :class:`CommitTimeout`
and :class:`ServerError` (any other 5xx or an unreadable response). All derive from
:class:`OrdoError`.

The subscription resumes by itself after a dropped connection or a restarted replica: it
reconnects with ``Last-Event-ID`` (the last height it delivered), so the caller sees every height
once, in order; a stream that jumps or repeats a height raises :class:`SubscriptionGap`.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx

from consensus.committee import Committee
from consensus.crypto import Verifier
from consensus.errors import ConsensusError
from consensus.messages import Evidence

from .proofs import BundleProof, InvalidProof, SliceProof
from .transactions import Bundle, Transaction

T = TypeVar("T")
DEFAULT_TIMEOUT = 10.0
STREAM_READ_TIMEOUT = 45.0  # the server sends a keep-alive comment every 15 s
CHUNK_TXS = 1000
CHUNK_BYTES = 8 * 1024 * 1024


# -- errors -------------------------------------------------------------------------------------


class OrdoError(Exception):
    """Base of every error the client raises."""


class ClientError(OrdoError):
    """The server refused the request (4xx): ``status``, ``code`` (its ``error``) and ``detail``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"HTTP {status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail


class NotFound(ClientError):
    """404: no such route, height, transaction or bundle (yet)."""


class Busy(OrdoError):
    """503: the replica is busy (mempool full, or not yet durable); retry after ``retry_after`` s."""

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(f"replica busy: {detail} (retry after {retry_after:g}s)")
        self.detail, self.retry_after = detail, retry_after


class ProofFailed(OrdoError):
    """A proof that does not verify against the committee, or that is not for what was asked."""


class SubscriptionGap(OrdoError):
    """A subscription skipped or repeated a height."""

    def __init__(self, expected: int, got: int) -> None:
        what = "repeated" if got < expected else "skipped"
        super().__init__(f"subscription {what} heights: expected height {expected}, got {got}")
        self.expected, self.got = expected, got


class Unavailable(OrdoError):
    """The replica cannot be reached (refused, reset, timed out)."""


class ServerError(OrdoError):
    """Any other server failure: a 5xx other than 503, or a response that is not what the API says."""


class CommitTimeout(OrdoError, TimeoutError):
    """``wait_for_commit`` / ``wait_for_bundle`` gave up."""


class MissingCommittee(OrdoError, ValueError):
    """Verification was asked for but the client has no committee."""


# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TxLocation:
    height: int
    rollup_id: int
    position: int


@dataclass(frozen=True, slots=True)
class TxStatus:
    id: str
    status: str  # committed | pending | unknown
    location: TxLocation | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    accepted: int
    duplicates: int
    ids: list[str | None]
    rejected: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    id: str
    kind: str
    offender: int
    round: int
    committed_height: int | None
    evidence: Evidence


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How busy (503) submissions are retried: ``attempts`` retries, exponential backoff from
    ``base`` capped at ``cap`` seconds, never sooner than the server's Retry-After (when <= cap)."""

    attempts: int = 5
    base: float = 0.1
    cap: float = 5.0

    def delay(self, attempt: int, retry_after: float) -> float:
        backoff = min(self.cap, self.base * 2.0**attempt) * (0.5 + random.random() / 2)
        return max(backoff, min(retry_after, self.cap))


# -- the protocol, shared by both clients -------------------------------------------------------


def _tx_json(rollup_id: int, payload: bytes) -> dict[str, Any]:
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
    if not isinstance(rollup_id, int) or isinstance(rollup_id, bool):
        raise TypeError(f"rollup_id must be an int, not {type(rollup_id).__name__}")
    return {"rollup_id": rollup_id, "payload": bytes(payload).hex()}


def _check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or len(value) != 64:
        raise ValueError(f"{what} must be 64 hex digits")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"{what} must be 64 hex digits") from None
    return value.lower()


def _chunks(items: list[tuple[int, bytes]]) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    size = 0
    for item in items:
        if chunk and (len(chunk) >= CHUNK_TXS or size + 2 * len(item[1]) > CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += 2 * len(item[1]) + 40
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


def _raise_for(response: httpx.Response, *, not_found_ok: bool = False) -> Any:
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
    if status == 503:
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


def _evidence_records(body: Any) -> list[EvidenceRecord]:
    if not isinstance(body, list):
        raise ServerError("the evidence list is not a list")
    out = []
    for item in body:
        try:
            evidence = Evidence.decode(bytes.fromhex(item["evidence"]))
            out.append(EvidenceRecord(item["id"], item["kind"], int(item["offender"]), int(item["round"]),
                                      item["committed_height"], evidence))
        except (KeyError, TypeError, ValueError, ConsensusError) as exc:
            raise ServerError(f"unreadable evidence record: {exc}") from None
    return out


def _batch_response(response: httpx.Response) -> BatchResult:
    """A batch result; a 503 carries one too (nothing taken) unless it is a plain busy error."""
    if response.status_code == 503:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not (isinstance(body, dict) and "accepted" in body):
            _raise_for(response)
    else:
        body = _raise_for(response)
    try:
        return BatchResult(int(body["accepted"]), int(body["duplicates"]), list(body["ids"]),
                           list(body["rejected"]))
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


class _Sse:
    """Incremental text/event-stream parser (the subset the API sends: id, event, data, comments)."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.event = "message"
        self.data: list[str] = []

    def feed(self, line: str) -> tuple[str | None, str, str] | None:
        line = line.rstrip("\r\n")
        if not line:
            if not self.data:
                self.event = "message"
                return None
            out = (self.id, self.event, "\n".join(self.data))
            self.event, self.data = "message", []
            return out
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            self.id = value
        elif name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        return None


class _Subscription:
    """Checks the stream: consecutive heights from ``from_height``, the right rollup, valid proofs."""

    def __init__(self, rollup_id: int, from_height: int, verifier: Verifier | None) -> None:
        if from_height < 1:
            raise ValueError("from_height must be >= 1")
        self.rollup_id = rollup_id
        self.next_height = from_height
        self.first_height = from_height
        self.verifier = verifier
        self.parser = _Sse()

    def request(self) -> tuple[dict[str, str], dict[str, str]]:
        """Query parameters and headers for (re)connecting: the stream continues at next_height."""
        headers = {"Accept": "text/event-stream"}
        if self.next_height > self.first_height:
            headers["Last-Event-ID"] = str(self.next_height - 1)
        self.parser = _Sse()
        return {"from": str(self.first_height)}, headers

    def feed(self, line: str) -> SliceProof | None:
        event = self.parser.feed(line)
        if event is None:
            return None
        event_id, kind, data = event
        if kind != "slice":
            return None
        try:
            proof = SliceProof.from_json(json.loads(data))
        except (ValueError, InvalidProof) as exc:
            raise ProofFailed(f"unreadable slice event: {exc}") from None
        if event_id != str(proof.height):
            raise ProofFailed(f"event id {event_id!r} is not the slice's height {proof.height}")
        if proof.height != self.next_height:
            raise SubscriptionGap(self.next_height, proof.height)
        _check_slice(proof, self.rollup_id, proof.height, self.verifier)
        self.next_height += 1
        return proof


def _check_slice(proof: SliceProof, rollup_id: int, height: int, verifier: Verifier | None) -> None:
    if proof.rollup_id != rollup_id or proof.height != height:
        raise ProofFailed(f"asked for rollup {rollup_id} at height {height}, got rollup {proof.rollup_id} "
                          f"at height {proof.height}")
    if verifier is not None:
        try:
            proof.verify(verifier)
        except InvalidProof as exc:
            raise ProofFailed(f"slice proof for rollup {rollup_id} at height {height}: {exc}") from None


def _check_bundle(proof: BundleProof, bundle_id: str, verifier: Verifier | None) -> BundleProof:
    if proof.bundle.id.hex() != bundle_id:
        raise ProofFailed(f"the proof is for bundle {proof.bundle.id.hex()}, not {bundle_id}")
    if verifier is not None:
        try:
            proof.verify(verifier)
        except InvalidProof as exc:
            raise ProofFailed(f"bundle proof for {bundle_id}: {exc}") from None
    return proof


def _parse_bundle_proof(body: dict[str, Any], bundle_id: str, verifier: Verifier | None) -> BundleProof:
    try:
        proof = BundleProof.from_json(body["proof"])
    except (KeyError, TypeError, InvalidProof) as exc:
        raise ProofFailed(f"unreadable bundle proof: {exc}") from None
    return _check_bundle(proof, bundle_id, verifier)


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    kwargs: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Sleep:
    seconds: float


# An operation is a generator: it yields requests (and sleeps), is sent each response (or thrown
# Unavailable), and returns its result. OrdoClient and AsyncOrdoClient only drive it.
Op = Generator[_Request | _Sleep, httpx.Response | None, T]


def _get(path: str, **kwargs: Any) -> _Request:
    return _Request("GET", path, kwargs)


class _Base:
    """The operations, shared by both clients (no I/O here)."""

    def __init__(self, base_url: str, committee: Committee | None, retry: RetryPolicy | None) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = str(base_url).rstrip("/")
        self.committee = committee
        self.retry = retry or RetryPolicy()
        self._verifier = Verifier(committee) if committee is not None else None

    def verifier(self, verify: bool) -> Verifier | None:
        if not verify:
            return None
        if self._verifier is None:
            raise MissingCommittee("verification needs the committee: pass committee=..., use "
                                   "from_config(), or verify=False")
        return self._verifier

    @classmethod
    def _config(cls, path: str | Path, replica: int) -> tuple[str, Committee]:
        from .config import load_config
        from .keys import committee_of
        config = load_config(path)
        return config.api_url(replica), committee_of(config)

    def _unavailable(self, exc: Exception) -> Unavailable:
        reason = str(exc) or type(exc).__name__
        return Unavailable(f"cannot reach {self.base_url}: {reason}")

    # -- operations --------------------------------------------------------------------------------

    def _call(self, request: _Request, *, not_found_ok: bool = False) -> Op[Any]:
        response = yield request
        assert response is not None
        return _raise_for(response, not_found_ok=not_found_ok)

    def _submit(self, path: str, body: dict[str, Any]) -> Op[dict[str, Any]]:
        for attempt in range(self.retry.attempts + 1):
            try:
                return _obj((yield from self._call(_Request("POST", path, {"json": body}))))
            except Busy as exc:
                if attempt == self.retry.attempts:
                    raise
                yield _Sleep(self.retry.delay(attempt, exc.retry_after))
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
            body = {"transactions": [_tx_json(*chunk[i]) for i in positions]}
            response = yield _Request("POST", "/v1/transactions/batch", {"json": body})
            assert response is not None
            got = _batch_response(response)
            result = got if result is None else _merge(result, got, positions)
            positions = _busy_positions(result)
            if not positions or attempt == self.retry.attempts:
                break
            yield _Sleep(self.retry.delay(attempt, _retry_after(response)))
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
        request = _get(f"/v1/transactions/{_check_id(tx_id, 'tx_id')}")
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
            yield _Sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _wait_for_commit_op(self, tx_id: str, timeout: float) -> Op[TxLocation]:
        def poll() -> Op[TxLocation | None]:
            return (yield from self._tx_status_op(tx_id)).location

        return (yield from self._wait_op(f"transaction {tx_id}", timeout, poll))

    def _bundle_proof_op(self, bundle_id: str, verify: bool) -> Op[BundleProof | None]:
        verifier = self.verifier(verify)
        bundle_id = _check_id(bundle_id, "bundle_id")
        body = _obj((yield from self._call(_get(f"/v1/bundles/{bundle_id}"))))
        if body.get("status") != "committed":
            return None
        return _parse_bundle_proof(body, bundle_id, verifier)

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
        _check_slice(proof, rollup_id, height, verifier)
        return proof

    def _evidence_op(self, offender: int | None, verify: bool) -> Op[list[EvidenceRecord]]:
        verifier = self.verifier(verify)
        params = {} if offender is None else {"offender": str(offender)}
        records = _evidence_records((yield from self._call(_get("/v1/evidence", params=params))))
        _verify_evidence(records, verifier)
        return records

    def _metrics_op(self) -> Op[str]:
        response = yield _get("/metrics")
        assert response is not None
        if response.status_code != 200:
            _raise_for(response)
        return response.text

    def _subscription(self, rollup_id: int, from_height: int, verify: bool) -> _Subscription:
        return _Subscription(rollup_id, from_height, self.verifier(verify))

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


def _verify_evidence(records: list[EvidenceRecord], verifier: Verifier | None) -> None:
    if verifier is None:
        return
    from consensus.evidence import verify_evidence

    for record in records:
        try:
            verify_evidence(record.evidence, verifier)
        except ConsensusError as exc:
            raise ProofFailed(f"evidence {record.id}: {exc}") from None
        if record.evidence.id.hex() != record.id or record.evidence.offender != record.offender:
            raise ProofFailed(f"evidence {record.id}: the listed id/offender do not match its contents")


_STREAM_TIMEOUT = httpx.Timeout(DEFAULT_TIMEOUT, read=STREAM_READ_TIMEOUT)


# -- sync ---------------------------------------------------------------------------------------


class OrdoClient(_Base):
    """Blocking client (httpx.Client). Use as a context manager, or call :meth:`close`."""

    def __init__(self, base_url: str, committee: Committee | None = None, *, timeout: float = DEFAULT_TIMEOUT,
                 retry: RetryPolicy | None = None, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(base_url, committee, retry)
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    @classmethod
    def from_config(cls, path: str | Path = "cluster.toml", replica: int = 0, **kwargs: Any) -> OrdoClient:
        """Replica ``replica``'s API URL and the committee (public keys) from a cluster file."""
        url, committee = cls._config(path, replica)
        return cls(url, committee, **kwargs)

    def __enter__(self) -> OrdoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, op: Op[T]) -> T:
        try:
            step = next(op)
            while True:
                if isinstance(step, _Sleep):
                    time.sleep(step.seconds)
                    step = op.send(None)
                    continue
                try:
                    response = self._http.request(step.method, step.path, **step.kwargs)
                except httpx.HTTPError as exc:
                    step = op.throw(self._unavailable(exc))
                else:
                    step = op.send(response)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def submit(self, rollup_id: int, payload: bytes) -> str:
        """Queue one transaction; returns its id (hex). A resubmission is a no-op with the same id.
        Busy answers are retried per ``retry`` before :class:`Busy` is raised."""
        return self._run(self._submit_op(rollup_id, payload))

    def submit_many(self, items: Iterable[tuple[int, bytes]]) -> BatchResult:
        """Bulk submission (chunked); entries rejected because the mempool filled are resent."""
        return self._run(self._submit_many_op(items))

    def submit_bundle(self, txs: Sequence[tuple[int, bytes]]) -> str:
        """Queue an atomic bundle (>= 2 transactions, any rollups); returns the bundle id (hex)."""
        return self._run(self._submit_bundle_op(txs))

    def status(self) -> dict[str, Any]:
        return self._run(self._status_op())

    def rollups(self) -> dict[int, dict[str, Any]]:
        """rollup id -> {"txs": committed count, "digest": running sub-log digest}."""
        return self._run(self._rollups_op())

    def block(self, height: int) -> dict[str, Any]:
        return self._run(self._block_op(height))

    def tx_status(self, tx_id: str) -> TxStatus:
        """committed (with its location), pending, or unknown (never raises NotFound)."""
        return self._run(self._tx_status_op(tx_id))

    def wait_for_commit(self, tx_id: str, timeout: float = 30.0) -> TxLocation:
        """Poll until the transaction is committed; CommitTimeout after ``timeout`` seconds."""
        return self._run(self._wait_for_commit_op(tx_id, timeout))

    def bundle_proof(self, bundle_id: str, verify: bool = True) -> BundleProof | None:
        """The bundle's proof once committed (verified), None while pending; NotFound if unknown."""
        return self._run(self._bundle_proof_op(bundle_id, verify))

    def wait_for_bundle(self, bundle_id: str, timeout: float = 30.0, verify: bool = True) -> BundleProof:
        return self._run(self._wait_for_bundle_op(bundle_id, timeout, verify))

    def slice(self, rollup_id: int, height: int, verify: bool = True) -> SliceProof:
        """One rollup's transactions at one height, with a verified proof; NotFound if not committed."""
        return self._run(self._slice_op(rollup_id, height, verify))

    def evidence(self, offender: int | None = None, verify: bool = True) -> list[EvidenceRecord]:
        """Evidence the replica recorded; each piece verified offline against the committee."""
        return self._run(self._evidence_op(offender, verify))

    def metrics(self) -> str:
        """The Prometheus text of /metrics."""
        return self._run(self._metrics_op())

    def subscribe(self, rollup_id: int, from_height: int = 1, verify: bool = True, *,
                  include_empty: bool = True, reconnect_timeout: float = 60.0,
                  on_reconnect: Callable[[Exception], None] | None = None) -> Iterator[SliceProof]:
        """Every height of the rollup's sub-log from ``from_height`` on, forever, each proof verified
        (empty heights carry absence proofs; ``include_empty=False`` leaves them out of the output
        but still checks them). Reconnects by itself with Last-Event-ID; raises Unavailable after
        ``reconnect_timeout`` seconds without a connection, SubscriptionGap on a skipped or
        repeated height."""
        sub = self._subscription(rollup_id, from_height, verify)
        down_since: float | None = None
        attempt = 0
        while True:
            params, headers = sub.request()
            try:
                with self._http.stream("GET", f"/v1/rollups/{int(rollup_id)}/subscribe", params=params,
                                       headers=headers, timeout=_STREAM_TIMEOUT) as response:
                    if response.status_code != 200:
                        response.read()
                        _raise_for(response)
                    down_since, attempt = None, 0
                    for line in response.iter_lines():
                        proof = sub.feed(line)
                        if proof is not None and (include_empty or proof.transactions):
                            yield proof
                problem: Exception = Unavailable("the server closed the stream")
            except (httpx.HTTPError, Busy) as exc:
                problem = exc
            down_since = time.monotonic() if down_since is None else down_since
            time.sleep(self._reconnect_delay(problem, down_since, attempt, reconnect_timeout, on_reconnect))
            attempt += 1


# -- async --------------------------------------------------------------------------------------


class AsyncOrdoClient(_Base):
    """The same API as :class:`OrdoClient`, awaitable (httpx.AsyncClient; trio or asyncio).
    ``subscribe`` is an async iterator; close it with ``contextlib.aclosing`` when you stop early."""

    def __init__(self, base_url: str, committee: Committee | None = None, *, timeout: float = DEFAULT_TIMEOUT,
                 retry: RetryPolicy | None = None, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(base_url, committee, retry)
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport)

    @classmethod
    def from_config(cls, path: str | Path = "cluster.toml", replica: int = 0, **kwargs: Any) -> AsyncOrdoClient:
        url, committee = cls._config(path, replica)
        return cls(url, committee, **kwargs)

    async def __aenter__(self) -> AsyncOrdoClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _run(self, op: Op[T]) -> T:
        try:
            step = next(op)
            while True:
                if isinstance(step, _Sleep):
                    await anyio.sleep(step.seconds)
                    step = op.send(None)
                    continue
                try:
                    response = await self._http.request(step.method, step.path, **step.kwargs)
                except httpx.HTTPError as exc:
                    step = op.throw(self._unavailable(exc))
                else:
                    step = op.send(response)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def submit(self, rollup_id: int, payload: bytes) -> str:
        return await self._run(self._submit_op(rollup_id, payload))

    async def submit_many(self, items: Iterable[tuple[int, bytes]]) -> BatchResult:
        return await self._run(self._submit_many_op(items))

    async def submit_bundle(self, txs: Sequence[tuple[int, bytes]]) -> str:
        return await self._run(self._submit_bundle_op(txs))

    async def status(self) -> dict[str, Any]:
        return await self._run(self._status_op())

    async def rollups(self) -> dict[int, dict[str, Any]]:
        return await self._run(self._rollups_op())

    async def block(self, height: int) -> dict[str, Any]:
        return await self._run(self._block_op(height))

    async def tx_status(self, tx_id: str) -> TxStatus:
        return await self._run(self._tx_status_op(tx_id))

    async def wait_for_commit(self, tx_id: str, timeout: float = 30.0) -> TxLocation:
        return await self._run(self._wait_for_commit_op(tx_id, timeout))

    async def bundle_proof(self, bundle_id: str, verify: bool = True) -> BundleProof | None:
        return await self._run(self._bundle_proof_op(bundle_id, verify))

    async def wait_for_bundle(self, bundle_id: str, timeout: float = 30.0, verify: bool = True) -> BundleProof:
        return await self._run(self._wait_for_bundle_op(bundle_id, timeout, verify))

    async def slice(self, rollup_id: int, height: int, verify: bool = True) -> SliceProof:
        return await self._run(self._slice_op(rollup_id, height, verify))

    async def evidence(self, offender: int | None = None, verify: bool = True) -> list[EvidenceRecord]:
        return await self._run(self._evidence_op(offender, verify))

    async def metrics(self) -> str:
        return await self._run(self._metrics_op())

    async def subscribe(self, rollup_id: int, from_height: int = 1, verify: bool = True, *,
                        include_empty: bool = True, reconnect_timeout: float = 60.0,
                        on_reconnect: Callable[[Exception], None] | None = None) -> AsyncIterator[SliceProof]:
        sub = self._subscription(rollup_id, from_height, verify)
        down_since: float | None = None
        attempt = 0
        while True:
            params, headers = sub.request()
            try:
                async with self._http.stream("GET", f"/v1/rollups/{int(rollup_id)}/subscribe", params=params,
                                             headers=headers, timeout=_STREAM_TIMEOUT) as response:
                    if response.status_code != 200:
                        await response.aread()
                        _raise_for(response)
                    down_since, attempt = None, 0
                    async for line in response.aiter_lines():
                        proof = sub.feed(line)
                        if proof is not None and (include_empty or proof.transactions):
                            yield proof
                problem: Exception = Unavailable("the server closed the stream")
            except (httpx.HTTPError, Busy) as exc:
                problem = exc
            down_since = time.monotonic() if down_since is None else down_since
            await anyio.sleep(self._reconnect_delay(problem, down_since, attempt, reconnect_timeout, on_reconnect))
            attempt += 1
