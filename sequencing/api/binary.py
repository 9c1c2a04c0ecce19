"""The binary form of ``POST /v1/transactions/batch`` (``Content-Type: application/msgpack``).

The body is one msgpack map, decoded with one ``msgpack.unpackb`` call (no hex, no JSON)::

    {"transactions": [entry, ...], "ids": true}      # "ids" optional (default true)
    entry = [rollup_id, payload]                      # a transaction: uint, bin
          | [[rollup_id, payload], [rollup_id, payload], ...]   # an atomic bundle (2..max_bundle_txs)

    {"groups": [[rollup_id, [payload, ...]], ...], "ids": true}  # plain transactions grouped by rollup

The grouped form (a rollup's client sends its own rollup's transactions) decodes to one list of
payloads per group and is checked per group; the answer then counts transactions in the order
of the groups, flattened. A request of plain transactions in the first form is grouped by rollup
here (:func:`_plain`), with the answer put back in request order.

Every check is a shape check (types, ranges, sizes; a bundle's size and no transaction twice), so an
entry that fails one refuses the whole request (400 ``invalid_batch``, ``rejected`` naming each such
entry), as an entry that breaks the JSON schema does; a body that is not msgpack is 400
``invalid_msgpack``. At most ``submit_max_batch`` transactions in all (bundles' transactions count).
The answer (:func:`encode_result`) is a msgpack map ``{"accepted", "duplicates", "rejected":
[{"index", "error"}, ...], "ids": [bin(32) | nil, ...]}``; ``"ids": false`` in the request leaves the
ids out (a client computes them itself: a transaction's id is ``digest("ordo/tx", [rollup_id,
payload])``, PROTOCOL.md section 2). Errors stay JSON, like every error of the API.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any, TypeVar

import msgpack

from consensus.encoding import pack

from ..config import Limits
from ..rollup.transactions import Bundle, InvalidTransaction, Item, Run, Transaction
from .views import ApiError

MSGPACK = "application/msgpack"
MSGPACK_TYPES = frozenset({MSGPACK, "application/x-msgpack", "application/vnd.msgpack"})
FIELDS = frozenset({"transactions", "groups", "ids"})
T = TypeVar("T")


def is_msgpack(content_type: str | None) -> bool:
    """Whether a Content-Type header names msgpack (parameters such as ``; charset`` ignored)."""
    return content_type is not None and content_type.split(";", 1)[0].strip().lower() in MSGPACK_TYPES


@dataclass(frozen=True, slots=True)
class PlainTransactions:
    """A request of plain transactions only (the common case), as one :class:`Run` per rollup:
    checked and grouped with C-level passes over the whole request, no object per transaction.
    ``order`` lists the request indices in run order (None: one run, in request order)."""

    runs: tuple[Run, ...]
    order: tuple[int, ...] | None

    def in_request_order(self, per_tx: Sequence[T]) -> list[T]:
        """Values given per transaction in run order, put back in request order."""
        if self.order is None:
            return list(per_tx)
        inverse = sorted(range(len(self.order)), key=self.order.__getitem__)
        return list(itemgetter(*inverse)(per_tx))

    def ids(self) -> list[bytes]:
        return self.in_request_order(list(chain.from_iterable(run.ids for run in self.runs)))


@dataclass(frozen=True, slots=True)
class BinaryBatch:
    items: tuple[Item, ...]  # one per entry, in order (empty when ``plain`` holds them)
    want_ids: bool
    plain: PlainTransactions | None = None


def _rollup_and(value: Any, limits: Limits, shape: str) -> tuple[int, Any]:
    """``[rollup_id, x]`` with a valid rollup id: (rollup_id, x)."""
    if type(value) is not list or len(value) != 2:
        raise InvalidTransaction(f"expected {shape}")
    rollup_id, rest = value
    if type(rollup_id) is not int or not 0 <= rollup_id <= limits.max_rollup_id:
        raise InvalidTransaction(f"rollup_id must be an integer in [0, {limits.max_rollup_id}]")
    return rollup_id, rest


def _check_sizes(shortest: int, longest: int, limits: Limits) -> None:
    if shortest == 0:
        raise InvalidTransaction("payload must not be empty")
    if longest > limits.max_tx_bytes:
        raise InvalidTransaction(f"payload of {longest} bytes exceeds {limits.max_tx_bytes}")


def _tx(entry: Any, limits: Limits) -> Transaction:
    rollup_id, payload = _rollup_and(entry, limits, "[rollup_id, payload] or a bundle [[rollup_id, payload], ...]")
    if type(payload) is not bytes:
        raise InvalidTransaction("payload must be msgpack bin (bytes)")
    _check_sizes(len(payload), len(payload), limits)
    return Transaction(rollup_id, payload)


def _item(entry: Any, limits: Limits) -> Item:
    if type(entry) is list and entry and type(entry[0]) is list:
        bundle = Bundle(tuple(_tx(tx, limits) for tx in entry))
        bundle.validate(limits)
        return bundle
    return _tx(entry, limits)


def _plain(entries: list[Any], limits: Limits) -> PlainTransactions | None:
    """The request as runs if every entry is a valid plain transaction; None otherwise (the
    entry-by-entry path then finds what is wrong, or the bundles)."""
    if len(entries) < 1 or set(map(type, entries)) != {list} or set(map(len, entries)) != {2}:
        return None
    rollups, payloads = zip(*entries, strict=True)
    if set(map(type, payloads)) != {bytes} or set(map(type, rollups)) != {int}:
        return None
    if min(rollups) < 0 or max(rollups) > limits.max_rollup_id:
        return None
    if min(map(len, payloads)) == 0 or max(map(len, payloads)) > limits.max_tx_bytes:
        return None
    distinct = sorted(set(rollups))
    if len(distinct) == 1:
        return PlainTransactions((Run.of(distinct[0], payloads),), None)
    order = tuple(sorted(range(len(rollups)), key=rollups.__getitem__))  # stable: arrival order per rollup
    grouped_rollups: tuple[int, ...] = itemgetter(*order)(rollups)
    grouped_payloads: tuple[bytes, ...] = itemgetter(*order)(payloads)
    runs = []
    for rollup_id in distinct:
        first, end = bisect_left(grouped_rollups, rollup_id), bisect_right(grouped_rollups, rollup_id)
        runs.append(Run.of(rollup_id, grouped_payloads[first:end]))
    return PlainTransactions(tuple(runs), order)


def _decode(raw: bytes) -> Any:
    try:
        return msgpack.unpackb(raw, raw=False, strict_map_key=True)
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as exc:
        raise ApiError(400, "invalid_msgpack", f"body is not one msgpack value: {exc}") from None


def _group(group: Any, limits: Limits) -> Run:
    """One entry of the grouped form: ``[rollup_id, [payload, ...]]``, checked with C-level passes."""
    rollup_id, payloads = _rollup_and(group, limits, "[rollup_id, [payload, ...]]")
    if type(payloads) is not list or not payloads:
        raise InvalidTransaction("payloads must be a non-empty list")
    if set(map(type, payloads)) != {bytes}:
        raise InvalidTransaction("every payload must be msgpack bin (bytes)")
    _check_sizes(min(map(len, payloads)), max(map(len, payloads)), limits)
    return Run.of(rollup_id, payloads)


def _groups(groups: Any, limits: Limits) -> PlainTransactions:
    """The grouped form: one run per group, in the request's order; ApiError naming every bad group."""
    if type(groups) is not list or len(groups) > limits.submit_max_batch:
        raise ApiError(400, "invalid_batch", f"groups must be a list of at most {limits.submit_max_batch}")
    runs = _each(groups, _group, limits, ("group", "groups"))
    total = sum(map(len, runs))
    if total > limits.submit_max_batch:
        raise ApiError(400, "invalid_batch", f"{total} transactions exceed {limits.submit_max_batch}")
    return PlainTransactions(tuple(runs), None)


