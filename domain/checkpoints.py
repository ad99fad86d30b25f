"""The ``Checkpoints`` aggregate (``journal:checkpoints``): signed statements of the journal's
head, so that rewriting or truncating history before one is detected even by someone who
recomputes every per-stream hash.

Version 2 (this one) is a transparency-log checkpoint: the tree size and the RFC 9162 Merkle
root of the events 1..size (``domain.merkle``), signed as a C2SP ``tlog-checkpoint`` in the
C2SP ``signed-note`` format (``domain.notes``) by the journal's Ed25519 key. The key name of
the signature is the checkpoint's origin, a stable name of the journal. The note text is the
record: ``position``, ``event_count`` and ``root_hash`` repeat what it says, for readers of
the event that do not parse notes.

Version 1 signed ``checkpoint_message(position, root, count)`` with a running SHA-256 over
the chain hashes (``legacy_root_hash``). Journals keep their version-1 events as recorded
(the exported shape is never upcast) and ``journal verify`` still checks them that way; the
upcaster below only lets the aggregate and the projections read them in the new shape.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from .events import Actor, LedgerAggregate, LedgerEvent

if TYPE_CHECKING:  # notes needs cryptography, which replaying the aggregates does not
    from .notes import NoteSigner

CHECKPOINT_CONTEXT = b"skill-ledger.journal.checkpoint.v1"
ORIGIN_PREFIX = "skill-ledger/"
MAX_ORIGIN_LENGTH = 200


def root_hash(event_hashes: Iterable[str]) -> str:
    """Version 1's root: a running SHA-256 over the chain hashes in position order."""
    h = hashlib.sha256(CHECKPOINT_CONTEXT)
    for e in event_hashes:
        h.update(bytes.fromhex(e))
    return h.hexdigest()


legacy_root_hash = root_hash


def checkpoint_message(position: int, root: str, event_count: int) -> bytes:
    """What a version-1 checkpoint signed."""
    return f"{CHECKPOINT_CONTEXT.decode()}:{position}:{root}:{event_count}".encode()


def default_origin(first_event_hash: str) -> str:
    """The origin of a journal that was not given one: ``skill-ledger/<first 16 hex digits of
    the hash of its first event>``. The first event never changes, so neither does the name,
    and two journals do not share it."""
    return f"{ORIGIN_PREFIX}{first_event_hash[:16]}"


def valid_origin(origin: object) -> bool:
    """An origin is also the signature's key name: no spaces, ``+`` or control characters."""
    from .notes import is_valid_key_name

    return is_valid_key_name(origin) and len(str(origin)) <= MAX_ORIGIN_LENGTH


def checkpoint_note(origin: str, size: int, root: bytes, signer: NoteSigner) -> str:
    """The signed note of a checkpoint of ``size`` events with Merkle root ``root``."""
    from .notes import Checkpoint, sign_checkpoint

    return sign_checkpoint(Checkpoint(origin, size, root), signer)


class CheckpointRecorded(LedgerEvent):
    KIND: ClassVar[str] = "journal.checkpoint"
    VERSION: ClassVar[int] = 2
    position: int  # the tree size: the checkpoint covers the events at positions 1..position
    event_count: int  # the same number (the name version 1 used)
    root_hash: str  # the Merkle root, 64 hex digits (version 1: legacy_root_hash)
    key_id: str  # the journal key's id (domain.signing.key_id)
    public_key_hex: str
    origin: str  # the checkpoint's origin line and key name ("" in a version-1 event)
    note: str  # the C2SP signed note ("" in a version-1 event)

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """A version-1 statement has no note and no origin; its hex signature stays in the
        recorded event, where ``journal verify`` checks it."""
        state.pop("signature", None)
        state["origin"] = ""
        state["note"] = ""

    def apply(self, checkpoints: Checkpoints) -> None:
        if self.origin:
            checkpoints.origin = self.origin
            checkpoints.tree_size = self.position
            checkpoints.note = self.note


class Checkpoints(LedgerAggregate):
    PREFIX: ClassVar[str] = "journal"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.origin = ""  # of the newest version-2 checkpoint: every later one keeps it
        self.tree_size = 0
        self.note = ""

    def record(self, actor: Actor, *, size: int, root: bytes, origin: str, key_id: str, public_key_hex: str,
               note: str) -> None:
        self._record(CheckpointRecorded, actor, position=size, event_count=size, root_hash=root.hex(),
                     key_id=key_id, public_key_hex=public_key_hex, origin=origin, note=note)
