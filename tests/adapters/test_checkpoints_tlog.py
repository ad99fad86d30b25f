"""Checkpoints as C2SP signed tlog checkpoints, verified failing closed (issues 11 and 14).

* ``journal checkpoint`` signs the journal's RFC 9162 root in a C2SP note whose origin is a
  stable name of the journal, stores it on a version-2 ``journal.checkpoint`` event and in
  the anchor file; old journals with version-1 checkpoints still verify.
* The issue-11 attacks: deleting ``journal-signing-key.pem`` (and re-signing a rewritten
  history with another key, anchor rewritten) or deleting ``journal-anchor.json`` (and
  cutting the end off) no longer verifies: verify fails closed, and an auditor's
  ``--public-key`` / ``--anchor`` catch the forgery.
* ``journal verify --since-checkpoint`` checks the newest checkpoint and what came after it.
"""

from __future__ import annotations

import json
from pathlib import Path

import helpers_ledger as h
import msgspec
import pytest
import tlog_helpers as t

from skill_ledger.adapters.journal.sqlite import iter_rows
from skill_ledger.adapters.usecases.checkpoints import record_checkpoint
from skill_ledger.domain.checkpoints import Checkpoints
from skill_ledger.domain.codec import decode_event
from skill_ledger.domain.errors import JournalTampered, JournalUnverifiable, UsageError
from skill_ledger.domain.merkle import events_root
from skill_ledger.domain.notes import NoteVerifier, open_checkpoint

ATTACKER_SEED = bytes([0x77]) * 32


@pytest.fixture
def journal(home: Path) -> Path:
    t.build_journal(home)
    return home


def verify(home: Path, *args: str) -> tuple[int, dict, str]:
    r = t.skills(home, "journal", "verify", "--json", *args)
    return r.exit_code, json.loads(r.stdout), r.stderr


def codes(doc: dict) -> set[str]:
    return {p["code"] for p in doc["problems"]}


def vkey_file(home: Path, result: dict) -> Path:
    path = home.parent / "journal.vkey"
    path.write_text(result["verifier_key"] + "\n")
    return path


# --- the checkpoint itself ----------------------------------------------------------------------


def test_a_checkpoint_is_a_c2sp_note_over_the_merkle_root(journal: Path) -> None:
    size = t.head(journal)
    r = t.skills(journal, "journal", "checkpoint", "--json")
    assert r.exit_code == 0, r.stderr
    d = t.js(r)
    ledger = h.ledger_for(journal)
    try:
        hashes = [bytes.fromhex(row.hash) for row in iter_rows(ledger.app)]
        first_hash = hashes[0].hex()
    finally:
        ledger.close()
    assert d["origin"] == f"skill-ledger/{first_hash[:16]}"
    assert (d["tree_size"], d["event_count"], d["positions"]) == (size, size, [size + 1])
    assert d["root_hash"] == events_root(hashes[:size]).hex()
    verifier = NoteVerifier.from_vkey(d["verifier_key"])
    checkpoint, _note = open_checkpoint(d["note"], [verifier], origin=d["origin"])
    assert (checkpoint.size, checkpoint.root_hash.hex()) == (size, d["root_hash"])
    assert verifier.name == d["origin"] and verifier.public_key.hex() == d["public_key_hex"]
    # the note is on the event (version 2) and in the anchor file
    events = [json.loads(line) for line in t.skills(journal, "journal", "--json", "--kind", "journal.checkpoint")
              .stdout.splitlines()]
    assert [e["data"]["note"] for e in events] == [d["note"]]
    anchor = json.loads((journal / "journal-anchor.json").read_text())
    assert anchor == {"format": 2, "position": size + 1, "hash": events[0]["hash"], "checkpoint": d["note"]}
    # the human output prints the note, ready to publish
    t.add_events(journal, 2)
    human = t.skills(journal, "journal", "checkpoint")
    assert human.exit_code == 0 and human.stdout.splitlines()[1] == d["origin"]


def test_the_origin_is_stable_and_can_be_chosen_once(journal: Path) -> None:
    first = t.checkpoint(journal, origin="ledger.example/prod")
    t.add_events(journal, 1)
    assert t.checkpoint(journal)["origin"] == "ledger.example/prod"
    assert t.checkpoint(journal, origin="ledger.example/prod")["origin"] == first["origin"]
    r = t.skills(journal, "journal", "checkpoint", "--origin", "another/name")
    assert r.exit_code == 2 and "already use the origin 'ledger.example/prod'" in r.stderr
    r = t.skills(journal.parent / "fresh", "journal", "checkpoint", "--origin", "has space")
    assert r.exit_code == 2 and "origin" in r.stderr


