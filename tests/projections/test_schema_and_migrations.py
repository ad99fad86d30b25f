"""The views schema: each table declared once (``projections.schema``) drives the tables
sqlite-utils creates, the row types and the INSERT statements; the one transaction helper
commits or rolls back; and a views.db of the previous schema version (9) is upgraded in
place to equal a fresh rebuild, while one that cannot be is rebuilt."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import helpers_ledger as h
import pytest

from skill_ledger.adapters.readmodel.views import discard, open_views
from skill_ledger.adapters.usecases import lifecycle
from skill_ledger.adapters.usecases.install import install
from skill_ledger.adapters.usecases.policy import set_policy
from skill_ledger.projections.db import connect, create_tables, transaction
from skill_ledger.projections.migrations import conform_tables
from skill_ledger.projections.replay import diff
from skill_ledger.projections.schema import (
    AUDITS,
    REGISTRIES,
    REJECTIONS,
    SCHEMA_VERSION,
    SEARCH,
    SEARCH_FTS,
    TABLES,
    VERSION_FACTS,
    VERSION_STATES,
    Table,
)
from skill_ledger.projections.search import search
from skill_ledger.projections.store import ViewStore

V9_SCHEMA = Path(__file__).with_name("views_v9_schema.sql")


# --- the declarations drive the schema ---------------------------------------------------------


def declared(table: Table) -> list[tuple[str, str, bool]]:
    return [(c.name, "TEXT" if c.type is str else "INTEGER", c.not_null) for c in table.columns]


def created(con: sqlite3.Connection, name: str) -> list[tuple[str, str, bool]]:
    return [(r[1], r[2], bool(r[3])) for r in con.execute(f"PRAGMA table_info({name})")]


def test_every_table_is_created_as_declared(tmp_path: Path) -> None:
    store = ViewStore(tmp_path / "views.db")
    try:
        for table in TABLES:
            assert created(store.con, table.name) == declared(table), table.name
            pk = [r[1] for r in sorted(store.con.execute(f"PRAGMA table_info({table.name})"), key=lambda r: r[5])
                  if r[5]]
            assert pk == list(table.pk), table.name
            for index in table.indexes:
                columns = [r[2] for r in store.con.execute(f"PRAGMA index_info({index.name})")]
                assert columns == list(index.columns), index.name
        assert store.con.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (SEARCH_FTS,)).fetchone()
    finally:
        store.close()


def test_a_row_built_by_name_lands_in_its_columns(tmp_path: Path) -> None:
    """The fold fills row types by keyword; the INSERT made from the same declaration puts
    every value in the column of its name (no positional list to keep in step)."""
    con = connect(tmp_path / "t.db")
    with transaction(con):
        create_tables(con, [AUDITS, SEARCH], read_indexes=True)
    values = {name: (i if t is int else f"v{i}") for i, (name, t, _nn) in enumerate(AUDITS.columns)}
    row = AUDITS.row(**values)
    assert type(row) is tuple and len(row) == len(AUDITS.names)
    con.execute(AUDITS.insert_sql(), row)
    got = con.execute(f"SELECT {', '.join(reversed(AUDITS.names))} FROM audits").fetchone()
    assert dict(zip(reversed(AUDITS.names), got)) == values
    with pytest.raises(TypeError):
        AUDITS.row(**{**values, "no_such_column": 1})
    with pytest.raises(TypeError):
        AUDITS.row(position=1)  # every column must be given
    con.close()


def test_a_declaration_with_a_key_outside_its_columns_is_refused() -> None:
    with pytest.raises(ValueError):
        Table("t", ("missing",), [("a", str)])


# --- the transaction helper --------------------------------------------------------------------


def test_the_transaction_commits_or_rolls_back(tmp_path: Path) -> None:
    con = connect(tmp_path / "t.db")
    con.execute("CREATE TABLE t (v INTEGER)")
    with transaction(con):
        con.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(ZeroDivisionError):
        with transaction(con):
            con.execute("INSERT INTO t VALUES (2)")
            1 / 0  # noqa: B018 - an error in the middle of a batch
    assert not con.in_transaction
    assert [r[0] for r in con.execute("SELECT v FROM t")] == [1]
    # an error after which SQLite has already rolled back by itself: that error surfaces,
    # not "cannot rollback - no transaction is active"
    con.execute("CREATE TRIGGER no_three BEFORE INSERT ON t WHEN NEW.v = 3 BEGIN SELECT RAISE(ROLLBACK, 'three'); END")
    with pytest.raises(sqlite3.IntegrityError, match="three"):
        with transaction(con):
            con.execute("INSERT INTO t VALUES (4)")
            con.execute("INSERT INTO t VALUES (3)")
    assert [r[0] for r in con.execute("SELECT v FROM t")] == [1]
    # another connection can write again: no lock is left behind
    other = connect(tmp_path / "t.db")
    with transaction(other):
        other.execute("INSERT INTO t VALUES (5)")
    other.close()
    con.close()


def test_a_failed_batch_leaves_the_views_as_they_were(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = h.ledger_for(tmp_path / "home")
    try:
        install(ledger, "/a/1", data=h.build("acme.alpha", "1.0.0", "acme"), allow_tofu=True)
        h.catch_up(ledger)
        lifecycle.quarantine(ledger, "acme.alpha", None, "look")
        store = ViewStore(ledger.settings.views_path)
        before = h.raw_dump(store.path)
        positions = store.positions()

        def fail(*_a, **_k):
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(ViewStore, "write_batch", fail)
        with pytest.raises(RuntimeError):
            store.catch_up(ledger.app.recorder)
        monkeypatch.undo()
        assert store.positions() == positions and h.raw_dump(store.path) == before
        store.catch_up(ledger.app.recorder)
        assert store.position() == ledger.head()
        store.close()
    finally:
        ledger.close()


# --- migrations ---------------------------------------------------------------------------------


def make_v9(live: Path, path: Path) -> None:
    """A views.db as version 9 wrote it, with the rows of ``live`` (version 9 had every table
    but ``search``, with the same rows)."""
    con = sqlite3.connect(path, isolation_level=None)
    con.executescript(V9_SCHEMA.read_text())
    con.execute("ATTACH DATABASE ? AS live", (str(live),))
    con.execute("BEGIN")
    for table in TABLES:
        # version 10 added search, 12 registries, 13 the version history
        if table not in (SEARCH, REGISTRIES, VERSION_FACTS, VERSION_STATES):
            columns = ", ".join(table.names)
            con.execute(f"INSERT INTO main.{table.name} ({columns}) SELECT {columns} FROM live.{table.name}")
    # version 9 (and 10) derived an override of a failed audit as not eligible
    con.execute("UPDATE main.versions SET eligible = 0, eligibility_reasons = '[\"audit_failed\"]' "
                "WHERE status = 'active' AND status_reason_code = 'override'")
    con.execute("UPDATE main.meta SET value = '9' WHERE key = 'schema_version'")
    con.execute("COMMIT")
    con.execute("DETACH DATABASE live")
    con.execute("PRAGMA journal_mode=WAL")
    con.close()


@pytest.fixture
def v9_home(tmp_path: Path):
    home = tmp_path / "home"
    ledger = h.ledger_for(home)
    for skill_id, publisher in (("acme.alpha", "acme"), ("globex.gamma", "globex")):
        for version in ("1.0.0", "2.0.0"):
            install(ledger, f"/a/{skill_id}-{version}", data=h.build(skill_id, version, publisher), allow_tofu=True)
    lifecycle.quarantine(ledger, "globex.gamma", None, "look")
    lifecycle.remove(ledger, "acme.alpha", "1.0.0", "old")
    # a version active by an operator's override of a failed audit (version 11 makes it eligible)
    set_policy(ledger, ["max_exported_functions=0"], "tight")
    install(ledger, "/a/acme.delta", data=h.build("acme.delta", "1.0.0", "acme"))
    lifecycle.enable(ledger, "acme.delta", None, "accepted risk", override=True)
    set_policy(ledger, ["max_exported_functions=128"], "back")
    h.catch_up(ledger)
    views = ledger.settings.views_path
    make_v9(views, tmp_path / "v9.db")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{views}{suffix}").unlink(missing_ok=True)
    shutil.move(tmp_path / "v9.db", views)
    yield ledger
    ledger.close()


def test_a_version_9_views_db_is_upgraded_in_place(v9_home, tmp_path: Path) -> None:
    ledger = v9_home
    path = ledger.settings.views_path
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("9",)
    timeline_before = con.execute("SELECT * FROM timeline ORDER BY position").fetchall()
    con.close()
    notes: list[str] = []
    store = open_views(ledger.settings, notify=notes.append)
    try:
        assert notes == [f"notice: views database {path} upgraded from schema version 9 to {SCHEMA_VERSION}"]
        assert store.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(
            SCHEMA_VERSION)
        # kept, not replayed: the rows the file had are still there
        assert [tuple(r) for r in store.con.execute("SELECT * FROM timeline ORDER BY position")] == timeline_before
        assert sorted((x.skill_id, x.version) for x in search(store.con, "acme").results) == [
            ("acme.alpha", "2.0.0"), ("acme.delta", "1.0.0")]
        assert tuple(store.con.execute("SELECT eligible, eligibility_reasons FROM versions WHERE skill_id = 'acme.delta'"
                                       ).fetchone()) == (1, "[]")  # the override's eligibility, migrated in place
        assert store.integrity_problem() is None
    finally:
        store.close()
    # equal to a fresh rebuild, and it keeps catching up as any views file
    install(ledger, "/a/x", data=h.build("acme.beta", "1.0.0", "acme"))
    h.catch_up(ledger)
    rebuilt = h.rebuilt_views(ledger, tmp_path)
    store = open_views(ledger.settings)
    try:
        assert diff(store, rebuilt) == [] and store.positions() == rebuilt.positions()
        assert search(store.con, "beta") == search(rebuilt.con, "beta")
        assert store.integrity_problem() is None
    finally:
        store.close()
        discard(rebuilt)
    # opening it again upgrades nothing
    notes.clear()
    open_views(ledger.settings, notify=notes.append).close()
    assert notes == []


def test_a_version_9_file_that_cannot_be_transformed_is_rebuilt(v9_home) -> None:
    """A table of a shape the declarations do not describe, which sqlite-utils cannot
    transform (a WITHOUT ROWID table of version 9): the file is rebuilt, as before migrations."""
    ledger = v9_home
    path = ledger.settings.views_path
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE policy ADD COLUMN extra TEXT")
    con.commit()
    con.close()
    notes: list[str] = []
    store = open_views(ledger.settings, notify=notes.append)
    try:
        assert len(notes) == 1 and "schema version 9" in notes[0] and "rebuilding" in notes[0], notes
        assert store.position() == ledger.head()
        assert [c[1] for c in store.con.execute("PRAGMA table_info(policy)")] == ["name", "policy_version", "policy",
                                                                                   "changed", "updated_at",
                                                                                   "updated_by"]
    finally:
        store.close()


def test_a_table_of_an_older_shape_is_transformed_keeping_its_rows(tmp_path: Path) -> None:
    """``conform_tables``: a column missing, one of another type and one too many are brought
    to the declaration by sqlite-utils' ``transform``; the rows stay."""
    con = connect(tmp_path / "t.db")
    con.execute("CREATE TABLE rejections (position INTEGER PRIMARY KEY, recorded_at TEXT NOT NULL, "
                "artifact_sha256 TEXT NOT NULL, source TEXT, error_code INTEGER NOT NULL, message TEXT NOT NULL, "
                "skill_id TEXT, version TEXT, obsolete TEXT)")
    con.execute("INSERT INTO rejections VALUES (7, 't', 'a', 's', 'zip', 'm', 'acme.x', '1.0.0', 'gone')")
    with transaction(con):
        assert conform_tables(con, [REJECTIONS, SEARCH]) == ["search"]
    assert created(con, "rejections") == declared(REJECTIONS)
    assert [tuple(r) for r in con.execute("SELECT * FROM rejections")] == [
        (7, "t", "a", "s", "zip", "m", "acme.x", "1.0.0", None)]
    assert created(con, "search") == declared(SEARCH)
    with transaction(con):
        assert conform_tables(con, [REJECTIONS, SEARCH]) == []  # nothing left to do
    con.close()
