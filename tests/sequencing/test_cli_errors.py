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


def test_a_malformed_tx_id_is_refused_before_contacting_a_replica(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_local_config(tmp_path)  # nothing listens on its ports
    for bad, problem in [("zz" * 32, "not hexadecimal"), ("ab" * 31, "62 hex digits, not 64"),
                         ("0x0x" + "ab" * 31, "has a 0x prefix"), ("ab" * 33, "66 hex digits, not 64")]:
        code, _, err = cli(capsys, "tx", bad, "--config", config)
        line = one_line(err)
        assert code == 2 and "is not an id (64 hex digits)" in line and problem in line, line
    # what a person pastes: spaces and line breaks, a 0x prefix, upper case -> the replica is asked
    for good in [" " + "ab" * 32 + "\n", "ab" * 16 + "\n" + "ab" * 16, "0x" + "ab" * 32, "AB" * 32]:
        code, _, err = cli(capsys, "tx", good, "--config", config, "--no-verify")
        assert code == 1 and "cannot reach" in one_line(err), (good, err)


def test_a_malformed_public_key_says_what_is_wrong(
        evidence: tuple[Path, Path, Evidence], capsys: pytest.CaptureFixture[str]) -> None:
    config_path, path, _ = evidence
    public = load_keypair(key_path(load_config(config_path), 2)).public.hex()
    for bad, problem in [(public[:-2], "62 hex digits, not 64"), ("zz" * 32, "not hexadecimal")]:
        code, _, err = cli(capsys, "evidence", "verify", path, "--chain-id", "ev-chain", "--public-key", bad)
        line = one_line(err)
        assert code == 2 and "--public-key '" in line and "is not a key (64 hex digits)" in line, line
        assert problem in line, line
    for good in ["0x" + public, f" {public.upper()} "]:
        code, out, _ = cli(capsys, "evidence", "verify", path, "--chain-id", "ev-chain", "--public-key", good)
        assert code == 0 and "valid: replica 2" in out


def test_evidence_with_a_malformed_field_is_invalid_not_unreadable(
        evidence: tuple[Path, Path, Evidence], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Seven fields but not valid evidence (blocks out of canonical order): exit 1, with either
    source of keys."""
    from consensus.encoding import pack

    config_path, _, ev = evidence
    swapped = tmp_path / "swapped.hex"
    swapped.write_text(pack([int(ev.kind), ev.offender, ev.round, ev.block_b, ev.signature_b, ev.block_a,
                             ev.signature_a]).hex())
    public = load_keypair(key_path(load_config(config_path), 2)).public.hex()
    for keys in (["--config", str(config_path)], ["--chain-id", "ev-chain", "--public-key", public]):
        code, _, err = cli(capsys, "evidence", "verify", swapped, *keys)
        assert code == 1 and "INVALID" in one_line(err) and "canonical order" in err, (keys, err)


def test_evidence_list_marks_a_piece_whose_listing_lies_as_invalid(
        evidence: tuple[Path, Path, Evidence], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`ordo evidence list` applies the client's rule (sequencing.client.evidence): the listed id,
    offender, round and kind must match the signed evidence, not only the signatures verify."""
    import json

    import httpx

    from sequencing.cli import evidence_commands
    from sequencing.client import OrdoClient
    from sequencing.keys import committee_of

    config_path, _, ev = evidence
    config = load_config(config_path)
    record = {"id": ev.id.hex(), "kind": "double_vote", "offender": 2, "round": 7, "committed_height": 4,
              "evidence": ev.encode().hex()}
    served = [record, {**record, "round": 8}, {**record, "kind": "double_proposal"}]
    transport = httpx.MockTransport(lambda _: httpx.Response(200, json=served))
    monkeypatch.setattr(evidence_commands, "connect", lambda args, verify: (
        OrdoClient("http://replica", committee_of(config), transport=transport), config))
    code, out, err = cli(capsys, "evidence", "list", "--json", "--config", config_path)
    assert code == 0, err
    assert [row["valid"] for row in json.loads(out)] == [True, False, False]
