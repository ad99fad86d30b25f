"""Opening the read model for a command: the projections are caught up from the journal
before any read and after every command.

Fast path: when the views are already at the journal's head (one indexed query on each
file), no event-sourcing machinery is imported at all, so ``skills list`` costs little
more than starting Python.

The views files are this module's to manage: a live ``views.db`` that the store cannot use
(missing, unreadable, foreign, of a schema version with no migration) is deleted and made
again from the journal, with a one-line notice; private replays (``--as-of``, ``index
verify``) live in temporary files beside it. ``views.db`` is made 0600 (its WAL files too).

Three things are never answered by deleting the views:

* Views *ahead* of the journal (they have projected events the journal no longer has): the
  journal was truncated or replaced by an older copy. That is ``journal_truncated`` (exit 9),
  and the views are left exactly as they are, for inspection.
* Views that cannot be written because of where they are (a read-only home, such as an
  evidence copy on read-only media; a full disk): a read then works on a private temporary copy
  of ``views.db`` (or, when there is none, a replay of the journal) in the system's temporary
  directory, deleted when the read is done, with a one-line notice.
* Views locked by another process beyond the timeout: ``concurrency_conflict``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skill_ledger.adapters.settings import Settings
from skill_ledger.adapters.storage.files import create_private_file, remove_db_files
from skill_ledger.domain.errors import ConcurrencyConflict, JournalTruncated, StorageError
from skill_ledger.projections.store import ViewStore, ViewsUnusable

if TYPE_CHECKING:
    from skill_ledger.adapters.usecases.unit_of_work import Ledger
    from skill_ledger.projections.store import EventSource

Notify = Callable[[str], None]
# (events to replay) -> a context manager yielding a progress callback, or None for no progress
ProgressFor = Callable[[int], contextlib.AbstractContextManager[Callable[[int], None] | None]]


def _journal_probe(settings: Settings) -> tuple[int, str]:
    """(head position, identity) of a SQLite journal, read-only; (0, "") when there is none.
    Its ``journal_meta`` is checked here too: a journal this version must not read is refused
    even when the views are at its head (``journal_unsupported``)."""
    from skill_ledger.adapters.journal.meta import checked_schema
    from skill_ledger.adapters.journal.sqlite_files import tighten

    path = settings.journal_path
    if not path.exists():
        return 0, ""
    tighten(path)  # a journal file another version made readable to others
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            head = con.execute("SELECT max(rowid) FROM stored_events").fetchone()[0] or 0
            first = con.execute("SELECT hash FROM event_chain WHERE position = 1").fetchone()
            meta = dict(con.execute("SELECT key, value FROM journal_meta").fetchall())
        finally:
            con.close()
    except sqlite3.Error:
        return -1, ""  # unreadable here; the ledger will report it properly
    checked_schema(meta, has_chain=True, where=str(path))
    return head, first[0] if first else ""


def journal_identity(ledger: "Ledger") -> str:
    """The hash of the journal's first event: which journal a views.db projects."""
    from skill_ledger.adapters.journal.sqlite import chain_hash

    return chain_hash(ledger.app, 1) or ""


class ViewsUnwritable(StorageError):
    """The views file cannot be opened or written where it is (read-only, disk full)."""


class TemporaryViews(ViewStore):
    """Views in a private temporary directory (a read-only home's copy); closing them deletes the
    directory, and so does the end of the process for a reader that never closes its store."""

    def __init__(self, path: Path, **kwargs: Any) -> None:
        import weakref

        self._remove = weakref.finalize(self, shutil.rmtree, str(Path(path).parent), ignore_errors=True)
        super().__init__(path, **kwargs)

    def close(self) -> None:
        super().close()
        self._remove()


# SQLite result codes that say something about the file's surroundings, not its contents:
# a file the store cannot use is replaced; one it cannot write here is not touched.
_ENVIRONMENT = ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_PERM")
_LOCKED = ("SQLITE_BUSY", "SQLITE_LOCKED")


def _sqlite_cause(e: BaseException) -> str:
    """The SQLite result code name behind ``e`` ("" when there is none)."""
    seen: BaseException | None = e
    while seen is not None:
        name = getattr(seen, "sqlite_errorname", None)
        if name:
            return str(name)
        seen = seen.__cause__ or seen.__context__
    return ""


def _environment_failure(path: Path, e: BaseException) -> Exception | None:
    """``e`` as the error to report when it is about where the views are, else None."""
    code = _sqlite_cause(e)
    if code.startswith(_LOCKED):
        return ConcurrencyConflict(f"the views database {path} stayed locked by another process: {e}")
    if code.startswith(_ENVIRONMENT) or isinstance(e, OSError):
        reason = _sqlite_text(e) or str(e)
        return ViewsUnwritable(f"the views database {path} cannot be written here ({reason})", {"path": str(path)})
    return None


def _sqlite_text(e: BaseException) -> str:
    """SQLite's own message behind ``e`` ("" when there is none)."""
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, sqlite3.Error):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return ""


def open_store(path: Path, *, journal_identity: str = "", notify: Notify | None = None,
               for_reading: bool = False) -> ViewStore:
    """The live views file at ``path`` as it is (not caught up); one the store cannot use is
    replaced by a new, empty one (the catch-up then fills it from the journal). One that cannot
    be opened where it is (read-only, disk full) is left alone: ``ViewsUnwritable``, or, when
    the caller only reads (``for_reading``), a temporary copy of it."""
    from skill_ledger.adapters.journal.sqlite_files import tighten

    create_private_file(path)
    tighten(path)  # a file another version (or a rebuild) made readable to others
    try:
        return ViewStore(path, journal_identity=journal_identity, notify=notify)
    except ViewsUnusable as e:
        failure = _environment_failure(path, e)
        if isinstance(failure, ViewsUnwritable) and for_reading:
            return _temporary_copy(path, journal_identity, notify, failure)
        if failure is not None:
            raise failure from None
        if notify is not None:
            notify(f"notice: views database {path} {e}; rebuilding it from the journal")
    remove_db_files(path)
    create_private_file(path)
    return ViewStore(path, journal_identity=journal_identity, notify=notify)


