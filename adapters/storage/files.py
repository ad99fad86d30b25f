"""Small file-system helpers with the project's guarantees: bounded reads (limits are
enforced while streaming), atomic writes (temp file + fsync + rename), so a crash
or a failed command never leaves a partial file behind, and the handling of SQLite
database files (deleting one with its journals, swapping a rebuilt one into place)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

from skill_ledger.domain.errors import ArtifactTooLarge, FileNotFound, IoError


def read_bounded(path: str | os.PathLike[str], limit: int, *, too_large=None) -> bytes:
    """Read at most ``limit`` bytes; one byte more means the file is over the limit.

    ``too_large(actual)`` builds the error; by default ``artifact_too_large``. The size
    reported is the file's size when it can be known, never more than was read + stat.
    """
    p = Path(path)
    try:
        with open(p, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise IoError(f"{p} is not a regular file")
            if st.st_size > limit:
                raise (too_large or _artifact_too_large)(st.st_size, limit)
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise FileNotFound(str(p)) from None
    except IsADirectoryError:
        raise IoError(f"{p} is a directory") from None
    except PermissionError:
        raise IoError(f"permission denied: {p}") from None
    except OSError as e:
        raise IoError(f"cannot read {p}: {e.strerror or e}") from None
    if len(data) > limit:
        raise (too_large or _artifact_too_large)(len(data), limit)
    return data


def _artifact_too_large(actual: int, limit: int) -> Exception:
    return ArtifactTooLarge(actual, limit)


def atomic_write(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` atomically: a reader sees the old file or the whole new one.

    ``exclusive``: fail with ``FileExistsError`` instead of replacing an existing file
    (checked at rename time with ``os.link`` so two writers cannot both win).
    """
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        import tempfile  # not at import: the runner's start-up reads, it rarely writes

        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=parent)
    except OSError as e:
        raise IoError(f"cannot create {p}: {e.strerror or e}", operation="write") from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, p)  # fails if p exists, atomically
            os.unlink(tmp)
        else:
            os.replace(tmp, p)
        fsync_dir(parent)
    except FileExistsError:
        _silent_unlink(tmp)
        raise
    except OSError as e:
        _silent_unlink(tmp)
        raise IoError(f"cannot write {p}: {e.strerror or e}", operation="write") from None
    except BaseException:
        _silent_unlink(tmp)
        raise


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _silent_unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def ensure_private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and parents) with mode 0700 for the leaf; tighten an existing leaf.

    An existing leaf that cannot be tightened because nothing in it can change (a read-only
    file system, an immutable directory: an evidence copy) is left as it is: nothing can be
    written into it either, and reading it must still work."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = p.stat()
        if stat.S_IMODE(st.st_mode) & 0o077 and st.st_uid == os.getuid():
            try:
                os.chmod(p, 0o700)
            except OSError as e:
                if e.errno not in (errno.EROFS, errno.EPERM):
                    raise
    except OSError as e:
        raise IoError(f"cannot create directory {p}: {e.strerror or e}", operation="write") from None
    return p


def create_private_file(path: str | os.PathLike[str]) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (a database file about to be opened:
    SQLite takes an empty file for a new database and gives its ``-wal``/``-shm`` files the
    database file's permissions). Failures are left to the opener, which reports them."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError:
        return
    os.close(fd)


# --- SQLite database files -------------------------------------------------------------------

DB_JOURNALS = ("-wal", "-shm", "-journal")


def remove_db_files(path: str | os.PathLike[str], *, keep_main: bool = False) -> None:
    """Delete a database file and its journals (``keep_main``: only the journals)."""
    for suffix in DB_JOURNALS if keep_main else ("", *DB_JOURNALS):
        try:
            os.unlink(f"{os.fspath(path)}{suffix}")
        except FileNotFoundError:
            pass


_RENAME_EXCHANGE = 2  # renameat2(2) flag, Linux 3.15+
_AT_FDCWD = -100
_renameat2: Any = None


def swap_into_place(fresh: Path, path: Path) -> None:
    """Put the database ``fresh`` at ``path`` atomically (a reader opens either the old file
    or the new one) and delete the old one; ``fresh`` (and its WAL files) become 0600 first.

    On Linux the two names are exchanged (``renameat2(RENAME_EXCHANGE)``) and the old file is
    then deleted under the fresh name: renaming a new file *over* an existing one makes ext4
    write the new file's data out first (``auto_da_alloc``), about half a second per
    gigabyte that a rebuild does not need to wait for. Elsewhere, or where the filesystem
    cannot exchange names, ``os.replace``."""
    global _renameat2
    for suffix in ("", "-wal", "-shm"):  # private from the moment it is the live file
        try:
            os.chmod(f"{fresh}{suffix}", 0o600)
        except FileNotFoundError:
            pass
    if _renameat2 is None:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            _renameat2 = libc.renameat2
            _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        except (OSError, AttributeError):
            _renameat2 = False
    if _renameat2 and path.exists():
        if _renameat2(_AT_FDCWD, os.fsencode(fresh), _AT_FDCWD, os.fsencode(path), _RENAME_EXCHANGE) == 0:
            remove_db_files(fresh)
            return
    os.replace(fresh, path)
