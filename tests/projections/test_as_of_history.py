"""``skills list --as-of`` and ``skills info --as-of`` from the history projection (issue 14):
for every position of a generated journal, the past read from the live views equals a
scratch replay up to that position (the definition), entry for entry and field for field;
a time resolves to the last position at or before it; a position beyond the head is a usage
error; rebuild, catch-up and ``index verify`` cover the history tables; a views file of schema
12 gains them in place."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import helpers_ledger as h
import pytest
import tlog_helpers as t

from skill_ledger.adapters.readmodel.views import discard, open_views, views_as_of
from skill_ledger.adapters.usecases import lifecycle, trust
from skill_ledger.adapters.usecases.install import install
from skill_ledger.adapters.usecases.policy import set_policy
from skill_ledger.projections.asof import resolve_when, shadow, unshadow
from skill_ledger.projections.queries import info, list_entries, list_rows, version_row
from skill_ledger.projections.replay import diff


def generated(home: Path) -> None:
    """Every kind of change a version row can go through, in about 50 events."""
    ledger = h.ledger_for(home)
    try:
        for sid, pub in (("acme.alpha", "acme"), ("globex.gamma", "globex")):
            install(ledger, f"/{sid}/1", data=h.build(sid, "1.0.0", pub), allow_tofu=True)
            install(ledger, f"/{sid}/2", data=h.build(sid, "2.0.0", pub), allow_tofu=True)
        lifecycle.quarantine(ledger, "acme.alpha", None, "suspicious")
        lifecycle.rollback(ledger, "acme.alpha", None, "back to 1")
        lifecycle.disable(ledger, "globex.gamma", None, "paused")
        lifecycle.enable(ledger, "globex.gamma", None, "resumed")
        set_policy(ledger, ["max_exported_functions=0"], "tight")
        install(ledger, "/acme.delta", data=h.build("acme.delta", "1.0.0", "acme"))
        lifecycle.enable(ledger, "acme.delta", None, "accepted risk", override=True)
        set_policy(ledger, ["max_exported_functions=128"], "back")
        trust.revoke(ledger, "globex", h.key_hex(h.SEEDS["globex"]), "leaked")
        lifecycle.remove(ledger, "acme.alpha", "2.0.0", "gone")
        install(ledger, "/acme.alpha/2b", data=h.build("acme.alpha", "2.0.0", "acme"), allow_tofu=True)
        trust.allow(ledger, "globex", h.key_hex(h.SEEDS["globex"]), "rotated back")
        from skill_ledger.adapters.usecases import verification

        verification.verify(ledger, "globex.gamma", None)
    finally:
        ledger.close()


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("asof") / "home"
    generated(home)
    return home


def answers(con: Any) -> dict[str, Any]:
    """Everything list and info show, for every version the views know."""
    out: dict[str, Any] = {"list": list_entries(con), "rows": [tuple(r) for r in list_rows(con)],
                           "current": list_entries(con, current_only=True),
                           "eligible": list_entries(con, eligible_only=True),
                           "quarantined": list_entries(con, status="quarantined")}
    keys = [(r["skill_id"], r["version"]) for r in con.execute("SELECT skill_id, version FROM versions")]
    for skill_id, version in sorted(keys):
        row = version_row(con, skill_id, version)
        out[f"info {skill_id} {version}"] = info(con, row) if row is not None else None
        current = version_row(con, skill_id, None)
        out[f"info {skill_id}"] = info(con, current) if current is not None else None
    return out


def test_as_of_equals_a_replay_at_every_position(journal: Path) -> None:
    settings = h.settings_for(journal)
    store = open_views(settings)
    try:
        head = store.position()
        assert head > 45
        today = answers(store.con)
        for position in range(head + 1):
            replayed = views_as_of(settings, position)
            try:
                expected = answers(replayed.con)
            finally:
                discard(replayed)
            shadow(store.con, position)
            try:
                actual = answers(store.con)
            finally:
                unshadow(store.con)
            assert actual == expected, f"as of position {position}"
        assert answers(store.con) == today  # unshadowed: today's views again
    finally:
        store.close()


def test_list_and_info_as_of_through_the_cli(journal: Path) -> None:
    r = t.skills(journal, "list", "--as-of", "8", "--json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["as_of"] == {"position": 8, "requested": "8"}
    assert [(e["skill_id"], e["version"]) for e in d["entries"]] == [("acme.alpha", "1.0.0")]
    r = t.skills(journal, "info", "acme.alpha", "--as-of", "8", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["version"] == "1.0.0"
    human = t.skills(journal, "list", "--as-of", "8")
    assert human.exit_code == 0 and human.stdout.startswith("as of journal position 8")
    # today's answer is unchanged by an as-of read on the same views
    assert json.loads(t.skills(journal, "list", "--json").stdout)["as_of"] is None


def test_a_position_beyond_the_head_is_a_usage_error(journal: Path) -> None:
    head = t.head(journal)
    for command in (("list",), ("info", "acme.alpha")):
        r = t.skills(journal, *command, "--as-of", str(head + 1))
        assert r.exit_code == 2 and f"beyond the journal's head (position {head})" in r.stderr
    assert t.skills(journal, "list", "--as-of", str(head)).exit_code == 0
    assert t.skills(journal, "list", "--as-of", "yesterday").exit_code == 2


def test_a_time_resolves_to_the_last_position_at_or_before_it(journal: Path) -> None:
    store = open_views(h.settings_for(journal))
    try:
        times = store.con.execute("SELECT position, recorded_at FROM timeline ORDER BY position").fetchall()
        for position, recorded_at in times[::7]:
            last = max(p for p, at in times if at <= recorded_at)
            assert resolve_when(store.con, recorded_at, "--as-of") == last
            assert resolve_when(store.con, recorded_at.replace("+00:00", "Z"), "--as-of") == last
            first = min(p for p, at in times if at >= recorded_at)
            assert resolve_when(store.con, recorded_at, "--since", before=True) == first - 1
        assert resolve_when(store.con, "1999-01-01T00:00:00", "--as-of") == 0
        assert resolve_when(store.con, "2999-01-01T00:00:00+02:00", "--as-of") == times[-1][0]
    finally:
        store.close()
    r = t.skills(journal, "list", "--as-of", times[10][1], "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["as_of"]["position"] >= times[10][0]


def test_rebuild_catch_up_and_index_verify_cover_the_history(journal: Path, tmp_path: Path) -> None:
    ledger = h.ledger_for(journal)
    try:
        h.catch_up(ledger)
        for shards in ((1,), (3,)):
            assert h.projection_mismatches(ledger, tmp_path, batches=(None, 1, 7), shards=shards) == []
        live = open_views(ledger.settings)
        rebuilt = h.rebuilt_views(ledger, tmp_path)
        try:
            rows = live.con.execute("SELECT count(*) FROM version_states").fetchone()[0]
            assert rows > 40 and diff(live, rebuilt) == []
            live.con.execute("DELETE FROM version_states WHERE valid_from = (SELECT max(valid_from) FROM "
                             "version_states)")
            assert diff(live, rebuilt), "index verify compares the history tables"
        finally:
            live.close()
            discard(rebuilt)
    finally:
        ledger.close()
    r = t.skills(journal, "index", "verify", "--json")
    assert r.exit_code == 9
    assert t.skills(journal, "index", "rebuild").exit_code == 0
    assert t.skills(journal, "index", "verify").exit_code == 0


def test_a_version_12_views_db_gains_the_history_in_place(journal: Path, tmp_path: Path) -> None:
    """Schema 13 adds the history tables empty; the next catch-up folds the journal into them
    alone (the other tables are kept, not replayed), and the result equals a rebuild."""
    home = tmp_path / "home"
    shutil.copytree(journal, home)
    ledger = h.ledger_for(home)
    try:
        h.catch_up(ledger)
        path = ledger.settings.views_path
        con = sqlite3.connect(path, isolation_level=None)
        con.execute("DROP TABLE version_facts")
        con.execute("DROP TABLE version_states")
        con.execute("DELETE FROM positions WHERE projection = 'history'")
        con.execute("UPDATE meta SET value = '12' WHERE key = 'schema_version'")
        con.execute("UPDATE timeline SET summary = 'kept, not replayed' WHERE position = 1")
        con.close()
        notes: list[str] = []
        store = open_views(ledger.settings, notify=notes.append)
        try:
            assert notes == [f"notice: views database {path} upgraded from schema version 12 to 13"]
            assert store.positions()["history"] == store.position() == ledger.head()
            assert store.con.execute("SELECT summary FROM timeline WHERE position = 1").fetchone()[0] == (
                "kept, not replayed")
        finally:
            store.close()
        rebuilt = h.rebuilt_views(ledger, tmp_path)
        live = open_views(ledger.settings)
        try:
            for table in ("version_facts", "version_states"):
                assert list(live.table_rows(table)) == list(rebuilt.table_rows(table))
                assert list(live.table_rows(table))
        finally:
            live.close()
            discard(rebuilt)
    finally:
        ledger.close()
