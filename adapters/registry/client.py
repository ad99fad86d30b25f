"""Client side: the registries an operator added, each read through python-tuf's ngclient.

Each registry has a directory (``<home>/registries/<name>/``)::

    pinned-root.json   the root given at ``add`` (its SHA-256 goes in the journal)
    metadata/          ngclient's trusted metadata cache (root_history/, timestamp.json, ...)
    downloads/         transient, while a target downloads

The journal, not this directory, says which registries exist, at which URL, with which
pinned root: the caller passes ``url`` and ``root_sha256`` from there, and a pinned root that
no longer has the recorded digest is ``registry_root_mismatch``. Every refresh starts from the
pinned root and walks the root chain (cached roots are re-verified, never trusted as files).

Two seams into ngclient's internals, both on ``Updater._trusted_set`` (python-tuf 7 offers no
public accessor; the dependency is capped below 8 and the tests pin both):

* the expiry clock: ngclient compares expiry with ``TrustedMetadataSet.reference_time``, set
  to ``datetime.now()`` when the Updater is built; ``UpdaterConfig`` has no option for it, so
  the injected clock is written to that attribute before ``refresh()`` (python-tuf's own tests
  freeze the time with freezegun instead);
* the trusted metadata: the versions and the top-level targets are read from the set that
  ``refresh()`` verified, never from the cache files again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
from tuf.api.metadata import Metadata, Role, Root, TargetFile
from tuf.ngclient import FetcherInterface, Updater, UpdaterConfig

from skill_ledger.adapters.storage.files import atomic_write, read_bounded
from skill_ledger.domain.artifact import InspectResult, inspect_artifact
from skill_ledger.domain.constants import MAX_ARTIFACT_BYTES
from skill_ledger.domain.errors import (
    ArtifactTooLarge,
    InvalidInput,
    ManifestValidationError,
    RegistryError,
    RegistryMetadataInvalid,
    RegistryRollback,
    RegistryRootMismatch,
    RegistryTargetNotFound,
    StorageError,
    UsageError,
)
from skill_ledger.domain.grammars import semver

from .fetcher import SCHEMES, RegistryFetcher
from .keys import ROLES
from .targets import TargetInfo, check_artifact, checked_skill_id, targets_of
from .tuf_errors import map_tuf_error

PINNED_ROOT = "pinned-root.json"
METADATA_DIR = "metadata"
DOWNLOADS_DIR = "downloads"
LOCK_FILE = ".lock"
MAX_ROOT_BYTES = UpdaterConfig().root_max_length
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class PinnedRegistry(msgspec.Struct, frozen=True):
    name: str
    url: str
    root_sha256: str  # record this: every later open checks the pinned root against it
    root_version: int


class TrustedVersions(msgspec.Struct, frozen=True):
    """What a refresh ended up trusting. Record it when it differs from the last record; pass
    the last record back as ``refresh(floor=...)``. ``role_keys`` fingerprints each role's
    keys and threshold, so a key rotation is visible (and lifts the floor it must lift)."""

    root: int
    timestamp: int
    snapshot: int
    targets: int
    role_keys: dict[str, str]


class Download(msgspec.Struct, frozen=True):
    target: TargetInfo
    versions: TrustedVersions  # the metadata that vouched for this artifact
    inspected: InspectResult  # inspected (§14) and checked against the target's custom info

    @property
    def data(self) -> bytes:
        return self.inspected.archive


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"invalid registry name {name!r}: use [a-z0-9._-], at most 64 characters",
                           {"name": name})
    return name


def normalize_url(url: str) -> str:
    """``https://``, ``http://`` or ``file://``, no credentials, no query; ends with ``/``."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a malformed port
    except ValueError:
        raise InvalidInput(f"invalid registry URL {url!r}", {"url": url}) from None
    if parts.scheme not in SCHEMES:
        raise InvalidInput(f"registry URL scheme must be one of {', '.join(SCHEMES)}", {"url": url})
    if parts.username is not None or parts.password is not None:
        # credentials would end up in the journal and in error messages
        raise InvalidInput("registry URL must not carry credentials", {"scheme": parts.scheme})
    if parts.query or parts.fragment or (parts.scheme != "file" and not parts.hostname) or port == 0:
        raise InvalidInput(f"invalid registry URL {url!r}", {"url": url})
    return url if url.endswith("/") else url + "/"


