"""The projection store: ``views.db``, its catch-up loop, rebuild, verify and as-of replay.

The catch-up loop pulls from the journal (the ledger hands over its recorder: anything
with ``select_notifications``), folds each batch in memory and writes the dirty rows and
every projection's tracking position in ONE transaction (``BEGIN IMMEDIATE``, so two
processes catching up at once serialise instead of failing). A crash at any point
leaves the previous batch committed and nothing of the next: resumable, exactly once.

A views.db that is missing, truncated, corrupt, written by another schema version or
for another journal is rebuilt automatically, with a one-line notice.
"""

from __future__ import annotations

import gc
import operator
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from domain.codec import decode_state_dict, kind_of_topic

from .fold import Fold, Loader, Record, jdump
from .schema import (
    AUDIT_COLUMNS,
    DATA_TABLES,
    DDL,
    MANIFEST_COLUMNS,
    PRIMARY_KEYS,
    PROJECTIONS,
    READ_INDEXES,
    REJECTION_COLUMNS,
    SCHEMA_VERSION,
    TIMELINE_COLUMNS,
    TRUST_COLUMNS,
    VERSION_COLUMNS,
)

BATCH = 5000
SCRATCH_BATCH = 20_000  # a private file being built: bigger transactions, fewer row rewrites
MAX_CACHED_ROWS = 50_000
SCRATCH_MAX_CACHED_ROWS = 250_000  # a replay from scratch keeps more rows (a few hundred MB at most)
Notify = Callable[[str], None]
Progress = Callable[[int], None]


class EventSource(Protocol):
    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Any = (), *, inclusive_of_start: bool = True) -> Any: ...

    def max_notification_id(self) -> int | None: ...


def _fetcher(source: EventSource) -> Callable[[int, int, int | None], list[tuple[int, int, str, bytes]]]:
    """(position, stream_version, topic, state) rows after a position; the recorder's raw
    fast path when it has one, else eventsourcing's notifications."""
    raw = getattr(source, "select_event_rows", None)
    if raw is not None:
        return raw

    def from_notifications(start: int, limit: int, stop: int | None) -> list[tuple[int, int, str, bytes]]:
        page = source.select_notifications(start, limit, stop, inclusive_of_start=False)
        return [(n.id, n.originator_version, n.topic, n.state) for n in page]

    return from_notifications


def default_manifest_facts(manifest_json: dict[str, Any]) -> dict[str, Any]:
    from domain.grants import grants_from_manifest_json

    try:
        return grants_from_manifest_json(manifest_json)
    except Exception:  # a manifest the current model cannot read still gets a row
        return {"capability_grants": None, "policy_bindings": None}


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


class _SqlLoader(Loader):
    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def version_row(self, key: tuple[str, str]) -> dict[str, Any] | None:
        row = self.con.execute(f"SELECT {_VERSION_SELECT} FROM versions WHERE skill_id=? AND version=?",
                               key).fetchone()
        return dict(row) if row else None

    def version_keys_for_key(self, publisher: str, key_hex: str) -> list[tuple[str, str]]:
        return [tuple(r) for r in self.con.execute(  # type: ignore[misc]
            "SELECT skill_id, version FROM versions WHERE publisher=? AND key_hex=?", (publisher, key_hex))]

    def trust_row(self, key: tuple[str, str]) -> dict[str, Any] | None:
        row = self.con.execute("SELECT * FROM trust_keys WHERE publisher=? AND key_hex=?", key).fetchone()
        return dict(row) if row else None

    def revoked(self, publisher: str, key_hex: str) -> bool:
        row = self.trust_row((publisher, key_hex))
        return row is not None and row["state"] == "revoked"


_kinds: dict[str, str] = {}
OTHER_PROJECTIONS = tuple(p for p in PROJECTIONS if p != "index")
_VERSION_SELECT = ", ".join(VERSION_COLUMNS)
_version_values = operator.itemgetter(*VERSION_COLUMNS)
_trust_values = operator.itemgetter(*TRUST_COLUMNS)


Fetch = Callable[[int, int, int | None], list[tuple[int, int, str, bytes]]]


def _fold_batch(fold: Fold, rows: list[tuple[int, int, str, bytes]], *, keep_index: bool = False) -> None:
    fold.start_batch(keep_index=keep_index)
    kinds = _kinds
    for position, stream_version, topic, state in rows:
        kind = kinds.get(topic) or kinds.setdefault(topic, kind_of_topic(topic))
        fold.apply(Record(position, stream_version, kind, decode_state_dict(topic, state)))


