"""The checks every fault scenario ends with, on the replicas still running: sub-logs converged
and identical, agreement on the last committed blocks (every conflicting height named), and every
acknowledged transaction committed exactly once (every lost or doubled one counted). Used by
scripts/faults; takes anything with LocalCluster's query methods, so the unit tests feed it a
fake cluster's answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .acked_load import AckedLoad, CheckFailed, Queryable, converged_rollups, exactly_once_report

AGREEMENT_DEPTH = 20  # blocks below the lowest committed height compared across replicas


def conflicting_heights(chains: Mapping[int, Mapping[int, str]]) -> list[int]:
    """Heights at which two replicas hold different block ids (``chains``: replica -> height ->
    block id)."""
    heights = sorted({h for chain in chains.values() for h in chain})
    return [h for h in heights if len({chain[h] for chain in chains.values() if h in chain}) > 1]


async def agreement(cluster: Queryable, ids: list[int], heights: Mapping[int, Any]) -> dict[str, Any]:
    """The answering replicas hold the same ids for the last ``AGREEMENT_DEPTH`` blocks all of
    them committed: ``agreement`` and the ``conflicting_heights`` (or why it could not be read)."""
    if not ids:
        return {"agreement": False, "agreement_error": "no replica answered"}
    low = min(heights[r] for r in ids)
    chains: dict[int, dict[int, str]] = {}
    for r in ids:
        chains[r] = {}
        for h in range(max(1, low - AGREEMENT_DEPTH), low + 1):
            try:
                chains[r][h] = (await cluster.get(r, f"/v1/blocks/{h}", timeout=5.0)).json()["id"]
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                return {"agreement": False, "agreement_error": f"replica {r} block {h}: {type(exc).__name__}"}
    conflicts = conflicting_heights(chains)
    return {"agreement": not conflicts, "conflicting_heights": conflicts}


async def evidence_count(cluster: Queryable, replica: int) -> int | None:
    try:
        return len((await cluster.get(replica, "/v1/evidence", timeout=5.0)).json())
    except (httpx.HTTPError, ValueError, TypeError):
        return None


def describe(exc: BaseException) -> str:
    """One line per leaf of an exception (group): ``Type: message``."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}".strip()


async def verdict(cluster: Queryable, load: AckedLoad | None, ids: list[int] | None = None,
                  *, converge_timeout: float = 60) -> dict[str, Any]:
    """Converged sub-logs, agreement on the last blocks, every acknowledged transaction exactly
    once, checked on the replicas of ``ids`` that are still running. Every check runs even when
    an earlier one failed; ``failures`` lists what each found. The exactly-once report is kept in
    ``load.report`` (heights of the acknowledged transactions, for latency figures)."""
    wanted = cluster.ids if ids is None else ids
    ids = [r for r in wanted if cluster.running(r)]
    failures: list[str] = []
    result: dict[str, Any] = {"ok": False, "checked": ids, "identical_sublogs": False,
                              "acked": len(load.acked) if load else 0, "acked_lost": 0, "committed_twice": 0}
    summary = None
    try:
        if not ids:
            raise CheckFailed("no replica left running")
        summary = await converged_rollups(cluster, ids, timeout=converge_timeout)
        result["identical_sublogs"] = True
    except Exception as exc:  # whatever failed (a group from parallel lookups too) is the finding
        failures.append(describe(exc))
    if load is not None and ids:
        try:
            report = await exactly_once_report(cluster, load, summary, ids[0])
            load.report = report
            result["acked_lost"] = len(report.lost)
            result["committed_twice"] = report.committed_twice if report.counted else None
            result["split_bundles"] = len(report.split_bundles)
            result["committed_missing"] = report.missing
            failures += [p for p in report.problems() if report.counted or not p.startswith("sub-logs")]
        except Exception as exc:
            result["acked_lost"] = result["committed_twice"] = None
            failures.append(describe(exc))
    result["acked_all_committed_once"] = not failures
    heights = {r: ((await cluster.status(r)) or {}).get("committed_height") for r in wanted}
    result.update(await agreement(cluster, [r for r in ids if heights[r] is not None], heights))
    result["heights"] = heights
    result["evidence"] = {r: await evidence_count(cluster, r) for r in ids}
    if failures:
        result["failure"] = "; ".join(failures)
    result["ok"] = not failures and result["agreement"]
    return result
