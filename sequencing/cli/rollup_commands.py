"""The client commands of ``ordo``: submit, bundle, log, tx, evidence list|verify.

Each talks to one replica's public API (``--replica N`` of ``--config``, default replica 0 of
cluster.toml) through :mod:`sequencing.client`, checks proofs against the committee's public keys
from the same file, prints one clear ``ordo: ...`` line on failure and exits non-zero. Ids and keys
are checked by :mod:`sequencing.rollup.ids`, evidence by :mod:`sequencing.client.evidence` — the
same rules the client and the API apply.
Registered by ``sequencing.cli.main.build_parser`` through :func:`add_client_commands`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import ClusterConfig, load_config
from ..rollup.ids import InvalidId, parse_id32

if TYPE_CHECKING:  # imported when a command runs: `ordo replica` need not load the client
    from consensus.crypto import Verifier

    from ..client import OrdoClient
    from ..rollup.proofs import SliceProof

DEFAULT_CONFIG = "cluster.toml"
EXIT_OK, EXIT_FAIL, EXIT_UNREADABLE = 0, 1, 2


class CliError(Exception):
    """A problem to print as one ``ordo: ...`` line, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


# -- plumbing -----------------------------------------------------------------------------------


def _endpoint_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", type=Path, default=Path(DEFAULT_CONFIG),
                   help=f"cluster file: replica addresses and the committee's keys (default: {DEFAULT_CONFIG})")
    p.add_argument("--replica", "-r", type=int, default=0, metavar="N",
                   help="which replica's API to use (default: 0)")


def _client(args: argparse.Namespace, *, verify: bool) -> tuple[OrdoClient, ClusterConfig]:
    from ..client import OrdoClient
    from ..keys import committee_of
    config = load_config(args.config)
    url = config.api_url(args.replica)
    return OrdoClient(url, committee_of(config) if verify else None), config


