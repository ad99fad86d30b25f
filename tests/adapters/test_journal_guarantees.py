"""The journal's guarantees (events.md), tested against the real SQLite file.

* Append-only: UPDATE, DELETE and INSERT OR REPLACE through plain sqlite3 are refused by
  the database itself ('journal is append-only').
* Tamper evidence: with the guard dropped, an edited, deleted, swapped or forged event is
  found by ``skills journal verify`` (exit 9, the first bad position in the JSON output
  and on stderr); a history rewritten consistently (hashes recomputed) under a signed
  checkpoint, a truncated tail and a forged checkpoint are found through the checkpoints.
* Optimistic concurrency per stream, in one process: a stale aggregate never overwrites a
  newer one, a multi-stream save is all or nothing (chain rows included), and the use
  cases re-read and re-decide after a conflict.
* Hash-chain format 2: a new event's stored bytes are canonical and recomputable from its
  exported shape (property-based). The attacks on every stored column are in
  ``tests/adversarial/test_tampered_journal.py``.
"""

from __future__ import annotations

import json
import os
import pwd
import sqlite3
from pathlib import Path
from typing import Any

import helpers_ledger as h
import msgspec
import pytest
from eventsourcing.persistence import IntegrityError
from hypothesis import given, settings
from hypothesis import strategies as st

from skill_ledger.adapters.journal.sqlite import APPEND_ONLY_MESSAGE, GUARDED_TABLES, guard_statements, iter_rows
from skill_ledger.adapters.journal.verify import verify_journal
from skill_ledger.adapters.usecases import lifecycle
from skill_ledger.adapters.usecases.checkpoints import record_checkpoint
from skill_ledger.adapters.usecases.install import install
from skill_ledger.adapters.usecases.unit_of_work import Ledger
from skill_ledger.domain.checkpoints import Checkpoints, checkpoint_note
from skill_ledger.domain.codec import (
    GENESIS_HASH,
    canonical_state,
    encode_state,
    event_hash,
    exported_event,
    originator_text,
    state_bytes,
)
from skill_ledger.domain.publisher import Publisher
from skill_ledger.domain.signing import key_id
from skill_ledger.domain.skill import Skill

TRIGGERS = [f"{t}_no_{op}" for t in GUARDED_TABLES for op in ("update", "delete")]


# --- a small journal ----------------------------------------------------------------------


def populate(home: Path) -> dict[str, Any]:
    """16 events in 3 streams: two installs, a quarantine and an enable."""
    ledger = h.ledger_for(home)
    try:
        install(ledger, "/a", data=h.build("acme.alpha", "1.0.0", "acme"), allow_tofu=True)      # 1-6
        install(ledger, "/g", data=h.build("globex.gamma", "1.0.0", "globex"), allow_tofu=True)  # 7-12
        lifecycle.quarantine(ledger, "acme.alpha", None, "test quarantine")                       # 13
        lifecycle.enable(ledger, "acme.alpha", None, "test enable")                               # 14-16
        assert ledger.head() == 16
        assert verify_journal(ledger.app).ok
    finally:
        ledger.close()
    return {"head": 16}


@pytest.fixture
def journal(home: Path) -> Path:
    populate(home)
    return home / "journal.db"


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None)


def drop_guard(con: sqlite3.Connection) -> None:
    for name in TRIGGERS:
        con.execute(f"DROP TRIGGER IF EXISTS {name}")


def close_tampered(con: sqlite3.Connection) -> None:
    """Put the guard back (an intruder covering their tracks), so what verify finds is the
    damage to the data, not the missing triggers."""
    for statement in guard_statements():
        con.execute(statement)
    con.close()


