"""Attacks on the journal file of a home that the hash chain of the first release let through,
each made with plain SQL on ``journal.db`` (as a local attacker with write access to the home
would) and judged through the CLI (``skills journal verify`` and the commands that read).

* Every stored column is bound (hash-chain format 2, ``domain.codec``): moving a stream to
  another originator id, re-versioning a topic, rewriting the state bytes without changing what
  they decode to, re-pointing a chain row, downgrading a chain entry's format.
* Old journals (format 1, ``fixtures/journal_chain_v1.sql``, written by the first release) still
  verify, and verify recomputes what their hash does not cover (the originator id from the
  stream name, the topic against the registered ones).
* ``skills journal --json`` is enough to recompute every hash (an auditor's script below uses
  only ``json``, ``hashlib`` and ``uuid``).
* ``journal_meta`` from a newer version or another encoding is refused before anything is
  written; views ahead of the journal are reported and left as they are.
* Every event records the operating-system account beside the declared principal.
"""

from __future__ import annotations

import hashlib
import json
import pwd
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import helpers_ledger as h
import pytest

from skill_ledger.adapters.journal.sqlite import guard_statements
from skill_ledger.adapters.usecases import lifecycle
from skill_ledger.adapters.usecases.install import install
from skill_ledger.domain.codec import event_hash, exported_event, originator_text

FIXTURES = Path(__file__).resolve().parents[1] / "adapters" / "fixtures"
LEDGER_NAMESPACE = uuid.UUID("6f1d7f7e-2b55-5a8e-9c33-0f3a5d6c2b11")  # events.md: stream ids are uuid5(ns, name)


# --- homes ---------------------------------------------------------------------------------


def populate(home: Path) -> None:
    """A home written by this version: two installs, a quarantine, an enable (16 events), with
    the views caught up."""
    ledger = h.ledger_for(home)
    try:
        install(ledger, "/a", data=h.build("acme.alpha", "1.0.0", "acme"), allow_tofu=True)
        install(ledger, "/g", data=h.build("globex.gamma", "1.0.0", "globex"), allow_tofu=True)
        lifecycle.quarantine(ledger, "acme.alpha", None, "test quarantine")
        lifecycle.enable(ledger, "acme.alpha", None, "test enable")
        h.catch_up(ledger)
    finally:
        ledger.close()


def old_home(home: Path) -> Path:
    """A home holding only the journal the first release wrote (journal schema 1, chain format 1)."""
    home.mkdir(parents=True)
    con = sqlite3.connect(home / "journal.db")
    con.executescript((FIXTURES / "journal_chain_v1.sql").read_text())
    con.close()
    return home


@pytest.fixture
def new_home(home: Path) -> Path:
    populate(home)
    return home


def raw(home: Path) -> sqlite3.Connection:
    con = sqlite3.connect(home / "journal.db", isolation_level=None)
    for table in ("stored_events", "event_chain"):
        for op in ("update", "delete", "replace"):
            con.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
    return con


def close_tampered(con: sqlite3.Connection) -> None:
    """Put the guard back (an intruder covering their tracks)."""
    for statement in guard_statements():
        con.execute(statement)
    con.close()


def cli(home: Path, *args: str) -> tuple[int, str, str]:
    proc = h.run_cli(*args, home=home)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


def verify(home: Path) -> tuple[int, dict[str, Any], str]:
    rc, out, err = cli(home, "--json", "journal", "verify")
    return rc, json.loads(out), err


def problems_at(doc: dict[str, Any], position: int) -> set[str]:
    return {p["code"] for p in doc["problems"] if p["position"] == position}


def export(home: Path) -> list[dict[str, Any]]:
    rc, out, err = cli(home, "--json", "journal")
    assert rc == 0, err
    return [json.loads(line) for line in out.splitlines()]


def stream_rows(con: sqlite3.Connection, stream: str) -> list[tuple[int, str]]:
    oid = uuid.uuid5(LEDGER_NAMESPACE, stream).hex
    return con.execute("SELECT rowid, topic FROM stored_events WHERE originator_id = ? ORDER BY rowid",
                       (oid,)).fetchall()


