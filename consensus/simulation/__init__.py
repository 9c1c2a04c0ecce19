"""Deterministic simulation of a committee of replicas, with faults and Byzantine strategies."""

from .byzantine import DoubleVoter, EquivocatingLeader, SilentNode, TwinNode
from .checker import (
    Violation,
    check_agreement,
    check_crashes,
    check_evidence,
    check_leaders,
    check_persistence,
    check_proofs,
    check_safety,
    check_validity,
    committed_rounds,
)
from .lying import QcForger, StaleQcLeader, TcForger, TimeoutForger, UnderQuorumQcLeader
from .lying_peers import HeightLiar, SyncRewriter, Withholder
from .network import LinkConfig, SimNetwork
from .node import Disk, SimNode, decode_payload, encode_payload
from .simulator import SimConfig, Simulator

__all__ = [
    "Disk",
    "DoubleVoter",
    "EquivocatingLeader",
    "HeightLiar",
    "LinkConfig",
    "QcForger",
    "SilentNode",
    "SimConfig",
    "SimNetwork",
    "SimNode",
    "Simulator",
    "StaleQcLeader",
    "SyncRewriter",
    "TcForger",
    "TimeoutForger",
    "TwinNode",
    "UnderQuorumQcLeader",
    "Violation",
    "Withholder",
    "check_agreement",
    "check_crashes",
    "check_evidence",
    "check_leaders",
    "check_persistence",
    "check_proofs",
    "check_safety",
    "check_validity",
    "committed_rounds",
    "decode_payload",
    "encode_payload",
]
