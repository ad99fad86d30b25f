"""The journal on PostgreSQL (``--journal postgresql://...``), end to end.

A private PostgreSQL server is set up and started by this file itself (``pg_server``: initdb
into a temporary directory, a free loopback port, stopped and deleted at the end of the
session); every test gets a fresh database. Without the server binaries the tests fail with
a message that says what to install. Covered:

* the lifecycle through the CLI (install, quarantine, enable, list, history, journal) with
  ``--journal`` and with ``SKILLS_JOURNAL``, gapless positions, and the password never shown;
* ``journal verify``: exit 0 on an intact journal; exit 9 naming the first bad position after
  a superuser disabled the guard and edited an event, and when the guard is left disabled;
* the append-only guard refuses UPDATE, DELETE, TRUNCATE and upserts, even to a superuser;
* a losing concurrent insert leaves neither events, chain rows nor a gap in the positions;
* two CLI processes installing one version at once: one install and one ``already_installed``
  (same payload) or ``version_conflict`` (different payload), on a journal neither created;
* incremental projections equal a full rebuild (whole, and in batches of 1 and 7 events);
* URL handling: percent-encoded credentials, the ``postgres://`` alias, ``schema``, unknown
  parameters refused, the password redacted from errors;
* hash-chain format 2: the database roles the server stamps on every chain row (a client, or a
  superuser skipping triggers, cannot record others; a dropped constraint is reported), a stream
  moved to another originator id is found, a schema-1 journal verifies and migrates, and a
  journal of a newer schema is refused before anything is written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve()
for _p in (str(HERE.parents[2]), str(HERE.parents[1])):
    if _p not in sys.path:
        sys.path.insert(0, _p)


def _cli_at(go: str, args: list[str]) -> None:
    """Subprocess mode: import everything, wait for the start signal, run ``skills ARGS``."""
    from skill_ledger.cli.main import cli

    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            raise SystemExit("start signal never came")
        time.sleep(0.002)
    cli.main(args=args, prog_name="skills")


if __name__ == "__main__":
    if sys.argv[1] == "cli-at":
        _cli_at(sys.argv[2], sys.argv[3:])
    sys.exit(0)


import helpers_ledger as h  # noqa: E402
import msgspec  # noqa: E402
import pg_server  # noqa: E402
import psycopg  # noqa: E402
import pytest  # noqa: E402

from skill_ledger.adapters.journal.sqlite import iter_rows, open_journal  # noqa: E402
from skill_ledger.adapters.journal.verify import verify_journal  # noqa: E402
from skill_ledger.adapters.settings import resolve  # noqa: E402
from skill_ledger.adapters.usecases import lifecycle, trust  # noqa: E402
from skill_ledger.adapters.usecases.install import install as install_artifact  # noqa: E402
from skill_ledger.adapters.usecases.unit_of_work import Ledger  # noqa: E402

TRUSTED = f"acme={h.key_hex(h.SEEDS['acme'])}"


@pytest.fixture(scope="session")
def pg() -> Iterator[pg_server.PgServer]:
    try:
        server = pg_server.start()
    except pg_server.PgUnavailable as e:
        pytest.fail(f"cannot run the PostgreSQL journal tests: {e}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def url(pg: pg_server.PgServer) -> str:
    return pg.url(pg.create_database())


def skills(home: Path, url: str | None, *args: str, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    journal = ["--journal", url] if url else []
    proc = h.run_cli(*journal, *args, home=home, env=env, timeout=60)
    for text in (proc.stdout, proc.stderr):
        assert pg_server.APP_PASSWORD not in text and "p%40ss" not in text, f"password shown by skills {args}"
        assert "Traceback" not in text, text
    return proc


def ok_json(home: Path, url: str | None, *args: str, env: dict[str, str] | None = None) -> dict:
    proc = skills(home, url, "--json", *args, env=env)
    assert proc.returncode == 0, f"skills {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
    return json.loads(proc.stdout)


def settings_for(home: Path, url: str):
    return resolve(home=str(home), journal=url, actor="user:test", command="test")


def install(tmp_path: Path, home: Path, url: str, version: str = "1.0.0") -> dict:
    art = h.write(tmp_path, f"alpha-{version}.palyra-skill", h.build("acme.alpha", version, "acme"))
    return ok_json(home, url, "install", "--artifact", art, "--trusted-publisher", TRUSTED)


# --- the lifecycle through the CLI ----------------------------------------------------------


def test_lifecycle_through_the_cli(tmp_path: Path, url: str) -> None:
    home = tmp_path / "home"
    first = install(tmp_path, home, url)
    assert (first["status"], first["current"], first["already_installed"]) == ("active", True, False)
    quarantined = ok_json(home, url, "quarantine", "acme.alpha", "--reason", "suspicious")
    assert quarantined["status"] == "quarantined"
    listed = ok_json(home, url, "list")
    assert [(e["skill_id"], e["status"]) for e in listed["entries"]] == [("acme.alpha", "quarantined")]
    assert ok_json(home, url, "enable", "acme.alpha", "--reason", "reviewed")["status"] == "active"
    install(tmp_path, home, url, "1.1.0")
    # SKILLS_JOURNAL selects the same journal as --journal
    listed = ok_json(home, None, "list", env=h.cli_env(SKILLS_JOURNAL=url))
    assert sorted((e["version"], e["status"], e["current"]) for e in listed["entries"]) == [
        ("1.0.0", "active", False), ("1.1.0", "active", True)]

    kinds = [e["kind"] for e in ok_json(home, url, "history", "acme.alpha")["events"]]
    assert kinds.count("skill.installed") == 2 and "skill.quarantined" in kinds and "skill.enabled" in kinds
    lines = skills(home, url, "--json", "journal").stdout.splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["position"] for e in events] == list(range(1, len(events) + 1)), "positions are gapless"
    assert events[0]["prev_hash"] == "0" * 64 and all(len(e["hash"]) == 64 for e in events)

    report = ok_json(home, url, "journal", "verify")
    assert (report["ok"], report["guard"], report["events"], report["head"]) == (True, True, len(events), len(events))
    # A signed checkpoint, and its anchor outside the journal, work the same way as on SQLite.
    checkpoint = ok_json(home, url, "journal", "checkpoint")
    assert checkpoint["event_count"] == len(events)
    anchor = json.loads((home / "journal-anchor.json").read_text())
    assert anchor["position"] == len(events) + 1 and len(anchor["hash"]) == 64
    report = ok_json(home, url, "journal", "verify")
    assert (report["ok"], report["checkpoints"]) == (True, 1)
    events = [json.loads(line) for line in skills(home, url, "--json", "journal").stdout.splitlines()]
    assert ok_json(home, url, "index", "verify")["ok"] is True

    # Rebuild equals catch-up: the views the commands caught up one by one against full replays.
    ledger = Ledger(settings_for(home, url))
    try:
        assert h.projection_mismatches(ledger, tmp_path, batches=(None, 1, 7)) == []
        assert h.state_problems(ledger) == []
    finally:
        ledger.close()
    rebuilt = ok_json(home, url, "index", "rebuild")
    assert rebuilt == {"replayed": len(events), "position": len(events)}


def test_sharded_rebuild_on_postgres(tmp_path: Path, url: str) -> None:
    """The recorder's shard filter in SQL agrees with ``in_shard``, and a rebuild sharded
    between worker processes (the URL, password included, reaches them through the
    environment) equals a rebuild in one process."""
    from skill_ledger.adapters.readmodel.rebuild import SubprocessShards
    from skill_ledger.projections.shards import Shard, in_shard

    home = tmp_path / "home"
    ledger = Ledger(settings_for(home, url))
    try:
        for i, skill_id in enumerate(["acme.alpha", "acme.beta", "acme.echo", "acme.other", "acme.g5"]):
            install_artifact(ledger, f"/a/{skill_id}", data=h.build(skill_id, "1.0.0", "acme"), allow_tofu=i == 0)
            lifecycle.quarantine(ledger, skill_id, None, "check")
        trust.revoke(ledger, "acme", h.key_hex(h.SEEDS["acme"]), "compromised")
        recorder = ledger.app.recorder
        everything = {r.position: r for r in iter_rows(ledger.app)}
        for count in (2, 3):
            seen: list[int] = []
            for k in range(count):
                rows = recorder.select_event_rows(0, 10_000, None, event_filter=Shard(k, count).event_filter())
                expected = [p for p, r in everything.items() if in_shard(r.topic, r.originator_id, Shard(k, count))]
                assert [r[0] for r in rows] == expected
                seen += [p for p in expected if everything[p].topic.startswith("skill.")]
            assert sorted(seen) == sorted(p for p, r in everything.items() if r.topic.startswith("skill."))
        h.catch_up(ledger)
        one = h.rebuilt_views(ledger, tmp_path)
        from skill_ledger.adapters.readmodel.rebuild import rebuild_views
        from skill_ledger.adapters.readmodel.views import discard, journal_identity
        from skill_ledger.projections.replay import diff
        from skill_ledger.projections.store import ViewStore

        notes: list[str] = []
        sharded = ViewStore(tmp_path / "sharded.db", journal_identity=journal_identity(ledger), notify=notes.append)
        rebuild_views(sharded, recorder, shards=SubprocessShards(settings_for(home, url), 3), min_events=0)
        try:
            assert notes == []
            assert diff(one, sharded) == [] and sharded.positions() == one.positions()
        finally:
            discard(one)
            discard(sharded)
        # a worker that cannot reach the journal: the rebuild falls back, and no password is shown
        scheme, rest = url.split("://", 1)
        credentials, where = rest.rsplit("@", 1)
        bad = f"{scheme}://{credentials.split(':', 1)[0]}:wrong-password@{where}"
        assert bad != url
        fallback = ViewStore(tmp_path / "fallback.db", journal_identity=journal_identity(ledger), notify=notes.append)
        rebuild_views(fallback, recorder, shards=SubprocessShards(settings_for(home, bad), 2), min_events=0)
        try:
            assert len(notes) == 1 and "rebuilding in one process" in notes[0], notes
            assert "wrong-password" not in notes[0] and pg_server.APP_PASSWORD not in notes[0]
            assert fallback.position() == ledger.head()
        finally:
            discard(fallback)
    finally:
        ledger.close()


# --- tamper detection and the guard ---------------------------------------------------------


def _edit_event(pg: pg_server.PgServer, dbname: str, position: int, *, reenable: bool) -> None:
    """What an attacker with superuser rights can do: switch the guard off, rewrite an event."""
    with pg.superuser(dbname) as con:
        con.execute("ALTER TABLE stored_events DISABLE TRIGGER stored_events_no_update")
        changed = con.execute(
            "UPDATE stored_events SET state = convert_to(replace(convert_from(state, 'UTF8'), "
            "'\"1.0.0\"', '\"6.6.6\"'), 'UTF8') WHERE notification_id = %s", (position,)).rowcount
        assert changed == 1
        if reenable:
            con.execute("ALTER TABLE stored_events ENABLE TRIGGER stored_events_no_update")


@pytest.mark.parametrize("reenable", [True, False], ids=["guard_restored", "guard_left_off"])
def test_verify_detects_an_edited_event(tmp_path: Path, pg: pg_server.PgServer, url: str, reenable: bool) -> None:
    home = tmp_path / "home"
    install(tmp_path, home, url)
    assert skills(home, url, "journal", "verify").returncode == 0
    _edit_event(pg, url.rsplit("/", 1)[1], 4, reenable=reenable)  # 4: skill.installed

    proc = skills(home, url, "--json", "journal", "verify")
    assert proc.returncode == 9, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is False and report["first_bad_position"] == 4
    codes = {(p["position"], p["code"]) for p in report["problems"]}
    assert (4, "hash_mismatch") in codes
    assert report["guard"] is reenable
    assert ((0, "guard_missing") in codes) is not reenable
    assert "journal integrity failure at position 4" in proc.stderr


def test_the_guard_refuses_updates_deletes_and_truncates(tmp_path: Path, pg: pg_server.PgServer, url: str) -> None:
    install(tmp_path, tmp_path / "home", url)
    dbname = url.rsplit("/", 1)[1]
    statements = {
        "stored_events": ["UPDATE stored_events SET topic = 'x' WHERE notification_id = 1",
                          "DELETE FROM stored_events WHERE notification_id = 6",
                          "TRUNCATE stored_events CASCADE",
                          "INSERT INTO stored_events (originator_id, originator_version, topic, state, notification_id) "
                          "SELECT originator_id, originator_version, 'x', state, 99 FROM stored_events "
                          "WHERE notification_id = 1 ON CONFLICT (originator_id, originator_version) DO UPDATE SET topic = 'x'"],
        "event_chain": ["UPDATE event_chain SET hash = 'x' WHERE position = 1",
                        "DELETE FROM event_chain WHERE position = 6",
                        "TRUNCATE event_chain"],
    }
    # The owner (the journal's own login) and a superuser alike.
    for connect in (lambda: psycopg.connect(url, autocommit=True), lambda: pg.superuser(dbname)):
        with connect() as con:
            for table, sqls in statements.items():
                for sql in sqls:
                    with pytest.raises(psycopg.errors.RaiseException, match="journal is append-only"):
                        con.execute(sql)
            counts = con.execute("SELECT (SELECT count(*) FROM stored_events), (SELECT count(*) FROM event_chain)").fetchone()
            assert counts == (6, 6)
    app = open_journal(url, create=False)
    try:
        assert verify_journal(app).ok
    finally:
        app.close()


def test_a_losing_insert_leaves_no_trace_and_no_gap(tmp_path: Path, url: str) -> None:
    """A stale writer's insert fails as a whole (no event, no chain row) and consumes no
    position: the next event gets the next number (events.md: positions are gapless)."""
    from eventsourcing.persistence import IntegrityError, StoredEvent

    from skill_ledger.domain.codec import canonical_state
    from skill_ledger.domain.events import stream_uuid

    install(tmp_path, tmp_path / "home", url)
    app = open_journal(url)
    try:
        recorder = app.recorder
        existing = next(iter_rows(app, after=5))  # position 6, the skill stream's version 5
        stream = existing.originator_id
        stale = [StoredEvent(originator_id=stream, originator_version=v, topic=existing.topic, state=existing.state)
                 for v in (6, 5)]  # one new version and one taken: the whole batch must fail
        with pytest.raises(IntegrityError):
            recorder.insert_events(stale)
        assert recorder.max_notification_id() == 6
        assert [r.position for r in iter_rows(app)] == [1, 2, 3, 4, 5, 6]
        # A new stream: its id is the name-based UUID of its name (journal verify checks that).
        state = msgspec.json.decode(existing.state)
        state["stream"] = "skill:acme.fresh"
        fresh = StoredEvent(originator_id=stream_uuid(state["stream"]), originator_version=1, topic=existing.topic,
                            state=canonical_state(msgspec.json.encode(state)))
        assert list(recorder.insert_events([fresh])) == [7]
        report = verify_journal(app)
        assert report.ok and report.events == 7 and report.head == 7, report
    finally:
        app.close()


# --- concurrency ----------------------------------------------------------------------------


def _race(commands: list[list[str]], go: Path) -> list[tuple[int, dict, str]]:
    procs = [subprocess.Popen([h.PYTHON, str(HERE), "cli-at", str(go), *c], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=h.cli_env(), cwd=str(h.ROOT)) for c in commands]
    try:
        for p in procs:
            line = p.stdout.readline()
            assert line.strip() == "ready", line + p.stderr.read()
        go.touch()
        out = []
        for p in procs:
            stdout, stderr = p.communicate(timeout=60)
            assert "Traceback" not in stderr, stderr
            assert pg_server.APP_PASSWORD not in stdout + stderr
            out.append((p.returncode, json.loads(stdout), stderr))
        return out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.mark.parametrize("same_payload", [True, False], ids=["same_payload", "different_payload"])
def test_two_installs_of_one_version_race(tmp_path: Path, url: str, same_payload: bool) -> None:
    """Two homes, one PostgreSQL journal that neither has created yet: both processes create
    the schema and install the same version at the same moment."""
    first = h.write(tmp_path, "a.palyra-skill", h.build("acme.alpha", "1.0.0", "acme"))
    second = h.write(tmp_path, "b.palyra-skill", h.build("acme.alpha", "1.0.0", "acme",
                                                         asset=b"hello" if same_payload else b"another payload"))
    results = _race([["--home", str(tmp_path / f"h{i}"), "--journal", url, "--json", "--actor", f"user:p{i}",
                      "install", "--artifact", art, "--trusted-publisher", TRUSTED]
                     for i, art in enumerate([first, second])], tmp_path / "go")
    rcs = sorted(rc for rc, _d, _e in results)
    if same_payload:
        assert rcs == [0, 0], results
        assert sorted(d["already_installed"] for _rc, d, _e in results) == [False, True], results
    else:
        assert rcs == [0, 3], results
        loser = next(d for rc, d, _e in results if rc == 3)
        assert loser["error"]["code"] == "version_conflict"
    ledger = Ledger(settings_for(tmp_path / "h0", url))
    try:
        events = h.journal_events(ledger)
        kinds = [e["kind"] for e in events]
        assert kinds.count("skill.installed") == 1 and kinds.count("publisher.key_allowlisted") == 1
        assert [e["position"] for e in events] == list(range(1, len(events) + 1))
        assert verify_journal(ledger.app).ok
        winner = next(d for rc, d, _e in results if rc == 0 and not d["already_installed"])
        assert set(winner["positions"]) <= {e["position"] for e in events}
    finally:
        ledger.close()


# --- URLs, schemas, errors ------------------------------------------------------------------


def test_urls_schemas_and_redacted_errors(tmp_path: Path, pg: pg_server.PgServer, url: str) -> None:
    from skill_ledger.adapters.journal.postgres import PgTarget, postgres_env
    from skill_ledger.adapters.settings import normalise_journal_url
    from skill_ledger.domain.errors import ConfigurationError

    target = PgTarget(url)
    assert (target.user, target.password, target.host, target.port) == (
        pg_server.APP_USER, pg_server.APP_PASSWORD, "127.0.0.1", pg.port)
    assert pg_server.APP_PASSWORD not in target.display and "p%40ss" not in repr(target)
    assert normalise_journal_url("postgres://u@h/db") == "postgresql://u@h/db"
    env = postgres_env(url)
    assert env["LEDGER_POSTGRES_SCHEMA"] == "public" and env["LEDGER_PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    with pytest.raises(ConfigurationError) as e:
        PgTarget(url + "?sslmode=disable")
    assert pg_server.APP_PASSWORD not in str(e.value.message) + str(e.value.details)

    # Two journals in one database, one per schema.
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    install(tmp_path, home_a, url + "?schema=team_a")
    assert ok_json(home_b, url + "?schema=team_b", "list")["entries"] == []
    assert ok_json(home_a, url + "?schema=team_a", "journal", "verify")["events"] == 6
    assert ok_json(home_b, url + "?schema=team_b", "journal", "verify")["events"] == 0
    # verify on a database (schema) without a journal yet: an empty journal, as for a new SQLite path
    report = ok_json(tmp_path / "d", url + "?schema=team_c", "journal", "verify")
    assert (report["ok"], report["events"], report["guard"]) == (True, 0, True)

    # A refused login: the server's reason, at once, without the password that was tried.
    wrong = url.replace("%40ss", "%40WRONG")
    started = time.monotonic()
    proc = skills(tmp_path / "c", wrong, "list")
    assert proc.returncode == 9 and "password authentication failed" in proc.stderr, proc.stderr
    assert "@WRONG" not in proc.stderr and "%40WRONG" not in proc.stderr
    assert time.monotonic() - started < 8


# --- every stored column bound; who wrote it; journal_meta ----------------------------------

FIXTURE_V1 = HERE.parents[1] / "adapters" / "fixtures" / "journal_chain_v1.sql"


def exported(home: Path, url: str) -> list[dict]:
    return [json.loads(line) for line in skills(home, url, "--json", "journal").stdout.splitlines()]


def test_every_event_records_the_database_role_stamped_by_the_server(tmp_path: Path, url: str) -> None:
    home = tmp_path / "home"
    install(tmp_path, home, url)
    events = exported(home, url)
    assert {json.dumps(e["db_role"]) for e in events} == {json.dumps({"session_user": pg_server.APP_USER,
                                                                      "current_user": pg_server.APP_USER})}
    assert all(e["chain"] == 2 and e["actor"]["os_uid"] == os.geteuid() for e in events)
    assert ok_json(home, url, "journal", "verify")["ok"] is True


def test_a_client_cannot_record_another_role(tmp_path: Path, pg: pg_server.PgServer, url: str) -> None:
    """The roles come from the server (column defaults) and a CHECK constraint holds them to the
    inserting session's: an explicit other value is refused, for the journal's own login and for a
    superuser whose session skips triggers (``session_replication_role = replica``) alike."""
    install(tmp_path, tmp_path / "home", url)
    forged = ("INSERT INTO event_chain (position, originator_id, originator_version, prev_hash, hash, format, "
              "db_session_user, db_current_user) SELECT 99, originator_id, 99, hash, hash, 2, %s, %s "
              "FROM event_chain WHERE position = 6")
    with psycopg.connect(url, autocommit=True) as con:
        with pytest.raises(psycopg.errors.CheckViolation, match="event_chain_stamped"):
            con.execute(forged, ("postgres", "postgres"))
        with pytest.raises(psycopg.errors.CheckViolation):  # no chain row in the old format either
            con.execute(forged.replace(", 2, %s", ", 1, %s"), (pg_server.APP_USER, pg_server.APP_USER))
    with pg.superuser(url.rsplit("/", 1)[1]) as con:
        con.execute("SET session_replication_role = replica")
        with pytest.raises(psycopg.errors.CheckViolation):
            con.execute(forged, (pg_server.APP_USER, pg_server.APP_USER))


def test_a_dropped_stamp_constraint_is_reported(tmp_path: Path, pg: pg_server.PgServer, url: str) -> None:
    home = tmp_path / "home"
    install(tmp_path, home, url)
    with pg.superuser(url.rsplit("/", 1)[1]) as con:
        con.execute("ALTER TABLE event_chain DROP CONSTRAINT event_chain_stamped")
    proc = skills(home, url, "--json", "journal", "verify")
    assert proc.returncode == 9
    report = json.loads(proc.stdout)
    assert report["guard"] is False and report["first_bad_position"] == 0


def test_moving_a_stream_to_another_originator_id_is_detected_on_postgres(tmp_path: Path, pg: pg_server.PgServer,
                                                                          url: str) -> None:
    from skill_ledger.domain.events import stream_uuid

    home = tmp_path / "home"
    install(tmp_path, home, url)
    moved, to = str(stream_uuid("skill:acme.alpha")), str(uuid.uuid4())
    with pg.superuser(url.rsplit("/", 1)[1]) as con:
        con.execute("SET session_replication_role = replica")  # the guard's triggers do not fire
        con.execute("UPDATE stored_events SET originator_id = %s WHERE originator_id = %s", (to, moved))
        # A chain row can only be changed together with the roles that wrote it (the stamp's CHECK).
        con.execute("UPDATE event_chain SET originator_id = %s, db_session_user = session_user, "
                    "db_current_user = current_user WHERE originator_id = %s", (to, moved))
    proc = skills(home, url, "--json", "journal", "verify")
    assert proc.returncode == 9
    report = json.loads(proc.stdout)
    assert report["first_bad_position"] == 2  # the skill stream's first event (1 is the publisher's pin)
    assert {p["code"] for p in report["problems"] if p["position"] == 2} == {"originator_mismatch", "hash_mismatch"}


def _schema_1_journal(pg: pg_server.PgServer, url: str) -> None:
    """The journal of the first release, on PostgreSQL: this version's tables taken back to journal
    schema 1 (no chain format, no stamped roles), holding the rows the first release wrote
    (``fixtures/journal_chain_v1.sql``, the same rows on either backend)."""
    import sqlite3

    open_journal(url).close()  # tables, guards and metadata of an empty journal
    source = sqlite3.connect(":memory:")
    source.executescript(FIXTURE_V1.read_text())
    events = source.execute("SELECT rowid, originator_id, originator_version, topic, state FROM stored_events").fetchall()
    chain = source.execute("SELECT * FROM event_chain").fetchall()
    source.close()
    with pg.superuser(url.rsplit("/", 1)[1]) as con:
        con.execute("ALTER TABLE event_chain DROP CONSTRAINT event_chain_stamped, DROP COLUMN format, "
                    "DROP COLUMN db_session_user, DROP COLUMN db_current_user")
        con.execute("UPDATE journal_meta SET value = '1' WHERE key = 'schema_version'")
        with con.cursor() as cur:
            cur.executemany("INSERT INTO stored_events (notification_id, originator_id, originator_version, topic, "
                            "state) VALUES (%s, %s::uuid, %s, %s, %s)", [(*e[:4], bytes(e[4])) for e in events])
            cur.executemany("INSERT INTO event_chain VALUES (%s, %s::uuid, %s, %s, %s)", chain)


def test_a_schema_1_journal_verifies_and_migrates_on_postgres(tmp_path: Path, pg: pg_server.PgServer, url: str) -> None:
    home = tmp_path / "home"
    _schema_1_journal(pg, url)
    report = ok_json(home, url, "journal", "verify")
    assert (report["ok"], report["events"]) == (True, 18)
    before = exported(home, url)
    assert all("chain" not in e and "db_role" not in e for e in before)

    ok_json(home, url, "quarantine", "acme.alpha", "--reason", "after the upgrade")  # migrates, then appends
    after = exported(home, url)
    assert after[:18] == before
    assert after[18]["chain"] == 2 and after[18]["db_role"]["session_user"] == pg_server.APP_USER
    report = ok_json(home, url, "journal", "verify")
    assert (report["ok"], report["events"], report["guard"]) == (True, 19, True)
    with pg.superuser(url.rsplit("/", 1)[1]) as con:
        assert con.execute("SELECT value FROM journal_meta WHERE key = 'schema_version'").fetchone() == ("2",)
        # Not validated against the old rows (they have no roles), enforced on every new one.
        assert con.execute("SELECT convalidated FROM pg_constraint WHERE conname = 'event_chain_stamped'"
                           ).fetchone() == (False,)
        assert con.execute("SELECT count(*) FROM event_chain WHERE format = 1").fetchone() == (18,)
        # The old rows do not claim a role: nobody recorded who wrote them.
        assert con.execute("SELECT count(*) FROM event_chain WHERE db_session_user IS NULL "
                           "AND db_current_user IS NULL").fetchone() == (18,)


def test_a_journal_from_a_newer_version_is_refused_on_postgres(tmp_path: Path, pg: pg_server.PgServer,
                                                               url: str) -> None:
    home = tmp_path / "home"
    install(tmp_path, home, url)
    dbname = url.rsplit("/", 1)[1]
    with pg.superuser(dbname) as con:
        con.execute("UPDATE journal_meta SET value = '3' WHERE key = 'schema_version'")
        con.execute("ALTER TABLE event_chain DROP CONSTRAINT event_chain_stamped")  # a newer version's choice
    for args in (["list"], ["journal", "verify"], ["quarantine", "acme.alpha", "--reason", "x"], ["journal"]):
        proc = skills(home, url, *args)
        assert proc.returncode == 9, (args, proc.stderr)
        assert "error[journal_unsupported]" in proc.stderr and "schema '3'" in proc.stderr, proc.stderr
    with pg.superuser(dbname) as con:
        assert con.execute("SELECT count(*) FROM stored_events").fetchone() == (6,)
        assert con.execute("SELECT count(*) FROM pg_constraint WHERE conname = 'event_chain_stamped'").fetchone() == (0,)


def test_views_ahead_of_a_truncated_journal_are_reported_on_postgres(tmp_path: Path, pg: pg_server.PgServer,
                                                                      url: str) -> None:
    """The journal loses its last events (a superuser skipping the guard); the home's views still
    hold them: reported (exit 9), and the views are left as they are."""
    home = tmp_path / "home"
    install(tmp_path, home, url)
    ok_json(home, url, "quarantine", "acme.alpha", "--reason", "to be cut off")  # position 7
    views = (home / "views.db").read_bytes()
    with pg.superuser(url.rsplit("/", 1)[1]) as con:
        con.execute("SET session_replication_role = replica")
        con.execute("DELETE FROM event_chain WHERE position = 7")
        con.execute("DELETE FROM stored_events WHERE notification_id = 7")
    proc = skills(home, url, "list")
    assert proc.returncode == 9, proc.stderr
    assert "error[journal_truncated]" in proc.stderr and "position 7" in proc.stderr and "position 6" in proc.stderr
    assert (home / "views.db").read_bytes() == views


def test_reads_by_kind_use_the_topic_index_and_a_journal_without_it_gains_it(tmp_path: Path, pg: pg_server.PgServer,
                                                                               url: str) -> None:
    home = tmp_path / "home"
    install(tmp_path, home, url)
    dbname = url.rsplit("/", 1)[1]
    with pg.superuser(dbname) as con:
        assert con.execute("SELECT to_regclass('stored_events_topic') IS NOT NULL").fetchone()[0]
        con.execute("DROP INDEX stored_events_topic")  # a journal written before the index existed
    assert ok_json(home, url, "list")["entries"]  # a command opens the journal
    with pg.superuser(dbname) as con:
        assert con.execute("SELECT to_regclass('stored_events_topic') IS NOT NULL").fetchone()[0]
