"""What the journal records about a skill: the state of each version (:class:`SkillVersion`)
and the events of a skill's stream (``skill:<skill_id>``), each with the pure mutation it
applies on replay. The decisions that record them are the ``Skill`` aggregate's
(``domain/skill.py``); the kinds and members are ``events.md``'s.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import JournalTampered
from .events import LedgerEvent
from .grammars import parse_semver_lenient

if TYPE_CHECKING:
    from .audit import AuditReport
    from .skill import Skill

ACTIVE, QUARANTINED, DISABLED = "active", "quarantined", "disabled"

# reason codes of skill.quarantined (events.md)
AUDIT_FAILED = "audit_failed"
ARTIFACT_TAMPERED = "artifact_tampered"
ARTIFACT_MISSING = "artifact_missing"
TRUST_REVOKED = "trust_revoked"
POLICY_CHANGE = "policy_change"
OPERATOR = "operator"

AUDIT_TRIGGERS = ("install", "manual", "enable", "periodic", "policy_change", "trust_change")


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
        """A record for the audit trail (and the projections); no decision reads it."""


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