def _statements(fold: Fold, *, index: bool = True, others: bool = True) -> list[tuple[str, list[Any]]]:
    """What a batch writes, as plain values: the ``index`` projection's rows and/or the others'."""
    out: list[tuple[str, list[Any]]] = []
    if index:
        out += _index_statements(fold)
    if others:
        out += _other_statements(fold)
    return out


def _index_statements(fold: Fold) -> list[tuple[str, list[Any]]]:
    out: list[tuple[str, list[Any]]] = []
    if fold.dirty_versions:
        out.append((f"INSERT OR REPLACE INTO versions VALUES ({_placeholders(VERSION_COLUMNS)})",
                    [_version_values(fold.versions[k]) for k in sorted(fold.dirty_versions)]))
    if fold.manifests:
        out.append((f"INSERT OR IGNORE INTO manifests VALUES ({_placeholders(MANIFEST_COLUMNS)})",
                    [fold.manifests[k] for k in sorted(fold.manifests)]))
    if fold.tools:
        changed = sorted(fold.tools)
        out.append(("DELETE FROM tools WHERE skill_id=? AND version=?", changed))
        out.append(("INSERT INTO tools VALUES (?,?,?)",
                    [(t, skill_id, version) for skill_id, version in changed for t in fold.tools[(skill_id, version)]]))
    return out


def _other_statements(fold: Fold) -> list[tuple[str, list[Any]]]:
    out: list[tuple[str, list[Any]]] = []
    if fold.dirty_trust:
        out.append((f"INSERT OR REPLACE INTO trust_keys VALUES ({_placeholders(TRUST_COLUMNS)})",
                    [_trust_values(fold.trust[k]) for k in sorted(fold.dirty_trust)]))
    for sql, rows in ((f"INSERT INTO audits VALUES ({_placeholders(AUDIT_COLUMNS)})", fold.audits),
                      (f"INSERT INTO timeline VALUES ({_placeholders(TIMELINE_COLUMNS)})", fold.timeline),
                      (f"INSERT INTO rejections VALUES ({_placeholders(REJECTION_COLUMNS)})", fold.rejections)):
        if rows:
            out.append((sql, rows))
    if fold.policy is not None:
        out.append(("INSERT OR REPLACE INTO policy VALUES (?,?,?,?,?,?)", [fold.policy]))
    return out


def _placeholders(columns: tuple[str, ...]) -> str:
    return ",".join("?" * len(columns))


