"""Per-peer fault injection (drop, delay, partition), changeable while the transport runs.

Rules are seen from one replica: ``blocked`` drops everything we send to that peer and everything
it sends us; ``drop`` is the probability that an outgoing message is lost; ``delay`` (+ a uniform
``jitter`` in ``[0, jitter]``) holds an outgoing message before it is written, keeping per-peer
order. A cluster-wide partition is set by calling :meth:`FaultRules.partition` on every replica
with the peers on the other side. Randomness comes only from the injected ``random.Random``.

The JSON form (for the admin API) maps decimal peer ids to rule objects::

    {"2": {"drop": 0.1, "delay": 0.05, "jitter": 0.01, "blocked": false}}
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

FIELDS = ("drop", "delay", "jitter", "blocked")
MAX_DELAY = 3600.0


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_probability(value: Any, what: str) -> None:
    if not _is_number(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} must be a probability in [0, 1], got {value!r}")


def _check_seconds(value: Any, what: str) -> None:
    if not _is_number(value) or not 0.0 <= value <= MAX_DELAY:
        raise ValueError(f"{what} must be a number of seconds in [0, {MAX_DELAY}], got {value!r}")


@dataclass(frozen=True, slots=True)
class PeerFaults:
    drop: float = 0.0
    delay: float = 0.0
    jitter: float = 0.0
    blocked: bool = False

    def __post_init__(self) -> None:
        _check_probability(self.drop, "drop")
        _check_seconds(self.delay, "delay")
        _check_seconds(self.jitter, "jitter")
        if not isinstance(self.blocked, bool):
            raise ValueError(f"blocked must be true or false, got {self.blocked!r}")
        for name in ("drop", "delay", "jitter"):  # 1 and 1.0 are the same rule
            object.__setattr__(self, name, float(getattr(self, name)))

    @property
    def is_clear(self) -> bool:
        return self == NO_FAULTS

    def to_dict(self) -> dict[str, float | bool]:
        return asdict(self)


NO_FAULTS = PeerFaults()


def _parse_peer(key: Any) -> int:
    if isinstance(key, bool):
        raise ValueError(f"peer id must be a non-negative integer, got {key!r}")
    if isinstance(key, int):
        peer = key
    elif isinstance(key, str) and key.isdecimal() and key.isascii():
        peer = int(key)
    else:
        raise ValueError(f"peer id must be a non-negative integer, got {key!r}")
    if peer < 0:
        raise ValueError(f"peer id must be a non-negative integer, got {key!r}")
    return peer


def _parse_rules(data: Any, base: Mapping[int, PeerFaults]) -> dict[int, PeerFaults]:
    """``base`` with the partial rules in ``data`` applied; raises ValueError, changing nothing."""
    if not isinstance(data, Mapping):
        kind = type(data).__name__
        raise ValueError(f"fault rules must be an object mapping peer ids to rules, got {kind}")
    result = dict(base)
    for key, fields in data.items():
        peer = _parse_peer(key)
        if not isinstance(fields, Mapping):
            raise ValueError(f"rules for peer {peer} must be an object, got {type(fields).__name__}")
        unknown = sorted(str(name) for name in fields if name not in FIELDS)
        if unknown:
            raise ValueError(f"unknown fault field(s) for peer {peer}: {', '.join(unknown)}")
        try:
            result[peer] = replace(result.get(peer, NO_FAULTS), **dict(fields))
        except ValueError as exc:
            raise ValueError(f"peer {peer}: {exc}") from None
    return result


class FaultRules:
    """Mutable per-peer fault rules. Unknown peers have no faults."""

    __slots__ = ("_rng", "_rules")

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng if rng is not None else random.Random()
        self._rules: dict[int, PeerFaults] = {}

    # -- configuration --------------------------------------------------------------------------

    def set(
        self, peer: int, *, drop: float | None = None, delay: float | None = None,
        jitter: float | None = None, blocked: bool | None = None,
    ) -> PeerFaults:
        """Change the given fields of ``peer``'s rule (None leaves a field as it is)."""
        given = {"drop": drop, "delay": delay, "jitter": jitter, "blocked": blocked}
        self.update({peer: {k: v for k, v in given.items() if v is not None}})
        return self.rule(peer)

    def partition(self, peers: Iterable[int]) -> None:
        """Block exactly ``peers`` (both directions) and unblock every other peer."""
        blocked = {_parse_peer(p) for p in peers}
        for peer in blocked | set(self._rules):
            self._store(peer, replace(self.rule(peer), blocked=peer in blocked))

    def heal(self) -> None:
        """Unblock every peer; drop and delay rules stay."""
        self.partition(())

    def clear(self, peer: int | None = None) -> None:
        """Remove every rule of ``peer``, or of all peers."""
        if peer is None:
            self._rules.clear()
        else:
            self._rules.pop(peer, None)

    def update(self, data: Mapping[Any, Any]) -> None:
        """Apply partial rules in the JSON form; all or nothing (ValueError leaves rules as they were)."""
        for peer, rule in _parse_rules(data, self._rules).items():
            self._store(peer, rule)

    def replace_all(self, data: Mapping[Any, Any]) -> None:
        """Make the rules exactly ``data`` (JSON form); all or nothing."""
        parsed = _parse_rules(data, {})
        self._rules = {peer: rule for peer, rule in parsed.items() if not rule.is_clear}

    @classmethod
    def from_dict(cls, data: Mapping[Any, Any], rng: random.Random | None = None) -> FaultRules:
        rules = cls(rng)
        rules.replace_all(data)
        return rules

    def snapshot(self) -> dict[str, dict[str, float | bool]]:
        """The current rules in the JSON form, peers in id order."""
        return {str(peer): self._rules[peer].to_dict() for peer in sorted(self._rules)}

    def _store(self, peer: int, rule: PeerFaults) -> None:
        if rule.is_clear:
            self._rules.pop(peer, None)
        else:
            self._rules[peer] = rule

    # -- decisions ------------------------------------------------------------------------------

    def rule(self, peer: int) -> PeerFaults:
        return self._rules.get(peer, NO_FAULTS)

    def is_blocked(self, peer: int) -> bool:
        return self.rule(peer).blocked

    def outgoing(self, peer: int) -> float | None:
        """None if a message to ``peer`` is to be dropped, else the seconds to hold it."""
        rule = self._rules.get(peer)
        if rule is None:
            return 0.0
        if rule.blocked or (rule.drop > 0.0 and self._rng.random() < rule.drop):
            return None
        return rule.delay + (rule.jitter * self._rng.random() if rule.jitter > 0.0 else 0.0)
