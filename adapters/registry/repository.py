"""Publisher side: a registry is a TUF repository of static files in one directory.

::

    DIR/metadata/   1.root.json … N.root.json, root.json (= N), timestamp.json,
                    N.snapshot.json, snapshot.json, N.targets.json, targets.json
    DIR/targets/    <skill_id>/<sha256>.<version>.palyra-skill   (consistent snapshots)
    DIR/publisher.json   expiry periods (public facts, like the metadata itself)
    DIR.keys/       the signing keys, 0600 files in a 0700 directory, NOT served

Any static web server can serve ``DIR`` as is; clients fetch ``metadata/`` and ``targets/``.
Metadata is written with python-tuf's Metadata API and signed with securesystemslib's
``CryptoSigner`` (Ed25519). Every operation first verifies what is on disk (the root chain
from version 1, each role against the current root), so a file tampered with on the server
is refused rather than re-signed. Files are written so that a reader (a web server, a
client) never sees a half-published state: targets first, then ``N.targets.json``, then
``N.snapshot.json``, and ``timestamp.json`` last, which is the commit point.
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
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

from skill_ledger.adapters.storage.files import atomic_write, read_bounded
from skill_ledger.domain.constants import MAX_ARTIFACT_BYTES
from skill_ledger.domain.errors import InvalidInput, RegistryError, RegistryMetadataInvalid, UsageError

from .keys import ROLES, Keyring, default_keys_dir, generate_key, key_files, load_signer
from .targets import TargetInfo, artifact_target, publish_status, targets_of, to_target_file
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


@dataclass(frozen=True)
class RoleKeys:
    """A role's keys: ``keys`` new keys to generate, or existing key files; and the threshold."""

    keys: int | tuple[Path, ...] = 1
    threshold: int = 1


class Versions(msgspec.Struct, frozen=True):
    root: int
    targets: int
    snapshot: int
    timestamp: int


class InitResult(msgspec.Struct, frozen=True):
    directory: str
    keys_dir: str
    root_path: str  # metadata/1.root.json: hand this file to clients (`registry add --root`)
    root_sha256: str
    keys: dict[str, list[str]]  # role -> key files
    versions: Versions


class PublishedTarget(TargetInfo, frozen=True):
    status: str = "published"  # or "unchanged": the very same artifact was already there


class PublishResult(msgspec.Struct, frozen=True):
    targets: list[PublishedTarget]
    versions: Versions


class RefreshResult(msgspec.Struct, frozen=True):
    versions: Versions
    renewed: list[str]
    expires: dict[str, str]
    expiring_soon: list[str]  # roles within a quarter of their period of expiry (offline keys needed)


class RotateResult(msgspec.Struct, frozen=True):
    root_version: int
    root_sha256: str
    new_keys: dict[str, list[str]]
    revoked_keyids: dict[str, list[str]]
    versions: Versions


# --- the operations ----------------------------------------------------------------------


def init(directory: str | os.PathLike[str], *, roles: Mapping[str, RoleKeys] | None = None,
         keys_dir: str | os.PathLike[str] | None = None, expiry: Expiry = Expiry(),
         now: datetime | None = None) -> InitResult:
    """Create an empty registry. Without ``roles``, one new key signs all four roles;
    with ``roles``, each role gets its own keys and threshold (a role left out: one new key)."""
    directory = Path(directory)
    kdir = Path(keys_dir) if keys_dir else default_keys_dir(directory)
    now = _now(now)
    (directory / METADATA_DIR).mkdir(parents=True, exist_ok=True)
    (directory / TARGETS_DIR).mkdir(exist_ok=True)
    with _locked(directory), _tuf_errors(directory):
        if (directory / METADATA_DIR / "root.json").exists():
            raise UsageError(f"{directory} is already a registry", {"directory": str(directory)})
        keyring, assigned = _init_keys(kdir, roles)
        root = Root(expires=now + expiry.root, consistent_snapshot=True)
        for role, (paths, threshold) in assigned.items():
            for p in paths:
                root.add_key(keyring.public_key(p), role)
            root.roles[role].threshold = threshold
        atomic_write(directory / CONFIG_FILE, msgspec.json.encode({"format": 1, "expiry_seconds": expiry.to_json()}))
        repo = _Repo(directory, keyring, now, expiry, {
            "root": Metadata(root), "targets": Metadata(Targets(expires=now + expiry.targets)),
            "snapshot": Metadata(Snapshot(expires=now + expiry.snapshot)),
            "timestamp": Metadata(Timestamp(expires=now + expiry.timestamp)),
        }, kdir)
        root_bytes = repo.write_root(signers=keyring.signers_for("root", root.roles["root"].keyids,
                                                                 root.roles["root"].threshold))
        repo.commit(["targets"], bump=False)
    return InitResult(str(directory), str(kdir), str(directory / METADATA_DIR / "1.root.json"),
                      _sha256(root_bytes), {r: [str(p) for p in ps] for r, (ps, _) in assigned.items()},
                      repo.versions())