def test_an_empty_journal_has_nothing_to_checkpoint(home: Path) -> None:
    ledger = h.ledger_for(home)
    try:
        with pytest.raises(UsageError, match="empty"):
            record_checkpoint(ledger)
    finally:
        ledger.close()


def test_the_checkpoint_event_of_version_1_is_upcast(journal: Path) -> None:
    t.write_journal_key(journal, bytes([0x55]) * 32)
    at = t.record_legacy_checkpoint(journal, bytes([0x55]) * 32)
    ledger = h.ledger_for(journal)
    try:
        (row,) = list(iter_rows(ledger.app, after=at - 1, until=at))
        event = decode_event(row.topic, row.state, Checkpoints.id_for("checkpoints"), row.originator_version)
        assert (event.position, event.event_count, event.origin, event.note) == (at - 1, at - 1, "", "")
        assert ledger.load(Checkpoints, "checkpoints").origin == ""  # no C2SP checkpoint yet
    finally:
        ledger.close()


def test_an_old_journal_with_version_1_checkpoints_still_verifies(journal: Path) -> None:
    seed = bytes([0x55]) * 32
    t.write_journal_key(journal, seed)
    at = t.record_legacy_checkpoint(journal, seed)
    t.write_legacy_anchor(journal, at)
    rc, doc, err = verify(journal)
    assert rc == 0, (doc, err)
    assert doc["checkpoints"] == 1
    # the next checkpoint is a C2SP one; both verify, in full and since the newest
    t.add_events(journal, 2)
    assert t.checkpoint(journal)["tree_size"] == t.head(journal) - 1
    for args in ((), ("--since-checkpoint",)):
        rc, doc, err = verify(journal, *args)
        assert rc == 0 and doc["checkpoints"] == 2, (doc, err)
    # the recorded version-1 event is exported as it was recorded
    line = t.skills(journal, "journal", "--json", "--since", str(at - 1), "--until", str(at)).stdout
    assert set(json.loads(line)["data"]) == {"position", "root_hash", "event_count", "key_id", "public_key_hex",
                                             "signature"}


def test_a_version_1_checkpoint_signed_by_another_key_is_detected(journal: Path) -> None:
    t.write_journal_key(journal, bytes([0x55]) * 32)
    at = t.record_legacy_checkpoint(journal, ATTACKER_SEED)
    t.write_legacy_anchor(journal, at)
    rc, doc, _ = verify(journal)
    assert rc == 9 and doc["first_bad_position"] == at and "checkpoint_untrusted_key" in codes(doc)


def test_a_version_1_checkpoint_over_a_rewritten_history_is_detected(journal: Path) -> None:
    seed = bytes([0x55]) * 32
    t.write_journal_key(journal, seed)
    at = t.record_legacy_checkpoint(journal, seed)
    t.rechain(journal, list(range(1, at + 1)), edits={3: {"reason": "rewritten"}})  # every hash recomputed
    t.write_legacy_anchor(journal, at)
    rc, doc, _ = verify(journal)
    assert rc == 9 and doc["first_bad_position"] == at and codes(doc) == {"checkpoint_mismatch"}


# --- failing closed (issue 11, "Caches and keys") ------------------------------------------------


def test_deleting_the_journal_key_makes_verify_fail_closed(journal: Path) -> None:
    result = t.checkpoint(journal)
    (journal / "journal-signing-key.pem").unlink()
    rc, doc, err = verify(journal)
    assert rc == 9 and doc["ok"] is False and codes(doc) == {"checkpoint_key_missing"}
    assert err.startswith("error[journal_unverifiable]: ") and "--public-key" in err
    human = t.skills(journal, "journal", "verify")
    assert human.exit_code == 9 and "JOURNAL NOT VERIFIABLE" in human.stdout
    # the auditor supplies the key from elsewhere, in any of its forms
    from skill_ledger.adapters.journal.pubkey import public_key_pem

    raw = bytes.fromhex(result["public_key_hex"])
    forms = {"vkey": result["verifier_key"], "pem": public_key_pem(raw), "hex": raw.hex(),
             "base64": __import__("base64").b64encode(raw).decode()}
    for name, text in forms.items():
        path = journal.parent / f"key.{name}"
        path.write_text(text)
        rc, doc, err = verify(journal, "--public-key", str(path))
        assert rc == 0 and doc["checkpoint_key"] == "argument", (name, doc, err)
    (journal.parent / "key.raw").write_bytes(raw)
    assert verify(journal, "--public-key", str(journal.parent / "key.raw"))[0] == 0


def test_a_private_key_or_garbage_is_not_a_public_key(journal: Path) -> None:
    t.checkpoint(journal)
    for content in ((journal / "journal-signing-key.pem").read_bytes(), b"not a key"):
        path = journal.parent / "bad.key"
        path.write_bytes(content)
        r = t.skills(journal, "journal", "verify", "--public-key", str(path))
        assert r.exit_code == 2 and "error[usage_error]" in r.stderr


