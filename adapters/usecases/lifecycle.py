"""Lifecycle use cases on an installed version: quarantine, disable, enable, rollback, remove,
and the runner's records (an execution it denied, an artifact it found damaged).

Each loads the ``Skill``, lets it decide (refusing a transition that does not apply), and
saves what it recorded; ``enable`` first re-verifies the stored artifact and re-audits it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from skill_ledger.domain.errors import AuditFailed
from skill_ledger.domain.skill import ACTIVE, OPERATOR, Skill

from .results import AuditSummary, ChangeResult
from .unit_of_work import Ledger
from .verification import StoredArtifactVerifier, Unverified, audit, raise_saved

Decide = Callable[[Skill, str], bool]


def _change(ledger: Ledger, skill_id: str, version: str | None, decide: Decide) -> ChangeResult:
    """Load the skill, let ``decide`` record on the chosen version (default: current), save."""
    def attempt() -> ChangeResult:
        skill = ledger.skill(skill_id)
        chosen = skill.installed(version).version
        changed = decide(skill, chosen)
        positions = ledger.save(skill)
        v = skill.versions[chosen]
        return ChangeResult(skill.skill_id, chosen, v.status if v.installed else "removed", skill.current,
                            changed, positions)

    return ledger.retrying(attempt)


def quarantine(ledger: Ledger, skill_id: str, version: str | None, reason: str) -> ChangeResult:
    """An operator's quarantine (reason code ``operator``); nothing recorded if it already is."""
    return _change(ledger, skill_id, version, lambda s, v: s.quarantine(ledger.actor, v, OPERATOR, reason))


def quarantine_for(ledger: Ledger, skill_id: str, version: str, reason_code: str, reason: str,
                   details: dict[str, Any] | None = None) -> ChangeResult:
    """Quarantine with a machine reason (``artifact_tampered``, ``artifact_missing``, ...)."""
    return _change(ledger, skill_id, version,
                   lambda s, v: s.quarantine(ledger.actor, v, reason_code, reason, details or {}))


def disable(ledger: Ledger, skill_id: str, version: str | None, reason: str) -> ChangeResult:
    return _change(ledger, skill_id, version, lambda s, v: s.disable(ledger.actor, v, reason))


def rollback(ledger: Ledger, skill_id: str, to_version: str | None, reason: str | None = None) -> ChangeResult:
    """Make an installed other version current (default: the previous current still installed)."""
    def attempt() -> ChangeResult:
        skill = ledger.skill(skill_id)
        previous = skill.current
        target = skill.rollback(ledger.actor, to_version, reason)
        positions = ledger.save(skill)
        v = skill.versions[target]
        return ChangeResult(skill.skill_id, target, v.status, skill.current, True, positions,
                            {"from_version": previous})

    return ledger.retrying(attempt)


def remove(ledger: Ledger, skill_id: str, version: str | None, reason: str | None = None) -> ChangeResult:
    """Remove a version; its stored artifact is deleted after the removal is recorded, unless
    another installed version uses the same artifact."""
    with ledger.blobs.lock():
        def attempt() -> ChangeResult:
            skill = ledger.skill(skill_id)
            v = skill.remove(ledger.actor, skill.installed(version).version, reason)
            positions = ledger.save(skill)
            return ChangeResult(skill.skill_id, v.version, "removed", skill.current, True, positions,
                                {"artifact_sha256": v.artifact_sha256})

        result = ledger.retrying(attempt)
        # Released only after the removal is recorded; kept while any installed version uses it.
        skill = ledger.skill(skill_id)
        digest = result.details["artifact_sha256"]
        still_used = any(x.artifact_sha256 == digest for x in skill.installed_versions())
        deleted = False if still_used else ledger.blobs.delete(digest)
    return msgspec.structs.replace(result, details={**result.details, "artifact_deleted": deleted})


def enable(ledger: Ledger, skill_id: str, version: str | None, reason: str, override: bool = False) -> ChangeResult:
    """Re-verify (integrity, signature, trust) and re-audit, then re-activate.

    A verification failure refuses even with ``override`` (and quarantines the version); an
    audit failure refuses (``audit_failed``, the audit recorded) unless ``override``, which is
    recorded on the event.
    """
    verifier = StoredArtifactVerifier(ledger)

    def attempt() -> ChangeResult:
        skill = ledger.skill(skill_id)
        v = skill.installed(version)
        if v.status == ACTIVE:
            return ChangeResult(skill.skill_id, v.version, v.status, skill.current, False, [])
        check = verifier.check(skill, v)
        if isinstance(check, Unverified):
            raise_saved(ledger, skill, check)
        outcome = audit(ledger, check.inspected, check.trust_decision)
        try:
            skill.enable(ledger.actor, v.version, reason, trust_decision=check.trust_decision, audit=outcome.report,
                         policy_version=outcome.policy_version, override=override)
        except AuditFailed as e:
            positions = ledger.save(skill)  # the verification and the failed audit
            # the positions follow the version in the error document, as they always have
            e.details = {"skill_id": e.details["skill_id"], "version": e.details["version"],
                         "positions": positions} | e.details
            raise
        positions = ledger.save(skill)
        details = {"audit": msgspec.to_builtins(AuditSummary.of(outcome.report)),
                   "override": override and not outcome.report.passed}
        return ChangeResult(skill.skill_id, v.version, v.status, skill.current, True, positions, details)

    return ledger.retrying(attempt)


def deny_execution(ledger: Ledger, skill_id: str, version: str, tool_id: str, reason_code: str) -> list[int]:
    """Record ``skill.execution_denied`` (the runner's gate refused to run a tool)."""
    def attempt() -> list[int]:
        skill = ledger.skill(skill_id)
        skill.deny_execution(ledger.actor, version, tool_id, reason_code)
        return ledger.save(skill)

    return ledger.retrying(attempt)