def rechain_stream(con: sqlite3.Connection, oid: str) -> None:
    """Recompute every hash of one stream with the public recipe of each row's format (an attacker
    who knows it and has no checkpoint to fear)."""
    prev = "0" * 64
    for position, version, topic, state, fmt in con.execute(
            "SELECT e.rowid, e.originator_version, e.topic, e.state, c.format FROM stored_events e "
            "JOIN event_chain c ON c.position = e.rowid WHERE e.originator_id = ? ORDER BY e.originator_version",
            (oid,)).fetchall():
        digest = event_hash(exported_event(position, version, topic, json.loads(state), prev, chain=fmt,
                                           originator_id=originator_text(oid)))
        con.execute("UPDATE event_chain SET prev_hash = ?, hash = ? WHERE position = ?", (prev, digest, position))
        prev = digest


# --- every stored column is bound ---------------------------------------------------------


def move_stream(con: sqlite3.Connection, stream: str, *, rechain: bool) -> tuple[int, str]:
    """The attack of the review: every event of ``stream`` (and its chain rows) under another
    originator id. ``rechain``: the attacker also recomputes the stream's hashes for the new id."""
    old = uuid.uuid5(LEDGER_NAMESPACE, stream).hex
    new = uuid.uuid4().hex
    first = con.execute("SELECT min(rowid) FROM stored_events WHERE originator_id = ?", (old,)).fetchone()[0]
    con.execute("UPDATE stored_events SET originator_id = ? WHERE originator_id = ?", (new, old))
    con.execute("UPDATE event_chain SET originator_id = ? WHERE originator_id = ?", (new, old))
    if rechain:
        rechain_stream(con, new)
    return first, new


@pytest.mark.parametrize("rechain", [False, True], ids=["hashes_left", "hashes_recomputed"])
def test_moving_a_stream_to_another_originator_id_is_detected(new_home: Path, rechain: bool) -> None:
    """Moved, a skill's stream is one ``quarantine`` calls not_installed and ``reaudit`` skips.
    The format-2 hash covers the originator id; and even with the hashes recomputed for the new
    id, the id is not the name-based UUID of the stream the events name."""
    assert cli(new_home, "journal", "checkpoint")[0] == 0  # under a signed checkpoint, as reviewed
    con = raw(new_home)
    first, _new = move_stream(con, "skill:acme.alpha", rechain=rechain)
    close_tampered(con)
    rc, doc, err = verify(new_home)
    assert rc == 9, doc
    assert doc["first_bad_position"] == first
    assert "originator_mismatch" in problems_at(doc, first)
    assert ("hash_mismatch" in problems_at(doc, first)) is not rechain
    assert f"journal integrity failure at position {first}" in err


def test_moving_a_stream_of_an_old_journal_is_detected(home: Path) -> None:
    """Format 1 never hashed the originator id: verify recomputes it from the stream name."""
    old_home(home)
    con = raw(home)
    first, _new = move_stream(con, "skill:acme.alpha", rechain=False)
    close_tampered(con)
    rc, doc, _err = verify(home)
    assert rc == 9 and doc["first_bad_position"] == first
    assert problems_at(doc, first) == {"originator_mismatch"}  # the format-1 hash alone does not see it


@pytest.mark.parametrize("since_checkpoint", [False, True], ids=["full", "since_checkpoint"])
def test_a_stream_version_that_is_not_a_number_is_reported_not_a_crash(new_home: Path, since_checkpoint: bool) -> None:
    """SQLite keeps any type in any column: a text stream version crashed the verifier (exit 1,
    a traceback) on the stream's next event. Now it is a finding at its position, exit 9."""
    if since_checkpoint:
        assert cli(new_home, "journal", "checkpoint")[0] == 0
        assert cli(new_home, "quarantine", "acme.alpha", "--reason", "after the checkpoint")[0] == 0
    con = raw(new_home)
    rows = stream_rows(con, "skill:acme.alpha")
    target = rows[-1][0] if since_checkpoint else rows[1][0]  # since: the event after the checkpoint
    con.execute("UPDATE stored_events SET originator_version = 'two' WHERE rowid = ?", (target,))
    close_tampered(con)
    args = ("--json", "journal", "verify", *(["--since-checkpoint"] if since_checkpoint else []))
    rc, out, err = cli(new_home, *args)
    assert rc == 9, err
    assert "Traceback" not in err
    doc = json.loads(out)
    assert doc["first_bad_position"] <= target
    assert "stream_version_gap" in problems_at(doc, target)


