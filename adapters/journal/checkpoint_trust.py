"""Checking the journal's checkpoints and its anchor against a key and a recomputed tree.

Used by ``journal verify`` in both its modes. What a checkpoint is checked against:

* a **key**: the home's checkpoint key, or one an auditor supplies (``--public-key``). With
  none, a journal that has checkpoints is reported (``checkpoint_key_missing``), never
  trusted: anyone can sign a checkpoint with a key of their own.
* the **recomputed tree**: the root the verifier computed from the events themselves at the
  checkpoint's size (``roots``), never a stored node.
* the **anchor**: the newest checkpoint as remembered outside the journal (the home's
  ``journal-anchor.json``, or a checkpoint note published elsewhere). A journal with
  checkpoints and no anchor is reported (``anchor_missing``): without it, cutting events
  off the end leaves no trace.

Each function returns ``Finding`` tuples (position, code, message); ``journal verify`` turns
them into its problems.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import msgspec

from skill_ledger.domain.checkpoints import checkpoint_message
from skill_ledger.domain.errors import NoteError
from skill_ledger.domain.notes import NoteVerifier, open_checkpoint

from .pubkey import PublicKey


class Finding(NamedTuple):
    position: int
    code: str
    message: str


class Anchor(msgspec.Struct, frozen=True):
    """The newest checkpoint as remembered outside the journal."""

    position: int | None = None  # of the checkpoint event
    hash: str | None = None  # its chain hash
    note: str | None = None  # its signed note (format 2 anchors and published notes)
    source: str = "home"  # "home" (journal-anchor.json) or "argument" (--anchor FILE)
    unreadable: bool = False


RootAt = Callable[[int], "bytes | None"]


def open_note(note: str, origin: str, key: PublicKey | None, own_key_hex: str) -> tuple[Any, Finding | None]:
    """(checkpoint, None) when ``note`` is a good checkpoint of ``origin`` signed by ``key``
    (or, without one, by the key the event names: a self-consistency check only), else
    (None, finding at position 0 to be re-homed by the caller)."""
    try:
        if key is not None:
            if key.name is not None and key.name != origin:
                return None, Finding(0, "checkpoint_untrusted_key",
                                     f"the supplied verifier key is {key.name!r}'s, not the journal's ({origin!r})")
            verifier = key.verifier(origin)
        else:
            verifier = NoteVerifier(origin, bytes.fromhex(own_key_hex))
        checkpoint, _ = open_checkpoint(note, [verifier], origin=origin)
    except NoteError as e:
        code = {"no_known_signature": "checkpoint_untrusted_key", "bad_signature": "checkpoint_signature",
                "bad_key": "checkpoint_untrusted_key"}.get(e.reason, "checkpoint_malformed")
        return None, Finding(0, code, f"checkpoint note: {e.message}")
    except (ValueError, TypeError):
        return None, Finding(0, "checkpoint_malformed", "checkpoint names no valid public key")
    return checkpoint, None


def check_checkpoint_v2(state: dict[str, Any], at: int, *, key: PublicKey | None, root_at: RootAt,
                        origin: str | None) -> list[Finding]:
    """A version-2 checkpoint event at position ``at``: its note signed by the key, the event's
    fields equal to the note's, the size before the event, the root equal to the journal's
    recomputed root at that size, and the origin the journal's."""
    try:
        size, count, root_hex = int(state["position"]), int(state["event_count"]), str(state["root_hash"])
        note, event_origin, key_hex = str(state["note"]), str(state["origin"]), str(state["public_key_hex"])
    except (KeyError, TypeError, ValueError):
        return [Finding(at, "checkpoint_malformed", "the checkpoint event lacks its size, root, origin or note")]
    checkpoint, finding = open_note(note, event_origin, key, key_hex)
    if finding is not None:
        return [finding._replace(position=at)]
    out = []
    if key is not None and key_hex != key.hex:
        out.append(Finding(at, "checkpoint_untrusted_key", f"the checkpoint event names another key ({key_hex[:16]}…)"))
    if origin is not None and event_origin != origin:
        out.append(Finding(at, "checkpoint_origin", f"the checkpoint's origin {event_origin!r} is not the journal's "
                                                    f"{origin!r}"))
    if not (checkpoint.size == size == count) or checkpoint.root_hash.hex() != root_hex:
        out.append(Finding(at, "checkpoint_malformed", "the checkpoint event's size or root differs from its note"))
    if checkpoint.size >= at:
        out.append(Finding(at, "checkpoint_mismatch", f"the checkpoint claims {checkpoint.size} events, but is itself "
                                                      f"at position {at}"))
        return out
    actual = root_at(checkpoint.size)
    if actual is None:
        out.append(Finding(at, "checkpoint_mismatch", f"the checkpoint over {checkpoint.size} events cannot be "
                                                      "checked: it is not where the journal keeps its checkpoints"))
    elif actual != checkpoint.root_hash:
        out.append(Finding(at, "checkpoint_mismatch", f"the checkpoint over {checkpoint.size} events does not match "
                                                      "the journal's Merkle root at that size"))
    return out


