"""Verifying stored artifacts and auditing them: the one verification service and the
``verify`` and ``audit`` use cases.

:class:`StoredArtifactVerifier` is the single place that checks a stored version (the digest
recorded at install, the payload hash, the signature, the publisher's current trust) and
quarantines it on the aggregate when the check fails; ``verify``, ``audit``, ``enable`` and
the periodic re-audit all go through it. :func:`audit` runs the §19 audit of an inspected
artifact under the current (or a given) policy.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

import msgspec

from skill_ledger.adapters.storage.files import read_bounded
from skill_ledger.domain.artifact import InspectResult, inspect_artifact
from skill_ledger.domain.audit_policy import AuditPolicy
from skill_ledger.domain.errors import ArtifactError, ArtifactMissing, ArtifactTampered, SkillLedgerError
from skill_ledger.domain.policy import PolicyValues, effective_feed_path
from skill_ledger.domain.skill import Skill, SkillVersion, quarantine_code_for
from skill_ledger.domain.trust import TrustStore, evaluate_trust

from .results import AuditOutcome, AuditRun, VerifyResult
from .unit_of_work import Ledger

if TYPE_CHECKING:
    from skill_ledger.domain.vulnfeed import VulnFeed

# What a failed check of a stored artifact raises (TrustError is an ArtifactError).
VERIFICATION_FAILURES = (ArtifactTampered, ArtifactMissing, ArtifactError)


# --- the audit ------------------------------------------------------------------------------


def audit(ledger: Ledger, inspected: InspectResult, trust_decision: str,
          policy: AuditPolicy | None = None) -> AuditOutcome:
    """The §19 audit of a verified artifact under ``policy`` (default: the journal's current one)."""
    from skill_ledger.adapters.audit.inspector import inspect_modules
    from skill_ledger.adapters.audit.schema_facts import schema_facts
    from skill_ledger.domain.audit import audit_artifact
    from skill_ledger.domain.constants import AUDIT_VULN_FEED_HOOK_ENV

    policy = policy or ledger.policy()
    values = policy.values
    feed = load_feed(values)
    # Facts only: the modules are validated and read, never compiled (their one compilation
    # happens in the runner, at the first run); the schemas are compiled as the runner will.
    modules = inspect_modules(inspected.entries, max_bytes=values.max_module_bytes)
    report = audit_artifact(inspected, trust_decision, values, modules, feed,
                            os.environ.get(AUDIT_VULN_FEED_HOOK_ENV), time.time_ns() // 1_000_000,
                            schemas=schema_facts(inspected.manifest))
    return AuditOutcome(report, policy.policy_version)


def load_feed(values: PolicyValues) -> VulnFeed | None:
    """The vulnerability feed the policy names; a feed that cannot be read is an error (§19.5),
    never an empty feed."""
    path = effective_feed_path(values)
    if path is None:
        return None
    from skill_ledger.domain.errors import IoError
    from skill_ledger.domain.vulnfeed import parse_feed

    def too_large(actual: int, limit: int) -> Exception:
        return IoError(f"vulnerability feed {path} is larger than {limit} bytes")

    try:
        data = read_bounded(path, 64 * 1024 * 1024, too_large=too_large)
    except SkillLedgerError as e:
        raise IoError(f"cannot read vulnerability feed {path}: {e.message}") from None
    return parse_feed(data, path)


# --- the verification service ---------------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    """The stored artifact is intact and its publisher still trusted."""

    inspected: InspectResult
    trust_decision: str


@dataclass(frozen=True)
class Unverified:
    """The check failed with ``error``; ``quarantined``: this check recorded the quarantine."""

    error: SkillLedgerError
    reason_code: str
    quarantined: bool


class StoredArtifactVerifier:
    """Verify a stored version and quarantine it (on the aggregate; the caller saves) when that fails."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def check(self, skill: Skill, v: SkillVersion, *, quarantine: bool = True, trust_store: TrustStore | None = None,
              recorded_manifest: bool = False) -> Verified | Unverified:
        """``quarantine``: record the quarantine of a failure (with the reason code of its kind).
        ``trust_store``: the publisher's trust state when the caller holds it already.
        ``recorded_manifest``: reuse the manifest parsed at install (bound by the payload hash)
        instead of parsing ``skill.toml`` again, the periodic re-audit's fast path."""
        try:
            inspected = self._inspect(skill, v, recorded_manifest)
            if trust_store is None:
                trust_store = self.ledger.trust_store_for(inspected.manifest.publisher)
            decision = evaluate_trust(trust_store, inspected.manifest.publisher, inspected.public_key_hex, False)
        except VERIFICATION_FAILURES as e:
            quarantined = quarantine and skill.quarantine_unverified(self.ledger.actor, v.version, e)
            return Unverified(e, quarantine_code_for(e), quarantined)
        return Verified(inspected, decision.decision.value)

    def _inspect(self, skill: Skill, v: SkillVersion, recorded_manifest: bool) -> InspectResult:
        data = self.ledger.blobs.read_verified(v.artifact_sha256, skill_id=skill.skill_id, version=v.version)
        if recorded_manifest:
            from skill_ledger.domain.artifact import reinspect_artifact
            from skill_ledger.domain.manifest import manifest_from_json

            try:
                manifest = manifest_from_json(v.manifest)
            except msgspec.ValidationError:  # recorded by another engine version: parse it afresh
                inspected = inspect_artifact(data)
            else:
                inspected = reinspect_artifact(data, manifest, v.payload_sha256)
        else:
            inspected = inspect_artifact(data)
        if inspected.payload_sha256 != v.payload_sha256:
            raise ArtifactTampered(f"stored artifact of {skill.skill_id} {v.version} has a different payload",
                                   {"skill_id": skill.skill_id, "version": v.version})
        return inspected


def raise_saved(ledger: Ledger, skill: Skill, failure: Unverified) -> NoReturn:
    """Save what the failed check recorded (the quarantine), then raise its error with the positions."""
    failure.error.details["positions"] = ledger.save(skill)
    raise failure.error


# --- the use cases --------------------------------------------------------------------------


def verify(ledger: Ledger, skill_id: str, version: str | None) -> VerifyResult:
    """Re-verify a stored version: digest recorded at install, payload hash, signature, trust.

    A failure quarantines the version (``artifact_tampered``, ``artifact_missing`` or
    ``trust_revoked``) and is reported in the result; success records ``skill.verified``.
    """
    verifier = StoredArtifactVerifier(ledger)

    def attempt() -> VerifyResult:
        skill = ledger.skill(skill_id)
        v = skill.installed(version)
        check = verifier.check(skill, v)
        if isinstance(check, Unverified):
            return VerifyResult(skill.skill_id, v.version, False, check.reason_code, check.error.message, None,
                                v.status, ledger.save(skill))
        skill.record_verified(ledger.actor, v.version, check.inspected.payload_sha256, check.trust_decision)
        return VerifyResult(skill.skill_id, v.version, True, None, None, check.trust_decision, v.status,
                            ledger.save(skill))

    return ledger.retrying(attempt)


def audit_installed(ledger: Ledger, skill_id: str, version: str | None, *, quarantine: bool = True) -> AuditRun:
    """Audit a stored version under the current policy and record ``skill.audited`` (trigger
    ``manual``); a failure quarantines it (``audit_failed``) unless ``quarantine`` is false.
    A verification failure is an error (no report), and quarantines like ``verify``."""
    verifier = StoredArtifactVerifier(ledger)

    def attempt() -> AuditRun:
        skill = ledger.skill(skill_id)
        v = skill.installed(version)
        check = verifier.check(skill, v, quarantine=quarantine)
        if isinstance(check, Unverified):
            if quarantine:
                raise_saved(ledger, skill, check)
            raise check.error
        outcome = audit(ledger, check.inspected, check.trust_decision)
        quarantined = skill.manual_audit(ledger.actor, v.version, outcome.report, outcome.policy_version,
                                         quarantine=quarantine)
        return AuditRun(outcome.report, outcome.policy_version, quarantined, ledger.save(skill))

    return ledger.retrying(attempt)


def audit_file(ledger: Ledger, data: bytes, *, allow_tofu: bool, extra_trust: TrustStore | None = None) -> AuditRun:
    """Read-only audit of an artifact file: nothing is recorded; trust flags apply to this run."""
    inspected = inspect_artifact(data)
    publisher = inspected.manifest.publisher
    store = ledger.trust_store_for(publisher)
    if extra_trust is not None:
        store = store.merged_with(extra_trust)
    decision = evaluate_trust(store, publisher, inspected.public_key_hex, allow_tofu).decision
    outcome = audit(ledger, inspected, decision.value)
    return AuditRun(outcome.report, outcome.policy_version, False, [])
