"""What a registry target is, for the publisher and the client alike.

A target is one ``.palyra-skill`` artifact at the TUF path ``<skill_id>/<version>.palyra-skill``
with the custom target info ``{skill_id, version, publisher, payload_sha256}``, taken from the
artifact by the domain's own inspection when it is published. TUF vouches for the artifact's
bytes (length and SHA-256); the custom info says which skill version those bytes are, and the
client checks it against the artifact it downloaded (wrong software installation).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import msgspec
from tuf.api.metadata import TargetFile

from skill_ledger.domain.artifact import InspectResult, inspect_artifact, sha256_hex
from skill_ledger.domain.errors import (
    ManifestValidationError,
    RegistryMetadataInvalid,
    RegistryWrongTarget,
    VersionConflict,
)
from skill_ledger.domain.grammars import SemVer, semver
from skill_ledger.domain.grammars import skill_id as normal_skill_id
from skill_ledger.domain.text import trim

SUFFIX = ".palyra-skill"
CUSTOM_FIELDS = ("skill_id", "version", "publisher", "payload_sha256")


class TargetInfo(msgspec.Struct, frozen=True):
    path: str  # <skill_id>/<version>.palyra-skill
    skill_id: str
    version: str
    publisher: str
    payload_sha256: str
    artifact_sha256: str  # the TUF sha256 of the artifact file
    length: int

    @property
    def semver(self) -> SemVer:
        return _semver(self.version)


@functools.lru_cache(maxsize=4096)  # listing a thousand skills parses a handful of distinct versions
def _semver(version: str) -> SemVer:
    return semver(version, "version")


@functools.lru_cache(maxsize=16384)  # an update looks each listed skill id up more than once
def checked_skill_id(value: str) -> str:
    """``grammars.skill_id`` (the normal form, or ``manifest_validation``), remembered."""
    return normal_skill_id(value)


def target_path(skill_id: str, version: str) -> str:
    return f"{skill_id}/{version}{SUFFIX}"


def artifact_target(data: bytes) -> TargetInfo:
    """The target for an artifact that passes the domain's inspection (else its error)."""
    inspected = inspect_artifact(data)
    m = inspected.manifest
    sid, version = normal_skill_id(m.skill_id), trim(m.version)
    return TargetInfo(target_path(sid, version), sid, version, trim(m.publisher), inspected.payload_sha256,
                      sha256_hex(data), len(data))


def to_target_file(info: TargetInfo) -> TargetFile:
    custom = {name: getattr(info, name) for name in CUSTOM_FIELDS}
    return TargetFile(info.length, {"sha256": info.artifact_sha256}, info.path, {"custom": custom})


def from_target_file(path: str, tf: TargetFile) -> TargetInfo:
    """Read one signed target entry; an entry that breaks the conventions is refused loudly."""
    custom = tf.custom if isinstance(tf.custom, dict) else {}
    values = {name: custom.get(name) for name in CUSTOM_FIELDS}
    digest = tf.hashes.get("sha256")
    problem = None
    if not all(isinstance(v, str) and v for v in values.values()):
        problem = "custom target info must give skill_id, version, publisher and payload_sha256"
    elif not isinstance(digest, str):
        problem = "a target must carry a sha256 hash"
    elif path != target_path(values["skill_id"], values["version"]):
        problem = "the target path does not match its skill_id and version"
    else:
        try:
            checked_skill_id(values["skill_id"])
            _semver(values["version"])
        except ManifestValidationError as e:
            problem = e.message
    if problem:
        raise RegistryMetadataInvalid(f"target '{path}': {problem}", {"target": path})
    return TargetInfo(path, values["skill_id"], values["version"], values["publisher"], values["payload_sha256"],
                      digest, tf.length)


def targets_of(targets: Mapping[str, TargetFile], skill_id: str) -> list[TargetInfo]:
    """The targets of one skill, lowest version first. Two entries for one semantic version
    (``1.0.0`` and ``01.0.0``) are refused: which one is meant would be ambiguous."""
    prefix = f"{skill_id}/"
    found = [from_target_file(p, tf) for p, tf in targets.items() if p.startswith(prefix)]
    found.sort(key=lambda t: t.semver)
    for a, b in zip(found, found[1:]):
        if a.semver == b.semver:
            raise RegistryMetadataInvalid(f"skill '{skill_id}' lists version {a.version} twice",
                                          {"skill_id": skill_id, "targets": [a.path, b.path]})
    return found


def publish_status(existing: list[TargetInfo], info: TargetInfo) -> str:
    """``published`` for a new version, ``unchanged`` for the very same artifact; another
    artifact under a published version (same semantic version) is ``version_conflict``:
    published targets never change."""
    for old in existing:
        if old.semver != info.semver:
            continue
        if old.path == info.path and old.artifact_sha256 == info.artifact_sha256:
            return "unchanged"
        raise VersionConflict(
            f"{info.skill_id} {info.version} is already published with other bytes",
            {"skill_id": info.skill_id, "version": info.version, "published_path": old.path,
             "published_artifact_sha256": old.artifact_sha256, "published_payload_sha256": old.payload_sha256,
             "artifact_sha256": info.artifact_sha256, "payload_sha256": info.payload_sha256},
        )
    return "published"


def check_artifact(target: TargetInfo, inspected: InspectResult) -> None:
    """The downloaded artifact is the skill version the registry listed (TUF vouched for the
    bytes; this checks what the bytes *say* they are against what the registry said)."""
    m = inspected.manifest
    seen = {"skill_id": normal_skill_id(m.skill_id), "version": trim(m.version), "publisher": trim(m.publisher),
            "payload_sha256": inspected.payload_sha256}
    wrong = {k: {"listed": getattr(target, k), "artifact": v} for k, v in seen.items() if getattr(target, k) != v}
    if wrong:
        raise RegistryWrongTarget(f"{target.path}: the artifact is not what the registry lists ({', '.join(wrong)})",
                                  {"target": target.path, "mismatch": wrong})


def check_installed_payload(target: TargetInfo, installed_payload_sha256: str | None) -> None:
    """For the install path: a version already installed with another payload than the one
    the registry now lists is ``version_conflict`` (a re-published or swapped version)."""
    if installed_payload_sha256 is not None and installed_payload_sha256 != target.payload_sha256:
        raise VersionConflict(
            f"{target.skill_id} {target.version} is installed with another payload than the registry lists",
            {"skill_id": target.skill_id, "version": target.version,
             "installed_payload_sha256": installed_payload_sha256, "payload_sha256": target.payload_sha256},
        )
