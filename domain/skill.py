"""The ``Skill`` aggregate: one stream per skill id (``skill:<skill_id>``) holding every
version's verification, audits, install, status changes, the current pointer, removals
and execution denials.

Status of an installed version: ``active`` (runnable), ``quarantined`` (a failed audit,
a tampered or missing artifact, a revoked key, or an operator) or ``disabled`` (an
operator). Only ``enable`` leaves ``quarantined``; nothing re-activates a version
silently.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from .errors import (
    ArtifactMissing,
    AuditFailed,
    InvalidTransition,
    JournalTampered,
    NotInstalled,
    SkillLedgerError,
    TrustError,
    UsageError,
    VersionConflict,
)
from .events import Actor, LedgerAggregate, LedgerEvent
from .grammars import parse_semver_lenient

if TYPE_CHECKING:  # the audit module is heavy; the aggregate only reads a report's members
    from .audit import AuditReport

ACTIVE, QUARANTINED, DISABLED = "active", "quarantined", "disabled"

# reason codes of skill.quarantined (events.md)
AUDIT_FAILED = "audit_failed"
ARTIFACT_TAMPERED = "artifact_tampered"
ARTIFACT_MISSING = "artifact_missing"
TRUST_REVOKED = "trust_revoked"
POLICY_CHANGE = "policy_change"
OPERATOR = "operator"

AUDIT_TRIGGERS = ("install", "manual", "enable", "periodic", "policy_change", "trust_change")


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


class SkillVersion:
    """What the journal says about one version of a skill."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.publisher = ""
        self.payload_sha256 = ""
        self.artifact_sha256 = ""
        self.key_id = ""
        self.key_hex = ""
        self.trust_decision = ""
        self.manifest: dict[str, Any] = {}
        self.manifest_warnings: list[dict[str, Any]] = []
        self.source = ""
        self.installed = False
        self.blob: str | None = None
        self.installed_at: dt.datetime | None = None
        self.status: str | None = None
        self.status_reason_code: str | None = None
        self.status_reason: str | None = None
        self.last_audit: dict[str, Any] | None = None
        self.last_passing_audit_policy: int | None = None

    @property
    def sort_key(self) -> tuple[int, int, int]:
        return parse_semver_lenient(self.version) or (0, 0, 0)

    def audit_trigger(self, trust_decision: str, policy_version: int) -> str:
        """Why a periodic re-audit runs, as its trigger: the policy changed since the last passing
        audit, the trust state changed, or nothing (``periodic``)."""
        if self.last_passing_audit_policy is not None and self.last_passing_audit_policy != policy_version:
            return "policy_change"
        if self.trust_decision and trust_decision != self.trust_decision and trust_decision != "tofu_pinned":
            return "trust_change"
        return "periodic"

    def audit_unchanged(self, report: AuditReport, policy_version: int) -> bool:
        """Whether ``report`` says what the last recorded audit said (result, failing checks, policy version)."""
        last = self.last_audit
        return (last is not None and bool(last["passed"]) == report.passed
                and last.get("failed_checks", []) == sorted(set(report.failed_checks()))
                and last["policy_version"] == policy_version)


# --- events ------------------------------------------------------------------------------


class ArtifactVerified(LedgerEvent):
    KIND: ClassVar[str] = "skill.artifact_verified"
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

    def apply(self, skill: "Skill") -> None:
        v = skill.versions.get(self.version)
        if v is None or not v.installed:
            v = SkillVersion(self.version)
            skill.versions[self.version] = v
        v.publisher = self.publisher
        v.payload_sha256 = self.payload_sha256
        v.artifact_sha256 = self.artifact_sha256
        v.key_id = self.key_id
        v.key_hex = self.key_hex
        v.trust_decision = self.trust_decision
        v.manifest = self.manifest
        v.manifest_warnings = self.manifest_warnings
        v.source = self.source


