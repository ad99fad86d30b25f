"""Inclusion and consistency proofs of the journal, as JSON documents an auditor can check
with nothing but the journal's public key (``skills journal prove``, ``consistency`` and
``verify-proof``; the format is in ``docs/transparency-log.md``).

An inclusion proof document::

    {"format": "skill-ledger-proof/1", "kind": "inclusion", "origin": ORIGIN,
     "position": P, "leaf_index": P - 1, "tree_size": N, "event_hash": HEX, "root_hash": HEX,
     "proof": [HEX, ...], "checkpoint": NOTE, "event": EXPORTED_EVENT}

A consistency proof document::

    {"format": "skill-ledger-proof/1", "kind": "consistency", "origin": ORIGIN,
     "old_size": M, "new_size": N, "old_root": HEX, "new_root": HEX, "proof": [HEX, ...],
     "old_checkpoint": NOTE, "new_checkpoint": NOTE}

Proofs are made from the stored tree and checked against the signed root before they are
printed, so a damaged tree never yields a proof that only the auditor finds wrong.
"""

from __future__ import annotations

from typing import Any

import msgspec

from skill_ledger.domain.codec import event_hash
from skill_ledger.domain.errors import InvalidInput, JournalTampered, JournalUnverifiable, ProofError, UsageError
from skill_ledger.domain.merkle import event_leaf_hash, verify_consistency, verify_inclusion
from skill_ledger.domain.notes import Checkpoint, open_checkpoint, parse_checkpoint, parse_note

from .pubkey import PublicKey
from .sqlite import LedgerApplication, export_row, iter_rows
from .tree import JournalTree
from .verify import checkpoint_events

PROOF_FORMAT = "skill-ledger-proof/1"
MAX_PROOF_HASHES = 130  # 2 * 64 levels, and then some


class RecordedCheckpoint(msgspec.Struct, frozen=True):
    position: int  # of the checkpoint event
    size: int
    root: bytes
    origin: str
    note: str


def recorded_checkpoints(tree: JournalTree) -> list[RecordedCheckpoint]:
    """The journal's version-2 checkpoints, oldest first (from the checkpoint stream)."""
    out = []
    for position, version, _topic, state in checkpoint_events(tree):
        if version < 2:
            continue
        try:
            out.append(RecordedCheckpoint(position, int(state["position"]), bytes.fromhex(state["root_hash"]),
                                          str(state["origin"]), str(state["note"])))
        except (KeyError, TypeError, ValueError):
            continue  # journal verify reports it
    return out


def _pick(checkpoints: list[RecordedCheckpoint], size: int | None, key: PublicKey) -> RecordedCheckpoint:
    if not checkpoints:
        raise UsageError("the journal has no checkpoint to prove against: record one with skills journal checkpoint")
    if size is None:
        chosen = checkpoints[-1]
    else:
        found = [c for c in checkpoints if c.size == size]
        if not found:
            sizes = ", ".join(str(c.size) for c in checkpoints[-10:])
            raise UsageError(f"no checkpoint of size {size} (recorded sizes, newest last: {sizes})", {"size": size})
        chosen = found[-1]
    checkpoint = _open(chosen.note, key, chosen.origin)
    if checkpoint.size != chosen.size or checkpoint.root_hash != chosen.root:
        raise JournalTampered(f"the checkpoint at position {chosen.position} differs from its note",
                              {"position": chosen.position})
    return chosen


def _open(note: str, key: PublicKey, origin: str | None = None) -> Checkpoint:
    name = origin or parse_checkpoint(parse_note(note).text).origin
    return open_checkpoint(note, [key.verifier(name)], origin=name)[0]


