"""The journal's event encoding, chosen once: compact JSON written by msgspec.

A stored event's ``state`` is a JSON object holding the event's fields (``timestamp``,
``stream``, ``actor`` and the kind's data); its topic is ``<kind>.v<N>``. The same
bytes decode three ways: into typed domain events (for aggregates), into plain
dicts (for projections, fast), and into the exported event shape of ``events.md``
whose canonical encoding is what the per-stream hash chain covers.

Upcasting: an event class with ``VERSION = N`` defines static methods
``upcast_v1_v2(state)`` ... ``upcast_v{N-1}_v{N}``; ``domain.events`` registers every topic
``<kind>.v1`` ... ``<kind>.vN`` to that class (and refuses a class that lacks an upcaster),
and every decode path applies the upcasters, so old journals replay. The exported shape
(and so the hash chain) is always what was recorded, never upcast.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

GENESIS_HASH = "0" * 64
# Members of a stored state that are not the event's data in the exported shape.
ENVELOPE_FIELDS = frozenset({"timestamp", "stream", "actor", "originator_topic", "class_version"})

_encoder = msgspec.json.Encoder()
_canonical_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder()
_schemas: dict[type, Any] = {}


def encode_state(event: Any) -> bytes:
    state = dict(vars(event))
    state.pop("originator_id", None)
    state.pop("originator_version", None)
    return _encoder.encode(state)


def kind_of_topic(topic: str) -> str:
    kind, sep, _version = topic.rpartition(".v")
    return kind if sep else topic


def version_of_topic(topic: str) -> int:
    _kind, sep, version = topic.rpartition(".v")
    return int(version) if sep and version.isdigit() else 1


_classes: dict[str, tuple[Any, int, int]] = {}


def _event_class(topic: str) -> Any:
    return _topic_info(topic)[0]


def _topic_info(topic: str) -> tuple[Any, int, int]:
    """(event class, stored version, current version) of a topic, resolved once."""
    info = _classes.get(topic)
    if info is None:
        from eventsourcing.utils import resolve_topic  # imported here: reads need no event classes

        from .events import load_model

        load_model()
        cls = resolve_topic(topic)
        info = _classes[topic] = (cls, version_of_topic(topic), getattr(cls, "VERSION", 1))
    return info


def upcast_needed(topic: str) -> bool:
    """Whether a state stored under ``topic`` must be upcast to its class's current version."""
    _cls, stored, current = _topic_info(topic)
    return stored < current


def decode_state_dict(topic: str, state: bytes) -> dict[str, Any]:
    """The stored state as a plain dict, upcast to the current version of its class."""
    data: dict[str, Any] = _decoder.decode(state)
    cls, stored, current = _topic_info(topic)
    for v in range(stored, current):
        getattr(cls, f"upcast_v{v}_v{v + 1}")(data)
    return data


def _schema(cls: type) -> Any:
    schema = _schemas.get(cls)
    if schema is None:
        import dataclasses
        import typing

        hints = typing.get_type_hints(cls)
        fields = [
            (f.name, hints.get(f.name, Any))
            for f in dataclasses.fields(cls)
            if f.name not in ("originator_id", "originator_version")
        ]
        schema = msgspec.defstruct(f"{cls.__name__}State", fields, forbid_unknown_fields=True)
        _schemas[cls] = schema
    return schema


def decode_event(topic: str, state: bytes, originator_id: Any, originator_version: int) -> Any:
    """A typed domain event (validated against the class's field types)."""
    cls, stored, current = _topic_info(topic)
    if stored == current:  # the common case: straight into the typed schema, no dict in between (10x faster)
        typed = msgspec.json.decode(state, type=_schema(cls))
    else:
        typed = msgspec.convert(decode_state_dict(topic, state), _schema(cls))
    values = {f: getattr(typed, f) for f in typed.__struct_fields__}
    values["originator_id"] = originator_id
    values["originator_version"] = originator_version
    event = object.__new__(cls)
    object.__setattr__(event, "__dict__", values)
    return event


def recorded_at(timestamp: str) -> str:
    """msgspec writes UTC as ``...Z``; the exported shape uses ``+00:00`` (ISO 8601, like isoformat())."""
    return timestamp[:-1] + "+00:00" if timestamp.endswith("Z") else timestamp


def exported_event(position: int, stream_version: int, topic: str, state: dict[str, Any], prev_hash: str) -> dict[str, Any]:
    """The ``events.md`` shape without ``hash``; member order as documented."""
    return {
        "position": position,
        "recorded_at": recorded_at(state["timestamp"]),
        "stream": state["stream"],
        "stream_version": stream_version,
        "kind": kind_of_topic(topic),
        "actor": state["actor"],
        "data": {k: v for k, v in state.items() if k not in ENVELOPE_FIELDS},
        "prev_hash": prev_hash,
    }


def canonical_bytes(exported_without_hash: dict[str, Any]) -> bytes:
    return _canonical_encoder.encode(exported_without_hash)


def event_hash(exported_without_hash: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(exported_without_hash)).hexdigest()
