"""The compliance report document, ``report_version`` 1 (``docs/compliance-report.md``).

Every struct here is what the JSON form holds, field for field; the shipped JSON Schema
(``schema/compliance-report-v1.json``) is generated from these structs (``schema.py``) and
the tests check the two never drift apart. Members are plain JSON: times are the journal's
``recorded_at`` strings (ISO 8601, UTC), positions are journal positions, hashes are the
chain hashes of the exported event shape (``events.md``).

A claim that rests on the journal carries ``evidence``: the (position, hash) of each event it
rests on. Every event is shown once: the events inside the window are the entries of the
timelines, ``trust.events``, ``rejections`` and ``other_events`` (each with its position, hash,
time, stream and actor), and ``cited_events`` (the appendix) lists every other cited event, so a
citation always resolves to an entry or an appendix row. A citation could later also carry an
inclusion proof against the covering checkpoint (``skills journal prove``): see the "Inclusion
proofs" section of ``docs/compliance-report.md``; ``Evidence`` is where it would go.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

REPORT_VERSION = 1

Severity = Literal["high", "medium", "low"]
SEVERITIES: tuple[str, ...] = ("high", "medium", "low")

FindingKind = Literal[
    "journal_verification_failed",
    "enable_override_after_failed_audit",
    "artifact_tampered_or_missing",
    "revoked_key_active",
    "quarantine_lifted",
    "policy_loosened",
    "stale_audit",
    "tofu_only_publisher",
    "checkpoint_missing",
    "registry_refused",
    "artifact_rejected",
    "execution_denied",
]

# kind -> (severity, id tag). The order of this table is the order findings of one severity
# are listed in; the tag is the middle part of a finding id (``F-<TAG>-<position>``).
FINDING_RULES: dict[str, tuple[str, str]] = {
    "journal_verification_failed": ("high", "JOURNAL"),
    "enable_override_after_failed_audit": ("high", "OVERRIDE"),
    "artifact_tampered_or_missing": ("high", "TAMPER"),
    "revoked_key_active": ("high", "REVOKED"),
    "quarantine_lifted": ("medium", "LIFTED"),
    "policy_loosened": ("medium", "POLICY"),
    "stale_audit": ("medium", "STALE"),
    "tofu_only_publisher": ("medium", "TOFU"),
    "checkpoint_missing": ("medium", "CHECKPOINT"),
    "registry_refused": ("medium", "REGISTRY"),
    "artifact_rejected": ("low", "REJECTED"),
    "execution_denied": ("low", "DENIED"),
}
FINDING_KINDS: tuple[str, ...] = tuple(FINDING_RULES)

Position = Annotated[int, msgspec.Meta(ge=1, description="a journal position (events.md)")]
FindingId = Annotated[str, msgspec.Meta(pattern=r"^F-[A-Z]+-[0-9]{6,}(-[0-9]+)?$")]

Verdict = Literal["journal_verification_failed", "journal_not_verified", "findings", "clean"]
Direction = Literal["looser", "tighter", "unknown"]


class _Doc(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """Base of the report's structs: immutable, strict when read back, and not tracked by the
    garbage collector (a report is a tree, never a cycle; a long timeline of tracked objects
    made every collection walk all of it)."""


class Actor(_Doc):
    """Who appended an event (``events.md``): the declared principal, the host and command, and
    the operating-system account the process ran as (null on events recorded before it was)."""

    principal: str
    host: str
    command: str
    os_user: str | None = None
    os_uid: int | None = None


class Evidence(_Doc):
    """One event a claim rests on; check it with ``skills journal --since POSITION-1 --until POSITION``.

    (Hook for inclusion proofs: a later ``report_version`` may add an optional ``proof`` member
    here, the RFC 9162 inclusion proof of the event in the covering checkpoint's tree.)"""

    position: Position
    hash: str


class CitedEvent(_Doc):
    """An event cited somewhere in the report and not shown as an entry (the appendix)."""

    position: Position
    hash: str
    kind: str
    recorded_at: str
    stream: str
    actor: Actor


# --- scope -----------------------------------------------------------------------------


class JournalHead(_Doc):
    """The last journal event the report read (position 0 and no hash: an empty journal)."""

    position: int
    hash: str | None


class Window(_Doc):
    """The events the timelines and findings cover: ``since_position < position <= until_position``."""

    since_position: int | None
    until_position: int
    since_requested: str | None
    until_requested: str | None
    first_position: int | None
    last_position: int | None
    first_recorded_at: str | None
    last_recorded_at: str | None
    end_time: str | None
    event_count: int


class Filters(_Doc):
    skills: list[str]
    publishers: list[str]
    max_audit_age_seconds: int | None


class PolicyVersion(_Doc):
    """An audit policy version in force at some time in the window (version 0: the defaults)."""

    version: int
    values: dict[str, Any]
    changed: list[str]
    position: int | None
    hash: str | None
    recorded_at: str | None
    actor: Actor | None
    reason: str | None


class Checkpoint(_Doc):
    """A ``journal.checkpoint`` event: a signed statement over the first ``event_count`` events."""

    position: int
    hash: str
    recorded_at: str
    actor: Actor
    covers_position: int
    event_count: int
    root_hash: str
    key_id: str


class CheckpointCoverage(_Doc):
    covering: Checkpoint | None
    statement: str


class JournalVerification(_Doc):
    """``journal verify`` as the caller ran it just before the report (``ok`` null: not run)."""

    ok: bool | None
    first_bad_position: int | None = None
    message: str = ""


class Scope(_Doc):
    journal_head: JournalHead
    window: Window
    filters: Filters
    generated_at: str
    generated_by: str
    project_version: str
    policy_versions: list[PolicyVersion]
    checkpoint: CheckpointCoverage
    journal_verification: JournalVerification


# --- posture at the end of the window -----------------------------------------------------


class LastAudit(_Doc):
    at: str
    trigger: str
    passed: bool
    policy_version: int
    failed_checks: list[str]
    position: int
    hash: str


class VersionPosture(_Doc):
    """One version that was installed at some point up to the window end, as it stood then."""

    skill_id: str
    version: str
    publisher: str
    name: str | None
    display_name: str | None
    description: str | None
    installed: bool
    status: str | None
    current: bool
    eligible: bool
    eligibility_reasons: list[str]
    trust_decision: str
    key_id: str
    key_revoked: bool
    payload_sha256: str
    artifact_sha256: str
    installed_at: str | None
    last_audit: LastAudit | None
    status_reason_code: str | None
    status_reason: str | None
    evidence: list[Evidence]


# --- timelines ---------------------------------------------------------------------------


class TimelineEntry(_Doc):
    """One event inside the window. ``details`` holds the kind's facts (audit trigger and
    result, override flag, from/to versions, tool id, ...); an unknown kind has none."""

    position: Position
    hash: str
    recorded_at: str
    stream: str
    actor: Actor
    kind: str
    version: str | None
    reason: str | None
    reason_code: str | None
    summary: str
    details: dict[str, Any]


class SkillTimeline(_Doc):
    skill_id: str
    entries: list[TimelineEntry]


# --- trust ---------------------------------------------------------------------------------


class TrustAct(_Doc):
    """An allowlisting, pin or revocation of a key: who, when, why, where in the journal."""

    position: int
    hash: str
    recorded_at: str
    actor: Actor
    reason: str | None
    first_skill_id: str | None = None
    first_version: str | None = None


class KeyTrust(_Doc):
    """A publisher key as it stood at the window end (``kind``: allowlisted or tofu)."""

    publisher: str
    key_id: str
    key_hex: str
    kind: str
    state: str
    allowlisted: TrustAct | None
    pinned: TrustAct | None
    revoked: TrustAct | None


class RevocationQuarantine(_Doc):
    skill_id: str
    version: str
    position: int
    hash: str
    recorded_at: str
    delay_seconds: float | None


class UnenforcedVersion(_Doc):
    skill_id: str
    version: str
    status: str | None


class Revocation(_Doc):
    """A revocation inside the window, the versions it quarantined (by the window end) and the
    installed versions signed by the key that were not quarantined by then."""

    publisher: str
    key_id: str
    key_hex: str
    position: int
    hash: str
    recorded_at: str
    actor: Actor
    reason: str | None
    quarantined: list[RevocationQuarantine]
    not_quarantined: list[UnenforcedVersion]


class Trust(_Doc):
    keys: list[KeyTrust]
    revocations: list[Revocation]
    events: list[TimelineEntry]


class Rejection(_Doc):
    """An ``artifact.rejected`` event inside the window (the intake streams)."""

    position: Position
    hash: str
    recorded_at: str
    actor: Actor
    artifact_sha256: str
    source: str
    error_code: str
    message: str
    skill_id: str | None
    version: str | None
    publisher: str | None


# --- findings and summary ------------------------------------------------------------------


class PolicyChange(_Doc):
    key: str
    old: Any
    new: Any
    direction: Direction


class Finding(_Doc):
    """An exception a reviewer must look at. ``id`` is derived from the evidence (the tag of the
    kind and the position of its key event), so the same event gives the same id in any report."""

    id: FindingId
    kind: FindingKind
    severity: Severity
    title: str
    detail: str
    skill_id: str | None
    version: str | None
    publisher: str | None
    at: str | None
    actor: str | None
    count: int
    changes: list[PolicyChange]
    evidence: list[Evidence]


class SeverityCounts(_Doc):
    high: int
    medium: int
    low: int


class Summary(_Doc):
    verdict: Verdict
    findings: SeverityCounts
    skills: int
    versions: int
    active_versions: int
    quarantined_versions: int
    disabled_versions: int
    events_in_window: int
    timeline_entries: int


class Report(_Doc):
    report_version: Literal[1]
    summary: Summary
    scope: Scope
    findings: list[Finding]
    posture: list[VersionPosture]
    timelines: list[SkillTimeline]
    trust: Trust
    rejections: list[Rejection]
    other_events: list[TimelineEntry]
    cited_events: list[CitedEvent]
