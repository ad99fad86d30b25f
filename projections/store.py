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

import contextlib
import gc
import operator
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

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
from .shards import MAX_SHARDS, Shard, in_shard

if TYPE_CHECKING:  # the fold is imported when a catch-up has events to fold, not for a read
    import msgspec

    from .fold import Fold
    from .records import ManifestFacts

BATCH = 5000
SCRATCH_BATCH = 20_000  # a private file being built: bigger transactions, fewer row rewrites
MAX_CACHED_ROWS = 50_000
SCRATCH_MAX_CACHED_ROWS = 250_000  # a replay from scratch keeps more rows (a few hundred MB at most)
# A rebuild is sharded between processes only from this many events on: below it, starting
# a second process costs more than it saves.
SHARDED_MIN_EVENTS = 20_000
Notify = Callable[[str], None]
Progress = Callable[[int], None]
Fetch = Callable[[int, int, int | None], list[tuple[int, int, str, bytes]]]


class ShardFailed(Exception):
    """A shard of a sharded rebuild did not produce a complete file."""


class ShardWorker(Protocol):
    def wait(self) -> None:
        """Block until the worker is done; raise ``ShardFailed`` unless it succeeded."""

    def kill(self) -> None:
        """Stop the worker (the rebuild is abandoned)."""


class ShardWorkers(Protocol):
    """Starts the processes of a sharded rebuild (the adapters know how to open the journal
    in another process). ``count`` is the number of shards, this process's included."""

    count: int

    def start(self, path: Path, shard: Shard, until: int, journal_identity: str) -> ShardWorker:
        """Fold ``shard`` of the journal up to position ``until`` into a new file at ``path``."""


class EventSource(Protocol):
    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Any = (), *, inclusive_of_start: bool = True) -> Any: ...

    def max_notification_id(self) -> int | None: ...


def _fetcher(source: EventSource, shard: Shard | None = None) -> Fetch:
    """(position, stream_version, topic, state) rows after a position (only ``shard``'s, when
    given); the recorder's raw fast path when it has one, else eventsourcing's notifications."""
    raw = getattr(source, "select_event_rows", None)
    if raw is not None:
        if shard is None:
            return raw  # type: ignore[no-any-return]
        return lambda start, limit, stop: raw(start, limit, stop, shard=shard)  # type: ignore[no-any-return]

    def from_notifications(start: int, limit: int, stop: int | None) -> list[tuple[int, int, str, bytes]]:
        out: list[tuple[int, int, str, bytes]] = []
        while True:
            page = source.select_notifications(start, limit, stop, inclusive_of_start=False)
            out += [(n.id, n.originator_version, n.topic, n.state) for n in page
                    if shard is None or in_shard(n.topic, n.originator_id.hex, shard)]
            if len(out) >= limit or len(page) < limit:
                return out
            start = page[-1].id

    return from_notifications


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


class _SqlLoader:
    """``fold.Loader`` over the store's connection: the rows a catch-up has not loaded yet."""

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


OTHER_PROJECTIONS = tuple(p for p in PROJECTIONS if p != "index")
_VERSION_SELECT = ", ".join(VERSION_COLUMNS)
_version_values = operator.itemgetter(*VERSION_COLUMNS)
_trust_values = operator.itemgetter(*TRUST_COLUMNS)


def _fold_batch(fold: Fold, rows: list[tuple[int, int, str, bytes]], *, keep_index: bool = False) -> None:
    from .records import decode_view, kind_and_upcast

    fold.start_batch(keep_index=keep_index)
    apply = fold.apply
    for position, stream_version, topic, state in rows:
        apply(position, stream_version, kind_and_upcast(topic)[0], decode_view(topic, state))


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
    if fold.tools:
        changed = sorted(fold.tools)
        out.append(("DELETE FROM tools WHERE skill_id=? AND version=?", changed))
        out.append(("INSERT INTO tools VALUES (?,?,?)",
                    [(t, skill_id, version) for skill_id, version in changed for t in fold.tools[(skill_id, version)]]))
    return out


