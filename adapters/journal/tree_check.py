"""The tree as ``journal verify`` recomputes it: from the event hashes it checked itself,
never from the stored nodes, with the roots at the sizes it will compare (checkpoints, the
anchor, the stored tree heads); then the stored tree compared with it.

The stored tree is derived data: a difference is reported (``tree_mismatch``) because a
damaged node makes ``journal prove`` fail, but it says nothing about the events, which the
chains and checkpoints judge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from skill_ledger.domain.checkpoints import CHECKPOINT_CONTEXT
from skill_ledger.domain.merkle import Frontier

from .tree import STORED_LEVEL, JournalTree

FLUSH = 4096


class TreeBuilder:
    """Feeds leaves (raw event hashes) in position order into a frontier, batching them,
    and remembers the Merkle root at each size in ``sizes`` and the version-1 running hash
    at each count in ``legacy_counts``; with ``nodes_until``, also the nodes of level
    ``STORED_LEVEL`` and up of the first ``nodes_until`` leaves (to compare with the stored tree)."""

    def __init__(self, sizes: Iterable[int] = (), legacy_counts: Iterable[int] = (), *, nodes_until: int = 0,
                 start: Frontier | None = None) -> None:
        self.frontier = start.copy() if start is not None else Frontier()
        self.pending: list[bytes] = []
        self.roots: dict[int, bytes] = {}
        self.stops = sorted({s for s in sizes if s > self.frontier.size}, reverse=True)
        if self.frontier.size in set(sizes):
            self.roots[self.frontier.size] = self.frontier.root()
        self.legacy_counts = set(legacy_counts)
        self.legacy = hashlib.sha256(CHECKPOINT_CONTEXT) if self.legacy_counts else None
        self.legacy_roots: dict[int, str] = {}
        if 0 in self.legacy_counts and self.legacy is not None:
            self.legacy_roots[0] = self.legacy.hexdigest()
        self.nodes_until = nodes_until
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.size = self.frontier.size

    def add(self, leaf: bytes) -> None:
        self.pending.append(leaf)
        self.size += 1
        if self.legacy is not None:
            self.legacy.update(leaf)
            if self.size in self.legacy_counts:
                self.legacy_roots[self.size] = self.legacy.hexdigest()
        if (self.stops and self.size == self.stops[-1]) or len(self.pending) >= FLUSH:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        collect = self.frontier.size < self.nodes_until
        nodes = self.frontier.extend_events(self.pending, collect_nodes=collect)
        self.pending = []
        if collect:
            self.nodes.update(((n.level, n.index), n.hash) for n in nodes
                              if n.level >= STORED_LEVEL and (n.index + 1) << n.level <= self.nodes_until)
        while self.stops and self.stops[-1] <= self.frontier.size:
            stop = self.stops.pop()
            if stop == self.frontier.size:
                self.roots[stop] = self.frontier.root()

    def root(self) -> bytes:
        self.flush()
        return self.frontier.root()


def check_stored_tree(tree: JournalTree, builder: TreeBuilder, head: int) -> list[tuple[int, str, str]]:
    """The stored tree against the recomputed one: every stored head (size, root, frontier)
    and every stored node. Returns (position, code, message) findings."""
    out: list[tuple[int, str, str]] = []
    builder.flush()
    heads = tree.stored_heads()
    for size, root, frontier in heads:
        if size > head:
            out.append((head + 1, "truncated", f"the stored Merkle tree covers {size} events, the journal ends at "
                                               f"{head}: events were cut off its end"))
            return out
        if builder.roots.get(size) not in (None, root):
            out.append((size, "tree_mismatch", f"the first {size} events are not those the stored Merkle tree was "
                                               "built from"))
        try:
            stored = Frontier.from_bytes(frontier)
        except Exception:  # noqa: BLE001 - any damage of the derived row is the same finding
            stored = None
        if stored is None or stored.size != size or stored.root() != root:
            out.append((size, "tree_mismatch", f"the stored Merkle frontier at size {size} is damaged"))
    if not heads:
        return out
    computed = builder.nodes
    for level in _levels(heads[-1][0]):
        for index, h in tree.stored_nodes(level):
            expected = computed.get((level, index))
            if expected is None or expected != h:
                first, last = (index << level) + 1, (index + 1) << level
                out.append((last, "tree_mismatch",
                            f"the events at positions {first}..{last} are not those the stored Merkle tree was built "
                            f"from (node level {level}, index {index})"))
                return out
    return out


def _levels(size: int) -> range:
    return range(STORED_LEVEL, max(STORED_LEVEL, size.bit_length()))

