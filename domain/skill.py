"""The ``Skill`` aggregate: one stream per skill id (``skill:<skill_id>``) holding every
version's verification, audits, install, status changes, the current pointer, removals
and execution denials.

Status of an installed version: ``active`` (runnable), ``quarantined`` (a failed audit,
a tampered or missing artifact, a revoked key, or an operator) or ``disabled`` (an
operator). Only ``enable`` leaves ``quarantined``; nothing re-activates a version
silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from .errors import (
    ArtifactMissing,
    AuditFailed,
    InvalidTransition,
    NotInstalled,
    SkillLedgerError,
    TrustError,
    UsageError,
    VersionConflict,
)
from .events import Actor, LedgerAggregate
from .grammars import same_version, skill_version
from .secrets import SecretNames, SkillSecretRemoved, SkillSecretSet
from .skill_events import (
    ACTIVE,
    ARTIFACT_MISSING,
    ARTIFACT_TAMPERED,
    AUDIT_FAILED,
    AUDIT_TRIGGERS,
    DISABLED,
    OPERATOR,
    POLICY_CHANGE,
    QUARANTINED,
    TRUST_REVOKED,
    Activated,
    ArtifactVerified,
    Audited,
    CurrentChanged,
    Disabled,
    Enabled,
    ExecutionDenied,
    Installed,
    Quarantined,
    Removed,
    SkillVersion,
    Verified,
)
from .text import event_details, event_text

if TYPE_CHECKING:  # the audit module is heavy; the aggregate only reads a report's members
    from .audit import AuditReport

__all__ = [
    "ACTIVE", "ARTIFACT_MISSING", "ARTIFACT_TAMPERED", "AUDIT_FAILED", "DISABLED", "OPERATOR", "POLICY_CHANGE",
    "QUARANTINED", "TRUST_REVOKED", "ArtifactFacts", "Skill", "SkillVersion", "jsonable", "quarantine_code_for",
]


def quarantine_code_for(error: SkillLedgerError) -> str:
    """The reason code of a quarantine caused by a failed verification of a stored artifact."""
    if isinstance(error, ArtifactMissing):
        return ARTIFACT_MISSING
    if isinstance(error, TrustError):
        return TRUST_REVOKED
    return ARTIFACT_TAMPERED


def jsonable(details: dict[str, Any]) -> dict[str, Any]:
    """Event details as plain JSON values (an error's details may hold paths or non-string keys)."""
    return msgspec.to_builtins(details, str_keys=True)  # type: ignore[no-any-return]


def _reason(text: str | None) -> str | None:
    """A reason (an operator's words or an error's message) as an event records it: bounded."""
    return None if text is None else event_text(text)


def _bounded_check(check: dict[str, Any]) -> dict[str, Any]:
    out = dict(check)
    if isinstance(out.get("message"), str):
        out["message"] = event_text(out["message"])
    if isinstance(out.get("details"), dict):
        out["details"] = event_details(out["details"])
    return out


class ArtifactFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What verification established about an artifact: the members of ``skill.artifact_verified``."""

    version: str
    publisher: str
    payload_sha256: str
    artifact_sha256: str
    key_id: str
    key_hex: str
    trust_decision: str
    manifest: dict[str, Any]
    manifest_warnings: list[dict[str, Any]]
    source: str


# --- the aggregate -----------------------------------------------------------------------


class Skill(SecretNames, LedgerAggregate):
    PREFIX: ClassVar[str] = "skill"
    SET = SkillSecretSet  # the secrets of the skill's own scope (``domain/secrets.py``)
    REMOVED = SkillSecretRemoved

    def __init__(self, id: Any, stream: str) -> None:
        super().__init__(id, stream)
        self.versions: dict[str, SkillVersion] = {}
        self.current: str | None = None
        self.previous_currents: list[str] = []
        self.secret_keys: set[tuple[str, str]] = set()

    @property
    def skill_id(self) -> str:
        return self.key

    # queries ---------------------------------------------------------------------------

    def installed_versions(self) -> list[SkillVersion]:
        return sorted((v for v in self.versions.values() if v.installed), key=lambda v: v.sort_key)

    def installed(self, version: str | None = None) -> SkillVersion:
        """The given (default: current) installed version, or ``not_installed``."""
        chosen = version if version is not None else self.current
        v = self.versions.get(chosen) if chosen is not None else None
        if v is None or not v.installed:
            what = f"{self.skill_id} {chosen}" if chosen else self.skill_id
            raise NotInstalled(f"{what} is not installed", {"skill_id": self.skill_id, "version": chosen})
        return v

    def is_installed(self, version: str) -> bool:
        v = self.versions.get(version)
        return v is not None and v.installed

    # commands --------------------------------------------------------------------------

    def admits(self, version: str, payload_sha256: str) -> bool:
        """Whether installing ``payload_sha256`` as ``version`` has anything to record: ``False`` when
        this very payload is installed already (nothing to do), ``VersionConflict`` when another payload
        is installed as a version equal to it under SemVer (``1.0.0`` and an ``01.0.0`` an older journal
        recorded are one version). A new version must be strict SemVer (``grammars.skill_version``);
        the versions already recorded are only compared, so old journals replay as they are."""
        skill_version(version, "version")
        existing = self.versions.get(version)
        if existing is not None and existing.installed and existing.payload_sha256 == payload_sha256:
            return False
        for other in self.installed_versions():
            if same_version(other.version, version):
                shown = version if other.version == version else f"{version} (recorded as {other.version!r})"
                raise VersionConflict(
                    f"{self.skill_id} {shown} is already installed with a different payload",
                    {"skill_id": self.skill_id, "version": version, "installed_version": other.version,
                     "installed_payload_sha256": other.payload_sha256, "payload_sha256": payload_sha256},
                )
        return True

    def install(self, actor: Actor, artifact: ArtifactFacts, audit: AuditReport, policy_version: int,
                blob: str) -> bool:
        """Record a verified and audited artifact as installed: its verification, its audit (trigger
        ``install``), the install, the current pointer, then the activation (audit passed) or a
        quarantine (``audit_failed``). ``False`` (nothing recorded) when this very payload is
        installed already; ``VersionConflict`` when another payload is (see :meth:`admits`).

        The new version becomes current unless its audit failed while the current version
        is active: a failed install never displaces a working version.
        """
        version = artifact.version
        if not self.admits(version, artifact.payload_sha256):
            return False
        self._record(ArtifactVerified, actor, **_bounded_facts(artifact))
        self.record_audit(actor, version, "install", policy_version, audit)
        self._record(Installed, actor, version=version, artifact_sha256=artifact.artifact_sha256,
                     payload_sha256=artifact.payload_sha256, blob=blob)
        current = self.versions.get(self.current) if self.current else None
        keep_current = not audit.passed and current is not None and current.installed and current.status == ACTIVE
        if self.current != version and not keep_current:
            self._record(CurrentChanged, actor, from_version=self.current, to_version=version, cause="install",
                         reason=None)
        if audit.passed:
            self._record(Activated, actor, version=version)
        else:
            self._record(Quarantined, actor, version=version, reason_code=AUDIT_FAILED,
                         reason=_reason("; ".join(audit.quarantine_reasons) or "audit failed"), details={})
        return True

    def record_audit(self, actor: Actor, version: str, trigger: str, policy_version: int,
                     report: AuditReport) -> None:
        """Record an audit report (the journal keeps its result, checks and quarantine reasons)."""
        if trigger not in AUDIT_TRIGGERS:
            raise ValueError(f"unknown audit trigger {trigger!r}")
        self._record(
            Audited,
            actor,
            version=version,
            trigger=trigger,
            policy_version=policy_version,
            passed=report.passed,
            should_quarantine=report.should_quarantine,
            # as the journal stores them, every message and details object bounded
            checks=[_bounded_check(c) for c in msgspec.json.decode(msgspec.json.encode(report.checks))],
            quarantine_reasons=[event_text(r) for r in report.quarantine_reasons],
        )

    def manual_audit(self, actor: Actor, version: str, report: AuditReport, policy_version: int, *,
                     quarantine: bool = True) -> bool:
        """Record an operator's audit (trigger ``manual``); a failure quarantines the version
        (``audit_failed``) unless ``quarantine`` is false. Returns whether it was quarantined now."""
        self.installed(version)
        self.record_audit(actor, version, "manual", policy_version, report)
        if report.passed or not quarantine:
            return False
        return self.quarantine(actor, version, AUDIT_FAILED, "; ".join(report.quarantine_reasons),
                               {"policy_version": policy_version})

    def reaudit(self, actor: Actor, version: str, trust_decision: str, report: AuditReport,
                policy_version: int) -> str | None:
        """Record a periodic re-audit, only what changed: the audit when its result, failing checks or
        policy version differ from the last recorded one, and a quarantine when it failed and the
        version is not quarantined yet (``policy_change`` when the policy moved since its last passing
        audit, else ``audit_failed``), except a version active by an operator's override whose
        audit fails exactly as the one the override accepted. A passing audit never re-activates a
        version. Returns the reason code of a quarantine recorded now."""
        v = self.installed(version)
        trigger = v.audit_trigger(trust_decision, policy_version)
        unchanged = v.audit_unchanged(report, policy_version)
        if not unchanged:
            self.record_audit(actor, version, trigger, policy_version, report)
        if report.passed or v.status == QUARANTINED:
            return None
        if unchanged and v.status == ACTIVE and v.status_reason_code == "override":
            return None  # the operator's override accepted exactly this failure (same checks, same policy)
        code = POLICY_CHANGE if trigger == "policy_change" else AUDIT_FAILED
        self.quarantine(actor, version, code, "; ".join(report.quarantine_reasons),
                        {"policy_version": policy_version, "trigger": trigger})
        return code

    def quarantine_unverified(self, actor: Actor, version: str, error: SkillLedgerError) -> bool:
        """Quarantine a version whose stored artifact failed verification, with the reason code of
        the failure (:func:`quarantine_code_for`); ``False`` if it already is quarantined."""
        return self.quarantine(actor, version, quarantine_code_for(error), error.message, error.details)

    def quarantine_signed_by(self, actor: Actor, publisher: str, key_hex: str, key_id: str,
                             reason: str | None) -> list[str]:
        """After a key's revocation: quarantine (``trust_revoked``) every installed version it signed.
        Returns the versions quarantined now."""
        why = f"publisher {publisher} key {key_id} was revoked" + (f": {reason}" if reason else "")
        return [v.version for v in self.installed_versions()
                if v.key_hex == key_hex and v.publisher == publisher
                and self.quarantine(actor, v.version, TRUST_REVOKED, why, {"publisher": publisher, "key_id": key_id})]

    def quarantine(self, actor: Actor, version: str, reason_code: str, reason: str,
                   details: dict[str, Any] | None = None) -> bool:
        """Quarantine an installed version; ``False`` (nothing recorded) if it already is."""
        v = self.installed(version)
        if v.status == QUARANTINED:
            return False
        self._record(Quarantined, actor, version=version, reason_code=reason_code, reason=_reason(reason),
                     details=event_details(jsonable(details or {})))
        return True

    def disable(self, actor: Actor, version: str, reason: str) -> bool:
        v = self.installed(version)
        if v.status == DISABLED:
            return False
        if v.status == QUARANTINED:
            raise InvalidTransition(
                f"{self.skill_id} {version} is quarantined; enable it first or leave it quarantined",
                {"skill_id": self.skill_id, "version": version, "status": v.status},
            )
        self._record(Disabled, actor, version=version, reason=_reason(reason))
        return True

    def record_verified(self, actor: Actor, version: str, payload_sha256: str, trust_decision: str) -> None:
        self.installed(version)
        self._record(Verified, actor, version=version, payload_sha256=payload_sha256, trust_decision=trust_decision)

    def enable(self, actor: Actor, version: str, reason: str, *, trust_decision: str, audit: AuditReport,
               policy_version: int, override: bool = False) -> bool:
        """Re-activate a version after a fresh verification of its stored artifact (whose payload the
        caller found equal to the recorded one, under ``trust_decision``) and a fresh audit.

        Records ``skill.verified`` and the audit (trigger ``enable``), then ``skill.enabled``. An
        audit failure refuses with ``AuditFailed`` unless ``override`` (then recorded on the event);
        the verification and the failed audit are recorded before it is raised, so the caller saves
        them. ``False`` (nothing recorded) when the version is active already.
        """
        v = self.installed(version)
        if v.status == ACTIVE:
            return False
        self.record_verified(actor, version, v.payload_sha256, trust_decision)
        self.record_audit(actor, version, "enable", policy_version, audit)
        if not audit.passed and not override:
            raise AuditFailed(
                f"{self.skill_id} {version} failed its audit; pass --override to enable it anyway",
                {"skill_id": self.skill_id, "version": version, "failed_checks": audit.failed_checks(),
                 "quarantine_reasons": list(audit.quarantine_reasons)},
            )
        self._record(Enabled, actor, version=version, override=override and not audit.passed,
                     audit_passed=audit.passed, reason=_reason(reason))
        return True

    def remove(self, actor: Actor, version: str, reason: str | None) -> SkillVersion:
        """Remove a version; if it was current, the highest remaining version becomes current."""
        v = self.installed(version)
        self._record(Removed, actor, version=version, reason=_reason(reason))
        if self.current == version:
            remaining = self.installed_versions()
            successor = remaining[-1].version if remaining else None
            self._record(CurrentChanged, actor, from_version=version, to_version=successor, cause="remove",
                         reason=_reason(reason))
        return v

    def rollback(self, actor: Actor, to_version: str | None, reason: str | None) -> str:
        """Make an installed other version current (default: the previous current still installed).

        A rollback is what an operator reaches for when the current version misbehaves, so it must
        land on a version that can run: a target that is not ``active`` (disabled or quarantined) is
        refused (``invalid_transition``) with the way out, ``skills enable`` (which re-verifies and
        re-audits) or another ``--to``, rather than making current a version every run refuses."""
        if self.current is None:
            raise NotInstalled(f"{self.skill_id} has no current version", {"skill_id": self.skill_id})
        target = to_version if to_version is not None else self._rollback_target()
        v = self.installed(target)
        if target == self.current:
            raise UsageError(f"{self.skill_id} {target} is already current", {"skill_id": self.skill_id, "version": target})
        if v.status != ACTIVE:
            runnable = [x.version for x in self.installed_versions()
                        if x.status == ACTIVE and x.version != self.current]
            others = f"; active versions to roll back to: {', '.join(runnable)}" if runnable else ""
            raise InvalidTransition(
                f"{self.skill_id} {target} is {v.status} and could not run as the current version; enable it first "
                f"(skills enable {self.skill_id} --version {target} --reason TEXT re-verifies and re-audits it), "
                f"then roll back{others}",
                {"skill_id": self.skill_id, "version": target, "status": v.status, "active_versions": runnable},
            )
        self._record(CurrentChanged, actor, from_version=self.current, to_version=target, cause="rollback",
                     reason=_reason(reason))
        return target

    def _rollback_target(self) -> str:
        for candidate in reversed(self.previous_currents):
            if candidate != self.current and self.is_installed(candidate):
                return candidate
        current_key = self.versions[self.current].sort_key if self.current in self.versions else (0, 0, 0)
        lower = [v for v in self.installed_versions() if v.sort_key < current_key]
        if not lower:
            raise NotInstalled(f"{self.skill_id} has no earlier installed version to roll back to",
                               {"skill_id": self.skill_id})
        return lower[-1].version

    def deny_execution(self, actor: Actor, version: str, tool_id: str, reason_code: str) -> None:
        self._record(ExecutionDenied, actor, version=version, tool_id=event_text(tool_id),
                     reason_code=reason_code)


def _bounded_facts(artifact: ArtifactFacts) -> dict[str, Any]:
    """The members of ``skill.artifact_verified``: the manifest is bounded by the manifest limits
    already; the source and the warnings' messages are bounded here."""
    facts = msgspec.structs.asdict(artifact)
    facts["source"] = event_text(artifact.source)
    facts["manifest_warnings"] = [_bounded_check(w) for w in artifact.manifest_warnings]
    return facts
