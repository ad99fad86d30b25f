"""The files of a registry repository on disk: loading them verified, writing them in order.

See :mod:`.repository` for the layout and the operations built on this.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec
from tuf.api import exceptions as tuf_exceptions
from tuf.api.metadata import Metadata, MetaFile, Root
from tuf.api.serialization.json import JSONSerializer

from skill_ledger.adapters.storage.files import atomic_write, read_bounded
from skill_ledger.domain.errors import InvalidInput, IoError, RegistryError, RegistryMetadataInvalid

from .keys import ROLES, Keyring, default_keys_dir, key_files
from .targets import TargetInfo
from .tuf_errors import map_tuf_error

METADATA_DIR = "metadata"
TARGETS_DIR = "targets"
CONFIG_FILE = "publisher.json"
LOCK_FILE = ".lock"
MAX_METADATA_BYTES = 32 * 1024 * 1024
_SERIALIZER = JSONSerializer(compact=False)


@dataclass(frozen=True)
class Expiry:
    """How long each role's metadata stays valid after it is signed."""

    root: timedelta = timedelta(days=365)
    targets: timedelta = timedelta(days=90)
    snapshot: timedelta = timedelta(days=7)
    timestamp: timedelta = timedelta(days=1)

    def of(self, role: str) -> timedelta:
        return getattr(self, role)

    def to_json(self) -> dict[str, int]:
        return {r: int(self.of(r).total_seconds()) for r in ROLES}

    @classmethod
    def from_json(cls, data: Mapping[str, int]) -> Expiry:
        return cls(**{r: timedelta(seconds=int(data[r])) for r in ROLES})


class Versions(msgspec.Struct, frozen=True):
    root: int
    targets: int
    snapshot: int
    timestamp: int


class RepositoryFiles:
    """The four roles of one repository, loaded and verified, and how to write them."""

    def __init__(self, directory: Path, keyring: Keyring, now: datetime, expiry: Expiry,
                 md: dict[str, Metadata], keys_dir: Path | None = None):
        self.dir = directory
        self.meta = directory / METADATA_DIR
        self.keyring = keyring
        self.now = now
        self.expiry = expiry
        self.md = md
        self.keys_dir = keys_dir or default_keys_dir(directory)

    # -- reading

    @classmethod
    def load(cls, directory: Path, keyring: Keyring, now: datetime, keys_dir: Path) -> RepositoryFiles:
        meta = directory / METADATA_DIR
        if not (meta / "root.json").exists():
            raise RegistryError(f"{directory} is not a registry (no metadata/root.json)", {"directory": str(directory)})
        context = {"repository": str(directory)}
        try:
            root = verified_root_chain(meta)
            md: dict[str, Metadata] = {"root": root}
            for role in ("targets", "snapshot", "timestamp"):
                current = Metadata.from_bytes(_read(meta / f"{role}.json"))
                if role != "timestamp":  # the versioned file is what clients fetch: it must be the same
                    if _read(meta / f"{current.signed.version}.{role}.json") != _read(meta / f"{role}.json"):
                        raise RegistryMetadataInvalid(
                            f"{directory}: {role}.json differs from {current.signed.version}.{role}.json", context)
                if current.signed.type != role:
                    raise RegistryMetadataInvalid(f"{directory}: {role}.json holds {current.signed.type}", context)
                root.signed.verify_delegate(role, current.signed_bytes, current.signatures)
                md[role] = current
        except Exception as e:  # noqa: BLE001 - every failure becomes a project error
            raise map_tuf_error(e, phase="repository", context=context) from None
        return cls(directory, keyring, now, read_expiry(directory), md, keys_dir)

    def versions(self) -> Versions:
        return Versions(**{r: self.md[r].signed.version for r in ROLES})

    def expiries(self) -> dict[str, str]:
        return {r: self.md[r].signed.expires.isoformat() for r in ROLES}

    def expires_within(self, role: str, margin: timedelta) -> bool:
        return self.md[role].signed.expires <= self.now + margin

    def require(self, *roles: str) -> None:
        """Fail before writing anything when a role's keys are not at hand."""
        root = self.md["root"].signed
        for role in roles:
            self.keyring.signers_for(role, root.roles[role].keyids, root.roles[role].threshold)

    # -- writing

    def write_target(self, info: TargetInfo, data: bytes) -> None:
        skill_dir, _, name = info.path.rpartition("/")
        path = self.dir / TARGETS_DIR / skill_dir / f"{info.artifact_sha256}.{name}"
        if not path.exists():
            atomic_write(path, data)

    def write_root(self, signers, previous: Root | None = None) -> bytes:
        md = self.md["root"]
        md.signatures.clear()
        for signer in signers:
            md.sign(signer, append=True)
        # Refuse to publish a root a client would reject: signed by its predecessor and itself.
        for trusted in filter(None, (previous, md.signed)):
            trusted.verify_delegate("root", md.signed_bytes, md.signatures)
        data = md.to_bytes(_SERIALIZER)
        atomic_write(self.meta / f"{md.signed.version}.root.json", data)
        atomic_write(self.meta / "root.json", data)
        return data

    def commit(self, roles: Sequence[str], bump: bool = True) -> None:
        """Sign and write the given targets-like roles, then a new snapshot and timestamp."""
        for role in roles:
            self._sign_versioned(role, bump)
        if bump:
            self.commit_snapshot_and_timestamp()
        else:
            self._sign_versioned("snapshot", bump=False, meta=self._meta_for("targets"))
            self._sign_timestamp(bump=False)

    def commit_snapshot_and_timestamp(self) -> None:
        self.commit_snapshot()
        self.commit_timestamp()

    def commit_snapshot(self) -> None:
        self._sign_versioned("snapshot", bump=True, meta=self._meta_for("targets"))

    def commit_timestamp(self) -> None:
        self._sign_timestamp(bump=True)

    def _meta_for(self, role: str) -> MetaFile:
        data = _read(self.meta / f"{self.md[role].signed.version}.{role}.json")
        return MetaFile(self.md[role].signed.version, len(data), {"sha256": sha256(data)})

    def _sign(self, role: str, bump: bool) -> bytes:
        md = self.md[role]
        if bump:
            md.signed.version += 1
        md.signed.expires = self.now + self.expiry.of(role)
        root = self.md["root"].signed
        md.signatures.clear()
        for signer in self.keyring.signers_for(role, root.roles[role].keyids, root.roles[role].threshold):
            md.sign(signer, append=True)
        return md.to_bytes(_SERIALIZER)

    def _sign_versioned(self, role: str, bump: bool, meta: MetaFile | None = None) -> None:
        if meta is not None:
            self.md[role].signed.meta["targets.json"] = meta
        data = self._sign(role, bump)
        atomic_write(self.meta / f"{self.md[role].signed.version}.{role}.json", data)
        atomic_write(self.meta / f"{role}.json", data)

    def _sign_timestamp(self, bump: bool) -> None:
        self.md["timestamp"].signed.snapshot_meta = self._meta_for("snapshot")
        atomic_write(self.meta / "timestamp.json", self._sign("timestamp", bump))


