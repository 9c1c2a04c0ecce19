"""A replica never exits because of what a peer or a client sent.

Each input (a consensus message, a payload recheck, a timeout, a sync response, a node request,
a batch) is handled inside :meth:`InputGuard.handling`. An unexpected exception there is a bug or
an input nobody foresaw: the input is dropped, counted in
``ordo_input_errors_total{input, reason}`` (reason: the exception's class) and logged with its
traceback, and the replica goes on with the next input. Local faults stay fatal (fail-stop): a
storage error or an OS error means this replica's disk can no longer be trusted to hold what it
signed, and carrying on would be worse than stopping.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter

from ..storage import StorageError

log = logging.getLogger(__name__)

LOCAL_FAULTS: tuple[type[BaseException], ...] = (StorageError, OSError, MemoryError)


class InputGuard:
    def __init__(self, replica_id: int, counter: Counter) -> None:
        self.replica_id = replica_id
        self.counter = counter

    @contextmanager
    def handling(self, input: str) -> Iterator[None]:
        try:
            yield
        except LOCAL_FAULTS:
            raise
        except Exception as exc:
            self.counter.labels(input, type(exc).__name__).inc()
            log.error("replica %d: dropped a %s input: unexpected %s", self.replica_id, input,
                      type(exc).__name__, exc_info=True)
