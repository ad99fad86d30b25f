"""Shared helpers for the transparency-log tests: a small journal with checkpoints, the CLI
in-process, a version-1 checkpoint written as an older ledger wrote it, and the tampering
an intruder with write access to the home would do."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import helpers_ledger as h
import msgspec
from click.testing import CliRunner, Result
from eventsourcing.persistence import StoredEvent

from skill_ledger.adapters.journal.sqlite import guard_statements, iter_rows
from skill_ledger.adapters.usecases import lifecycle, trust
from skill_ledger.adapters.usecases.checkpoints import record_checkpoint
from skill_ledger.adapters.usecases.install import install
from skill_ledger.cli.main import cli
from skill_ledger.domain.checkpoints import Checkpoints, checkpoint_message, legacy_root_hash
from skill_ledger.domain.codec import GENESIS_HASH, canonical_state, event_hash, exported_event, originator_text
from skill_ledger.domain.signing import key_id, public_key_from_seed
from skill_ledger.domain.skill import Skill

GUARDED = ("stored_events", "event_chain", "merkle_nodes", "merkle_tree")


def skills(home: Path, *args: str, input: str | bytes | None = None) -> Result:
    """The CLI in this process (``--home`` first, as a user types it)."""
    return CliRunner().invoke(cli, ["--home", str(home), *args], input=input)


def js(result: Result) -> Any:
    return json.loads(result.stdout)


def build_journal(home: Path, *, steps: int = 3) -> None:
    """A few installs, quarantines, enables, a removal and a revocation (about 10 events a step)."""
    ledger = h.ledger_for(home)
    try:
        for i in range(steps):
            sid = f"acme.s{i}"
            install(ledger, f"/a{i}", data=h.build(sid, "1.0.0", "acme"), allow_tofu=True)
            install(ledger, f"/b{i}", data=h.build(sid, "1.1.0", "acme"), allow_tofu=True)
            lifecycle.quarantine(ledger, sid, None, f"look {i}")
            if i % 2:
                lifecycle.enable(ledger, sid, None, "checked")
            else:
                lifecycle.remove(ledger, sid, "1.0.0", "old")
        install(ledger, "/g", data=h.build("globex.gamma", "1.0.0", "globex"), allow_tofu=True)
        trust.revoke(ledger, "globex", h.key_hex(h.SEEDS["globex"]), "key leaked")
    finally:
        ledger.close()


def checkpoint(home: Path, **kw: Any) -> dict[str, Any]:
    ledger = h.ledger_for(home)
    try:
        return record_checkpoint(ledger, **kw)
    finally:
        ledger.close()


def add_events(home: Path, n: int = 1, name: str = "acme.more") -> None:
    """About ``n`` more events (quarantine/enable pairs on one skill)."""
    ledger = h.ledger_for(home)
    try:
        if not ledger.exists(Skill, name):
            install(ledger, f"/{name}", data=h.build(name, "1.0.0", "acme"), allow_tofu=True)
        for i in range(n):
            if i % 2 == 0:
                lifecycle.quarantine(ledger, name, None, f"more {i}")
            else:
                lifecycle.enable(ledger, name, None, f"more {i}")
    finally:
        ledger.close()


def head(home: Path) -> int:
    ledger = h.ledger_for(home)
    try:
        return ledger.head()
    finally:
        ledger.close()


def raw(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(home / "journal.db"), isolation_level=None)


def drop_guard(con: sqlite3.Connection) -> None:
    for table in GUARDED:
        for op in ("update", "delete", "replace"):
            con.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")


def restore_guard(con: sqlite3.Connection) -> None:
    from skill_ledger.adapters.journal.tree import sqlite_tree_statements

    tree = con.execute("SELECT 1 FROM sqlite_master WHERE name = 'merkle_tree'").fetchone() is not None
    for statement in [*guard_statements(), *(sqlite_tree_statements() if tree else [])]:
        con.execute(statement)


def edit_event(home: Path, position: int, change: dict[str, Any]) -> None:
    """Change members of a stored event's state, leaving its chain hash (what verify finds)."""
    con = raw(home)
    drop_guard(con)
    state = msgspec.json.decode(con.execute("SELECT state FROM stored_events WHERE rowid = ?", (position,)).fetchone()[0])
    state.update(change)
    con.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (msgspec.json.encode(state), position))
    restore_guard(con)
    con.close()


def truncate(home: Path, after: int, *, tree: bool = True) -> None:
    """Cut every event after ``after`` off the journal (events and chain rows, and with
    ``tree`` the stored tree's rows that remember them: a careful intruder's job)."""
    con = raw(home)
    drop_guard(con)
    con.execute("DELETE FROM stored_events WHERE rowid > ?", (after,))
    con.execute("DELETE FROM event_chain WHERE position > ?", (after,))
    if tree and con.execute("SELECT 1 FROM sqlite_master WHERE name = 'merkle_tree'").fetchone():
        con.execute("DELETE FROM merkle_tree WHERE size > ?", (after,))
        con.execute("DELETE FROM merkle_nodes WHERE (idx + 1) << level > ?", (after,))
    restore_guard(con)
    con.close()


