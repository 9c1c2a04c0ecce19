"""The subscription's stream: an incremental text/event-stream parser and the bookkeeping that
resumes it with Last-Event-ID and checks every slice (consecutive heights, the right rollup,
valid proofs)."""

from __future__ import annotations

import json

from consensus.crypto import Verifier

from ..rollup.proofs import InvalidProof, SliceProof
from .checks import check_slice
from .model import ProofFailed, SubscriptionGap


class SseParser:
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


class Subscription:
    """Checks the stream: consecutive heights from ``from_height``, the right rollup, valid proofs."""

    def __init__(self, rollup_id: int, from_height: int, verifier: Verifier | None) -> None:
        if from_height < 1:
            raise ValueError("from_height must be >= 1")
        self.rollup_id = rollup_id
        self.next_height = from_height
        self.first_height = from_height
        self.verifier = verifier
        self.parser = SseParser()

    def request(self) -> tuple[dict[str, str], dict[str, str]]:
        """Query parameters and headers for (re)connecting: the stream continues at next_height."""
        headers = {"Accept": "text/event-stream"}
        if self.next_height > self.first_height:
            headers["Last-Event-ID"] = str(self.next_height - 1)
        self.parser = SseParser()
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
        check_slice(proof, self.rollup_id, proof.height, self.verifier)
        self.next_height += 1
        return proof
