"""Request parsing and error answers shared by the public and the admin app: JSON bodies, integer
and id parameters, and the ``{"error": ..., "detail": ...}`` body every error has."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..ids import InvalidId, parse_id32
from ..replica.mempool import AlreadySubmitted, MempoolFull
from ..rollup.transactions import InvalidTransaction
from .views import ApiError

log = logging.getLogger(__name__)

MAX_BODY = 32 * 1024 * 1024

Handler = Callable[[Request], Awaitable[Response]]


def error(status: int, code: str, detail: str, headers: dict[str, str] | None = None,
          extra: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **(extra or {})}, status_code=status, headers=headers)


def handle_errors(fn: Handler) -> Handler:
    async def wrapper(request: Request) -> Response:
        try:
            return await fn(request)
        except ApiError as exc:
            return error(exc.status, exc.code, exc.detail, exc.headers, exc.extra)
        except AlreadySubmitted as exc:
            return error(409, "conflict", str(exc))
        except InvalidTransaction as exc:
            return error(400, "invalid_transaction", str(exc))
        except MempoolFull as exc:
            return error(503, "busy", str(exc), {"Retry-After": "1"})
        except Exception:  # one request's unexpected failure is logged and answered, never fatal
            log.exception("API %s %s failed", request.method, request.url.path)
            return error(500, "internal_error", "the replica failed to handle this request; see its log")
    wrapper.__name__ = fn.__name__
    return wrapper


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


async def read_body(request: Request) -> bytes:
    """The whole request body (413 beyond MAX_BODY; the API guard's smaller cap applies first)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError(413, "too_large", f"request body over {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, "too_large", f"request body over {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request) -> Any:
    raw = await read_body(request)
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, and ints over 4300 digits
        raise ApiError(400, "invalid_json", f"body is not JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "body is nested too deeply") from None


def parse_int(raw: str, name: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    """A decimal integer in [lo, hi]: ASCII digits only (no sign, spaces or underscores); an
    integral decimal such as ``5047.0`` counts, as JSON Schema's ``integer`` says."""
    whole, dot, fraction = raw.partition(".")
    if dot and fraction and fraction.strip("0") == "":
        raw = whole
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        raise ApiError(400, "invalid_parameter", f"{name} must be a non-negative integer, got {raw[:40]!r}")
    value = int(raw)
    if not lo <= value <= hi:
        raise ApiError(400, "invalid_parameter", f"{name} {value} outside [{lo}, {hi}]")
    return value


def path_int(request: Request, name: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    return parse_int(request.path_params[name], name, lo, hi)


def query_int(request: Request, name: str, default: int, lo: int = 0, hi: int = 2**63 - 1) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    return parse_int(raw, name, lo, hi)


def hex_id(request: Request, name: str) -> bytes:
    raw = request.path_params[name]
    if name == "tx_id" and raw == "batch":  # GET /v1/transactions/batch is a method error, not a bad id
        raise ApiError(405, "method_not_allowed", f"{request.method} not allowed on {request.url.path}",
                       headers={"Allow": "POST"})
    return parse_id_param(raw, name)


def parse_id_param(raw: str, name: str) -> bytes:
    """A 32-byte id given as a path or query parameter (400 ``invalid_parameter`` unless 64 hex digits)."""
    try:
        return parse_id32(raw, name)
    except InvalidId as exc:
        raise ApiError(400, "invalid_parameter", str(exc)) from None


async def not_found(request: Request, exc: Exception) -> Response:
    return error(404, "not_found", f"no route {request.method} {request.url.path}")


async def not_allowed(request: Request, exc: Exception) -> Response:
    allow = getattr(exc, "headers", None) or {}
    return error(405, "method_not_allowed", f"{request.method} not allowed on {request.url.path}",
                 {"Allow": allow["Allow"]} if "Allow" in allow else None)