def prove_inclusion(app: LedgerApplication, position: int, *, checkpoint_size: int | None,
                    key: PublicKey | None) -> dict[str, Any]:
    """The inclusion proof of the event at ``position`` in a recorded checkpoint (the newest
    by default); the checkpoint's note is checked against the journal's key first."""
    if key is None:
        raise JournalUnverifiable("the journal's checkpoint key is missing from the home; give --public-key FILE")
    tree = JournalTree(app)
    try:
        cp = _pick(recorded_checkpoints(tree), checkpoint_size, key)
        if not 1 <= position <= cp.size:
            raise InvalidInput(f"position {position} is not covered by the checkpoint of {cp.size} events"
                               + ("" if position < 1 else "; record a newer one with skills journal checkpoint"),
                               {"position": position, "tree_size": cp.size})
        rows = list(iter_rows(app, after=position - 1, until=position))
        if not rows or rows[0].position != position or not rows[0].hash:
            raise JournalTampered(f"the journal has no event at position {position}", {"position": position})
        event = export_row(rows[0])
        tree.extend(cp.size)
        digest = bytes.fromhex(event["hash"])
        proof = tree.inclusion_proof(position - 1, cp.size)
        try:
            verify_inclusion(event_leaf_hash(digest), position - 1, cp.size, proof, cp.root)
        except ProofError:
            raise JournalTampered(f"the event at position {position} or the stored tree does not match the signed "
                                  "checkpoint; run skills journal verify", {"position": position}) from None
    finally:
        tree.close()
    return {"format": PROOF_FORMAT, "kind": "inclusion", "origin": cp.origin, "position": position,
            "leaf_index": position - 1, "tree_size": cp.size, "event_hash": digest.hex(), "root_hash": cp.root.hex(),
            "proof": [h.hex() for h in proof], "checkpoint": cp.note, "event": event}


def prove_consistency(app: LedgerApplication, old_size: int, new_size: int | None, *,
                      key: PublicKey | None) -> dict[str, Any]:
    """The consistency proof between two recorded checkpoints (the newer defaults to the newest)."""
    if key is None:
        raise JournalUnverifiable("the journal's checkpoint key is missing from the home; give --public-key FILE")
    tree = JournalTree(app)
    try:
        checkpoints = recorded_checkpoints(tree)
        new = _pick(checkpoints, new_size, key)
        old = _pick(checkpoints, old_size, key)
        if old.size > new.size:
            raise InvalidInput(f"the old checkpoint ({old.size} events) is bigger than the new one ({new.size})",
                               {"old_size": old.size, "new_size": new.size})
        tree.extend(new.size)
        proof = tree.consistency_proof(old.size, new.size)
        try:
            verify_consistency(old.size, new.size, old.root, new.root, proof)
        except ProofError:
            raise JournalTampered(f"the checkpoints of {old.size} and {new.size} events are not consistent with the "
                                  "stored tree; run skills journal verify", {"old_size": old.size}) from None
    finally:
        tree.close()
    return {"format": PROOF_FORMAT, "kind": "consistency", "origin": new.origin, "old_size": old.size,
            "new_size": new.size, "old_root": old.root.hex(), "new_root": new.root.hex(),
            "proof": [h.hex() for h in proof], "old_checkpoint": old.note, "new_checkpoint": new.note}


# --- checking a proof document (no home, no journal) ---------------------------------------------


def _malformed(message: str) -> ProofError:
    return ProofError("document_malformed", f"not a proof document: {message}")


