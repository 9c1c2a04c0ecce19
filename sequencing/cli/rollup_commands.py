"""The rollup commands of ``ordo``: submit, bundle, tx, log (and, registered with them, evidence
list|verify from :mod:`.evidence_commands`).

Each talks to one replica's public API (``--replica N`` of ``--config``, default replica 0 of
cluster.toml) through :mod:`sequencing.client`, checks proofs against the committee's public keys
from the same file, prints one clear ``ordo: ...`` line on failure and exits non-zero. Ids are
checked by :mod:`sequencing.ids` — the same rule the client and the API apply.
Registered by ``sequencing.cli.main.build_parser`` through :func:`add_client_commands`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .client_plumbing import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_UNREADABLE,
    CliError,
    connect,
    emit,
    endpoint_args,
    guarded,
    id_arg,
)
from .evidence_commands import add_evidence_commands

if TYPE_CHECKING:  # imported when a command runs: `ordo replica` need not load the client
    from ..client import OrdoClient
    from ..rollup.proofs import SliceProof


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


def _show(payload: bytes) -> str:
    """Printable UTF-8 as text, anything else as 0x-hex."""
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        return "0x" + payload.hex()
    return text if text.isprintable() else "0x" + payload.hex()


# -- submit / bundle / tx -----------------------------------------------------------------------


@guarded
def cmd_submit(args: argparse.Namespace) -> int:
    payload = _payload(args.data, args.hex, "DATA")
    client, config = connect(args, verify=args.wait and not args.no_verify)
    with client:
        tx_id = client.submit(args.rollup, payload)
        out: dict[str, Any] = {"id": tx_id, "rollup_id": args.rollup, "status": "pending"}
        if not args.wait:
            emit(out) if args.json else print(f"tx {tx_id} submitted to rollup {args.rollup}")
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
        emit(out)
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


@guarded
def cmd_bundle(args: argparse.Namespace) -> int:
    txs = [_parse_tx(spec, args.hex) for spec in args.tx]
    if len(txs) < 2:
        raise CliError("a bundle needs at least two --tx", EXIT_UNREADABLE)
    client, config = connect(args, verify=args.wait and not args.no_verify)
    with client:
        bundle_id = client.submit_bundle(txs)
        from ..rollup.transactions import Transaction

        tx_ids = [Transaction(r, p).id.hex() for r, p in txs]
        out: dict[str, Any] = {"id": bundle_id, "tx_ids": tx_ids, "status": "pending"}
        if args.wait:
            proof = client.wait_for_bundle(bundle_id, timeout=args.timeout, verify=not args.no_verify)
            out.update(status="committed", height=proof.height, verified=not args.no_verify)
    if args.json:
        emit(out)
        return EXIT_OK
    print(f"bundle {bundle_id} submitted ({len(txs)} transactions, rollups "
          f"{', '.join(str(r) for r in sorted({r for r, _ in txs}))})")
    for (rollup, _), tx_id in zip(txs, tx_ids, strict=True):
        print(f"  tx {tx_id} rollup {rollup}")
    if args.wait:
        note = f"; bundle proof verified against chain {config.chain_id!r}" if out["verified"] else ""
        print(f"bundle {bundle_id} committed whole at height {out['height']}{note}")
    return EXIT_OK


@guarded
def cmd_tx(args: argparse.Namespace) -> int:
    from ..client import NotFound

    ident = id_arg(args.id, "an id").hex()
    client, _ = connect(args, verify=not args.no_verify)
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
        emit(out)
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


@guarded
def cmd_log(args: argparse.Namespace) -> int:
    from rich.console import Console

    if args.start < 1:
        raise CliError("--from must be >= 1", EXIT_UNREADABLE)
    client, config = connect(args, verify=args.verify)
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
        emit({"rollup_id": proof.rollup_id, "height": proof.height, "block_id": proof.commit.block_id.hex(),
               "transactions": [t.hex() for t in proof.transactions], "verified": bool(args.verify)})
        return
    mark = ", proof verified" if args.verify else ""
    count = len(proof.transactions)
    print(f"height {proof.height}: {count} tx{'' if count == 1 else 's'}{mark}", flush=not proof.transactions)
    for i, tx in enumerate(proof.transactions):
        print(f"  [{i}] {_show(tx)}", flush=i == count - 1)


# -- registration -------------------------------------------------------------------------------


def add_client_commands(sub: Any) -> None:
    """Add submit, bundle, tx, log and evidence to the ``ordo`` subcommand parser ``sub``."""
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("submit", help="submit one transaction to a rollup", formatter_class=fmt,
                       description="Submit one transaction and print its id. With --wait, wait until it "
                                   "is committed and check it in the rollup's slice proof.\n\n"
                                   "  ordo submit --rollup 7 'hello'\n  ordo submit --rollup 7 --hex c0ffee --wait")
    endpoint_args(p)
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
    endpoint_args(p)
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
    endpoint_args(p)
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
    endpoint_args(p)
    p.add_argument("--rollup", "-R", type=int, required=True, metavar="R", help="the rollup id")
    p.add_argument("--from", dest="start", type=int, default=1, metavar="H", help="first height (default: 1)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new heights until Ctrl-C")
    p.add_argument("--verify", action="store_true",
                   help="check every slice proof (inclusion, completeness, commit) against the committee")
    p.add_argument("--all", action="store_true", help="also print heights where the rollup has nothing")
    p.add_argument("--json", action="store_true", help="one JSON object per height")
    p.set_defaults(func=cmd_log)

    add_evidence_commands(sub)
