"""The admin API (``admin_port``, always bound to 127.0.0.1): the transport's per-peer fault rules
(network/faults.py), read and changed by fault-injection scripts (``LocalCluster.set_faults``).

``GET /admin/faults`` the rules; ``PUT`` replaces them, ``PATCH`` changes the peers given, both all
or nothing (400 ``invalid_faults`` changes nothing); ``DELETE`` clears every rule. Each answer is
the rules as they now are."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from network import FaultRules

from .http_util import error, not_allowed, not_found, read_json
from .views import ApiError

log = logging.getLogger(__name__)


def build_admin_app(faults: FaultRules, replica_id: int) -> Starlette:
    admin = AdminApi(faults, replica_id)
    return Starlette(routes=[
        Route("/admin/faults", admin.get_faults, methods=["GET"]),
        Route("/admin/faults", admin.put_faults, methods=["PUT", "PATCH"]),
        Route("/admin/faults", admin.clear_faults, methods=["DELETE"]),
    ], exception_handlers={404: not_found, 405: not_allowed})


class AdminApi:
    def __init__(self, faults: FaultRules, replica_id: int) -> None:
        self.faults, self.replica_id = faults, replica_id

    async def get_faults(self, request: Request) -> Response:
        return JSONResponse(self.faults.snapshot())

    async def put_faults(self, request: Request) -> Response:
        try:
            body = await read_json(request)
            if not isinstance(body, dict):
                raise ApiError(400, "invalid_faults", "expected an object keyed by peer id")
            if request.method == "PUT":
                self.faults.replace_all(body)
            else:
                self.faults.update(body)
        except ApiError as exc:
            return error(exc.status, exc.code, exc.detail)
        except (ValueError, TypeError) as exc:
            return error(400, "invalid_faults", str(exc))
        log.warning("replica %d: fault rules now %s", self.replica_id, self.faults.snapshot())
        return JSONResponse(self.faults.snapshot())

    async def clear_faults(self, request: Request) -> Response:
        self.faults.clear()
        return JSONResponse(self.faults.snapshot())
