"""Schema-based fuzzing of a running replica: schemathesis generates valid and invalid requests
from the replica's own /openapi.json for every operation and checks that the API never answers
5xx, answers only documented status codes, content types and headers, matches its response
schemas, and rejects schema-violating input with a 4xx. The SSE subscription (an endless stream)
is fuzzed separately with hypothesis, reading only the status line and the first bytes.

Default run: ~30 cases per operation and mode; ``-m slow`` runs ~10x as many."""

from __future__ import annotations

import collections
from typing import Any

import httpx
import pytest
import requests
import trio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from .apiutil import ClusterThread

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection]
STREAMING = ["/v1/rollups/{rollup_id}/subscribe", "/v1/dashboard/events"]


def fuzz_operation(operation: Any, mode: GenerationMode, base_url: str, session: requests.Session,
                   examples: int, tally: collections.Counter[str]) -> None:
    label = f"{operation.label} {mode.value}"

    @settings(max_examples=examples, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, session=session, timeout=15)
        tally[f"{label} -> {response.status_code}"] += 1
        case.validate_response(response, checks=CHECKS)

    run()


def fuzz_schema(base_url: str, examples: int) -> collections.Counter[str]:
    """Every non-streaming operation, positive and negative; returns a tally of status codes."""
    document = requests.get(f"{base_url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document).exclude(path=STREAMING)
    tally: collections.Counter[str] = collections.Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(ops) for ops in document["paths"].values()) - len(STREAMING), \
        "every operation loads"
    with requests.Session() as session:
        for operation in operations:
            inputs = (operation.path_parameters, operation.query, operation.headers, operation.body)
            # an operation without inputs (GET /status) has nothing to make invalid
            modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE][:2 if any(map(len, inputs)) else 1]
            for mode in modes:
                fuzz_operation(operation, mode, base_url, session, examples, tally)
    return tally


async def check_schema(cluster: ClusterThread, examples: int) -> None:
    tally = await trio.to_thread.run_sync(fuzz_schema, cluster.api(0), examples)
    codes = collections.Counter(key.rsplit(" ", 1)[1] for key in tally.elements())
    print(f"schema fuzz: {sum(codes.values())} requests over {len({k.rsplit(' -> ')[0] for k in tally})} "
          f"operation/mode pairs, status codes {dict(sorted(codes.items()))}")
    assert not [c for c in codes if c.startswith("5") and c != "503"], codes
    assert codes["400"] > 0 and codes["202"] + codes["200"] > 0, codes
    status = await cluster.status(0)
    assert status["started"] and len(status["peers_connected"]) == 3


async def test_fuzz_api_from_its_schema(cluster: ClusterThread) -> None:
    await check_schema(cluster, examples=30)


@pytest.mark.slow
async def test_fuzz_api_from_its_schema_long(cluster: ClusterThread) -> None:
    await check_schema(cluster, examples=300)


# -- the subscription ---------------------------------------------------------------------------

ints_or_junk = st.one_of(st.integers(min_value=-5, max_value=2**64), st.text(max_size=12))
header_value = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=25)


def fuzz_subscribe(base_url: str, examples: int) -> collections.Counter[int]:
    tally: collections.Counter[int] = collections.Counter()
    with httpx.Client(base_url=base_url, timeout=httpx.Timeout(10)) as http:

        @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(rollup=st.one_of(st.integers(min_value=-3, max_value=2**33), st.sampled_from(["x", "1.0", "%20"])),
               start=st.none() | ints_or_junk, skip=st.none() | st.sampled_from(["true", "no", "1", "", "maybe"]),
               last=st.none() | header_value)
        def run(rollup: object, start: object, skip: str | None, last: str | None) -> None:
            params = {k: str(v) for k, v in (("from", start), ("skip_empty", skip)) if v is not None}
            headers = {} if last is None else {"Last-Event-ID": last.strip()}
            with http.stream("GET", f"/v1/rollups/{rollup}/subscribe", params=params, headers=headers) as response:
                tally[response.status_code] += 1
                assert response.status_code in (200, 400, 404), response.status_code
                if response.status_code == 200:
                    assert response.headers["content-type"].startswith("text/event-stream")
                    assert next(response.iter_bytes()).startswith(b"retry:")
                else:
                    body = response.read()
                    assert set(httpx.Response(400, content=body).json()) == {"error", "detail"}

        run()
    return tally


async def test_fuzz_subscription_parameters(cluster: ClusterThread) -> None:
    tally = await trio.to_thread.run_sync(fuzz_subscribe, cluster.api(0), 150)
    print(f"subscription fuzz: {sum(tally.values())} requests, status codes {dict(sorted(tally.items()))}")
    assert tally[200] > 0 and tally[400] > 0, tally
