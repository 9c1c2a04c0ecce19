"""The tree of uncommitted blocks above the last committed block (the root).

Blocks enter only when their parent is present; committing a block makes it the new root and
prunes everything that does not descend from it.
"""

from __future__ import annotations

from .errors import InvalidMessage, LocalProtocolError, UnknownBlock
from .messages import Block, BlockId, QuorumCert


class BlockTree:
    __slots__ = ("_blocks", "_children", "_qcs", "root")

    def __init__(self, root: Block) -> None:
        self.root = root
        self._blocks: dict[BlockId, Block] = {root.id: root}
        self._children: dict[BlockId, set[BlockId]] = {root.id: set()}
        self._qcs: dict[BlockId, QuorumCert] = {}

    def copy(self) -> BlockTree:
        """An independent copy (blocks themselves are immutable and shared)."""
        other = BlockTree.__new__(BlockTree)
        other.root = self.root
        other._blocks = dict(self._blocks)
        other._children = {k: set(v) for k, v in self._children.items()}
        other._qcs = dict(self._qcs)
        return other

    def __contains__(self, block_id: object) -> bool:
        return block_id in self._blocks

    def __len__(self) -> int:
        return len(self._blocks)

    def get(self, block_id: BlockId) -> Block | None:
        return self._blocks.get(block_id)

    def insert(self, block: Block) -> bool:
        """Add ``block`` under its parent; returns False if already present.

        Raises InvalidMessage if the block does not extend its parent correctly, and
        LocalProtocolError if the parent is absent (callers check first)."""
        if block.id in self._blocks:
            return False
        parent = self._blocks.get(block.parent_id)
        if parent is None:
            raise LocalProtocolError("insert: parent not in the tree")
        self.check_child(block, parent)
        self._blocks[block.id] = block
        self._children[block.id] = set()
        self._children[parent.id].add(block.id)
        return True

    @staticmethod
    def check_child(block: Block, parent: Block) -> None:
        """Raises InvalidMessage unless ``block`` may sit under ``parent``."""
        if block.height != parent.height + 1:
            raise InvalidMessage(f"block height {block.height} does not follow parent {parent.height}")
        if block.round <= parent.round or block.qc.round != parent.round:
            raise InvalidMessage("block round must exceed its parent's, and its QC certify the parent")

    def record_qc(self, qc: QuorumCert) -> None:
        if qc.block_id in self._blocks:
            self._qcs.setdefault(qc.block_id, qc)

    def qc_for(self, block_id: BlockId) -> QuorumCert | None:
        return self._qcs.get(block_id)

    def path_from_root(self, block_id: BlockId) -> list[Block]:
        """Blocks strictly above the root up to ``block_id`` inclusive, oldest first. Raises
        :class:`UnknownBlock` if the block is not in the tree (e.g. pruned by a commit)."""
        path: list[Block] = []
        block = self._blocks.get(block_id)
        if block is None:
            raise UnknownBlock(f"block {block_id.hex()[:12]} is not in the tree (pruned or never received)")
        while block.id != self.root.id:
            path.append(block)
            parent = self._blocks.get(block.parent_id)
            if parent is None or block.height <= self.root.height:
                raise LocalProtocolError("block does not descend from the root")
            block = parent
        path.reverse()
        return path

    def extends_root(self, block_id: BlockId) -> bool:
        try:
            self.path_from_root(block_id)
        except (UnknownBlock, LocalProtocolError):
            return False
        return True

    def commit(self, block_id: BlockId) -> list[Block]:
        """Make ``block_id`` the root; returns the newly committed blocks, oldest first."""
        path = self.path_from_root(block_id)
        if not path:
            return []
        self.root = path[-1]
        keep: dict[BlockId, Block] = {}
        stack = [self.root.id]
        while stack:
            current = stack.pop()
            keep[current] = self._blocks[current]
            stack.extend(self._children[current])
        self._blocks = keep
        self._children = {k: {c for c in self._children[k] if c in keep} for k in keep}
        self._qcs = {k: v for k, v in self._qcs.items() if k in keep}
        return path