def _hash(doc: dict[str, Any], name: str) -> bytes:
    value = doc.get(name)
    if not isinstance(value, str) or len(value) != 64 or value != value.lower():
        raise _malformed(f"{name} is not 64 lowercase hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise _malformed(f"{name} is not 64 lowercase hex digits") from None


def _int(doc: dict[str, Any], name: str) -> int:
    value = doc.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _malformed(f"{name} is not a non-negative integer")
    return value


def _hashes(doc: dict[str, Any]) -> list[bytes]:
    proof = doc.get("proof")
    if not isinstance(proof, list) or len(proof) > MAX_PROOF_HASHES:
        raise _malformed("proof is not a list of hashes")
    return [_hash({"h": h}, "h") for h in proof]


def _note_for(doc: dict[str, Any], name: str, size: int, given: list[str], key: PublicKey) -> Checkpoint:
    """The checkpoint of ``size`` from a given note (an auditor's own copy) or else from the
    document; a given note and the document's that disagree are a fork, refused."""
    opened = [_open(n, key) for n in given]
    mine = [c for c in opened if c.size == size]
    embedded = doc.get(name)
    if embedded is not None:
        if not isinstance(embedded, str):
            raise _malformed(f"{name} is not a note")
        checkpoint = _open(embedded, key)
        if any(c.root_hash != checkpoint.root_hash for c in mine):
            raise ProofError("root_mismatch", f"the given checkpoint of {size} events and the proof's disagree: "
                                              "two signed trees of one size (a fork)")
        return mine[0] if mine else checkpoint
    if not mine:
        raise _malformed(f"no checkpoint of {size} events: the document has none, and none was given")
    return mine[0]


def verify_proof_document(doc: Any, key: PublicKey, notes: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """Check a proof document against the journal's public key (and checkpoint notes the
    auditor holds). Raises ``ProofError``/``NoteError``; returns what was proven."""
    if not isinstance(doc, dict) or doc.get("format") != PROOF_FORMAT:
        raise _malformed(f"format is not {PROOF_FORMAT!r}")
    kind = doc.get("kind")
    if kind == "inclusion":
        return _verify_inclusion_doc(doc, key, list(notes))
    if kind == "consistency":
        return _verify_consistency_doc(doc, key, list(notes))
    raise _malformed("kind is neither inclusion nor consistency")


def _verify_inclusion_doc(doc: dict[str, Any], key: PublicKey, notes: list[str]) -> dict[str, Any]:
    position, index, size = _int(doc, "position"), _int(doc, "leaf_index"), _int(doc, "tree_size")
    digest, root, proof = _hash(doc, "event_hash"), _hash(doc, "root_hash"), _hashes(doc)
    if index != position - 1:
        raise _malformed("leaf_index is not position - 1")
    checkpoint = _note_for(doc, "checkpoint", size, notes, key)
    if checkpoint.size != size or checkpoint.root_hash != root:
        raise ProofError("root_mismatch", "the proof's tree size or root is not the signed checkpoint's")
    event = doc.get("event")
    if event is not None:
        _check_event(event, position, digest)
    verify_inclusion(event_leaf_hash(digest), index, size, proof, checkpoint.root_hash)
    return {"ok": True, "kind": "inclusion", "origin": checkpoint.origin, "position": position, "tree_size": size,
            "event_hash": digest.hex(), "root_hash": root.hex(), "event_checked": event is not None}


def _check_event(event: Any, position: int, digest: bytes) -> None:
    """The exported event, when the document carries it, must hash to the proven hash (the
    hash is recomputed the one way the journal defines it, ``domain.codec.event_hash``)."""
    if not isinstance(event, dict) or event.get("position") != position:
        raise ProofError("root_mismatch", "the document's event is not the one at the proven position")
    without = {k: v for k, v in event.items() if k != "hash"}
    try:
        actual = event_hash(without)
    except (TypeError, ValueError, msgspec.EncodeError):
        raise _malformed("the event cannot be encoded") from None
    if actual != digest.hex() or event.get("hash") != digest.hex():
        raise ProofError("root_mismatch", "the document's event does not hash to the proven event hash")


def _verify_consistency_doc(doc: dict[str, Any], key: PublicKey, notes: list[str]) -> dict[str, Any]:
    old_size, new_size = _int(doc, "old_size"), _int(doc, "new_size")
    old_root, new_root, proof = _hash(doc, "old_root"), _hash(doc, "new_root"), _hashes(doc)
    old = _note_for(doc, "old_checkpoint", old_size, notes, key)
    new = _note_for(doc, "new_checkpoint", new_size, notes, key)
    if old.origin != new.origin:
        raise ProofError("root_mismatch", "the two checkpoints are from different logs")
    if (old.size, old.root_hash, new.size, new.root_hash) != (old_size, old_root, new_size, new_root):
        raise ProofError("root_mismatch", "the proof's sizes or roots are not the signed checkpoints'")
    verify_consistency(old_size, new_size, old_root, new_root, proof)
    return {"ok": True, "kind": "consistency", "origin": new.origin, "old_size": old_size, "new_size": new_size,
            "old_root": old_root.hex(), "new_root": new_root.hex()}
