"""docs/grafana/ordo.json, the Grafana dashboard over the replicas' /metrics: every metric name
its panels (and variables) query exists in a live replica's /metrics (the package's shared
4-replica cluster), each concern has its panel, and the check notices a made-up name."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from .grafana_check import exposed_names, metric_names, missing_names, queries

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "ordo.json"

# concern -> a metric name some panel must query for it
CONCERNS = {
    "rounds": "ordo_round",
    "round changes": "ordo_rounds_entered_total",
    "commits": "ordo_blocks_committed_total",
    "committed height": "ordo_committed_height",
    "latency quantiles": "ordo_commit_latency_seconds_bucket",
    "mempool": "ordo_mempool_transactions",
    "per-peer traffic": "ordo_net_bytes_out_total",
    "refusals by reason": "ordo_safety_refusals_total",
    "evidence": "ordo_evidence_recorded_total",
}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


async def live_names(http: httpx.AsyncClient) -> set[str]:
    response = await http.get("/metrics")
    assert response.status_code == 200
    return exposed_names(response.text)


async def test_every_metric_the_dashboard_queries_is_in_a_live_replicas_metrics(
        http: httpx.AsyncClient, dashboard: dict[str, Any]) -> None:
    exposed = await live_names(http)
    assert len(queries(dashboard)) >= 20
    assert missing_names(dashboard, exposed) == []


async def test_a_panel_with_a_made_up_name_fails_the_check(http: httpx.AsyncClient, dashboard: dict[str, Any]) -> None:
    exposed = await live_names(http)
    broken = copy.deepcopy(dashboard)
    panel = next(p for p in broken["panels"] if p["type"] == "timeseries")
    panel["targets"].append({"refId": "Z", "expr": 'sum by (instance) (rate(ordo_blocks_comitted_total{job=~"$job"}'
                                                   "[$__rate_interval]))"})
    assert missing_names(broken, exposed) == [
        f"panel {panel['title']!r} Z: ordo_blocks_comitted_total is not in /metrics"]
    # a histogram quantile over a family that has no _bucket series (a gauge) fails too
    panel["targets"][-1]["expr"] = "histogram_quantile(0.99, sum by (le) (rate(ordo_round_bucket[5m])))"
    assert "ordo_round_bucket is not in /metrics" in missing_names(broken, exposed)[0]
    # and a query that names nothing at all is reported, not passed
    panel["targets"][-1]["expr"] = "vector(1)"
    assert "no metric name found" in missing_names(broken, exposed)[0]


def test_each_concern_has_a_panel(dashboard: dict[str, Any]) -> None:
    queried = set().union(*(metric_names(expr) for _, expr in queries(dashboard)))
    assert {concern: name for concern, name in CONCERNS.items() if name not in queried} == {}
    quantiles = [expr for _, expr in queries(dashboard) if "histogram_quantile" in expr]
    assert quantiles and all("_bucket" in expr and "by (le" in expr for expr in quantiles)


def test_the_dashboard_is_importable_with_a_datasource_variable(dashboard: dict[str, Any]) -> None:
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]


@pytest.mark.parametrize("expr, names", [
    ('ordo_round{job=~"$job"}', {"ordo_round"}),
    ("histogram_quantile(0.99, sum by (le, instance) (rate(ordo_commit_latency_seconds_bucket[5m])))",
     {"ordo_commit_latency_seconds_bucket"}),
    ("sum(rate(a_total[$__rate_interval])) by (reason) / ignoring(reason) group_left sum(b)", {"a_total", "b"}),
    ('rate(x_sum{a="by (z) c"}[1m]) / rate(x_count[1m]) > 1e3', {"x_sum", "x_count"}),
    ("label_values(ordo_round, job)", {"ordo_round", "job"}),  # variables are unwrapped by queries()
])
def test_metric_names_reads_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_exposed_names_adds_the_suffixes_of_declared_families() -> None:
    text = ("# TYPE h histogram\nh_bucket{le=\"1\"} 0\n# TYPE c_total counter\n# TYPE g gauge\ng 1\n"
            "ordo_x{key=\"1\"} 2\n")
    assert exposed_names(text) == {"h", "h_bucket", "h_sum", "h_count", "c_total", "g", "ordo_x"}
