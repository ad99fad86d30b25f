"""The registries view: a views file of schema 11 gains it in place (schema 12), unless registry
events were already folded without it (then the file is rebuilt from the journal)."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import helpers_ledger as h

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adapters" / "registry"))
from registry_kit import make_repo  # noqa: E402

from skill_ledger.adapters.readmodel.views import open_views  # noqa: E402
from skill_ledger.adapters.usecases import registry as usecase  # noqa: E402
from skill_ledger.adapters.usecases.install import install  # noqa: E402
from skill_ledger.projections.queries import registries  # noqa: E402
from skill_ledger.projections.schema import SCHEMA_VERSION  # noqa: E402


def as_version_11(path: Path) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("DROP TABLE registries")
    con.execute("UPDATE meta SET value = '11' WHERE key = 'schema_version'")
    con.close()


def test_a_version_11_views_db_gains_the_registries_table_in_place(tmp_path: Path) -> None:
    ledger = h.ledger_for(tmp_path / "home")
    try:
        install(ledger, "/a/1", data=h.build("acme.alpha", "1.0.0", "acme"), allow_tofu=True)
        h.catch_up(ledger)
        path = ledger.settings.views_path
        as_version_11(path)
        notes: list[str] = []
        store = open_views(ledger.settings, notify=notes.append)
        try:
            assert notes == [f"notice: views database {path} upgraded from schema version 11 to {SCHEMA_VERSION}"]
            assert registries(store.con) == []
        finally:
            store.close()
        repo = make_repo(tmp_path)
        usecase.add(ledger, "main", repo.dir.as_uri(), repo.root)
        h.catch_up(ledger)
        assert h.projection_mismatches(ledger, tmp_path) == []
    finally:
        ledger.close()


def test_a_version_11_views_db_that_folded_registry_events_is_rebuilt(tmp_path: Path) -> None:
    ledger = h.ledger_for(tmp_path / "home")
    try:
        repo = make_repo(tmp_path)
        usecase.add(ledger, "main", repo.dir.as_uri(), repo.root)
        h.catch_up(ledger)
        path = ledger.settings.views_path
        as_version_11(path)  # the timeline has the registry.added line, the registries table is gone
        notes: list[str] = []
        store = open_views(ledger.settings, notify=notes.append)
        try:
            assert not any("upgraded" in n for n in notes) and notes, notes
            assert [r["name"] for r in registries(store.con)] == ["main"]
        finally:
            store.close()
        assert h.projection_mismatches(ledger, tmp_path) == []
    finally:
        ledger.close()
