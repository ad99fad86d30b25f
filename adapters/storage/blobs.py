"""The content-addressed artifact store: ``<home>/blobs/sha256/<hex>``.

Blobs are written atomically (temp file + fsync + rename) and made read-only. Whenever a
version's artifact is read it is checked against the digest the journal recorded:
missing is ``artifact_missing``, different bytes are ``artifact_tampered``. Anything
standing in a blob's place that is not a regular file (a FIFO, a directory, a device, a
symbolic link) is as unusable as a missing one: ``artifact_missing``. Blobs are opened
without blocking (a FIFO would otherwise hold the reader until a writer appears) and
without following links.

Ordering rule that keeps the journal honest after a crash: a blob is written *before*
the event that references it, and deleted only *after* the event that releases it. A
crash can leave an unreferenced blob (harmless, collectable), never a reference to a
missing one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from skill_ledger.domain.constants import MAX_ARTIFACT_BYTES
from skill_ledger.domain.errors import ArtifactMissing, ArtifactTampered, StorageError

from .files import atomic_write, ensure_private_dir
from .locks import exclusive_lock


class NotRegularFile(OSError):
    """The path names something other than a regular file (``kind`` says what)."""

    def __init__(self, path: str | os.PathLike[str], kind: str) -> None:
        super().__init__(errno.EINVAL, f"not a regular file ({kind})", str(path))
        self.kind = kind


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symbolic link"))


def file_kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str | os.PathLike[str], *, follow_symlinks: bool = False) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file, without ever blocking on it.

    ``O_NONBLOCK`` makes opening a FIFO return at once (instead of waiting for a writer), and
    the ``fstat`` of what was opened refuses anything that is not a regular file
    (:class:`NotRegularFile`), so nothing is read from a FIFO, socket or device. Without
    ``follow_symlinks`` a symbolic link is refused too. Other errors are ``OSError`` as usual.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP and not follow_symlinks:
            raise NotRegularFile(path, "a symbolic link") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path, file_kind(mode))
        os.set_blocking(fd, True)  # a regular file never blocks; the flag only mattered for open
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def relative(self, digest: str) -> str:
        return f"sha256/{digest}"

    def path_for(self, digest: str) -> Path:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a sha256 hex digest: {digest!r}")
        return self.root / "sha256" / digest

    def put(self, data: bytes, digest: str | None = None) -> str:
        digest = digest or hashlib.sha256(data).hexdigest()
        path = self.path_for(digest)
        if self.exists(digest) and _file_sha256(path) == digest:
            return self.relative(digest)
        ensure_private_dir(self.root)
        try:
            mode: int | None = os.lstat(path).st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None and stat.S_ISDIR(mode):
            raise StorageError(f"{path} is a directory where a stored artifact belongs; move it away and try again",
                               {"path": str(path), "artifact_sha256": digest})
        if mode is not None:  # a damaged copy, a FIFO or a link: replace it (the directory is ours)
            path.unlink()
        atomic_write(path, data, mode=0o444)
        return self.relative(digest)

    def exists(self, digest: str) -> bool:
        """Whether a usable blob is there: a regular file (a FIFO, directory or link is not one)."""
        try:
            return stat.S_ISREG(os.lstat(self.path_for(digest)).st_mode)
        except OSError:
            return False

    def read_verified(self, digest: str, *, skill_id: str = "", version: str = "") -> bytes:
        path = self.path_for(digest)
        where = {"skill_id": skill_id, "version": version, "artifact_sha256": digest, "path": str(path)}
        try:
            with open_regular(path) as f:
                data = f.read(MAX_ARTIFACT_BYTES + 1)
        except FileNotFoundError:
            raise ArtifactMissing(f"stored artifact of {skill_id} {version} is missing: {path}", where) from None
        except NotRegularFile as e:
            raise ArtifactMissing(f"stored artifact of {skill_id} {version} is unusable: {path} is {e.kind}, "
                                  "not a regular file", {**where, "file_kind": e.kind}) from None
        except OSError as e:
            raise StorageError(f"cannot read stored artifact {path}: {e.strerror or e}", where) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise ArtifactTampered(
                f"stored artifact of {skill_id} {version} does not match the digest recorded at install",
                {**where, "actual_sha256": actual},
            )
        return data

    def delete(self, digest: str) -> bool:
        path = self.path_for(digest)
        try:
            if stat.S_ISDIR(os.lstat(path).st_mode):
                return False  # not a blob we wrote: left for the operator to look at
            path.unlink()
            return True
        except FileNotFoundError:
            return False

    def digests(self) -> list[str]:
        d = self.root / "sha256"
        if not d.is_dir():
            return []
        return sorted(p.name for p in d.iterdir() if len(p.name) == 64 and not p.name.startswith("."))

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialises "write blob, then record" against "record removal, then delete blob"."""
        ensure_private_dir(self.root)
        with exclusive_lock(self.root / ".lock"):
            yield


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open_regular(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