@pytest.mark.parametrize("journal", ["new", "old"])
def test_changing_a_topics_version_suffix_is_detected(home: Path, journal: str) -> None:
    """``skill.quarantined.v1`` -> ``.v2``: the first release verified it and then failed every
    read with "No module named 'skill'". Now verify names it; reads refuse it cleanly."""
    populate(home) if journal == "new" else old_home(home)
    con = raw(home)
    (target,) = [p for p, topic in stream_rows(con, "skill:acme.alpha") if topic == "skill.quarantined.v1"]
    con.execute("UPDATE stored_events SET topic = 'skill.quarantined.v2' WHERE rowid = ?", (target,))
    close_tampered(con)
    (home / "views.db").unlink(missing_ok=True)  # a read must fold the event again
    rc, doc, _err = verify(home)
    assert rc == 9 and doc["first_bad_position"] == target
    expected = {"unknown_topic", "hash_mismatch"} if journal == "new" else {"unknown_topic"}
    assert problems_at(doc, target) == expected
    rc, _out, err = cli(home, "list")
    assert rc == 9 and "error[journal_tampered]" in err and "skill.quarantined.v2" in err
    assert "No module named" not in err


def rewrite_state(con: sqlite3.Connection, position: int, edit) -> None:
    state = con.execute("SELECT state FROM stored_events WHERE rowid = ?", (position,)).fetchone()[0]
    con.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (edit(bytes(state)), position))


@pytest.mark.parametrize("edit", ["whitespace", "member_order", "duplicate_member", "timestamp_form"])
def test_state_bytes_rewritten_to_the_same_meaning_are_detected(new_home: Path, edit: str) -> None:
    """Format 2 binds the stored bytes, not only what they decode to: verify recomputes them."""
    con = raw(new_home)
    (target,) = [p for p, topic in stream_rows(con, "skill:acme.alpha") if topic == "skill.quarantined.v1"]

    def change(state: bytes) -> bytes:
        doc = json.loads(state)
        if edit == "whitespace":
            return json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()
        if edit == "member_order":
            return json.dumps(dict(reversed(list(doc.items()))), separators=(",", ":"), ensure_ascii=False).encode()
        if edit == "duplicate_member":  # decoders keep the last "reason": the same event, other bytes
            return state[:-1] + b',"reason":' + json.dumps(doc["reason"]).encode() + b"}"
        assert doc["timestamp"].endswith("Z")  # the same instant, written the other way
        return state.replace(doc["timestamp"].encode(), (doc["timestamp"][:-1] + "+00:00").encode())

    rewrite_state(con, target, change)
    close_tampered(con)
    rc, doc, _err = verify(new_home)
    assert rc == 9 and doc["first_bad_position"] == target
    assert problems_at(doc, target) == {"state_not_canonical"}


def test_a_member_added_to_a_state_is_detected(new_home: Path) -> None:
    """Format 1 left ``originator_topic`` and ``class_version`` out of the hash; format 2 hashes
    every member but the envelope."""
    con = raw(new_home)
    target = stream_rows(con, "skill:globex.gamma")[-1][0]
    rewrite_state(con, target, lambda s: s[:-1] + b',"class_version":7}')
    close_tampered(con)
    rc, doc, _err = verify(new_home)
    assert rc == 9 and "hash_mismatch" in problems_at(doc, target)


def test_a_chain_row_pointed_at_another_stream_is_detected(new_home: Path) -> None:
    con = raw(new_home)
    target = stream_rows(con, "skill:globex.gamma")[-1][0]
    other = uuid.uuid5(LEDGER_NAMESPACE, "skill:acme.other").hex
    con.execute("UPDATE event_chain SET originator_id = ? WHERE position = ?", (other, target))
    close_tampered(con)
    rc, doc, _err = verify(new_home)
    assert rc == 9 and "chain_entry_mismatch" in problems_at(doc, target)


