"""How a SQLite journal file is opened: private when it is created, read-only when it cannot be
written (an evidence copy on read-only media, or another account's journal we may only read).

* A new journal file is created ``0600`` before SQLite opens it; SQLite gives its ``-wal`` and
  ``-shm`` files the database file's permissions, so they are private too. An existing file of
  ours that others may read is tightened to ``0600``.
* A journal we cannot write is opened read-only, never created, migrated or written:
  ``mode=ro`` when SQLite can open it that way (it needs the ``-shm`` file, or to create it);
  ``immutable=1`` when there is no write-ahead log with content (nothing can change such a file
  under us, and no WAL content would be missed); otherwise (a WAL with content and no usable
  ``-shm``) a private temporary copy of the database and its WAL is opened, and deleted when the
  journal is closed.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import tempfile
from pathlib import Path
from urllib.parse import quote

import msgspec

from skill_ledger.adapters.storage.files import create_private_file


class SQLiteLocation(msgspec.Struct, frozen=True):
    db_name: str  # what SQLite opens: a path, or a file: URI
    read_only: bool
    temp_dir: str | None = None  # a private copy to delete on close
    reason: str = ""  # why it is read-only (for the error an append gets)


def locate(path: str | os.PathLike[str], *, create: bool, unwritable: str = "") -> SQLiteLocation:
    """How to open the journal at ``path``. ``unwritable``: opening it to write just failed for
    this reason (a full disk): open it read-only, so that reading still works."""
    p = Path(path)
    if not p.exists():
        if create:
            create_private_file(p)
        return SQLiteLocation(str(p), False)
    if not unwritable and writable(p):
        tighten(p)
        return SQLiteLocation(str(p), False)
    reason = unwritable or "the file or its directory is read-only"
    readonly = _uri(p, "mode=ro")
    if _readable(readonly):
        return SQLiteLocation(readonly, True, reason=reason)
    wal = Path(f"{p}-wal")
    if not wal.exists() or wal.stat().st_size == 0:
        return SQLiteLocation(_uri(p, "immutable=1"), True, reason=reason)
    return _private_copy(p, wal, reason)


def read_only_location(path: str | os.PathLike[str]) -> SQLiteLocation:
    """How to open the existing database at ``path`` for reading only (for a reader with its own
    connection): ``mode=ro``, or what :func:`locate` falls back to when the file cannot be
    written. ``remove_copy`` it when done."""
    p = Path(path)
    if writable(p):
        return SQLiteLocation(_uri(p, "mode=ro"), True)
    return locate(p, create=False)


def writable(p: Path) -> bool:
    """We may write the database and create its ``-wal``/``-shm`` files beside it. ``access``
    answers for the effective user and also says no on a read-only file system (``EROFS``) or
    for an immutable file (``EPERM``), root included."""
    return os.access(p, os.W_OK) and os.access(p.parent, os.W_OK | os.X_OK)


def tighten(p: Path) -> None:
    """Drop group and other permissions of a database file we own (and of its WAL files)."""
    for name in (p, Path(f"{p}-wal"), Path(f"{p}-shm")):
        try:
            st = name.stat()
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077 and st.st_uid == os.geteuid():
                os.chmod(name, stat.S_IMODE(st.st_mode) & 0o700)
        except OSError:
            continue  # missing, or not ours to change: nothing to tighten


def _uri(p: Path, query: str) -> str:
    return f"file:{quote(str(p.resolve()), safe='/')}?{query}"


def _readable(uri: str) -> bool:
    try:
        con = sqlite3.connect(uri, uri=True, timeout=30)
        try:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return True


def _private_copy(p: Path, wal: Path, reason: str) -> SQLiteLocation:
    directory = tempfile.mkdtemp(prefix="skills-journal-copy-")  # mode 0700
    try:
        copy = Path(directory) / "journal.db"
        shutil.copyfile(p, copy)
        shutil.copyfile(wal, f"{copy}-wal")
        os.chmod(copy, 0o600)
        os.chmod(f"{copy}-wal", 0o600)
    except OSError:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return SQLiteLocation(_uri(copy, "mode=rw"), True, directory, reason)


def remove_copy(location: SQLiteLocation) -> None:
    if location.temp_dir:
        shutil.rmtree(location.temp_dir, ignore_errors=True)


def is_storage_failure(e: BaseException) -> bool:
    """A database error that comes from the environment (a full disk, a read-only file or file
    system), not from the journal itself: ``storage_error``, not ``journal_unavailable``."""
    seen: BaseException | None = e
    while seen is not None:
        name = getattr(seen, "sqlite_errorname", "") or ""
        if name.startswith(("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_IOERR")):
            return True
        text = str(seen).lower()
        if any(t in text for t in ("disk is full", "no space left", "readonly database", "disk i/o error")):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
