"""Checkpoints of the journal: the key that signs them, recording one, and the anchor file
that remembers the newest one outside the journal.

``journal checkpoint`` signs only what it verified: before signing it verifies the events
since the newest checkpoint (their chains, and that the tree extends that checkpoint), as
``journal verify --since-checkpoint`` does. It refuses, failing closed, when the journal has
checkpoints but the home lost their key (a new key would make them all unverifiable and
lets a forger start afresh) or their anchor (it would re-anchor a journal whose end may
have been cut off); ``reanchor=True`` accepts the journal's end as it is, on purpose.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from skill_ledger.adapters.journal.checkpoint_trust import Anchor
from skill_ledger.adapters.journal.pubkey import PublicKey
from skill_ledger.adapters.journal.sqlite import chain_hash
from skill_ledger.adapters.settings import Settings
from skill_ledger.adapters.storage.files import read_bounded
from skill_ledger.domain.errors import JournalTampered, JournalUnverifiable, SkillLedgerError, UsageError

from .unit_of_work import Ledger

JOURNAL_KEY_FILE = "journal-signing-key.pem"
JOURNAL_ANCHOR_FILE = "journal-anchor.json"
ANCHOR_FORMAT = 2
MAX_ANCHOR_FILE = 300 * 1024  # a note is at most 256 KiB


def journal_key_path(settings: Settings) -> Path:
    return settings.home / JOURNAL_KEY_FILE


def journal_anchor_path(settings: Settings) -> Path:
    return settings.home / JOURNAL_ANCHOR_FILE


def journal_seed(settings: Settings, *, create: bool) -> bytes | None:
    """The local key that signs checkpoints (PKCS#8 PEM, 0600), created on first use."""
    from skill_ledger.adapters.storage.files import atomic_write
    from skill_ledger.domain.signing import parse_signing_key, private_key_pem

    path = journal_key_path(settings)
    if path.exists():
        return parse_signing_key(read_bounded(path, 16 * 1024))
    if not create:
        return None
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    try:
        atomic_write(path, private_key_pem(seed), mode=0o600, exclusive=True)
    except FileExistsError:  # another process created it first: use theirs
        return parse_signing_key(read_bounded(path, 16 * 1024))
    return seed


def home_public_key(settings: Settings) -> PublicKey | None:
    """The checkpoint key as this home knows it (derived from its signing key), or None."""
    from skill_ledger.domain.signing import public_key_from_seed

    seed = journal_seed(settings, create=False)
    return PublicKey(public_key_from_seed(seed), source="home") if seed else None


def journal_origin(ledger: Ledger, requested: str | None = None) -> str:
    """The journal's origin: the one its checkpoints already use, else ``requested``, else
    ``skill-ledger/<hash prefix of its first event>``."""
    from skill_ledger.domain.checkpoints import Checkpoints, default_origin, valid_origin

    if requested is not None and not valid_origin(requested):
        raise UsageError(f"--origin {requested!r}: an origin is one word of at most 200 characters, with no spaces, "
                         "'+' or control characters")
    recorded = ledger.load(Checkpoints, "checkpoints").origin
    if recorded:
        if requested is not None and requested != recorded:
            raise UsageError(f"this journal's checkpoints already use the origin {recorded!r}; it cannot change",
                             {"origin": recorded})
        return recorded
    if requested is not None:
        return requested
    first = chain_hash(ledger.app, 1)
    if not first:
        raise UsageError("the journal is empty: there is nothing to checkpoint yet")
    return default_origin(first)


def record_checkpoint(ledger: Ledger, *, origin: str | None = None, reanchor: bool = False) -> dict[str, Any]:
    """Verify the events since the newest checkpoint, then sign the tree of the journal as
    verified (size and Merkle root) as a C2SP checkpoint, record it and anchor it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from skill_ledger.adapters.journal.since import verify_since_checkpoint
    from skill_ledger.adapters.journal.tree import JournalTree
    from skill_ledger.domain.checkpoints import Checkpoints, checkpoint_note
    from skill_ledger.domain.notes import NoteSigner
    from skill_ledger.domain.signing import key_id

    settings = ledger.settings
    existing = ledger.load(Checkpoints, "checkpoints").version
    seed = journal_seed(settings, create=not existing)
    if seed is None:
        raise JournalUnverifiable(
            f"{JOURNAL_KEY_FILE} is missing from the home, but the journal has {existing} checkpoint(s) signed with "
            "it; restore the key from a backup (a new key would leave every earlier checkpoint unverifiable)",
            {"checkpoints": existing})
    anchor = read_anchor(settings)
    if existing and anchor is None and not reanchor:
        raise JournalUnverifiable(
            f"{JOURNAL_ANCHOR_FILE} is missing from the home, so a journal whose end was cut off cannot be told "
            "apart; check the journal against the newest published checkpoint (skills journal verify --anchor "
            "FILE), then record a checkpoint with --reanchor", {"checkpoints": existing})
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    public = sk.public_key().public_bytes_raw()
    key = PublicKey(public, source="home")
    report = verify_since_checkpoint(ledger.app, key=key, anchor=None if reanchor else anchor,
                                     journal_url=settings.journal_url)
    first = report.first_problem()
    if first is not None:
        raise JournalTampered(f"refusing to sign a damaged journal: position {first.position}: {first.message} "
                              "(see skills journal verify)", {"position": first.position, "problem": first.code})
    size = report.head
    tree = JournalTree(ledger.app)

    def attempt() -> dict[str, Any]:
        name = journal_origin(ledger, origin)
        root = tree.extend(size).root()
        signer = NoteSigner(name, sk)
        note = checkpoint_note(name, size, root, signer)
        agg = ledger.load(Checkpoints, "checkpoints")
        agg.record(ledger.actor, size=size, root=root, origin=name, key_id=key_id(public), public_key_hex=public.hex(),
                   note=note)
        positions = ledger.save(agg)
        return {"position": size, "event_count": size, "tree_size": size, "root_hash": root.hex(), "origin": name,
                "key_id": key_id(public), "verifier_key": signer.verifier().vkey, "public_key_hex": public.hex(),
                "note": note, "positions": positions}

    try:
        result = ledger.retrying(attempt)
    finally:
        tree.close()
    write_anchor(ledger, result["positions"][0], result["note"])
    result["anchor"] = str(journal_anchor_path(settings))
    return result


def write_anchor(ledger: Ledger, position: int, note: str) -> None:
    """Remember, outside the journal, the newest checkpoint event (position, chain hash) and
    its note: nothing inside a journal can show that events were cut off its end, this file
    can (and the note can be published anywhere)."""
    from skill_ledger.adapters.storage.files import atomic_write
    from skill_ledger.domain.text import dumps_pretty

    anchor = {"format": ANCHOR_FORMAT, "position": position, "hash": chain_hash(ledger.app, position) or "",
              "checkpoint": note}
    atomic_write(journal_anchor_path(ledger.settings), dumps_pretty(anchor).encode(), mode=0o600)


def read_anchor(settings: Settings) -> Anchor | None:
    """The home's anchor (None when there is none; ``unreadable`` when it is damaged)."""
    path = journal_anchor_path(settings)
    if not path.exists():
        return None
    try:
        data = read_bounded(path, MAX_ANCHOR_FILE)
    except SkillLedgerError:
        return Anchor(unreadable=True)
    return parse_anchor(data, source="home")


def parse_anchor(data: bytes, *, source: str) -> Anchor:
    """An anchor file (format 1: {position, hash}; format 2 adds the checkpoint note), or a
    bare checkpoint note as published (``--anchor FILE``)."""
    text = data.decode("utf-8", errors="replace")
    if not text.lstrip().startswith("{"):
        return Anchor(note=text, source=source) if text.strip() else Anchor(source=source, unreadable=True)
    try:
        doc = json.loads(text)
        position, digest = doc["position"], doc["hash"]
        note = doc.get("checkpoint")
        if not isinstance(position, int) or isinstance(position, bool) or position < 1 or not isinstance(digest, str):
            raise ValueError("bad position or hash")
        if note is not None and not isinstance(note, str):
            raise ValueError("bad checkpoint")
    except (ValueError, KeyError, TypeError, AttributeError):
        return Anchor(source=source, unreadable=True)
    return Anchor(position=position, hash=digest, note=note or None, source=source)