def publish(directory: str | os.PathLike[str], artifacts: Sequence[bytes | str | os.PathLike[str]], *,
            keys: Sequence[str | os.PathLike[str]] = (), keys_dir: str | os.PathLike[str] | None = None,
            now: datetime | None = None, renew: bool = False) -> PublishResult:
    """Add artifacts as targets ``<skill_id>/<version>.palyra-skill``, all or none.

    Each artifact must inspect (signature, integrity, manifest: the domain's own checks);
    a skill version already published with other bytes is ``version_conflict`` (published
    targets never change); the very same artifact again is ``unchanged``. With nothing new,
    no metadata changes unless ``renew`` (re-sign targets with a fresh expiry)."""
    with _open(directory, keys, keys_dir, now) as repo:
        repo.require("targets", "snapshot", "timestamp")
        targets = repo.md["targets"].signed
        staged: dict[str, tuple[TargetInfo, bytes]] = {}
        results: list[PublishedTarget] = []
        for item in artifacts:
            data = item if isinstance(item, bytes) else read_bounded(item, MAX_ARTIFACT_BYTES)
            info = artifact_target(data)
            known = targets_of(targets.targets, info.skill_id) + [t for t, _ in staged.values()
                                                                 if t.skill_id == info.skill_id]
            status = publish_status(known, info)
            if status == "published":
                staged[info.path] = (info, data)
            results.append(PublishedTarget(**msgspec.structs.asdict(info), status=status))
        if not staged and not renew:
            return PublishResult(results, repo.versions())
        for info, data in staged.values():
            repo.write_target(info, data)
            targets.targets[info.path] = to_target_file(info)
        repo.commit(["targets"])
        return PublishResult(results, repo.versions())


def refresh_timestamp(directory: str | os.PathLike[str], *, keys: Sequence[str | os.PathLike[str]] = (),
                      keys_dir: str | os.PathLike[str] | None = None, now: datetime | None = None) -> RefreshResult:
    """Re-sign the timestamp with a fresh expiry (for a timer, well within the timestamp period).

    The snapshot is re-signed too when it would expire within half its period or does not
    list the current targets (a publish cut short): both use the online keys. Root and
    targets need offline keys; when they near expiry they are reported, not renewed."""
    with _open(directory, keys, keys_dir, now) as repo:
        repo.require("snapshot", "timestamp")
        renewed = []
        snapshot = repo.md["snapshot"].signed
        listed = snapshot.meta.get("targets.json")
        if listed is None or listed.version != repo.md["targets"].signed.version or repo.expires_within(
                "snapshot", repo.expiry.snapshot / 2):
            repo.commit_snapshot()
            renewed.append("snapshot")
        repo.commit_timestamp()
        renewed.append("timestamp")
        soon = [r for r in ("root", "targets") if repo.expires_within(r, repo.expiry.of(r) / 4)]
        return RefreshResult(repo.versions(), renewed, repo.expiries(), soon)