def test_a_chain_entry_downgraded_to_format_1_is_detected(new_home: Path) -> None:
    """Format 1 does not bind the originator id or the topic's version: an attacker who rewrites
    an entry in it (hash recomputed) to get that freedom back is caught by the order of formats."""
    con = raw(new_home)
    target = stream_rows(con, "skill:acme.alpha")[-1][0]  # the stream's last event: nothing chains on it
    con.execute("UPDATE event_chain SET format = 1 WHERE position = ?", (target,))
    rechain_stream(con, uuid.uuid5(LEDGER_NAMESPACE, "skill:acme.alpha").hex)
    close_tampered(con)
    rc, doc, _err = verify(new_home)
    assert rc == 9 and problems_at(doc, target) == {"chain_format"}


# --- the exported shape is enough to verify ----------------------------------------------


def audit_ndjson(events: list[dict[str, Any]]) -> list[str]:
    """What an auditor checks with ``skills journal --json`` alone: every hash (one rule for both
    formats), every stream's chain and versions, and for format 2 the originator id."""
    problems = []
    heads: dict[str, tuple[int, str]] = {}
    for e in events:
        body = {k: v for k, v in e.items() if k != "hash"}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if hashlib.sha256(text.encode()).hexdigest() != e["hash"]:
            problems.append(f"{e['position']}: hash")
        version, prev = heads.get(e["stream"], (0, "0" * 64))
        if e["prev_hash"] != prev or e["stream_version"] != version + 1:
            problems.append(f"{e['position']}: chain")
        heads[e["stream"]] = (e["stream_version"], e["hash"])
        if e.get("chain") == 2:
            if e["originator_id"] != str(uuid.uuid5(LEDGER_NAMESPACE, e["stream"])):
                problems.append(f"{e['position']}: originator")
            if not e["topic"].startswith(e["kind"] + ".v"):
                problems.append(f"{e['position']}: topic")
    return problems


def test_the_exported_journal_is_self_verifying(new_home: Path) -> None:
    events = export(new_home)
    assert len(events) == 16 and {e["chain"] for e in events} == {2}
    assert audit_ndjson(events) == []
    first = events[0]
    assert list(first) == ["position", "recorded_at", "stream", "stream_version", "originator_id", "kind", "topic",
                           "actor", "data", "chain", "prev_hash", "hash"]
    tampered = [dict(e) for e in events]
    tampered[3]["originator_id"] = str(uuid.uuid4())
    assert audit_ndjson(tampered) == ["4: hash", "4: originator"]


def test_an_old_journal_verifies_migrates_and_stays_self_verifying(home: Path) -> None:
    """The first release's journal verifies as it is (format 1); the first write migrates it to
    journal schema 2 in place; new events are format 2; old and new verify, from the database and
    from the export alike."""
    old_home(home)
    before = export(home)
    assert len(before) == 18 and all("chain" not in e for e in before)
    assert audit_ndjson(before) == []
    assert verify(home)[0] == 0
    rc, _out, err = cli(home, "quarantine", "acme.alpha", "--reason", "after the upgrade")
    assert rc == 0, err
    con = sqlite3.connect(home / "journal.db")
    try:
        assert dict(con.execute("SELECT key, value FROM journal_meta").fetchall())["schema_version"] == "2"
        formats = [r[0] for r in con.execute("SELECT format FROM event_chain ORDER BY position")]
    finally:
        con.close()
    assert formats == [1] * 18 + [2]
    after = export(home)
    assert after[:18] == before  # old events are exported (and hashed) exactly as they were
    assert after[18]["chain"] == 2 and after[18]["stream_version"] == 10
    assert audit_ndjson(after) == []
    rc, doc, err = verify(home)
    assert rc == 0 and doc["events"] == 19, err


# --- journal_meta -------------------------------------------------------------------------


def journal_state(home: Path) -> tuple[Any, ...]:
    con = sqlite3.connect(f"file:{home / 'journal.db'}?mode=ro", uri=True)
    try:
        return (con.execute("SELECT count(*) FROM stored_events").fetchone()[0],
                sorted(con.execute("SELECT key, value FROM journal_meta").fetchall()),
                sorted(con.execute("SELECT name FROM sqlite_master").fetchall()))
    finally:
        con.close()