def _other_statements(fold: Fold) -> list[tuple[str, list[Any]]]:
    """Everything but the version and tool rows (manifest rows included: they never change)."""
    out: list[tuple[str, list[Any]]] = []
    if fold.manifests:
        out.append((f"INSERT OR IGNORE INTO manifests VALUES ({_placeholders(MANIFEST_COLUMNS)})",
                    [fold.manifests[k] for k in sorted(fold.manifests)]))
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
                 manifest_facts: Callable[[msgspec.Raw], ManifestFacts] | None = None,
                 scratch: bool = False, shard: Shard | None = None) -> None:
        """``scratch``: a private file being built (see ``connect``). ``shard``: a private file
        that folds only one shard of the journal (``projections.shards``), to be merged by
        ``rebuild``; ``scratch`` is then implied."""
        self.path = Path(path)
        self.shard = shard
        self.scratch = scratch or shard is not None
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
            meta = [("schema_version", str(SCHEMA_VERSION)), ("journal", self.journal_identity)]
            if self.shard is not None:
                meta.append(("shard", f"{self.shard.index}/{self.shard.count}"))
            con.executemany("INSERT INTO meta VALUES (?, ?)", meta)
            con.executemany("INSERT INTO positions VALUES (?, 0)", [(p,) for p in PROJECTIONS])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _delete_files(self, *, keep_main: bool = False) -> None:
        _delete_db(self.path, keep_main=keep_main)

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
        fetch = _fetcher(source, self.shard)
        # The fold allocates millions of small objects and creates no reference cycles: the
        # cyclic collector would only rescan them over and over. Afterwards the survivors are
        # moved to the oldest generation (freeze, then unfreeze) instead of being scanned by
        # the young collection that re-enabling would otherwise trigger at once.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._catch_up(fetch, until, batch, progress)
        finally:
            if gc_was_enabled:
                gc.freeze()
                gc.unfreeze()
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
                    fold = self._new_fold()
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
        fold = self._new_fold()
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
                fold = self._new_fold()
            done += len(rows)
            if progress is not None:
                progress(len(rows))
        if self.shard is not None and until is not None:
            # No more events of this shard up to ``until``: the shard is complete up to there.
            position = max(position, until)
        if fold.dirty_versions or fold.tools or set(self.positions().values()) != {position}:
            self.con.execute("BEGIN IMMEDIATE")
            try:
                self._execute(_statements(fold, others=False), position)
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

    def rebuild(self, source: EventSource, *, progress: Progress | None = None,
                shards: "ShardWorkers | None" = None, min_events: int | None = None) -> int:
        """Replay the whole journal into a fresh file beside this one, then swap it in.

        With ``shards`` (a way to start other processes that fold one shard each) and at
        least ``min_events`` events, the replay is sharded (``projections.shards``): this
        process folds shard 0 while the others fold theirs into files of their own, which
        are then merged into this one's; events appended meanwhile are caught up after. If
        a shard fails, the rebuild runs again in this process alone, with a notice.

        Readers keep the old views until the swap; a crash leaves the old views (caught up
        later as usual) and half-built files that the next rebuild deletes. Rebuilds of one
        views file take turns (a lock file beside it): two at once would share the
        half-built files."""
        with _rebuild_lock(self.path.with_name(self.path.name + ".rebuild-lock"), self.notify):
            return self._rebuild(source, progress, shards, min_events)

    def _rebuild(self, source: EventSource, progress: Progress | None, shards: "ShardWorkers | None",
                 min_events: int | None) -> int:
        fresh_path = self.path.with_name(self.path.name + ".rebuild")
        head = source.max_notification_id() or 0
        for leftover in fresh_path.parent.glob(f"{fresh_path.name}-shard*"):
            if not leftover.name.endswith(("-wal", "-shm", "-journal")):
                _delete_db(leftover)
        done = None
        if shards is not None and shards.count > 1 and head >= (SHARDED_MIN_EVENTS if min_events is None
                                                                else min_events):
            try:
                done = self._rebuild_sharded(source, head, fresh_path, shards, progress)
            except ShardFailed as e:
                self.notify(f"notice: a rebuild shard failed ({e}); rebuilding in one process")
        if done is None:
            fresh = self._fresh(fresh_path)
            try:
                done = fresh.catch_up(source, progress=progress)
                fresh._finish_rebuild()
            finally:
                fresh.close()
        self.close()
        self._delete_files(keep_main=True)
        swap_into_place(fresh_path, self.path)
        self.con = connect(self.path)
        return done

    def _fresh(self, path: Path, shard: Shard | None = None, *, new: bool = True) -> "ViewStore":
        """A private store at ``path`` (``new``: replacing whatever is there)."""
        if new:
            _delete_db(path)
        return ViewStore(path, journal_identity=self.journal_identity, notify=self.notify,
                         manifest_facts=self.manifest_facts, scratch=True, shard=shard)

    def _rebuild_sharded(self, source: EventSource, head: int, fresh_path: Path, shards: "ShardWorkers",
                         progress: Progress | None) -> int:
        count = min(shards.count, MAX_SHARDS)
        paths = [fresh_path.with_name(f"{fresh_path.name}-shard{k}") for k in range(1, count)]
        workers: list[ShardWorker] = []
        try:
            for k, path in enumerate(paths, start=1):
                _delete_db(path)
                workers.append(shards.start(path, Shard(k, count), head, self.journal_identity))
            fresh = self._fresh(fresh_path, Shard(0, count))
            try:
                folded = fresh.catch_up(source, until=head, progress=progress)
                for worker in workers:
                    worker.wait()
                for k, path in enumerate(paths, start=1):
                    fresh._merge_shard(path, Shard(k, count), head)
                fresh.con.execute("DELETE FROM meta WHERE key='shard'")
            finally:
                fresh.close()
            if progress is not None:
                progress(head - folded)  # the other shards' events (shard 0 folds all but those)
            fresh = self._fresh(fresh_path, new=False)  # the merged file, as a whole replay
            try:
                fresh.create_read_indexes()
                done = head + fresh.catch_up(source, progress=progress)  # appended since the start
                fresh._finish_rebuild()
            finally:
                fresh.close()
            return done
        except BaseException:
            for worker in workers:
                worker.kill()
            raise
        finally:
            for path in paths:
                _delete_db(path)

    def _merge_shard(self, path: Path, shard: Shard, position: int) -> None:
        """Copy the rows another process folded for ``shard`` (up to ``position``, as this
        one) into this file."""
        try:
            self.con.execute("ATTACH DATABASE ? AS shard", (str(path),))
        except sqlite3.Error as e:
            raise ShardFailed(f"cannot open {path.name}: {e}") from None
        try:
            try:
                meta = dict(self.con.execute("SELECT key, value FROM shard.meta").fetchall())
                positions = {p for (p,) in self.con.execute("SELECT position FROM shard.positions")}
            except sqlite3.Error as e:
                raise ShardFailed(f"{path.name} is unreadable: {e}") from None
            expected = {"schema_version": str(SCHEMA_VERSION), "journal": self.journal_identity,
                        "shard": f"{shard.index}/{shard.count}"}
            if any(meta.get(k) != v for k, v in expected.items()) or positions != {position}:
                raise ShardFailed(f"{path.name} does not hold shard {shard.index}/{shard.count} "
                                  f"up to position {position}")
            # SQLite's default page cache (2 MB): the merge's inserts land all over the tables,
            # and with the replay's 64 MiB cache they took about twice as long (measured).
            self.con.execute("PRAGMA cache_size=-2000")
            self.con.execute("BEGIN IMMEDIATE")
            try:
                for table in DATA_TABLES:
                    # Shards fold disjoint streams; only a manifest (keyed by payload) could be
                    # folded twice, from the same bytes.
                    verb = "INSERT OR IGNORE" if table == "manifests" else "INSERT"
                    self.con.execute(f"{verb} INTO main.{table} SELECT * FROM shard.{table}")
                self.con.execute("COMMIT")
            except sqlite3.IntegrityError as e:
                self.con.execute("ROLLBACK")
                raise ShardFailed(f"{path.name} overlaps another shard: {e}") from None
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
        finally:
            self.con.execute("DETACH DATABASE shard")

    def _finish_rebuild(self) -> None:
        """Read indexes, then the live file's journal mode (the file is about to be swapped in)."""
        self.create_read_indexes()
        self.con.execute("PRAGMA locking_mode=NORMAL")
        self.con.execute("PRAGMA journal_mode=WAL")

    def _new_fold(self) -> Fold:
        from .fold import Fold
        from .records import manifest_facts

        return Fold(_SqlLoader(self.con), self.manifest_facts or manifest_facts,
                    emit_shared=self.shard is None or self.shard.first)

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


