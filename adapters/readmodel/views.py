"""Opening the read model for a command: the projections are caught up from the journal
before any read and after every command.

Fast path: when the views are already at the journal's head (one indexed query on each
file), no event-sourcing machinery is imported at all, so ``skills list`` costs little
more than starting Python.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from skill_ledger.adapters.settings import Settings
from skill_ledger.projections.store import ViewStore

if TYPE_CHECKING:
    from skill_ledger.adapters.usecases.unit_of_work import Ledger

Notify = Callable[[str], None]


def _journal_probe(settings: Settings) -> tuple[int, str]:
    """(head position, identity) of a SQLite journal, read-only; (0, "") when there is none."""
    path = settings.journal_path
    if not path.exists():
        return 0, ""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            head = con.execute("SELECT max(rowid) FROM stored_events").fetchone()[0] or 0
            first = con.execute("SELECT hash FROM event_chain WHERE position = 1").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return -1, ""  # unreadable here; the ledger will report it properly
    return head, first[0] if first else ""


def journal_identity(ledger: "Ledger") -> str:
    """The hash of the journal's first event: which journal a views.db projects."""
    from skill_ledger.adapters.journal.sqlite import chain_hash

    return chain_hash(ledger.app, 1) or ""


def open_views(settings: Settings, *, notify: Notify | None = None, ledger: "Ledger | None" = None,
               progress: Callable[[int], None] | None = None) -> ViewStore:
    """The views database, caught up with the journal."""
    # A PostgreSQL journal has no file to peek at: the ledger below reads its head and identity.
    head, identity = _journal_probe(settings) if settings.journal_is_sqlite else (-1, "")
    Path(settings.home).mkdir(parents=True, exist_ok=True, mode=0o700)
    store = ViewStore(settings.views_path, journal_identity=identity, notify=notify)
    if head >= 0 and store.position() == head:
        return store
    own = ledger is None
    if ledger is None:
        from skill_ledger.adapters.usecases.unit_of_work import Ledger

        ledger = Ledger(settings)
    try:
        store.bind_identity(journal_identity(ledger))
        store.catch_up(ledger.app.recorder, progress=progress)
    finally:
        if own:
            ledger.close()
    return store


def catch_up_after(ledger: "Ledger", *, notify: Notify | None = None) -> None:
    """Called after every command that appended events (read-your-writes)."""
    store = ViewStore(ledger.settings.views_path, journal_identity=journal_identity(ledger), notify=notify)
    try:
        store.catch_up(ledger.app.recorder)
    finally:
        store.close()


def parse_as_of(store: ViewStore, value: str) -> int:
    """``POSITION`` or an ISO-8601 time (naive means UTC): the journal position to replay up to."""
    import datetime as dt

    from skill_ledger.domain.errors import UsageError

    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--as-of expects a journal position or an ISO-8601 time, got {value!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    fixed = t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    from skill_ledger.projections.queries import position_at

    return position_at(store.con, fixed)


def views_as_of(settings: Settings, position: int, *, notify: Notify | None = None) -> ViewStore:
    """A scratch read model replayed from the journal up to ``position`` (discard it after use)."""
    from skill_ledger.adapters.usecases.unit_of_work import Ledger
    from skill_ledger.projections.store import scratch

    ledger = Ledger(settings)
    try:
        return scratch(ledger.app.recorder, until=position, directory=settings.home, notify=notify)
    finally:
        ledger.close()


def journal_trust_store(settings: Settings, *, notify: Notify | None = None):
    """The active trust state (allowlisted keys, TOFU pins, revocations) as projected from the
    journal, for read-only verification. A home without a journal has an empty one."""
    from skill_ledger.domain.trust import TrustStore
    from skill_ledger.projections.queries import trust_interchange

    if settings.journal_is_sqlite and not settings.journal_path.exists():
        return TrustStore()
    store = open_views(settings, notify=notify)
    try:
        trusted, tofu, revoked = trust_interchange(store.con)
    finally:
        store.close()
    return TrustStore({p: tuple(k) for p, k in trusted.items()}, dict(tofu),
                      {p: frozenset(k) for p, k in revoked.items()})
