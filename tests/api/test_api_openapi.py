"""/openapi.json stays in sync with the code: every Starlette route of the public app is documented
with its methods, every documented path is a route, and the document's limits are the replica's."""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import Route

from sequencing.api import app as api
from sequencing.api.openapi import OPENAPI, openapi_document
from sequencing.config import Limits

from .fake_replica import FakeReplica

ERROR_BODIES = {"Error", "BatchError", "TxStatus", "BundleStatus", "BatchResult"}
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def routes(limits: Limits | None = None) -> set[tuple[str, str]]:
    app = api.build_app(FakeReplica(limits))
    out = set()
    for route in app.routes:
        assert isinstance(route, Route), route
        for method in route.methods or ():
            if method != "HEAD":  # Starlette adds HEAD to every GET route
                out.add((route.path, method.lower()))
    return out


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item if method in METHODS}


def test_every_route_is_documented_and_every_documented_path_is_a_route() -> None:
    code, docs = routes(), documented(OPENAPI)
    assert code - docs == set(), "routes missing from sequencing/api/openapi.py"
    assert docs - code == set(), "documented operations with no route"


def test_operations_are_complete() -> None:
    ids = set()
    for path, item in OPENAPI["paths"].items():
        template_params = set(re.findall(r"{(\w+)}", path))
        for method, op in item.items():
            ids.add(op["operationId"])
            assert op.get("summary"), (path, method)
            assert {"405", "429"} <= set(op["responses"]), (path, method)
            assert "Retry-After" in op["responses"]["429"]["headers"]
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert params == template_params, (path, params)
            for code, response in op["responses"].items():
                assert response.get("description"), (path, method, code)
                if code.startswith(("4", "5")):  # an error body, or a status/result that names the error
                    schema = response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
                    assert schema in ERROR_BODIES, (path, code, schema)
            if method == "post":
                assert {"400", "413", "503"} <= set(op["responses"]), path
                assert op["requestBody"]["required"]
    assert len(ids) == sum(len(item) for item in OPENAPI["paths"].values()), "operationIds are unique"


def test_references_resolve() -> None:
    text = repr(OPENAPI)
    names = set(re.findall(r"#/components/schemas/(\w+)", text))
    assert names <= set(OPENAPI["components"]["schemas"]), names - set(OPENAPI["components"]["schemas"])


def test_documented_limits_follow_the_replicas_limits() -> None:
    limits = Limits(max_rollup_id=99, max_tx_bytes=10, max_bundle_txs=3, submit_max_batch=7, api_max_body_bytes=5000)
    document = openapi_document(limits)
    schemas = document["components"]["schemas"]
    assert schemas["TxSubmission"]["properties"]["rollup_id"]["maximum"] == 99
    assert schemas["TxSubmission"]["properties"]["payload"]["maxLength"] == 20
    assert schemas["BundleSubmission"]["properties"]["transactions"]["maxItems"] == 3
    assert schemas["BatchSubmission"]["properties"]["transactions"]["maxItems"] == 7
    slice_params = document["paths"]["/v1/rollups/{rollup_id}/slices/{height}"]["get"]["parameters"]
    assert slice_params[0]["schema"]["maximum"] == 99 and slice_params[1]["schema"]["minimum"] == 1
    assert routes(limits) == documented(document)
    assert "5000 bytes" in document["paths"]["/v1/bundles"]["post"]["responses"]["413"]["description"]


def test_subscription_is_documented_as_server_sent_events() -> None:
    op = OPENAPI["paths"]["/v1/rollups/{rollup_id}/subscribe"]["get"]
    assert "text/event-stream" in op["responses"]["200"]["content"]
    params = {(p["in"], p["name"]) for p in op["parameters"]}
    assert {("query", "from"), ("query", "skip_empty"), ("header", "Last-Event-ID"), ("path", "rollup_id")} == params
    assert "text/plain" in OPENAPI["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
