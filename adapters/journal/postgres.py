"""The journal on PostgreSQL: eventsourcing's Postgres store, made append-only and hash-chained
exactly like the SQLite one (``adapters.journal``).

* Selected by ``--journal postgresql://USER:PASSWORD@HOST:PORT/DB`` (or ``postgres://``).
  Query parameters: ``schema`` (default ``public``), ``connect_timeout`` (seconds, default 10)
  and ``host`` (a unix-socket directory). Anything else libpq knows (TLS and so on) comes from
  its ``PG*`` environment variables. The password never appears in an error or a log line.
* Positions: one writer at a time holds ``LOCK TABLE stored_events IN EXCLUSIVE MODE`` (as the
  library does); under that lock the recorder numbers the new events itself, ``max + 1 ..``,
  instead of letting the ``bigserial`` sequence do it. A sequence hands out values that a
  failed insert (every optimistic-concurrency loser) never gives back, so its positions would
  have gaps; ours are gapless and equal commit order, as ``events.md`` promises, and
  ``journal verify`` checks them the same way on both backends.
* Hash chain: in the same transaction and under the same lock, one ``event_chain`` row per event
  (the recipe is ``adapters.journal.chain_rows``, shared with SQLite).
* Who wrote it: every chain row carries the database roles of the writing session
  (``db_session_user``: the login; ``db_current_user``: the effective role), filled in by the
  server (column defaults) and enforced by a CHECK constraint (``event_chain_stamped``: equal to
  ``session_user``/``current_user`` and chain format 2), which, unlike a trigger, no session
  setting skips: a client cannot record another role. The hash covers both (``db_role`` in the
  exported shape). Rows written before journal schema 2 have none (NULL; the constraint is
  added ``NOT VALID``, so it holds for every later row). Only a role that may ALTER the table
  can drop the constraint; ``journal verify`` reports it missing, as it reports the guard.
* ``journal_meta`` is checked when the journal is opened, before anything is written
  (``adapters.journal.meta``); a schema-1 journal opened to write is migrated in one transaction.
* Append-only: a PL/pgSQL trigger function refuses UPDATE, DELETE and TRUNCATE of
  ``stored_events`` and ``event_chain`` (row triggers for the first two, statement triggers for
  TRUNCATE; ``INSERT .. ON CONFLICT DO UPDATE`` fires the UPDATE trigger). The table owner or a
  superuser can still disable them; ``journal verify`` reports a missing or disabled trigger,
  and the chain exposes whatever was changed while it was off. (A session with
  ``session_replication_role = replica`` skips ordinary triggers and leaves no trace in the
  catalog: the chain is what catches that.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, PersistenceError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import get_topic, retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composable, Identifier, Literal

from skill_ledger.domain.codec import CURRENT_CHAIN_FORMAT
from skill_ledger.domain.errors import JournalUnavailable
from skill_ledger.projections.shards import EventFilter

from .meta import ENCODING, JOURNAL_SCHEMA_VERSION, checked_schema
from .pg_url import PgTarget
from .sqlite import APPEND_ONLY_MESSAGE, GUARDED_TABLES, LedgerApplication, StoredRow, chain_rows

EVENTS_TABLE = "stored_events"  # the SQLite journal's name, not the library's "<app>_events"
CHAIN_TABLE = "event_chain"
META_TABLE = "journal_meta"
TOPIC_INDEX = "stored_events_topic"
GUARD_FUNCTION = "journal_append_only"
STAMP_CONSTRAINT = "event_chain_stamped"
# Schema 2's event_chain columns after the first five.
_CHAIN_V2_COLUMNS = ("format smallint NOT NULL DEFAULT 1", "db_session_user text DEFAULT session_user",
                     "db_current_user text DEFAULT current_user")
_STAMP_CHECK = (f"CHECK (format = {CURRENT_CHAIN_FORMAT} AND db_session_user = session_user "
                "AND db_current_user = current_user)")
GUARD_OPS = ("update", "delete", "truncate")
# pg_trigger.tgtype bits
_TG_ROW, _TG_BEFORE, _TG_DELETE, _TG_UPDATE, _TG_TRUNCATE = 1, 2, 8, 16, 32
_TG_EVENT = {"update": _TG_UPDATE, "delete": _TG_DELETE, "truncate": _TG_TRUNCATE}


def postgres_env(journal_url: str, lock_timeout_s: int = 30, *, create: bool = True) -> dict[str, str]:
    """The eventsourcing environment for a PostgreSQL journal.

    Every key the Postgres factory reads is set, and set with the application's name as prefix
    (``LEDGER_POSTGRES_HOST``...): the library consults the prefixed key first and lets the
    process environment fill in anything the given env leaves out, so a stray ``POSTGRES_SCHEMA``
    or ``LEDGER_POSTGRES_HOST`` in a user's shell cannot redirect the journal."""
    t = PgTarget(journal_url)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "APPLICATION_RECORDER_TOPIC": get_topic(ChainedPostgresRecorder),
        "CREATE_TABLE": "yes" if create else "no",
        "POSTGRES_DBNAME": t.dbname,
        "POSTGRES_HOST": t.host,
        "POSTGRES_PORT": str(t.port),
        "POSTGRES_USER": t.user,
        "POSTGRES_PASSWORD": t.password,
        "POSTGRES_GET_PASSWORD_TOPIC": "",
        "POSTGRES_SCHEMA": t.schema,
        "POSTGRES_CONNECT_TIMEOUT": str(t.connect_timeout),
        "POSTGRES_LOCK_TIMEOUT": str(lock_timeout_s),
        # A command needs one connection at a time (a few for a long-running loop).
        "POSTGRES_POOL_SIZE": "1",
        "POSTGRES_MAX_OVERFLOW": "3",
        "POSTGRES_MAX_WAITING": "0",
        "POSTGRES_CONN_MAX_AGE": "3600",
        "POSTGRES_PRE_PING": "no",
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
        "POSTGRES_ENABLE_DB_FUNCTIONS": "no",  # the library's insert function would skip the chain
        "ORIGINATOR_ID_TYPE": "uuid",
        "SINGLE_ROW_TRACKING": "t",
    }
    return {f"{LedgerApplication.name.upper()}_{k}": v for k, v in env.items()}


