"""What the client commands of ``ordo`` share: the endpoint options, connecting to a replica's API
with the committee from the cluster file, one ``ordo: ...`` line and an exit code per failure,
and reading ids and keys a person typed (see :mod:`.rollup_commands`, :mod:`.evidence_commands`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import ClusterConfig, load_config
from ..ids import InvalidId, parse_id32

if TYPE_CHECKING:  # imported when a command runs: `ordo replica` need not load the client
    from ..client import OrdoClient

DEFAULT_CONFIG = "cluster.toml"
EXIT_OK, EXIT_FAIL, EXIT_UNREADABLE = 0, 1, 2


class CliError(Exception):
    """A problem to print as one ``ordo: ...`` line, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


def endpoint_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", type=Path, default=Path(DEFAULT_CONFIG),
                   help=f"cluster file: replica addresses and the committee's keys (default: {DEFAULT_CONFIG})")
    p.add_argument("--replica", "-r", type=int, default=0, metavar="N",
                   help="which replica's API to use (default: 0)")


def connect(args: argparse.Namespace, *, verify: bool) -> tuple[OrdoClient, ClusterConfig]:
    from ..client import OrdoClient
    from ..keys import committee_of
    config = load_config(args.config)
    url = config.api_url(args.replica)
    return OrdoClient(url, committee_of(config) if verify else None), config


def guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
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


def id_arg(text: str, noun: str, option: str = "") -> bytes:
    """A 32-byte id or key typed or pasted by a person: spaces and a 0x prefix are dropped, the
    rest must be 64 hex digits (:func:`sequencing.ids.parse_id32`); CliError(2) if not."""
    cleaned = "".join(text.split())
    cleaned = cleaned[2:] if cleaned[:2] in ("0x", "0X") else cleaned
    try:
        return parse_id32(cleaned)
    except InvalidId as exc:
        shown = f"{option} {text.strip()[:80]!r}".lstrip()
        raise CliError(f"{shown} is not {noun} (64 hex digits): {exc.problem}", EXIT_UNREADABLE) from None


def emit(obj: Any) -> None:
    print(json.dumps(obj), flush=True)
