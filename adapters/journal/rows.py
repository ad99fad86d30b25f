"""The journal's rows as export and verify read them: a stored event joined with its chain row,
read in position order through the recorder (SQLite or PostgreSQL: both offer ``select_rows``),
and the exported event shape of ``events.md`` made from one."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

from skill_ledger.domain.codec import CURRENT_CHAIN_FORMAT, exported_event, originator_text

_raw_decoder = msgspec.json.Decoder()


class StoredRow(msgspec.Struct, frozen=True):
    """A stored event joined with its chain row (chain members None when it has none)."""

    position: int
    originator_id: str  # hex, as stored
    originator_version: int
    topic: str
    state: bytes
    prev_hash: str | None
    hash: str | None
    chain_format: int = CURRENT_CHAIN_FORMAT
    chain_originator_id: str | None = None  # the chain row's own copy (hex)
    chain_originator_version: int | None = None
    db_session_user: str | None = None  # PostgreSQL: stamped by the server on the chain row
    db_current_user: str | None = None

    @property
    def db_role(self) -> dict[str, str] | None:
        if self.db_session_user is None and self.db_current_user is None:
            return None
        return {"session_user": self.db_session_user or "", "current_user": self.db_current_user or ""}


def chained(app: Any) -> Any:
    """The journal's recorder (SQLite or PostgreSQL), with the chained-journal reads."""
    recorder = app.recorder
    assert hasattr(recorder, "select_rows"), f"not a chained journal recorder: {type(recorder).__name__}"
    return recorder


def chain_hash(app: Any, position: int) -> str | None:
    """The chain hash of the event at ``position`` (None when there is none)."""
    return chained(app).chain_hash(position)


def iter_rows(app: Any, *, after: int = 0, until: int | None = None, topics: Sequence[str] = (),
              originator_ids: Sequence[str] = (), batch: int = 2000) -> Iterator[StoredRow]:
    """Stored events joined with their chain rows, in position order (raw, for export and verify).
    ``originator_ids`` are UUID hex strings."""
    recorder = chained(app)
    while True:
        rows = recorder.select_rows(after, until, topics, originator_ids, batch)
        if not rows:
            return
        yield from rows
        after = rows[-1].position


def export_row(row: StoredRow) -> dict[str, Any]:
    """The exported event shape (``events.md``) of a stored row, exactly what the hash covers."""
    state = _raw_decoder.decode(row.state)
    try:
        oid = originator_text(row.originator_id)
    except ValueError:
        oid = str(row.originator_id)  # not a UUID at all: shown as stored (verify reports it)
    out = exported_event(row.position, row.originator_version, row.topic, state, row.prev_hash or "",
                         chain=row.chain_format, originator_id=oid, db_role=row.db_role)
    out["hash"] = row.hash or ""
    return out

