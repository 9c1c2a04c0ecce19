"""cluster.toml: the cluster's chain id, data directory, timing, limits and replicas.

Every problem is reported as :class:`ConfigError` naming the file, the key and what is wrong.
Public keys may be given in the file (across hosts: each operator runs ``ordo keygen`` and pastes
the printed key) or left out (the local cluster: keys live in the data directory and ``ordo up``
creates the missing ones).
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .ids import InvalidId, parse_id32

MAX_ROLLUP_ID = 2**32 - 1


class ConfigError(Exception):
    """``key`` is empty for a problem with the whole file (missing, unreadable, not TOML)."""

    def __init__(self, path: Path | str, key: str, problem: str) -> None:
        super().__init__(f"{path}: {key}: {problem}" if key else f"{path}: {problem}")
        self.path, self.key, self.problem = str(path), key, problem


@dataclass(frozen=True, slots=True)
class Timing:
    base_timeout: float = 1.0
    max_timeout: float = 10.0
    backoff: float = 1.5
    batch_interval: float = 0.05
    idle_block_delay: float = 0.2


LEADER_SCHEDULES = ("reputation", "round-robin")


@dataclass(frozen=True, slots=True)
class Consensus:
    """``leader``: how each round's leader is chosen (docs/PROTOCOL.md, "Leader election"). Every
    replica of a cluster must use the same schedule, or proposals are refused (liveness only)."""

    leader: str = "reputation"


@dataclass(frozen=True, slots=True)
class Limits:
    max_tx_bytes: int = 64 * 1024
    max_bundle_txs: int = 64
    max_rollup_id: int = MAX_ROLLUP_ID
    mempool_max_txs: int = 200_000
    mempool_max_bytes: int = 256 * 1024 * 1024
    batch_max_txs: int = 2_000
    batch_max_bytes: int = 1024 * 1024
    batch_ttl_blocks: int = 500
    dedup_window_txs: int = 250_000  # the split's window of recent blocks holds at most this many ids
    batch_pool_author_bytes: int = 16 * 1024 * 1024
    block_max_batches: int = 64
    block_max_txs: int = 20_000
    max_frame_bytes: int = 16 * 1024 * 1024
    evidence_max_bytes_per_block: int = 16 * 1024
    evidence_max_age_rounds: int = 10_000
    evidence_max_per_offender: int = 8
    submit_max_batch: int = 10_000
    # the public API's admission control (sequencing/api/limits.py, docs/OPERATIONS.md)
    api_max_connections: int = 256
    api_max_connections_per_client: int = 32
    api_client_rate: int = 200
    api_client_burst: int = 400
    api_error_cost: int = 50
    api_max_body_bytes: int = 10 * 1024 * 1024
    api_body_timeout: int = 10


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    id: int
    host: str
    peer_port: int
    api_port: int
    admin_port: int
    public_key: bytes | None


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    path: Path
    chain_id: str
    data_dir: Path
    replicas: tuple[ReplicaConfig, ...]
    timing: Timing = field(default_factory=Timing)
    limits: Limits = field(default_factory=Limits)
    consensus: Consensus = field(default_factory=Consensus)

    def replica(self, replica_id: int) -> ReplicaConfig:
        for r in self.replicas:
            if r.id == replica_id:
                return r
        raise ConfigError(self.path, "replica", f"no [[replica]] with id = {replica_id}")

    def replica_dir(self, replica_id: int) -> Path:
        return self.data_dir / f"replica-{replica_id}"

    def api_url(self, replica_id: int) -> str:
        """Where a client reaches this replica's API (a wildcard bind is reached on loopback)."""
        r = self.replica(replica_id)
        host = "127.0.0.1" if r.host in ("0.0.0.0", "::") else r.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{r.api_port}"

    def admin_url(self, replica_id: int) -> str:
        return f"http://127.0.0.1:{self.replica(replica_id).admin_port}"

    @property
    def size(self) -> int:
        return len(self.replicas)


