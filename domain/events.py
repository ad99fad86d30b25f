"""The ledger's event and aggregate base classes, on top of ``eventsourcing.domain``.

Every event records *who* acted (``actor``) and *which stream* it belongs to; its
``KIND`` is the stable name of ``events.md`` and its topic is ``<kind>.v<N>``, so
renaming or moving a class never breaks a stored journal. Any event may be the
first of its stream (a skill's stream starts with ``skill.artifact_verified``, a
publisher's with whichever trust fact came first), which is why the aggregates
here do not use the library's ``Created`` event: the first event constructs a blank
aggregate and then applies itself like any other.

Aggregates decide (command methods validate, then record); events record
(``apply`` is a pure mutation, re-run on every replay).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import msgspec
from eventsourcing.domain import AggregateEvent
from eventsourcing.utils import register_topic

# Stream ids are name-based UUIDs of the stream name, so two processes that open the
# same stream collide on its first version instead of creating two streams.
LEDGER_NAMESPACE = uuid.UUID("6f1d7f7e-2b55-5a8e-9c33-0f3a5d6c2b11")


class Actor(msgspec.Struct, frozen=True, omit_defaults=True):
    """Who appended an event: the declared principal (``--actor``, ``SKILLS_ACTOR``: what the
    operator says), and what the machine says: the host, the command, and the operating-system
    account the process ran as (``os_user``, ``os_uid``: the effective uid and its login name,
    looked up from the uid, never from the environment). Events recorded before the OS account
    was recorded have no ``os_user``/``os_uid`` (None, and absent from the stored state)."""

    principal: str
    host: str
    command: str
    os_user: str | None = None
    os_uid: int | None = None


def stream_uuid(stream: str) -> uuid.UUID:
    return uuid.uuid5(LEDGER_NAMESPACE, stream)


def topic_of(kind: str, version: int) -> str:
    return f"{kind}.v{version}"


_AGGREGATES: dict[str, type["LedgerAggregate"]] = {}
_EVENTS_BY_KIND: dict[str, list[type["LedgerEvent"]]] = {}


class LedgerEvent(AggregateEvent):
    """Base of every journal event. Subclasses set ``KIND`` (and ``VERSION`` when they change).

    Changing an event's fields means: raise ``VERSION`` to N and add a static method
    ``upcast_v{N-1}_v{N}(state)`` that turns a stored state of version N-1 into one of version
    N (in place). Every topic ``<kind>.v1`` ... ``<kind>.vN`` then resolves to the class, and
    every decode path (``domain.codec``) applies the upcasters, so journals written before the
    change replay into the new class.
    """

    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[str] = ""

    stream: str
    actor: Actor

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if cls.KIND:
            if not isinstance(cls.VERSION, int) or cls.VERSION < 1:
                raise TypeError(f"{cls.__qualname__}.VERSION must be a positive int, not {cls.VERSION!r}")
            missing = [f"upcast_v{v}_v{v + 1}" for v in range(1, cls.VERSION)
                       if not callable(getattr(cls, f"upcast_v{v}_v{v + 1}", None))]
            if missing:  # an old journal would fail to replay: refuse the class, not the journal
                raise TypeError(f"{cls.__qualname__} (VERSION {cls.VERSION}) lacks {', '.join(missing)}")
            cls.TOPIC = topic_of(cls.KIND, cls.VERSION)
            for topic in cls.topics():
                register_topic(topic, cls)
            _EVENTS_BY_KIND.setdefault(cls.KIND, []).append(cls)

    @classmethod
    def topics(cls) -> list[str]:
        """Every topic this class reads: its current one and those of its older versions."""
        return [topic_of(cls.KIND, v) for v in range(1, cls.VERSION + 1)]

    def mutate(self, aggregate: Any) -> Any:
        if aggregate is None:
            aggregate = aggregate_class_for(self.stream).blank(self.originator_id, self.stream)
            aggregate.created_on = self.timestamp
        return super().mutate(aggregate)

    def apply(self, aggregate: Any) -> None:  # pragma: no cover - every concrete event overrides
        raise NotImplementedError


_MODEL_LOADED = False


def load_model() -> None:
    """Import every aggregate module so all event kinds and stream prefixes are registered."""
    global _MODEL_LOADED
    if not _MODEL_LOADED:
        from . import audit_policy, checkpoints, intake, publisher, registry, skill  # noqa: F401

        _MODEL_LOADED = True


def registered_topics() -> frozenset[str]:
    """Every topic this version can read: each event class's current topic and those of its
    older versions (which its upcasters turn into the current one)."""
    load_model()
    return frozenset(t for classes in _EVENTS_BY_KIND.values() for cls in classes for t in cls.topics())


def topics_for_kinds(kinds: Sequence[str]) -> list[str]:
    """The stored topics of these kinds, every version (a filter must also find old events)."""
    load_model()
    topics = [t for k in kinds for cls in _EVENTS_BY_KIND.get(k, ()) for t in cls.topics()]
    return list(dict.fromkeys(topics))


def known_kinds() -> list[str]:
    load_model()
    return sorted(_EVENTS_BY_KIND)


def aggregate_class_for(stream: str) -> type["LedgerAggregate"]:
    load_model()
    prefix = stream.split(":", 1)[0]
    try:
        return _AGGREGATES[prefix]
    except KeyError:
        raise ValueError(f"no aggregate for stream {stream!r}") from None


TAgg = TypeVar("TAgg", bound="LedgerAggregate")


class LedgerAggregate:
    """A mutable event-sourced aggregate whose stream name is ``<PREFIX>:<key>``."""

    PREFIX: ClassVar[str] = ""

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if cls.PREFIX:
            _AGGREGATES[cls.PREFIX] = cls

    def __init__(self, id: uuid.UUID, stream: str) -> None:
        self._id = id
        self.stream = stream
        self.version = 0
        self.created_on: dt.datetime | None = None
        self.modified_on: dt.datetime | None = None
        self._pending: list[LedgerEvent] = []

    @property
    def id(self) -> uuid.UUID:
        return self._id

    @property
    def key(self) -> str:
        return self.stream.split(":", 1)[1]

    @classmethod
    def stream_name(cls, key: str) -> str:
        return f"{cls.PREFIX}:{key}"

    @classmethod
    def id_for(cls, key: str) -> uuid.UUID:
        return stream_uuid(cls.stream_name(key))

    @classmethod
    def blank(cls: type[TAgg], id: uuid.UUID, stream: str) -> TAgg:
        return cls(id, stream)

    @classmethod
    def start(cls: type[TAgg], key: str) -> TAgg:
        """A new, empty aggregate (version 0) whose first recorded event opens the stream."""
        stream = cls.stream_name(key)
        return cls.blank(stream_uuid(stream), stream)

    def _record(self, event_class: type[LedgerEvent], actor: Actor, **data: Any) -> LedgerEvent:
        event = event_class(  # type: ignore[call-arg]
            originator_id=self.id,
            originator_version=self.version + 1,
            timestamp=event_class.create_timestamp(),
            stream=self.stream,
            actor=actor,
            **data,
        )
        event.mutate(self)
        self._pending.append(event)
        return event

    def collect_events(self) -> list[LedgerEvent]:
        events, self._pending = self._pending, []
        return events

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)
