"""Bringing a views file of an older schema version forward without replaying the journal.

``MIGRATIONS[n]`` takes a file from version ``n`` to ``n + 1``. Opening a file of an older
version runs every step up to ``SCHEMA_VERSION`` in one transaction, under the write lock
(so two processes opening it at once upgrade it once), then records the new version. A
version with no path forward (too old, newer than this code, or a step that cannot apply)
is not upgraded: the caller rebuilds the file from the journal, as before migrations
existed. A step changes tables through sqlite-utils: ``conform_tables`` creates declared
tables that are missing and ``transform``s those whose columns differ from their
declaration, keeping their rows; the step then fills what it added.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from skill_ledger.domain.eligibility import OVERRIDE

from .db import create_indexes, create_tables, enable_search, transaction, utils
from .fold import jdump
from .records import manifest_facts
from .schema import POSITIONS, REGISTRIES, SCHEMA_VERSION, SEARCH, TABLES, VERSION_FACTS, VERSION_STATES, Table
from .search import search_row

if TYPE_CHECKING:
    import sqlite_utils

Step = Callable[[sqlite3.Connection], None]


class CannotMigrate(Exception):
    """This file cannot be brought forward in place (it is rebuilt instead)."""


def upgrade(con: sqlite3.Connection, version: str, notify: Callable[[str], None], path: Path) -> bool:
    """Upgrade the file from ``version`` to ``SCHEMA_VERSION``; False when there is no way
    to (the caller then rebuilds it)."""
    if not version.isdigit() or not all(v in MIGRATIONS for v in range(int(version), SCHEMA_VERSION)):
        return False
    try:
        with transaction(con):
            current = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if current is not None and current[0] == str(SCHEMA_VERSION):
                return True  # another process upgraded it while this one waited for the lock
            if current is None or current[0] != version:
                return False
            for step in range(int(version), SCHEMA_VERSION):
                MIGRATIONS[step](con)
            con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
    except CannotMigrate:
        return False
    notify(f"notice: views database {path} upgraded from schema version {version} to {SCHEMA_VERSION}")
    return True


def conform_tables(con: sqlite3.Connection, tables: Iterable[Table]) -> list[str]:
    """Make each table as declared: create it when missing, otherwise add the columns it
    lacks and ``transform`` it when its columns, their types, NOT NULL or the primary key
    differ (its rows are kept; a new column is NULL until the step fills it). Returns the
    names of the tables created."""
    db = utils(con)
    created = []
    for table in tables:
        existing = db[table.name]
        if not existing.exists():
            create_tables(con, [table], read_indexes=True)
            created.append(table.name)
            continue
        if _shape(existing) == _declared_shape(table):
            continue
        if _without_rowid(con, table.name):
            # sqlite-utils cannot transform a WITHOUT ROWID table (version 9 made some).
            raise CannotMigrate(f"{table.name} cannot be transformed in place")
        columns = {c.name for c in existing.columns}
        for column in table.columns:
            if column.name not in columns:
                existing.add_column(column.name, column.type)
        # NOT NULL as declared; a False only for a column that has it now (sqlite-utils adds
        # NOT NULL to a column given False that lacks it).
        not_null = {c.name: True for c in table.columns if c.not_null}
        not_null |= {c.name: False for c in existing.columns if c.notnull and c.name not in not_null}
        existing.transform(types=table.types, drop=columns - set(table.names), not_null=not_null,
                           pk=table.pk[0] if len(table.pk) == 1 else table.pk, column_order=list(table.names))
    return created


Shape = tuple[list[tuple[str, str, bool]], list[str]]


def _shape(table: sqlite_utils.db.Table) -> Shape:
    # A primary-key column cannot hold NULL whether or not it says NOT NULL.
    return [(c.name, c.type.upper(), bool(c.notnull or c.is_pk)) for c in table.columns], table.pks


def _declared_shape(table: Table) -> Shape:
    return ([(c.name, "TEXT" if c.type is str else "INTEGER", c.not_null or c.name in table.pk)
             for c in table.columns], list(table.pk))


def _without_rowid(con: sqlite3.Connection, name: str) -> bool:
    row = con.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
    return bool(row and row[0].rstrip().upper().endswith("WITHOUT ROWID"))


def _v9_to_v10(con: sqlite3.Connection) -> None:
    """Version 10 adds ``skills search``: the ``search`` table, one row per version row from
    its recorded manifest (the fold's own derivation, ``search.search_row``), and its
    full-text index. Every other table keeps its rows and columns (version 9 made some of
    them WITHOUT ROWID tables; they stay so)."""
    conform_tables(con, TABLES)
    con.execute(f"DELETE FROM {SEARCH.name}")  # empty unless a table of that name was there before
    rows = con.execute("SELECT v.skill_id, v.version, v.publisher, coalesce(m.manifest, 'null') FROM versions v "
                       "LEFT JOIN manifests m ON m.payload_sha256 = v.payload_sha256").fetchall()
    con.executemany(SEARCH.insert_sql(), [search_row(s, v, p, manifest_facts(m.encode("utf-8"))) for s, v, p, m in rows])
    create_indexes(con)
    enable_search(con)


def _v10_to_v11(con: sqlite3.Connection) -> None:
    """Version 11: a version active by an operator's override of a failed audit is eligible
    (``domain.eligibility``). Only such rows change: their ``audit_failed`` reason goes."""
    rows = con.execute("SELECT skill_id, version, eligibility_reasons FROM versions "
                       "WHERE status = 'active' AND status_reason_code = ?", (OVERRIDE,)).fetchall()
    for skill_id, version, reasons_json in rows:
        reasons = [r for r in json.loads(reasons_json) if r != "audit_failed"]
        con.execute("UPDATE versions SET eligible = ?, eligibility_reasons = ? WHERE skill_id = ? AND version = ?",
                    (int(not reasons), jdump(reasons), skill_id, version))


def _v11_to_v12(con: sqlite3.Connection) -> None:
    """Version 12 adds the ``registries`` table (``skills registry list``). Version 11 folded no
    registry event into it; a file that skipped some (an older program caught it up from a
    journal a newer one wrote) is rebuilt instead."""
    if con.execute("SELECT 1 FROM timeline WHERE kind LIKE 'registry.%' LIMIT 1").fetchone():
        raise CannotMigrate("registry events were folded without the registries table")
    conform_tables(con, [REGISTRIES])


def _v12_to_v13(con: sqlite3.Connection) -> None:
    """Version 13 adds the ``history`` projection (``version_facts`` and ``version_states``, for
    ``list --as-of`` and ``info --as-of``): every state a version row has been in, which only the
    journal knows. Its tables are created empty and its position set to 0 when there are version
    rows: the next catch-up folds the journal into it alone (``ViewStore._backfill``), keeping
    every other table as it is. With no version row yet, the empty history is right as it is."""
    conform_tables(con, [VERSION_FACTS, VERSION_STATES])
    if con.execute("SELECT 1 FROM versions LIMIT 1").fetchone():
        for table in (VERSION_FACTS, VERSION_STATES):
            con.execute(f"DELETE FROM {table.name}")  # empty unless tables of those names were there before
        position = 0
    else:
        (position,) = con.execute("SELECT coalesce(min(position), 0) FROM positions").fetchone()
    con.execute(POSITIONS.insert_sql("INSERT OR REPLACE"), ("history", position))


MIGRATIONS: dict[int, Step] = {9: _v9_to_v10, 10: _v10_to_v11, 11: _v11_to_v12, 12: _v12_to_v13}