def rotate_root(directory: str | os.PathLike[str], roles: Mapping[str, RoleKeys] | None = None, *,
                keys: Sequence[str | os.PathLike[str]] = (), keys_dir: str | os.PathLike[str] | None = None,
                now: datetime | None = None) -> RotateResult:
    """A new root version that gives the roles in ``roles`` new keys and thresholds (none:
    only a fresh root expiry), signed by a threshold of the old root keys *and* of the new.

    Then every role whose keys changed is re-signed with its new keys, and a new snapshot and
    timestamp are written, so a client that trusted metadata signed by a compromised key
    (a fast-forward attack) recovers on its next refresh (TUF spec 5.3.11)."""
    roles = dict(roles or {})
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise InvalidInput(f"unknown role(s): {', '.join(sorted(unknown))}", {"roles": sorted(unknown)})
    with _open(directory, keys, keys_dir, now) as repo:
        old_root = repo.md["root"].signed
        old_signers = repo.keyring.signers_for("root", old_root.roles["root"].keyids, old_root.roles["root"].threshold)
        new_root = Metadata[Root].from_bytes(repo.md["root"].to_bytes()).signed
        new_keys: dict[str, list[str]] = {}
        revoked: dict[str, list[str]] = {}
        for role, spec in roles.items():
            paths = _materialise(repo.keys_dir, role, spec, repo.keyring)
            keep = {repo.keyring.keyid_of(p) for p in paths}
            revoked[role] = [k for k in old_root.roles[role].keyids if k not in keep]
            for keyid in revoked[role]:
                new_root.revoke_key(keyid, role)
            for p in paths:
                new_root.add_key(repo.keyring.public_key(p), role)
            new_root.roles[role].threshold = spec.threshold
            new_keys[role] = [str(p) for p in paths]
        new_root.version += 1
        new_root.expires = repo.now + repo.expiry.root
        repo.md["root"] = Metadata(new_root)
        # every key the new metadata needs must be at hand before the new root is written
        repo.require("snapshot", "timestamp", *(["targets"] if "targets" in roles else []))
        new_signers = repo.keyring.signers_for("root", new_root.roles["root"].keyids, new_root.roles["root"].threshold)
        root_bytes = repo.write_root(signers=_unique(old_signers + new_signers), previous=old_root)
        # The snapshot and timestamp are always re-signed (with their new keys, if rotated);
        # targets only when its keys changed, since that needs the (offline) targets key.
        repo.commit(["targets"] if "targets" in roles else [])
        return RotateResult(new_root.version, _sha256(root_bytes), new_keys,
                            {r: ks for r, ks in revoked.items() if ks}, repo.versions())


def status(directory: str | os.PathLike[str]) -> RefreshResult:
    """The verified versions and expiries, read-only (no key needed)."""
    with _open(directory, (), None, None, need_keys=False) as repo:
        soon = [r for r in ROLES if repo.expires_within(r, repo.expiry.of(r) / 4)]
        return RefreshResult(repo.versions(), [], repo.expiries(), soon)


# --- the repository on disk --------------------------------------------------------------


class _Repo:
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
    def load(cls, directory: Path, keyring: Keyring, now: datetime, keys_dir: Path) -> _Repo:
        meta = directory / METADATA_DIR
        if not (meta / "root.json").exists():
            raise RegistryError(f"{directory} is not a registry (no metadata/root.json)", {"directory": str(directory)})
        context = {"repository": str(directory)}
        try:
            root = _verified_root_chain(meta)
            md: dict[str, Metadata] = {"root": root}
            for role in ("targets", "snapshot", "timestamp"):
                current = Metadata.from_bytes(_read(meta / f"{role}.json"))
                if role != "timestamp":  # the versioned file is what clients fetch: it must be the same
                    if _read(meta / f"{current.signed.version}.{role}.json") != _read(meta / f"{role}.json"):
                        raise RegistryMetadataInvalid(
                            f"{directory}: {role}.json differs from {current.signed.version}.{role}.json", context)
                root.signed.verify_delegate(role, current.signed_bytes, current.signatures)
                if current.signed.type != role:
                    raise RegistryMetadataInvalid(f"{directory}: {role}.json holds {current.signed.type}", context)
                md[role] = current
        except Exception as e:  # noqa: BLE001 - every failure becomes a project error
            raise map_tuf_error(e, phase="repository", context=context) from None
        return cls(directory, keyring, now, _read_expiry(directory), md, keys_dir)

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
        return MetaFile(self.md[role].signed.version, len(data), {"sha256": _sha256(data)})

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


