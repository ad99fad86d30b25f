"""The journal: eventsourcing's SQLite store, made append-only and hash-chained.

* Encoding: msgspec JSON (``domain.codec``), chosen once and documented in the README.
* Append-only: triggers abort every UPDATE and DELETE of ``stored_events`` and
  ``event_chain`` (a database-level guard, checked by ``journal verify``).
* Hash chain: in the same transaction that inserts events, the recorder writes one
  ``event_chain`` row per event: its global position, its stream and stream version,
  ``prev_hash`` (the stream's previous hash, or 64 zeros), ``hash`` = SHA-256 over
  the canonical encoding of the exported event (position included), and the chain
  ``format`` that says which members that shape has (``domain.codec``: format 2 binds
  every stored column), so an edited, deleted, inserted, reordered or moved event is
  found by recomputing.
* ``journal_meta`` (schema version, encoding) is checked on every open, before anything
  is read or written (``adapters.journal.meta``); a schema-1 journal opened to write is
  migrated to schema 2 in the same transaction that checks it.
* A journal file is created 0600; one we cannot write is opened read-only
  (``adapters.journal.sqlite_files``), and the recorder then refuses to append.

A ``postgresql://`` URL selects the same journal on PostgreSQL (``journal_postgres``). Both
recorders offer the reads that export, verify and the projections need (``select_rows``,
``select_event_rows``, ``chain_hash``, ``guard_present``, ``orphan_chain_positions``), so
nothing outside the two recorders writes SQL against the journal.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, PersistenceError, StoredEvent, Transcoder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import get_topic

from skill_ledger.domain.codec import (
    CURRENT_CHAIN_FORMAT,
    GENESIS_HASH,
    decode_event,
    encode_state,
    event_hash,
    exported_event,
    originator_text,
)
from skill_ledger.domain.errors import ConfigurationError, JournalUnavailable, StorageError
from skill_ledger.domain.events import load_model
from skill_ledger.projections.shards import EventFilter

from .meta import ENCODING, JOURNAL_SCHEMA_VERSION, checked_schema
from .rows import StoredRow, chain_hash, chained, export_row, iter_rows
from .sqlite_files import SQLiteLocation, is_storage_failure, locate, remove_copy

load_model()  # every event topic must resolve before the first stored event is decoded

import msgspec

_raw_decoder = msgspec.json.Decoder()

APPEND_ONLY_MESSAGE = "journal is append-only"
GUARDED_TABLES = ("stored_events", "event_chain")
# Re-exported: the journal's readers import them from here.
__all__ = ["ENCODING", "JOURNAL_SCHEMA_VERSION", "StoredRow", "chain_hash", "chained", "export_row",
           "is_storage_failure", "iter_rows"]


class NullTranscoder(Transcoder):
    """The factory always builds a transcoder; ours is never used (the mapper encodes)."""

    def encode(self, obj: Any) -> bytes:  # pragma: no cover
        raise NotImplementedError

    def decode(self, data: bytes) -> Any:  # pragma: no cover
        raise NotImplementedError


class MsgspecMapper(Mapper[UUID]):
    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=get_topic(type(domain_event)),
            state=encode_state(domain_event),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        oid = stored_event.originator_id
        return decode_event(
            stored_event.topic,
            stored_event.state,
            oid if isinstance(oid, UUID) else UUID(str(oid)),
            stored_event.originator_version,
        )


# What identifies a row of each guarded table. REPLACE conflict resolution deletes the old
# row without running DELETE triggers, so a BEFORE INSERT trigger refuses any insert that
# would collide with a recorded row (a genuine concurrent append collides too, and fails
# with an IntegrityError exactly as the unique index would make it).
_ROW_KEYS = {
    "stored_events": "(originator_id = NEW.originator_id AND originator_version = NEW.originator_version) "
                     "OR rowid = NEW.rowid",
    "event_chain": "position = NEW.position OR (originator_id = NEW.originator_id "
                   "AND originator_version = NEW.originator_version)",
}


def guard_statements() -> list[str]:
    out = []
    for table in GUARDED_TABLES:
        for op in ("UPDATE", "DELETE"):
            out.append(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
            )
        out.append(
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_replace BEFORE INSERT ON {table} "
            f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {_ROW_KEYS[table]}) "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
        )
    return out


ChainRow = tuple[int, str, int, str, str, int]


def chain_rows(stored_events: Sequence[StoredEvent], positions: Sequence[int],
               stream_head: Callable[[str, int], str], db_role: dict[str, str] | None = None) -> list[ChainRow]:
    """The ``event_chain`` rows (position, originator id hex, stream version, prev_hash, hash,
    format) of events about to be committed at ``positions``, in the current chain format.
    ``stream_head(oid, version)`` returns the recorded hash of a stream's event at ``version``
    (it must refuse when there is none); ``db_role``: the database roles the server stamps on
    these rows (PostgreSQL), which the hash covers."""
    rows = []
    heads: dict[str, str] = {}
    for stored, position in zip(stored_events, positions, strict=True):
        oid = stored.originator_id.hex if isinstance(stored.originator_id, UUID) else str(stored.originator_id)
        prev = heads.get(oid)
        if prev is None:
            version = stored.originator_version - 1
            prev = GENESIS_HASH if version <= 0 else stream_head(oid, version)
        state = _raw_decoder.decode(stored.state)
        h = event_hash(exported_event(position, stored.originator_version, stored.topic, state, prev,
                                      chain=CURRENT_CHAIN_FORMAT, originator_id=originator_text(oid), db_role=db_role))
        rows.append((position, oid, stored.originator_version, prev, h, CURRENT_CHAIN_FORMAT))
        heads[oid] = h
    return rows


def filter_sql(f: EventFilter) -> tuple[str, list[Any]]:
    """``EventFilter.matches`` as a SQLite expression over ``stored_events`` (and its parameters)."""
    others = ("1" if f.others is None else
              "(" + (" OR ".join("substr(topic, 1, ?) = ?" for _ in f.others) or "0") + ")")
    params: list[Any] = [len(f.split_prefix), f.split_prefix, f.digits]
    for prefix in f.others or ():
        params += [len(prefix), prefix]
    return (f"(CASE WHEN substr(topic, 1, ?) = ? "
            f"THEN length(originator_id) > 0 AND instr(?, lower(substr(originator_id, -1))) > 0 "
            f"ELSE {others} END)"), params


class ChainedSQLiteRecorder(SQLiteApplicationRecorder):
    """SQLite application recorder that also writes the hash chain, atomically."""

    # Set when the journal is opened (``check_meta``): the journal's schema version (None: no
    # journal yet), and whether it was opened read-only (nothing may be appended then).
    schema_version: str | None = None
    read_only = False
    read_only_reason = ""

    @property
    def where(self) -> str:
        """The journal's path, for messages (without a ``file:`` URI's query)."""
        name = self.datastore.pool.db_name
        if name.startswith("file:"):
            from urllib.parse import unquote

            name = unquote(name[len("file:"):].split("?", 1)[0])
        return name

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS event_chain ("
            "position INTEGER PRIMARY KEY, originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL, "
            "prev_hash TEXT NOT NULL, hash TEXT NOT NULL, format INTEGER NOT NULL DEFAULT 1, "
            "UNIQUE (originator_id, originator_version))",
            "CREATE TABLE IF NOT EXISTS journal_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            f"INSERT OR IGNORE INTO journal_meta VALUES ('schema_version', '{JOURNAL_SCHEMA_VERSION}')",
            f"INSERT OR IGNORE INTO journal_meta VALUES ('encoding', '{ENCODING}')",
            # Reads by event kind (the registries to update, the skills installed, the artifacts
            # verified, the checkpoints) cost the events of that kind, not the whole journal.
            # An existing journal gets the index the first time it is opened for writing.
            "CREATE INDEX IF NOT EXISTS stored_events_topic ON stored_events (topic)",
            *guard_statements(),
        ]

    def _create_table(self, c: SQLiteCursor) -> None:
        """Check ``journal_meta`` first (a newer or foreign journal is refused before any
        statement writes), then create what is missing and migrate a schema-1 journal, all in
        the one transaction the library opened."""
        existing = self._read_schema(c)
        super()._create_table(c)
        if existing == "1":
            c.execute("SELECT 1 FROM pragma_table_info('event_chain') WHERE name = 'format'")
            if c.fetchone() is None:
                # Old rows get format 1 (the default): they verify under the rule they were written with.
                c.execute("ALTER TABLE event_chain ADD COLUMN format INTEGER NOT NULL DEFAULT 1")
            c.execute("UPDATE journal_meta SET value = ? WHERE key = 'schema_version'", (JOURNAL_SCHEMA_VERSION,))
        self.schema_version = JOURNAL_SCHEMA_VERSION

    def check_meta(self) -> None:
        """Read and check ``journal_meta`` of a journal opened without creating anything."""
        with self.datastore.transaction(commit=False) as c:
            self.schema_version = self._read_schema(c)

    def _read_schema(self, c: SQLiteCursor) -> str | None:
        c.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('journal_meta', 'event_chain')")
        tables = {r[0] for r in c.fetchall()}
        meta: dict[str, str] = {}
        if "journal_meta" in tables:
            c.execute("SELECT key, value FROM journal_meta")
            meta = {r[0]: r[1] for r in c.fetchall()}
        return checked_schema(meta, has_chain="event_chain" in tables, where=self.where)

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if self.read_only or self.schema_version != JOURNAL_SCHEMA_VERSION:
            why = self.read_only_reason or "it was opened read-only"
            raise StorageError(f"the journal at {self.where} cannot be written here ({why}): nothing was recorded",
                               {"journal": self.where})
        positions = super()._insert_events(c, stored_events, **kwargs)
        assert positions is not None
        rows = chain_rows(stored_events, positions, lambda oid, version: self._stream_head(c, oid, version))
        c.executemany("INSERT INTO event_chain (position, originator_id, originator_version, prev_hash, hash, format) "
                      "VALUES (?,?,?,?,?,?)", rows)
        return positions

    def _chain_format_sql(self) -> str:
        """The chain format of a joined row; an event without a chain row is shown in the format
        its journal writes (it fails verification either way)."""
        if self.schema_version == "1":
            return "1"
        return f"coalesce(c.format, {CURRENT_CHAIN_FORMAT})"

    def select_event_rows(self, start: int, limit: int, stop: int | None = None, *,
                          event_filter: EventFilter | None = None) -> list[tuple[int, int, str, bytes]]:
        """(position, stream_version, topic, state) after ``start``: the projections' fast path
        (no UUID objects, no Notification objects). ``event_filter``: only the events it
        selects (a shard of a sharded replay: ``projections.shards``), evaluated in SQL."""
        sql = "SELECT rowid, originator_version, topic, state FROM stored_events WHERE rowid > ?"
        params: list[Any] = [start]
        if stop is not None:
            sql += " AND rowid <= ?"
            params.append(stop)
        if event_filter is not None:
            clause, filter_params = filter_sql(event_filter)
            sql += f" AND {clause}"
            params += filter_params
        sql += " ORDER BY rowid LIMIT ?"
        params.append(limit)
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples, not sqlite3.Row objects
            c.execute(sql, params)
            return c.fetchall()  # type: ignore[no-any-return]  # (int, int, str, bytes) tuples

    def select_stream(self, originator_id: UUID) -> list[tuple[int, str, bytes]]:
        """(stream version, topic, state) of one stream's events, in order: what loading an
        aggregate needs, as plain tuples (the library's ``select_events`` builds a UUID and a
        ``StoredEvent`` per row, the larger part of reading a long stream)."""
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None
            c.execute("SELECT originator_version, topic, state FROM stored_events WHERE originator_id = ? "
                      "ORDER BY originator_version", (originator_id.hex,))
            return c.fetchall()  # type: ignore[no-any-return]

    def select_rows(self, after: int, until: int | None, topics: Sequence[str], originator_ids: Sequence[str],
                    limit: int) -> list[StoredRow]:
        """Stored events joined with their chain rows, in position order (see ``iter_rows``)."""
        sql = ("SELECT e.rowid AS position, e.originator_id, e.originator_version, e.topic, e.state, "
               f"c.prev_hash, c.hash, {self._chain_format_sql()}, c.originator_id, c.originator_version "
               "FROM stored_events e LEFT JOIN event_chain c ON c.position = e.rowid WHERE e.rowid > ?")
        params: list[Any] = [after]
        if until is not None:
            sql += " AND e.rowid <= ?"
            params.append(until)
        if topics:
            sql += f" AND e.topic IN ({','.join('?' * len(topics))})"
            params.extend(topics)
        if originator_ids:
            sql += f" AND e.originator_id IN ({','.join('?' * len(originator_ids))})"
            params.extend(originator_ids)
        sql += " ORDER BY e.rowid LIMIT ?"
        params.append(limit)
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, params)
            return [StoredRow(r[0], r[1], r[2], r[3], bytes(r[4]), r[5], r[6], r[7], r[8], r[9])
                    for r in c.fetchall()]

    def chain_hash(self, position: int) -> str | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT hash FROM event_chain WHERE position = ?", (position,))
            row = c.fetchone()
        return row[0] if row else None

    def guard_present(self) -> bool:
        """Every append-only trigger is there and still raises the append-only error."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger'")
            triggers = {r[0]: r[1] or "" for r in c.fetchall()}
        return all(APPEND_ONLY_MESSAGE in triggers.get(f"{table}_no_{op}", "")
                   for table in GUARDED_TABLES for op in ("update", "delete", "replace"))

    def orphan_chain_positions(self, limit: int = 100) -> list[int]:
        """Chain rows whose event is gone (an event deleted behind the guard's back)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT c.position FROM event_chain c LEFT JOIN stored_events e ON e.rowid = c.position "
                      "WHERE e.rowid IS NULL ORDER BY c.position LIMIT ?", (limit,))
            return [r[0] for r in c.fetchall()]

    @staticmethod
    def _stream_head(c: SQLiteCursor, oid: str, version: int) -> str:
        c.execute("SELECT hash FROM event_chain WHERE originator_id=? AND originator_version=?", (oid, version))
        row = c.fetchone()
        if row is None:
            # The previous event exists (the insert above passed its uniqueness check) but
            # has no chain row: the chain was damaged. Refuse to extend it.
            raise sqlite3.IntegrityError(f"hash chain has no entry for {oid} v{version}")
        return row[0]


class LedgerApplication(Application[UUID]):
    """The journal as an eventsourcing Application; use cases live in ``adapters.ledger``."""

    name = "ledger"
    location: SQLiteLocation | None = None  # a SQLite journal: how its file was opened

    def construct_transcoder(self) -> Transcoder:
        return NullTranscoder()

    def construct_mapper(self) -> Mapper[UUID]:
        return MsgspecMapper(self.construct_transcoder())

    def close(self) -> None:
        super().close()
        if self.location is not None:
            remove_copy(self.location)


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def journal_env(journal_url: str, lock_timeout_s: int = 30, *, create: bool = True,
                location: SQLiteLocation | None = None) -> dict[str, str]:
    if journal_url.startswith("sqlite://"):
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": location.db_name if location else journal_url[len("sqlite://"):],
            "SQLITE_LOCK_TIMEOUT": str(lock_timeout_s),
            "APPLICATION_RECORDER_TOPIC": get_topic(ChainedSQLiteRecorder),
            "CREATE_TABLE": "yes" if create and not (location and location.read_only) else "no",
        }
    if journal_url.startswith(POSTGRES_SCHEMES):
        from .postgres import postgres_env  # psycopg is imported only for a PostgreSQL journal

        return postgres_env(journal_url, lock_timeout_s, create=create)
    raise ConfigurationError(
        "unsupported journal URL: use a SQLite path, sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB",
        {"journal": journal_url.split("@")[-1]},
    )


def open_journal(journal_url: str, *, create: bool = True) -> LedgerApplication:
    """The journal application, its ``journal_meta`` checked (``journal_unsupported`` for a newer
    schema or another encoding, before anything is written). ``create=False`` opens it exactly
    as it is (no tables, guards or metadata (re)created, no migration), which is how ``journal
    verify`` must look at it. A SQLite journal that cannot be written is opened read-only."""
    if journal_url.startswith(POSTGRES_SCHEMES):
        from .postgres import open_postgres_journal

        return open_postgres_journal(journal_url, create=create)
    where = journal_url.split("@")[-1]  # never echo credentials of a URL
    path = journal_url[len("sqlite://"):] if journal_url.startswith("sqlite://") else None
    location = locate(path, create=create) if path is not None else None
    for attempt in range(50):
        try:
            return _opened(journal_url, create, location)
        except (PersistenceError, sqlite3.Error) as e:
            # Processes creating the same new journal at once race for the switch to WAL mode,
            # which SQLite answers with an immediate "locked" (no busy wait): try again.
            if "locked" in str(e).lower() and attempt < 49:
                time.sleep(0.01 + 0.02 * random.random())
                continue
            if location is not None:
                remove_copy(location)
            if (path is not None and location is not None and not location.read_only and is_storage_failure(e)
                    and os.path.isfile(path)):
                # A full disk (say) keeps SQLite from making the files it writes with: the journal
                # can still be read. An append then fails with this reason, as storage_error.
                location = locate(path, create=False, unwritable=f"{e}")
                continue
            if is_storage_failure(e):
                raise StorageError(f"cannot open the journal at {where}: {e}", {"journal": where}) from None
            raise JournalUnavailable(f"cannot open the journal at {where}: {e}", {"journal": where}) from None
        except BaseException:
            if location is not None:
                remove_copy(location)
            raise
    raise AssertionError("unreachable")


def _opened(journal_url: str, create: bool, location: SQLiteLocation | None) -> LedgerApplication:
    """The application over the journal, its ``journal_meta`` checked (when it was not created
    here, by reading it now: the first statement, so it is also what finds an unopenable file)."""
    app = LedgerApplication(env=journal_env(journal_url, create=create, location=location))
    app.location = location
    recorder = app.recorder
    recorder.read_only = bool(location and location.read_only)
    recorder.read_only_reason = location.reason if location else ""
    if recorder.schema_version is None:
        try:
            recorder.check_meta()
        except BaseException:
            app.close()
            raise
    return app