_RENAME_EXCHANGE = 2  # renameat2(2) flag, Linux 3.15+
_AT_FDCWD = -100
_renameat2: Any = None


def swap_into_place(fresh: Path, path: Path) -> None:
    """Put ``fresh`` at ``path`` atomically (a reader opens either the old file or the new one).

    On Linux the two names are exchanged (``renameat2(RENAME_EXCHANGE)``) and the old file is
    then deleted under the fresh name: renaming a new file *over* an existing one makes ext4
    write the new file's data out first (``auto_da_alloc``), about half a second per
    gigabyte that a rebuild does not need to wait for. Elsewhere, or where the filesystem
    cannot exchange names, ``os.replace``."""
    global _renameat2
    if _renameat2 is None:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            _renameat2 = libc.renameat2
            _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        except (OSError, AttributeError):
            _renameat2 = False
    if _renameat2 and path.exists():
        if _renameat2(_AT_FDCWD, os.fsencode(fresh), _AT_FDCWD, os.fsencode(path), _RENAME_EXCHANGE) == 0:
            _delete_db(fresh)
            return
    os.replace(fresh, path)


@contextlib.contextmanager
def _rebuild_lock(path: Path, notify: Notify) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` for the duration (released by the system if the
    process dies); waits, with a notice, while another process holds it."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            notify(f"notice: another rebuild of {path.name.removesuffix('.rebuild-lock')} is running; waiting for it")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _delete_db(path: str | Path, *, keep_main: bool = False) -> None:
    """A database file and its journals (``keep_main``: only the journals)."""
    for suffix in ("-wal", "-shm", "-journal") if keep_main else ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(f"{path}{suffix}")
        except FileNotFoundError:
            pass


def row_key(table: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
    return row[: len(PRIMARY_KEYS[table])]


def _row(row: tuple[Any, ...] | None) -> Any:
    from .fold import jdump

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
