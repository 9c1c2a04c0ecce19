"""The check behind tests/api/test_grafana_dashboard.py: which metric names a Grafana dashboard's
PromQL queries, and which of them a replica's ``/metrics`` does not expose.

The PromQL reading is deliberately small (the dashboard's queries are plain selectors, rate /
increase, aggregations with ``by (...)`` and histogram_quantile): string literals, Grafana variables,
label matchers, ranges and grouping label lists are removed; what is left is function names
(followed by ``(``), keywords, numbers and metric names."""

from __future__ import annotations

import re
from typing import Any

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
            "offset", "inf", "nan"}
IDENT = re.compile(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*")
LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(.*),\s*[A-Za-z_]\w*\s*\)\s*$")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values and other strings
    text = re.sub(r"\$\{[^}]*\}|\$\w+", " ", text)  # Grafana variables ($__rate_interval, ${datasource})
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery durations
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)  # label lists
    names = set()
    for match in IDENT.finditer(text):
        word = match.group(0)
        if text[match.end():].lstrip().startswith("(") or word.lower() in KEYWORDS:
            continue  # a function call or a keyword
        names.add(word)
    return names


def exposed_names(exposition: str) -> set[str]:
    """Every series name a Prometheus text exposition declares or carries: a family declared
    without samples yet (a labelled counter nothing has incremented) counts, with the suffixes
    its type gives its samples (_bucket/_sum/_count, _total)."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()[:4]
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            elif kind == "summary":
                names |= {f"{name}_sum", f"{name}_count"}
            elif kind == "counter" and not name.endswith("_total"):
                names.add(f"{name}_total")
        elif line and not line.startswith("#"):
            match = IDENT.match(line)
            if match:
                names.add(match.group(0))
    return names


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target (rows' nested panels too) and every query variable."""
    found: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                found.append((f"panel {panel.get('title')!r} {target.get('refId')}", target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            labels = LABEL_VALUES.match(query)
            found.append((f"variable ${variable['name']}", labels.group(1) if labels else query))
    return found


def missing_names(dashboard: dict[str, Any], exposed: set[str]) -> list[str]:
    """Problems: a query naming a metric ``exposed`` lacks, or a query naming none at all."""
    problems = []
    for where, expr in queries(dashboard):
        names = metric_names(expr)
        if not names:
            problems.append(f"{where}: no metric name found in {expr!r}")
        problems += [f"{where}: {name} is not in /metrics" for name in sorted(names - exposed)]
    return problems
