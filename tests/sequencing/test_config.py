"""cluster.toml parsing: every mistake is reported with the file, the key and what is wrong;
key files are private."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sequencing.config import ConfigError, load_config
from sequencing.keys import KeyFileError, committee_of, ensure_keypair, key_path, load_keypair

KEY = "ab" * 32
GOOD = """
[cluster]
chain_id = "t"
[[replica]]
id = 0
peer_port = 7000
api_port = 8000
[[replica]]
id = 1
peer_port = 7001
api_port = 8001
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    return path


def test_the_shipped_cluster_toml_is_valid() -> None:
    config = load_config(Path(__file__).resolve().parents[2] / "cluster.toml")
    assert config.size == 4 and config.chain_id == "ordo-local"
    assert [r.admin_port for r in config.replicas] == [r.api_port + 1000 for r in config.replicas]


def test_defaults_and_relative_data_dir(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.data_dir == tmp_path / "data"
    assert config.timing.base_timeout == 1.0 and config.limits.max_bundle_txs == 64


@pytest.mark.parametrize(
    "text,key,problem",
    [
        ("not toml [", "", "not valid TOML"),
        ("[[replica]]\nid = 0\npeer_port = 1\napi_port = 2\n", "cluster", "missing [cluster]"),
        (GOOD.replace('chain_id = "t"', "chain_id = 5"), "cluster.chain_id", "must be str"),
        (GOOD.replace('chain_id = "t"', 'chain_id = ""'), "cluster.chain_id", "1-64 printable"),
        (GOOD.replace("id = 1", "id = 2"), "replica.id", "without gaps"),
        (GOOD.replace("peer_port = 7001", "peer_port = 70000"), "replica[1].peer_port", "outside 1-65535"),
        (GOOD.replace("api_port = 8001", "api_port = 7000"), "replica[id=1].api_port", "also replica 0 peer_port"),
        (GOOD + "\n[timing]\nbase_timeout = -1\n", "timing.base_timeout", "0 < base_timeout"),
        (GOOD + "\n[timing]\nbase_timeout = \"fast\"\n", "timing.base_timeout", "must be float"),
        (GOOD + "\n[limits]\nmax_tx_bytes = 0\n", "limits.max_tx_bytes", "must be > 0"),
        (GOOD + "\n[limits]\nblock_max_txs = 10\n", "limits.batch_max_txs", "must be <= limits.block_max_txs"),
        (GOOD + "\n[limits]\nmax_rollup_id = 99999999999\n", "limits.max_rollup_id", "must be <="),
        (GOOD + "\n[limits]\nmystery = 1\n", "limits.mystery", "unknown key"),
        (GOOD + "\n[extra]\n", "extra", "unknown key"),
        (GOOD.replace("api_port = 8000", 'api_port = 8000\npublic_key = "zz"'), "replica[0].public_key", "hexadecimal"),
        (GOOD.replace("api_port = 8000", 'api_port = 8000\npublic_key = "00"'), "replica[0].public_key", "32 bytes"),
        # the same rule as every id (sequencing.ids): bytes.fromhex would take these whitespace-padded keys
        (GOOD.replace("api_port = 8000", f'api_port = 8000\npublic_key = "{KEY} "'), "replica[0].public_key",
         "not hexadecimal"),
        (GOOD.replace("api_port = 8000", f'api_port = 8000\npublic_key = "{KEY[:32]}{" " * 32}"'),
         "replica[0].public_key", "not hexadecimal"),
        (GOOD.replace("api_port = 8000", f'api_port = 8000\npublic_key = "0x{KEY}"'), "replica[0].public_key",
         "0x prefix"),
        (GOOD.replace("api_port = 8000", 'api_port = 8000\nhost = "bad host!"'), "replica[0].host", "neither"),
    ],
)
def test_each_mistake_names_file_key_and_problem(tmp_path: Path, text: str, key: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.path == str(path) and err.value.key == key
    assert problem in err.value.problem
    assert str(err.value).startswith(f"{path}: {key}: " if key else f"{path}: not valid TOML")


def test_a_public_key_in_either_case_is_the_same_key(tmp_path: Path) -> None:
    lower = load_config(write(tmp_path, GOOD.replace("api_port = 8000", f'api_port = 8000\npublic_key = "{KEY}"')))
    upper = load_config(write(tmp_path, GOOD.replace("api_port = 8000",
                                                     f'api_port = 8000\npublic_key = "{KEY.upper()}"')))
    assert lower.replicas[0].public_key == upper.replicas[0].public_key == bytes.fromhex(KEY)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.toml")
    assert str(err.value) == f"{tmp_path / 'nope.toml'}: file not found"  # was "...: -: file not found"


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "cluster.toml"
    path.write_bytes(GOOD.replace('"t"', '"caf\xe9"').encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: not UTF-8 text (byte 0xe9 at offset ")


def test_a_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read: is a directory"):
        load_config(tmp_path)


def test_keys_are_private_and_feed_the_committee(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match="ordo keygen"):
        committee_of(config)
    key0, created = ensure_keypair(config, 0)
    assert created and not ensure_keypair(config, 0)[1]
    ensure_keypair(config, 1)
    assert stat.S_IMODE(key_path(config, 0).stat().st_mode) == 0o600
    assert committee_of(config).public_keys[0] == key0.public
    key_path(config, 1).chmod(0o644)
    with pytest.raises(KeyFileError, match="readable by others"):
        load_keypair(key_path(config, 1))


@pytest.mark.parametrize(("text", "problem"), [
    ("ab" * 16 + " " + "ab" * 16, "not hexadecimal"),  # bytes.fromhex took this as 32 bytes
    ("ab" * 31, "62 hex digits, not 64"),
    ("0x" + "ab" * 32, "0x prefix"),
])
def test_key_files_hold_64_hex_digits(tmp_path: Path, text: str, problem: str) -> None:
    """The same rule as cluster.toml's public_key and every id (sequencing.ids)."""
    config = load_config(write(tmp_path, GOOD))
    for replica in (0, 1):
        ensure_keypair(config, replica)
    key_path(config, 0).write_text(text + "\n")
    with pytest.raises(KeyFileError, match=f"private key must be 64 hex digits.*{problem}"):
        load_keypair(key_path(config, 0))
    public = key_path(config, 1).with_name("public.key")
    good = public.read_text()
    public.write_text(" " + good.strip() + " \n")  # surrounding whitespace is fine
    committee_of(config)
    public.write_text(text + "\n")
    with pytest.raises(ConfigError, match=f"replica\\[id=1\\].public_key: .*{problem}"):
        committee_of(config)
