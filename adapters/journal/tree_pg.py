"""The journal's Merkle tree tables on PostgreSQL (``adapters.journal.tree`` for the design).

The same two tables as on SQLite (``bytea`` hashes), guarded like the events: a PL/pgSQL
function refuses UPDATE, DELETE and TRUNCATE. An extension runs in one transaction under
``LOCK TABLE merkle_tree IN EXCLUSIVE MODE``, so two processes extending at once take turns
and the second resumes from the first's rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg.sql import SQL, Composable, Identifier, Literal

from skill_ledger.domain.merkle import Frontier, Node

from .sqlite import APPEND_ONLY_MESSAGE
from .tree import TREE_TABLES, ReadOnlyJournal, TreeDB

GUARD_FUNCTION = "merkle_append_only"
GUARD_OPS = ("update", "delete", "truncate")


class PostgresTreeDB(TreeDB):
    def __init__(self, recorder: Any) -> None:
        self.datastore = recorder.datastore
        self.schema = self.datastore.schema
        s = Identifier(self.schema)
        self.nodes = SQL("{}.{}").format(s, Identifier("merkle_nodes"))
        self.tree = SQL("{}.{}").format(s, Identifier("merkle_tree"))
        self.chain = SQL("{}.{}").format(s, Identifier("event_chain"))
        self.events = SQL("{}.{}").format(s, Identifier("stored_events"))
        self.function = SQL("{}.{}").format(s, Identifier(GUARD_FUNCTION))

    def _statements(self) -> list[Composable]:
        out: list[Composable] = [
            SQL("CREATE TABLE IF NOT EXISTS {} (level integer NOT NULL, idx bigint NOT NULL, hash bytea NOT NULL, "
                "PRIMARY KEY (level, idx))").format(self.nodes),
            SQL("CREATE TABLE IF NOT EXISTS {} (size bigint PRIMARY KEY, root bytea NOT NULL, frontier bytea NOT NULL)"
                ).format(self.tree),
            SQL("CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $guard$ BEGIN "
                "RAISE EXCEPTION {} USING DETAIL = format('%s on %s', TG_OP, TG_TABLE_NAME); "
                "END $guard$").format(self.function, Literal(APPEND_ONLY_MESSAGE)),
        ]
        for table in TREE_TABLES:
            for op in GUARD_OPS:
                level = "STATEMENT" if op == "truncate" else "ROW"
                name = Identifier(f"{table}_no_{op}")
                target = SQL("{}.{}").format(Identifier(self.schema), Identifier(table))
                out.append(SQL("DROP TRIGGER IF EXISTS {} ON {}").format(name, target))
                out.append(SQL("CREATE TRIGGER {} BEFORE {} ON {} FOR EACH {} EXECUTE FUNCTION {}()").format(
                    name, SQL(op.upper()), target, SQL(level), self.function))
        return out

    def _has_tables(self, curs: Any) -> bool:
        curs.execute("SELECT count(*) AS n FROM pg_tables WHERE schemaname = %s AND tablename = ANY(%s)",
                     (self.schema, list(TREE_TABLES)))
        row = curs.fetchone()
        return bool(row and row["n"] == len(TREE_TABLES))

    def _ensure_tables(self, curs: Any) -> None:
        if self._has_tables(curs) and self._guard(curs):
            return
        curs.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"skill-ledger tree {self.schema}",))
        if self._has_tables(curs) and self._guard(curs):
            return
        for statement in self._statements():
            curs.execute(statement, prepare=False)

    def newest_tree(self) -> tuple[int, bytes] | None:
        with self.datastore.transaction(commit=False) as curs:
            if not self._has_tables(curs):
                return None
            curs.execute(SQL("SELECT size, frontier FROM {} ORDER BY size DESC LIMIT 1").format(self.tree))
            row = curs.fetchone()
        return (int(row["size"]), bytes(row["frontier"])) if row else None

    def append(self, old_size: int, frontier: Frontier, nodes: list[Node]) -> tuple[int, Frontier] | None:
        try:
            with self.datastore.transaction(commit=True) as curs:
                self._ensure_tables(curs)
                curs.execute(SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(self.tree))
                curs.execute(SQL("SELECT size, frontier FROM {} ORDER BY size DESC LIMIT 1").format(self.tree))
                row = curs.fetchone()
                if (int(row["size"]) if row else 0) != old_size:
                    return int(row["size"]), Frontier.from_bytes(bytes(row["frontier"]))
                if nodes:
                    curs.execute(SQL("INSERT INTO {} (level, idx, hash) SELECT * FROM unnest(%s::integer[], "
                                     "%s::bigint[], %s::bytea[])").format(self.nodes),
                                 ([n.level for n in nodes], [n.index for n in nodes], [n.hash for n in nodes]))
                curs.execute(SQL("INSERT INTO {} (size, root, frontier) VALUES (%s, %s, %s)").format(self.tree),
                             (frontier.size, frontier.root(), frontier.to_bytes()))
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction) as e:
            raise ReadOnlyJournal(str(e)) from None
        return None

    def find_nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The stored nodes among ``keys`` (one query; absent ones are left out)."""
        with self.datastore.transaction(commit=False) as curs:
            if not self._has_tables(curs):
                return {}
            curs.execute(SQL("SELECT m.level, m.idx, m.hash FROM unnest(%s::integer[], %s::bigint[]) AS k(level, idx) "
                             "JOIN {} m ON m.level = k.level AND m.idx = k.idx").format(self.nodes),
                         ([k[0] for k in keys], [k[1] for k in keys]))
            return {(int(r["level"]), int(r["idx"])): bytes(r["hash"]) for r in curs.fetchall()}

    def chain_hashes(self, first: int, last: int) -> list[tuple[int, str]]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT position, hash FROM {} WHERE position BETWEEN %s AND %s ORDER BY position"
                             ).format(self.chain), (first, last))
            return [(int(r["position"]), r["hash"]) for r in curs.fetchall()]

    def nodes_of_level(self, level: int) -> Iterator[tuple[int, bytes]]:
        with self.datastore.transaction(commit=False) as curs:
            if not self._has_tables(curs):
                return
            curs.execute(SQL("SELECT idx, hash FROM {} WHERE level = %s ORDER BY idx").format(self.nodes), (level,))
            rows = curs.fetchall()
        for r in rows:
            yield int(r["idx"]), bytes(r["hash"])

    def trees(self) -> list[tuple[int, bytes, bytes]]:
        with self.datastore.transaction(commit=False) as curs:
            if not self._has_tables(curs):
                return []
            curs.execute(SQL("SELECT size, root, frontier FROM {} ORDER BY size").format(self.tree))
            return [(int(r["size"]), bytes(r["root"]), bytes(r["frontier"])) for r in curs.fetchall()]

    def _guard(self, curs: Any) -> bool:
        curs.execute(
            "SELECT c.relname, t.tgname, t.tgenabled, p.prosrc FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE n.nspname = %s AND c.relname = ANY(%s) AND NOT t.tgisinternal", (self.schema, list(TREE_TABLES)))
        present = {}
        for r in curs.fetchall():
            enabled = r["tgenabled"]
            enabled = enabled.decode() if isinstance(enabled, bytes) else str(enabled)
            present[r["tgname"]] = enabled in ("O", "A") and APPEND_ONLY_MESSAGE in (r["prosrc"] or "")
        return all(present.get(f"{t}_no_{op}") for t in TREE_TABLES for op in GUARD_OPS)

    def guard_present(self) -> bool | None:
        with self.datastore.transaction(commit=False) as curs:
            if not self._has_tables(curs):
                return None
            return self._guard(curs)

    def stream_events(self, originator_hex: str) -> list[tuple[int, int, str, bytes]]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT notification_id, originator_version, topic, state FROM {} "
                             "WHERE originator_id = %s ORDER BY originator_version").format(self.events),
                         (UUID(originator_hex),))
            return [(int(r["notification_id"]), int(r["originator_version"]), r["topic"], bytes(r["state"]))
                    for r in curs.fetchall()]

    def chain_entry(self, originator_hex: str, version: int) -> tuple[int, str] | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT position, hash FROM {} WHERE originator_id = %s AND originator_version = %s"
                             ).format(self.chain), (UUID(originator_hex), version))
            row = curs.fetchone()
        return (int(row["position"]), row["hash"]) if row else None

    def orphans_after(self, after: int, limit: int) -> list[int]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT c.position FROM {} c WHERE c.position > %s AND NOT EXISTS "
                             "(SELECT 1 FROM {} e WHERE e.notification_id = c.position) ORDER BY c.position LIMIT %s"
                             ).format(self.chain, self.events), (after, limit))
            return [int(r["position"]) for r in curs.fetchall()]

    def close(self) -> None:
        """The event store owns the connections."""
