"""What the report reads: journal rows, decoded into the few members it uses.

A row is a stored event joined with its hash-chain entry (the journal recorders' ``select_rows``
shape: position, originator id, stream version, topic, the stored JSON state, and the chain
hash). The report decodes the state itself, with a typed decoder per kind that keeps only the
members the report reads: an install's manifest and an audit's report are most of a journal's
bytes, and the report needs a handful of their members. A state those decoders refuse (a member
of an unexpected type) is decoded again as plain JSON, and the fold's own checks decide what
to do with it; a state that is not JSON at all becomes an empty one. Decoding never fails.

The members kept are what the exported event shape (``events.md``) calls ``data``, plus the
envelope (``timestamp``, ``stream``, ``actor``). Nothing is upcast: the report shows what was
recorded, as ``skills journal --json`` does.
"""

from __future__ import annotations

from typing import Any, Protocol, TypedDict

import msgspec

from skill_ledger.domain.codec import kind_of_topic, recorded_at


class Row(Protocol):
    """A stored event with its chain hash (``adapters.journal``'s ``StoredRow`` has this shape)."""

    @property
    def position(self) -> int: ...
    @property
    def originator_id(self) -> str: ...
    @property
    def originator_version(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def state(self) -> bytes: ...
    @property
    def hash(self) -> str | None: ...


class Event:
    """A decoded row: the exported shape's members the report reads. ``data`` is the stored
    state (the kind's members and the envelope), a dict whatever was stored."""

    __slots__ = ("position", "hash", "kind", "stream_version", "recorded_at", "stream", "actor", "data")

    def __init__(self, position: int, hash_: str, kind: str, stream_version: int, recorded_at_: str, stream: str,
                 actor: Any, data: dict[str, Any]) -> None:
        self.position, self.hash, self.kind, self.stream_version = position, hash_, kind, stream_version
        self.recorded_at, self.stream, self.actor, self.data = recorded_at_, stream, actor, data


# --- typed decoders: only the members the report reads --------------------------------------------
# Every member is ``Any``: the type checks are the fold's, so a strange value is shown as it is
# rather than refused here. Only the nesting is typed, which is what lets msgspec skip the rest.


class _Operator(TypedDict, total=False):
    display_name: Any
    description: Any


class _Manifest(TypedDict, total=False):
    name: Any
    operator: _Operator
    compat: Any


class _Envelope(TypedDict, total=False):
    timestamp: Any
    stream: Any
    actor: Any


class _ArtifactVerified(_Envelope, total=False):
    version: Any
    publisher: Any
    key_id: Any
    key_hex: Any
    trust_decision: Any
    payload_sha256: Any
    artifact_sha256: Any
    source: Any
    manifest: _Manifest


class _Check(TypedDict, total=False):
    check_id: Any
    status: Any


class _Audited(_Envelope, total=False):
    version: Any
    trigger: Any
    passed: Any
    policy_version: Any
    should_quarantine: Any
    quarantine_reasons: Any
    checks: list[_Check]


class _Light(msgspec.Struct):
    """The envelope alone: for time lookups (``--since``/``--until`` given as times)."""

    timestamp: Any = None


_TYPED: dict[str, Any] = {
    "skill.artifact_verified": _ArtifactVerified,
    "skill.audited": _Audited,
}
_generic = msgspec.json.Decoder()
_light = msgspec.json.Decoder(_Light)
_decoders: dict[str, Any] = {}  # topic -> (kind, decode function)


def _decoder_for(topic: str) -> tuple[str, Any]:
    found = _decoders.get(topic)
    if found is None:
        kind = kind_of_topic(topic)
        typed = _TYPED.get(kind)
        found = (kind, msgspec.json.Decoder(typed).decode if typed is not None else _generic.decode)
        if len(_decoders) < 1024:  # topics are few; a hostile journal must not grow this
            _decoders[topic] = found
    return found


def decode_state(topic: str, state: bytes) -> tuple[str, Any]:
    """(kind, decoded state): a dict for every well-formed event; anything else as decoded."""
    kind, decode = _decoder_for(topic)
    try:
        return kind, decode(state)
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError:
        return kind, {}
    try:
        return kind, _generic.decode(state)
    except msgspec.DecodeError:  # pragma: no cover - the typed decoder would have said so
        return kind, {}


def decode(row: Row) -> Event:
    """The event of a row (never fails: an unreadable state is an event with no data)."""
    kind, state = decode_state(row.topic, row.state)
    data = state if isinstance(state, dict) else {}
    timestamp = data.get("timestamp")
    stream = data.get("stream")
    return Event(row.position, row.hash or "", kind, row.originator_version,
                 recorded_at(timestamp) if isinstance(timestamp, str) else "",
                 stream if isinstance(stream, str) else "", data.get("actor"), data)


def timestamp_of(row: Row) -> str | None:
    """The recorded time of a row (its envelope only), or None."""
    try:
        t = _light.decode(row.state).timestamp
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return recorded_at(t) if isinstance(t, str) else None
