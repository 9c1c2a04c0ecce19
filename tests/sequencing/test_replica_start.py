"""Starting a replica: a key is created only by `ordo keygen` or for a new cluster (`ordo up`, the
harness); a lost key, a lost database, a port in use or a bad key file is refused with one line
and exit code 2, never a traceback, and nothing is created on the way."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sequencing.cli import replica as replica_main
from sequencing.cli.main import main as ordo_main
from sequencing.cluster.local import write_local_config
from sequencing.config import load_config
from sequencing.keys import key_path, public_key_path
from sequencing.replica.setup import cluster_is_new, init_new_cluster


def run_ordo(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sequencing.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=60, cwd=cwd, env=dict(os.environ), stdin=subprocess.DEVNULL,
                          check=False)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ordo: "), stderr
    assert "Traceback" not in stderr and "Exception" not in stderr
    return lines[0]


@pytest.fixture(autouse=True)
def no_replica_runs_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process `ordo replica` calls here must be refused before the replica runs."""
    async def started(*_: object) -> None:
        raise AssertionError("the replica started instead of refusing")

    monkeypatch.setattr(replica_main, "run_replica", started)


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = ordo_main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_local_config(tmp_path, n=4)


def test_a_new_cluster_gets_keys_from_up_or_the_harness_and_only_once(config_path: Path) -> None:
    config = load_config(config_path)
    assert cluster_is_new(config)
    assert init_new_cluster(config) == [0, 1, 2, 3]
    assert all(key_path(config, r).exists() for r in range(4))
    assert not cluster_is_new(config) and init_new_cluster(config) == []


@pytest.mark.parametrize("leftover", ["key", "public.key", "ordo.sqlite", "safety.sqlite", "pinned"])
def test_anything_left_of_a_cluster_makes_it_not_new(config_path: Path, leftover: str) -> None:
    """One replica's dir deleted while the others remain (or keys pinned in cluster.toml): `ordo up`
    must not create a key for it."""
    config = load_config(config_path)
    if leftover == "pinned":
        text = config_path.read_text().replace("id = 2\n", f"id = 2\npublic_key = \"{'ab' * 32}\"\n")
        config_path.write_text(text)
    else:
        config.replica_dir(2).mkdir(parents=True)
        (config.replica_dir(2) / leftover).write_text("x")
    config = load_config(config_path)
    assert not cluster_is_new(config)
    assert init_new_cluster(config) == []
    assert not key_path(config, 0).exists()


def test_replica_of_a_cluster_never_created_is_refused(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "replica", "--config", config_path, "--id", "1")
    assert code == 2
    line = one_line(err)
    assert "never created" in line and "ordo keygen" in line
    assert not key_path(load_config(config_path), 1).exists()


@pytest.mark.parametrize("recover", [False, True])
def test_a_lost_data_directory_is_refused_not_recreated(config_path: Path, recover: bool,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The whole data directory of replica 1 is gone: no new key, no empty database, with or
    without --recover; the line says what is missing and both ways to restore it."""
    config = load_config(config_path)
    init_new_cluster(config)
    for path in sorted(config.replica_dir(1).iterdir()):
        path.unlink()
    config.replica_dir(1).rmdir()
    code, _, err = cli(capsys, "replica", "--config", config_path, "--id", "1", *(["--recover"] if recover else []))
    assert code == 2
    line = one_line(err)
    assert f"private key {key_path(config, 1)} is missing" in line
    assert "restore the key file from a backup and start it with --recover" in line
    assert "ordo keygen" in line and "cluster.toml on every replica" in line
    assert not config.replica_dir(1).exists()
    # `ordo up` (LocalCluster.prepare) creates nothing either
    assert init_new_cluster(config) == [] and not config.replica_dir(1).exists()


def test_a_lost_key_with_its_database_kept_says_start_again(config_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(config_path)
    init_new_cluster(config)
    key_path(config, 3).unlink()
    code, _, err = cli(capsys, "replica", "--config", config_path, "--id", "3")
    assert code == 2 and "restore the key file from a backup and start it again" in one_line(err)
    assert not key_path(config, 3).exists()


def test_a_key_readable_by_others_is_one_line(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(config_path)
    init_new_cluster(config)
    key_path(config, 0).chmod(0o644)
    code, _, err = cli(capsys, "replica", "--config", config_path, "--id", "0")
    assert code == 2 and "readable by others" in one_line(err)


def test_keygen_says_when_a_new_key_changes_the_committee(config_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(config_path)
    code, out, err = cli(capsys, "keygen", "--config", config_path)
    assert code == 0 and out.count("(created:") == 4 and err == ""  # a new cluster: no warning
    old = public_key_path(config, 2).read_text()
    key_path(config, 2).unlink()
    code, out, err = cli(capsys, "keygen", "--config", config_path, "--id", "2")
    assert code == 0 and "(created:" in out
    assert public_key_path(config, 2).read_text() != old
    assert "NEW key" in err and "cluster.toml on every replica" in err


def test_a_database_gone_is_one_line_and_exit_2(config_path: Path) -> None:
    """It used to be an exception-group traceback around the explanation, exit 1."""
    config = load_config(config_path)
    init_new_cluster(config)
    (config.replica_dir(2) / "ordo.sqlite").unlink()
    done = run_ordo("replica", "--config", config_path, "--id", "2")
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert "ordo.sqlite: missing or empty" in line and "--recover" in line


@pytest.mark.parametrize("port", ["peer_port", "api_port", "admin_port"])
def test_a_port_in_use_is_one_line_naming_it(config_path: Path, port: str) -> None:
    """It used to be ~40 lines with three tracebacks."""
    config = load_config(config_path)
    init_new_cluster(config)
    number = getattr(config.replica(1), port)
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", number))
        holder.listen()
        done = run_ordo("replica", "--config", config_path, "--id", "1")
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert f"127.0.0.1:{number} ({port}" in line and "address already in use" in line


def test_up_names_a_lost_key_before_starting_anything(config_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """It used to recreate the key (and an empty database) for the replica; then a traceback."""
    import sequencing.cluster.launcher

    async def launched(*_: object) -> int:
        raise AssertionError("ordo up started the cluster")

    monkeypatch.setattr(sequencing.cluster.launcher, "launch", launched)
    config = load_config(config_path)
    init_new_cluster(config)
    key_path(config, 1).unlink()
    code, _, err = cli(capsys, "up", "--config", config_path, "--duration", "1")
    assert code == 2 and "private key" in one_line(err) and not key_path(config, 1).exists()


@pytest.mark.parametrize("recover", [False, True])
def test_a_database_of_another_chain_is_a_chain_id_mismatch_not_a_lost_disk(config_path: Path, recover: bool) -> None:
    """It used to advise --recover, which would have set the good database aside."""
    config = load_config(config_path)
    init_new_cluster(config)
    config_path.write_text(config_path.read_text().replace('chain_id = "ordo-test"', 'chain_id = "typo-chain"'))
    done = run_ordo("replica", "--config", config_path, "--id", "0", *(["--recover"] if recover else []))
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert "chain id mismatch: expected 'typo-chain' (cluster.toml), got 'ordo-test'" in line
    names = {p.name for p in config.replica_dir(0).iterdir()}
    assert {"ordo.sqlite", "safety.sqlite"} <= names and not any("unreadable" in n for n in names)  # kept
