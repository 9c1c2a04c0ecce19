"""The live status table of ``ordo up`` and ``ordo status --watch`` (rich), or a plain line every
few seconds when stdout is not a terminal (logs, CI)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import trio
from rich.console import Console
from rich.live import Live
from rich.table import Table

from ..config import ClusterConfig

if TYPE_CHECKING:
    from .local import LocalCluster

COLUMNS = ("replica", "state", "round", "leader", "height", "txs", "peers", "mempool", "evidence")
Notes = Callable[[int], "str | None"]  # why a replica is down (from ordo up's supervisor)


async def fetch_statuses(config: ClusterConfig, client: httpx.AsyncClient) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in config.replicas:
        try:
            response = await client.get(f"{config.api_url(r.id)}/status", timeout=1.0)
            out.append({"state": "up", **response.json()})
        except (httpx.HTTPError, ValueError):
            out.append({"id": r.id, "state": "down"})
    return out


def _down(rid: int, notes: Notes | None) -> str:
    note = notes(rid) if notes is not None else None
    return f"down ({note})" if note else "down"


def render_table(config: ClusterConfig, statuses: list[dict[str, Any]], notes: Notes | None = None) -> Table:
    table = Table(title=f"ordo cluster {config.chain_id!r}", title_justify="left")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "state" else "right", no_wrap=True,
                         min_width=len(column))
    for s in statuses:
        if s.get("state") != "up":
            table.add_row(str(s["id"]), f"[red]{_down(s['id'], notes)}[/red]", *["-"] * (len(COLUMNS) - 2))
            continue
        state = "recovering" if s.get("recovering") else "syncing" if s.get("syncing") else "up"
        table.add_row(
            str(s["id"]), f"[green]{state}[/green]", str(s["round"]), str(s["leader"]),
            str(s["committed_height"]), str(s.get("txs_committed", 0)),
            f"{len(s['peers_connected'])}/{config.size - 1}", str(s["mempool_txs"]),
            str(s.get("evidence", 0)),
        )
    return table


def plain_line(statuses: list[dict[str, Any]], notes: Notes | None = None) -> str:
    parts = []
    for s in statuses:
        if s.get("state") != "up":
            parts.append(f"r{s['id']}:{_down(s['id'], notes)}")
        else:
            parts.append(f"r{s['id']}:round={s['round']} h={s['committed_height']} "
                         f"peers={len(s['peers_connected'])} txs={s.get('txs_committed', 0)}")
    return " | ".join(parts)


class StatusView:
    def __init__(self, config: ClusterConfig, client: httpx.AsyncClient, cluster: LocalCluster | None = None,
                 *, live: bool = True, interval: float = 0.5, notes: Notes | None = None) -> None:
        self.config = config
        self.notes = notes
        self.client = client
        self.cluster = cluster
        self.live = live and sys.stdout.isatty()
        self.interval = interval

    async def run(self) -> None:
        if not self.live:
            while True:
                print(plain_line(await fetch_statuses(self.config, self.client), self.notes), flush=True)
                await trio.sleep(2.0)
        console = Console()
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            while True:
                live.update(render_table(self.config, await fetch_statuses(self.config, self.client), self.notes))
                await trio.sleep(self.interval)
