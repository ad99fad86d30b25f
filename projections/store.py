"""The projection store: ``views.db``, opened, checked and caught up with the journal.

The catch-up loop pulls from the journal (the ledger hands over its recorder: anything
with ``select_notifications``), folds each batch in memory and writes the dirty rows and
every projection's tracking position in ONE transaction (``db.transaction``). A crash at
any point leaves the previous batch committed and nothing of the next: resumable, exactly
once.

Opening checks that the file is a views database of this schema version for this journal.
A file of an older version with a migration (``projections.migrations``) is upgraded in
place; any other unusable file raises ``ViewsUnusable``, and the caller that owns the file
(``adapters.readmodel.views``) deletes it and opens a new one, with a one-line notice.
Replays into a private file (rebuild, as-of) live in ``projections.replay``.
"""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .db import complete_schema, connect, create_schema, table_names, transaction
from .schema import (
    BY_NAME,
    META,
    POSITIONS,
    PROJECTIONS,
    SCHEMA_VERSION,
    SEARCH_FTS,
    TABLES,
    TRUST_KEYS,
    VERSIONS,
)
from .shards import Shard

if TYPE_CHECKING:  # the fold is imported when a catch-up has events to fold, not for a read
    import msgspec

    from .fold import Fold
    from .records import ManifestFacts
    from .writes import Statements

BATCH = 5000
SCRATCH_BATCH = 20_000  # a private file being built: bigger transactions, fewer row rewrites
MAX_CACHED_ROWS = 50_000
Notify = Callable[[str], None]
Progress = Callable[[int], None]
Fetch = Callable[[int, int, int | None], list[tuple[int, int, str, bytes]]]


class ViewsUnusable(Exception):
    """The file is not a views database this version can use; the message says why."""


class EventSource(Protocol):
    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Any = (), *, inclusive_of_start: bool = True) -> Any: ...

    def max_notification_id(self) -> int | None: ...


def _fetcher(source: EventSource, shard: Shard | None = None) -> Fetch:
    """(position, stream_version, topic, state) rows after a position (only ``shard``'s, when
    given); the recorder's raw fast path when it has one, else eventsourcing's notifications."""
    wanted = shard.event_filter() if shard is not None else None
    raw = getattr(source, "select_event_rows", None)
    if raw is not None:
        if wanted is None:
            return raw  # type: ignore[no-any-return]
        return lambda start, limit, stop: raw(start, limit, stop, event_filter=wanted)  # type: ignore[no-any-return]

    def from_notifications(start: int, limit: int, stop: int | None) -> list[tuple[int, int, str, bytes]]:
        out: list[tuple[int, int, str, bytes]] = []
        while True:
            page = source.select_notifications(start, limit, stop, inclusive_of_start=False)
            out += [(n.id, n.originator_version, n.topic, n.state) for n in page
                    if wanted is None or wanted.matches(n.topic, n.originator_id.hex)]
            if len(out) >= limit or len(page) < limit:
                return out
            start = page[-1].id

    return from_notifications


class _SqlLoader:
    """``fold.Loader`` over the store's connection: the rows a catch-up has not loaded yet."""

    _VERSION_SQL = f"SELECT {', '.join(VERSIONS.names)} FROM versions WHERE skill_id = ? AND version = ?"
    _TRUST_SQL = f"SELECT {', '.join(TRUST_KEYS.names)} FROM trust_keys WHERE publisher = ? AND key_hex = ?"

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def version_row(self, key: tuple[str, str]) -> dict[str, Any] | None:
        row = self.con.execute(self._VERSION_SQL, key).fetchone()
        return dict(row) if row else None

    def version_keys_for_key(self, publisher: str, key_hex: str) -> list[tuple[str, str]]:
        return [tuple(r) for r in self.con.execute(  # type: ignore[misc]
            "SELECT skill_id, version FROM versions WHERE publisher = ? AND key_hex = ?", (publisher, key_hex))]

    def trust_row(self, key: tuple[str, str]) -> dict[str, Any] | None:
        row = self.con.execute(self._TRUST_SQL, key).fetchone()
        return dict(row) if row else None


def fold_batch(fold: Fold, rows: list[tuple[int, int, str, bytes]], *, keep_index: bool = False) -> None:
    from .records import decode_view, kind_and_upcast

    fold.start_batch(keep_index=keep_index)
    apply = fold.apply
    for position, stream_version, topic, state in rows:
        apply(position, stream_version, kind_and_upcast(topic)[0], decode_view(topic, state))


