"""``skills index status`` and ``skills index verify``: where the projections stand, and
whether they equal a fresh replay of the journal."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import msgspec

from skill_ledger.adapters.settings import Settings

Notify = Callable[[str], None]


class ProjectionPosition(msgspec.Struct, frozen=True):
    name: str
    position: int
    behind: int


class ViewsStatus(msgspec.Struct, frozen=True):
    head: int
    projections: list[ProjectionPosition]


class Difference(msgspec.Struct, frozen=True):
    table: str  # "*" for damage to the file itself
    key: list[object]
    live: str | None  # the row as JSON text, or what is wrong
    replayed: str | None


class ViewsVerifyReport(msgspec.Struct, frozen=True):
    ok: bool
    differences: list[Difference]


def views_status(settings: Settings, *, notify: Notify | None = None) -> ViewsStatus:
    """Each projection's position against the journal head, without catching up."""
    from skill_ledger.adapters.readmodel.views import open_store
    from skill_ledger.adapters.usecases.unit_of_work import Ledger

    ledger = Ledger(settings)
    try:
        head = ledger.head()
    finally:
        ledger.close()
    store = open_store(settings.views_path, notify=notify, for_reading=True)
    try:
        positions = store.positions()
    finally:
        store.close()
    return ViewsStatus(head, [ProjectionPosition(n, p, head - p) for n, p in positions.items()])


def verify_views(settings: Settings, *, notify: Notify | None = None, progress_for=None) -> ViewsVerifyReport:
    """Catch the live views up, replay the journal up to the same position into a scratch
    file, and compare them table by table; page-level damage to the live file and a
    full-text index that does not match its rows count as differences too. ``progress_for(events)``:
    a context manager around each replay (the catch-up, the scratch replay) yielding a callback."""
    from skill_ledger.adapters.readmodel.views import discard, open_views, scratch
    from skill_ledger.adapters.usecases.unit_of_work import Ledger
    from skill_ledger.projections.replay import diff

    ledger = Ledger(settings)
    try:
        live = open_views(settings, notify=notify, ledger=ledger, progress_for=progress_for)
        try:
            with (progress_for(live.position()) if progress_for is not None else contextlib.nullcontext()) as update:
                replayed = scratch(ledger.app.recorder, until=live.position(), directory=settings.home,
                                   progress=update)
            try:
                damage = live.integrity_problem()
                differences = [Difference(**d) for d in diff(live, replayed)]
            finally:
                discard(replayed)
        finally:
            live.close()
    finally:
        ledger.close()
    if damage:
        differences.insert(0, Difference("*", [], damage, None))
    return ViewsVerifyReport(not differences, differences)
