"""The transparency-log journal on PostgreSQL (issue 14): the stored tree and its guard,
checkpoints, proofs for every position, consistency between every pair of checkpoints,
``verify --since-checkpoint``, failing closed, evidence bundles, and ``list/info --as-of``
equal to a replay at every position, against a private server (``tests/pg_server.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve()
for _p in (str(HERE.parents[2]), str(HERE.parents[1])):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import helpers_ledger as h
import pg_server
import psycopg
import pytest
import tlog_helpers as t

from skill_ledger.adapters.journal.sqlite import iter_rows
from skill_ledger.adapters.journal.tree import JournalTree
from skill_ledger.adapters.readmodel.views import discard, open_views, views_as_of
from skill_ledger.adapters.settings import resolve
from skill_ledger.adapters.usecases import lifecycle, trust
from skill_ledger.adapters.usecases.checkpoints import record_checkpoint
from skill_ledger.adapters.usecases.install import install
from skill_ledger.adapters.usecases.unit_of_work import Ledger
from skill_ledger.domain.merkle import events_root
from skill_ledger.projections.asof import shadow, unshadow
from skill_ledger.projections.queries import info, list_entries, version_row

SCRIPT = HERE.parents[2] / "docs" / "verify_bundle.py"


@pytest.fixture(scope="module")
def pg() -> Iterator[pg_server.PgServer]:
    try:
        server = pg_server.start()
    except pg_server.PgUnavailable as e:
        pytest.fail(f"cannot run the PostgreSQL journal tests: {e}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def journal(pg: pg_server.PgServer, tmp_path_factory: pytest.TempPathFactory) -> dict:
    dbname = pg.create_database()
    url = pg.url(dbname)
    home = tmp_path_factory.mktemp("pg-tlog") / "home"
    settings = resolve(home=str(home), journal=url, actor="user:test", command="test")
    ledger = Ledger(settings)
    checkpoints = []
    try:
        for i, sid in enumerate(("acme.alpha", "acme.beta", "globex.gamma")):
            pub = sid.split(".")[0]
            install(ledger, f"/{sid}", data=h.build(sid, "1.0.0", pub), allow_tofu=True)
            install(ledger, f"/{sid}/2", data=h.build(sid, "2.0.0", pub), allow_tofu=True)
            lifecycle.quarantine(ledger, sid, None, f"look {i}")
            if i == 1:
                checkpoints.append(record_checkpoint(ledger))
        lifecycle.enable(ledger, "acme.beta", None, "checked")
        trust.revoke(ledger, "globex", h.key_hex(h.SEEDS["globex"]), "leaked")
        checkpoints.append(record_checkpoint(ledger))
        lifecycle.rollback(ledger, "acme.alpha", None, "back")
        checkpoints.append(record_checkpoint(ledger))
        lifecycle.remove(ledger, "acme.alpha", "2.0.0", "gone")
    finally:
        ledger.close()
    key = home.parent / "journal.vkey"
    key.write_text(checkpoints[-1]["verifier_key"])
    return {"url": url, "home": home, "settings": settings, "checkpoints": checkpoints, "key": key, "pg": pg,
            "dbname": dbname}


def skills(j: dict, *args: str, input: str | None = None):
    return t.skills(j["home"], "--journal", j["url"], *args, input=input)


def test_the_tree_is_stored_and_guarded_on_postgres(journal: dict) -> None:
    ledger = Ledger(journal["settings"])
    tree = JournalTree(ledger.app)
    try:
        hashes = [bytes.fromhex(r.hash) for r in iter_rows(ledger.app)]
        tree.extend(len(hashes))
        for size in range(1, len(hashes) + 1):
            assert tree.root(size) == events_root(hashes[:size])
        assert tree.guard_present() is True
    finally:
        tree.close()
        ledger.close()
    with journal["pg"].superuser(journal["dbname"]) as con:  # refused even to a superuser
        for statement in ("UPDATE merkle_nodes SET hash = hash", "DELETE FROM merkle_tree", "TRUNCATE merkle_nodes"):
            with pytest.raises(psycopg.Error, match="append-only"):
                con.execute(statement)


def test_checkpoints_verify_in_full_and_since_the_newest(journal: dict) -> None:
    for args in ((), ("--since-checkpoint",)):
        r = skills(journal, "journal", "verify", "--json", *args)
        assert r.exit_code == 0, r.stdout + r.stderr
        doc = json.loads(r.stdout)
        assert doc["checkpoints"] == 3 and doc["tree_size"] == doc["head"]


def test_every_position_proves_and_every_pair_is_consistent(journal: dict) -> None:
    nohome = journal["home"].parent / "nohome"
    sizes = [c["tree_size"] for c in journal["checkpoints"]]
    for position in range(1, sizes[-1] + 1):
        r = skills(journal, "journal", "prove", str(position))
        assert r.exit_code == 0, r.stderr
        v = t.skills(nohome, "journal", "verify-proof", "-", "--public-key", str(journal["key"]), input=r.stdout)
        assert v.exit_code == 0, v.stderr
    for i, old in enumerate(sizes):
        for new in sizes[i:]:
            r = skills(journal, "journal", "consistency", str(old), str(new))
            assert r.exit_code == 0, r.stderr
            v = t.skills(nohome, "journal", "verify-proof", "-", "--public-key", str(journal["key"]), input=r.stdout)
            assert v.exit_code == 0, v.stderr
    assert not nohome.exists()


def test_a_bundle_round_trips_and_the_key_is_required(journal: dict, tmp_path: Path) -> None:
    for name, args in (("whole", ()), ("part", ("--since", "5", "--until", "12"))):
        out = tmp_path / f"{name}.ndjson"
        r = skills(journal, "journal", "export", "--output", str(out), *args)
        assert r.exit_code == 0, r.stderr
        v = t.skills(tmp_path / "nohome", "journal", "verify", "--bundle", str(out), "--public-key",
                     str(journal["key"]))
        assert v.exit_code == 0, v.stdout + v.stderr
        proc = subprocess.run([sys.executable, str(SCRIPT), str(out), "--public-key", str(journal["key"])],
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    copy = tmp_path / "copy-home"
    copy.mkdir()
    (copy / "journal-anchor.json").write_bytes((journal["home"] / "journal-anchor.json").read_bytes())
    r = t.skills(copy, "--journal", journal["url"], "journal", "verify", "--json")
    assert r.exit_code == 9 and {p["code"] for p in json.loads(r.stdout)["problems"]} == {"checkpoint_key_missing"}
    r = t.skills(copy, "--journal", journal["url"], "journal", "verify", "--public-key", str(journal["key"]))
    assert r.exit_code == 0, r.stdout


def test_as_of_equals_a_replay_at_every_position_on_postgres(journal: dict) -> None:
    settings = journal["settings"]
    store = open_views(settings)
    try:
        for position in range(store.position() + 1):
            replayed = views_as_of(settings, position)
            try:
                expected = _answers(replayed.con)
            finally:
                discard(replayed)
            shadow(store.con, position)
            try:
                assert _answers(store.con) == expected, position
            finally:
                unshadow(store.con)
    finally:
        store.close()


def _answers(con) -> dict:
    out = {"list": list_entries(con)}
    for skill_id, version in con.execute("SELECT skill_id, version FROM versions ORDER BY 1, 2").fetchall():
        out[f"{skill_id} {version}"] = info(con, version_row(con, skill_id, version))
    return out
