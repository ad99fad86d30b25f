"""The journal's Merkle tree (RFC 9162, ``domain.merkle``), stored beside the events.

The leaves are the events in position order (leaf ``i`` is the event at position ``i + 1``,
its data the 32 raw bytes of the event's chain hash). The tree is derived data: it is kept
so that a new root costs O(new events) and a proof O(log n), never trusted by
``journal verify``, which recomputes it from the events.

Storage, in the journal database (SQLite or PostgreSQL), append-only like the events:

* ``merkle_nodes (level, idx, hash)``: every perfect subtree of ``2**level`` leaves for
  ``level >= STORED_LEVEL``. Lower nodes are not stored: one is the root of at most
  ``2**(STORED_LEVEL - 1)`` leaves and is computed from the ``event_chain`` hashes when a root
  or proof needs it (at most a few per answer). That keeps the tree to about n/8 rows.
* ``merkle_tree (size, root, frontier)``: one row each time the tree is extended, the
  newest being the tree as stored. The frontier (``Frontier.to_bytes``) is what the next
  extension resumes from.

The tree is extended from its stored size up to the journal's head by the commands that need
it (``journal checkpoint``, ``prove``, ``verify --since-checkpoint``), never by the event
insert path, in batches that each commit (so a long first extension holds the write lock
briefly at a time and survives an interruption). Two processes extending at once: the
second sees the first's rows under the write lock and starts again from them. A journal
that cannot be written (read-only media, a read-only database role) gets the extension in
memory for this process only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from skill_ledger.domain.errors import JournalTampered, ProofError
from skill_ledger.domain.merkle import (
    EMPTY_ROOT,
    Frontier,
    Node,
    NodeKey,
    consistency_proof,
    event_leaf_hash,
    inclusion_proof,
    root_from_store,
    tree_root,
)

from .sqlite import APPEND_ONLY_MESSAGE, ChainedSQLiteRecorder, LedgerApplication

STORED_LEVEL = 4
TREE_TABLES = ("merkle_nodes", "merkle_tree")
BATCH = 200_000  # events per committed extension step
READ_BATCH = 20_000


def parse_event_hash(position: int, value: object) -> bytes:
    """The 32 raw bytes of a stored chain hash (64 lowercase hex digits)."""
    if isinstance(value, str) and len(value) == 64:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = b""
        if len(raw) == 32 and raw.hex() == value:
            return raw
    raise JournalTampered(f"the chain hash of position {position} is not 64 lowercase hex digits",
                          {"position": position})


class JournalTree:
    """The stored tree of one journal; a ``domain.merkle.NodeStore``."""

    def __init__(self, app: LedgerApplication) -> None:
        recorder = app.recorder
        if isinstance(recorder, ChainedSQLiteRecorder):
            self.db: TreeDB = SqliteTreeDB(recorder.datastore.pool.db_name)
        else:
            from .tree_pg import PostgresTreeDB

            self.db = PostgresTreeDB(recorder)
        self._memory: dict[NodeKey, bytes] = {}  # nodes of an extension that could not be stored
        self._memory_head: tuple[int, Frontier] | None = None

    # --- the stored tree -------------------------------------------------------------------

    def head(self) -> tuple[int, Frontier]:
        """(size, frontier) of the tree as stored (or as extended in memory)."""
        if self._memory_head is not None:
            return self._memory_head[0], self._memory_head[1].copy()
        row = self.db.newest_tree()
        if row is None:
            return 0, Frontier()
        size, frontier = row
        try:
            f = Frontier.from_bytes(frontier)
        except ProofError as e:  # a damaged row: the tree cannot be resumed from it
            raise JournalTampered(f"the stored Merkle frontier at size {size} is damaged: {e}", {"size": size}) from None
        if f.size != size:
            raise JournalTampered(f"the stored Merkle frontier of size {size} claims {f.size} leaves", {"size": size})
        return size, f

    @property
    def size(self) -> int:
        return self.head()[0]

    def extend(self, target: int, *, progress: Any = None) -> Frontier:
        """Extend the stored tree to ``target`` leaves (the events 1..target must exist);
        returns the frontier at ``target``. A tree already bigger is left alone, and the
        frontier at ``target`` is read from its nodes."""
        size, frontier = self.head()
        if size >= target:
            return frontier if size == target else Frontier.from_store(target, self)
        while size < target:
            stop = min(target, size + BATCH)
            nodes = frontier.extend_events(self.event_hashes(size + 1, stop))
            kept = [n for n in nodes if n.level >= STORED_LEVEL]
            stored = self._store(size, frontier, kept)
            if stored is not None:  # another process extended the tree meanwhile: resume from theirs
                size, frontier = stored
                continue
            size = frontier.size
            if progress is not None:
                progress(size)
        if size > target:
            return Frontier.from_store(target, self)
        return frontier

    def _store(self, old_size: int, frontier: Frontier, nodes: list[Node]) -> tuple[int, Frontier] | None:
        """Persist an extension from ``old_size``; None when done, else the stored tree that
        another process wrote first. Falls back to memory on a read-only journal."""
        if self._memory_head is None:
            try:
                return self.db.append(old_size, frontier, nodes)
            except ReadOnlyJournal:
                pass
        self._memory.update(((n.level, n.index), n.hash) for n in nodes)
        self._memory_head = (frontier.size, frontier.copy())
        return None

    # --- the NodeStore protocol ---------------------------------------------------------------

    def get_nodes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        out: list[bytes] = []
        wanted = [k for k in keys if k[0] >= STORED_LEVEL and k not in self._memory]
        stored = self.db.find_nodes(wanted) if wanted else {}  # one query for the whole proof
        for level, index in keys:
            if level < STORED_LEVEL:
                first = index << level
                out.append(tree_root(event_leaf_hash(h) for h in self.event_hashes(first + 1, first + (1 << level))))
                continue
            h = self._memory.get((level, index)) or stored.get((level, index))
            if h is None:
                raise JournalTampered(f"the stored Merkle tree lacks node (level {level}, index {index})",
                                      {"level": level, "index": index})
            out.append(h)
        return out

    # --- roots and proofs (the tree must already cover the sizes asked) --------------------------

    def root(self, size: int) -> bytes:
        return EMPTY_ROOT if size == 0 else root_from_store(size, self)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return inclusion_proof(index, size, self)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return consistency_proof(old_size, new_size, self)

    # --- the leaves ---------------------------------------------------------------------------

    def event_hashes(self, first: int, last: int) -> Iterator[bytes]:
        """The raw chain hashes of positions ``first..last``; a position without one is damage."""
        expected = first
        while expected <= last:
            stop = min(last, expected + READ_BATCH - 1)
            for position, value in self.db.chain_hashes(expected, stop):
                if position != expected:
                    raise JournalTampered(f"position {expected} has no hash-chain entry: the tree cannot include it",
                                          {"position": expected})
                yield parse_event_hash(position, value)
                expected += 1
            if expected <= stop:
                raise JournalTampered(f"position {expected} has no hash-chain entry: the tree cannot include it",
                                      {"position": expected})

    def stored_nodes(self, level: int) -> Iterator[tuple[int, bytes]]:
        """(index, hash) of the stored nodes of one level, in index order (for verify)."""
        yield from self.db.nodes_of_level(level)

    def stored_heads(self) -> list[tuple[int, bytes, bytes]]:
        """Every stored (size, root, frontier bytes), by size (for verify)."""
        return self.db.trees()

    def guard_present(self) -> bool | None:
        """None when there are no tree tables yet; else whether their guard is whole."""
        return self.db.guard_present()

    # --- the journal reads the since-checkpoint verification needs (indexed, O(1) each) ----------

    def stream_events(self, originator_hex: str) -> list[tuple[int, int, str, bytes]]:
        return self.db.stream_events(originator_hex)

    def chain_entry(self, originator_hex: str, version: int) -> tuple[int, str] | None:
        """(position, hash) of a stream's event at ``version``, from the hash chain."""
        return self.db.chain_entry(originator_hex, version)

    def orphans_after(self, after: int, limit: int = 100) -> list[int]:
        """Chain rows after ``after`` whose event is gone."""
        return self.db.orphans_after(after, limit)

    def close(self) -> None:
        self.db.close()