# --- helpers -----------------------------------------------------------------------------


@contextlib.contextmanager
def _open(directory, keys, keys_dir, now, need_keys: bool = True) -> Iterator[_Repo]:
    directory = Path(directory)
    kdir = Path(keys_dir) if keys_dir else default_keys_dir(directory)
    with _locked(directory):
        paths = (key_files(kdir) + [Path(k) for k in keys]) if need_keys else []
        repo = _Repo.load(directory, Keyring.from_paths(paths), _now(now), kdir)
        with _tuf_errors(directory):
            yield repo


@contextlib.contextmanager
def _tuf_errors(directory: Path) -> Iterator[None]:
    """A python-tuf refusal while writing (say, a root that would not verify) is a project error."""
    try:
        yield
    except tuf_exceptions.RepositoryError as e:
        raise map_tuf_error(e, phase="repository", context={"repository": str(directory)}) from None


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One publisher at a time per repository (a second one waits)."""
    if not directory.is_dir():
        raise RegistryError(f"{directory} is not a registry directory", {"directory": str(directory)})
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _verified_root_chain(meta: Path) -> Metadata:
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


def _init_keys(keys_dir: Path, roles: Mapping[str, RoleKeys] | None):
    """The key files of each role and its threshold; new keys are generated into ``keys_dir``."""
    keyring = Keyring()
    if roles is None:
        path, signer = generate_key(keys_dir, "shared")
        keyring.add(path, signer)
        return keyring, {r: ([path], 1) for r in ROLES}
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise InvalidInput(f"unknown role(s): {', '.join(sorted(unknown))}", {"roles": sorted(unknown)})
    assigned = {}
    for role in ROLES:
        spec = roles.get(role, RoleKeys())
        assigned[role] = (_materialise(keys_dir, role, spec, keyring), spec.threshold)
    return keyring, assigned


def _materialise(keys_dir: Path, role: str, spec: RoleKeys, keyring: Keyring) -> list[Path]:
    """Generate ``spec.keys`` new keys, or load the given key files, into ``keyring``."""
    if isinstance(spec.keys, int):
        count = spec.keys
        paths = []
        for _ in range(count):
            path, signer = generate_key(keys_dir, role)
            keyring.add(path, signer)
            paths.append(path)
    else:
        paths = [Path(p) for p in spec.keys]
        for p in paths:
            keyring.add(p, load_signer(p))
        count = len({keyring.keyid_of(p) for p in paths})
    if count < 1 or not 1 <= spec.threshold <= count:
        raise InvalidInput(f"role '{role}': threshold {spec.threshold} with {count} distinct key(s)",
                           {"role": role, "threshold": spec.threshold, "keys": count})
    return paths


def _unique(signers: list) -> list:
    seen, out = set(), []
    for s in signers:
        if s.public_key.keyid not in seen:
            seen.add(s.public_key.keyid)
            out.append(s)
    return out


def _read_expiry(directory: Path) -> Expiry:
    try:
        return Expiry.from_json(msgspec.json.decode(_read(directory / CONFIG_FILE))["expiry_seconds"])
    except (KeyError, TypeError, ValueError, msgspec.DecodeError) as e:
        raise RegistryError(f"{directory}/{CONFIG_FILE} is invalid: {e}", {"directory": str(directory)}) from None


def _read(path: Path) -> bytes:
    return read_bounded(path, MAX_METADATA_BYTES, too_large=lambda actual, limit: RegistryMetadataInvalid(
        f"{path} is larger than {limit} bytes", {"path": str(path), "actual": actual, "limit": limit}))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _now(now: datetime | None) -> datetime:
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise InvalidInput("the publisher clock must be timezone-aware")
    return now.astimezone(timezone.utc).replace(microsecond=0)
