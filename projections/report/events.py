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

from .model import Actor


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


class EventRow(msgspec.Struct, frozen=True, gc=False):
    """A ``Row`` as plain data (a source that builds its rows itself: a lean read, a test's events)."""

    position: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes
    hash: str | None


class Event(msgspec.Struct, gc=False):
    """A decoded row: the exported shape's members the report reads. ``data`` is the stored
    state (the kind's members and the envelope), a dict whatever was stored."""

    position: int
    hash: str
    kind: str
    stream_version: int
    recorded_at: str
    stream: str
    actor: Any
    data: dict[str, Any]


# --- typed decoders: only the members the report reads --------------------------------------------
# Every member is ``Any``: the type checks are the fold's, so a strange value is shown as it is
# rather than refused here. Only the nesting is typed (which is what lets msgspec skip the rest),
# and the actor, decoded into the report's own struct (a state with another shape of actor is
# decoded again as plain JSON). Every kind keeps ``version``, ``reason`` and ``reason_code``:
# an event the fold cannot use is shown with them.


class _Operator(TypedDict, total=False):
    display_name: Any
    description: Any


class _Manifest(TypedDict, total=False):
    name: Any
    operator: _Operator
    compat: Any


class _Check(msgspec.Struct, gc=False):
    check_id: Any = None
    status: Any = None


_ENVELOPE = {"timestamp": Any, "stream": Any, "actor": Actor, "version": Any, "reason": Any, "reason_code": Any}
_MEMBERS: dict[str, dict[str, Any]] = {
    "skill.artifact_verified": {"publisher": Any, "key_id": Any, "key_hex": Any, "trust_decision": Any,
                                "payload_sha256": Any, "artifact_sha256": Any, "source": Any, "manifest": _Manifest},
    "skill.audited": {"trigger": Any, "passed": Any, "policy_version": Any, "should_quarantine": Any,
                      "quarantine_reasons": Any, "checks": list[_Check]},
    "skill.installed": {"artifact_sha256": Any, "payload_sha256": Any},
    "skill.current_changed": {"from_version": Any, "to_version": Any, "cause": Any},
    "skill.activated": {},
    "skill.quarantined": {"details": Any},
    "skill.enabled": {"override": Any, "audit_passed": Any},
    "skill.disabled": {},
    "skill.verified": {"trust_decision": Any, "payload_sha256": Any},
    "skill.removed": {},
    "skill.execution_denied": {"tool_id": Any},
    "publisher.key_allowlisted": {"key_hex": Any, "key_id": Any},
    "publisher.key_pinned": {"key_hex": Any, "key_id": Any, "first_skill_id": Any, "first_version": Any},
    "publisher.key_revoked": {"key_hex": Any, "key_id": Any},
    "policy.changed": {"policy": Any, "changed": Any},
    "artifact.rejected": {"artifact_sha256": Any, "error_code": Any, "source": Any, "message": Any,
                          "skill_id": Any, "publisher": Any},
    "journal.checkpoint": {"position": Any, "event_count": Any, "root_hash": Any, "key_id": Any},
    # secrets: the scope and key names and whether a value was replaced; never a value (none is
    # recorded, and a member this table does not name is dropped by the decoder anyway)
    "skill.secret_set": {"scope": Any, "key": Any, "replaced": Any},
    "skill.secret_removed": {"scope": Any, "key": Any},
    "secret.set": {"scope": Any, "key": Any, "replaced": Any},
    "secret.removed": {"scope": Any, "key": Any},
    # registries (``registry:<name>`` streams): the TUF trust roots skills are installed from
    "registry.added": {"name": Any, "url": Any, "root_sha256": Any, "root_version": Any},
    "registry.removed": {"name": Any},
    "registry.metadata_trusted": {"name": Any, "metadata": Any},
    "registry.target_installed": {"name": Any, "skill_id": Any, "target": Any, "artifact_sha256": Any,
                                  "payload_sha256": Any, "metadata": Any, "downgraded_from": Any},
    "registry.update_refused": {"name": Any, "operation": Any, "skill_id": Any, "code": Any, "tuf_error": Any,
                                "phase": Any, "detail": Any},
}
_TYPED: dict[str, Any] = {kind: TypedDict(f"_{kind.replace('.', '_')}", {**_ENVELOPE, **members},  # type: ignore[misc]
                                          total=False)
                          for kind, members in _MEMBERS.items()}


class _Light(msgspec.Struct):
    """The envelope alone: for time lookups (``--since``/``--until`` given as times)."""

    timestamp: Any = None


_generic = msgspec.json.Decoder()
_light = msgspec.json.Decoder(_Light)
_decoders: dict[str, Any] = {}  # topic -> (kind, decode function)


def _decoder_for(topic: str) -> tuple[str, Any]:
    """(kind, decode function) of a topic: the kind's typed decoder, or plain JSON for a kind the
    report does not know."""
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
    t = data.get("timestamp")
    stream = data.get("stream")
    # recorded_at() of domain.codec, inline (once per event): UTC "...Z" is written "+00:00"
    at = (t[:-1] + "+00:00" if t[-1:] == "Z" else t) if isinstance(t, str) else ""
    return Event(row.position, row.hash or "", kind, row.originator_version, at,
                 stream if isinstance(stream, str) else "", data.get("actor"), data)


def timestamp_of(row: Row) -> str | None:
    """The recorded time of a row (its envelope only), or None."""
    try:
        t = _light.decode(row.state).timestamp
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return recorded_at(t) if isinstance(t, str) else None