def test_a_history_re_signed_with_another_key_and_anchor_is_refused(journal: Path) -> None:
    """The issue-11 attack: the intruder deletes the key, rewrites history, checkpoints it with
    a key of their own and rewrites the anchor. Without the key verify fails closed; with the
    journal's real public key (kept by the auditor) the forgery is named."""
    real = t.checkpoint(journal)
    keyfile = vkey_file(journal, real)
    size = t.head(journal)
    t.rechain(journal, [p for p in range(1, size + 1) if p != 5])  # drop an event, recompute everything
    (journal / "journal-signing-key.pem").unlink()
    forged = t.forge_checkpoint(journal, ATTACKER_SEED, real["origin"])
    rc, doc, _ = verify(journal)
    assert rc == 9 and "checkpoint_key_missing" in codes(doc)
    rc, doc, _ = verify(journal, "--public-key", str(keyfile))
    found = {(p["position"], p["code"]) for p in doc["problems"]}
    # the real checkpoint no longer matches (one event fewer before it), the forged one is not by the key
    assert rc == 9 and doc["first_bad_position"] == real["positions"][0] - 1
    assert {(real["positions"][0] - 1, "checkpoint_mismatch"), (forged["positions"][0], "checkpoint_untrusted_key")} <= found
    rc, doc, _ = verify(journal, "--public-key", str(keyfile), "--since-checkpoint")
    assert rc == 9 and "checkpoint_untrusted_key" in codes(doc)


def test_deleting_the_anchor_to_hide_a_truncation_is_reported(journal: Path) -> None:
    """The other issue-11 attack: events are cut off the end, the checkpoint with them, and the
    anchor is deleted. Verify fails closed; the published note catches the truncation."""
    result = t.checkpoint(journal)
    published = journal.parent / "published-checkpoint.txt"
    published.write_text(result["note"])
    t.add_events(journal, 4)
    t.truncate(journal, result["tree_size"] - 3)
    (journal / "journal-anchor.json").unlink()
    rc, doc, err = verify(journal)
    assert rc == 9 and codes(doc) == {"anchor_missing"}, doc
    assert "--anchor" in err
    rc, doc, _ = verify(journal, "--anchor", str(published))
    assert rc == 9 and "truncated" in codes(doc) and doc["first_bad_position"] == result["tree_size"]


def test_the_stored_tree_remembers_a_truncation(journal: Path) -> None:
    result = t.checkpoint(journal)
    t.truncate(journal, result["tree_size"] - 3, tree=False)
    (journal / "journal-anchor.json").unlink()
    rc, doc, _ = verify(journal, "--public-key", str(vkey_file(journal, result)))
    assert rc == 9 and "truncated" in codes(doc) and doc["first_bad_position"] == result["tree_size"] - 2


def test_the_journal_key_present_without_anchor_or_checkpoints_is_reported(journal: Path) -> None:
    """Cutting the journal back to before its first checkpoint: the key shows one was made."""
    result = t.checkpoint(journal)
    t.truncate(journal, result["tree_size"])  # the checkpoint event is gone
    (journal / "journal-anchor.json").unlink()
    rc, doc, _ = verify(journal)
    assert rc == 9 and codes(doc) == {"anchor_missing"}


def test_a_checkpoint_is_not_made_with_a_new_key_or_without_the_anchor(journal: Path) -> None:
    t.checkpoint(journal)
    t.add_events(journal, 1)
    key = journal / "journal-signing-key.pem"
    saved = key.read_bytes()
    key.unlink()
    with pytest.raises(JournalUnverifiable, match="restore the key"):
        t.checkpoint(journal)
    assert not key.exists()  # no new key was made
    key.write_bytes(saved)
    anchor = journal / "journal-anchor.json"
    anchor.unlink()
    r = t.skills(journal, "journal", "checkpoint")
    assert r.exit_code == 9 and "error[journal_unverifiable]" in r.stderr and "--reanchor" in r.stderr
    r = t.skills(journal, "journal", "checkpoint", "--reanchor", "--json")
    assert r.exit_code == 0 and anchor.exists()
    assert verify(journal)[0] == 0


def test_a_damaged_journal_is_not_signed(journal: Path) -> None:
    t.checkpoint(journal)
    t.add_events(journal, 3)
    at = t.head(journal) - 1
    t.edit_event(journal, at, {"reason": "edited after the checkpoint"})
    with pytest.raises(JournalTampered, match=f"position {at}"):
        t.checkpoint(journal)


# --- verify --since-checkpoint ----------------------------------------------------------------------