def open_postgres_journal(journal_url: str, *, create: bool = True) -> LedgerApplication:
    """The journal application on PostgreSQL. ``create=False`` opens it as it is; a database
    without a journal yet then gets an empty one (as a SQLite path that does not exist)."""
    t = PgTarget(journal_url)
    # Connect once directly first: the library's pool would wait out its whole timeout on a
    # refused login or a missing database, and then say only that it timed out.
    reason = _explain(t)
    if reason:
        raise JournalUnavailable(f"cannot open the journal at {t.display}: {t.redact(reason)}", {"journal": t.display})
    try:
        app = LedgerApplication(env=postgres_env(journal_url, create=create))
        if not create and not app.recorder.journal_exists():
            app.close()
            app = LedgerApplication(env=postgres_env(journal_url, create=True))
        if app.recorder.schema_version is None:  # opened as it is: check what is there
            try:
                app.recorder.check_meta()
            except BaseException:
                app.close()
                raise
        return app
    except (PersistenceError, psycopg.Error) as e:
        reason = t.redact(_explain(t) or str(e))
        raise JournalUnavailable(f"cannot open the journal at {t.display}: {reason}", {"journal": t.display}) from None


def _explain(t: PgTarget) -> str:
    """The server's own reason a connection fails ("" when it does not)."""
    try:
        with psycopg.connect(dbname=t.dbname, host=t.host, port=t.port, user=t.user, password=t.password,
                             connect_timeout=t.connect_timeout):
            return ""
    except psycopg.Error as e:
        return " ".join(str(e).split())


# --- the recorder ------------------------------------------------------------------------