def open_views(settings: Settings, *, notify: Notify | None = None, ledger: "Ledger | None" = None,
               progress: Callable[[int], None] | None = None, progress_for: ProgressFor | None = None) -> ViewStore:
    """The views database, caught up with the journal. ``progress_for(events behind)`` gives a
    context manager around the catch-up that yields a callback for the events done (or None).
    Views ahead of the journal are ``journal_truncated``; views that cannot be written here are
    read from a temporary copy."""
    # A PostgreSQL journal has no file to peek at: the ledger below reads its head and identity.
    head, identity = _journal_probe(settings) if settings.journal_is_sqlite else (-1, "")
    try:
        Path(settings.home).mkdir(parents=True, exist_ok=True, mode=0o700)
        store = open_store(settings.views_path, journal_identity=identity, notify=notify)
    except (ViewsUnwritable, OSError) as e:
        store = _temporary_copy(settings.views_path, identity, notify, e)
    if head >= 0:
        _refuse_ahead(store, head, settings)
        if store.position() == head:
            return store
    own = ledger is None
    if ledger is None:
        from skill_ledger.adapters.usecases.unit_of_work import Ledger

        ledger = Ledger(settings)
    try:
        _refuse_ahead(store, ledger.head(), settings)
        store.bind_identity(journal_identity(ledger))
        behind = max(0, (head if head >= 0 else ledger.head()) - store.position())
        with (progress_for(behind) if progress_for is not None else contextlib.nullcontext()) as update:
            try:
                store.catch_up(ledger.app.recorder, progress=update or progress)
            except Exception as e:
                failure = None if isinstance(store, TemporaryViews) else _environment_failure(store.path, e)
                if not isinstance(failure, ViewsUnwritable):
                    raise
                store.close()
                store = _temporary_copy(settings.views_path, journal_identity(ledger), notify, failure)
                store.catch_up(ledger.app.recorder, progress=update or progress)
    except BaseException:
        store.close()
        raise
    finally:
        if own:
            ledger.close()
    return store


def _refuse_ahead(store: ViewStore, head: int, settings: Settings) -> None:
    """Views that have projected more events than the journal holds: evidence of truncation.
    Reported (exit 9), never rebuilt: the views are what shows what the journal lost."""
    position = store.position()
    if position <= head:
        return
    path = settings.views_path  # (also when ``store`` is a temporary copy of it)
    store.close()
    where = settings.journal_url.split("@")[-1]
    raise JournalTruncated(
        f"the views database {path} has projected the journal up to position {position}, but the journal at "
        f"{where} ends at position {head}: the journal was truncated or replaced by an older copy. The views were "
        "left as they are, for inspection; compare the journal with a backup and `skills journal verify` it, and "
        "only then rebuild the views (`skills index rebuild`)",
        {"views": str(path), "views_position": position, "journal_head": head, "journal": where})


def _temporary_copy(path: Path, identity: str, notify: Notify | None, why: BaseException) -> ViewStore:
    """A private copy of the views (a read-only home, a full disk) in the system's temporary
    directory, to be caught up there; an empty one when there is nothing usable to copy."""
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="skills-views-"))  # 0700
    copy = directory / "views.db"
    try:
        for suffix in ("", "-wal"):
            if Path(f"{path}{suffix}").is_file():
                shutil.copyfile(f"{path}{suffix}", f"{copy}{suffix}")
                os.chmod(f"{copy}{suffix}", 0o600)
    except OSError:
        remove_db_files(copy)  # unreadable: replay the journal instead
    if notify is not None:
        reason = getattr(why, "message", None) or str(why)
        notify(f"notice: {reason}; reading from a temporary copy instead (nothing is written to the home)")
    try:
        try:
            return TemporaryViews(copy, journal_identity=identity, notify=notify)
        except ViewsUnusable:
            remove_db_files(copy)
            return TemporaryViews(copy, journal_identity=identity, notify=notify)
    except BaseException as e:
        shutil.rmtree(directory, ignore_errors=True)
        failure = _environment_failure(copy, e)
        if failure is not None:
            raise StorageError(f"cannot read the views here or in a temporary copy: {failure}") from None
        raise


def catch_up_after(ledger: "Ledger", *, notify: Notify | None = None) -> None:
    """Called after every command that appended events (read-your-writes). Views ahead of the
    journal are ``journal_truncated`` and left alone (the next read reports it too)."""
    store = open_store(ledger.settings.views_path, journal_identity=journal_identity(ledger), notify=notify)
    try:
        _refuse_ahead(store, ledger.head(), ledger.settings)
        store.catch_up(ledger.app.recorder)
    finally:
        store.close()


def views_as_of(settings: Settings, position: int, *, notify: Notify | None = None) -> ViewStore:
    """A scratch read model replayed from the journal up to ``position`` (discard it after use):
    what ``--as-of`` means, which the commands answer from the history projection instead
    (``projections.asof``); the tests compare the two."""
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

    if directory is not None and not os.access(directory, os.W_OK | os.X_OK):
        directory = None  # a read-only home: the system's temporary directory
    fd, name = tempfile.mkstemp(prefix="views-scratch-", suffix=".db", dir=directory)  # 0600
    os.close(fd)
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