def load_config(path: Path | str) -> ClusterConfig:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, "", "file not found") from None
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read: {(exc.strerror or str(exc)).lower()}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, "", f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                                    "save it as UTF-8") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from None
    return parse_config(raw, path)


def parse_config(raw: dict[str, Any], path: Path) -> ClusterConfig:
    cluster = _table(raw, "cluster", path, required=True)
    chain_id = _get(cluster, "cluster.chain_id", str, path)
    if not chain_id or len(chain_id) > 64 or not chain_id.isprintable():
        raise ConfigError(path, "cluster.chain_id", "must be 1-64 printable characters")
    data_dir = Path(_get(cluster, "cluster.data_dir", str, path, default="data"))
    if not data_dir.is_absolute():
        data_dir = (path.parent / data_dir).resolve()
    _reject_unknown(cluster, {"chain_id", "data_dir"}, "cluster", path)
    timing = _dataclass_from(Timing, _table(raw, "timing", path), "timing", path)
    if not 0 < timing.base_timeout <= timing.max_timeout:
        raise ConfigError(path, "timing.base_timeout", "need 0 < base_timeout <= max_timeout")
    if timing.backoff < 1:
        raise ConfigError(path, "timing.backoff", "must be >= 1")
    if timing.batch_interval <= 0:
        raise ConfigError(path, "timing.batch_interval", "must be > 0")
    if not 0 <= timing.idle_block_delay < timing.base_timeout:
        raise ConfigError(path, "timing.idle_block_delay", "need 0 <= idle_block_delay < base_timeout")
    limits = _dataclass_from(Limits, _table(raw, "limits", path), "limits", path)
    for f in fields(Limits):
        if getattr(limits, f.name) <= 0:
            raise ConfigError(path, f"limits.{f.name}", "must be > 0")
    if limits.max_rollup_id > MAX_ROLLUP_ID:
        raise ConfigError(path, "limits.max_rollup_id", f"must be <= {MAX_ROLLUP_ID}")
    if limits.batch_pool_author_bytes < 2 * limits.batch_max_bytes:
        raise ConfigError(path, "limits.batch_pool_author_bytes", "must be >= 2 * limits.batch_max_bytes "
                          "(an author's pending batches: at least two full ones)")
    if limits.batch_max_txs > limits.block_max_txs:
        raise ConfigError(path, "limits.batch_max_txs", "must be <= limits.block_max_txs (a batch must fit a block)")
    if limits.dedup_window_txs < limits.block_max_txs:
        raise ConfigError(path, "limits.dedup_window_txs",
                          "must be >= limits.block_max_txs (the window holds at least a full block)")
    if limits.max_bundle_txs > limits.batch_max_txs:
        raise ConfigError(path, "limits.max_bundle_txs", "must be <= limits.batch_max_txs (a bundle must fit a batch)")
    if limits.api_max_body_bytes < 2 * limits.max_tx_bytes + 1024:
        raise ConfigError(path, "limits.api_max_body_bytes", "must fit one transaction: >= 2 * max_tx_bytes + 1024")
    replicas = _replicas(raw, path)
    consensus = _dataclass_from(Consensus, _table(raw, "consensus", path), "consensus", path)
    if consensus.leader not in LEADER_SCHEDULES:
        raise ConfigError(path, "consensus.leader", f"must be one of {', '.join(map(repr, LEADER_SCHEDULES))}, "
                          f"got {consensus.leader!r}")
    _reject_unknown(raw, {"cluster", "timing", "limits", "consensus", "replica"}, "", path)
    return ClusterConfig(path, chain_id, data_dir, replicas, timing, limits, consensus)


