"""Why a replica refuses to start (raised by the node and by lost-disk recovery; the CLI prints it)."""

from __future__ import annotations


class NodeStartError(Exception):
    """The replica refuses to start (lost database without --recover, wrong key, ...)."""
