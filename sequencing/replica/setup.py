"""A replica's directory on disk: its key and empty databases, created by ``ordo keygen``, ``ordo up``
and the test harness; and what to tell the operator when the key is missing."""

from __future__ import annotations

from ..config import ClusterConfig
from ..keys import ensure_keypair, key_path
from ..storage import DATABASE_FILES, open_stores


def init_replica_dir(config: ClusterConfig, replica_id: int) -> bool:
    """``ordo keygen``: create the key and, where missing, an empty database. Returns True if it
    created a key. A new key never signed anything, so a fresh safety state is safe with it."""
    if key_path(config, replica_id).exists():
        return False
    ensure_keypair(config, replica_id)
    for store in open_stores(config.replica_dir(replica_id), chain_id=config.chain_id,
                             replica_id=replica_id, create=True):
        store.close()
    return True


def cluster_is_new(config: ClusterConfig) -> bool:
    """A cluster that was never created: cluster.toml pins no public key and no replica has a key,
    a public key or a database under the data directory."""
    if any(r.public_key is not None for r in config.replicas):
        return False
    names = ("key", "public.key", *DATABASE_FILES)
    return not any((config.replica_dir(r.id) / name).exists() for r in config.replicas for name in names)


def init_new_cluster(config: ClusterConfig) -> list[int]:
    """``ordo up`` and the test harness: create every replica's key and empty databases if (and
    only if) the cluster is new (:func:`cluster_is_new`); returns the replicas initialised. Any
    other missing key is for the operator to restore (the replica refuses to start)."""
    if not cluster_is_new(config):
        return []
    return [r.id for r in config.replicas if init_replica_dir(config, r.id)]


def missing_key_problem(config: ClusterConfig, replica_id: int) -> str:
    """One line: what is missing and how to restore it (docs/OPERATIONS.md, "Lost key")."""
    path = key_path(config, replica_id)
    where = f"--config {config.path}"
    if cluster_is_new(config):
        return (f"replica {replica_id}: no key at {path}: this cluster was never created; run "
                f"`ordo keygen {where}` (or `ordo up {where}`) first")
    has_db = all((config.replica_dir(replica_id) / name).exists() for name in DATABASE_FILES)
    restore = "start it again" if has_db else "start it with --recover (its database is gone too)"
    return (f"replica {replica_id}: private key {path} is missing, so it cannot sign as replica "
            f"{replica_id}; restore the key file from a backup and {restore}, or, if the key is lost "
            f"for good, run `ordo keygen {where} --id {replica_id}` and put the new public key into "
            f"cluster.toml on every replica (docs/OPERATIONS.md, \"Lost key\")")
