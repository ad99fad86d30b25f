"""Opening the read model for a command: the projections are caught up from the journal
before any read and after every command.

Fast path: when the views are already at the journal's head (one indexed query on each
file), no event-sourcing machinery is imported at all, so ``skills list`` costs little
more than starting Python.

The views files are this module's to manage: a live ``views.db`` that the store cannot use
(missing, unreadable, foreign, of a schema version with no migration) is deleted and made
again from the journal, with a one-line notice; private replays (``--as-of``, ``index
verify``) live in temporary files beside it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from skill_ledger.adapters.settings import Settings
from skill_ledger.adapters.storage.files import remove_db_files
from skill_ledger.projections.store import ViewStore, ViewsUnusable

if TYPE_CHECKING:
    from skill_ledger.adapters.usecases.unit_of_work import Ledger
    from skill_ledger.projections.store import EventSource

Notify = Callable[[str], None]
# (events to replay) -> a context manager yielding a progress callback, or None for no progress
ProgressFor = Callable[[int], contextlib.AbstractContextManager[Callable[[int], None] | None]]


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


def open_store(path: Path, *, journal_identity: str = "", notify: Notify | None = None) -> ViewStore:
    """The live views file at ``path`` as it is (not caught up); one the store cannot use is
    replaced by a new, empty one (the catch-up then fills it from the journal)."""
    try:
        return ViewStore(path, journal_identity=journal_identity, notify=notify)
    except ViewsUnusable as e:
        if notify is not None:
            notify(f"notice: views database {path} {e}; rebuilding it from the journal")
    remove_db_files(path)
    return ViewStore(path, journal_identity=journal_identity, notify=notify)


def open_views(settings: Settings, *, notify: Notify | None = None, ledger: "Ledger | None" = None,
               progress: Callable[[int], None] | None = None, progress_for: ProgressFor | None = None) -> ViewStore:
    """The views database, caught up with the journal. ``progress_for(events behind)`` gives a
    context manager around the catch-up that yields a callback for the events done (or None)."""
    # A PostgreSQL journal has no file to peek at: the ledger below reads its head and identity.
    head, identity = _journal_probe(settings) if settings.journal_is_sqlite else (-1, "")
    Path(settings.home).mkdir(parents=True, exist_ok=True, mode=0o700)
    store = open_store(settings.views_path, journal_identity=identity, notify=notify)
    if head >= 0 and store.position() == head:
        return store
    own = ledger is None
    if ledger is None:
        from skill_ledger.adapters.usecases.unit_of_work import Ledger

        ledger = Ledger(settings)
    try:
        store.bind_identity(journal_identity(ledger))
        behind = max(0, (head if head >= 0 else ledger.head()) - store.position())
        with (progress_for(behind) if progress_for is not None else contextlib.nullcontext()) as update:
            store.catch_up(ledger.app.recorder, progress=update or progress)
    finally:
        if own:
            ledger.close()
    return store


def catch_up_after(ledger: "Ledger", *, notify: Notify | None = None) -> None:
    """Called after every command that appended events (read-your-writes)."""
    store = open_store(ledger.settings.views_path, journal_identity=journal_identity(ledger), notify=notify)
    try:
        store.catch_up(ledger.app.recorder)
    finally:
        store.close()


def parse_as_of(store: ViewStore, value: str) -> int:
    """``POSITION`` or an ISO-8601 time (naive means UTC): the journal position to replay up to."""
    import datetime as dt

    from skill_ledger.domain.errors import UsageError
    from skill_ledger.projections.queries import position_at
    from skill_ledger.projections.times import fixed

    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--as-of expects a journal position or an ISO-8601 time, got {value!r}") from None
    return position_at(store.con, fixed(t))


def views_as_of(settings: Settings, position: int, *, notify: Notify | None = None) -> ViewStore:
    """A scratch read model replayed from the journal up to ``position`` (discard it after use)."""
    from skill_ledger.adapters.usecases.unit_of_work import Ledger

    ledger = Ledger(settings)
    try:
        return scratch(ledger.app.recorder, until=position, directory=settings.home, notify=notify)
    finally:
        ledger.close()


def scratch(source: EventSource, *, until: int | None, directory: str | Path | None = None,
            notify: Notify | None = None, progress: Callable[[int], None] | None = None) -> ViewStore:
    """A throw-away store replayed from the journal up to ``until`` (for ``--as-of`` and
    ``index verify``), in a new file in ``directory``; ``discard`` it after use."""
    import tempfile

    from skill_ledger.projections.replay import finish

    fd, name = tempfile.mkstemp(prefix="views-scratch-", suffix=".db", dir=directory)
    os.close(fd)
    os.unlink(name)
    store = ViewStore(name, notify=notify, scratch=True)
    try:
        store.catch_up(source, until=until, progress=progress)
        finish(store)
    except BaseException:
        discard(store)
        raise
    return store


def discard(store: ViewStore) -> None:
    """Close a private store and delete its file."""
    store.close()
    remove_db_files(store.path)


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
