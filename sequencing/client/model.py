"""The client's typed errors, result records and retry policy (see :mod:`sequencing.client.client`)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, TypeVar

from consensus.messages import Evidence

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
    """503: the replica is busy (mempool full, or not yet durable), or 429: this client sent too
    many requests; retry after ``retry_after`` s."""

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
    """How busy (503, 429) submissions are retried: ``attempts`` retries, exponential backoff from
    ``base`` capped at ``cap`` seconds, never sooner than the server's Retry-After (when <= cap)."""

    attempts: int = 5
    base: float = 0.1
    cap: float = 5.0

    def delay(self, attempt: int, retry_after: float) -> float:
        backoff = min(self.cap, self.base * 2.0**attempt) * (0.5 + random.random() / 2)
        return max(backoff, min(retry_after, self.cap))
