"""The ``Checkpoints`` aggregate (``journal:checkpoints``): signed statements of the
journal's head. A checkpoint fixes the number of events up to a position and a root
hash over their chain hashes, so truncating or rewriting history before it is detected
even by someone who recomputes every per-stream hash."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import ClassVar

from .events import Actor, LedgerAggregate, LedgerEvent

CHECKPOINT_CONTEXT = b"skill-ledger.journal.checkpoint.v1"


def root_hash(event_hashes: Iterable[str]) -> str:
    """A running SHA-256 over the chain hashes in position order."""
    h = hashlib.sha256(CHECKPOINT_CONTEXT)
    for e in event_hashes:
        h.update(bytes.fromhex(e))
    return h.hexdigest()


def checkpoint_message(position: int, root: str, event_count: int) -> bytes:
    return f"{CHECKPOINT_CONTEXT.decode()}:{position}:{root}:{event_count}".encode()


class CheckpointRecorded(LedgerEvent):
    KIND: ClassVar[str] = "journal.checkpoint"
    position: int
    root_hash: str
    event_count: int
    key_id: str
    public_key_hex: str
    signature: str

    def apply(self, checkpoints: "Checkpoints") -> None:
        """The statement is the record; no decision reads it (``journal verify`` checks it)."""


class Checkpoints(LedgerAggregate):
    PREFIX: ClassVar[str] = "journal"

    def record(self, actor: Actor, *, position: int, root: str, event_count: int, key_id: str,
               public_key_hex: str, signature: str) -> None:
        self._record(CheckpointRecorded, actor, position=position, root_hash=root, event_count=event_count,
                     key_id=key_id, public_key_hex=public_key_hex, signature=signature)
