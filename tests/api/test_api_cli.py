"""The ``ordo`` client commands as real subprocesses against the running cluster: output, exit
codes, one-line errors, and offline evidence verification (0 valid, 1 invalid, 2 unreadable)."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trio

from consensus.crypto import KeyPair, SignatureKind, Signer
from consensus.messages import Evidence, EvidenceKind
from sequencing.cli.main import build_parser
from sequencing.client import AsyncOrdoClient
from sequencing.cluster.local import write_local_config
from sequencing.keys import key_path, load_keypair

from .apiutil import ClusterThread, fresh_rollup

HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass
class Run:
    code: int
    out: str
    err: str


async def ordo(*args: str | Path, config: Path | None = None, cwd: Path | None = None) -> Run:
    command = [sys.executable, "-m", "sequencing.cli", *map(str, args)]
    if config is not None:
        command += ["--config", str(config)]
    with trio.fail_after(60):
        done = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False,
                                      cwd=cwd, stdin=subprocess.DEVNULL)
    return Run(done.returncode, done.stdout.decode(), done.stderr.decode())


def one_line_error(run: Run) -> str:
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ordo: "), run.err
    assert "Traceback" not in run.err
    return lines[0]


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(4).hex()}"


# -- submit / bundle / tx -----------------------------------------------------------------------


async def test_submit_and_tx(cluster: ClusterThread) -> None:
    cfg = cluster.config_path
    text = unique("hello")
    plain = await ordo("submit", "--rollup", "71", text, config=cfg)
    assert plain.code == 0, plain.err
    tx_id = HEX64.search(plain.out).group()  # type: ignore[union-attr]
    assert plain.out.strip() == f"tx {tx_id} submitted to rollup 71"

    waited = await ordo("submit", "--rollup", "71", "--hex", os.urandom(8).hex(), "--wait", "--replica", "2",
                        config=cfg)
    assert waited.code == 0, waited.err
    assert re.fullmatch(r"tx [0-9a-f]{64} committed at height \d+ \(rollup 71, position \d+\); slice proof "
                        r"verified against chain 'ordo-test'\n", waited.out), waited.out

    as_json = await ordo("submit", "-R", "71", unique("j"), "--wait", "--json", config=cfg)
    record = json.loads(as_json.out)
    assert record["status"] == "committed" and record["verified"] is True and record["rollup_id"] == 71

    status = await ordo("tx", tx_id, config=cfg)
    assert status.code == 0 and f"tx {tx_id}: committed at height" in status.out, status.out
    status_json = json.loads((await ordo("tx", tx_id, "--json", config=cfg)).out)
    assert status_json["status"] == "committed" and status_json["rollup_id"] == 71

    unknown = await ordo("tx", "cd" * 32, config=cfg)
    assert unknown.code == 1 and "unknown to replica 0" in unknown.out
    bad = await ordo("tx", "xyz", config=cfg)
    assert bad.code == 2 and "not an id" in one_line_error(bad)


async def test_submit_errors_are_one_line(cluster: ClusterThread, tmp_path: Path) -> None:
    cfg = cluster.config_path
    async with trio.open_nursery() as nursery:
        runs: dict[str, Run] = {}

        async def go(name: str, *args: str | Path) -> None:
            runs[name] = await ordo(*args) if "--config" in args else await ordo(*args, config=cfg)

        nursery.start_soon(go, "hex", "submit", "--rollup", "1", "--hex", "zz")
        nursery.start_soon(go, "range", "submit", "--rollup", str(2**32), "x")
        nursery.start_soon(go, "replica", "submit", "--rollup", "1", "x", "--replica", "9")
        nursery.start_soon(go, "noconfig", "submit", "--rollup", "1", "x", "--config", tmp_path / "absent.toml")
        dead = write_local_config(tmp_path / "dead", n=4)  # free ports, nothing listening
        nursery.start_soon(go, "down", "submit", "--rollup", "1", "x", "--config", dead)
        nursery.start_soon(go, "usage", "submit", "x")
    assert runs["hex"].code == 2 and "not hex" in one_line_error(runs["hex"])
    assert runs["range"].code == 1 and "HTTP 400 invalid_transaction" in one_line_error(runs["range"])
    assert "outside" in runs["range"].err
    assert runs["replica"].code == 2 and "no [[replica]] with id = 9" in one_line_error(runs["replica"])
    assert runs["noconfig"].code == 2 and "file not found" in one_line_error(runs["noconfig"])
    assert runs["down"].code == 1 and "cannot reach http://127.0.0.1:" in one_line_error(runs["down"])
    assert runs["usage"].code == 2 and "--rollup" in runs["usage"].err


async def test_bundle_lands_whole(cluster: ClusterThread) -> None:
    cfg = cluster.config_path
    legs = [f"{r}:{unique('leg')}" for r in (72, 73, 74)]
    run = await ordo("bundle", *(a for leg in legs for a in ("--tx", leg)), "--wait", config=cfg)
    assert run.code == 0, run.err
    bundle_id = HEX64.search(run.out).group()  # type: ignore[union-attr]
    assert "(3 transactions, rollups 72, 73, 74)" in run.out
    assert re.search(rf"bundle {bundle_id} committed whole at height \d+; bundle proof verified", run.out)
    shown = await ordo("tx", bundle_id, config=cfg)
    assert shown.code == 0 and re.search(r"committed at height \d+ \(3 transactions; bundle proof verified\)",
                                         shown.out), shown.out
    single = await ordo("bundle", "--tx", "1:only", config=cfg)
    assert single.code == 2 and "at least two" in one_line_error(single)
    malformed = await ordo("bundle", "--tx", "x:y", "--tx", "1:z", config=cfg)
    assert malformed.code == 2 and "ROLLUP:DATA" in one_line_error(malformed)


# -- log ----------------------------------------------------------------------------------------


async def test_log_prints_and_verifies_the_sub_log(cluster: ClusterThread) -> None:
    cfg = cluster.config_path
    texts = [unique("line") for _ in range(3)]
    rollup = str(fresh_rollup())
    async with AsyncOrdoClient(cluster.api(0)) as client:
        ids = [await client.submit(int(rollup), text.encode()) for text in texts]
        first = min([(await client.wait_for_commit(tx_id)).height for tx_id in ids])
    run = await ordo("log", "--rollup", rollup, "--verify", "--from", str(first), config=cfg)
    assert run.code == 0, run.err
    for text in texts:
        assert re.search(rf"^  \[\d+\] {text}$", run.out, re.MULTILINE), run.out
    assert re.search(r"^height \d+: [123] txs?, proof verified$", run.out, re.MULTILINE), run.out
    assert re.search(rf"verified \d+ slice proofs \(heights {first}-\d+\) against the 4-replica committee of "
                     r"chain 'ordo-test'", run.out), run.out
    as_json = await ordo("log", "--rollup", rollup, "--json", "--verify", "--from", str(first), config=cfg)
    rows = [json.loads(line) for line in as_json.out.splitlines()]
    assert [bytes.fromhex(t).decode() for r in rows for t in r["transactions"]] == texts
    assert all(r["verified"] and r["rollup_id"] == int(rollup) and r["height"] >= first for r in rows)
    assert "verified" in as_json.err
    empty = await ordo("log", "--rollup", "76", "--from", str(10**9), config=cfg)
    assert empty.code == 0 and "nothing committed at or above" in empty.err


async def test_log_follow_streams_new_heights(cluster: ClusterThread) -> None:
    cfg = cluster.config_path
    command = [sys.executable, "-m", "sequencing.cli", "log", "--rollup", "77", "--follow", "--verify", "--json",
               "--from", str((await cluster.status(0))["committed_height"]), "--config", str(cfg)]
    text = unique("followed")
    seen: list[dict[str, object]] = []
    async with trio.open_nursery() as nursery:
        process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert process.stdout is not None
        await trio.sleep(1.0)
        nursery.start_soon(ordo, "submit", "--rollup", "77", text, "--config", cfg)
        buffer = b""
        with trio.fail_after(30):
            while not any(text.encode().hex() in json.dumps(r) for r in seen):
                chunk = await process.stdout.receive_some()
                assert chunk, "ordo log --follow ended early"
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                seen += [json.loads(line) for line in lines if line]
        process.send_signal(signal.SIGINT)
        with trio.fail_after(10):
            code = await process.wait()
    assert code == 130
    heights = [int(r["height"]) for r in seen]  # type: ignore[call-overload]
    assert heights == sorted(set(heights)) and all(r["verified"] for r in seen)


# -- evidence -----------------------------------------------------------------------------------


async def test_evidence_list(cluster: ClusterThread) -> None:
    listed = await ordo("evidence", "list", config=cluster.config_path)
    assert listed.code == 0, listed.err
    as_json = await ordo("evidence", "list", "--json", "--replica", "1", config=cluster.config_path)
    rows = json.loads(as_json.out)
    assert isinstance(rows, list) and all(r["valid"] for r in rows)
    if not rows:
        assert listed.out.strip() == "no evidence recorded by replica 0"


def double_vote(config_path: Path, offender: int, round: int, *, chain_id: str | None = None,
                key: KeyPair | None = None) -> Evidence:
    from sequencing.config import load_config

    config = load_config(config_path)
    signer = Signer(chain_id or config.chain_id, offender, key or load_keypair(key_path(config, offender)))
    a, b = os.urandom(32), os.urandom(32)
    return Evidence.of(EvidenceKind.DOUBLE_VOTE, offender, round,
                       (a, signer.sign(SignatureKind.VOTE, round, a)), (b, signer.sign(SignatureKind.VOTE, round, b)))


def served(e: Evidence, **override: object) -> dict[str, object]:
    """The shape /v1/evidence serves."""
    return {"id": e.id.hex(), "kind": "double_vote", "offender": e.offender, "round": e.round,
            "committed_height": None, "evidence": e.encode().hex(), **override}


async def test_evidence_verify_exit_codes(cluster: ClusterThread, tmp_path: Path) -> None:
    cfg = cluster.config_path
    valid = double_vote(cfg, 2, 7)
    wrong_offender = Evidence(valid.kind, 1, valid.round, valid.block_a, valid.signature_a, valid.block_b,
                              valid.signature_b)
    other_round = double_vote(cfg, 2, 8)
    mixed = Evidence.of(EvidenceKind.DOUBLE_VOTE, 2, 7, (valid.block_a, valid.signature_a),
                        (other_round.block_b, other_round.signature_b))
    other_chain = double_vote(cfg, 2, 7, chain_id="another-chain")
    stranger = double_vote(cfg, 2, 7, key=KeyPair.from_seed(b"not a replica"))
    as_proposals = Evidence(EvidenceKind.DOUBLE_PROPOSAL, 2, 7, valid.block_a, valid.signature_a, valid.block_b,
                            valid.signature_b)
    files = {
        # valid -> 0
        "valid.hex": (valid.encode().hex() + "\n", 0),
        "valid.json": (json.dumps(served(valid)), 0),
        "valid-list.json": (json.dumps([served(valid), served(double_vote(cfg, 0, 3))]), 0),
        # forged -> 1
        "offender.hex": (wrong_offender.encode().hex(), 1),
        "mixed-rounds.hex": (mixed.encode().hex(), 1),
        "other-chain.hex": (other_chain.encode().hex(), 1),
        "stranger.hex": (stranger.encode().hex(), 1),
        "kind.hex": (as_proposals.encode().hex(), 1),
        "lying-metadata.json": (json.dumps(served(valid, offender=3)), 1),
        "one-bad-in-list.json": (json.dumps([served(valid), served(wrong_offender)]), 1),
        # unreadable -> 2
        "garbage.txt": ("this is not evidence", 2),
        "random.hex": (os.urandom(40).hex(), 2),
        "empty.txt": ("", 2),
        "no-field.json": (json.dumps({"id": "00"}), 2),
        "empty-list.json": ("[]", 2),
    }
    for name, (content, _) in files.items():
        (tmp_path / name).write_text(content)
    (tmp_path / "binary.bin").write_bytes(b"\xff\xfe\x00\x01")
    files["binary.bin"] = ("", 2)
    files["missing.hex"] = ("", 2)
    runs: dict[str, Run] = {}
    async with trio.open_nursery() as nursery:
        for name in files:
            async def go(name: str = name) -> None:
                runs[name] = await ordo("evidence", "verify", tmp_path / name, config=cfg)
            nursery.start_soon(go)
    for name, (_, expected) in files.items():
        run = runs[name]
        assert run.code == expected, (name, run.code, run.out, run.err)
        assert "Traceback" not in run.err
        if expected == 0:
            assert "valid: replica" in run.out and "committee of chain 'ordo-test'" in run.out
        else:
            assert run.err.startswith("ordo: "), (name, run.err)
    assert "valid: replica 2 signed two different votes in round 7" in runs["valid.hex"].out
    assert "INVALID" in runs["offender.hex"].err
    assert "cannot read" in runs["missing.hex"].err


# -- help ---------------------------------------------------------------------------------------


def test_every_client_command_and_option_has_help() -> None:
    parser = build_parser()
    commands = {"submit", "bundle", "tx", "log", "evidence list", "evidence verify"}
    found = set()

    def walk(p: argparse.ArgumentParser, prefix: str) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {a.dest: a.help for a in action._choices_actions}
                for name, child in action.choices.items():
                    full = f"{prefix} {name}".strip()
                    if full in commands or full == "evidence":
                        assert helps.get(name), f"`ordo {full}` has no help"
                        found.add(full)
                        walk(child, full)
            elif prefix and action.dest != "help":
                assert action.help, f"`ordo {prefix}` option {action.option_strings or action.dest} has no help"

    walk(parser, "")
    assert commands <= found


@pytest.mark.parametrize("command", ["submit", "bundle", "tx", "log", "evidence list", "evidence verify"])
async def test_help_runs(command: str) -> None:
    run = await ordo(*command.split(), "--help")
    assert run.code == 0 and "usage: ordo" in run.out and "--config" in run.out


def replica_supports(option: str) -> bool:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return any(option in a.option_strings for a in sub.choices["replica"]._actions)


async def test_recorded_evidence_lists_and_verifies_offline(cluster: ClusterThread, tmp_path: Path) -> None:
    """A replica run as a double voter: the others record evidence; `ordo evidence list` shows it,
    the client verifies it, and what /v1/evidence serves verifies offline with `evidence verify`."""
    if not replica_supports("--byzantine"):
        pytest.skip("this build's replica has no --byzantine fault injection")
    try:
        await cluster.restart_byzantine(3, "double-vote")
        async with AsyncOrdoClient(cluster.api(0), cluster.committee) as client:
            with trio.fail_after(30):
                while not (records := await client.evidence(offender=3)):  # verified against the committee
                    await trio.sleep(0.2)
    finally:
        await cluster.restart(3)
    assert all(r.offender == 3 and r.kind == "double_vote" for r in records)
    listed = await ordo("evidence", "list", "--offender", "3", config=cluster.config_path)
    assert listed.code == 0 and "double_vote" in listed.out and "NO" not in listed.out, listed.out
    async with httpx.AsyncClient() as http:
        served_list = (await http.get(f"{cluster.api(1)}/v1/evidence", params={"offender": "3"})).text
    (tmp_path / "served.json").write_text(served_list)
    run = await ordo("evidence", "verify", tmp_path / "served.json", config=cluster.config_path)
    assert run.code == 0, run.err
    assert "valid: replica 3 signed two different votes" in run.out
