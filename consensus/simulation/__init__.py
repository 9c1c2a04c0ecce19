"""Deterministic simulation of a committee of replicas, with faults and Byzantine strategies."""

from .byzantine import DoubleVoter, EquivocatingLeader, SilentNode, TwinNode
from .checker import (
    Violation,
    check_agreement,
    check_evidence,
    check_persistence,
    check_safety,
    check_validity,
    committed_rounds,
)
from .network import LinkConfig, SimNetwork
from .node import Disk, SimNode, decode_payload, encode_payload
from .simulator import SimConfig, Simulator

__all__ = [
    "Disk",
    "DoubleVoter",
    "EquivocatingLeader",
    "LinkConfig",
    "SilentNode",
    "SimConfig",
    "SimNetwork",
    "SimNode",
    "Simulator",
    "TwinNode",
    "Violation",
    "check_agreement",
    "check_evidence",
    "check_persistence",
    "check_safety",
    "check_validity",
    "committed_rounds",
    "decode_payload",
    "encode_payload",
]
