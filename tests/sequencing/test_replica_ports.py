"""Catch-up, the peer service and lost-disk recovery need only their narrow interfaces
(catchup.SyncTarget, peer_service.ServedReplica / LedgerReads / StatusListener,
recovery.StatusPoll, wire.PeerLink), not the Node: each is driven here by fakes that implement
exactly those and nothing else. A part that reached for anything more would fail here (an
AttributeError, counted by the input guard as a dropped input, or raised)."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import trio
from prometheus_client import CollectorRegistry, Counter
from seq_helpers import SignedChain, World, forged_qc

from consensus.commit_proof import CommitProof, verify_commit_proof
from consensus.messages import Block, QuorumCert, TimeoutCert
from sequencing.replica.catchup import CatchUp
from sequencing.replica.errors import NodeStartError
from sequencing.replica.events import BlocksIn
from sequencing.replica.input_guard import InputGuard
from sequencing.replica.peer_service import PeerService
from sequencing.replica.recovery import recovery_floor
from sequencing.replica.wire import (
    BatchMsg,
    BlockRequest,
    BlockResponse,
    StatusRequest,
    StatusResponse,
    SyncRequest,
    SyncResponse,
)
from sequencing.rollup.batches import Batch, BatchPool
from sequencing.rollup.block_content import BlockPayload
from sequencing.rollup.nmt import EMPTY_ROOT
from sequencing.rollup.transactions import Transaction

T = TypeVar("T")
HEIGHT = 12
STEP = 5  # the honest peer answers at most this many blocks per request
HONEST, LIAR = 1, 3


class Peers:
    """A PeerLink: whatever is sent goes to ``answer``, which may reply at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[int | None, object]] = []
        self.answer: Callable[[int | None, object], None] = lambda to, message: None

    def send(self, to: int, message: object) -> bool:
        self.sent.append((to, message))
        self.answer(to, message)
        return True

    def broadcast(self, message: object) -> int:
        self.sent.append((None, message))
        self.answer(None, message)
        return 3


class Target:
    """A SyncTarget that adopts whatever follows its height (the real core also checks proofs)."""

    def __init__(self) -> None:
        self.height: int | None = 0
        self.adopted: list[list[int]] = []
        self.batches: list[Batch] = []

    def core_height(self) -> int | None:
        return self.height

    def adopt_synced(self, blocks: tuple[Block, ...], proof: CommitProof, batches: tuple[Batch, ...]) -> bool:
        assert self.height is not None and proof.headers[0].id == blocks[-1].id
        if blocks[0].height == self.height + 1:
            self.adopted.append([b.height for b in blocks])
            self.batches.extend(batches)
            self.height = blocks[-1].height
        return True


def counter(name: str, label: str) -> Counter:
    return Counter(name, "", [label], registry=CollectorRegistry())


def samples(c: Counter) -> dict[str, float]:
    return {s.labels[next(iter(s.labels))]: s.value for m in c.collect() for s in m.samples
            if s.name.endswith("_total")}


def empty_chain(world: World) -> SignedChain:
    empty = BlockPayload((), ()).encode()
    return SignedChain(world, [EMPTY_ROOT] * HEIGHT, [empty] * (HEIGHT + 1))


async def test_catch_up_needs_only_its_sync_target_and_a_peer_link(autojump_clock: trio.abc.Clock) -> None:
    world = World.make(4)
    chain = empty_chain(world)
    body = Batch.of(HONEST, 1, 0, (Transaction(1, b"x"),))
    peers, target = Peers(), Target()
    errors, demotions = counter("errors", "reason"), counter("demotions", "reason")
    catch_up = CatchUp(0, peers, target, InputGuard(0, errors), demotions)

    def answer(to: int | None, message: object) -> None:
        if isinstance(message, StatusRequest):
            catch_up.on_status(LIAR, StatusResponse(world.genesis_qc, None, 10_000))  # then silent
            catch_up.on_status(HONEST, StatusResponse(world.genesis_qc, None, HEIGHT))
        elif isinstance(message, SyncRequest) and to == HONEST:
            last = min(HEIGHT, message.from_height + STEP - 1)
            blocks = tuple(chain.blocks[message.from_height - 1:last])
            catch_up.on_response(HONEST, SyncResponse(blocks, chain.commit(last - 1), HEIGHT, (body,)))

    peers.answer = answer
    async with trio.open_nursery() as nursery:
        nursery.start_soon(catch_up.run)
        with trio.move_on_after(60):
            while target.height != HEIGHT:
                await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert target.adopted == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12]]
    assert target.batches == [body] * 3  # the bodies sent along go to the target, not dropped
    assert catch_up.blocks_synced == HEIGHT and not catch_up.active
    assert samples(demotions) == {"timeout": 1}  # the liar, asked first, never answered
    assert samples(errors) == {}