def check_checkpoint_v1(state: dict[str, Any], at: int, *, key: PublicKey | None,
                        legacy_root_at: Callable[[int], str | None]) -> list[Finding]:
    """A version-1 checkpoint (a running hash over the chain hashes, a bare Ed25519 signature)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        position, count, root = int(state["position"]), int(state["event_count"]), str(state["root_hash"])
        key_hex, signature = str(state["public_key_hex"]), str(state["signature"])
    except (KeyError, TypeError, ValueError):
        return [Finding(at, "checkpoint_malformed", "the checkpoint event lacks its position, root or signature")]
    actual = legacy_root_at(count) if count < at else None
    if actual is None or actual != root:
        return [Finding(at, "checkpoint_mismatch",
                        f"checkpoint over {count} events up to position {position} does not match the journal")]
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex)).verify(
            bytes.fromhex(signature), checkpoint_message(position, root, count))
    except (ValueError, InvalidSignature):
        return [Finding(at, "checkpoint_signature", "checkpoint signature does not verify")]
    if key is not None and key_hex != key.hex:
        return [Finding(at, "checkpoint_untrusted_key", f"checkpoint signed by an unknown key {state.get('key_id')}")]
    return []


def missing_trust(*, checkpoints: int, key: PublicKey | None, anchor: Anchor | None, key_file_exists: bool) -> list[Finding]:
    """Fail closed: what is missing to trust the journal's checkpoints (position 0)."""
    out = []
    if checkpoints and key is None:
        out.append(Finding(0, "checkpoint_key_missing",
                           f"the journal has {checkpoints} checkpoint(s) but there is no key to check them against: "
                           "journal-signing-key.pem is missing from the home; give the journal's public key with "
                           "--public-key FILE"))
    if anchor is None and (checkpoints or key_file_exists):
        out.append(Finding(0, "anchor_missing",
                           "journal-anchor.json is missing from the home, so events cut off the journal's end "
                           "would go unnoticed; give the newest published checkpoint with --anchor FILE"))
    return out


def check_anchor(anchor: Anchor, *, head: int, hash_at: Callable[[int], str | None], key: PublicKey | None,
                 origin: str | None, root_at: RootAt, newest_size: int) -> list[Finding]:
    """The anchor against the journal: its checkpoint event is there, unchanged, and (for a
    note) the journal's tree at the note's size has the note's root."""
    if anchor.unreadable:
        return [Finding(0, "anchor_unreadable", "the checkpoint anchor file cannot be read")]
    out: list[Finding] = []
    if anchor.position is not None:
        if anchor.position > head:
            return [Finding(anchor.position, "truncated",
                            f"the journal ends before its last anchored checkpoint at position {anchor.position}")]
        found = hash_at(anchor.position)
        if found is None:
            return [Finding(anchor.position, "truncated",
                            f"the journal has no event at its last anchored checkpoint position {anchor.position}")]
        if found != anchor.hash:
            out.append(Finding(anchor.position, "anchor_mismatch",
                               "the event at the anchored checkpoint position is not the one anchored"))
    if anchor.note:
        out += _check_anchor_note(anchor, head=head, key=key, origin=origin, root_at=root_at, newest_size=newest_size)
    return out


def _check_anchor_note(anchor: Anchor, *, head: int, key: PublicKey | None, origin: str | None, root_at: RootAt,
                       newest_size: int) -> list[Finding]:
    from skill_ledger.domain.notes import parse_checkpoint, parse_note

    try:
        claimed = parse_checkpoint(parse_note(anchor.note or "").text)
    except NoteError as e:
        return [Finding(0, "anchor_unreadable", f"the anchored checkpoint note is malformed: {e.message}")]
    if origin is not None and claimed.origin != origin:
        return [Finding(0, "anchor_mismatch", f"the anchored checkpoint is from {claimed.origin!r}, not {origin!r}")]
    if key is not None:
        _checkpoint, finding = open_note(anchor.note or "", claimed.origin, key, key.hex)
        if finding is not None:
            return [finding._replace(code="anchor_" + finding.code.removeprefix("checkpoint_"))]
    if claimed.size > head:
        return [Finding(claimed.size, "truncated", f"the journal ends at position {head}, before the {claimed.size} "
                                                   "events of its anchored checkpoint")]
    if claimed.size > newest_size:
        return [Finding(claimed.size, "truncated", f"the anchored checkpoint covers {claimed.size} events, more than "
                                                   f"the journal's newest checkpoint ({newest_size}): checkpoints "
                                                   "were cut off the journal")]
    actual = root_at(claimed.size)
    if actual is not None and actual != claimed.root_hash:
        return [Finding(claimed.size, "anchor_mismatch",
                        f"the journal's first {claimed.size} events are not those of the anchored checkpoint")]
    return []
