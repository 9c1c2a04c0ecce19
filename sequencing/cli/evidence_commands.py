"""``ordo evidence list|verify``: equivocation evidence a replica recorded, or evidence from a file
checked offline against the committee's keys — by the client's rule
(:mod:`sequencing.client.evidence`): exit 0 valid, 1 invalid, 2 unreadable.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import load_config
from .client_plumbing import (
    DEFAULT_CONFIG,
    EXIT_FAIL,
    EXIT_OK,
    EXIT_UNREADABLE,
    CliError,
    connect,
    endpoint_args,
    guarded,
    id_arg,
)

if TYPE_CHECKING:
    from consensus.crypto import Verifier


@guarded
def cmd_evidence_list(args: argparse.Namespace) -> int:
    from ..client.evidence import InvalidEvidence, check_record

    client, _ = connect(args, verify=True)
    with client:
        records = client.evidence(offender=args.offender, verify=False)  # each checked below, not all or none
        verifier = client.verifier(True)
    rows: list[dict[str, Any]] = []
    for r in records:
        try:
            check_record(r, verifier)
            valid = True
        except InvalidEvidence:
            valid = False
        rows.append({"id": r.id, "kind": r.kind, "offender": r.offender, "round": r.round,
                     "committed_height": r.committed_height, "valid": valid, "evidence": r.evidence.encode().hex()})
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print(f"no evidence recorded by replica {args.replica}")
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"evidence recorded by replica {args.replica}", title_justify="left")
    for column in ("id", "kind", "offender", "round", "committed at", "verifies"):
        table.add_column(column)
    for row in rows:
        committed = "pending" if row["committed_height"] is None else str(row["committed_height"])
        table.add_row(row["id"][:16], row["kind"], str(row["offender"]), str(row["round"]), committed,
                      "[green]yes[/green]" if row["valid"] else "[red]NO[/red]")
    Console().print(table)
    return EXIT_OK


def _read_evidence(path: str) -> list[tuple[str, bytes, dict[str, Any] | None]]:
    """(label, encoded evidence, listed metadata) for every piece in FILE; CliError(2) if unreadable."""
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}", EXIT_UNREADABLE) from None
    try:
        text = raw.decode().strip()
    except UnicodeDecodeError:
        raise CliError(f"{path}: neither hex nor JSON (not UTF-8 text)", EXIT_UNREADABLE) from None
    if not text:
        raise CliError(f"{path}: empty", EXIT_UNREADABLE)
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = text
    items = parsed if isinstance(parsed, list) else [parsed]
    if not items:
        raise CliError(f"{path}: holds no evidence", EXIT_UNREADABLE)
    out = []
    for i, item in enumerate(items):
        label = f"{path}[{i}]" if isinstance(parsed, list) else path
        meta = item if isinstance(item, dict) else None
        hex_text = item.get("evidence") if meta is not None else item
        if not isinstance(hex_text, str):
            raise CliError(f"{label}: expected evidence hex or an object with an \"evidence\" field "
                           "(as served by /v1/evidence)", EXIT_UNREADABLE)
        try:
            out.append((label, bytes.fromhex("".join(hex_text.split()).removeprefix("0x")), meta))
        except ValueError:
            raise CliError(f"{label}: evidence is not hex", EXIT_UNREADABLE) from None
    return out


def _check_one(encoded: bytes, meta: dict[str, Any] | None, verifier: Verifier) -> str:
    """A description of valid evidence; CliError(1) if invalid, CliError(2) if not evidence at all."""
    from ..client.evidence import InvalidEvidence, UnreadableEvidence, check_evidence, decode_evidence

    try:
        evidence = decode_evidence(encoded)
        check_evidence(evidence, verifier, meta)
    except UnreadableEvidence as exc:
        raise CliError(str(exc), EXIT_UNREADABLE) from None
    except InvalidEvidence as exc:
        raise CliError(f"INVALID: {exc}") from None
    what = "votes" if evidence.kind.name == "DOUBLE_VOTE" else "proposals"
    return (f"valid: replica {evidence.offender} signed two different {what} in round {evidence.round} "
            f"(evidence {evidence.id.hex()[:16]})")


def _evidence_verifier(args: argparse.Namespace, offenders: set[int]) -> tuple[Verifier, str]:
    """The committee's keys to check evidence with, and a description of where they came from:
    --chain-id with --public-key (the offender's key; ``offenders`` are those the decodable pieces
    name), else the cluster file --config."""
    from consensus.committee import Committee
    from consensus.crypto import KeyPair, Verifier

    from ..keys import committee_of

    if args.public_key is not None or args.chain_id is not None:
        if args.public_key is None or args.chain_id is None:
            raise CliError("--public-key and --chain-id go together (the offender's key and the chain id)",
                           EXIT_UNREADABLE)
        key = id_arg(args.public_key, "a key", "--public-key")
        if len(offenders) > 1:
            raise CliError(f"--public-key is one replica's key, but FILE names replicas "
                           f"{', '.join(map(str, sorted(offenders)))}; use --config", EXIT_UNREADABLE)
        offender = min(offenders, default=0)  # none: no piece decodes, each is reported as it is
        if not 0 <= offender < 1024:
            raise CliError(f"evidence names replica {offender}, not a committee member", EXIT_FAIL)
        # only the offender's key is checked; the other slots hold keys nobody has
        keys = [key if i == offender else KeyPair.from_seed(b"ordo/unused/%d" % i).public
                for i in range(offender + 1)]
        return Verifier(Committee(args.chain_id, tuple(keys))), (
            f"public key {key.hex()[:16]}... on chain {args.chain_id!r}")
    if not args.config.exists():
        raise CliError(f"evidence verify needs the committee's keys: {args.config} not found; pass "
                       "--config CLUSTER_TOML, or --chain-id ID --public-key HEX (the offender's key)",
                       EXIT_UNREADABLE)
    config = load_config(args.config)
    return Verifier(committee_of(config)), f"{config.size}-replica committee of chain {config.chain_id!r}"


def _offenders(pieces: list[tuple[str, bytes, dict[str, Any] | None]]) -> set[int]:
    """The replicas the decodable pieces accuse."""
    from ..client.evidence import InvalidEvidence, UnreadableEvidence, decode_evidence

    out = set()
    for _, encoded, _ in pieces:
        try:
            out.add(decode_evidence(encoded).offender)
        except (UnreadableEvidence, InvalidEvidence):
            pass
    return out


def cmd_evidence_verify(args: argparse.Namespace) -> int:
    try:
        pieces = _read_evidence(args.file)
        verifier, against = _evidence_verifier(args, _offenders(pieces))
    except CliError as exc:
        print(f"ordo: {exc}", file=sys.stderr)
        return exc.code
    worst = EXIT_OK
    for label, encoded, meta in pieces:
        try:
            print(f"{label}: {_check_one(encoded, meta, verifier)} — checked against the {against}")
        except CliError as exc:
            print(f"ordo: {label}: {exc}", file=sys.stderr)
            worst = max(worst, exc.code)
    return worst


def add_evidence_commands(sub: Any) -> None:
    """Add ``evidence list|verify`` to the ``ordo`` subcommand parser ``sub``."""
    p = sub.add_parser("evidence", help="list or verify equivocation evidence",
                       description="Evidence that a replica signed two conflicting messages.")
    esub = p.add_subparsers(dest="evidence_command", required=True, metavar="ACTION")
    q = esub.add_parser("list", help="evidence a replica recorded, each checked against the committee")
    endpoint_args(q)
    q.add_argument("--offender", type=int, default=None, metavar="N", help="only evidence against replica N")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_evidence_list)
    q = esub.add_parser("verify", help="verify evidence offline (exit 0 valid, 1 invalid, 2 unreadable)",
                        description="Check evidence from FILE against the committee's public keys in "
                                    "--config (or the offender's --public-key with --chain-id), without "
                                    "contacting any replica. FILE holds evidence hex, or "
                                    "JSON as served by /v1/evidence (one object or the list); - reads "
                                    "stdin. Exit 0 only if every piece is valid, 1 if any is invalid, 2 if "
                                    "the input cannot be read.")
    q.add_argument("--config", "-c", type=Path, default=Path(DEFAULT_CONFIG),
                   help=f"cluster file with the committee's keys (default: {DEFAULT_CONFIG})")
    q.add_argument("--chain-id", default=None, metavar="ID",
                   help="instead of --config: the chain id the evidence was signed on (with --public-key)")
    q.add_argument("--public-key", default=None, metavar="HEX",
                   help="instead of --config: the offender's public key, as published for the committee")
    q.add_argument("file", metavar="FILE", help="evidence file (hex or JSON), or - for stdin")
    q.set_defaults(func=cmd_evidence_verify)