class ViewStore:
    def __init__(self, path: str | Path, *, journal_identity: str = "", notify: Notify | None = None,
                 manifest_facts: Callable[[dict[str, Any]], dict[str, Any]] = default_manifest_facts,
                 scratch: bool = False) -> None:
        self.path = Path(path)
        self.scratch = scratch
        self.journal_identity = journal_identity
        self.notify = notify or (lambda message: None)
        self.manifest_facts = manifest_facts
        self.con = self._open()

    # --- opening, schema, self-healing ---------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        problem = None
        con: sqlite3.Connection | None = None
        try:
            con = connect(self.path, scratch=self.scratch)
            problem = self._check(con)
        except sqlite3.DatabaseError as e:
            problem = f"unreadable ({e})"
        if problem is None and con is not None:
            return con
        if con is not None:
            con.close()
        if problem != "new":
            self.notify(f"notice: views database {self.path} {problem}; rebuilding it from the journal")
        self._delete_files()
        con = connect(self.path, scratch=self.scratch)
        self._create(con)
        return con

    def _check(self, con: sqlite3.Connection) -> str | None:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return "new"
        if "meta" not in tables:
            return "has no schema marker"
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            return f"was written by schema version {meta.get('schema_version')} (this is {SCHEMA_VERSION})"
        missing = {"positions", *DATA_TABLES} - tables
        if missing:
            return f"is missing tables {sorted(missing)}"
        recorded = meta.get("journal", "")
        if self.journal_identity and recorded != self.journal_identity:
            if recorded:
                return "belongs to another journal"
            if any(p for (p,) in con.execute("SELECT position FROM positions")):
                return "holds events of a journal it cannot name"
            con.execute("UPDATE meta SET value=? WHERE key='journal'", (self.journal_identity,))
        return None

    def integrity_problem(self) -> str | None:
        """A full page-level check (``index verify``): too slow for every read."""
        result = self.con.execute("PRAGMA quick_check").fetchone()[0]
        return None if result == "ok" else result

    def _create(self, con: sqlite3.Connection) -> None:
        con.execute("BEGIN IMMEDIATE")
        try:
            for stmt in DDL:
                con.execute(stmt)
            if not self.scratch:
                for stmt in READ_INDEXES:
                    con.execute(stmt)
            con.executemany("INSERT INTO meta VALUES (?, ?)",
                            [("schema_version", str(SCHEMA_VERSION)), ("journal", self.journal_identity)])
            con.executemany("INSERT INTO positions VALUES (?, 0)", [(p,) for p in PROJECTIONS])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _delete_files(self, *, keep_main: bool = False) -> None:
        for suffix in ("-wal", "-shm", "-journal") if keep_main else ("", "-wal", "-shm", "-journal"):
            try:
                os.unlink(f"{self.path}{suffix}")
            except FileNotFoundError:
                pass

    def close(self) -> None:
        self.con.close()

    def create_read_indexes(self) -> None:
        for stmt in READ_INDEXES:
            self.con.execute(stmt)

    # --- positions ----------------------------------------------------------------------

    def positions(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.con.execute("SELECT projection, position FROM positions ORDER BY projection")}

    def position(self) -> int:
        return min(self.positions().values(), default=0)

    def bind_identity(self, identity: str) -> None:
        """Remember which journal this store projects (a views.db never mixes two journals)."""
        if identity:
            self.journal_identity = identity
            self.con.execute("UPDATE meta SET value=? WHERE key='journal' AND value=''", (identity,))

    # --- catch-up -----------------------------------------------------------------------

    def catch_up(self, source: EventSource, *, until: int | None = None, batch: int | None = None,
                 progress: Progress | None = None) -> int:
        """Apply every event after the tracked position (up to ``until``); returns how many."""
        batch = batch or (SCRATCH_BATCH if self.scratch else BATCH)
        head = source.max_notification_id() or 0
        if self.position() > head:
            self.notify(f"notice: views database {self.path} is ahead of the journal; rebuilding it")
            self.rebuild_tables()
        fetch = _fetcher(source)
        # The fold allocates millions of small objects and creates no reference cycles: the
        # cyclic collector would only rescan them over and over.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._catch_up(fetch, until, batch, progress)
        finally:
            if gc_was_enabled:
                gc.enable()

    def _catch_up(self, fetch: Fetch, until: int | None, batch: int, progress: Progress | None) -> int:
        if self.scratch:
            return self._replay(fetch, until, batch, progress)
        done = 0
        fold: Fold | None = None
        expected = -1
        while True:
            self.con.execute("BEGIN IMMEDIATE")
            try:
                start = self.position()
                if until is not None and start >= until:
                    self.con.execute("ROLLBACK")
                    break
                rows = fetch(start, batch, until)
                if not rows:
                    self.con.execute("ROLLBACK")
                    break
                if fold is None or start != expected or fold.cached_rows() > MAX_CACHED_ROWS:
                    # Another writer moved the views since our last batch, or the cache grew
                    # too big: start from what is on disk.
                    fold = Fold(_SqlLoader(self.con), self.manifest_facts)
                    fold.complete = start == 0
                _fold_batch(fold, rows)
                expected = rows[-1][0]
                self._execute(_statements(fold), expected)
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            done += len(rows)
            if progress is not None:
                progress(len(rows))
        return done

    def _replay(self, fetch: Fetch, until: int | None, batch: int, progress: Progress | None) -> int:
        """A private file being built (no other writer). The index rows (versions, manifests,
        tools) change many times during a replay, so they are kept in memory and written once,
        together with the index's tracking position, at the end (or whenever the cache grows
        too large); the other projections are written batch by batch with their positions."""
        position = self.position()
        fold = Fold(_SqlLoader(self.con), self.manifest_facts)
        fold.complete = position == 0
        done = 0
        while until is None or position < until:
            rows = fetch(position, batch, until)
            if not rows:
                break
            _fold_batch(fold, rows, keep_index=True)
            position = rows[-1][0]
            flush_index = fold.cached_rows() > SCRATCH_MAX_CACHED_ROWS
            self.con.execute("BEGIN IMMEDIATE")
            try:
                self._execute(_statements(fold, index=flush_index), position,
                              None if flush_index else OTHER_PROJECTIONS)
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            if flush_index:  # from now on rows are read back from the file, by index
                self.create_read_indexes()
                fold = Fold(_SqlLoader(self.con), self.manifest_facts)
            done += len(rows)
            if progress is not None:
                progress(len(rows))
        if fold.dirty_versions or fold.manifests or fold.tools or self.positions().get("index") != position:
            self.con.execute("BEGIN IMMEDIATE")
            try:
                self._execute(_statements(fold, others=False), position, ("index",))
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
        return done

    def _execute(self, statements: list[tuple[str, list[Any]]], position: int,
                 projections: tuple[str, ...] | None = None) -> None:
        for sql, rows in statements:
            self.con.executemany(sql, rows)
        if projections is None:
            self.con.execute("UPDATE positions SET position=?", (position,))
        else:
            self.con.executemany("UPDATE positions SET position=? WHERE projection=?",
                                 [(position, p) for p in projections])

    # --- rebuild, verify, as-of ---------------------------------------------------------

    def rebuild_tables(self) -> None:
        """Drop every projection table and recreate the schema (positions back to 0)."""
        self.con.execute("BEGIN IMMEDIATE")
        try:
            names = [r[0] for r in self.con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for name in names:
                self.con.execute(f'DROP TABLE IF EXISTS "{name}"')
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self._create(self.con)

    def rebuild(self, source: EventSource, *, progress: Progress | None = None) -> int:
        """Replay the whole journal into a fresh file beside this one, then swap it in.

        Readers keep the old views until the swap; a crash leaves the old views (caught up
        later as usual) and a half-built file that the next rebuild deletes."""
        fresh_path = self.path.with_name(self.path.name + ".rebuild")
        fresh = ViewStore(fresh_path, journal_identity=self.journal_identity, notify=self.notify,
                          manifest_facts=self.manifest_facts, scratch=True)
        fresh._delete_files()
        fresh.close()
        fresh = ViewStore(fresh_path, journal_identity=self.journal_identity, notify=self.notify,
                          manifest_facts=self.manifest_facts, scratch=True)
        try:
            done = fresh.catch_up(source, progress=progress)
            fresh.create_read_indexes()
            fresh.con.execute("PRAGMA locking_mode=NORMAL")
            fresh.con.execute("PRAGMA journal_mode=WAL")
        finally:
            fresh.close()
        self.close()
        self._delete_files(keep_main=True)
        os.replace(fresh_path, self.path)
        self.con = connect(self.path)
        return done

    def table_rows(self, table: str) -> Iterator[tuple[Any, ...]]:
        order = ", ".join(PRIMARY_KEYS[table])
        yield from (tuple(r) for r in self.con.execute(f"SELECT * FROM {table} ORDER BY {order}"))

    def diff(self, other: "ViewStore", limit: int = 20) -> list[dict[str, Any]]:
        """Differences between this store's tables and ``other``'s (empty: identical)."""
        out: list[dict[str, Any]] = []
        for table in DATA_TABLES:
            mine = {row_key(table, r): r for r in self.table_rows(table)}
            theirs = {row_key(table, r): r for r in other.table_rows(table)}
            for key in sorted(set(mine) | set(theirs), key=repr):
                if mine.get(key) != theirs.get(key):
                    out.append({"table": table, "key": list(key), "live": _row(mine.get(key)),
                                "replayed": _row(theirs.get(key))})
                    if len(out) >= limit:
                        return out
        return out


def row_key(table: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
    return row[: len(PRIMARY_KEYS[table])]


def _row(row: tuple[Any, ...] | None) -> Any:
    return None if row is None else jdump(list(row))


def scratch(source: EventSource, *, until: int | None, directory: str | Path | None = None,
            notify: Notify | None = None) -> ViewStore:
    """A throw-away store replayed from the journal up to ``until`` (for ``--as-of`` and ``verify``)."""
    import tempfile

    fd, name = tempfile.mkstemp(prefix="views-scratch-", suffix=".db", dir=directory)
    os.close(fd)
    os.unlink(name)
    store = ViewStore(name, notify=notify, scratch=True)
    store.catch_up(source, until=until)
    store.create_read_indexes()
    return store


def discard(store: ViewStore) -> None:
    store.close()
    store._delete_files()