class ViewStore:
    def __init__(self, path: str | Path, *, journal_identity: str = "", notify: Notify | None = None,
                 manifest_facts: Callable[[msgspec.Raw], ManifestFacts] | None = None,
                 scratch: bool = False, shard: Shard | None = None) -> None:
        """``scratch``: a private file being built (see ``db.connect``); its read indexes and
        full-text index are made at the end (``replay.finish``). ``shard``: a private file
        that folds only one shard of the journal (``projections.shards``), to be merged by a
        sharded rebuild; ``scratch`` is then implied. Raises ``ViewsUnusable``."""
        self.path = Path(path)
        self.shard = shard
        self.scratch = scratch or shard is not None
        self.journal_identity = journal_identity
        self.notify = notify or (lambda message: None)
        self.manifest_facts = manifest_facts
        self.con = self._open()

    # --- opening ------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        try:
            con = connect(self.path, scratch=self.scratch)
        except sqlite3.DatabaseError as e:
            raise ViewsUnusable(f"unreadable ({e})") from None
        try:
            try:
                problem = self._check(con)
            except sqlite3.DatabaseError as e:
                problem = f"unreadable ({e})"
            if problem == "new":
                self._create(con)
                return con
            if problem is None:
                return con
        except BaseException:
            con.close()
            raise
        con.close()
        raise ViewsUnusable(problem)

    def _check(self, con: sqlite3.Connection) -> str | None:
        """None when the file can be used as it is (after a migration, perhaps); "new" when it
        holds nothing yet; otherwise what is wrong with it."""
        tables = table_names(con)
        if not tables:
            return "new"
        version = _meta(con, tables).get("schema_version")
        if version is None:
            return "has no schema marker"
        if version != str(SCHEMA_VERSION):
            from .migrations import upgrade

            if self.scratch or not upgrade(con, version, self.notify, self.path):
                return f"was written by schema version {version} (this is {SCHEMA_VERSION})"
            tables = table_names(con)
        missing = {t.name for t in TABLES} - tables
        if not self.scratch and SEARCH_FTS not in tables:
            missing.add(SEARCH_FTS)  # a private file gets it at the end, a live one from the start
        if missing:
            return f"is missing tables {sorted(missing)}"
        return self._check_identity(con)

    def _check_identity(self, con: sqlite3.Connection) -> str | None:
        recorded = _meta(con).get("journal", "")
        if self.journal_identity and recorded != self.journal_identity:
            if recorded:
                return "belongs to another journal"
            if any(p for (p,) in con.execute("SELECT position FROM positions")):
                return "holds events of a journal it cannot name"
            con.execute("UPDATE meta SET value = ? WHERE key = 'journal'", (self.journal_identity,))
        return None

    def _create(self, con: sqlite3.Connection) -> None:
        """Every table, the schema marker and the positions, in one transaction."""
        with transaction(con):
            create_schema(con, for_reads=not self.scratch)
            meta = [("schema_version", str(SCHEMA_VERSION)), ("journal", self.journal_identity)]
            if self.shard is not None:
                meta.append(("shard", f"{self.shard.index}/{self.shard.count}"))
            con.executemany(META.insert_sql(), meta)
            con.executemany(POSITIONS.insert_sql(), [(p, 0) for p in PROJECTIONS])

    def reopen(self) -> None:
        """Open the file at ``path`` again (another file was put there, e.g. by a rebuild)."""
        self.con.close()
        self.con = self._open()

    def close(self) -> None:
        self.con.close()

    def integrity_problem(self) -> str | None:
        """A full page-level check, then the full-text index against its rows (``index
        verify``): too slow for every read. None when both are fine."""
        from .db import search_problem

        result = self.con.execute("PRAGMA quick_check").fetchone()[0]
        return search_problem(self.con) if result == "ok" else f"page-level damage: {result}"

    def rebuild_tables(self) -> None:
        """Drop every table and create the schema again (positions back to 0)."""
        with transaction(self.con):
            # Virtual tables first (dropping one drops its shadow tables); internal ones stay.
            for (name,) in self.con.execute(
                    "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type IN ('virtual', 'table') "
                    "AND name NOT LIKE 'sqlite_%' ORDER BY type = 'table', name").fetchall():
                self.con.execute(f'DROP TABLE IF EXISTS "{name}"')
        self._create(self.con)

    def create_read_indexes(self) -> None:
        """The indexes only reads need (a private file about to be read back)."""
        complete_schema(self.con, search=False)

    # --- positions ----------------------------------------------------------------------

    def positions(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.con.execute("SELECT projection, position FROM positions ORDER BY projection")}

    def position(self) -> int:
        return min(self.positions().values(), default=0)

    def bind_identity(self, identity: str) -> None:
        """Remember which journal this store projects (a views.db never mixes two journals)."""
        if identity:
            self.journal_identity = identity
            self.con.execute("UPDATE meta SET value = ? WHERE key = 'journal' AND value = ''", (identity,))

    # --- catch-up -----------------------------------------------------------------------

    def catch_up(self, source: EventSource, *, until: int | None = None, batch: int | None = None,
                 progress: Progress | None = None) -> int:
        """Apply every event after the tracked position (up to ``until``); returns how many."""
        batch = batch or (SCRATCH_BATCH if self.scratch else BATCH)
        head = source.max_notification_id() or 0
        if self.position() > head:
            self.notify(f"notice: views database {self.path} is ahead of the journal; rebuilding it")
            self.rebuild_tables()
        fetch = _fetcher(source, self.shard)
        # The fold allocates millions of small objects and creates no reference cycles: the
        # cyclic collector would only rescan them over and over. Afterwards the survivors are
        # moved to the oldest generation (freeze, then unfreeze) instead of being scanned by
        # the young collection that re-enabling would otherwise trigger at once.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            if self.scratch:
                from .replay import replay

                return replay(self, fetch, until, batch, progress)
            self._backfill(fetch, batch)
            return self._catch_up(fetch, until, batch, progress)
        finally:
            if gc_was_enabled:
                gc.freeze()
                gc.unfreeze()
                gc.enable()

    def _catch_up(self, fetch: Fetch, until: int | None, batch: int, progress: Progress | None) -> int:
        """The live file: other processes may catch up at the same time, so each batch starts
        from the position on disk, under the write lock."""
        from .writes import statements

        done = 0
        fold: Fold | None = None
        expected = -1
        while True:
            with transaction(self.con):
                start = self.position()
                rows = fetch(start, batch, until) if until is None or start < until else []
                if not rows:
                    break
                if fold is None or start != expected or fold.cached_rows() > MAX_CACHED_ROWS:
                    # Another writer moved the views since our last batch, or the cache grew
                    # too big: start from what is on disk.
                    fold = self.new_fold()
                    fold.complete = start == 0
                fold_batch(fold, rows)
                expected = rows[-1][0]
                self.write_batch(statements(fold), expected)
            done += len(rows)
            if progress is not None:
                progress(len(rows))
        return done

    def _backfill(self, fetch: Fetch, batch: int) -> None:
        """A projection a migration added empty (``history``, schema 13) is at position 0 while
        the others are ahead: fold the journal from the start into it alone, up to their
        position. One transaction, under the write lock: another process opening the file
        meanwhile waits, then finds it filled (a catch-up must never start from the lagging
        position, which would fold the other projections' events twice)."""
        from .fold import Fold
        from .records import manifest_facts
        from .writes import history_statements

        if self.positions().get("history", 0) != 0:
            return
        with transaction(self.con):
            positions = self.positions()
            target = max(positions.values(), default=0)
            if positions.get("history") != 0 or target == 0:
                return
            fold = Fold(_SqlLoader(self.con), self.manifest_facts or manifest_facts)
            fold.complete = True  # from position 0: every row is in memory, none is loaded
            position = 0
            while position < target:
                rows = fetch(position, batch, target)
                if not rows:
                    break
                fold_batch(fold, rows, keep_index=True)
                position = rows[-1][0]
                self.write_batch(history_statements(fold), position, ("history",))
            self.write_batch([], target, ("history",))

    def write_batch(self, statements: Statements, position: int, projections: tuple[str, ...] | None = None) -> None:
        """A batch's rows and the new position of ``projections`` (all when None), inside the
        caller's transaction."""
        for sql, rows in statements:
            self.con.executemany(sql, rows)
        if projections is None:
            self.con.execute("UPDATE positions SET position = ?", (position,))
        else:
            self.con.executemany("UPDATE positions SET position = ? WHERE projection = ?",
                                 [(position, p) for p in projections])

    def new_fold(self) -> Fold:
        from .fold import Fold
        from .records import manifest_facts

        return Fold(_SqlLoader(self.con), self.manifest_facts or manifest_facts,
                    emit_shared=self.shard is None or self.shard.first)

    # --- reading whole tables -----------------------------------------------------------

    def table_rows(self, table: str) -> Iterator[tuple[Any, ...]]:
        spec = BY_NAME[table]
        yield from (tuple(r) for r in self.con.execute(
            f"SELECT {', '.join(spec.names)} FROM {table} ORDER BY {', '.join(spec.pk)}"))


def _meta(con: sqlite3.Connection, tables: set[str] | None = None) -> dict[str, str]:
    if tables is not None and "meta" not in tables:
        return {}
    return dict(con.execute("SELECT key, value FROM meta").fetchall())

