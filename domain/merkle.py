"""The journal as an RFC 9162 §2.1 Merkle tree: hashes, the frontier, proofs and their checks.

The leaves are the journal's events in position order; the data of leaf ``i`` is the 32-byte
hash of event ``i`` (:func:`event_leaf_hash`). Hashing is RFC 9162 §2.1.1 with SHA-256::

    leaf     = SHA-256(0x00 || leaf data)
    interior = SHA-256(0x01 || left || right)
    MTH({})  = SHA-256()                       (the empty tree)

A *node* is the root of a perfect subtree, named by ``(level, index)``: it covers the leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes. Every hash a
proof or a root needs is a node or a right-fold of a few nodes, so a store of nodes answers
any root or proof with O(log n) reads (:class:`NodeStore`, one batched call per answer).

The :class:`Frontier` (the compact range ``[0, n)``: one node per set bit of ``n``, about
log2(n) hashes) is what a writer keeps: appending a leaf costs O(1) amortised hashes, gives the
nodes it completes (to store, about two per leaf), and the root of the current size is a fold
of at most 64 hashes. It serialises to bytes or JSON so a writer can stop and resume.

Proof generation follows the recursive definitions of RFC 9162 §2.1.3.1 (``PATH``) and
§2.1.4.1 (``PROOF``/``SUBPROOF``) step by step, reading the subtree hashes from the store
instead of recomputing them; verification is the exact algorithm of §2.1.3.2 and §2.1.4.2.
Verification failures raise :class:`~.errors.ProofError` with one of the reasons in
:data:`PROOF_FAILURE_REASONS`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol

from .errors import InvalidInput, JournalTampered, ProofError, SkillLedgerError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
# Tree sizes are unsigned 64-bit integers in the checkpoint format (and in every CT/tlog
# implementation); a bigger number is rejected rather than silently accepted.
MAX_TREE_SIZE = 2**64 - 1

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_FRONTIER_MAGIC = b"skill-ledger.merkle.frontier.v1\n"

# ProofError.details["reason"] values (stable, part of the CLI's JSON error documents).
PROOF_FAILURE_REASONS = frozenset(
    {
        "hash_length",  # a leaf hash, root or proof element is not 32 bytes
        "index_out_of_range",  # the leaf index is not below the tree size
        "empty_tree",  # nothing can be proven about (or from) the empty tree
        "size_order",  # the old tree is bigger than the new one, or a size is out of range
        "proof_length",  # the proof has too many or too few hashes for these sizes
        "root_mismatch",  # the proof leads to a different (new) root
        "old_root_mismatch",  # a consistency proof leads to a different old root
        "frontier_malformed",  # a serialised frontier that is damaged or inconsistent
    }
)

NodeKey = tuple[int, int]  # (level, index)


class Node(NamedTuple):
    level: int
    index: int
    hash: bytes


# --- hashing (RFC 9162 §2.1.1) ------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """``HASH(0x00 || data)`` for any leaf data (the reference vectors use short byte strings)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def event_leaf_hash(event_hash: bytes) -> bytes:
    """The leaf hash of a journal event: its raw 32-byte event hash is the leaf data."""
    _check_hash(event_hash, "event hash")
    return hashlib.sha256(_LEAF_PREFIX + event_hash).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _check_hash(value: object, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        length = len(value) if isinstance(value, (bytes, bytearray)) else None
        raise ProofError("hash_length", f"{what} must be {HASH_SIZE} bytes", what=what, length=length)


def _check_size(size: object, what: str) -> int:
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_TREE_SIZE:
        raise ProofError("size_order", f"{what} must be an integer in [0, 2**64)", what=what)
    return size


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    """MTH of adjacent perfect subtrees of strictly decreasing size: the RFC splits at the
    largest power of two, which is always the first subtree, so the hash folds from the right."""
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = node_hash(left, h)
    return h


def _largest_power_of_two_below(n: int) -> int:
    """RFC 9162's ``k``: the largest power of two smaller than ``n`` (``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_keys(start: int, end: int) -> list[NodeKey]:
    """The perfect subtrees covering ``[start, end)``, biggest first. Only called for ranges the
    RFC recursion produces, where ``start`` is a multiple of a power of two bigger than the
    range, so the pieces follow the set bits of ``end - start`` from high to low."""
    keys: list[NodeKey] = []
    pos, width = start, end - start
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            keys.append((level, pos >> level))
            pos += 1 << level
    return keys


# --- the node store -----------------------------------------------------------------------


class NodeStore(Protocol):
    """Where the nodes of the tree live (a SQLite table in the journal's adapter).

    ``get_nodes`` returns the hash of each perfect subtree ``(level, index)`` asked for, in the
    order asked. Every root and proof function below makes exactly one call, with at most
    about ``2 * log2(size)`` keys. A store that lacks a node must raise (never return a
    placeholder): a missing node means the stored tree is incomplete or damaged.
    """

    def get_nodes(self, keys: Sequence[NodeKey]) -> Sequence[bytes]: ...


class MemoryNodeStore:
    """A :class:`NodeStore` in a dict: for tests, small trees and auditors' tools."""

    def __init__(self, nodes: Iterable[Node] = ()) -> None:
        self._nodes: dict[NodeKey, bytes] = {}
        self.put_nodes(nodes)

    def put_nodes(self, nodes: Iterable[Node]) -> None:
        for level, index, h in nodes:
            self._nodes[(level, index)] = h

    def get_nodes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        try:
            return [self._nodes[key] for key in keys]
        except KeyError as e:
            level, index = e.args[0]
            # A bug in the caller (asking beyond what was stored), not a rejected input.
            raise SkillLedgerError(
                f"Merkle node (level {level}, index {index}) is not in the store",
                {"level": level, "index": index},
            ) from None

    def __len__(self) -> int:
        return len(self._nodes)


# --- the frontier (compact range [0, n)) ----------------------------------------------------


class Frontier:
    """The right edge of the tree of ``size`` leaves: the roots of its perfect subtrees, biggest
    (leftmost) first, one per set bit of ``size``. Mutable: a writer appends leaves to it."""

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        _check_size(size, "frontier size")
        hashes = list(hashes)
        if len(hashes) != size.bit_count():
            raise ProofError(
                "frontier_malformed",
                f"a frontier of size {size} has {size.bit_count()} hashes, not {len(hashes)}",
                size=size,
                hashes=len(hashes),
            )
        for h in hashes:
            _check_hash(h, "frontier hash")
        self._size = size
        self._hashes = hashes

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def nodes(self) -> list[Node]:
        """The frontier's hashes with their node keys (the compact range's nodes)."""
        keys = _range_keys(0, self._size)
        return [Node(level, index, h) for (level, index), h in zip(keys, self._hashes)]

    def append(self, leaf: bytes) -> list[Node]:
        """Add one leaf hash; returns the nodes it completes (the leaf itself first, then each
        interior node that became perfect), which a writer stores."""
        out: list[Node] = []
        self._absorb((leaf,), events=False, out=out)
        return out

    def extend(self, leaves: Iterable[bytes], *, collect_nodes: bool = True) -> list[Node]:
        """Add leaf hashes in order; returns the completed nodes (none if ``collect_nodes`` is
        false, for a writer or verifier that only needs the root)."""
        out: list[Node] | None = [] if collect_nodes else None
        self._absorb(leaves, events=False, out=out)
        return out or []

    def extend_events(self, event_hashes: Iterable[bytes], *, collect_nodes: bool = True) -> list[Node]:
        """:meth:`extend` with the raw 32-byte event hashes (the leaf hashing done inline: this
        is the loop a full journal verification runs once per event)."""
        out: list[Node] | None = [] if collect_nodes else None
        self._absorb(event_hashes, events=True, out=out)
        return out or []

    def _absorb(self, items: Iterable[bytes], *, events: bool, out: list[Node] | None) -> None:
        sha256, hashes, size = hashlib.sha256, self._hashes, self._size
        try:
            for h in items:
                if type(h) is not bytes or len(h) != HASH_SIZE:
                    _check_hash(h, "event hash" if events else "leaf hash")
                if size == MAX_TREE_SIZE:
                    raise ProofError("size_order", "the tree is full (2**64 - 1 leaves)")
                if events:
                    h = sha256(_LEAF_PREFIX + h).digest()
                if out is not None:
                    out.append(Node(0, size, h))
                # Each trailing 1 bit of the old size is a perfect subtree that the new leaf
                # completes: merge it with the hash to its left, one level up each time.
                n, level = size, 0
                while n & 1:
                    h = sha256(_NODE_PREFIX + hashes.pop() + h).digest()
                    n >>= 1
                    level += 1
                    if out is not None:
                        out.append(Node(level, ((size + 1) >> level) - 1, h))
                hashes.append(h)
                size += 1
        finally:  # a bad item stops the loop between two leaves: the frontier stays whole
            self._size = size

    def root(self) -> bytes:
        """MTH of the tree of the current size (O(log n) hashes)."""
        return _fold_right(self._hashes) if self._hashes else EMPTY_ROOT

    def copy(self) -> Frontier:
        return Frontier(self._size, self._hashes)

    @classmethod
    def from_store(cls, size: int, store: NodeStore) -> Frontier:
        """The frontier of a stored tree (``popcount(size)`` reads), to resume appending."""
        _check_size(size, "tree size")
        return cls(size, list(store.get_nodes(_range_keys(0, size))) if size else [])

    # Serialised forms: a writer stores one of these beside its tree and resumes from it.

    def to_bytes(self) -> bytes:
        return _FRONTIER_MAGIC + self._size.to_bytes(8, "big") + b"".join(self._hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> Frontier:
        head = len(_FRONTIER_MAGIC)
        if not data.startswith(_FRONTIER_MAGIC) or len(data) < head + 8:
            raise ProofError("frontier_malformed", "not a serialised frontier")
        size = int.from_bytes(data[head : head + 8], "big")
        body = data[head + 8 :]
        if len(body) != size.bit_count() * HASH_SIZE:
            raise ProofError("frontier_malformed", f"a frontier of size {size} needs {size.bit_count()} hashes")
        return cls(size, [body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)])

    def to_dict(self) -> dict[str, object]:
        return {"size": self._size, "hashes": [h.hex() for h in self._hashes]}

    @classmethod
    def from_dict(cls, doc: object) -> Frontier:
        if not isinstance(doc, dict) or set(doc) != {"size", "hashes"} or not isinstance(doc["hashes"], list):
            raise ProofError("frontier_malformed", "a frontier document is {size, hashes}")
        hashes = []
        for h in doc["hashes"]:
            if not isinstance(h, str) or len(h) != 2 * HASH_SIZE or h != h.lower():
                raise ProofError("frontier_malformed", "frontier hashes are 64 lowercase hex digits")
            try:
                hashes.append(bytes.fromhex(h))
            except ValueError:
                raise ProofError("frontier_malformed", "frontier hashes are 64 lowercase hex digits") from None
        return cls(_check_size(doc["size"], "frontier size"), hashes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Frontier) and (self._size, self._hashes) == (other._size, other._hashes)

    def __repr__(self) -> str:
        return f"Frontier(size={self._size}, root={self.root().hex()})"


def tree_root(leaves: Iterable[bytes]) -> bytes:
    """MTH of the given leaf hashes, in O(n) time and O(log n) memory."""
    frontier = Frontier()
    frontier.extend(leaves, collect_nodes=False)
    return frontier.root()


def events_root(event_hashes: Iterable[bytes]) -> bytes:
    """MTH of the journal whose events have these raw 32-byte hashes, in position order."""
    frontier = Frontier()
    frontier.extend_events(event_hashes, collect_nodes=False)
    return frontier.root()


# --- roots and proofs from stored nodes ------------------------------------------------------


def _fetch(plan: list[list[NodeKey]], store: NodeStore) -> list[bytes]:
    """One batched read for the whole plan; each entry folds to one hash."""
    keys = [key for entry in plan for key in entry]
    got = list(store.get_nodes(keys)) if keys else []
    if len(got) != len(keys):
        raise SkillLedgerError("the node store returned a wrong number of nodes", {"asked": len(keys)})
    for (level, index), h in zip(keys, got):
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:  # a damaged row, never a valid proof
            raise JournalTampered(
                f"the stored Merkle node (level {level}, index {index}) is not a 32-byte hash",
                {"level": level, "index": index},
            )
    out, at = [], 0
    for entry in plan:
        out.append(_fold_right(got[at : at + len(entry)]))
        at += len(entry)
    return out


def root_from_store(size: int, store: NodeStore) -> bytes:
    """MTH of the first ``size`` leaves (``popcount(size)`` node reads)."""
    _check_size(size, "tree size")
    if size == 0:
        return EMPTY_ROOT
    return _fetch([_range_keys(0, size)], store)[0]


def _inclusion_plan(index: int, size: int) -> list[list[NodeKey]]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1, as the nodes each element folds from.

    ``PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])`` if ``m < k``, else
    ``PATH(m - k, D[k:n]) : MTH(D[0:k])``: the recursion walks down from the root, so the
    siblings are collected top-down and returned leaf-first, as the RFC orders them.
    """
    lo, hi = 0, size
    siblings: list[list[NodeKey]] = []
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            siblings.append(_range_keys(lo + k, hi))
            hi = lo + k
        else:
            siblings.append(_range_keys(lo, lo + k))
            lo += k
    siblings.reverse()
    return siblings


def _consistency_plan(old_size: int, new_size: int) -> list[list[NodeKey]]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 9162 §2.1.4.1, as node folds.

    ``SUBPROOF(m, D[m], true) = {}``, ``SUBPROOF(m, D[m], false) = {MTH(D[m])}``; for ``m < n``:
    ``SUBPROOF(m, D[0:k], b) : MTH(D[k:n])`` if ``m <= k``, else
    ``SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])``. ``old_size`` stays an absolute position
    because only the left edge ``lo`` moves.
    """
    lo, hi, complete = 0, new_size, True
    path: list[list[NodeKey]] = []
    while old_size != hi:
        k = _largest_power_of_two_below(hi - lo)
        if old_size - lo <= k:
            path.append(_range_keys(lo + k, hi))
            hi = lo + k
        else:
            path.append(_range_keys(lo, lo + k))
            lo += k
            complete = False
    if not complete:
        path.append(_range_keys(lo, hi))
    path.reverse()
    return path


