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
from skill_ledger.domain.merkle import EMPTY_ROOT, Frontier, node_hash

from .tree import STORED_LEVEL, JournalTree

FLUSH = 4096
# A deleted event leaves a hole in the positions; the tree keeps leaf i at position i + 1 by
# putting a zero leaf in it (the roots then differ from the signed ones, as they must), unless
# the hole is absurdly big (a forged position far beyond the others).
MAX_HOLE = 1 << 20
HOLE = bytes(32)


def fold(hashes: Iterable[bytes]) -> bytes:
    """The root of a frontier's hashes (biggest subtree first)."""
    hashes = list(hashes)
    if not hashes:
        return EMPTY_ROOT
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = node_hash(left, h)
    return h


class TreeBuilder:
    """Feeds leaves (raw event hashes) in position order into a frontier, batching them, and
    remembers the frontier at each size in ``sizes`` and the version-1 running hash at each
    count in ``legacy_counts``.

    ``offset``: the leaves are those after the first ``offset`` (a chunk of a parallel scan,
    ``offset`` a multiple of the chunk size): sizes are still global, the frontier is relative
    to the chunk (the caller puts it after the journal's frontier at ``offset``)."""

    def __init__(self, sizes: Iterable[int] = (), legacy_counts: Iterable[int] = (), *,
                 start: Frontier | None = None, offset: int = 0, keep_leaves: bool = False) -> None:
        self.frontier = start.copy() if start is not None else Frontier()
        self.offset = offset
        self.pending: list[bytes] = []
        self.frontiers: dict[int, tuple[bytes, ...]] = {}
        base = offset + self.frontier.size
        wanted = set(sizes)
        self.stops = sorted({s for s in wanted if s > base}, reverse=True)
        if base in wanted:
            self.frontiers[base] = self.frontier.hashes
        self.legacy_counts = set(legacy_counts)
        self.legacy = hashlib.sha256(CHECKPOINT_CONTEXT) if self.legacy_counts else None
        self.legacy_roots: dict[int, str] = {}
        if 0 in self.legacy_counts and self.legacy is not None:
            self.legacy_roots[0] = self.legacy.hexdigest()
        self.leaves: list[bytes] | None = [] if keep_leaves else None
        self.size = base  # global

    def add(self, leaf: bytes) -> None:
        self.pending.append(leaf)
        self.size += 1
        if self.legacy is not None:
            self.legacy.update(leaf)
            if self.size in self.legacy_counts:
                self.legacy_roots[self.size] = self.legacy.hexdigest()
        if self.leaves is not None:
            self.leaves.append(leaf)
        if (self.stops and self.size == self.stops[-1]) or len(self.pending) >= FLUSH:
            self.flush()

    def add_at(self, position: int, leaf: bytes) -> None:
        """The leaf of the event at ``position``, after zero leaves for any positions missing
        before it (the same tree in one pass and in chunks)."""
        hole = position - 1 - self.size
        if 0 < hole <= MAX_HOLE:
            for _ in range(hole):
                self.add(HOLE)
        self.add(leaf)

    def fill_to(self, size: int) -> None:
        """Zero leaves up to ``size`` (the positions missing at the end of a chunk)."""
        if 0 < size - self.size <= MAX_HOLE:
            for _ in range(size - self.size):
                self.add(HOLE)

    def flush(self) -> None:
        if not self.pending:
            return
        self.frontier.extend_events(self.pending, collect_nodes=False)
        self.pending = []
        while self.stops and self.stops[-1] <= self.offset + self.frontier.size:
            stop = self.stops.pop()
            if stop == self.offset + self.frontier.size:
                self.frontiers[stop] = self.frontier.hashes

    @property
    def roots(self) -> dict[int, bytes]:
        self.flush()
        return {size: fold(hashes) for size, hashes in self.frontiers.items()}

    def root(self) -> bytes:
        self.flush()
        return self.frontier.root()


def check_stored_tree(tree: JournalTree, roots: dict[int, bytes], head: int) -> list[tuple[int, str, str]]:
    """The stored tree against the recomputed one, without recomputing its nodes: every stored
    head (size, root, frontier) must have the root the events give at its size; every stored
    node must be the hash of its two stored children; and the root the stored nodes give at the
    newest stored size must be the events' root. Every stored node lies under one of that
    size's frontier nodes, so together these hold only if every stored node is the journal's.
    Returns (position, code, message) findings."""
    out: list[tuple[int, str, str]] = []
    heads = tree.stored_heads()
    for size, root, frontier in heads:
        if size > head:
            out.append((head + 1, "truncated", (f"the stored Merkle tree covers {size} events, the journal ends at "
                                                f"{head}: events were cut off its end")))
            return out
        if roots.get(size) not in (None, root):
            out.append((size, "tree_mismatch", (f"the first {size} events are not those the stored Merkle tree was "
                                                "built from")))
        try:
            stored = Frontier.from_bytes(frontier)
        except Exception:  # noqa: BLE001 - any damage of the derived row is the same finding
            stored = None
        if stored is None or stored.size != size or stored.root() != root:
            out.append((size, "tree_mismatch", f"the stored Merkle frontier at size {size} is damaged"))
    if not heads or out:
        return out
    size = heads[-1][0]
    below: dict[int, bytes] = {}
    for level in range(STORED_LEVEL, max(STORED_LEVEL, size.bit_length())):
        nodes = dict(tree.stored_nodes(level))
        for index, h in nodes.items() if level > STORED_LEVEL else ():
            left, right = below.get(2 * index), below.get(2 * index + 1)
            if left is None or right is None or node_hash(left, right) != h:
                first, last = (index << level) + 1, (index + 1) << level
                return [(last, "tree_mismatch", (f"the stored Merkle nodes of positions {first}..{last} disagree "
                                                 f"(node level {level}, index {index})"))]
        below = nodes
    try:
        from_store = tree.root(size)
    except Exception as e:  # noqa: BLE001 - a missing node is the same finding
        return [(size, "tree_mismatch", f"the stored Merkle tree at size {size} cannot be read: {e}")]
    if size in roots and from_store != roots[size]:
        return [(size, "tree_mismatch", f"the stored Merkle nodes do not give the first {size} events' root")]
    return out
