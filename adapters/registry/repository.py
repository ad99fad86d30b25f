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

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import msgspec
from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp

from skill_ledger.adapters.storage.files import atomic_write, read_bounded
from skill_ledger.domain.constants import MAX_ARTIFACT_BYTES
from skill_ledger.domain.errors import InvalidInput, IoError, UsageError

from .keys import ROLES, Keyring, default_keys_dir, generate_key, load_signer
from .store import (
    CONFIG_FILE,
    METADATA_DIR,
    TARGETS_DIR,
    Expiry,
    RepositoryFiles,
    Versions,
    locked,
    open_repository,
    sha256,
    tuf_errors,
    utc_now,
)
from .targets import TargetInfo, artifact_target, publish_status, targets_of, to_target_file

__all__ = ["Expiry", "RoleKeys", "Versions", "InitResult", "PublishedTarget", "PublishResult", "RefreshResult",
           "RotateResult", "init", "publish", "refresh_timestamp", "rotate_root", "status", "artifact_target"]


@dataclass(frozen=True)
class RoleKeys:
    """A role's keys: ``keys`` new keys to generate, or existing key files; and the threshold."""

    keys: int | tuple[Path, ...] = 1
    threshold: int = 1


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
    now = utc_now(now)
    try:
        (directory / METADATA_DIR).mkdir(parents=True, exist_ok=True)
        (directory / TARGETS_DIR).mkdir(exist_ok=True)
    except OSError as e:
        raise IoError(f"cannot create {directory}: {e.strerror or e}", operation="write") from None
    with locked(directory), tuf_errors(directory):
        if (directory / METADATA_DIR / "root.json").exists():
            raise UsageError(f"{directory} is already a registry", {"directory": str(directory)})
        keyring, assigned = _init_keys(kdir, roles)
        root = Root(expires=now + expiry.root, consistent_snapshot=True)
        for role, (paths, threshold) in assigned.items():
            for p in paths:
                root.add_key(keyring.public_key(p), role)
            root.roles[role].threshold = threshold
        atomic_write(directory / CONFIG_FILE, msgspec.json.encode({"format": 1, "expiry_seconds": expiry.to_json()}))
        repo = RepositoryFiles(directory, keyring, now, expiry, {
            "root": Metadata(root), "targets": Metadata(Targets(expires=now + expiry.targets)),
            "snapshot": Metadata(Snapshot(expires=now + expiry.snapshot)),
            "timestamp": Metadata(Timestamp(expires=now + expiry.timestamp)),
        }, kdir)
        root_bytes = repo.write_root(signers=keyring.signers_for("root", root.roles["root"].keyids,
                                                                 root.roles["root"].threshold))
        repo.commit(["targets"], bump=False)
    return InitResult(str(directory), str(kdir), str(directory / METADATA_DIR / "1.root.json"),
                      sha256(root_bytes), {r: [str(p) for p in ps] for r, (ps, _) in assigned.items()},
                      repo.versions())


def publish(directory: str | os.PathLike[str], artifacts: Sequence[bytes | str | os.PathLike[str]], *,
            keys: Sequence[str | os.PathLike[str]] = (), keys_dir: str | os.PathLike[str] | None = None,
            now: datetime | None = None, renew: bool = False) -> PublishResult:
    """Add artifacts as targets ``<skill_id>/<version>.palyra-skill``, all or none.

    Each artifact must inspect (signature, integrity, manifest: the domain's own checks);
    a skill version already published with other bytes is ``version_conflict`` (published
    targets never change); the very same artifact again is ``unchanged``. With nothing new,
    no metadata changes unless ``renew`` (re-sign targets with a fresh expiry)."""
    with open_repository(directory, keys, keys_dir, now) as repo:
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
    with open_repository(directory, keys, keys_dir, now) as repo:
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
    with open_repository(directory, keys, keys_dir, now) as repo:
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
        return RotateResult(new_root.version, sha256(root_bytes), new_keys,
                            {r: ks for r, ks in revoked.items() if ks}, repo.versions())


def status(directory: str | os.PathLike[str]) -> RefreshResult:
    """The verified versions and expiries, read-only (no key needed)."""
    with open_repository(directory, (), None, None, need_keys=False) as repo:
        soon = [r for r in ROLES if repo.expires_within(r, repo.expiry.of(r) / 4)]
        return RefreshResult(repo.versions(), [], repo.expiries(), soon)


# --- helpers --------------------------------------------------------------------------------


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