def rows(con: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return con.execute("SELECT rowid, originator_id, originator_version, topic, state FROM stored_events "
                       "ORDER BY rowid").fetchall()


def position_of(con: sqlite3.Connection, kind: str, nth: int = 0) -> int:
    found = [r[0] for r in rows(con) if r[3].startswith(kind + ".v")]
    return found[nth]


def cli_verify(home: Path) -> tuple[int, dict[str, Any], str]:
    proc = h.run_cli("--json", "journal", "verify", home=home)
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def assert_detected(home: Path, position: int, code: str | None = None) -> dict[str, Any]:
    rc, doc, err = cli_verify(home)
    assert rc == 9, (rc, doc, err)
    assert doc["ok"] is False
    assert doc["first_bad_position"] == position, doc["problems"]
    if code is not None:
        assert code in {p["code"] for p in doc["problems"] if p["position"] == position}, doc["problems"]
    assert f"error[journal_tampered]: journal integrity failure at position {position}" in err, err
    return doc


def rechain(con: sqlite3.Connection, events: list[tuple[str, int, str, bytes]]) -> None:
    """Rewrite the whole journal as an attacker who knows the (public) hash recipe would:
    new gapless positions and a recomputed, internally consistent hash chain."""
    drop_guard(con)
    con.execute("BEGIN")
    con.execute("DELETE FROM event_chain")
    con.execute("DELETE FROM stored_events")
    heads: dict[str, str] = {}
    for position, (oid, version, topic, state) in enumerate(events, start=1):
        con.execute("INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state) "
                    "VALUES (?,?,?,?,?)", (position, oid, version, topic, state))
        prev = heads.get(oid, GENESIS_HASH)
        digest = event_hash(exported_event(position, version, topic, msgspec.json.decode(state), prev,
                                           chain=2, originator_id=originator_text(oid)))
        con.execute("INSERT INTO event_chain VALUES (?,?,?,?,?,2)", (position, oid, version, prev, digest))
        heads[oid] = digest
    con.execute("COMMIT")
    for statement in guard_statements():
        con.execute(statement)


def checkpoint(home: Path) -> int:
    ledger = h.ledger_for(home)
    try:
        return record_checkpoint(ledger)["positions"][0]
    finally:
        ledger.close()


# --- the append-only guard ----------------------------------------------------------------


def test_an_untouched_journal_verifies(journal: Path, home: Path) -> None:
    rc, doc, err = cli_verify(home)
    assert rc == 0, err
    assert doc["ok"] and doc["guard"] and doc["events"] == 16 and doc["first_bad_position"] is None


@pytest.mark.parametrize("statement", [
    "UPDATE stored_events SET state = x'7b7d' WHERE rowid = 3",
    "UPDATE stored_events SET topic = 'skill.enabled.v1' WHERE rowid = 13",
    "DELETE FROM stored_events WHERE rowid = 16",
    "DELETE FROM stored_events",
    "UPDATE event_chain SET hash = prev_hash WHERE position = 3",
    "DELETE FROM event_chain WHERE position = 16",
])
def test_update_and_delete_are_refused_by_the_database(journal: Path, statement: str) -> None:
    con = raw(journal)
    try:
        before = rows(con), con.execute("SELECT * FROM event_chain ORDER BY position").fetchall()
        with pytest.raises(sqlite3.IntegrityError, match=APPEND_ONLY_MESSAGE):
            con.execute(statement)
        assert (rows(con), con.execute("SELECT * FROM event_chain ORDER BY position").fetchall()) == before
    finally:
        con.close()


@pytest.mark.parametrize("statement", [
    # same stream and version: REPLACE deletes the recorded event and appends the forgery
    "INSERT OR REPLACE INTO stored_events (originator_id, originator_version, topic, state) "
    "SELECT originator_id, originator_version, topic, CAST(replace(CAST(state AS TEXT), 'test quarantine', "
    "'routine check') AS BLOB) FROM stored_events WHERE rowid = 13",
    "REPLACE INTO event_chain (position, originator_id, originator_version, prev_hash, hash) "
    "SELECT position, originator_id, originator_version, prev_hash, prev_hash FROM event_chain WHERE position = 3",
])
def test_insert_or_replace_is_refused_by_the_database(journal: Path, statement: str) -> None:
    """SQLite runs no DELETE trigger for rows removed by REPLACE conflict resolution (unless
    the connection turned recursive_triggers on), so UPDATE/DELETE triggers alone do not
    make the tables append-only: a recorded event can be replaced by plain SQL."""
    con = raw(journal)
    try:
        before = rows(con), con.execute("SELECT * FROM event_chain ORDER BY position").fetchall()
        with pytest.raises(sqlite3.IntegrityError, match=APPEND_ONLY_MESSAGE):
            con.execute(statement)
        assert (rows(con), con.execute("SELECT * FROM event_chain ORDER BY position").fetchall()) == before
    finally:
        con.close()


def test_a_missing_guard_is_reported(journal: Path, home: Path) -> None:
    """``journal verify`` checks the guard; a dropped trigger must be reported (exit 9,
    position 0), not silently re-created by opening the journal before the check."""
    con = raw(journal)
    con.execute("DROP TRIGGER stored_events_no_delete")
    con.close()
    doc = assert_detected(home, 0, "guard_missing")
    assert doc["guard"] is False


# --- tampering with the guard dropped -----------------------------------------------------


@pytest.mark.parametrize("column", ["state", "topic", "stream"])
def test_an_edited_event_is_detected_at_its_position(journal: Path, home: Path, column: str) -> None:
    con = raw(journal)
    drop_guard(con)
    target = position_of(con, "skill.quarantined")
    if column == "state":
        con.execute("UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), 'test quarantine', "
                    "'routine check') AS BLOB) WHERE rowid = ?", (target,))
    elif column == "topic":  # the kind changes: a quarantine turned into a disable
        con.execute("UPDATE stored_events SET topic = 'skill.disabled.v1' WHERE rowid = ?", (target,))
    else:  # the event claims another stream
        con.execute("UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), 'skill:acme.alpha', "
                    "'skill:acme.other') AS BLOB) WHERE rowid = ?", (target,))
    assert con.total_changes == 1
    close_tampered(con)
    assert_detected(home, target, "hash_mismatch")


@pytest.mark.parametrize("with_chain_row", [False, True])
def test_a_deleted_event_is_detected_at_its_position(journal: Path, home: Path, with_chain_row: bool) -> None:
    con = raw(journal)
    drop_guard(con)
    target = position_of(con, "skill.quarantined")
    con.execute("DELETE FROM stored_events WHERE rowid = ?", (target,))
    if with_chain_row:
        con.execute("DELETE FROM event_chain WHERE position = ?", (target,))
    close_tampered(con)
    assert_detected(home, target, "missing_event")


@pytest.mark.parametrize("pair", ["same_stream", "two_streams"])
def test_swapped_events_are_detected_at_the_first_one(journal: Path, home: Path, pair: str) -> None:
    con = raw(journal)
    drop_guard(con)
    if pair == "same_stream":  # the quarantine and the audit that follows it in acme.alpha's stream
        first, second = position_of(con, "skill.quarantined"), position_of(con, "skill.audited", 2)
    else:  # acme.alpha's install and globex.gamma's install
        first, second = position_of(con, "skill.installed"), position_of(con, "skill.installed", 1)
    a = con.execute("SELECT topic, state FROM stored_events WHERE rowid = ?", (first,)).fetchone()
    b = con.execute("SELECT topic, state FROM stored_events WHERE rowid = ?", (second,)).fetchone()
    con.execute("UPDATE stored_events SET topic = ?, state = ? WHERE rowid = ?", (*b, first))
    con.execute("UPDATE stored_events SET topic = ?, state = ? WHERE rowid = ?", (*a, second))
    close_tampered(con)
    assert_detected(home, min(first, second), "hash_mismatch")


def test_a_forged_event_appended_without_the_chain_is_detected(journal: Path, home: Path) -> None:
    """An ``skill.enabled`` slipped in at the end by plain SQL (the guard does not stop inserts)."""
    con = raw(journal)
    oid, version, state = con.execute(
        "SELECT originator_id, max(originator_version), state FROM stored_events WHERE topic = 'skill.enabled.v1'"
    ).fetchone()
    forged = json.loads(state)
    forged["reason"] = "forged"
    con.execute("INSERT INTO stored_events (originator_id, originator_version, topic, state) VALUES (?,?,?,?)",
                (oid, version + 1, "skill.enabled.v1", json.dumps(forged).encode()))
    con.close()
    assert_detected(home, 17, "chain_missing")


def test_a_forged_event_with_a_wrong_chain_entry_is_detected(journal: Path, home: Path) -> None:
    con = raw(journal)
    oid, version, state = con.execute(
        "SELECT originator_id, max(originator_version), state FROM stored_events WHERE topic = 'skill.enabled.v1'"
    ).fetchone()
    forged = json.loads(state)
    forged["reason"] = "forged"
    con.execute("BEGIN")
    con.execute("INSERT INTO stored_events (originator_id, originator_version, topic, state) VALUES (?,?,?,?)",
                (oid, version + 1, "skill.enabled.v1", json.dumps(forged).encode()))
    # a chain entry copied from the real last event of the stream
    prev, digest = con.execute("SELECT prev_hash, hash FROM event_chain WHERE originator_id = ? "
                               "ORDER BY originator_version DESC LIMIT 1", (oid,)).fetchone()
    con.execute("INSERT INTO event_chain VALUES (17, ?, ?, ?, ?, 2)", (oid, version + 1, prev, digest))
    con.execute("COMMIT")
    con.close()
    assert_detected(home, 17)


# --- what only the signed checkpoints can find ------------------------------------------


def test_history_rewritten_under_a_checkpoint_is_detected(journal: Path, home: Path) -> None:
    """Deleting an event and recomputing every later hash leaves a consistent chain; only
    the signed checkpoint (root hash and event count) gives it away."""
    at = checkpoint(home)
    con = raw(journal)
    events = [(r[1], r[2], r[3], r[4]) for r in rows(con)]
    quarantine = position_of(con, "skill.quarantined")
    # drop the operator's quarantine; renumber the rest of acme.alpha's stream
    oid = events[quarantine - 1][0]
    kept = []
    for i, (o, v, t, s) in enumerate(events, start=1):
        if i == quarantine:
            continue
        kept.append((o, v - 1 if o == oid and i > quarantine else v, t, s))
    rechain(con, kept)
    con.close()
    assert_detected(home, at - 1, "checkpoint_mismatch")


def test_the_same_rewrite_without_a_checkpoint_goes_unnoticed(journal: Path, home: Path) -> None:
    """The control for the test above: the hash chain alone cannot find a full rewrite
    (the recipe is public), which is why checkpoints are signed."""
    con = raw(journal)
    events = [(r[1], r[2], r[3], r[4]) for r in rows(con)]
    rechain(con, events[:-1])  # drop the last event (the enable), chain recomputed
    con.close()
    rc, doc, _err = cli_verify(home)
    assert rc == 0 and doc["events"] == 15


def test_deleting_the_last_event_after_a_checkpoint_is_detected(journal: Path, home: Path) -> None:
    """Truncating the tail: the last event (here the checkpoint itself) and its chain row
    are deleted. Nothing inside the journal can show that an event is missing at the end,
    so a checkpoint must also be anchored outside the journal for this to be found."""
    at = checkpoint(home)
    assert at == 17
    con = raw(journal)
    drop_guard(con)
    con.execute("DELETE FROM stored_events WHERE rowid = ?", (at,))
    con.execute("DELETE FROM event_chain WHERE position = ?", (at,))
    close_tampered(con)
    rc, doc, err = cli_verify(home)
    assert rc == 9, f"a truncated journal (last checkpoint at {at} deleted) verified: {doc}"
    assert doc["first_bad_position"] == at
    assert f"at position {at}" in err


def test_a_checkpoint_signed_by_another_key_is_detected(journal: Path, home: Path) -> None:
    checkpoint(home)  # creates the home's journal key
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from skill_ledger.adapters.journal.tree import JournalTree
    from skill_ledger.domain.notes import NoteSigner

    ledger = h.ledger_for(home)
    tree = JournalTree(ledger.app)
    try:
        sk = Ed25519PrivateKey.from_private_bytes(bytes([0x77]) * 32)
        public = sk.public_key().public_bytes_raw()
        size = ledger.head()
        root = tree.extend(size).root()
        agg = ledger.load(Checkpoints, "checkpoints")
        note = checkpoint_note(agg.origin, size, root, NoteSigner(agg.origin, sk))
        agg.record(ledger.actor, size=size, root=root, origin=agg.origin, key_id=key_id(public),
                   public_key_hex=public.hex(), note=note)
        at = ledger.save(agg)[0]
    finally:
        tree.close()
        ledger.close()
    assert_detected(home, at, "checkpoint_untrusted_key")


# --- optimistic concurrency, in one process -----------------------------------------------


def two_ledgers(home: Path) -> tuple[Ledger, Ledger]:
    """Two independent ledgers (own connections) on one journal; the second one keeps its
    blobs in another home, so the install blob lock does not serialise them."""
    a = h.ledger_for(home)
    other = h.resolve(home=str(home.parent / "home-b"), journal=str(home / "journal.db"), actor="user:b",
                      command="test")
    return a, Ledger(other)


def test_a_stale_aggregate_cannot_overwrite_a_newer_decision(journal: Path, home: Path) -> None:
    a, b = two_ledgers(home)
    try:
        sa, sb = a.load(Skill, "acme.alpha"), b.load(Skill, "acme.alpha")
        sa.quarantine(a.actor, "1.0.0", "operator", "from a")
        sb.disable(b.actor, "1.0.0", "from b")
        assert a.save(sa) == [17]
        with pytest.raises(IntegrityError):
            b.save(sb)
        assert a.head() == 17
        assert verify_journal(a.app).ok
        assert a.load(Skill, "acme.alpha").versions["1.0.0"].status == "quarantined"
    finally:
        a.close()
        b.close()


def test_a_save_over_two_streams_is_all_or_nothing(journal: Path, home: Path) -> None:
    """A new publisher event and a stale skill event in one save: neither is recorded,
    and no chain row is left behind."""
    a, b = two_ledgers(home)
    try:
        stale = a.load(Skill, "globex.gamma")
        lifecycle.quarantine(b, "globex.gamma", None, "newer decision")  # 17
        pub = a.load(Publisher, "newcomer")
        pub.allowlist(a.actor, h.key_hex(h.SEEDS["rogue"]), "k", "test")
        stale.disable(a.actor, "1.0.0", "stale decision")
        with pytest.raises(IntegrityError):
            a.app.save(pub, stale)
        assert a.head() == 17
        assert not a.exists(Publisher, "newcomer")
        con = raw(home / "journal.db")
        try:
            assert con.execute("SELECT count(*) FROM event_chain").fetchone()[0] == 17
        finally:
            con.close()
        assert verify_journal(a.app).ok
    finally:
        a.close()
        b.close()


def interleave(ledger: Ledger, other: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make ``other()`` run (and commit) just before ``ledger``'s first save: a conflict."""
    real = ledger.save
    calls: list[int] = []

    def save(*aggregates: Any) -> list[int]:
        calls.append(1)
        if len(calls) == 1:
            other()
        return real(*aggregates)

    monkeypatch.setattr(ledger, "save", save)
    return calls


def events_of(ledger: Ledger, kind: str) -> list[dict[str, Any]]:
    return [e for e in h.journal_events(ledger) if e["kind"] == kind]


def test_concurrent_quarantines_re_read_and_record_one(journal: Path, home: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = two_ledgers(home)
    try:
        calls = interleave(a, lambda: lifecycle.quarantine(b, "globex.gamma", None, "from b"), monkeypatch)
        result = lifecycle.quarantine(a, "globex.gamma", None, "from a")
        assert len(calls) == 2  # conflict, re-read, re-decide
        assert result.changed is False and result.positions == []
        assert [e["state"]["reason"] for e in events_of(a, "skill.quarantined")] == ["test quarantine", "from b"]
        assert verify_journal(a.app).ok
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("same_payload", [True, False])
def test_concurrent_installs_of_one_version_end_with_one_install(home: Path, same_payload: bool,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from skill_ledger.domain.errors import VersionConflict

    home.mkdir(parents=True)
    a, b = two_ledgers(home)
    try:
        first = h.build("acme.alpha", "1.0.0", "acme")
        second = first if same_payload else h.build("acme.alpha", "1.0.0", "acme", asset=b"other payload")
        calls = interleave(a, lambda: install(b, "/b", data=first, allow_tofu=True), monkeypatch)
        if same_payload:
            result = install(a, "/a", data=second, allow_tofu=True)
            assert result.already_installed and result.positions == []
        else:
            with pytest.raises(VersionConflict):
                install(a, "/a", data=second, allow_tofu=True)
            rejected = events_of(a, "artifact.rejected")
            assert [e["state"]["error_code"] for e in rejected] == ["version_conflict"]
        assert calls  # a decided to install and saved; b's commit made that save conflict
        assert len(events_of(a, "skill.installed")) == 1
        assert len(events_of(a, "publisher.key_pinned")) == 1
        assert verify_journal(a.app).ok
    finally:
        a.close()
        b.close()


def test_a_damaged_chain_refuses_to_be_extended(journal: Path, home: Path) -> None:
    """A stream whose last chain row is gone cannot grow: the recorder will not invent a
    prev_hash, and the append is rolled back."""
    con = raw(journal)
    drop_guard(con)
    last = con.execute("SELECT max(position) FROM event_chain").fetchone()[0]
    con.execute("DELETE FROM event_chain WHERE position = ?", (last,))
    con.close()
    ledger = h.ledger_for(home)
    try:
        skill = ledger.load(Skill, "acme.alpha")
        skill.disable(ledger.actor, "1.0.0", "after damage")
        with pytest.raises(IntegrityError, match="hash chain"):
            ledger.app.save(skill)
        assert ledger.head() == 16
    finally:
        ledger.close()


def test_every_event_records_its_actor_and_the_operators_reason(journal: Path, home: Path) -> None:
    ledger = h.ledger_for(home)
    try:
        events = h.journal_events(ledger)
    finally:
        ledger.close()
    me = pwd.getpwuid(os.geteuid())
    for e in events:
        assert e["state"]["actor"]["principal"] == "user:test"
        assert e["state"]["actor"]["host"] and e["state"]["actor"]["command"] == "test"
        # beside the declared principal, the account the process ran as (from the uid, not $USER)
        assert (e["state"]["actor"]["os_user"], e["state"]["actor"]["os_uid"]) == (me.pw_name, me.pw_uid)
    reasons = {e["kind"]: e["state"].get("reason") for e in events if e["kind"] in ("skill.quarantined", "skill.enabled")}
    assert reasons == {"skill.quarantined": "test quarantine", "skill.enabled": "test enable"}


# --- chain format 2: the stored bytes are recomputable from the exported shape ----------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)


class _Event:
    """Something shaped like a recorded event: the envelope and arbitrary data members."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.originator_id = "ignored"
        self.originator_version = 1
        self.timestamp = "2026-11-25T06:10:00.123456Z"
        self.stream = "skill:acme.x"
        self.actor = {"principal": "user:a", "host": "h", "command": "c", "os_user": "a", "os_uid": 1000}
        self.__dict__.update(data)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12).filter(lambda k: k not in ("timestamp", "stream", "actor",
                                                                        "originator_id", "originator_version")),
                       _json, max_size=6))
def test_format_2_state_bytes_are_a_fixed_point_recomputed_from_the_export(data: dict[str, Any]) -> None:
    """Whatever an event holds, its stored bytes are canonical (re-encoding changes nothing), and
    ``state_bytes`` gives them back from the exported shape alone: so verify can compare bytes."""
    stored = encode_state(_Event(data))
    assert canonical_state(stored) == stored
    exported = exported_event(5, 2, "skill.installed.v1", msgspec.json.decode(stored), GENESIS_HASH, chain=2,
                              originator_id=originator_text("e5738b9c43605c1f85cdbcbfe2c23742"))
    assert state_bytes(exported) == stored
    assert exported["data"] == msgspec.json.decode(msgspec.json.encode(data))
