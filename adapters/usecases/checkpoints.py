"""Checkpoints of the journal: the local key that signs them, recording one, and the anchor
file that remembers the newest one outside the journal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skill_ledger.adapters.journal.sqlite import iter_rows
from skill_ledger.adapters.settings import Settings
from skill_ledger.adapters.storage.files import read_bounded
from skill_ledger.domain.errors import SkillLedgerError
from skill_ledger.domain.signing import key_id as compute_key_id

from .unit_of_work import Ledger

JOURNAL_KEY_FILE = "journal-signing-key.pem"
JOURNAL_ANCHOR_FILE = "journal-anchor.json"


def journal_key_path(settings: Settings) -> Path:
    return settings.home / JOURNAL_KEY_FILE


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


def record_checkpoint(ledger: Ledger) -> dict[str, Any]:
    """Sign (position, root hash, event count) of the journal as it is now, and record it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from skill_ledger.domain.checkpoints import Checkpoints, checkpoint_message, root_hash

    seed = journal_seed(ledger.settings, create=True)
    assert seed is not None
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    public_hex = sk.public_key().public_bytes_raw().hex()
    kid = compute_key_id(bytes.fromhex(public_hex))

    def attempt() -> dict[str, Any]:
        hashes = [row.hash or "" for row in iter_rows(ledger.app)]
        position = len(hashes)
        root = root_hash(hashes)
        signature = sk.sign(checkpoint_message(position, root, position)).hex()
        agg = ledger.load(Checkpoints, "checkpoints")
        agg.record(ledger.actor, position=position, root=root, event_count=position, key_id=kid,
                   public_key_hex=public_hex, signature=signature)
        return {"position": position, "root_hash": root, "event_count": position, "key_id": kid,
                "positions": ledger.save(agg)}

    result = ledger.retrying(attempt)
    _write_anchor(ledger, result["positions"][0])
    return result


def _write_anchor(ledger: Ledger, position: int) -> None:
    """Remember, outside the journal, the newest checkpoint event and its chain hash: nothing
    inside a journal can show that events were cut off its end, this file can."""
    from skill_ledger.adapters.journal.sqlite import chain_hash
    from skill_ledger.adapters.storage.files import atomic_write
    from skill_ledger.domain.text import dumps_pretty

    anchor = {"position": position, "hash": chain_hash(ledger.app, position) or ""}
    atomic_write(ledger.settings.home / JOURNAL_ANCHOR_FILE, dumps_pretty(anchor).encode(), mode=0o600)


def read_anchor(settings: Settings) -> dict[str, Any] | None:
    """The anchor file's position and hash; ``unreadable`` when it is there but damaged."""
    path = settings.home / JOURNAL_ANCHOR_FILE
    if not path.exists():
        return None
    import json

    try:
        doc = json.loads(read_bounded(path, 4096))
        return {"position": int(doc["position"]), "hash": str(doc["hash"])}
    except (ValueError, KeyError, TypeError, SkillLedgerError):
        return {"position": 0, "hash": "", "unreadable": True}
