"""The Python client of a rollup team: submit transactions and read a verified sub-log.

Import it from here: ``from sequencing.client import OrdoClient`` (or :class:`AsyncOrdoClient`, the
typed errors and result records). Depends only on :mod:`sequencing.rollup`, :mod:`consensus`,
``config``/``keys`` (for ``from_config``) and httpx/anyio — never on the replica, its storage or API.
"""

from ..ids import InvalidId
from .client import (
    AsyncOrdoClient,
    BatchResult,
    Busy,
    ClientError,
    CommitTimeout,
    EvidenceRecord,
    MissingCommittee,
    NotFound,
    OrdoClient,
    OrdoError,
    ProofFailed,
    RetryPolicy,
    ServerError,
    SubscriptionGap,
    TxLocation,
    TxStatus,
    Unavailable,
)
from .evidence import InvalidEvidence, UnreadableEvidence

__all__ = [
    "AsyncOrdoClient",
    "BatchResult",
    "Busy",
    "ClientError",
    "CommitTimeout",
    "EvidenceRecord",
    "InvalidEvidence",
    "InvalidId",
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
