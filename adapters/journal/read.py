"""Reading the journal itself (not a projection): ``skills journal`` and ``skills history``
print events in the exported shape of ``events.md``, hashes included, so an auditor can
recompute every chain link from the output alone: ``hash = SHA-256(canonical JSON of the
event without "hash")`` for every event. Events of hash-chain format 2 also carry
``originator_id`` (the name-based UUID of ``stream``), ``topic`` (``<kind>.v<N>``), ``chain: 2``
and, on PostgreSQL, ``db_role``; events of format 1 (written before journal schema 2) are
printed exactly as they were hashed (``domain.codec``, ``adapters.journal.rows``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from skill_ledger.adapters.settings import Settings
from skill_ledger.adapters.usecases.unit_of_work import Ledger
from skill_ledger.domain.errors import NotInstalled, UsageError
from skill_ledger.domain.events import known_kinds, stream_uuid, topics_for_kinds

from .sqlite import export_row, iter_rows


class SkillHistory(msgspec.Struct, frozen=True):
    skill_id: str
    events: list[dict[str, Any]]  # exported events (events.md), oldest first


def skill_history(settings: Settings, skill_id: str, *, notify: Callable[[str], None] | None = None) -> SkillHistory:
    """Every event of a skill's stream, of the streams of the publishers that signed any of
    its versions (their trust decisions) and the registry events about it (its installs from
    a registry, refused installs and updates), oldest first. A skill with none is
    ``NotInstalled``."""
    from skill_ledger.adapters.readmodel.views import open_views
    from skill_ledger.projections.queries import publishers_of, registry_names, skill_known

    store = open_views(settings, notify=notify)
    try:
        known = skill_known(store.con, skill_id)
        publishers = publishers_of(store.con, skill_id)
        registries = registry_names(store.con)
    finally:
        store.close()
    streams = [f"skill:{skill_id}", *(f"publisher:{p}" for p in publishers), *(f"registry:{r}" for r in registries)]
    ledger = Ledger(settings)
    try:
        ids = [stream_uuid(s).hex for s in streams]
        events = [e for e in map(export_row, iter_rows(ledger.app, originator_ids=ids))
                  if not e["stream"].startswith("registry:") or e["data"].get("skill_id") == skill_id]
    finally:
        ledger.close()
    if not known and not events:
        raise NotInstalled(f"skill {skill_id} has no history", {"skill_id": skill_id})
    return SkillHistory(skill_id, events)


def journal_events(ledger: Ledger, *, skill: str | None, kinds: tuple[str, ...], since: int | None,
                   until: int | None, limit: int | None) -> Iterator[dict[str, Any]]:
    unknown = sorted(set(kinds) - set(known_kinds()))
    if unknown:
        raise UsageError(f"unknown event kind {unknown[0]!r}; known kinds: {', '.join(known_kinds())}")
    topics = topics_for_kinds(list(kinds)) if kinds else []
    ids = [stream_uuid(f"skill:{skill}").hex] if skill else []
    n = 0
    for row in iter_rows(ledger.app, after=since or 0, until=until, topics=topics, originator_ids=ids):
        if limit is not None and n >= limit:
            return
        n += 1
        yield export_row(row)


def follow(ledger: Ledger, emit: Callable[[dict[str, Any]], None], *, skill: str | None, kinds: tuple[str, ...],
           after: int, interval_s: float = 0.5, should_stop: Callable[[], bool] = lambda: False) -> None:
    """Emit new events as they are appended, until ``should_stop()`` (or an interrupt)."""
    position = after
    while not should_stop():
        head = ledger.head()  # positions are commit order: everything up to head is visible now
        if head > position:
            for event in journal_events(ledger, skill=skill, kinds=kinds, since=position, until=head, limit=None):
                emit(event)
            position = head
        time.sleep(interval_s)