class Audited(LedgerEvent):
    KIND: ClassVar[str] = "skill.audited"
    version: str
    trigger: str
    policy_version: int
    passed: bool
    should_quarantine: bool
    checks: list[dict[str, Any]]
    quarantine_reasons: list[str]

    def apply(self, skill: "Skill") -> None:
        v = _known_version(skill, self)
        v.last_audit = {
            "at": self.timestamp,
            "trigger": self.trigger,
            "policy_version": self.policy_version,
            "passed": self.passed,
            "failed_checks": sorted({c["check_id"] for c in self.checks if c.get("status") == "fail"}),
        }
        if self.passed:
            v.last_passing_audit_policy = self.policy_version


class Installed(LedgerEvent):
    """Completes the version that the ``skill.artifact_verified`` just before it (same command, same
    transaction: :meth:`Skill.install`) created: that event carries the publisher, key, manifest and
    trust decision, this one only marks the artifact installed. Applied without it (a journal this
    engine did not write), it refuses instead of leaving a version without those facts."""

    KIND: ClassVar[str] = "skill.installed"
    version: str
    artifact_sha256: str
    payload_sha256: str
    blob: str

    def apply(self, skill: "Skill") -> None:
        v = _known_version(skill, self)
        if v.installed or (v.artifact_sha256, v.payload_sha256) != (self.artifact_sha256, self.payload_sha256):
            raise JournalTampered(
                f"{self.stream}: skill.installed of {self.version} does not follow the skill.artifact_verified "
                "of the same artifact", {"stream": self.stream, "version": self.version})
        v.installed = True
        v.blob = self.blob
        v.installed_at = self.timestamp
        v.status = None
        v.status_reason_code = v.status_reason = None


class CurrentChanged(LedgerEvent):
    KIND: ClassVar[str] = "skill.current_changed"
    from_version: str | None
    to_version: str | None
    cause: str
    reason: str | None

    def apply(self, skill: "Skill") -> None:
        if self.from_version is not None:
            skill.previous_currents.append(self.from_version)
        skill.current = self.to_version


class Activated(LedgerEvent):
    KIND: ClassVar[str] = "skill.activated"
    version: str

    def apply(self, skill: "Skill") -> None:
        _set_status(skill.versions[self.version], ACTIVE, None, None)


class Quarantined(LedgerEvent):
    KIND: ClassVar[str] = "skill.quarantined"
    version: str
    reason_code: str
    reason: str
    details: dict[str, Any]

    def apply(self, skill: "Skill") -> None:
        _set_status(skill.versions[self.version], QUARANTINED, self.reason_code, self.reason)


class Enabled(LedgerEvent):
    KIND: ClassVar[str] = "skill.enabled"
    version: str
    override: bool
    audit_passed: bool
    reason: str

    def apply(self, skill: "Skill") -> None:
        _set_status(skill.versions[self.version], ACTIVE, "override" if self.override else None, self.reason)


class Disabled(LedgerEvent):
    KIND: ClassVar[str] = "skill.disabled"
    version: str
    reason: str

    def apply(self, skill: "Skill") -> None:
        _set_status(skill.versions[self.version], DISABLED, OPERATOR, self.reason)


class Verified(LedgerEvent):
    KIND: ClassVar[str] = "skill.verified"
    version: str
    payload_sha256: str
    trust_decision: str

    def apply(self, skill: "Skill") -> None:
        skill.versions[self.version].trust_decision = self.trust_decision


class Removed(LedgerEvent):
    KIND: ClassVar[str] = "skill.removed"
    version: str
    reason: str | None

    def apply(self, skill: "Skill") -> None:
        v = skill.versions[self.version]
        v.installed = False
        v.status = None
        v.status_reason_code = v.status_reason = None
        skill.previous_currents = [p for p in skill.previous_currents if p != self.version]


class ExecutionDenied(LedgerEvent):
    KIND: ClassVar[str] = "skill.execution_denied"
    version: str
    tool_id: str
    reason_code: str

    def apply(self, skill: "Skill") -> None:
        skill.denials += 1


