"""The content-addressed artifact store: ``<home>/blobs/sha256/<hex>``.

Blobs are written atomically (temp file + fsync + rename) and made read-only. Whenever a
version's artifact is read it is checked against the digest the journal recorded:
missing is ``artifact_missing``, different bytes are ``artifact_tampered``.

Ordering rule that keeps the journal honest after a crash: a blob is written *before*
the event that references it, and deleted only *after* the event that releases it. A
crash can leave an unreferenced blob (harmless, collectable), never a reference to a
missing one.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

from skill_ledger.domain.constants import MAX_ARTIFACT_BYTES
from skill_ledger.domain.errors import ArtifactMissing, ArtifactTampered, StorageError

from .files import atomic_write, ensure_private_dir
from .locks import exclusive_lock


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
        if path.exists() and _file_sha256(path) == digest:
            return self.relative(digest)
        ensure_private_dir(self.root)
        if path.exists():  # a damaged copy: replace it (the file is read-only, the directory is ours)
            path.unlink()
        atomic_write(path, data, mode=0o444)
        return self.relative(digest)

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).exists()

    def read_verified(self, digest: str, *, skill_id: str = "", version: str = "") -> bytes:
        path = self.path_for(digest)
        where = {"skill_id": skill_id, "version": version, "artifact_sha256": digest, "path": str(path)}
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_ARTIFACT_BYTES + 1)
        except FileNotFoundError:
            raise ArtifactMissing(f"stored artifact of {skill_id} {version} is missing: {path}", where) from None
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
        try:
            self.path_for(digest).unlink()
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
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