def rechain(home: Path, keep: list[int], edits: dict[int, dict[str, Any]] | None = None) -> None:
    """Rewrite the journal as an attacker who knows the hash recipe: only the events at the
    ``keep`` positions (with ``edits`` applied to their states), renumbered gaplessly (stream
    versions too), every hash recomputed, and the stored tree dropped."""
    con = raw(home)
    drop_guard(con)
    rows = con.execute("SELECT rowid, originator_id, topic, state FROM stored_events ORDER BY rowid").fetchall()
    kept = [r for r in rows if r[0] in set(keep)]
    con.execute("BEGIN")
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table in ("event_chain", "stored_events", "merkle_nodes", "merkle_tree"):
        if table in tables:
            con.execute(f"DELETE FROM {table}")
    heads: dict[str, tuple[int, str]] = {}
    for position, (old, oid, topic, state) in enumerate(kept, start=1):
        if edits and old in edits:
            state = canonical_state(msgspec.json.encode({**msgspec.json.decode(state), **edits[old]}))
        version, prev = heads.get(oid, (0, GENESIS_HASH))
        con.execute("INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state) "
                    "VALUES (?,?,?,?,?)", (position, oid, version + 1, topic, state))
        digest = event_hash(exported_event(position, version + 1, topic, msgspec.json.decode(state), prev,
                                           chain=2, originator_id=originator_text(oid)))
        con.execute("INSERT INTO event_chain VALUES (?,?,?,?,?,2)", (position, oid, version + 1, prev, digest))
        heads[oid] = (version + 1, digest)
    con.execute("COMMIT")
    restore_guard(con)
    con.close()


def record_legacy_checkpoint(home: Path, seed: bytes) -> int:
    """A version-1 checkpoint event, as the ledger wrote them before C2SP checkpoints (a bare
    Ed25519 signature over the running hash of the chain hashes); returns its position."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    ledger = h.ledger_for(home)
    try:
        hashes = [r.hash for r in iter_rows(ledger.app)]
        count = len(hashes)
        root = legacy_root_hash(hashes)
        public = public_key_from_seed(seed)
        state = {"timestamp": "2026-01-02T03:04:05.000000Z", "stream": "journal:checkpoints",
                 "actor": {"principal": "user:old", "host": "old-host", "command": "journal"},
                 "position": count, "root_hash": root, "event_count": count, "key_id": key_id(public),
                 "public_key_hex": public.hex(),
                 "signature": Ed25519PrivateKey.from_private_bytes(seed).sign(
                     checkpoint_message(count, root, count)).hex()}
        version = ledger.load(Checkpoints, "checkpoints").version
        stored = StoredEvent(originator_id=Checkpoints.id_for("checkpoints"), originator_version=version + 1,
                             topic="journal.checkpoint.v1", state=canonical_state(msgspec.json.encode(state)))
        return ledger.app.recorder.insert_events([stored])[0]
    finally:
        ledger.close()


def write_legacy_anchor(home: Path, position: int) -> None:
    con = raw(home)
    digest = con.execute("SELECT hash FROM event_chain WHERE position = ?", (position,)).fetchone()[0]
    con.close()
    (home / "journal-anchor.json").write_text(json.dumps({"position": position, "hash": digest}))


def write_journal_key(home: Path, seed: bytes) -> None:
    from skill_ledger.domain.signing import private_key_pem

    path = home / "journal-signing-key.pem"
    path.write_bytes(private_key_pem(seed))
    path.chmod(0o600)


def forge_checkpoint(home: Path, seed: bytes, origin: str, *, anchor: bool = True) -> dict[str, Any]:
    """A checkpoint of the journal as it is, signed with ``seed`` by code that skips every
    check the ledger makes (an intruder's), and (``anchor``) the anchor rewritten to it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from skill_ledger.adapters.journal.tree import JournalTree
    from skill_ledger.adapters.usecases.checkpoints import write_anchor
    from skill_ledger.domain.checkpoints import checkpoint_note
    from skill_ledger.domain.notes import NoteSigner

    ledger = h.ledger_for(home)
    tree = JournalTree(ledger.app)
    try:
        sk = Ed25519PrivateKey.from_private_bytes(seed)
        public = sk.public_key().public_bytes_raw()
        size = ledger.head()
        root = tree.extend(size).root()
        note = checkpoint_note(origin, size, root, NoteSigner(origin, sk))
        agg = ledger.load(Checkpoints, "checkpoints")
        agg.record(ledger.actor, size=size, root=root, origin=origin, key_id=key_id(public),
                   public_key_hex=public.hex(), note=note)
        at = ledger.save(agg)[0]
        if anchor:
            write_anchor(ledger, at, note)
    finally:
        tree.close()
        ledger.close()
    return {"positions": [at], "tree_size": size, "note": note, "public_key_hex": public.hex()}
