"""Ids and keys as text: a 32-byte transaction, bundle, block or evidence id, or an Ed25519 public
key, is written as exactly 64 hex digits (either case; no ``0x``, no whitespace).

The one check for that form, used by the client, the CLI, the cluster file and the API; schemas
use :data:`ID_HEX_PATTERN`. Callers that take looser input from a person (the CLI strips spaces
and a ``0x``) clean it up before calling :func:`parse_id32`. :func:`is_hex` is the one check of
hex-encoded bytes of any length (a transaction payload in a JSON body).
"""

from __future__ import annotations

ID_BYTES = 32
ID_HEX_PATTERN = "[0-9a-fA-F]{64}"  # what parse_id32 accepts; anchor it ("^...$") in a JSON schema
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def is_hex(text: str) -> bool:
    """Only hex digits, an even number of them (``bytes.fromhex`` would also take spaces): any
    hex-encoded bytes, e.g. a transaction payload in a JSON body."""
    return len(text) % 2 == 0 and _HEX_DIGITS.issuperset(text)


class InvalidId(ValueError):
    """Not 64 hex digits: ``what`` names the value (e.g. ``tx_id``), ``problem`` says what is wrong."""

    def __init__(self, what: str, text: object, problem: str) -> None:
        shown = repr(text[:80]) if isinstance(text, str) else type(text).__name__
        super().__init__(f"{what} must be {2 * ID_BYTES} hex digits ({ID_BYTES} bytes), got {shown}: {problem}")
        self.what, self.problem = what, problem


def parse_id32(text: object, what: str = "id") -> bytes:
    """The 32 bytes written as ``text``; :class:`InvalidId` unless it is exactly 64 hex digits."""
    if not isinstance(text, str):
        raise InvalidId(what, text, f"not a string but {type(text).__name__}")
    if text[:2] in ("0x", "0X"):
        raise InvalidId(what, text, "has a 0x prefix")
    if not _HEX_DIGITS.issuperset(text):  # bytes.fromhex alone would also take whitespace
        raise InvalidId(what, text, "not hexadecimal")
    if len(text) != 2 * ID_BYTES:
        raise InvalidId(what, text, f"{len(text)} hex digits, not {2 * ID_BYTES}")
    return bytes.fromhex(text)