def _known_version(skill: "Skill", event: LedgerEvent) -> SkillVersion:
    """The version an event is about; it must have been verified (``skill.artifact_verified``) first."""
    version: str = event.version  # type: ignore[attr-defined]
    v = skill.versions.get(version)
    if v is None:
        raise JournalTampered(f"{event.stream}: {event.KIND} of {version} before its skill.artifact_verified",
                              {"stream": event.stream, "version": version})
    return v


def _set_status(v: SkillVersion, status: str, code: str | None, reason: str | None) -> None:
    v.status = status
    v.status_reason_code = code
    v.status_reason = reason


# --- the aggregate -----------------------------------------------------------------------


class Skill(LedgerAggregate):
    PREFIX: ClassVar[str] = "skill"

    def __init__(self, id: Any, stream: str) -> None:
        super().__init__(id, stream)
        self.versions: dict[str, SkillVersion] = {}
        self.current: str | None = None
        self.previous_currents: list[str] = []
        self.denials = 0

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
        this very payload is installed already (nothing to do), ``VersionConflict`` when another is."""
        existing = self.versions.get(version)
        if existing is None or not existing.installed:
            return True
        if existing.payload_sha256 == payload_sha256:
            return False
        raise VersionConflict(
            f"{self.skill_id} {version} is already installed with a different payload",
            {"skill_id": self.skill_id, "version": version, "installed_payload_sha256": existing.payload_sha256,
             "payload_sha256": payload_sha256},
        )

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
        self._record(ArtifactVerified, actor, **msgspec.structs.asdict(artifact))
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
                         reason="; ".join(audit.quarantine_reasons) or "audit failed", details={})
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
            checks=msgspec.to_builtins(report.checks),
            quarantine_reasons=list(report.quarantine_reasons),
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
        audit, else ``audit_failed``). A passing audit never re-activates a version. Returns the
        reason code of a quarantine recorded now."""
        v = self.installed(version)
        trigger = v.audit_trigger(trust_decision, policy_version)
        if not v.audit_unchanged(report, policy_version):
            self.record_audit(actor, version, trigger, policy_version, report)
        if report.passed or v.status == QUARANTINED:
            return None
        code = POLICY_CHANGE if trigger == "policy_change" else AUDIT_FAILED
        self.quarantine(actor, version, code, "; ".join(report.quarantine_reasons),
                        {"policy_version": policy_version, "trigger": trigger})
        return code

    def quarantine_unverified(self, actor: Actor, version: str, error: SkillLedgerError) -> bool:
        """Quarantine a version whose stored artifact failed verification, with the reason code of
        the failure (:func:`quarantine_code_for`); ``False`` if it already is quarantined."""
        return self.quarantine(actor, version, quarantine_code_for(error), error.message, jsonable(error.details))

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
        self._record(Quarantined, actor, version=version, reason_code=reason_code, reason=reason,
                     details=jsonable(details or {}))
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
        self._record(Disabled, actor, version=version, reason=reason)
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
                     audit_passed=audit.passed, reason=reason)
        return True

    def remove(self, actor: Actor, version: str, reason: str | None) -> SkillVersion:
        """Remove a version; if it was current, the highest remaining version becomes current."""
        v = self.installed(version)
        self._record(Removed, actor, version=version, reason=reason)
        if self.current == version:
            remaining = self.installed_versions()
            successor = remaining[-1].version if remaining else None
            self._record(CurrentChanged, actor, from_version=version, to_version=successor, cause="remove", reason=reason)
        return v

    def rollback(self, actor: Actor, to_version: str | None, reason: str | None) -> str:
        """Make an installed other version current (default: the previous current still installed)."""
        if self.current is None:
            raise NotInstalled(f"{self.skill_id} has no current version", {"skill_id": self.skill_id})
        target = to_version if to_version is not None else self._rollback_target()
        self.installed(target)
        if target == self.current:
            raise UsageError(f"{self.skill_id} {target} is already current", {"skill_id": self.skill_id, "version": target})
        self._record(CurrentChanged, actor, from_version=self.current, to_version=target, cause="rollback", reason=reason)
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
        self._record(ExecutionDenied, actor, version=version, tool_id=tool_id, reason_code=reason_code)
