"""What a new user gets wrong, through the `ordo` entry point: one `ordo: ...` line on stderr and
a non-zero exit (2: refused before doing anything), never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from consensus.crypto import KeyPair, SignatureKind, Signer
from consensus.messages import Evidence, EvidenceKind
from sequencing.cli.main import main as ordo_main
from sequencing.cluster.local import write_local_config
from sequencing.config import load_config
from sequencing.keys import key_path, load_keypair
from sequencing.replica.setup import init_new_cluster


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = ordo_main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ordo: "), err
    return lines[0]


def test_a_missing_config_file_reads_naturally(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "status", "--config", "/nonexistent")
    assert code == 2 and err == "ordo: config error: /nonexistent: file not found\n"  # was "/nonexistent: -: ..."


def test_a_config_file_that_is_not_utf8_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_local_config(tmp_path)
    path.write_bytes(path.read_bytes().replace(b'"ordo-test"', b'"ordo-t\xe9st"'))
    code, _, err = cli(capsys, "keygen", "--config", path)
    assert code == 2 and one_line(err).startswith(f"ordo: config error: {path}: not UTF-8 text (byte 0xe9")


NOT_UTF8 = os.fsdecode(b"caf\xe9")  # how Python hands a non-UTF-8 argv entry to argparse


@pytest.mark.parametrize("args", [["submit", "--rollup", "1", NOT_UTF8],
                                  ["bundle", "--tx", f"1:{NOT_UTF8}", "--tx", "2:ok"]])
def test_a_non_utf8_argument_is_one_line(args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, *args, "--config", write_local_config(tmp_path))
    assert code == 2 and "is not UTF-8 text" in one_line(err) and "--hex" in err


@pytest.fixture
def evidence(tmp_path: Path) -> tuple[Path, Path, Evidence]:
    """A cluster file with keys, and a file with replica 2's double vote in round 7."""
    config_path = write_local_config(tmp_path / "cluster", chain_id="ev-chain")
    config = load_config(config_path)
    init_new_cluster(config)
    signer = Signer("ev-chain", 2, load_keypair(key_path(config, 2)))
    a, b = b"\x01" * 32, b"\x02" * 32
    ev = Evidence.of(EvidenceKind.DOUBLE_VOTE, 2, 7, (a, signer.sign(SignatureKind.VOTE, 7, a)),
                     (b, signer.sign(SignatureKind.VOTE, 7, b)))
    path = tmp_path / "evidence.hex"
    path.write_text(ev.encode().hex())
    return config_path, path, ev


def test_evidence_verify_without_a_cluster_file_says_what_it_needs(
        evidence: tuple[Path, Path, Evidence], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config_path, path, _ = evidence
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    monkeypatch.chdir(empty)
    code, _, err = cli(capsys, "evidence", "verify", path)
    assert code == 2
    line = one_line(err)
    assert "needs the committee's keys" in line and "--config" in line and "--public-key" in line
    code, out, _ = cli(capsys, "evidence", "verify", path, "--config", config_path)
    assert code == 0 and "valid: replica 2 signed two different votes in round 7" in out


def test_evidence_verify_with_the_offenders_key_and_chain_id(
        evidence: tuple[Path, Path, Evidence], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config_path, path, _ = evidence
    monkeypatch.chdir(tmp_path)
    public = load_keypair(key_path(load_config(config_path), 2)).public.hex()
    code, out, _ = cli(capsys, "evidence", "verify", path, "--chain-id", "ev-chain", "--public-key", public)
    assert code == 0 and "valid: replica 2" in out and "on chain 'ev-chain'" in out
    code, _, err = cli(capsys, "evidence", "verify", path, "--chain-id", "other", "--public-key", public)
    assert code == 1 and "INVALID" in one_line(err)
    stranger = KeyPair.from_seed(b"someone else").public.hex()
    code, _, err = cli(capsys, "evidence", "verify", path, "--chain-id", "ev-chain", "--public-key", stranger)
    assert code == 1 and "INVALID" in one_line(err)
    code, _, err = cli(capsys, "evidence", "verify", path, "--public-key", public)
    assert code == 2 and "go together" in one_line(err)
