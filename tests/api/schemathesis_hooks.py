"""Schemathesis hooks for test_api_schemathesis_cli (loaded through SCHEMATHESIS_HOOKS): the batch
route documents msgpack answers (PROTOCOL.md section 16), which schemathesis validates only with a
deserializer for them."""

from __future__ import annotations

from typing import Any

import msgpack
import schemathesis


@schemathesis.deserializer("application/msgpack")
def msgpack_body(ctx: Any, response: Any) -> Any:
    return msgpack.unpackb(response.content, raw=False)
