"""A local cluster of real replica processes under program control: start, stop (SIGTERM),
kill -9, restart one replica, notice exits it did not cause (:meth:`LocalCluster.poll_exits`),
query status, set fault rules. Used by ``ordo up``, the integration tests, the fault-injection
scripts and ``ordo bench``. Each replica runs in a session of its own (a terminal's Ctrl-C
reaches only the program that started it)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import trio

from ..config import ClusterConfig, load_config
from ..replica.setup import init_new_cluster
from .netns import NetnsLab

STARTUP_TIMEOUT = 60.0
# Timing for throwaway clusters (tests, fault scripts): short timeouts, no idle pause.
FAST_TIMING = {"base_timeout": 0.5, "max_timeout": 2.0, "idle_block_delay": 0.02, "batch_interval": 0.02}


class HarnessError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ReplicaExit:
    """A replica process that ended without the harness stopping or killing it."""

    replica: int
    returncode: int
    log_tail: str

    @property
    def signal_name(self) -> str | None:
        if self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"

    @property
    def last_line(self) -> str:
        """The last meaningful line of the log tail (a traceback's exception, not its frame)."""
        lines = [ln.strip(" |") for ln in self.log_tail.splitlines()[1:] if ln.strip(" |+-")]
        return lines[-1] if lines else "(nothing logged)"

    def describe(self) -> str:
        return f"killed by {self.signal_name}" if self.signal_name else f"exit code {self.returncode}"

    def to_json(self) -> dict[str, Any]:
        return {"replica": self.replica, "exit": self.describe(),
                "exit_code": self.returncode if self.returncode >= 0 else None, "signal": self.signal_name,
                "last_line": self.last_line, "log_tail": self.log_tail.splitlines()}


def free_ports(count: int) -> list[int]:
    """Ports the kernel just handed out; released at once (a race is possible but rare)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def write_local_config(directory: Path, *, n: int = 4, chain_id: str = "ordo-test",
                       timing: dict[str, float] | None = None, limits: dict[str, int] | None = None,
                       consensus: dict[str, str] | None = None, hosts: list[str] | None = None) -> Path:
    """A cluster.toml for ``n`` replicas on 127.0.0.1 (or ``hosts``, one per replica) with free
    ports, data under ``directory``."""
    ports = free_ports(3 * n)
    lines = ["[cluster]", f'chain_id = "{chain_id}"', 'data_dir = "data"', ""]
    if timing:
        lines += ["[timing]", *(f"{k} = {v}" for k, v in timing.items()), ""]
    if limits:
        lines += ["[limits]", *(f"{k} = {v}" for k, v in limits.items()), ""]
    if consensus:
        lines += ["[consensus]", *(f'{k} = "{v}"' for k, v in consensus.items()), ""]
    for i in range(n):
        host = "127.0.0.1" if hosts is None else hosts[i]
        lines += ["[[replica]]", f"id = {i}", f'host = "{host}"', f"peer_port = {ports[3 * i]}",
                  f"api_port = {ports[3 * i + 1]}", f"admin_port = {ports[3 * i + 2]}", ""]
    path = directory / "cluster.toml"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


class LocalCluster:
    def __init__(self, config: ClusterConfig | Path, *, log_level: str = "info", netns: NetnsLab | None = None) -> None:
        self.config = config if isinstance(config, ClusterConfig) else load_config(config)
        self.log_level = log_level
        self.netns = netns  # replicas in network namespaces of their own (cluster/netns.py), set up by the caller
        self.processes: dict[int, trio.Process] = {}
        self.exits: list[ReplicaExit] = []  # every exit the harness did not cause, in order
        self._deliberate: set[int] = set()  # replicas whose current process we stopped or killed
        self._reported: set[int] = set()  # replicas whose current process's exit is in self.exits
        self._paused: set[int] = set()  # replicas we SIGSTOPped and not yet SIGCONTed
        self._logs: dict[int, BinaryIO] = {}
        self.client = httpx.AsyncClient(timeout=20.0)  # above the API's durable-ack wait (10 s)

    # -- addresses -----------------------------------------------------------------------------

    def api(self, replica_id: int) -> str:
        return self.config.api_url(replica_id)

    def admin(self, replica_id: int) -> str:
        return self.config.admin_url(replica_id)

    @property
    def ids(self) -> list[int]:
        return [r.id for r in self.config.replicas]

    # -- processes -----------------------------------------------------------------------------

    def prepare(self) -> list[int]:
        return init_new_cluster(self.config)  # keys only for a new cluster: a lost one is refused

    async def start(self, replica_id: int, *extra: str, env: dict[str, str] | None = None) -> None:
        """Start one replica; ``env`` adds to its environment (e.g. ``ORDO_CRASH_AT``)."""
        if replica_id in self.processes and self.processes[replica_id].returncode is None:
            raise HarnessError(f"replica {replica_id} is already running")
        self.poll_exits()  # an unexplained exit of the process being replaced is kept
        directory = self.config.replica_dir(replica_id)
        directory.mkdir(parents=True, exist_ok=True)
        old = self._logs.pop(replica_id, None)
        if old is not None:
            old.close()
        log = open(directory / "replica.log", "ab")  # noqa: SIM115 - closed in _close_log
        self._logs[replica_id] = log
        command = [sys.executable, "-m", "sequencing.cli", "replica", "--config", str(self.config.path),
                   "--id", str(replica_id), "--log-level", self.log_level, *extra]
        if self.netns is not None:
            command = self.netns.command(replica_id, command)
        env = dict(os.environ, **(env or {}), ORDO_PARENT_PID=str(os.getpid()))
        # A session of its own: a terminal's Ctrl-C (SIGINT to the foreground process group)
        # reaches only the launcher, which then stops the replicas in order.
        self.processes[replica_id] = await trio.lowlevel.open_process(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True,
        )
        self._deliberate.discard(replica_id)
        self._reported.discard(replica_id)

    async def start_all(self) -> None:
        self.prepare()
        for rid in self.ids:
            await self.start(rid)
        await self.wait_ready()

    def running(self, replica_id: int) -> bool:
        proc = self.processes.get(replica_id)
        return proc is not None and proc.returncode is None

    def poll_exits(self) -> list[ReplicaExit]:
        """Replicas that ended since the last call without :meth:`stop`/:meth:`kill` (crashed,
        or killed from outside); each is also appended to :attr:`exits`."""
        new = []
        for rid, proc in sorted(self.processes.items()):
            code = proc.poll()
            if code is None or rid in self._deliberate or rid in self._reported:
                continue
            self._reported.add(rid)
            new.append(ReplicaExit(rid, code, self.log_tail(rid, lines=40)))
        self.exits.extend(new)
        return new

    def expect_exit(self, replica_id: int) -> None:
        """The replica's current process is meant to end by itself (e.g. at an ``ORDO_CRASH_AT``
        crash point): its exit is not one :meth:`poll_exits` reports."""
        self._deliberate.add(replica_id)

    async def wait_ready(self, ids: list[int] | None = None, timeout: float = STARTUP_TIMEOUT) -> None:
        pending = set(self.ids if ids is None else ids)
        with trio.move_on_after(timeout):
            while pending:
                for rid in sorted(pending):
                    proc = self.processes.get(rid)
                    if proc is not None and proc.returncode is not None:
                        raise HarnessError(f"replica {rid} exited with code {proc.returncode}:\n"
                                           f"{self.log_tail(rid)}")
                    status = await self.status(rid)
                    if status is not None and status.get("started"):
                        pending.discard(rid)
                await trio.sleep(0.1)
        if pending:
            raise HarnessError(f"replicas {sorted(pending)} not ready within {timeout:.0f}s:\n"
                               + "\n".join(self.log_tail(r) for r in sorted(pending)))

    async def stop(self, replica_id: int, grace: float = 10.0) -> int | None:
        proc = self.processes.get(replica_id)
        if proc is None:
            return None
        self.poll_exits()
        self._deliberate.add(replica_id)
        with trio.CancelScope(shield=True):
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                if replica_id in self._paused:  # a stopped process acts on SIGTERM only once continued
                    self.resume(replica_id)
                with trio.move_on_after(grace):
                    await proc.wait()
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        return proc.returncode

    async def kill(self, replica_id: int) -> None:
        """kill -9: no chance to flush or close anything."""
        proc = self.processes.get(replica_id)
        self.poll_exits()
        self._deliberate.add(replica_id)
        if proc is not None and proc.returncode is None:
            proc.kill()
            with trio.CancelScope(shield=True):
                await proc.wait()
        self._paused.discard(replica_id)

    def pause(self, replica_id: int) -> None:
        """SIGSTOP: the process is frozen, not dead; its sockets stay open and peers' messages
        queue up for it (undone by :meth:`resume`; stop/kill resume it first)."""
        proc = self.processes[replica_id]
        if proc.returncode is None:
            proc.send_signal(signal.SIGSTOP)
            self._paused.add(replica_id)

    def resume(self, replica_id: int) -> None:
        """SIGCONT a paused replica."""
        proc = self.processes[replica_id]
        self._paused.discard(replica_id)
        if proc.returncode is None:
            proc.send_signal(signal.SIGCONT)

    def paused(self, replica_id: int) -> bool:
        return replica_id in self._paused

    async def restart(self, replica_id: int, *extra: str) -> None:
        await self.stop(replica_id)
        await self.start(replica_id, *extra)
        await self.wait_ready([replica_id])

    async def stop_all(self) -> None:
        with trio.CancelScope(shield=True):
            self.poll_exits()
            for rid in list(self.processes):
                proc = self.processes[rid]
                self._deliberate.add(rid)
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                    if rid in self._paused:
                        self.resume(rid)
            for rid in list(self.processes):
                await self.stop(rid)
            for log in self._logs.values():
                log.close()
            self._logs.clear()
            await self.client.aclose()

    def log_tail(self, replica_id: int, lines: int = 20) -> str:
        path = self.config.replica_dir(replica_id) / "replica.log"
        try:
            text = path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return f"replica {replica_id}: (no log)"
        return f"--- replica {replica_id} log ---\n" + "\n".join(text)

    # -- queries -------------------------------------------------------------------------------

    async def status(self, replica_id: int) -> dict[str, Any] | None:
        try:
            response = await self.client.get(f"{self.api(replica_id)}/status", timeout=1.0)
            result: dict[str, Any] = response.json()
            return result
        except (httpx.HTTPError, ValueError):
            return None

    async def statuses(self) -> dict[int, dict[str, Any] | None]:
        return {rid: await self.status(rid) for rid in self.ids}

    async def get(self, replica_id: int, path: str, **kwargs: Any) -> httpx.Response:
        return await self._honouring_429(lambda: self.client.get(f"{self.api(replica_id)}{path}", **kwargs))

    async def post(self, replica_id: int, path: str, **kwargs: Any) -> httpx.Response:
        return await self._honouring_429(lambda: self.client.post(f"{self.api(replica_id)}{path}", **kwargs))

    async def _honouring_429(self, send: Any, attempts: int = 10) -> httpx.Response:
        """A request rate-limited by the API's admission control (429) is resent after Retry-After:
        sequential checks (one GET per acknowledged tx) can outrun a replica's per-address rate."""
        response: httpx.Response = await send()
        for _ in range(attempts):
            if response.status_code != 429:
                break
            retry_after = response.headers.get("retry-after", "1")
            await trio.sleep(min(5.0, float(retry_after) if retry_after.isdigit() else 1.0))
            response = await send()
        return response

    async def set_faults(self, replica_id: int, rules: dict[str, Any], *, replace: bool = False) -> Any:
        """The replica's fault rules through its admin API; in network namespaces, ``blocked``
        links are cut in the kernel instead (a blackhole route in the replica's namespace)."""
        method = "PUT" if replace else "PATCH"
        if self.netns is not None:
            return await self._netns_faults(replica_id, method, rules)
        response = await self.client.request(method, f"{self.admin(replica_id)}/admin/faults", json=rules)
        response.raise_for_status()
        return response.json()

    async def clear_faults(self, replica_id: int) -> None:
        if self.netns is not None:
            await self._netns_faults(replica_id, "DELETE", None)
            return
        (await self.client.delete(f"{self.admin(replica_id)}/admin/faults")).raise_for_status()

    async def _netns_faults(self, replica_id: int, method: str, rules: dict[str, Any] | None) -> Any:
        lab = self.netns
        assert lab is not None
        if method in ("PUT", "DELETE"):
            await trio.to_thread.run_sync(lab.unblock, replica_id)
        rest: dict[str, Any] = {}
        for peer, rule in (rules or {}).items():
            if rule.get("blocked"):
                await trio.to_thread.run_sync(lab.block, replica_id, int(peer))
            others = {k: v for k, v in rule.items() if k != "blocked"}
            if others:
                rest[peer] = others
        if method == "PATCH" and not rest:
            return {"kernel_blocked": lab.blocked(replica_id)}
        # the admin API listens on the namespace's loopback: ask it from inside
        script = ("import httpx, json, sys; r = httpx.request(sys.argv[1], sys.argv[2], json=json.loads(sys.argv[3]) "
                  "if sys.argv[3] != 'null' else None, timeout=10); r.raise_for_status(); print(r.text)")
        done = await trio.run_process(
            lab.command(replica_id, [sys.executable, "-c", script, method,
                                     f"{self.admin(replica_id)}/admin/faults", json.dumps(rest if rules else None)]),
            capture_stdout=True, capture_stderr=True, check=False)
        if done.returncode != 0:
            raise HarnessError(f"replica {replica_id}: admin {method} failed: {done.stderr.decode()[-500:]}")
        return {"kernel_blocked": lab.blocked(replica_id), "transport": json.loads(done.stdout or b"null")}

    async def wait_height(self, height: int, ids: list[int] | None = None, timeout: float = 30.0) -> None:
        ids = self.ids if ids is None else ids
        with trio.move_on_after(timeout):
            while True:
                heights = [((await self.status(rid)) or {}).get("committed_height", 0) for rid in ids]
                if min(heights) >= height:
                    return
                await trio.sleep(0.1)
        raise HarnessError(f"replicas {ids} did not reach height {height} within {timeout}s "
                           f"(heights {heights})")

    async def heights(self) -> dict[int, int]:
        return {rid: ((await self.status(rid)) or {}).get("committed_height", -1) for rid in self.ids}

    def peer_address(self, replica_id: int) -> tuple[str, int]:
        r = self.config.replica(replica_id)
        return r.host, r.peer_port

    async def metric(self, replica_id: int, name: str, labels: str = "") -> float:
        """The value of ``name{labels}`` in the replica's /metrics, or the sum over all its label
        sets when ``labels`` is empty."""
        text = (await self.get(replica_id, "/metrics")).text
        label_part = re.escape(labels) if labels else r"(?:\{[^}]*\})?"
        pattern = rf"^{re.escape(name)}{label_part} (\S+)$"
        return sum(float(m.group(1)) for m in re.finditer(pattern, text, re.MULTILINE))


@asynccontextmanager
async def running_cluster(config: ClusterConfig | Path, *, wait_height: int = 0,
                          log_level: str = "info") -> AsyncIterator[LocalCluster]:
    """Start every replica (and, with ``wait_height``, wait until each has committed that far);
    stop them all on the way out, whatever happened."""
    cluster = LocalCluster(config, log_level=log_level)
    try:
        await cluster.start_all()
        if wait_height:
            await cluster.wait_height(wait_height)
        yield cluster
    finally:
        await cluster.stop_all()