@pytest.mark.parametrize("key,value", [("schema_version", "99"), ("schema_version", "2b"),
                                       ("encoding", "msgspec-json/9")])
def test_a_journal_from_a_newer_version_is_refused_before_anything_is_written(new_home: Path, key: str,
                                                                               value: str) -> None:
    con = sqlite3.connect(new_home / "journal.db", isolation_level=None)
    con.execute("UPDATE journal_meta SET value = ? WHERE key = ?", (value, key))
    con.execute("DROP TRIGGER stored_events_no_delete")  # something this version would re-create
    con.close()
    before = journal_state(new_home)
    artifact = h.write(new_home.parent, "beta.palyra-skill", h.build("acme.beta", "1.0.0", "acme"))
    for args in (["list"], ["journal"], ["journal", "verify"], ["quarantine", "acme.alpha", "--reason", "x"],
                 ["install", "--artifact", artifact, "--allow-tofu"], ["trust", "list"]):
        rc, _out, err = cli(new_home, *args)
        assert rc == 9, (args, err)
        assert "error[journal_unsupported]" in err and value in err, err
    assert journal_state(new_home) == before


# --- views ahead of the journal -----------------------------------------------------------


def views_rows(home: Path) -> tuple[Any, ...]:
    con = sqlite3.connect(f"file:{home / 'views.db'}?mode=ro", uri=True)
    try:
        return (sorted(con.execute("SELECT projection, position FROM positions").fetchall()),
                sorted(map(tuple, con.execute("SELECT skill_id, version, status FROM versions").fetchall())))
    finally:
        con.close()


def test_views_ahead_of_a_truncated_journal_are_reported_and_kept(new_home: Path) -> None:
    """The last four events (the quarantine and the enable) are cut off the journal. The views
    still hold them: that is the evidence, so it is reported (exit 9) and not rebuilt away."""
    views_before = views_rows(new_home)
    con = raw(new_home)
    con.execute("DELETE FROM stored_events WHERE rowid > 12")
    con.execute("DELETE FROM event_chain WHERE position > 12")
    close_tampered(con)
    for args in (["list"], ["info", "acme.alpha"], ["history", "acme.alpha"], ["trust", "list"]):
        rc, _out, err = cli(new_home, *args)
        assert rc == 9, (args, err)
        assert "error[journal_truncated]" in err and "position 16" in err and "position 12" in err, err
    assert views_rows(new_home) == views_before
    # An operator who has looked decides to rebuild; then reads work again.
    assert cli(new_home, "index", "rebuild")[0] == 0
    assert cli(new_home, "list")[0] == 0


# --- who did it ----------------------------------------------------------------------------


def test_every_event_records_the_os_account_beside_the_declared_principal(new_home: Path, tmp_path: Path) -> None:
    artifact = h.write(tmp_path, "beta.palyra-skill", h.build("acme.beta", "1.0.0", "acme"))
    # The login name comes from the uid, not from variables anyone can set.
    proc = h.run_cli("--actor", "user:someone-else", "install", "--artifact", artifact, "--allow-tofu", home=new_home,
                     env=h.cli_env(USER="mallory", LOGNAME="mallory"))
    assert proc.returncode == 0, proc.stderr
    me = pwd.getpwuid(__import__("os").geteuid())
    events = export(new_home)
    assert {(e["actor"]["os_user"], e["actor"]["os_uid"]) for e in events} == {(me.pw_name, me.pw_uid)}
    declared = {e["actor"]["principal"] for e in events if e["stream"] == "skill:acme.beta"}
    assert declared == {"user:someone-else"}  # what the flag says, and beside it who ran the command


def test_old_events_without_the_os_account_stay_valid(home: Path) -> None:
    old_home(home)
    events = export(home)
    assert all(set(e["actor"]) == {"principal", "host", "command"} for e in events)
    rc, out, err = cli(home, "history", "acme.alpha")
    assert rc == 0 and "test enable" in out, err
    assert verify(home)[0] == 0