def inclusion_proof(index: int, size: int, store: NodeStore) -> list[bytes]:
    """The inclusion proof of leaf ``index`` in the tree of ``size`` leaves (O(log n) reads)."""
    _check_size(size, "tree size")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < size:
        raise InvalidInput(f"leaf index {index} is not in a tree of {size} leaves", {"index": index, "size": size})
    return _fetch(_inclusion_plan(index, size), store)


def consistency_proof(old_size: int, new_size: int, store: NodeStore) -> list[bytes]:
    """The proof that the tree of ``old_size`` leaves is a prefix of the one of ``new_size``
    (O(log n) reads). Equal sizes give the empty proof; an empty old tree has no proof
    (RFC 9162 defines ``PROOF(m, D[n])`` for ``0 < m < n``)."""
    _check_size(old_size, "old tree size")
    _check_size(new_size, "new tree size")
    if not 0 < old_size <= new_size:
        raise InvalidInput(
            f"no consistency proof from {old_size} to {new_size} leaves (needs 0 < old <= new)",
            {"old_size": old_size, "new_size": new_size},
        )
    if old_size == new_size:
        return []
    return _fetch(_consistency_plan(old_size, new_size), store)


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2, step by step) ---------------------------


def _check_proof(proof: Sequence[bytes]) -> None:
    if isinstance(proof, (bytes, str)):
        raise ProofError("hash_length", "a proof is a sequence of hashes")
    for i, p in enumerate(proof):
        _check_hash(p, f"proof hash {i}")


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf`` (a leaf hash) is leaf ``index`` of the tree of ``size`` leaves whose
    root is ``root``. Raises :class:`ProofError`; returns nothing on success."""
    _check_hash(leaf, "leaf hash")
    _check_hash(root, "root hash")
    _check_proof(proof)
    _check_size(size, "tree size")
    _check_size(index, "leaf index")
    # 1. leaf_index >= tree_size fails (this also covers the empty tree).
    if index >= size:
        reason = "empty_tree" if size == 0 else "index_out_of_range"
        raise ProofError(reason, f"leaf index {index} is not in a tree of {size} leaves", index=index, size=size)
    # 2-3. fn = leaf_index, sn = tree_size - 1, r = hash.
    fn, sn, r = index, size - 1, leaf
    # 4. For each p in inclusion_path:
    for p in proof:
        if sn == 0:  # a. the path is longer than the tree is high
            raise ProofError("proof_length", "the inclusion proof has too many hashes", index=index, size=size)
        if fn & 1 or fn == sn:  # b.
            r = node_hash(p, r)  # i.
            if not fn & 1:  # ii. climb over the levels where this node has no right sibling
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1  # c.
        sn >>= 1
    # 5. sn must be 0 and r must be the root.
    if sn != 0:
        raise ProofError("proof_length", "the inclusion proof has too few hashes", index=index, size=size)
    if r != root:
        raise ProofError("root_mismatch", "the inclusion proof does not lead to the root", index=index, size=size)


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree of ``old_size`` leaves with root ``old_root`` is a prefix of the tree
    of ``new_size`` leaves with root ``new_root``. Raises :class:`ProofError`.

    RFC 9162 §2.1.4.2 covers ``0 < first < second``. For equal sizes the proof must be empty
    and the roots equal; an empty old tree proves nothing and is rejected (as the
    transparency-dev/merkle reference verifier does).
    """
    _check_hash(old_root, "old root hash")
    _check_hash(new_root, "new root hash")
    _check_proof(proof)
    _check_size(old_size, "old tree size")
    _check_size(new_size, "new tree size")
    sizes = {"old_size": old_size, "new_size": new_size}
    if old_size > new_size:
        raise ProofError("size_order", f"the old tree ({old_size}) is bigger than the new one ({new_size})", **sizes)
    if old_size == 0:
        raise ProofError("empty_tree", "a consistency proof from the empty tree proves nothing", **sizes)
    if old_size == new_size:
        if proof:
            raise ProofError("proof_length", "trees of equal size have an empty consistency proof", **sizes)
        if old_root != new_root:
            raise ProofError("root_mismatch", "trees of equal size have different roots", **sizes)
        return
    # 1. An empty consistency_path fails.
    if not proof:
        raise ProofError("proof_length", "the consistency proof is empty", **sizes)
    path = list(proof)
    # 2. If first is an exact power of 2, prepend first_hash.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # 3. fn = first - 1, sn = second - 1.
    fn, sn = old_size - 1, new_size - 1
    # 4. While LSB(fn) is set, right-shift fn and sn.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. fr = sr = the first value of the path.
    fr = sr = path[0]
    # 6. For each subsequent value c:
    for c in path[1:]:
        if sn == 0:  # a.
            raise ProofError("proof_length", "the consistency proof has too many hashes", **sizes)
        if fn & 1 or fn == sn:  # b.
            fr = node_hash(c, fr)  # i.
            sr = node_hash(c, sr)  # ii.
            if not fn & 1:  # iii.
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)  # otherwise i.
        fn >>= 1  # c.
        sn >>= 1
    # 7. fr == first_hash, sr == second_hash, sn == 0.
    if sn != 0:
        raise ProofError("proof_length", "the consistency proof has too few hashes", **sizes)
    if fr != old_root:
        raise ProofError("old_root_mismatch", "the consistency proof does not lead to the old root", **sizes)
    if sr != new_root:
        raise ProofError("root_mismatch", "the consistency proof does not lead to the new root", **sizes)
