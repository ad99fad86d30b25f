"""What the use cases return: typed results, turned into JSON only by the CLI's renderer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:  # the audit module is heavy; a quarantine or a rollback never needs it
    from skill_ledger.domain.audit import AuditReport


class AuditSummary(msgspec.Struct, frozen=True):
    passed: bool
    failed_checks: list[str]
    warning_checks: list[str]

    @classmethod
    def of(cls, report: AuditReport) -> AuditSummary:
        return cls(report.passed, report.failed_checks(), report.warning_checks())


class AuditOutcome(msgspec.Struct, frozen=True):
    """An audit report and the policy version it was made under."""

    report: AuditReport
    policy_version: int


class InstallResult(msgspec.Struct, frozen=True):
    skill_id: str
    version: str
    publisher: str
    trust_decision: str
    status: str
    current: bool
    payload_sha256: str
    artifact_sha256: str
    key_id: str
    audit: AuditSummary | None
    positions: list[int]
    already_installed: bool = False


class ChangeResult(msgspec.Struct, frozen=True):
    """Result of a lifecycle command on one version."""

    skill_id: str
    version: str
    status: str | None
    current: str | None
    changed: bool
    positions: list[int]
    details: dict[str, Any] = {}


class TrustChange(msgspec.Struct, frozen=True):
    publisher: str
    key_hex: str
    key_id: str
    changed: bool
    positions: list[int]
    quarantined: list[dict[str, str]] = []


class TrustImport(msgspec.Struct, frozen=True):
    allowlisted: list[dict[str, str]]
    pinned: list[dict[str, str]]
    conflicts: list[dict[str, str]]
    positions: list[int]


class VerifyResult(msgspec.Struct, frozen=True):
    skill_id: str
    version: str
    ok: bool
    reason_code: str | None
    message: str | None
    trust_decision: str | None
    status: str | None
    positions: list[int]


class AuditRun(msgspec.Struct, frozen=True):
    report: AuditReport
    policy_version: int
    quarantined: bool
    positions: list[int]