class Ledger:
    """LedgerReads over a signed chain: heights 1..HEIGHT committed."""

    def __init__(self, chain: SignedChain) -> None:
        self.chain = chain

    def committed_height(self) -> int:
        return HEIGHT

    def block_at(self, height: int) -> tuple[Block, CommitProof] | None:
        return (self.chain.blocks[height - 1], self.chain.commit(height - 1)) if 1 <= height <= HEIGHT else None

    def block_by_id(self, block_id: bytes) -> Block | None:
        return next((b for b in self.chain.blocks[:HEIGHT] if b.id == block_id), None)

    def blocks_between(self, first: int, last: int) -> list[Block]:
        return self.chain.blocks[first - 1:last]


class Core:
    """A CoreView: committed up to ``height`` of the chain, nothing uncommitted."""

    def __init__(self, chain: SignedChain, height: int) -> None:
        self.chain = chain
        self.height = height
        self.last_tc: TimeoutCert | None = None

    @property
    def high_qc(self) -> QuorumCert:
        return self.chain.qcs[self.height - 1]

    @property
    def committed(self) -> Block:
        return self.chain.blocks[self.height - 1]

    def chain_to(self, target: bytes, above_height: int, limit: int) -> list[Block]:
        return []


class Served:
    """A ServedReplica: a ledger, a batch pool, and a record of what the service handed on."""

    def __init__(self, chain: SignedChain) -> None:
        self.replica: Core | None = None
        self.recovering = False
        self.storage: Ledger | None = Ledger(chain)
        self.batches = BatchPool(10)
        self.accepted: list[tuple[Batch, int | None]] = []
        self.posted: list[BlocksIn] = []

    async def storage_call(self, fn: Callable[..., T], *args: object) -> T:
        return fn(*args)

    async def load_batch(self, digest: bytes) -> Batch | None:
        return None

    def accept_batch(self, batch: Batch, sender: int | None) -> bool:
        self.accepted.append((batch, sender))
        return True

    def post(self, event: BlocksIn) -> bool:
        self.posted.append(event)
        return True


class Listener:
    def __init__(self) -> None:
        self.heard: list[tuple[int, object]] = []

    def on_status(self, sender: int, status: StatusResponse) -> None:
        self.heard.append((sender, status))

    def on_response(self, sender: int, response: SyncResponse) -> None:
        self.heard.append((sender, response))