# --- helpers --------------------------------------------------------------------------------


@contextlib.contextmanager
def open_repository(directory, keys, keys_dir, now, need_keys: bool = True) -> Iterator[RepositoryFiles]:
    directory = Path(directory)
    kdir = Path(keys_dir) if keys_dir else default_keys_dir(directory)
    with locked(directory):
        paths = (key_files(kdir) + [Path(k) for k in keys]) if need_keys else []
        repo = RepositoryFiles.load(directory, Keyring.from_paths(paths), utc_now(now), kdir)
        with tuf_errors(directory):
            yield repo


@contextlib.contextmanager
def tuf_errors(directory: Path) -> Iterator[None]:
    """A python-tuf refusal while writing (say, a root that would not verify) is a project error."""
    try:
        yield
    except tuf_exceptions.RepositoryError as e:
        raise map_tuf_error(e, phase="repository", context={"repository": str(directory)}) from None


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """One publisher at a time per repository (a second one waits)."""
    if not directory.is_dir():
        raise RegistryError(f"{directory} is not a registry directory", {"directory": str(directory)})
    try:
        fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise IoError(f"cannot lock {directory}: {e.strerror or e}", operation="write") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def verified_root_chain(meta: Path) -> Metadata:
    """Root 1 (self-signed), then each next root signed by its predecessor and itself, up to
    ``root.json``: the chain a client walks, checked before anything is re-signed."""
    current = Metadata[Root].from_bytes(_read(meta / "root.json"))
    trusted = Metadata[Root].from_bytes(_read(meta / "1.root.json"))
    trusted.signed.verify_delegate("root", trusted.signed_bytes, trusted.signatures)
    for version in range(2, current.signed.version + 1):
        nxt = Metadata[Root].from_bytes(_read(meta / f"{version}.root.json"))
        if nxt.signed.version != version:
            raise RegistryMetadataInvalid(f"{version}.root.json holds version {nxt.signed.version}")
        trusted.signed.verify_delegate("root", nxt.signed_bytes, nxt.signatures)
        nxt.signed.verify_delegate("root", nxt.signed_bytes, nxt.signatures)
        trusted = nxt
    if trusted.signed_bytes != current.signed_bytes:
        raise RegistryMetadataInvalid("root.json differs from the newest versioned root")
    return current


def read_expiry(directory: Path) -> Expiry:
    try:
        return Expiry.from_json(msgspec.json.decode(_read(directory / CONFIG_FILE))["expiry_seconds"])
    except (KeyError, TypeError, ValueError, msgspec.DecodeError) as e:
        raise RegistryError(f"{directory}/{CONFIG_FILE} is invalid: {e}", {"directory": str(directory)}) from None


def _read(path: Path) -> bytes:
    return read_bounded(path, MAX_METADATA_BYTES, too_large=lambda actual, limit: RegistryMetadataInvalid(
        f"{path} is larger than {limit} bytes", {"path": str(path), "actual": actual, "limit": limit}))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def utc_now(now: datetime | None) -> datetime:
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise InvalidInput("the publisher clock must be timezone-aware")
    return now.astimezone(timezone.utc).replace(microsecond=0)
