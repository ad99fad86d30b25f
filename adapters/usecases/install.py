"""Installing an artifact, and the record a rejected artifact leaves (``artifact.rejected``).

Install: decode and verify the bytes (domain), ask the publisher whether it trusts the
signing key and the skill whether it takes this version, audit, store the artifact, and
save the publisher (a TOFU pin) and the skill (verification, audit, install, activation or
quarantine) in one transaction. The artifact is written to the blob store before the events
that reference it (crash ordering).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from skill_ledger.domain.artifact import InspectResult, inspect_artifact, sha256_hex
from skill_ledger.domain.audit import AuditReport
from skill_ledger.domain.errors import ArtifactError, SkillLedgerError, TrustError, VersionConflict
from skill_ledger.domain.events import LedgerAggregate
from skill_ledger.domain.intake import Intake
from skill_ledger.domain.publisher import Publisher
from skill_ledger.domain.skill import ArtifactFacts, Skill, SkillVersion, jsonable

from .results import AuditSummary, InstallResult
from .trust import allow
from .unit_of_work import Ledger
from .verification import audit


# Called inside the install's transaction, after the skill recorded its install: the other
# aggregates (loaded fresh in this attempt) whose events belong in the same transaction.
AlsoRecord = Callable[[Ledger, Skill], Sequence[LedgerAggregate]]


def install(ledger: Ledger, path: str, *, allow_tofu: bool = False, trusted_publishers: Sequence[tuple[str, str]] = (),
            source: str | None = None, data: bytes | None = None, also: AlsoRecord | None = None) -> InstallResult:
    """Install the artifact at ``path`` (or ``data``, described by ``source``) and make it current.

    ``trusted_publishers``: (publisher, key) pairs allowlisted first. Nothing is recorded for a
    payload installed already (``already_installed``); a rejected artifact (format, signature,
    trust, ``version_conflict``) is recorded as ``artifact.rejected`` and raised. ``also``: see
    ``AlsoRecord`` (a registry install records which metadata vouched for it).
    """
    if data is None:
        from skill_ledger.adapters.packaging.package import read_artifact

        data = read_artifact(path)
    source = source or f"file:{Path(path).resolve()}"
    artifact_sha256 = sha256_hex(data)
    try:
        inspected = inspect_artifact(data)
    except ArtifactError as e:
        record_rejection(ledger, artifact_sha256, source, e)
        raise
    positions: list[int] = []
    for pub, key in trusted_publishers:
        positions += allow(ledger, pub, key, reason="--trusted-publisher on install").positions
    with ledger.blobs.lock():
        result = ledger.retrying(lambda: _install(ledger, inspected, data, artifact_sha256, source, allow_tofu, also))
    return msgspec.structs.replace(result, positions=positions + result.positions)


def _install(ledger: Ledger, inspected: InspectResult, data: bytes, artifact_sha256: str, source: str,
             allow_tofu: bool, also: AlsoRecord | None = None) -> InstallResult:
    m = inspected.manifest
    publisher = ledger.load(Publisher, m.publisher)
    skill = ledger.load(Skill, m.skill_id)
    try:
        decision = publisher.trust_decision(inspected.public_key_hex, allow_tofu).value
        if not skill.admits(m.version, inspected.payload_sha256):
            return _already_installed(ledger, skill, skill.versions[m.version], data, artifact_sha256)
    except (TrustError, VersionConflict) as e:
        record_rejection(ledger, artifact_sha256, source, e, m)
        raise
    outcome = audit(ledger, inspected, decision)
    blob = ledger.blobs.put(data, artifact_sha256)
    publisher.accept_for_install(ledger.actor, inspected.public_key_hex, inspected.signature.key_id, allow_tofu,
                                 m.skill_id, m.version, inspected.payload_sha256)
    skill.install(ledger.actor, _facts(inspected, artifact_sha256, decision, source), outcome.report,
                  outcome.policy_version, blob)
    positions = ledger.save(publisher, skill, *(also(ledger, skill) if also is not None else ()))
    return _result(skill, skill.versions[m.version], outcome.report, positions)


def _already_installed(ledger: Ledger, skill: Skill, v: SkillVersion, data: bytes,
                       artifact_sha256: str) -> InstallResult:
    if v.artifact_sha256 == artifact_sha256 and not ledger.blobs.exists(artifact_sha256):
        # The very bytes recorded at install: put the lost stored copy back. The version
        # stays as it is (a quarantine for artifact_missing needs `enable`).
        ledger.blobs.put(data, artifact_sha256)
    return _result(skill, v, None, [], already=True)


def _facts(inspected: InspectResult, artifact_sha256: str, trust_decision: str, source: str) -> ArtifactFacts:
    from skill_ledger.domain.manifest import manifest_to_json

    m = inspected.manifest
    return ArtifactFacts(
        version=m.version,
        publisher=m.publisher,
        payload_sha256=inspected.payload_sha256,
        artifact_sha256=artifact_sha256,
        key_id=inspected.signature.key_id,
        key_hex=inspected.public_key_hex,
        trust_decision=trust_decision,
        manifest=manifest_to_json(m),
        manifest_warnings=[msgspec.to_builtins(w) for w in inspected.manifest_warnings],
        source=source,
    )


def _result(skill: Skill, v: SkillVersion, report: AuditReport | None, positions: list[int],
            already: bool = False) -> InstallResult:
    return InstallResult(
        skill_id=skill.skill_id,
        version=v.version,
        publisher=v.publisher,
        trust_decision=v.trust_decision,
        status=v.status or "installed",
        current=skill.current == v.version,
        payload_sha256=v.payload_sha256,
        artifact_sha256=v.artifact_sha256,
        key_id=v.key_id,
        audit=AuditSummary.of(report) if report is not None else None,
        positions=positions,
        already_installed=already,
    )


def record_rejection(ledger: Ledger, artifact_sha256: str, source: str, error: SkillLedgerError,
                     manifest: Any = None) -> list[int]:
    """Record ``artifact.rejected`` in the artifact's intake stream (bounded, and only once per
    digest and error: the ``Intake`` decides); the positions written (none for a repeat) also go
    into the error's details."""
    def attempt() -> list[int]:
        intake = ledger.load(Intake, artifact_sha256)
        recorded = intake.reject(
            ledger.actor,
            source=source,
            error_code=error.code,
            message=error.message,
            details=jsonable(error.details),
            skill_id=getattr(manifest, "skill_id", None),
            version=getattr(manifest, "version", None),
            publisher=getattr(manifest, "publisher", None),
        )
        return ledger.save(intake) if recorded else []

    positions = ledger.retrying(attempt)
    error.details.setdefault("positions", positions)
    return positions
