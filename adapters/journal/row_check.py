"""The checks of each stored event, the same in every verify mode (full, in chunks over worker
processes, since a checkpoint).

Every stored column is checked against what the hash covers: the position follows the one
before; the originator id is the name-based UUID of the event's stream, and the chain row's copy
the event's (``_bindings``); the stream version and ``prev_hash`` follow the stream's previous
event; the topic is one this version reads (``_topic``); the chain format is known and never goes
back (``_format``); the stored hash is the one recomputed over the exported shape of its chain
format, and for format 2 the stored state bytes are exactly the canonical encoding of the hashed
members (``_hash``, ``domain.codec``).

A finding is ``(position, code, message)``: plain tuples, as worker processes send them back.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from skill_ledger.domain.codec import (
    CHAIN_FORMATS,
    GENESIS_HASH,
    event_hash,
    exported_event,
    originator_text,
    state_bytes,
)
from skill_ledger.domain.events import registered_topics, stream_uuid

from .rows import StoredRow

Finding = tuple[int, str, str]
_NO_HEAD = (0, GENESIS_HASH)  # a stream's head before its first event
_decoder = msgspec.json.Decoder()
_canonical = msgspec.json.Encoder(order="sorted")  # domain.codec's canonical encoding


class RowChecker:
    """The checks of each event, in position order. ``links_known=False`` (a range that does not
    start at position 1): a stream's first event in the range is only remembered in ``firsts``
    (position, version, prev_hash), for the caller to link to the stream's earlier events; and
    the chain formats seen before the range are the caller's to compare with ``first_of_format``
    (unless given as ``newest_format``)."""

    def __init__(self, first_position: int | None = 1, *, links_known: bool = True,
                 newest_format: int = min(CHAIN_FORMATS)) -> None:
        """``first_position`` None: whatever position comes first is not checked (a chunk
        of a parallel pass: the caller checks it against the previous chunk's last)."""
        self.expected = first_position
        self.first: int | None = None
        self.last = 0
        self.links_known = links_known
        self.heads: dict[str, tuple[int, str]] = {}  # originator_id -> (version, hash)
        self.firsts: dict[str, tuple[int, int, str | None]] = {}
        self.problems: list[Finding] = []
        self.count = 0
        self.newest_format = newest_format
        self.first_of_format: dict[int, int] = {}  # chain format -> first position with it
        self._readable = registered_topics()

    def check(self, row: StoredRow) -> tuple[bytes, dict[str, Any]]:
        """Record the row's problems; returns its tree leaf and its decoded state (empty when it
        cannot be decoded)."""
        self.count += 1
        if self.first is None:
            self.first = row.position
        if self.expected is not None and row.position != self.expected:
            self.problems.append((self.expected, "missing_event",
                                  f"positions jump from {self.expected - 1} to {row.position}: events deleted"))
        self.expected = row.position + 1
        self.last = row.position
        if type(row.originator_version) is not int:  # SQLite stores any type in any column
            self.problems.append((row.position, "stream_version_gap",
                                  f"stream version {row.originator_version!r} is not an integer"))
            row = msgspec.structs.replace(row, originator_version=-1)  # matches no link and no hash
        state = _decoded(row)
        if state is not None and self._sound(row, state):
            self.heads[row.originator_id] = (row.originator_version, row.hash)
            return bytes.fromhex(row.hash), state
        return self._check_each(row, state)

    def _sound(self, row: StoredRow, state: dict[str, Any]) -> bool:
        """The common case at once: the next event of a stream already seen here, bound to its
        originator id, of a readable topic and the newest chain format seen, linked and hashed
        right. Exactly when ``_check_each`` would find nothing and change nothing but the
        stream's head; False sends the row through it."""
        known = self.heads.get(row.originator_id)
        if known is None and not self.links_known:  # the stream's first event in the range: _link's part
            self.firsts[row.originator_id] = (row.position, row.originator_version, row.prev_hash)
        else:
            version, prev = known or _NO_HEAD
            if row.originator_version != version + 1 or row.prev_hash != prev:
                return False
        stream = state.get("stream")
        fmt = row.chain_format
        if (row.hash is None or row.chain_originator_id != row.originator_id
                or row.chain_originator_version != row.originator_version
                or (isinstance(stream, str) and not _is_bound(row.originator_id, stream))
                or row.topic not in self._readable or fmt != self.newest_format or fmt not in self.first_of_format):
            return False
        self.newest_format = fmt  # as _format does (the same value)
        try:
            exported = self._exported(row, state)
            if event_hash(exported) != row.hash:
                return False
        except (KeyError, TypeError, ValueError):
            return False
        return fmt < 2 or canonical_state(state, row.state)

    def _check_each(self, row: StoredRow, state: dict[str, Any] | None) -> tuple[bytes, dict[str, Any]]:
        """Every check, one by one, each finding recorded."""
        self._bindings(row, state)
        self._topic(row)
        known = self._link(row)
        if row.hash is None:
            self.problems.append((row.position, "chain_missing", "event has no hash-chain entry"))
            self.heads[row.originator_id] = (row.originator_version, known[1] if known else GENESIS_HASH)
            return _leaf(row, ""), state or {}
        self._format(row)
        if known is not None and row.prev_hash != known[1]:
            self.problems.append((row.position, "chain_broken", "prev_hash does not match the stream's previous hash"))
        actual = self._hash(row, state)
        self.heads[row.originator_id] = (row.originator_version, row.hash)
        return _leaf(row, actual), state or {}

    def _link(self, row: StoredRow) -> tuple[int, str] | None:
        """The stream's previous (version, hash) when known here; checks the stream version."""
        known = self.heads.get(row.originator_id)
        if known is None:
            if not self.links_known:
                self.firsts[row.originator_id] = (row.position, row.originator_version, row.prev_hash)
                return None
            known = (0, GENESIS_HASH)
        if row.originator_version != known[0] + 1:
            self.problems.append((row.position, "stream_version_gap",
                                  f"stream version {row.originator_version} follows {known[0]}"))
        return known

    def _bindings(self, row: StoredRow, state: dict[str, Any] | None) -> None:
        """The originator id is the name-based UUID of the event's stream (``domain.events``), and
        the chain row is this event's (same originator id and stream version). A stream moved to
        another originator id, or a chain row re-pointed, is found here in every chain format."""
        stream = state.get("stream") if state else None
        if isinstance(stream, str) and not _is_bound(row.originator_id, stream):
            self.problems.append((row.position, "originator_mismatch",
                                  (f"stored under originator id {row.originator_id}, which is not the id of "
                                   f"stream {stream!r} (events moved to another stream id)")))
        if row.hash is not None and (row.chain_originator_id != row.originator_id
                                     or row.chain_originator_version != row.originator_version):
            self.problems.append((row.position, "chain_entry_mismatch",
                                  "the hash-chain entry names another stream or stream version than its event"))

    def _topic(self, row: StoredRow) -> None:
        """The topic is a registered event class's current topic or one of its older versions
        (which an upcaster reads). Anything else would break every read."""
        if row.topic not in self._readable:
            self.problems.append((row.position, "unknown_topic",
                                  (f"topic {row.topic!r} is not an event this version can read "
                                   "(renamed or re-versioned)")))

    def _format(self, row: StoredRow) -> None:
        """The chain format is one this version knows, and never goes back: once a journal writes
        format 2, a later format-1 entry is a downgrade (its originator id and topic unbound)."""
        fmt = row.chain_format
        self.first_of_format.setdefault(fmt, row.position)
        if fmt not in CHAIN_FORMATS:
            self.problems.append((row.position, "chain_format", f"unknown hash-chain format {fmt!r}"))
        elif fmt < self.newest_format:
            self.problems.append((row.position, "chain_format",
                                  f"hash-chain format {fmt} after format {self.newest_format} (downgraded entry)"))
        else:
            self.newest_format = fmt

    def _hash(self, row: StoredRow, state: dict[str, Any] | None) -> str:
        """The hash recomputed over the exported shape of the chain row's format (returned; ""
        when it cannot be); for format 2 also the stored state bytes from the hashed members."""
        if state is None:
            self.problems.append((row.position, "undecodable", "stored event is not a JSON object"))
            return ""
        try:
            exported = self._exported(row, state)
            actual = event_hash(exported)
        except (KeyError, TypeError, ValueError) as e:
            self.problems.append((row.position, "undecodable", f"stored event cannot be decoded: {e}"))
            return ""
        if actual != row.hash:
            self.problems.append((row.position, "hash_mismatch",
                                  "stored event does not match its hash (edited or moved)"))
        elif row.chain_format >= 2 and state_bytes(exported) != row.state:
            self.problems.append((row.position, "state_not_canonical",
                                  "stored state bytes are not the canonical encoding of the hashed event (edited)"))
        return actual

    def _exported(self, row: StoredRow, state: dict[str, Any]) -> dict[str, Any]:
        return exported_event(row.position, row.originator_version, row.topic, state, row.prev_hash or "",
                              chain=row.chain_format, originator_id=self._exported_id(row), db_role=row.db_role)

    def _exported_id(self, row: StoredRow) -> str:
        text = _exported_oid(row.originator_id)
        return str(row.originator_id) if text is None else text  # not a UUID at all: hashed as stored (and reported)


# Pure functions of a stored originator id (and stream), remembered across chunks and checkers
# (typed: an id stored as a number is never taken for one stored as text).
@functools.lru_cache(maxsize=1 << 16, typed=True)
def _exported_oid(originator_id: Any) -> str | None:
    """The stored originator id as the exported shape writes it; None when it is not a UUID."""
    try:
        return originator_text(originator_id)
    except ValueError:
        return None


@functools.lru_cache(maxsize=1 << 16, typed=True)
def _is_bound(originator_id: Any, stream: str) -> bool:
    """Whether the originator id is the name-based UUID of the stream."""
    text = _exported_oid(originator_id)
    return text is not None and text == str(stream_uuid(stream))


def canonical_state(state: dict[str, Any], stored: bytes) -> bool:
    """``state_bytes(exported) == stored`` for the exported shape of ``state`` (decoded from
    ``stored``, with a string ``timestamp``), without building the shape's state again: that
    state is ``state`` itself but for a timestamp written ``...+00:00``, which comes back as
    ``...Z`` (so such bytes are never canonical)."""
    return not state["timestamp"].endswith("+00:00") and _canonical.encode(state) == stored


def format_downgrades(first_of_format: dict[int, int], newest_before: int, found: list[Finding]) -> list[Finding]:
    """A range's chain formats against the newest format before the range: each older format's
    first position in the range is a downgrade (unless the range reported it itself)."""
    reported = {p for p, code, _m in found if code == "chain_format"}
    return [(position, "chain_format", f"hash-chain format {fmt} after format {newest_before} (downgraded entry)")
            for fmt, position in sorted(first_of_format.items())
            if fmt in CHAIN_FORMATS and fmt < newest_before and position not in reported]


def link(firsts: dict[str, tuple[int, int, str | None]], heads: dict[str, tuple[int, str]]) -> list[Finding]:
    """Check each stream's first event of a range against the stream's head before the range."""
    out = []
    for originator, (position, version, prev) in firsts.items():
        known_version, known_hash = heads.get(originator, (0, GENESIS_HASH))
        if version != known_version + 1:
            out.append((position, "stream_version_gap", f"stream version {version} follows {known_version}"))
        if prev is not None and prev != known_hash:
            out.append((position, "chain_broken", "prev_hash does not match the stream's previous hash"))
    return out


def _decoded(row: StoredRow) -> dict[str, Any] | None:
    """The stored state as a JSON object (None when it is not one)."""
    try:
        state = _decoder.decode(row.state)
    except msgspec.DecodeError:
        return None
    return state if isinstance(state, dict) else None


def _leaf(row: StoredRow, actual: str) -> bytes:
    """The tree leaf of a row: its chain hash (the recomputed one when that is missing or bad)."""
    for value in (row.hash, actual):
        if value and len(value) == 64:
            try:
                return bytes.fromhex(value)
            except ValueError:
                pass
    return bytes(32)
