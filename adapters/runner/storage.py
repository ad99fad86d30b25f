"""A skill's storage: ``<home>/data/<skill_id>/``, only under its declared roots.

A guest path is relative, ``/``-separated, without ``.``/``..``/empty segments, NUL or
backslashes. It is opened one component at a time relative to the previous directory's
descriptor with ``O_NOFOLLOW``, so a symlink anywhere on the way (planted in the data
directory, or swapped in while the call runs) is refused rather than followed. Non-regular
files (FIFOs, devices) are refused without blocking (``O_NONBLOCK``).
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

# Return codes seen by the guest (runtime.md: negative error codes).
DENIED = -1
NOT_FOUND = -2
TOO_LARGE = -3
INVALID = -4
IO_ERROR = -5

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class StorageError(Exception):
    def __init__(self, rc: int, reason: str) -> None:
        super().__init__(reason)
        self.rc = rc
        self.reason = reason


def split_path(raw: str) -> list[str]:
    """The components of a guest path, or ``StorageError(DENIED)`` for an escape attempt."""
    if not isinstance(raw, str) or not raw:
        raise StorageError(INVALID, "the path is empty")
    if "\x00" in raw or "\\" in raw:
        raise StorageError(DENIED, "the path contains NUL or a backslash")
    if raw.startswith("/"):
        raise StorageError(DENIED, "absolute paths are not allowed")
    parts = raw.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise StorageError(DENIED, "the path has '..', '.' or empty segments")
    return parts


def _root_parts(root: str) -> list[str]:
    return [p for p in root.strip().strip("/").split("/") if p]


def under_roots(parts: Sequence[str], roots: Iterable[str]) -> bool:
    """Whether ``parts`` lies strictly inside one of ``roots`` (a ``*`` root segment matches one segment)."""
    for root in roots:
        rp = _root_parts(root)
        if rp and len(parts) > len(rp) and all(fnmatch.fnmatchcase(p, r) for p, r in zip(parts, rp)):
            return True
    return False


def skill_dir_fd(data_dir: Path, skill_id: str) -> int:
    """An open descriptor on ``<data_dir>/<skill_id>`` (created 0700), never through a symlink."""
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    base = os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            os.mkdir(skill_id, 0o700, dir_fd=base)
        except FileExistsError:
            pass
        return os.open(skill_id, _DIR_FLAGS, dir_fd=base)
    finally:
        os.close(base)


def _walk(top: int, dirs: Sequence[str], *, create: bool) -> int:
    """Descend ``dirs`` from ``top`` without following symlinks; returns a new descriptor."""
    fd = os.dup(top)
    try:
        for name in dirs:
            if create:
                try:
                    os.mkdir(name, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
            nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def _os_error(e: OSError) -> StorageError:
    if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        return StorageError(DENIED, "the path goes through a symlink or a non-directory")
    if e.errno == errno.ENOENT:
        return StorageError(NOT_FOUND, "no such file")
    if e.errno in (errno.EISDIR, errno.ENAMETOOLONG):
        return StorageError(INVALID, "the path names a directory or is too long")
    if e.errno in (errno.EACCES, errno.EPERM):
        return StorageError(DENIED, "permission denied")
    return StorageError(IO_ERROR, f"I/O error ({errno.errorcode.get(e.errno or 0, e.errno)})")


def read_file(top: int, parts: Sequence[str], max_bytes: int) -> bytes:
    try:
        d = _walk(top, parts[:-1], create=False)
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=d)
        finally:
            os.close(d)
    except OSError as e:
        raise _os_error(e) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StorageError(DENIED, "not a regular file")
        if st.st_size > max_bytes:
            raise StorageError(TOO_LARGE, f"the file is larger than {max_bytes} bytes")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise StorageError(TOO_LARGE, f"the file is larger than {max_bytes} bytes")
        return b"".join(chunks)
    except OSError as e:
        raise _os_error(e) from None
    finally:
        os.close(fd)


def write_file(top: int, parts: Sequence[str], data: bytes) -> None:
    """Atomically replace (or create) the file: a temporary sibling, fsync, rename."""
    try:
        d = _walk(top, parts[:-1], create=True)
    except OSError as e:
        raise _os_error(e) from None
    try:
        try:  # never replace a directory or write through a symlink at the final name
            st = os.stat(parts[-1], dir_fd=d, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                raise StorageError(DENIED, "the target exists and is not a regular file")
        except FileNotFoundError:
            pass
        tmp = f".{parts[-1][:64]}.{os.urandom(6).hex()}.tmp"  # unguessable; O_EXCL below
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=d)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(tmp, parts[-1], src_dir_fd=d, dst_dir_fd=d)
        except OSError:
            os.unlink(tmp, dir_fd=d)
            raise
    except OSError as e:
        raise _os_error(e) from None
    finally:
        os.close(d)


def open_root(top: int, root: str) -> int | None:
    """A descriptor on a declared root directory (created, no symlinks); ``None`` for a wildcard root."""
    parts = _root_parts(root)
    if not parts or any("*" in p or p in (".", "..") for p in parts):
        return None
    try:
        return _walk(top, parts, create=True)
    except OSError as e:
        raise _os_error(e) from None
