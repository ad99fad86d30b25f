"""The projection store: self-healing views.db, rebuild equals catch-up, as-of replay, queries."""

import sqlite3
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import builders as b  # noqa: E402

from skill_ledger.adapters.readmodel.views import discard, open_views, scratch, views_as_of  # noqa: E402
from skill_ledger.projections.asof import resolve_when  # noqa: E402
from skill_ledger.adapters.usecases import lifecycle  # noqa: E402
from skill_ledger.adapters.usecases.install import install  # noqa: E402
from skill_ledger.projections import queries  # noqa: E402
from skill_ledger.projections.replay import diff  # noqa: E402
from skill_ledger.projections.store import ViewStore  # noqa: E402


@pytest.fixture
def populated(tmp_path):
    home = tmp_path / "home"
    led = b.ledger(home)
    install(led, b.write(tmp_path, "1.skill", b.artifact(version="1.0.0")), allow_tofu=True)
    install(led, b.write(tmp_path, "2.skill", b.artifact(version="2.0.0")))
    install(led, b.write(tmp_path, "o.skill", b.artifact("acme.other")))
    lifecycle.quarantine(led, "acme.other", None, "look closer")
    lifecycle.rollback(led, "acme.echo", "1.0.0", "regression")
    try:
        install(led, b.write(tmp_path, "bad.skill", b"junk"))
    except Exception:
        pass
    yield led
    led.close()


def open_store(led, notes):
    return open_views(led.settings, notify=notes.append)


def test_catch_up_builds_the_index(populated):
    notes = []
    store = open_store(populated, notes)
    entries = {(e["skill_id"], e["version"]): e for e in queries.list_entries(store.con)}
    assert entries[("acme.echo", "1.0.0")]["current"] and not entries[("acme.echo", "2.0.0")]["current"]
    other = entries[("acme.other", "1.0.0")]
    assert other["status"] == "quarantined" and other["eligibility"] == {"eligible": False, "reasons": ["quarantined"]}
    assert store.position() == populated.head()
    assert [r["error_code"] for r in store.con.execute("SELECT error_code FROM rejections")] == ["zip"]
    assert notes == []


def test_rebuild_equals_incremental_catch_up(populated):
    live = open_store(populated, [])
    fresh = scratch(populated.app.recorder, until=None, directory=populated.settings.home)
    try:
        assert diff(live, fresh) == []
    finally:
        discard(fresh)


@pytest.mark.parametrize("damage", ["delete", "truncate", "garbage", "old-schema", "other-journal"])
def test_damaged_views_db_is_rebuilt_with_a_notice(populated, damage):
    path = populated.settings.views_path
    store = open_store(populated, [])
    before = sorted(queries.list_entries(store.con), key=lambda e: (e["skill_id"], e["version"]))
    store.close()
    if damage == "delete":
        path.unlink()
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "garbage":
        path.write_bytes(b"\x00garbage" * 1000)
    elif damage == "old-schema":
        con = sqlite3.connect(path)
        # a version with no migration to this one (versions 9 and 10 have one: see test_schema_and_migrations)
        con.execute("UPDATE meta SET value=? WHERE key='schema_version'", ("8",))
        con.commit()
        con.close()
    else:
        con = sqlite3.connect(path)
        con.execute("UPDATE meta SET value='someone-else' WHERE key='journal'")
        con.commit()
        con.close()
    if damage in ("truncate", "garbage"):
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    notes = []
    store = open_store(populated, notes)
    after = sorted(queries.list_entries(store.con), key=lambda e: (e["skill_id"], e["version"]))
    assert after == before
    if damage != "delete":
        assert len(notes) == 1 and "rebuilding" in notes[0]


def test_views_ahead_of_the_journal_are_rebuilt(tmp_path, populated):
    store = open_store(populated, [])
    store.con.execute("UPDATE positions SET position = position + 100")
    store.close()
    notes = []
    store = ViewStore(populated.settings.views_path, notify=notes.append)
    store.catch_up(populated.app.recorder)
    assert store.position() == populated.head() and any("ahead" in n for n in notes)


def test_as_of_replays_into_a_scratch_store(populated):
    store = open_store(populated, [])
    position = resolve_when(store.con, "6", "--as-of")
    old = views_as_of(populated.settings, position)
    try:
        entries = queries.list_entries(old.con)
        assert [(e["skill_id"], e["version"], e["status"]) for e in entries] == [("acme.echo", "1.0.0", "active")]
        assert old.position() == 6
    finally:
        discard(old)
    assert resolve_when(store.con, "1999-01-01T00:00:00", "--as-of") == 0
    assert resolve_when(store.con, "2999-01-01T00:00:00Z", "--as-of") == populated.head()
    from skill_ledger.domain.errors import UsageError

    with pytest.raises(UsageError):
        resolve_when(store.con, "yesterday", "--as-of")


def test_info_and_trust_queries(populated):
    store = open_store(populated, [])
    row = queries.version_row(store.con, "acme.echo", None)
    info = queries.info(store.con, row)
    assert info["version"] == "1.0.0" and info["tools"][0]["id"] == "acme.echo"
    assert info["policy_bindings"] == [{"action": "tool.execute", "resource": "tool:acme.echo", "requires_approval": False}]
    assert [a["trigger"] for a in info["audits"]] == ["install"]
    (pub,) = queries.trust_publishers(store.con)
    assert pub["publisher"] == "acme" and pub["keys"][0]["kind"] == "tofu"
