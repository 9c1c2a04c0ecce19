"""The Python client of a rollup team: submit transactions and read a verified sub-log."""

from .client import OrdoClient

__all__ = ["OrdoClient"]