class Registries:
    """The registries' local state under one base directory (``<home>/registries``)."""

    def __init__(self, base_dir: str | os.PathLike[str]):
        self.base = Path(base_dir)

    def path(self, name: str) -> Path:
        return self.base / check_name(name)

    def add(self, name: str, url: str, root_bytes: bytes, *, replace: bool = False) -> PinnedRegistry:
        """Pin ``root_bytes`` (a self-signed TUF root) for ``name``. An existing directory is
        refused unless ``replace`` (the caller knows from the journal the name is free)."""
        directory, url = self.path(name), normalize_url(url)
        if len(root_bytes) > MAX_ROOT_BYTES:
            raise InvalidInput(f"root metadata larger than {MAX_ROOT_BYTES} bytes", {"length": len(root_bytes)})
        try:
            root = Metadata[Root].from_bytes(root_bytes)
            if not isinstance(root.signed, Root):
                raise RegistryMetadataInvalid(f"registry '{name}': the given file is {root.signed.type} metadata, "
                                              "not a root", {"registry": name, "type": root.signed.type})
            root.signed.verify_delegate("root", root.signed_bytes, root.signatures)
        except Exception as e:  # noqa: BLE001 - every failure becomes a project error
            raise map_tuf_error(e, phase="metadata", context={"registry": name}) from None
        if directory.exists():
            if not replace:
                raise UsageError(f"registry '{name}' already has local state at {directory}", {"name": name})
            _local(shutil.rmtree, directory)
        atomic_write(directory / PINNED_ROOT, root_bytes, mode=0o644)
        _local((directory / METADATA_DIR).mkdir, exist_ok=True)
        return PinnedRegistry(name, url, hashlib.sha256(root_bytes).hexdigest(), root.signed.version)

    def remove(self, name: str) -> bool:
        directory = self.path(name)
        if not directory.exists():
            return False
        _local(shutil.rmtree, directory)
        return True

    def open(self, name: str, url: str, *, root_sha256: str | None = None, floor: TrustedVersions | None = None,
             clock: Callable[[], datetime] | None = None, fetcher: FetcherInterface | None = None) -> RegistryClient:
        return RegistryClient(self.path(name), url, name=name, root_sha256=root_sha256, floor=floor, clock=clock,
                              fetcher=fetcher)


