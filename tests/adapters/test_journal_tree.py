"""The journal's stored Merkle tree (``adapters/journal/tree.py``) against the domain's tree
built from the events' hashes: roots and proofs for every size and position, incremental
extension (only new events are read), the append-only guard on its tables, a concurrent
extension, a read-only journal, and damage found by ``journal verify``."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import helpers_ledger as h
import pytest

from skill_ledger.adapters.journal.sqlite import APPEND_ONLY_MESSAGE, iter_rows
from skill_ledger.adapters.journal.tree import STORED_LEVEL, JournalTree
from skill_ledger.adapters.journal.verify import verify_journal
from skill_ledger.adapters.usecases import lifecycle
from skill_ledger.adapters.usecases.install import install
from skill_ledger.domain.merkle import Frontier as DomainFrontier
from skill_ledger.domain.merkle import (
    MemoryNodeStore,
    consistency_proof,
    event_leaf_hash,
    events_root,
    inclusion_proof,
    verify_inclusion,
)


def populate(home: Path, installs: int = 6) -> None:
    ledger = h.ledger_for(home)
    try:
        for i in range(installs):
            install(ledger, f"/a{i}", data=h.build(f"acme.s{i}", "1.0.0", "acme"), allow_tofu=True)
            if i % 2:
                lifecycle.quarantine(ledger, f"acme.s{i}", None, "look")
    finally:
        ledger.close()


def event_hashes(ledger) -> list[bytes]:
    return [bytes.fromhex(r.hash) for r in iter_rows(ledger.app)]


def memory_tree(hashes: list[bytes]) -> MemoryNodeStore:
    store = MemoryNodeStore()
    frontier = DomainFrontier()
    store.put_nodes(frontier.extend_events(hashes))
    return store


def test_roots_and_proofs_equal_the_domain_tree_for_every_size(home: Path) -> None:
    populate(home)
    ledger = h.ledger_for(home)
    tree = JournalTree(ledger.app)
    try:
        hashes = event_hashes(ledger)
        n = len(hashes)
        assert n > 2 ** (STORED_LEVEL + 1), "the tree must have stored levels for this test to mean anything"
        reference = memory_tree(hashes)
        tree.extend(n)
        for size in range(1, n + 1):
            assert tree.root(size) == events_root(hashes[:size]), size
        for size in (1, 2, 15, 16, 17, 31, 32, 33, n):
            for index in range(size):
                proof = tree.inclusion_proof(index, size)
                assert proof == inclusion_proof(index, size, reference)
                verify_inclusion(event_leaf_hash(hashes[index]), index, size, proof, events_root(hashes[:size]))
            for old in range(1, size + 1):
                assert tree.consistency_proof(old, size) == consistency_proof(old, size, reference)
    finally:
        tree.close()
        ledger.close()


def tree_rows(journal: Path) -> tuple[list[tuple[int, int]], list[int]]:
    con = sqlite3.connect(journal)
    try:
        nodes = con.execute("SELECT level, idx FROM merkle_nodes ORDER BY level, idx").fetchall()
        sizes = [r[0] for r in con.execute("SELECT size FROM merkle_tree ORDER BY size")]
    finally:
        con.close()
    return nodes, sizes


def test_the_tree_grows_incrementally_and_stores_only_the_upper_levels(home: Path) -> None:
    populate(home, 3)
    ledger = h.ledger_for(home)
    tree = JournalTree(ledger.app)
    try:
        first = ledger.head()
        tree.extend(first)
        install(ledger, "/x", data=h.build("acme.late", "1.0.0", "acme"), allow_tofu=True)
        second = ledger.head()
        # An extension reads the new events only: the hashes of the earlier ones are not asked for.
        read: list[tuple[int, int]] = []
        original = tree.db.chain_hashes
        tree.db.chain_hashes = lambda a, b: (read.append((a, b)), original(a, b))[1]  # type: ignore[method-assign]
        tree.extend(second)
        assert read and min(a for a, _ in read) == first + 1
        assert tree.root(second) == events_root(event_hashes(ledger))
    finally:
        tree.close()
        ledger.close()
    nodes, sizes = tree_rows(home / "journal.db")
    assert sizes == [first, second]
    assert nodes and all(level >= STORED_LEVEL for level, _ in nodes)
    assert len(nodes) == sum(second >> level for level in range(STORED_LEVEL, second.bit_length()))


def test_the_tree_tables_are_append_only(home: Path) -> None:
    populate(home, 3)
    ledger = h.ledger_for(home)
    tree = JournalTree(ledger.app)
    try:
        tree.extend(ledger.head())
    finally:
        tree.close()
        ledger.close()
    con = sqlite3.connect(home / "journal.db", isolation_level=None)
    for statement in ("UPDATE merkle_nodes SET hash = zeroblob(32)", "DELETE FROM merkle_nodes",
                      "UPDATE merkle_tree SET size = size + 1", "DELETE FROM merkle_tree",
                      "INSERT OR REPLACE INTO merkle_tree SELECT size, root, frontier FROM merkle_tree"):
        with pytest.raises(sqlite3.DatabaseError, match=APPEND_ONLY_MESSAGE):
            con.execute(statement)
    con.close()


def test_a_stored_node_edited_behind_the_guard_is_found_by_verify(home: Path) -> None:
    populate(home)
    ledger = h.ledger_for(home)
    tree = JournalTree(ledger.app)
    try:
        tree.extend(ledger.head())
    finally:
        tree.close()
        ledger.close()
    con = sqlite3.connect(home / "journal.db", isolation_level=None)
    con.execute("DROP TRIGGER merkle_nodes_no_update")
    con.execute("UPDATE merkle_nodes SET hash = zeroblob(32) WHERE level = ? AND idx = 1", (STORED_LEVEL,))
    con.close()
    ledger = h.ledger_for(home)
    try:
        report = verify_journal(ledger.app)
    finally:
        ledger.close()
    codes = {(p.position, p.code) for p in report.problems}
    assert (2 << STORED_LEVEL, "tree_mismatch") in codes, report.problems


def test_a_read_only_journal_gets_the_tree_in_memory(home: Path) -> None:
    """An evidence copy on read-only media: the tree is extended in memory, nothing is written
    (shown with a read-only connection, which behaves the same for root)."""
    populate(home, 3)
    ledger = h.ledger_for(home)
    expected = events_root(event_hashes(ledger))
    head = ledger.head()
    tree = JournalTree(ledger.app)
    tree.db.path = f"file:{home / 'journal.db'}?mode=ro"  # type: ignore[attr-defined]
    tree.db._con = sqlite3.connect(tree.db.path, uri=True, isolation_level=None)  # type: ignore[attr-defined]
    try:
        assert tree.extend(head).root() == expected
        assert tree.root(head) == expected and tree.size == head
    finally:
        tree.close()
        ledger.close()
    con = sqlite3.connect(home / "journal.db")
    try:
        assert not con.execute("SELECT name FROM sqlite_master WHERE name LIKE 'merkle%'").fetchall()
    finally:
        con.close()


EXTEND = """
import sys
sys.path.insert(0, {tests!r})
import helpers_ledger as h
from skill_ledger.adapters.journal.tree import JournalTree
ledger = h.ledger_for({home!r})
tree = JournalTree(ledger.app)
tree.extend(ledger.head())
print(tree.root(ledger.head()).hex())
tree.close()
ledger.close()
"""


def test_two_processes_extending_at_once_store_one_tree(home: Path) -> None:
    populate(home, 8)
    code = EXTEND.format(tests=str(Path(__file__).resolve().parents[1]), home=str(home))
    procs = [subprocess.Popen([h.PYTHON, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e.decode()[-500:] for _, e in outs]
    roots = {o.decode().strip() for o, _ in outs}
    ledger = h.ledger_for(home)
    try:
        assert roots == {events_root(event_hashes(ledger)).hex()}
        assert verify_journal(ledger.app).ok
    finally:
        ledger.close()
    nodes, sizes = tree_rows(home / "journal.db")
    assert len(nodes) == len(set(nodes)) and sizes == sorted(set(sizes))


def test_an_event_without_a_chain_entry_stops_the_tree(home: Path) -> None:
    populate(home, 2)
    con = sqlite3.connect(home / "journal.db", isolation_level=None)
    con.execute("DROP TRIGGER event_chain_no_delete")
    con.execute("DELETE FROM event_chain WHERE position = 3")
    con.close()
    ledger = h.ledger_for(home)
    tree = JournalTree(ledger.app)
    try:
        from skill_ledger.domain.errors import JournalTampered

        with pytest.raises(JournalTampered, match="position 3 has no hash-chain entry"):
            tree.extend(ledger.head())
        assert tree.size == 0
    finally:
        tree.close()
        ledger.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
