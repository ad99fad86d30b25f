"""The views file as SQLite: connections, the one transaction helper, and the schema made
by sqlite-utils from the declarations in ``projections.schema``.

sqlite-utils makes the schema once per process, in a private in-memory database
(``_schema``); each new file gets a copy of the statements it made. A process that makes
many files (a rebuild makes one per shard, the tests hundreds) then pays for sqlite-utils'
own work once, and every file has exactly the same schema. sqlite-utils is imported only
when a file is made or migrated: an ordinary read never needs it (it costs tens of
milliseconds to import).
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .schema import DATA_TABLES, SEARCH, SEARCH_FTS, SEARCH_FTS_COLUMNS, TABLES, Table

if TYPE_CHECKING:
    import sqlite_utils


def connect(path: str | Path, *, scratch: bool = False) -> sqlite3.Connection:
    """WAL for the live views. ``scratch``: a private file being built from scratch (a rebuild
    before it is swapped in, an as-of replay): no durability needed, a crash discards it."""
    con = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    con.row_factory = sqlite3.Row
    if scratch:
        con.execute("PRAGMA journal_mode=MEMORY")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA locking_mode=EXCLUSIVE")
        con.execute("PRAGMA cache_size=-65536")  # 64 MiB of page cache for big replays
    else:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
    return con


@contextlib.contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: COMMIT when the block ends, ROLLBACK when it raises.

    ``BEGIN IMMEDIATE`` takes the write lock before the first read, so two processes catching
    up at once wait for each other (busy timeout) instead of one failing with a stale
    snapshot. A block that writes nothing commits nothing."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield con
    except BaseException:
        # Some errors (disk full, I/O) make SQLite roll back by itself; a second ROLLBACK
        # would then raise and hide the first error.
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def utils(con: sqlite3.Connection) -> sqlite_utils.Database:
    """sqlite-utils over this connection, changing none of its settings (no recursive
    triggers, no plugins). Inside a transaction its scripts run statement by statement, so
    that the schema (the full-text index included) is made or changed atomically."""
    import sqlite_utils

    return sqlite_utils.Database(con, recursive_triggers=False, execute_plugins=False)


def create_schema(con: sqlite3.Connection, *, for_reads: bool) -> None:
    """Every declared table in this (empty) file, inside the caller's transaction.
    ``for_reads``: with the indexes only reads need and the full-text index; a file that is
    being filled gets them at the end, from ``complete_schema``."""
    for _name, _kind, sql in _schema(for_reads):
        con.execute(sql)


def complete_schema(con: sqlite3.Connection, *, search: bool = True) -> None:
    """Add what ``create_schema(for_reads=False)`` left out: the read indexes, and (``search``)
    the full-text index, filled from the rows already there. Cheaper once over all rows than
    row by row during a replay."""
    present = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    for name, kind, sql in _schema(True):
        if name not in present and (search or kind == "index"):
            con.execute(sql)
    if search and SEARCH_FTS not in present:
        con.execute(f"INSERT INTO {SEARCH_FTS} ({SEARCH_FTS}) VALUES ('rebuild')")  # FTS5: index the content table


@functools.lru_cache(maxsize=2)
def _schema(for_reads: bool) -> tuple[tuple[str, str, str], ...]:
    """(name, type, CREATE statement) of everything sqlite-utils makes for the declared tables,
    in the order it made them (the full-text index's own shadow tables come with it)."""
    con = sqlite3.connect(":memory:", isolation_level=None)
    try:
        create_tables(con, TABLES, read_indexes=for_reads)
        if for_reads:
            enable_search(con)
        shadow = {r[0] for r in con.execute("SELECT name FROM pragma_table_list WHERE type = 'shadow'")}
        return tuple((name, kind, sql) for name, kind, sql in con.execute(
            "SELECT name, type, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid") if name not in shadow)
    finally:
        con.close()


def create_tables(con: sqlite3.Connection, tables: Iterable[Table], *, read_indexes: bool) -> None:
    """Create ``tables`` and their indexes (those only reads need when ``read_indexes``)."""
    db = utils(con)
    for table in tables:
        db.create_table(table.name, table.types, pk=table.pk, not_null=table.not_null,
                        column_order=list(table.names))
        create_indexes(con, [table], for_reads=read_indexes, db=db)


def create_indexes(con: sqlite3.Connection, tables: Iterable[Table] = DATA_TABLES, *, for_reads: bool = True,
                   db: sqlite_utils.Database | None = None) -> None:
    """The declared indexes of ``tables`` that are missing (``for_reads``: also those only
    reads need). Plain statements, so it can run inside a transaction."""
    for table in tables:
        for index in table.indexes:
            if for_reads or not index.for_reads:
                (db or utils(con))[table.name].create_index(list(index.columns), index_name=index.name,
                                                            if_not_exists=True)


def enable_search(con: sqlite3.Connection) -> None:
    """The FTS5 index over ``search`` (filled from its rows, then kept in step by triggers)."""
    utils(con)[SEARCH.name].enable_fts(list(SEARCH_FTS_COLUMNS), fts_version="FTS5", create_triggers=True,
                                       replace=True)


def search_problem(con: sqlite3.Connection) -> str | None:
    """Whether the full-text index matches the ``search`` rows (None: it does, or there is none)."""
    if con.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (SEARCH_FTS,)).fetchone() is None:
        return None
    try:
        # rank 1: compare the index with its content table, not only with itself
        con.execute(f"INSERT INTO {SEARCH_FTS} ({SEARCH_FTS}, rank) VALUES ('integrity-check', 1)")
    except sqlite3.DatabaseError as e:
        return f"the full-text index does not match the search rows ({e})"
    return None


def table_names(con: sqlite3.Connection) -> set[str]:
    return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