def test_since_checkpoint_checks_only_what_came_after(journal: Path) -> None:
    t.checkpoint(journal)
    size = t.head(journal)
    t.add_events(journal, 5, name="acme.s1")  # streams that began before the checkpoint
    t.add_events(journal, 3, name="acme.new")
    rc, doc, err = verify(journal, "--since-checkpoint")
    assert rc == 0, (doc, err)
    assert doc["mode"] == "since_checkpoint" and doc["since"]["checkpoint_position"] == size
    assert doc["events"] == t.head(journal) - (size - 1) and doc["tree_size"] == t.head(journal)
    full = verify(journal)[1]
    assert full["tree_root"] == doc["tree_root"]


def test_since_checkpoint_finds_an_edit_after_the_checkpoint(journal: Path) -> None:
    t.checkpoint(journal)
    t.add_events(journal, 4, name="acme.s1")
    at = t.head(journal) - 1
    t.edit_event(journal, at, {"reason": "edited"})
    rc, doc, _ = verify(journal, "--since-checkpoint")
    assert rc == 9 and doc["first_bad_position"] == at and "hash_mismatch" in codes(doc)


def test_since_checkpoint_finds_a_rewrite_under_the_checkpoint_through_its_links(journal: Path) -> None:
    """An event before the checkpoint edited and its stream's later hashes recomputed, the
    stored tree left as it was: the stream's first event after the checkpoint links to a hash
    that is not in the signed tree."""
    t.checkpoint(journal)
    t.add_events(journal, 2, name="acme.s0")
    size = t.head(journal)
    con = t.raw(journal)
    saved = {table: con.execute(f"SELECT * FROM {table}").fetchall() for table in ("merkle_nodes", "merkle_tree")}
    quarantine = con.execute("SELECT rowid FROM stored_events WHERE topic LIKE 'skill.quarantined%' "
                             "ORDER BY rowid LIMIT 1").fetchone()[0]
    con.close()
    t.rechain(journal, list(range(1, size + 1)), edits={quarantine: {"reason": "rewritten"}})
    con = t.raw(journal)
    t.drop_guard(con)
    for table, rows in saved.items():
        con.executemany(f"INSERT INTO {table} VALUES ({','.join('?' * len(rows[0]))})", rows)
    t.restore_guard(con)
    con.close()
    rc, doc, _ = verify(journal, "--since-checkpoint")
    assert rc == 9 and "chain_broken" in codes(doc), doc
    rc, doc, _ = verify(journal)  # the full verify recomputes the tree: the checkpoint no longer matches it
    assert rc == 9 and {"checkpoint_mismatch", "tree_mismatch"} <= codes(doc)


def test_since_checkpoint_finds_a_forged_note_on_the_newest_checkpoint(journal: Path) -> None:
    t.checkpoint(journal)
    t.add_events(journal, 1)
    at = t.checkpoint(journal)["positions"][0]
    con = t.raw(journal)
    state = msgspec.json.decode(con.execute("SELECT state FROM stored_events WHERE rowid = ?", (at,)).fetchone()[0])
    con.close()
    lines = state["note"].split("\n")
    lines[1] = str(int(lines[1]) - 1)  # claims fewer events: the signature no longer covers the text
    t.edit_event(journal, at, {"note": "\n".join(lines)})
    rc, doc, _ = verify(journal, "--since-checkpoint")
    assert rc == 9 and doc["first_bad_position"] == at and "checkpoint_signature" in codes(doc)


def test_since_checkpoint_finds_the_cut_off_checkpoint_through_the_anchor(journal: Path) -> None:
    t.checkpoint(journal)
    t.add_events(journal, 1)
    second = t.checkpoint(journal)
    t.truncate(journal, second["positions"][0] - 1)
    rc, doc, _ = verify(journal, "--since-checkpoint")
    assert rc == 9 and "truncated" in codes(doc) and doc["first_bad_position"] == second["positions"][0]


def test_since_checkpoint_without_a_new_checkpoint_verifies_everything(journal: Path) -> None:
    rc, doc, _ = verify(journal, "--since-checkpoint")
    assert rc == 0 and doc["mode"] == "full" and doc["events"] == t.head(journal)


def test_a_forged_checkpoint_in_another_key_is_named_at_its_position(journal: Path) -> None:
    """A version-2 checkpoint signed by another key (the note names the journal's origin)."""
    origin = t.checkpoint(journal)["origin"]
    at = t.forge_checkpoint(journal, ATTACKER_SEED, origin, anchor=False)["positions"][0]
    for args in ((), ("--since-checkpoint",)):
        rc, doc, _ = verify(journal, *args)
        assert rc == 9 and doc["first_bad_position"] == at and "checkpoint_untrusted_key" in codes(doc)