class RegistryClient:
    """One registry, read through ``tuf.ngclient.Updater``. Each :meth:`refresh` builds a new
    Updater (ngclient refreshes once per instance); the listing and downloads use the
    metadata that the latest refresh verified (one is done first if none was)."""

    def __init__(self, directory: str | os.PathLike[str], url: str, *, name: str | None = None,
                 root_sha256: str | None = None, floor: TrustedVersions | None = None,
                 clock: Callable[[], datetime] | None = None, fetcher: FetcherInterface | None = None,
                 config: UpdaterConfig | None = None):
        self.dir = Path(directory)
        self.url = normalize_url(url)
        self.name = name or self.dir.name
        self.root_sha256 = root_sha256
        self.floor = floor
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._fetcher = fetcher or RegistryFetcher()
        self._config = config or UpdaterConfig()
        self._updater: Updater | None = None
        self._versions: TrustedVersions | None = None
        self._by_skill: dict[str, dict[str, TargetFile]] | None = None

    # -- metadata

    def refresh(self, floor: TrustedVersions | None = None) -> TrustedVersions:
        """Update and verify the top-level metadata (TUF client workflow 5.3-5.6).

        ``floor`` (default: the one given when opening) is the record last made in the
        journal. Trusting less than that is ``registry_rollback`` even when the local cache
        was lost (ngclient alone would then accept any unexpired older metadata), except where
        a key rotation voids it, as in ngclient: the timestamp and snapshot floors fall with
        new timestamp keys, the targets floor with new snapshot keys (fast-forward recovery,
        spec 5.3.11)."""
        self._updater = self._versions = self._by_skill = None
        with self._locked():
            updater = self._new_updater()
            with self._mapped("metadata"):
                updater.refresh()
        versions = _trusted_versions(updater)
        if floor is None:
            floor = self.floor
        if floor is not None:
            _check_floor(self.name, floor, versions)
        self._updater, self._versions = updater, versions
        return versions

    @property
    def versions(self) -> TrustedVersions:
        self._refreshed()
        assert self._versions is not None
        return self._versions

    # -- targets

    def skills(self) -> list[str]:
        """The skill ids the trusted targets metadata lists."""
        return sorted(self._grouped())

    def list_versions(self, skill_id: str) -> list[TargetInfo]:
        """The versions of ``skill_id`` the trusted targets metadata vouches for, lowest first."""
        sid = _skill_id(skill_id)
        return targets_of(self._grouped().get(sid, {}), sid)

    def target(self, skill_id: str, version: str | None = None) -> TargetInfo:
        """The given version (by semantic version) or the highest one."""
        found = self.list_versions(skill_id)
        wanted = None if version is None else _semver(version)
        match = [t for t in found if wanted is None or t.semver == wanted]
        if not match:
            what = skill_id if version is None else f"{skill_id} {version}"
            raise RegistryTargetNotFound(
                f"registry '{self.name}' lists no {what}",
                {"registry": self.name, "skill_id": skill_id, "version": version,
                 "available": [t.version for t in found]})
        return match[-1]

    def fetch(self, skill_id: str, version: str | None = None) -> Download:
        """Download the target (TUF checks its length while streaming, then its hash), inspect
        it and check it is the skill version the registry lists."""
        target = self.target(skill_id, version)
        if target.length > MAX_ARTIFACT_BYTES:
            raise ArtifactTooLarge(target.length, MAX_ARTIFACT_BYTES)
        updater = self._refreshed()
        downloads = self.dir / DOWNLOADS_DIR
        with self._locked(), self._mapped("target", target=target.path):
            downloads.mkdir(exist_ok=True)
            info = updater.get_targetinfo(target.path)
            if info is None:  # listed a moment ago from the same trusted metadata
                raise RegistryTargetNotFound(f"registry '{self.name}' lists no {target.path}", {"target": target.path})
            with tempfile.TemporaryDirectory(dir=downloads) as tmp:
                path = updater.download_target(info, filepath=os.path.join(tmp, "artifact"))
                data = Path(path).read_bytes()
        inspected = inspect_artifact(data)
        check_artifact(target, inspected)
        assert self._versions is not None
        return Download(target, self._versions, inspected)

    # -- internals

    def _grouped(self) -> dict[str, dict[str, TargetFile]]:
        """The trusted targets by skill id (the first path segment), once per refresh, so that
        looking up many skills stays linear in the number of targets."""
        if self._by_skill is None:
            groups: dict[str, dict[str, TargetFile]] = {}
            for path, info in _trusted(self._refreshed()).targets.targets.items():
                skill, slash, _ = path.partition("/")
                if slash:  # our targets are <skill_id>/<version>.palyra-skill; others are not skills
                    groups.setdefault(skill, {})[path] = info
            self._by_skill = groups
        return self._by_skill

    def _refreshed(self) -> Updater:
        if self._updater is None:
            self.refresh()
        assert self._updater is not None
        return self._updater

    def _new_updater(self) -> Updater:
        root = self._pinned_root()
        with self._mapped("metadata"):
            updater = Updater(
                metadata_dir=str(self.dir / METADATA_DIR), metadata_base_url=self.url + "metadata/",
                target_base_url=self.url + "targets/", fetcher=self._fetcher, config=self._config, bootstrap=root,
            )
        _trusted(updater).reference_time = _utc(self._clock())
        return updater

    def _pinned_root(self) -> bytes:
        path = self.dir / PINNED_ROOT
        if not path.exists():
            raise RegistryError(f"registry '{self.name}' has no local state (add it again)",
                                {"registry": self.name, "path": str(path)})
        data = read_bounded(path, MAX_ROOT_BYTES)
        digest = hashlib.sha256(data).hexdigest()
        if self.root_sha256 is not None and digest != self.root_sha256:
            raise RegistryRootMismatch(
                f"registry '{self.name}': the pinned root is not the one recorded when it was added",
                {"registry": self.name, "recorded_sha256": self.root_sha256, "pinned_sha256": digest})
        return data

    @contextlib.contextmanager
    def _mapped(self, phase: str, **context: str) -> Iterator[None]:
        try:
            yield
        except Exception as e:  # noqa: BLE001 - nothing of python-tuf escapes as a traceback
            raise map_tuf_error(e, phase=phase, context={"registry": self.name, "url": self.url, **context}) from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """ngclient supports one process per metadata directory: others wait their turn."""
        if not self.dir.is_dir():
            raise RegistryError(f"registry '{self.name}' has no local state (add it again)", {"registry": self.name})
        fd = _local(os.open, self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


# --- helpers -----------------------------------------------------------------------------


def _local(operation, *args, **kwargs):
    """Our own state under the home: a failure there is ``storage_error``, never a traceback."""
    try:
        return operation(*args, **kwargs)
    except OSError as e:
        raise StorageError(f"registry state cannot be written or read: {e.strerror or e}",
                           {"path": str(getattr(e, "filename", "") or "")}) from None


def _trusted(updater: Updater):
    """The seam (see the module docstring): ngclient's verified metadata set."""
    trusted = getattr(updater, "_trusted_set", None)
    if trusted is None or not hasattr(trusted, "reference_time"):
        raise RegistryError("this python-tuf version does not offer the expected Updater internals")
    return trusted


def _trusted_versions(updater: Updater) -> TrustedVersions:
    trusted = _trusted(updater)
    root = trusted.root
    return TrustedVersions(root.version, trusted.timestamp.version, trusted.snapshot.version,
                           trusted.targets.version, {r: _fingerprint(root.roles[r]) for r in ROLES})


def _fingerprint(role: Role) -> str:
    text = f"{role.threshold}:{','.join(sorted(role.keyids))}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_floor(name: str, floor: TrustedVersions, now: TrustedVersions) -> None:
    def rotated(role: str) -> bool:  # a record without the fingerprint lifts nothing
        return role in floor.role_keys and floor.role_keys[role] != now.role_keys.get(role)

    lifted = {"root": False, "timestamp": rotated("timestamp"), "snapshot": rotated("timestamp"),
              "targets": rotated("snapshot")}
    below = {r: {"trusted": getattr(now, r), "recorded": getattr(floor, r)}
             for r in ROLES if getattr(now, r) < getattr(floor, r) and not lifted[r]}
    if below:
        raise RegistryRollback(
            f"registry '{name}': metadata older than recorded before ({', '.join(sorted(below))})",
            {"registry": name, "below": below})


def _skill_id(value: str) -> str:
    try:
        return checked_skill_id(value)
    except ManifestValidationError as e:
        raise InvalidInput(f"invalid skill id {value!r}: {e.message}", {"skill_id": value}) from None


def _semver(value: str):
    try:
        return semver(value, "version")
    except ManifestValidationError as e:
        raise InvalidInput(f"invalid version {value!r}: {e.message}", {"version": value}) from None


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise InvalidInput("the registry clock must be timezone-aware")
    return when.astimezone(timezone.utc)