class ReadOnlyJournal(Exception):
    """The journal database cannot be written here."""


class TreeDB:
    """The SQL the tree needs; one implementation per backend."""

    def newest_tree(self) -> tuple[int, bytes] | None: ...
    def append(self, old_size: int, frontier: Frontier, nodes: list[Node]) -> tuple[int, Frontier] | None: ...
    def find_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]: ...
    def chain_hashes(self, first: int, last: int) -> list[tuple[int, str]]: ...
    def nodes_of_level(self, level: int) -> Iterator[tuple[int, bytes]]: ...
    def trees(self) -> list[tuple[int, bytes, bytes]]: ...
    def guard_present(self) -> bool | None: ...
    def stream_events(self, originator_hex: str) -> list[tuple[int, int, str, bytes]]: ...
    def chain_entry(self, originator_hex: str, version: int) -> tuple[int, str] | None: ...
    def orphans_after(self, after: int, limit: int) -> list[int]: ...
    def close(self) -> None: ...


def sqlite_tree_statements() -> list[str]:
    """The tree's tables and their append-only guard (the events' guard, for these tables)."""
    out = [
        ("CREATE TABLE IF NOT EXISTS merkle_nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL, "
         "hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID"),
        "CREATE TABLE IF NOT EXISTS merkle_tree (size INTEGER PRIMARY KEY, root BLOB NOT NULL, frontier BLOB NOT NULL)",
    ]
    keys = {"merkle_nodes": "level = NEW.level AND idx = NEW.idx", "merkle_tree": "size = NEW.size"}
    for table in TREE_TABLES:
        for op in ("UPDATE", "DELETE"):
            out.append(f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END")
        out.append(f"CREATE TRIGGER IF NOT EXISTS {table}_no_replace BEFORE INSERT ON {table} "
                   f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {keys[table]}) "
                   f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END")
    return out


class SqliteTreeDB(TreeDB):
    """The tree in a SQLite journal, over its own connection (the event store's pool keeps
    its connections for events; this one takes the write lock up front, BEGIN IMMEDIATE)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._con: sqlite3.Connection | None = None

    @property
    def con(self) -> sqlite3.Connection:
        if self._con is None:
            self._con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        return self._con

    def _has_tables(self) -> bool:
        rows = self.con.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)",
                                TREE_TABLES).fetchall()
        return len(rows) == len(TREE_TABLES)

    def newest_tree(self) -> tuple[int, bytes] | None:
        if not self._has_tables():
            return None
        row = self.con.execute("SELECT size, frontier FROM merkle_tree ORDER BY size DESC LIMIT 1").fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    def append(self, old_size: int, frontier: Frontier, nodes: list[Node]) -> tuple[int, Frontier] | None:
        con = self.con
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if "readonly" in str(e).lower() or "read-only" in str(e).lower():
                raise ReadOnlyJournal(str(e)) from None
            raise
        try:
            for statement in sqlite_tree_statements():
                con.execute(statement)
            row = con.execute("SELECT size, frontier FROM merkle_tree ORDER BY size DESC LIMIT 1").fetchone()
            if (int(row[0]) if row else 0) != old_size:
                con.execute("ROLLBACK")
                return int(row[0]), Frontier.from_bytes(bytes(row[1]))
            con.executemany("INSERT INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?)", nodes)
            con.execute("INSERT INTO merkle_tree (size, root, frontier) VALUES (?, ?, ?)",
                        (frontier.size, frontier.root(), frontier.to_bytes()))
            con.execute("COMMIT")
        except sqlite3.OperationalError as e:
            if con.in_transaction:
                con.execute("ROLLBACK")
            if "readonly" in str(e).lower():
                raise ReadOnlyJournal(str(e)) from None
            raise
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        return None

    def find_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        """The stored nodes among ``keys`` (one query per 400 keys; absent ones are left out)."""
        if not self._has_tables():
            return {}
        out: dict[NodeKey, bytes] = {}
        for at in range(0, len(keys), 400):
            chunk = keys[at:at + 400]
            values = ",".join("(?,?)" for _ in chunk)
            for level, index, h in self.con.execute(
                    f"WITH k(level, idx) AS (VALUES {values}) SELECT m.level, m.idx, m.hash FROM k "
                    "JOIN merkle_nodes m ON m.level = k.level AND m.idx = k.idx", [v for key in chunk for v in key]):
                out[(int(level), int(index))] = bytes(h)
        return out

    def chain_hashes(self, first: int, last: int) -> list[tuple[int, str]]:
        return self.con.execute("SELECT position, hash FROM event_chain WHERE position BETWEEN ? AND ? "
                                "ORDER BY position", (first, last)).fetchall()

    def nodes_of_level(self, level: int) -> Iterator[tuple[int, bytes]]:
        if not self._has_tables():
            return
        for index, h in self.con.execute("SELECT idx, hash FROM merkle_nodes WHERE level = ? ORDER BY idx", (level,)):
            yield int(index), bytes(h) if isinstance(h, (bytes, memoryview)) else h

    def trees(self) -> list[tuple[int, bytes, bytes]]:
        if not self._has_tables():
            return []
        return [(int(s), bytes(r), bytes(f)) for s, r, f in
                self.con.execute("SELECT size, root, frontier FROM merkle_tree ORDER BY size")]

    def guard_present(self) -> bool | None:
        if not self._has_tables():
            return None
        triggers = {name: sql or "" for name, sql in
                    self.con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")}
        return all(APPEND_ONLY_MESSAGE in triggers.get(f"{t}_no_{op}", "")
                   for t in TREE_TABLES for op in ("update", "delete", "replace"))

    def stream_events(self, originator_hex: str) -> list[tuple[int, int, str, bytes]]:
        """(position, stream version, topic, state) of one stream's events (by the primary key)."""
        return [(int(p), int(v), t, bytes(s)) for p, v, t, s in self.con.execute(
            "SELECT rowid, originator_version, topic, state FROM stored_events WHERE originator_id = ? "
            "ORDER BY originator_version", (originator_hex,))]

    def chain_entry(self, originator_hex: str, version: int) -> tuple[int, str] | None:
        row = self.con.execute("SELECT position, hash FROM event_chain WHERE originator_id = ? AND originator_version = ?",
                               (originator_hex, version)).fetchone()
        return (int(row[0]), row[1]) if row else None

    def orphans_after(self, after: int, limit: int) -> list[int]:
        return [int(r[0]) for r in self.con.execute(
            "SELECT c.position FROM event_chain c WHERE c.position > ? AND NOT EXISTS "
            "(SELECT 1 FROM stored_events e WHERE e.rowid = c.position) ORDER BY c.position LIMIT ?", (after, limit))]

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