def _run(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """One line on stderr and a non-zero exit for every expected failure."""

    def wrapper(args: argparse.Namespace) -> int:
        from ..client import OrdoError

        try:
            return fn(args)
        except CliError as exc:
            print(f"ordo: {exc}", file=sys.stderr)
            return exc.code
        except OrdoError as exc:
            print(f"ordo: {exc}", file=sys.stderr)
            return EXIT_FAIL
        except BrokenPipeError:  # `ordo log | head`
            return EXIT_OK

    wrapper.__name__ = fn.__name__
    return wrapper


def _payload(text: str, as_hex: bool, what: str) -> bytes:
    if text == "-":
        data = sys.stdin.buffer.read()
        text = data.decode(errors="replace")
        if not as_hex:
            return data
    if not as_hex:
        try:
            return text.encode()
        except UnicodeEncodeError:  # a non-UTF-8 argument arrives as lone surrogates
            raise CliError(f"{what} is not UTF-8 text; give its bytes as hex with --hex, or on stdin with -",
                           EXIT_UNREADABLE) from None
    cleaned = "".join(text.split()).removeprefix("0x")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise CliError(f"{what}: {text[:40]!r} is not hex", EXIT_UNREADABLE) from None


def _id_arg(text: str, noun: str, option: str = "") -> bytes:
    """A 32-byte id or key typed or pasted by a person: spaces and a 0x prefix are dropped, the
    rest must be 64 hex digits (:func:`sequencing.rollup.ids.parse_id32`); CliError(2) if not."""
    cleaned = "".join(text.split())
    cleaned = cleaned[2:] if cleaned[:2] in ("0x", "0X") else cleaned
    try:
        return parse_id32(cleaned)
    except InvalidId as exc:
        shown = f"{option} {text.strip()[:80]!r}".lstrip()
        raise CliError(f"{shown} is not {noun} (64 hex digits): {exc.problem}", EXIT_UNREADABLE) from None


def _show(payload: bytes) -> str:
    """Printable UTF-8 as text, anything else as 0x-hex."""
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        return "0x" + payload.hex()
    return text if text.isprintable() else "0x" + payload.hex()


def _emit(obj: Any) -> None:
    print(json.dumps(obj), flush=True)


# -- submit / bundle / tx -----------------------------------------------------------------------


@_run
def cmd_submit(args: argparse.Namespace) -> int:
    payload = _payload(args.data, args.hex, "DATA")
    client, config = _client(args, verify=args.wait and not args.no_verify)
    with client:
        tx_id = client.submit(args.rollup, payload)
        out: dict[str, Any] = {"id": tx_id, "rollup_id": args.rollup, "status": "pending"}
        if not args.wait:
            _emit(out) if args.json else print(f"tx {tx_id} submitted to rollup {args.rollup}")
            return EXIT_OK
        where = client.wait_for_commit(tx_id, timeout=args.timeout)
        out.update(status="committed", height=where.height, position=where.position, verified=False)
        if not args.no_verify:
            proof = client.slice(where.rollup_id, where.height, verify=True)
            if where.position >= len(proof.transactions) or proof.transactions[where.position] != payload:
                raise CliError(f"the verified slice at height {where.height} does not hold the transaction "
                               f"at position {where.position}")
            out["verified"] = True
    if args.json:
        _emit(out)
    else:
        note = f"; slice proof verified against chain {config.chain_id!r}" if out["verified"] else ""
        print(f"tx {tx_id} committed at height {where.height} (rollup {where.rollup_id}, "
              f"position {where.position}){note}")
    return EXIT_OK


def _parse_tx(spec: str, as_hex: bool) -> tuple[int, bytes]:
    rollup, sep, data = spec.partition(":")
    if not sep or not rollup.strip().isdigit():
        raise CliError(f"--tx {spec[:40]!r}: expected ROLLUP:DATA, e.g. 7:hello", EXIT_UNREADABLE)
    return int(rollup), _payload(data, as_hex, f"--tx {spec[:40]!r}")


@_run
def cmd_bundle(args: argparse.Namespace) -> int:
    txs = [_parse_tx(spec, args.hex) for spec in args.tx]
    if len(txs) < 2:
        raise CliError("a bundle needs at least two --tx", EXIT_UNREADABLE)
    client, config = _client(args, verify=args.wait and not args.no_verify)
    with client:
        bundle_id = client.submit_bundle(txs)
        from ..rollup.transactions import Transaction

        tx_ids = [Transaction(r, p).id.hex() for r, p in txs]
        out: dict[str, Any] = {"id": bundle_id, "tx_ids": tx_ids, "status": "pending"}
        if args.wait:
            proof = client.wait_for_bundle(bundle_id, timeout=args.timeout, verify=not args.no_verify)
            out.update(status="committed", height=proof.height, verified=not args.no_verify)
    if args.json:
        _emit(out)
        return EXIT_OK
    print(f"bundle {bundle_id} submitted ({len(txs)} transactions, rollups "
          f"{', '.join(str(r) for r in sorted({r for r, _ in txs}))})")
    for (rollup, _), tx_id in zip(txs, tx_ids, strict=True):
        print(f"  tx {tx_id} rollup {rollup}")
    if args.wait:
        note = f"; bundle proof verified against chain {config.chain_id!r}" if out["verified"] else ""
        print(f"bundle {bundle_id} committed whole at height {out['height']}{note}")
    return EXIT_OK


@_run
def cmd_tx(args: argparse.Namespace) -> int:
    from ..client import NotFound

    ident = _id_arg(args.id, "an id").hex()
    client, _ = _client(args, verify=not args.no_verify)
    with client:
        status = client.tx_status(ident)
        out: dict[str, Any] = {"id": ident, "kind": "transaction", "status": status.status}
        if status.location is not None:
            out.update(height=status.location.height, rollup_id=status.location.rollup_id,
                       position=status.location.position)
        else:  # a pending id may be either kind; a committed bundle is only known to /v1/bundles
            try:
                proof = client.bundle_proof(ident, verify=not args.no_verify)
                if proof is not None:
                    out.update(kind="bundle", status="committed", height=proof.height,
                               tx_count=len(proof.bundle.txs), verified=not args.no_verify)
                else:
                    out.update(kind="transaction or bundle", status="pending")
            except NotFound:
                pass
    if args.json:
        _emit(out)
    elif out["status"] == "unknown":
        print(f"{ident}: unknown to replica {args.replica} (neither a pending nor a committed "
              "transaction or bundle)")
    elif out["status"] == "pending":
        print(f"{ident}: pending at replica {args.replica} (not committed yet)")
    elif out["kind"] == "bundle":
        note = "; bundle proof verified" if out["verified"] else ""
        print(f"bundle {ident}: committed at height {out['height']} ({out['tx_count']} transactions{note})")
    else:
        print(f"tx {ident}: committed at height {out['height']}, rollup {out['rollup_id']}, "
              f"position {out['position']}")
    return EXIT_FAIL if out["status"] == "unknown" else EXIT_OK


# -- log ----------------------------------------------------------------------------------------


def _slices(client: OrdoClient, args: argparse.Namespace, end: int | None,
            on_reconnect: Callable[[Exception], None]) -> Iterator[SliceProof]:
    for proof in client.subscribe(args.rollup, args.start, verify=args.verify, on_reconnect=on_reconnect):
        if end is not None and proof.height > end:
            return
        yield proof
        if end is not None and proof.height == end:
            return


@_run
def cmd_log(args: argparse.Namespace) -> int:
    from rich.console import Console

    if args.start < 1:
        raise CliError("--from must be >= 1", EXIT_UNREADABLE)
    client, config = _client(args, verify=args.verify)
    err = Console(stderr=True)
    live = sys.stdout.isatty() and not args.json
    with client:
        end = None if args.follow else int(client.status()["committed_height"])
        if end is not None and args.start > end:
            message = f"rollup {args.rollup}: nothing committed at or above height {args.start} " \
                      f"(committed height is {end})"
            print(message, file=sys.stderr)
            return EXIT_OK

        lost = [False]

        def reconnecting(problem: Exception) -> None:
            """Say it once per outage, not once per attempt."""
            if lost[0]:
                return
            lost[0] = True
            err.print(f"[yellow]ordo: connection to replica {args.replica} lost ({problem}); "
                      "reconnecting[/yellow]" if live else f"ordo: reconnecting ({problem})", highlight=False)

        first = last = count = txs = 0  # heights seen: first..last (every one, in order)
        status = Console().status("", spinner="dots") if live and args.follow else None
        if status is not None:
            status.start()
        try:
            for proof in _slices(client, args, end, reconnecting):
                lost[0] = False
                first, last, count = first or proof.height, proof.height, count + 1
                txs += len(proof.transactions)
                _print_slice(proof, args)
                if status is not None:
                    status.update(f"rollup {args.rollup}: height {proof.height}, {txs} txs"
                                  + (" (every proof verified)" if args.verify else "") + "  Ctrl-C to stop")
        finally:
            if status is not None:
                status.stop()
    if args.verify and count:
        message = (f"verified {count} slice proofs (heights {first}-{last}) "
                   f"against the {config.size}-replica committee of chain {config.chain_id!r}")
        print(message, file=sys.stderr if args.json else sys.stdout)
    return EXIT_OK


def _print_slice(proof: SliceProof, args: argparse.Namespace) -> None:
    if not proof.transactions and not args.all:
        return
    if args.json:
        _emit({"rollup_id": proof.rollup_id, "height": proof.height, "block_id": proof.commit.block_id.hex(),
               "transactions": [t.hex() for t in proof.transactions], "verified": bool(args.verify)})
        return
    mark = ", proof verified" if args.verify else ""
    count = len(proof.transactions)
    print(f"height {proof.height}: {count} tx{'' if count == 1 else 's'}{mark}", flush=not proof.transactions)
    for i, tx in enumerate(proof.transactions):
        print(f"  [{i}] {_show(tx)}", flush=i == count - 1)


# -- evidence -----------------------------------------------------------------------------------


@_run
def cmd_evidence_list(args: argparse.Namespace) -> int:
    from ..client.evidence import InvalidEvidence, check_record

    client, _ = _client(args, verify=True)
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
        key = _id_arg(args.public_key, "a key", "--public-key")
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


# -- registration -------------------------------------------------------------------------------


def add_client_commands(sub: Any) -> None:
    """Add submit, bundle, tx, log and evidence to the ``ordo`` subcommand parser ``sub``."""
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("submit", help="submit one transaction to a rollup", formatter_class=fmt,
                       description="Submit one transaction and print its id. With --wait, wait until it "
                                   "is committed and check it in the rollup's slice proof.\n\n"
                                   "  ordo submit --rollup 7 'hello'\n  ordo submit --rollup 7 --hex c0ffee --wait")
    _endpoint_args(p)
    p.add_argument("--rollup", "-R", type=int, required=True, metavar="R", help="the rollup id (namespace)")
    p.add_argument("data", metavar="DATA", help="the payload: text (UTF-8), hex with --hex, or - for stdin")
    p.add_argument("--hex", action="store_true", help="DATA is hexadecimal")
    p.add_argument("--wait", action="store_true", help="wait until committed and print where")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="--wait gives up after this")
    p.add_argument("--no-verify", action="store_true", help="with --wait: do not check the slice proof")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("bundle", help="submit an atomic bundle across rollups", formatter_class=fmt,
                       description="Submit transactions for several rollups that land in one block, in "
                                   "order, or not at all.\n\n  ordo bundle --tx 1:mint --tx 2:burn --wait")
    _endpoint_args(p)
    p.add_argument("--tx", action="append", required=True, metavar="R:DATA",
                   help="one transaction: rollup id, a colon, the payload (repeat, at least twice)")
    p.add_argument("--hex", action="store_true", help="every DATA is hexadecimal")
    p.add_argument("--wait", action="store_true", help="wait until committed; check the bundle proof")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="--wait gives up after this")
    p.add_argument("--no-verify", action="store_true", help="with --wait: do not check the bundle proof")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_bundle)

    p = sub.add_parser("tx", help="show where a transaction or bundle is",
                       description="Status of a transaction or bundle id: committed (height, rollup, "
                                   "position), pending, or unknown (exit code 1).")
    _endpoint_args(p)
    p.add_argument("id", metavar="ID", help="transaction or bundle id (64 hex digits)")
    p.add_argument("--no-verify", action="store_true", help="do not check a committed bundle's proof")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_tx)

    p = sub.add_parser("log", help="print a rollup's sub-log (optionally follow it, verifying every proof)",
                       formatter_class=fmt,
                       description="Print each committed height's transactions for one rollup, from "
                                   "--from to the current height (or forever with --follow; the stream "
                                   "resumes by itself if the replica restarts).\n\n"
                                   "  ordo log --rollup 7 --verify\n  ordo log --rollup 7 --from 100 --follow --json")
    _endpoint_args(p)
    p.add_argument("--rollup", "-R", type=int, required=True, metavar="R", help="the rollup id")
    p.add_argument("--from", dest="start", type=int, default=1, metavar="H", help="first height (default: 1)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new heights until Ctrl-C")
    p.add_argument("--verify", action="store_true",
                   help="check every slice proof (inclusion, completeness, commit) against the committee")
    p.add_argument("--all", action="store_true", help="also print heights where the rollup has nothing")
    p.add_argument("--json", action="store_true", help="one JSON object per height")
    p.set_defaults(func=cmd_log)

    p = sub.add_parser("evidence", help="list or verify equivocation evidence",
                       description="Evidence that a replica signed two conflicting messages.")
    esub = p.add_subparsers(dest="evidence_command", required=True, metavar="ACTION")
    q = esub.add_parser("list", help="evidence a replica recorded, each checked against the committee")
    _endpoint_args(q)
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

