"""Replays into a private file: the fold from position 0 (a rebuild, an as-of view, a shard
of a sharded rebuild), the merge of the shards' files, the finishing touches before a file
is used, and the comparison of two stores (``index verify``, the tests).

The files themselves (where they live, deleting them, swapping one into place, taking turns)
are the adapters' business (``adapters.readmodel``): nothing here touches the file system
except through SQLite.
"""

from __future__ import annotations

import operator
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .db import complete_schema, transaction
from .schema import BY_NAME, DATA_TABLES, MANIFESTS, PROJECTIONS, SCHEMA_VERSION
from .shards import Shard
from .store import fold_batch
from .writes import statements

if TYPE_CHECKING:
    from .store import Fetch, Progress, ViewStore

# A replay keeps this many version and trust rows in memory before it writes the index out
# (a few hundred MB at most).
MAX_CACHED_ROWS = 250_000
OTHER_PROJECTIONS = tuple(p for p in PROJECTIONS if p != "index")


class ShardFailed(Exception):
    """A shard of a sharded rebuild did not produce a complete file."""


def replay(store: ViewStore, fetch: Fetch, until: int | None, batch: int, progress: Progress | None) -> int:
    """Fold the journal into ``store``, a private file being built (no other writer).

    The index rows (versions, tools, search) change many times during a replay, so they are
    kept in memory and written once, together with the index's tracking position, at the
    end (or whenever the cache grows too large); the other projections are written batch by
    batch with their positions."""
    position = store.position()
    fold = store.new_fold()
    fold.complete = position == 0
    # Nothing of the index is in the file yet (until a flush writes some): none to replace.
    index_in_file = not fold.complete
    done = 0
    while until is None or position < until:
        rows = fetch(position, batch, until)
        if not rows:
            break
        fold_batch(fold, rows, keep_index=True)
        position = rows[-1][0]
        flush_index = fold.cached_rows() > MAX_CACHED_ROWS
        with transaction(store.con):
            store.write_batch(statements(fold, index=flush_index, replace=index_in_file), position,
                         None if flush_index else OTHER_PROJECTIONS)
        if flush_index:  # from now on rows are read back from the file, by index
            store.create_read_indexes()
            fold = store.new_fold()
            index_in_file = True
        done += len(rows)
        if progress is not None:
            progress(len(rows))
    if store.shard is not None and until is not None:
        # No more events of this shard up to ``until``: the shard is complete up to there.
        position = max(position, until)
    if fold.dirty_versions or fold.tools or set(store.positions().values()) != {position}:
        with transaction(store.con):
            store.write_batch(statements(fold, others=False, replace=index_in_file), position)
    return done


def merge_shard(store: ViewStore, path: Path, shard: Shard, position: int) -> None:
    """Copy the rows another process folded for ``shard`` (up to ``position``, as ``store``)
    into ``store``'s file. Raises ``ShardFailed`` for a file that is not that shard, complete."""
    con = store.con
    try:
        con.execute("ATTACH DATABASE ? AS shard", (str(path),))
    except sqlite3.Error as e:
        raise ShardFailed(f"cannot open {path.name}: {e}") from None
    try:
        try:
            meta = dict(con.execute("SELECT key, value FROM shard.meta").fetchall())
            positions = {p for (p,) in con.execute("SELECT position FROM shard.positions")}
        except sqlite3.Error as e:
            raise ShardFailed(f"{path.name} is unreadable: {e}") from None
        expected = {"schema_version": str(SCHEMA_VERSION), "journal": store.journal_identity,
                    "shard": f"{shard.index}/{shard.count}"}
        if any(meta.get(k) != v for k, v in expected.items()) or positions != {position}:
            raise ShardFailed(f"{path.name} does not hold shard {shard.index}/{shard.count} up to position {position}")
        # SQLite's default page cache (2 MB): the merge's inserts land all over the tables,
        # and with the replay's 64 MiB cache they took about twice as long (measured).
        con.execute("PRAGMA cache_size=-2000")
        try:
            with transaction(con):
                for table in DATA_TABLES:
                    # Shards fold disjoint streams; only a manifest (keyed by payload) could be
                    # folded twice, from the same bytes.
                    verb = "INSERT OR IGNORE" if table is MANIFESTS else "INSERT"
                    columns = ", ".join(table.names)
                    con.execute(f"{verb} INTO main.{table.name} ({columns}) SELECT {columns} FROM shard.{table.name}")
        except sqlite3.IntegrityError as e:
            raise ShardFailed(f"{path.name} overlaps another shard: {e}") from None
    finally:
        con.execute("DETACH DATABASE shard")


def end_merge(store: ViewStore) -> None:
    """The merged file is a whole replay now, no shard's."""
    store.con.execute("DELETE FROM meta WHERE key = 'shard'")


def finish(store: ViewStore, *, live: bool = False) -> None:
    """What a private file needs before it is read: the read indexes and the full-text index
    (cheaper to build once over all rows than row by row); ``live``: then the live file's
    journal mode (it is about to be swapped in)."""
    with transaction(store.con):
        complete_schema(store.con)
    if live:
        store.con.execute("PRAGMA locking_mode=NORMAL")
        store.con.execute("PRAGMA journal_mode=WAL")


def diff(live: ViewStore, replayed: ViewStore, limit: int = 20) -> list[dict[str, Any]]:
    """Differences between two stores' tables, row by row in primary-key order (empty:
    identical). Each is ``{table, key, live, replayed}`` with the rows as JSON text."""
    out: list[dict[str, Any]] = []
    for table in DATA_TABLES:
        key_of = _key_getter(table.name)
        mine = {key_of(r): r for r in live.table_rows(table.name)}
        theirs = {key_of(r): r for r in replayed.table_rows(table.name)}
        for key in sorted(set(mine) | set(theirs), key=repr):
            if mine.get(key) != theirs.get(key):
                out.append({"table": table.name, "key": list(key), "live": _row(mine.get(key)),
                            "replayed": _row(theirs.get(key))})
                if len(out) >= limit:
                    return out
    return out


def row_key(table: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The primary key of a row read by ``ViewStore.table_rows``."""
    return _key_getter(table)(row)


def _key_getter(table: str) -> Any:
    spec = BY_NAME[table]
    getter = operator.itemgetter(*(spec.names.index(k) for k in spec.pk))
    return getter if len(spec.pk) > 1 else (lambda row: (getter(row),))


def _row(row: tuple[Any, ...] | None) -> Any:
    from .fold import jdump

    return None if row is None else jdump(list(row))