class ChainedPostgresRecorder(PostgresApplicationRecorder):
    """Postgres application recorder that numbers events gaplessly and writes the hash chain,
    atomically, under the events table's write lock."""

    schema_version: str | None = None  # set when the journal is opened (``check_meta``)
    read_only = False

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = EVENTS_TABLE) -> None:
        super().__init__(datastore, events_table_name=EVENTS_TABLE)
        schema = Identifier(self.datastore.schema)
        self.events = SQL("{}.{}").format(schema, Identifier(EVENTS_TABLE))
        self.chain = SQL("{}.{}").format(schema, Identifier(CHAIN_TABLE))
        self.meta = SQL("{}.{}").format(schema, Identifier(META_TABLE))
        self.guard_function = SQL("{}.{}").format(schema, Identifier(GUARD_FUNCTION))
        # Keep the table and its notification_id index; drop the composite type and the insert
        # function (this recorder inserts with plain arrays, and always through the chain).
        self.sql_create_statements = [
            s for i, s in enumerate(self.sql_create_statements)
            if i != self.create_insert_function_statement_index and "CREATE TYPE" not in s.as_string()
        ]

    # --- schema --------------------------------------------------------------------------

    def _journal_statements(self) -> list[Composable]:
        message = Literal(APPEND_ONLY_MESSAGE)
        return [
            SQL("CREATE TABLE IF NOT EXISTS {} (position bigint PRIMARY KEY, originator_id uuid NOT NULL, "
                "originator_version bigint NOT NULL, prev_hash text NOT NULL, hash text NOT NULL, "
                + ", ".join(_CHAIN_V2_COLUMNS) + ", "
                "UNIQUE (originator_id, originator_version), CONSTRAINT {} " + _STAMP_CHECK + ")").format(
                self.chain, Identifier(STAMP_CONSTRAINT)),
            SQL("CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, value text NOT NULL)").format(self.meta),
            # Reads by event kind cost the events of that kind (as on SQLite).
            SQL("CREATE INDEX IF NOT EXISTS {} ON {} (topic)").format(Identifier(TOPIC_INDEX), self.events),
            SQL("INSERT INTO {} VALUES ('schema_version', {}), ('encoding', {}) ON CONFLICT (key) DO NOTHING").format(
                self.meta, Literal(JOURNAL_SCHEMA_VERSION), Literal(ENCODING)),
            SQL("CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $guard$ BEGIN "
                "RAISE EXCEPTION {} USING DETAIL = format('%s on %s', TG_OP, TG_TABLE_NAME); "
                "END $guard$").format(self.guard_function, message),
        ]

    def _trigger_statement(self, table: str, op: str) -> Composable:
        level = "STATEMENT" if op == "truncate" else "ROW"
        return SQL("CREATE TRIGGER {} BEFORE {} ON {}.{} FOR EACH {} EXECUTE FUNCTION {}()").format(
            Identifier(f"{table}_no_{op}"), SQL(op.upper()), Identifier(self.datastore.schema), Identifier(table),
            SQL(level), self.guard_function)

    def create_table(self) -> None:
        """Tables, indexes, metadata and guards, created once. A journal that already has all of
        them is left alone (one catalog query, after its ``journal_meta`` is checked); otherwise
        the creation runs in one transaction under an advisory lock, so processes opening a new
        journal at once do not trip over each other's DDL. ``journal_meta`` is checked again
        under the lock, before any statement writes; a schema-1 journal is migrated there."""
        if self._schema_complete():
            return
        with self.datastore.transaction(commit=True) as curs:
            curs.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"skill-ledger journal {self.datastore.schema}",))
            existing = self._read_schema(curs)
            if self.datastore.schema != "public":
                curs.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(self.datastore.schema)))
            for statement in [*self.sql_create_statements, *self._journal_statements()]:
                curs.execute(statement, prepare=False)
            if existing == "1":
                self._migrate_from_1(curs)
            present = self._triggers(curs)
            for table in GUARDED_TABLES:
                for op in GUARD_OPS:
                    if f"{table}_no_{op}" not in present.get(table, {}):
                        curs.execute(self._trigger_statement(table, op), prepare=False)
        self.schema_version = JOURNAL_SCHEMA_VERSION

    def _migrate_from_1(self, curs: Any) -> None:
        """Schema 1 -> 2: the chain format and the stamped roles. Existing rows keep format 1 and
        no roles; the constraint is NOT VALID, so it is enforced on every new row only."""
        # The roles' defaults are set after the columns exist: a default given with ADD COLUMN
        # would be evaluated now and shown for every old row, as if this session had written it.
        curs.execute(SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS format smallint NOT NULL DEFAULT 1, "
                         "ADD COLUMN IF NOT EXISTS db_session_user text, ADD COLUMN IF NOT EXISTS db_current_user text"
                         ).format(self.chain), prepare=False)
        curs.execute(SQL("ALTER TABLE {} ALTER COLUMN db_session_user SET DEFAULT session_user, "
                         "ALTER COLUMN db_current_user SET DEFAULT current_user").format(self.chain), prepare=False)
        if not self._stamp_constraint(curs):
            curs.execute(SQL("ALTER TABLE {} ADD CONSTRAINT {} " + _STAMP_CHECK + " NOT VALID").format(
                self.chain, Identifier(STAMP_CONSTRAINT)), prepare=False)
        curs.execute(SQL("UPDATE {} SET value = %s WHERE key = 'schema_version'").format(self.meta),
                     (JOURNAL_SCHEMA_VERSION,))

    def _schema_complete(self) -> bool:
        with self.datastore.transaction(commit=False) as curs:
            schema = self._read_schema(curs)
            if schema != JOURNAL_SCHEMA_VERSION:
                return False
            present = self._triggers(curs)
            index = f'"{self.datastore.schema}"."{TOPIC_INDEX}"'
            curs.execute("SELECT to_regclass(%s) IS NOT NULL AS indexed", (index,))
            row = curs.fetchone()
        self.schema_version = schema
        return bool(row and row["indexed"]) and all(
            f"{t}_no_{op}" in present.get(t, {}) for t in GUARDED_TABLES for op in GUARD_OPS)

    def check_meta(self) -> None:
        """Read and check ``journal_meta`` of a journal opened without creating anything."""
        with self.datastore.transaction(commit=False) as curs:
            self.schema_version = self._read_schema(curs)

    def _read_schema(self, curs: Any) -> str | None:
        """The checked schema version (``adapters.journal.meta``); None when there is no journal."""
        curs.execute("SELECT to_regclass(%s) IS NOT NULL AS meta, to_regclass(%s) IS NOT NULL AS chain",
                     (f'"{self.datastore.schema}"."{META_TABLE}"', f'"{self.datastore.schema}"."{CHAIN_TABLE}"'))
        row = curs.fetchone()
        meta: dict[str, str] = {}
        if row and row["meta"]:
            curs.execute(SQL("SELECT key, value FROM {}").format(self.meta))
            meta = {r["key"]: r["value"] for r in curs.fetchall()}
        return checked_schema(meta, has_chain=bool(row and row["chain"]), where=self.where)

    @property
    def where(self) -> str:
        """The journal, for messages (never the password)."""
        k = self.datastore.pool.kwargs
        schema = f"?schema={self.datastore.schema}" if self.datastore.schema != "public" else ""
        return f"postgresql://{k.get('user')}@{k.get('host')}:{k.get('port')}/{k.get('dbname')}{schema}"

    def _stamp_constraint(self, curs: Any) -> bool:
        """The role-stamping CHECK constraint is on the chain table, as this version makes it."""
        curs.execute("SELECT pg_get_constraintdef(k.oid) AS def FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
                     "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s "
                     "AND k.conname = %s AND k.contype = 'c'", (self.datastore.schema, CHAIN_TABLE, STAMP_CONSTRAINT))
        row = curs.fetchone()
        text = " ".join(((row["def"] if row else "") or "").lower().replace("(", " ").replace(")", " ").split())
        return all(part in text for part in (f"format = {CURRENT_CHAIN_FORMAT}", "db_session_user = session_user",
                                             "db_current_user = current_user"))

    def _triggers(self, curs: Any) -> dict[str, dict[str, tuple[str, int, str]]]:
        """{table: {trigger: (enabled, type bits, function source)}} for the guarded tables."""
        curs.execute(
            "SELECT c.relname, t.tgname, t.tgenabled, t.tgtype, p.prosrc FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_proc p ON p.oid = t.tgfoid WHERE n.nspname = %s AND c.relname = ANY(%s) AND NOT t.tgisinternal",
            (self.datastore.schema, list(GUARDED_TABLES)))
        out: dict[str, dict[str, tuple[str, int, str]]] = {}
        for r in curs.fetchall():
            enabled = r["tgenabled"]
            out.setdefault(r["relname"], {})[r["tgname"]] = (
                enabled.decode() if isinstance(enabled, bytes) else str(enabled), int(r["tgtype"]), r["prosrc"] or "")
        return out

    def journal_exists(self) -> bool:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute("SELECT to_regclass(%s) IS NOT NULL AS chain", (f'"{self.datastore.schema}"."{CHAIN_TABLE}"',))
            row = curs.fetchone()
        return bool(row and row["chain"])

    # --- writing -------------------------------------------------------------------------

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._lock_table(curs)  # SET LOCAL lock_timeout; LOCK TABLE stored_events IN EXCLUSIVE MODE
            # Read after the lock is granted: a READ COMMITTED statement's snapshot then includes
            # every writer that held the lock before us, so max() is the committed head.
            curs.execute(SQL("SELECT coalesce(max(notification_id), 0) AS head FROM {}").format(self.events))
            row = curs.fetchone()
            assert row is not None
            head = int(row["head"])
            positions = list(range(head + 1, head + 1 + len(stored_events)))
            if self.schema_version != JOURNAL_SCHEMA_VERSION:
                raise JournalUnavailable(f"the journal at {self.where} was opened without its schema checked "
                                         "or migrated: nothing was recorded", {"journal": self.where})
            # The roles the chain rows' column defaults will stamp (and their CHECK enforce):
            # the hash covers them, so they are read from the server in this same session.
            curs.execute("SELECT session_user AS s, current_user AS c")
            who = curs.fetchone()
            assert who is not None
            db_role = {"session_user": who["s"], "current_user": who["c"]}
            curs.execute(
                SQL("INSERT INTO {} (originator_id, originator_version, topic, state, notification_id) "
                    "SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[], %s::bigint[])"
                ).format(self.events),
                ([_uuid(e.originator_id) for e in stored_events], [e.originator_version for e in stored_events],
                 [e.topic for e in stored_events], [e.state for e in stored_events], positions))
            rows = chain_rows(stored_events, positions, lambda oid, version: self._stream_head(curs, oid, version),
                              db_role)
            curs.execute(  # db_session_user, db_current_user: the server's defaults, never sent
                SQL("INSERT INTO {} (position, originator_id, originator_version, prev_hash, hash, format) "
                    "SELECT * FROM unnest(%s::bigint[], %s::uuid[], %s::bigint[], %s::text[], %s::text[], "
                    "%s::smallint[])").format(self.chain),
                ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
                 [r[4] for r in rows], [r[5] for r in rows]))
            self._notify_channel(curs)  # for the library's LISTEN/NOTIFY subscriptions
        return positions

    def _stream_head(self, curs: Any, oid: str, version: int) -> str:
        curs.execute(SQL("SELECT hash FROM {} WHERE originator_id = %s AND originator_version = %s").format(self.chain),
                     (oid, version))
        row = curs.fetchone()
        if row is None:
            # The stream's previous event exists (the insert passed its primary key) but has no
            # chain row: the chain was damaged. Refuse to extend it (the transaction rolls back).
            raise IntegrityError(f"hash chain has no entry for {oid} v{version}")
        return row["hash"]

    # --- reading (the same contract as ChainedSQLiteRecorder) ------------------------------

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_event_rows(self, start: int, limit: int, stop: int | None = None, *,
                          event_filter: EventFilter | None = None) -> list[tuple[int, int, str, bytes]]:
        """(position, stream_version, topic, state) after ``start``: the projections' fast path.
        ``event_filter``: only the events it selects (a shard of a sharded replay), in SQL."""
        sql = SQL("SELECT notification_id, originator_version, topic, state FROM {} WHERE notification_id > %s"
                  ).format(self.events)
        params: list[Any] = [start]
        if stop is not None:
            sql += SQL(" AND notification_id <= %s")
            params.append(stop)
        if event_filter is not None:
            clause, filter_params = filter_sql(event_filter)
            sql += SQL(" AND ") + clause
            params += filter_params
        sql += SQL(" ORDER BY notification_id LIMIT %s")
        params.append(limit)
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(sql, params)
            return [(r[0], r[1], r[2], bytes(r[3])) for r in curs.fetchall()]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_stream(self, originator_id: UUID) -> list[tuple[int, str, bytes]]:
        """(stream version, topic, state) of one stream's events, in order (as the SQLite recorder's)."""
        return [(e.originator_version, e.topic, bytes(e.state)) for e in self.select_events(originator_id)]

    def select_rows(self, after: int, until: int | None, topics: Sequence[str], originator_ids: Sequence[str],
                    limit: int) -> list[StoredRow]:
        chain = ("1, c.originator_id, c.originator_version, NULL, NULL" if self.schema_version == "1" else
                 f"coalesce(c.format, {CURRENT_CHAIN_FORMAT}), c.originator_id, c.originator_version, "
                 "c.db_session_user, c.db_current_user")
        sql = SQL("SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state, c.prev_hash, "
                  "c.hash, " + chain + " FROM {} e LEFT JOIN {} c ON c.position = e.notification_id "
                  "WHERE e.notification_id > %s").format(self.events, self.chain)
        params: list[Any] = [after]
        if until is not None:
            sql += SQL(" AND e.notification_id <= %s")
            params.append(until)
        if topics:
            sql += SQL(" AND e.topic = ANY(%s::text[])")
            params.append(list(topics))
        if originator_ids:
            sql += SQL(" AND e.originator_id = ANY(%s::uuid[])")
            params.append([_uuid(o) for o in originator_ids])
        sql += SQL(" ORDER BY e.notification_id LIMIT %s")
        params.append(limit)
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(sql, params)
            return [StoredRow(r[0], r[1].hex, r[2], r[3], bytes(r[4]), r[5], r[6], r[7], r[8].hex if r[8] else None,
                              r[9], r[10], r[11]) for r in curs.fetchall()]

    def chain_hash(self, position: int) -> str | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT hash FROM {} WHERE position = %s").format(self.chain), (position,))
            row = curs.fetchone()
        return row["hash"] if row else None

    def guard_present(self) -> bool:
        """Every append-only trigger is there, enabled, fires BEFORE its operation and calls a
        function that raises the append-only error; and (schema 2) the constraint that stamps
        the writing roles on every chain row is there."""
        with self.datastore.transaction(commit=False) as curs:
            present = self._triggers(curs)
            if self.schema_version != "1" and not self._stamp_constraint(curs):
                return False
        for table in GUARDED_TABLES:
            for op in GUARD_OPS:
                found = present.get(table, {}).get(f"{table}_no_{op}")
                if found is None:
                    return False
                enabled, tgtype, source = found
                row_level = op != "truncate"
                if (enabled not in ("O", "A") or not tgtype & _TG_BEFORE or not tgtype & _TG_EVENT[op]
                        or bool(tgtype & _TG_ROW) != row_level
                        or "RAISE EXCEPTION" not in source.upper() or APPEND_ONLY_MESSAGE not in source):
                    return False
        return True

    def orphan_chain_positions(self, limit: int = 100) -> list[int]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT c.position FROM {} c LEFT JOIN {} e ON e.notification_id = c.position "
                             "WHERE e.notification_id IS NULL ORDER BY c.position LIMIT %s").format(self.chain, self.events),
                         (limit,))
            return [r["position"] for r in curs.fetchall()]


def filter_sql(f: EventFilter) -> tuple[Composable, list[Any]]:
    """``EventFilter.matches`` as a PostgreSQL expression over ``stored_events`` (and its parameters)."""
    starts = "left(topic, %s::int) = %s"
    others = ("true" if f.others is None else
              "(" + (" OR ".join(starts for _ in f.others) or "false") + ")")
    params: list[Any] = [len(f.split_prefix), f.split_prefix, f.digits]
    for prefix in f.others or ():
        params += [len(prefix), prefix]
    return SQL(f"(CASE WHEN {starts} THEN strpos(%s, right(originator_id::text, 1)) > 0 ELSE {others} END)"), params


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))
