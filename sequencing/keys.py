"""Replica keys on disk: ``<data_dir>/replica-<id>/key`` (private, hex, mode 0600) and
``public.key`` next to it. Private keys never go into cluster.toml."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from consensus.committee import Committee
from consensus.crypto import KeyPair

from .config import ClusterConfig, ConfigError
from .ids import InvalidId, parse_id32


class KeyFileError(Exception):
    """A key file that exists but cannot be used."""


def key_path(config: ClusterConfig, replica_id: int) -> Path:
    return config.replica_dir(replica_id) / "key"


def public_key_path(config: ClusterConfig, replica_id: int) -> Path:
    return config.replica_dir(replica_id) / "public.key"


def load_keypair(path: Path) -> KeyPair:
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read private key: {exc.strerror}") from None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(f"{path}: private key is readable by others (mode {mode:o}); chmod 600 it")
    try:
        raw = parse_id32(text, "private key")
    except InvalidId as exc:
        raise KeyFileError(f"{path}: private key must be 64 hex digits (32 bytes): {exc.problem}") from None
    return KeyPair.from_private_bytes(raw)


def write_keypair(directory: Path, key: KeyPair) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    private = directory / "key"
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.private_bytes().hex() + "\n")
    (directory / "public.key").write_text(key.public.hex() + "\n")


def ensure_keypair(config: ClusterConfig, replica_id: int) -> tuple[KeyPair, bool]:
    """Load this replica's key, creating it if absent; returns (key, created)."""
    path = key_path(config, replica_id)
    if path.exists():
        return load_keypair(path), False
    key = KeyPair.generate()
    write_keypair(path.parent, key)
    return key, True


def restore_public_key(config: ClusterConfig, replica_id: int, key: KeyPair) -> None:
    """Write ``public.key`` from the private key if it is missing (a backup of ``key`` alone)."""
    path = public_key_path(config, replica_id)
    if not path.exists():
        path.write_text(key.public.hex() + "\n")


def committee_of(config: ClusterConfig) -> Committee:
    """Public keys from cluster.toml, falling back to ``public.key`` files in the data dir."""
    keys = []
    for r in config.replicas:
        if r.public_key is not None:
            keys.append(r.public_key)
            continue
        path = public_key_path(config, r.id)
        try:
            text = path.read_text().strip()
        except OSError:
            raise _no_public_key(config, r.id, f"no readable {path}") from None
        try:
            keys.append(parse_id32(text, "public key"))
        except InvalidId as exc:
            raise _no_public_key(config, r.id, f"{path} is not 64 hex digits ({exc.problem})") from None
    try:
        return Committee(config.chain_id, tuple(keys))
    except Exception as exc:
        raise ConfigError(config.path, "replica.public_key", str(exc)) from None


def check_own_key(config: ClusterConfig, replica_id: int, key: KeyPair) -> None:
    expected = config.replica(replica_id).public_key
    if expected is not None and expected != key.public:
        raise ConfigError(
            config.path, f"replica[id={replica_id}].public_key",
            f"does not match the private key in {key_path(config, replica_id)}",
        )


def _no_public_key(config: ClusterConfig, replica_id: int, problem: str) -> ConfigError:
    return ConfigError(
        config.path, f"replica[id={replica_id}].public_key",
        f"not set, and {problem}: put replica {replica_id}'s public key into cluster.toml "
        f"or restore that file (for a new cluster: `ordo keygen --config {config.path}`)",
    )