def _replicas(raw: dict[str, Any], path: Path) -> tuple[ReplicaConfig, ...]:
    items = raw.get("replica")
    if not isinstance(items, list) or not items:
        raise ConfigError(path, "replica", "need at least one [[replica]] table")
    out = []
    for i, item in enumerate(items):
        where = f"replica[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(path, where, "must be a table")
        rid = _get(item, f"{where}.id", int, path)
        host = _get(item, f"{where}.host", str, path, default="127.0.0.1")
        _check_host(host, f"{where}.host", path)
        peer_port = _port(item, f"{where}.peer_port", path)
        api_port = _port(item, f"{where}.api_port", path)
        admin_port = _port(item, f"{where}.admin_port", path, default=api_port + 1000)
        key_hex = _get(item, f"{where}.public_key", str, path, default="")
        public_key = None
        if key_hex:
            try:
                public_key = parse_id32(key_hex, "public_key")
            except InvalidId as exc:
                problem = f"must be 32 bytes (64 hex digits): {exc.problem}"
                raise ConfigError(path, f"{where}.public_key", problem) from None
        allowed = {"id", "host", "peer_port", "api_port", "admin_port", "public_key"}
        _reject_unknown(item, allowed, where, path)
        out.append(ReplicaConfig(rid, host, peer_port, api_port, admin_port, public_key))
    ids = sorted(r.id for r in out)
    if ids != list(range(len(out))):
        raise ConfigError(path, "replica.id", f"ids must be 0..{len(out) - 1} without gaps, got {ids}")
    endpoints: dict[tuple[str, int], str] = {}
    for r in out:
        ports = (("peer_port", r.peer_port), ("api_port", r.api_port), ("admin_port", r.admin_port))
        for name, port in ports:
            key = (r.host, port)
            if key in endpoints:
                raise ConfigError(path, f"replica[id={r.id}].{name}",
                                  f"{r.host}:{port} is also {endpoints[key]}")
            endpoints[key] = f"replica {r.id} {name}"
    keys = [r.public_key for r in out if r.public_key is not None]
    if len(set(keys)) != len(keys):
        raise ConfigError(path, "replica.public_key", "two replicas have the same public key")
    return tuple(sorted(out, key=lambda r: r.id))


def _table(raw: dict[str, Any], name: str, path: Path, *, required: bool = False) -> dict[str, Any]:
    value = raw.get(name)
    if value is None:
        if required:
            raise ConfigError(path, name, f"missing [{name}] table")
        return {}
    if not isinstance(value, dict):
        raise ConfigError(path, name, "must be a table")
    return value


def _get(table: dict[str, Any], key: str, kind: type, path: Path, default: Any = None) -> Any:
    name = key.rsplit(".", 1)[-1]
    if name not in table:
        if default is None:
            raise ConfigError(path, key, "missing")
        return default
    value = table[name]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(path, key, f"must be {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def _port(table: dict[str, Any], key: str, path: Path, default: int | None = None) -> int:
    port: int = _get(table, key, int, path, default=default)
    if not 1 <= port <= 65535:
        raise ConfigError(path, key, f"port {port} outside 1-65535")
    return port


def _check_host(host: str, key: str, path: Path) -> None:
    if not host:
        raise ConfigError(path, key, "empty host")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not all(part and (part.isalnum() or "-" in part) for part in host.split(".")):
            raise ConfigError(path, key, f"{host!r} is neither an IP address nor a host name") from None


def _dataclass_from(cls: type, table: dict[str, Any], prefix: str, path: Path) -> Any:
    known = {f.name: f for f in fields(cls)}
    _reject_unknown(table, set(known), prefix, path)
    values = {}
    for name in table:
        default = known[name].default
        values[name] = _get(table, f"{prefix}.{name}", type(default), path)
    return cls(**values)


def _reject_unknown(table: dict[str, Any], allowed: set[str], prefix: str, path: Path) -> None:
    for key in table:
        if key not in allowed:
            where = f"{prefix}.{key}" if prefix else key
            raise ConfigError(path, where, f"unknown key (expected one of {', '.join(sorted(allowed))})")