def _each(values: list[Any], parse: Callable[[Any, Limits], T], limits: Limits, names: tuple[str, str]) -> list[T]:
    """``parse`` of every value, or a 400 naming each malformed one (``names``: singular, plural)."""
    parsed: list[T] = []
    violations: list[dict[str, Any]] = []
    for index, value in enumerate(values):
        try:
            parsed.append(parse(value, limits))
        except InvalidTransaction as exc:
            violations.append({"index": index, "error": str(exc)})
    if violations:
        first = violations[0]
        raise ApiError(400, "invalid_batch", f"{len(violations)} {names[1]} are malformed; "
                       f"{names[0]} {first['index']}: {first['error']}", extra={"rejected": violations})
    return parsed


def parse_binary_batch(raw: bytes, limits: Limits) -> BinaryBatch:
    """Decode and check a binary batch; ApiError (400) for anything malformed."""
    body = _decode(raw)
    if type(body) is not dict or not set(body) <= FIELDS or len(set(body) & {"transactions", "groups"}) != 1:
        raise ApiError(400, "invalid_batch", 'expected a msgpack map {"transactions": [...], "ids": bool} '
                       'or {"groups": [...], "ids": bool} and no other field')
    want_ids = body.get("ids", True)
    if type(want_ids) is not bool:
        raise ApiError(400, "invalid_batch", '"ids" must be a boolean')
    if "groups" in body:
        return BinaryBatch((), want_ids, _groups(body["groups"], limits))
    entries = body["transactions"]
    if type(entries) is not list or len(entries) > limits.submit_max_batch:
        raise ApiError(400, "invalid_batch", f"transactions must be a list of at most {limits.submit_max_batch}")
    plain = _plain(entries, limits)
    if plain is not None:
        return BinaryBatch((), want_ids, plain)
    items = _each(entries, _item, limits, ("entry", "entries"))
    total = sum(len(i.txs) if isinstance(i, Bundle) else 1 for i in items)
    if total > limits.submit_max_batch:
        raise ApiError(400, "invalid_batch", f"{total} transactions (bundles' included) exceed "
                       f"{limits.submit_max_batch}")
    return BinaryBatch(tuple(items), want_ids)


def encode_result(accepted: int, duplicates: int, ids: list[bytes | None] | None,
                  rejected: list[dict[str, Any]]) -> bytes:
    """The msgpack answer to a binary batch (``ids`` None: left out on request)."""
    result: dict[str, Any] = {"accepted": accepted, "duplicates": duplicates, "rejected": rejected}
    if ids is not None:
        result["ids"] = ids
    return pack(result)
