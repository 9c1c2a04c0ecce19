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
code and ``detail``; :class:`NotFound` for 404), :class:`Busy` (503 or 429, with ``retry_after``; busy
submissions are first retried with backoff), :class:`ProofFailed` (a proof that does not verify,
or a response that contradicts the request; :class:`InvalidEvidence` for evidence), :class:`SubscriptionGap`
(a stream skipped or repeated a height), :class:`Unavailable` (cannot reach the replica),
:class:`CommitTimeout` and :class:`ServerError` (any other 5xx or an unreadable response). All
derive from :class:`OrdoError`. The caller's own mistakes are refused before any request:
``TypeError`` for a payload that is not bytes, :class:`~sequencing.ids.InvalidId` (a
``ValueError``) for an id that is not 64 hex digits.

The subscription resumes by itself after a dropped connection or a restarted replica: it
reconnects with ``Last-Event-ID`` (the last height it delivered), so the caller sees every height
once, in order; a stream that jumps or repeats a height raises :class:`SubscriptionGap`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx

from consensus.committee import Committee

from ..rollup.proofs import BundleProof, SliceProof
from .evidence import InvalidEvidence, UnreadableEvidence
from .model import (
    DEFAULT_TIMEOUT,
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
    SubscriptionGap,
    T,
    TxLocation,
    TxStatus,
    Unavailable,
)
from .protocol import STREAM_TIMEOUT, BaseClient, Op, Sleep, body_or_raise

__all__ = [
    "AsyncOrdoClient",
    "BatchResult",
    "Busy",
    "ClientError",
    "CommitTimeout",
    "EvidenceRecord",
    "InvalidEvidence",
    "MissingCommittee",
    "NotFound",
    "OrdoClient",
    "OrdoError",
    "ProofFailed",
    "RetryPolicy",
    "ServerError",
    "SubscriptionGap",
    "TxLocation",
    "TxStatus",
    "Unavailable",
    "UnreadableEvidence",
]

# -- sync ---------------------------------------------------------------------------------------


class OrdoClient(BaseClient):
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
                if isinstance(step, Sleep):
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
                                       headers=headers, timeout=STREAM_TIMEOUT) as response:
                    if response.status_code != 200:
                        response.read()
                        body_or_raise(response)
                    down_since, attempt = None, 0
                    for line in response.iter_lines():
                        try:
                            proof = sub.feed(line)
                        except ProofFailed as exc:
                            self._run(self._explain_op(exc))
                            raise
                        if proof is not None and (include_empty or proof.transactions):
                            yield proof
                problem: Exception = Unavailable("the server closed the stream")
            except (httpx.HTTPError, Busy) as exc:
                problem = exc
            down_since = time.monotonic() if down_since is None else down_since
            time.sleep(self._reconnect_delay(problem, down_since, attempt, reconnect_timeout, on_reconnect))
            attempt += 1


# -- async --------------------------------------------------------------------------------------


class AsyncOrdoClient(BaseClient):
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
                if isinstance(step, Sleep):
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
                                             headers=headers, timeout=STREAM_TIMEOUT) as response:
                    if response.status_code != 200:
                        await response.aread()
                        body_or_raise(response)
                    down_since, attempt = None, 0
                    async for line in response.aiter_lines():
                        try:
                            proof = sub.feed(line)
                        except ProofFailed as exc:
                            await self._run(self._explain_op(exc))
                            raise
                        if proof is not None and (include_empty or proof.transactions):
                            yield proof
                problem: Exception = Unavailable("the server closed the stream")
            except (httpx.HTTPError, Busy) as exc:
                problem = exc
            down_since = time.monotonic() if down_since is None else down_since
            await anyio.sleep(self._reconnect_delay(problem, down_since, attempt, reconnect_timeout, on_reconnect))
            attempt += 1
