"""Sharded replays: one full replay folded by several processes at once.

A replay from position 0 (``skills index rebuild``) is split by stream. Skill streams are
independent of each other, so each shard folds the skill streams whose originator id (the
name-based UUID of ``skill:<id>``, as hex) ends in one of its hex digits. Every shard also
folds the publisher streams, because a key's trust state changes the version rows it
signed (``key_revoked``, eligibility); only shard 0 writes their own rows (trust keys and
their timeline lines). The other streams (policy, intake, checkpoints) go to shard 0.

Each shard writes the tables of its streams into a file of its own; the files are then
merged into shard 0's. Because no row of one shard depends on an event of another shard's
streams, the merged tables are exactly those of a replay in one process.

The rule is written once, here: ``Shard.event_filter`` describes a shard's events as an
``EventFilter`` (topic prefixes and hex digits), which the journal's recorders translate
into their SQL and which ``EventFilter.matches`` applies in Python.
"""

from __future__ import annotations

from typing import NamedTuple

HEX_DIGITS = "0123456789abcdef"
MAX_SHARDS = len(HEX_DIGITS)
SKILL_PREFIX = "skill."  # topics of skill streams: divided between the shards
SHARED_PREFIX = "publisher."  # topics of publisher streams: folded by every shard


class EventFilter(NamedTuple):
    """A selection of journal events by topic and stream, generic enough for a recorder to
    evaluate in SQL: an event whose topic starts with ``split_prefix`` is selected when the
    last hex digit of its stream's originator id is one of ``digits``; any other event when
    ``others`` is None (all of them) or its topic starts with one of ``others``."""

    split_prefix: str
    digits: str
    others: tuple[str, ...] | None

    def matches(self, topic: str, originator_hex: str) -> bool:
        """``originator_hex``: the stream's originator id as hex, with or without dashes."""
        if topic.startswith(self.split_prefix):
            last = originator_hex[-1:].lower()
            return last != "" and last in self.digits
        return self.others is None or topic.startswith(self.others)


class Shard(NamedTuple):
    index: int
    count: int

    def digits(self) -> str:
        """The last hex digits of the skill streams' originator ids this shard folds."""
        return "".join(d for i, d in enumerate(HEX_DIGITS) if i % self.count == self.index)

    @property
    def first(self) -> bool:
        return self.index == 0

    def event_filter(self) -> EventFilter:
        """The events this shard folds: its skill streams, the publisher streams, and (shard 0)
        every stream that is not divided."""
        return EventFilter(SKILL_PREFIX, self.digits(), None if self.first else (SHARED_PREFIX,))


def shard(index: int, count: int) -> Shard:
    if not 1 <= count <= MAX_SHARDS or not 0 <= index < count:
        raise ValueError(f"shard {index} of {count}: expected 0 <= index < count <= {MAX_SHARDS}")
    return Shard(index, count)


def in_shard(topic: str, originator_hex: str, s: Shard) -> bool:
    """Whether the event (its topic and its stream's originator id as hex, with or without
    dashes) is folded by shard ``s``."""
    return s.event_filter().matches(topic, originator_hex)