async def test_peer_service_needs_only_its_served_replica_and_a_peer_link() -> None:
    world = World.make(4)
    chain = empty_chain(world)
    served, peers, listener = Served(chain), Peers(), Listener()
    service = PeerService(served, peers, listener, max_frame_bytes=1 << 20)

    await service.handle(2, SyncRequest(3, 4))
    [(to, response)] = peers.sent
    assert to == 2 and isinstance(response, SyncResponse) and response.proof is not None
    assert [b.height for b in response.blocks] == [3, 4, 5, 6] and response.committed_height == HEIGHT
    verify_commit_proof(response.proof, response.blocks[-1].id, world.verifier(), world.genesis.id)

    await service.handle(2, SyncRequest(HEIGHT + 1, 4))  # nothing there yet: says how far it is
    assert peers.sent[1:] == [(2, SyncResponse((), None, HEIGHT))]

    await service.handle(2, StatusRequest())  # the core has not started: nothing to say yet
    assert len(peers.sent) == 2

    batch = Batch.of(2, 1, 0, (Transaction(1, b"y"),))
    await service.handle(2, BatchMsg(batch))
    blocks = tuple(chain.blocks[:2])
    await service.handle(1, BlockResponse(blocks))
    status = StatusResponse(world.genesis_qc, None, 7)
    await service.handle(3, status)
    assert served.accepted == [(batch, 2)]
    assert served.posted == [BlocksIn(1, blocks)]
    assert listener.heard == [(3, status)]

    served.replica = Core(chain, HEIGHT)
    del peers.sent[:]
    await service.handle(2, StatusRequest())
    await service.handle(1, BlockRequest(chain.blocks[5].id, 2))  # newest first, down to height 3
    assert peers.sent == [(2, StatusResponse(chain.qcs[HEIGHT - 1], None, HEIGHT)),
                          (1, BlockResponse(tuple(reversed(chain.blocks[2:6]))))]
    served.recovering = True  # its certificates say nothing about what it signed before
    await service.handle(2, StatusRequest())
    assert len(peers.sent) == 2


class Poll:
    """A StatusPoll: each ask collects the answers scripted for that ask."""

    def __init__(self, script: list[dict[int, QuorumCert]]) -> None:
        self.statuses: dict[int, StatusResponse] = {}
        self.script = script
        self.asked = 0

    async def ask_statuses(self) -> None:
        answers = self.script[min(self.asked, len(self.script) - 1)]
        self.asked += 1
        self.statuses.update({p: StatusResponse(qc, None, 0) for p, qc in answers.items()})


async def test_recovery_needs_only_a_status_poll(autojump_clock: trio.abc.Clock) -> None:
    world = World.make(4)  # recovery needs n - q + f + 1 = 3 answers: every other replica
    b1, b2 = world.chain([1, 2])
    bad = forged_qc(world, b2, "insufficient")
    poll = Poll([{1: world.qc(b1), 2: world.genesis_qc, 3: bad}, {3: world.genesis_qc}])
    floor, qc = await recovery_floor(0, world.committee, world.verifier(), world.genesis.id, poll,
                                     connected=lambda: {1, 2}, retry=1.0)
    assert (floor, qc) == (1 + 2, world.qc(b1))  # the forged QC of round 2 was not counted
    assert poll.asked == 2


async def test_recovery_without_peers_refuses_to_start() -> None:
    world = World.make(1)
    with pytest.raises(NodeStartError, match="no peers"):
        await recovery_floor(0, world.committee, world.verifier(), world.genesis.id, Poll([{}]),
                             connected=set)


def node_importers(root: Path) -> list[str]:
    """Modules under ``root`` (a sequencing/replica/ tree) that import ``node`` in any form, also
    under TYPE_CHECKING or inside a function."""
    found = []
    for path in sorted(root.glob("*.py")):
        for stmt in ast.walk(ast.parse(path.read_text())):
            if isinstance(stmt, ast.ImportFrom):
                hit = (stmt.module or "").split(".")[-1] == "node" or any(a.name == "node" for a in stmt.names)
            elif isinstance(stmt, ast.Import):
                hit = any(a.name.split(".")[-1] == "node" for a in stmt.names)
            else:
                continue
            if hit:
                found.append(path.name)
    return found


def test_no_part_of_the_replica_imports_the_node(tmp_path: Path) -> None:
    """node.py is the replica's composition root: its parts never import it back (not even for
    type checking), so there is no import circle and no part can reach into the Node."""
    replica = Path(__file__).resolve().parents[2] / "sequencing" / "replica"
    assert node_importers(replica) == []
    (tmp_path / "part.py").write_text("if TYPE_CHECKING:\n    from .node import Node\n")
    (tmp_path / "other.py").write_text("def f() -> None:\n    from . import node\n")
    (tmp_path / "third.py").write_text("import sequencing.replica.node\n")
    assert node_importers(tmp_path) == ["other.py", "part.py", "third.py"]  # the check itself can fail
