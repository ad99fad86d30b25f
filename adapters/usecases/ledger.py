"""The use cases: every command that changes state is a method here.

Each method reads what it needs from the journal (aggregates, never projections),
asks the domain to decide, stores artifacts, and saves the changed aggregates. A
decision that touches one stream is one transaction; on a concurrency conflict the
method re-reads and re-decides (optimistic concurrency), a bounded number of times.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, OperationalError

from skill_ledger.adapters.journal.sqlite import LedgerApplication, iter_rows, open_journal
from skill_ledger.adapters.settings import Settings
from skill_ledger.adapters.storage.blobs import BlobStore
from skill_ledger.adapters.storage.files import ensure_private_dir, read_bounded
from skill_ledger.domain.artifact import InspectResult, inspect_artifact, sha256_hex
from skill_ledger.domain.audit_policy import POLICY_KEY, AuditPolicy
from skill_ledger.domain.errors import (
    ArtifactError,
    ArtifactMissing,
    ArtifactTampered,
    AuditFailed,
    ConcurrencyConflict,
    KeyRevoked,
    NotInstalled,
    SkillLedgerError,
    TrustError,
    UsageError,
    VersionConflict,
)
from skill_ledger.domain.events import Actor, LedgerAggregate, topics_for_kinds
from skill_ledger.domain.grammars import skill_id as check_skill_id
from skill_ledger.domain.intake import Intake
from skill_ledger.domain.policy import PolicyValues, apply_settings, effective_feed_path, policy_to_dict
from skill_ledger.domain.publisher import Publisher
from skill_ledger.domain.signing import key_id as compute_key_id
from skill_ledger.domain.skill import (
    ACTIVE,
    ARTIFACT_MISSING,
    ARTIFACT_TAMPERED,
    OPERATOR,
    QUARANTINED,
    TRUST_REVOKED,
    Skill,
    SkillVersion,
)
from skill_ledger.domain.skill import AUDIT_FAILED as AUDIT_FAILED_CODE
from skill_ledger.domain.trust import TrustDecision, TrustStore, add_trusted_key, evaluate_trust

TAgg = TypeVar("TAgg", bound=LedgerAggregate)
T = TypeVar("T")

MAX_ATTEMPTS = 25


# --- results --------------------------------------------------------------------------


class AuditSummary(msgspec.Struct, frozen=True):
    passed: bool
    failed_checks: list[str]
    warning_checks: list[str]


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
    report: dict[str, Any]
    policy_version: int
    quarantined: bool
    positions: list[int]


class AuditOutcome(msgspec.Struct, frozen=True):
    report: dict[str, Any]
    policy_version: int
    trust_decision: str


# --- the ledger -----------------------------------------------------------------------


class Ledger:
    """The application service. One instance per command (or per long-running loop)."""

    def __init__(self, settings: Settings, *, app: LedgerApplication | None = None) -> None:
        self.settings = settings
        if settings.journal_is_sqlite:
            ensure_private_dir(settings.home)
            settings.journal_path.parent.mkdir(parents=True, exist_ok=True)
        self.app = app or open_journal(settings.journal_url)
        self.blobs = BlobStore(settings.home / "blobs")

    def close(self) -> None:
        self.app.close()

    @property
    def actor(self) -> Actor:
        s = self.settings
        return Actor(s.actor, s.host, s.command)

    # --- plumbing -----------------------------------------------------------------------

    def load(self, cls: type[TAgg], key: str) -> TAgg:
        """The aggregate for ``<prefix>:<key>``, or a blank one whose first event opens the stream."""
        try:
            return self.app.repository.get(cls.id_for(key))  # type: ignore[return-value]
        except AggregateNotFoundError:
            return cls.start(key)

    def exists(self, cls: type[LedgerAggregate], key: str) -> bool:
        return bool(self.app.recorder.select_events(cls.id_for(key), limit=1))

    def save(self, *aggregates: LedgerAggregate) -> list[int]:
        pending = [a for a in aggregates if a.has_pending]
        if not pending:
            return []
        return [r.notification.id for r in self.app.save(*pending)]

    def retrying(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` (read, decide, save) until it commits without a conflict."""
        for n in range(MAX_ATTEMPTS):
            try:
                return attempt()
            except (IntegrityError, OperationalError) as e:
                if isinstance(e, OperationalError) and "locked" not in str(e).lower():
                    raise
                time.sleep(min(0.5, 0.005 * (2 ** min(n, 6))) * random.random())
        raise ConcurrencyConflict(f"gave up after {MAX_ATTEMPTS} concurrent-write conflicts; try again")

    def head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    # --- reading the write side ---------------------------------------------------------

    def skill(self, skill_id: str) -> Skill:
        try:
            check_skill_id(skill_id)
        except SkillLedgerError:
            raise UsageError(f"invalid skill id {skill_id!r}: skill ids use dot-separated [a-z0-9_-] segments",
                             {"skill_id": skill_id}) from None
        if not self.exists(Skill, skill_id):
            raise NotInstalled(f"skill {skill_id} is not installed", {"skill_id": skill_id})
        return self.load(Skill, skill_id)

    def trust_store_for(self, publisher: str) -> TrustStore:
        return self.load(Publisher, publisher).trust_store()

    def policy(self) -> AuditPolicy:
        return self.load(AuditPolicy, POLICY_KEY)

    def skill_ids(self) -> list[str]:
        """Every skill that ever had an install (from the journal, not a projection)."""
        topics = topics_for_kinds(["skill.installed"])
        ids: set[str] = set()
        for row in iter_rows(self.app, topics=topics):
            ids.add(msgspec.json.decode(row.state)["stream"].split(":", 1)[1])
        return sorted(ids)

    # --- intake -------------------------------------------------------------------------

    def read_source(self, path: str) -> bytes:
        from skill_ledger.adapters.packaging.package import read_artifact

        return read_artifact(path)

    def record_rejection(self, artifact_sha256: str, source: str, error: SkillLedgerError,
                         manifest: Any = None) -> list[int]:
        def attempt() -> list[int]:
            intake = self.load(Intake, artifact_sha256)
            intake.reject(
                self.actor,
                source=source,
                error_code=error.code,
                message=error.message,
                details=_jsonable(error.details),
                skill_id=getattr(manifest, "skill_id", None),
                version=getattr(manifest, "version", None),
                publisher=getattr(manifest, "publisher", None),
            )
            return self.save(intake)

        positions = self.retrying(attempt)
        error.details.setdefault("positions", positions)
        return positions

    # --- install ------------------------------------------------------------------------

    def install(self, path: str, *, allow_tofu: bool = False, trusted_publishers: Sequence[tuple[str, str]] = (),
                source: str | None = None, data: bytes | None = None) -> InstallResult:
        data = self.read_source(path) if data is None else data
        source = source or f"file:{Path(path).resolve()}"
        artifact_sha256 = sha256_hex(data)
        try:
            inspected = inspect_artifact(data)
        except ArtifactError as e:
            self.record_rejection(artifact_sha256, source, e)
            raise
        positions: list[int] = []
        for pub, key in trusted_publishers:
            positions += self.allow(pub, key, reason="--trusted-publisher on install").positions
        with self.blobs.lock():
            result = self.retrying(lambda: self._install_attempt(inspected, data, artifact_sha256, source, allow_tofu))
        return msgspec.structs.replace(result, positions=positions + result.positions)

    def _install_attempt(self, inspected: InspectResult, data: bytes, artifact_sha256: str, source: str,
                         allow_tofu: bool) -> InstallResult:
        m = inspected.manifest
        publisher = self.load(Publisher, m.publisher)
        try:
            evaluation = evaluate_trust(publisher.trust_store(), m.publisher, inspected.public_key_hex, allow_tofu)
        except TrustError as e:
            self.record_rejection(artifact_sha256, source, e, m)
            raise
        skill = self.load(Skill, m.skill_id)
        existing = skill.versions.get(m.version)
        if existing is not None and existing.installed:
            if existing.payload_sha256 == inspected.payload_sha256:
                if existing.artifact_sha256 == artifact_sha256 and not self.blobs.exists(artifact_sha256):
                    # The very bytes recorded at install: put the lost stored copy back. The
                    # version stays as it is (a quarantine for artifact_missing needs `enable`).
                    self.blobs.put(data, artifact_sha256)
                return self._install_result(skill, existing, None, [], already=True)
            conflict = VersionConflict(
                f"{m.skill_id} {m.version} is already installed with a different payload",
                {"skill_id": m.skill_id, "version": m.version, "installed_payload_sha256": existing.payload_sha256,
                 "payload_sha256": inspected.payload_sha256},
            )
            self.record_rejection(artifact_sha256, source, conflict, m)
            raise conflict
        outcome = self._audit(inspected, evaluation.decision.value)
        blob = self.blobs.put(data, artifact_sha256)
        if evaluation.decision is TrustDecision.TOFU_NEWLY_PINNED:
            publisher.pin(self.actor, inspected.public_key_hex, inspected.signature.key_id, m.skill_id, m.version,
                          inspected.payload_sha256)
        self._record_verification(skill, inspected, artifact_sha256, evaluation.decision.value, source)
        skill.record_audit(self.actor, m.version, "install", outcome.policy_version, outcome.report)
        reasons = outcome.report["quarantine_reasons"]
        skill.install(self.actor, m.version, artifact_sha256, inspected.payload_sha256, blob,
                      audit_passed=bool(outcome.report["passed"]),
                      quarantine_reason="; ".join(reasons) if reasons else "audit failed")
        positions = self.save(publisher, skill)
        return self._install_result(skill, skill.versions[m.version], outcome.report, positions)

    def _record_verification(self, skill: Skill, inspected: InspectResult, artifact_sha256: str, decision: str,
                             source: str) -> None:
        from skill_ledger.domain.manifest import manifest_to_json

        m = inspected.manifest
        skill.record_verification(
            self.actor,
            version=m.version,
            publisher=m.publisher,
            payload_sha256=inspected.payload_sha256,
            artifact_sha256=artifact_sha256,
            key_id=inspected.signature.key_id,
            key_hex=inspected.public_key_hex,
            trust_decision=decision,
            manifest=manifest_to_json(m),
            manifest_warnings=[msgspec.to_builtins(w) for w in inspected.manifest_warnings],
            source=source,
        )

    def _install_result(self, skill: Skill, v: SkillVersion, report: dict[str, Any] | None, positions: list[int],
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
            audit=_summary(report) if report is not None else None,
            positions=positions,
            already_installed=already,
        )

    # --- audit plumbing -----------------------------------------------------------------

    def _audit(self, inspected: InspectResult, trust_decision: str, policy: AuditPolicy | None = None) -> AuditOutcome:
        from skill_ledger.adapters.audit.inspector import inspect_modules
        from skill_ledger.domain.audit import audit_artifact
        from skill_ledger.domain.constants import AUDIT_VULN_FEED_HOOK_ENV

        policy = policy or self.policy()
        values = policy.values
        feed = self._load_feed(values)
        modules = inspect_modules(inspected.entries, max_bytes=values.max_module_bytes)
        report = audit_artifact(inspected, trust_decision, values, modules, feed,
                                os.environ.get(AUDIT_VULN_FEED_HOOK_ENV), time.time_ns() // 1_000_000)
        return AuditOutcome(report.to_dict(), policy.policy_version, trust_decision)

    def _load_feed(self, values: PolicyValues) -> Any:
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

    # --- verify a stored version --------------------------------------------------------

    def _verify_stored(self, skill: Skill, v: SkillVersion, store: TrustStore | None = None,
                       *, recorded_manifest: bool = False) -> tuple[InspectResult, TrustDecision]:
        """Digest, payload hash, signature and current trust of a stored version (raises on failure).
        ``store``: the publisher's trust state when the caller already holds it.
        ``recorded_manifest``: reuse the manifest parsed at install (bound by the payload hash)
        instead of parsing ``skill.toml`` again: the periodic re-audit's fast path."""
        data = self.blobs.read_verified(v.artifact_sha256, skill_id=skill.skill_id, version=v.version)
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
        if store is None:
            store = self.trust_store_for(inspected.manifest.publisher)
        decision = evaluate_trust(store, inspected.manifest.publisher, inspected.public_key_hex, False).decision
        return inspected, decision

    @staticmethod
    def _quarantine_code(error: SkillLedgerError) -> str:
        if isinstance(error, ArtifactMissing):
            return ARTIFACT_MISSING
        if isinstance(error, TrustError):
            return TRUST_REVOKED
        return ARTIFACT_TAMPERED

    # --- lifecycle ----------------------------------------------------------------------

    def _change(self, skill_id: str, version: str | None,
                decide: Callable[[Skill, str], bool], details: Callable[[Skill, str], dict[str, Any]] | None = None
                ) -> ChangeResult:
        def attempt() -> ChangeResult:
            skill = self.skill(skill_id)
            chosen = skill.installed(version).version
            changed = decide(skill, chosen)
            positions = self.save(skill)
            v = skill.versions[chosen]
            return ChangeResult(skill.skill_id, chosen, v.status if v.installed else "removed", skill.current,
                                changed, positions, details(skill, chosen) if details else {})

        return self.retrying(attempt)

    def quarantine(self, skill_id: str, version: str | None, reason: str) -> ChangeResult:
        return self._change(skill_id, version, lambda s, v: s.quarantine(self.actor, v, OPERATOR, reason))

    def disable(self, skill_id: str, version: str | None, reason: str) -> ChangeResult:
        return self._change(skill_id, version, lambda s, v: s.disable(self.actor, v, reason))

    def rollback(self, skill_id: str, to_version: str | None, reason: str | None = None) -> ChangeResult:
        def attempt() -> ChangeResult:
            skill = self.skill(skill_id)
            previous = skill.current
            target = skill.rollback(self.actor, to_version, reason)
            positions = self.save(skill)
            v = skill.versions[target]
            return ChangeResult(skill.skill_id, target, v.status, skill.current, True, positions,
                                {"from_version": previous})

        return self.retrying(attempt)

    def remove(self, skill_id: str, version: str | None, reason: str | None = None) -> ChangeResult:
        with self.blobs.lock():
            def attempt() -> ChangeResult:
                skill = self.skill(skill_id)
                v = skill.remove(self.actor, skill.installed(version).version, reason)
                positions = self.save(skill)
                return ChangeResult(skill.skill_id, v.version, "removed", skill.current, True, positions,
                                    {"artifact_sha256": v.artifact_sha256})

            result = self.retrying(attempt)
            # Released only after the removal is recorded; kept while any installed version uses it.
            skill = self.skill(skill_id)
            digest = result.details["artifact_sha256"]
            still_used = any(x.artifact_sha256 == digest for x in skill.installed_versions())
            deleted = False if still_used else self.blobs.delete(digest)
        return msgspec.structs.replace(result, details={**result.details, "artifact_deleted": deleted})

    def enable(self, skill_id: str, version: str | None, reason: str, override: bool = False) -> ChangeResult:
        """Re-verify (integrity, signature, trust) and re-audit, then re-activate.

        A verification failure refuses even with ``--override`` (and quarantines a tampered
        or missing artifact); an audit failure refuses unless ``--override``, which is
        recorded on the event.
        """
        def attempt() -> ChangeResult:
            skill = self.skill(skill_id)
            v = skill.installed(version)
            if v.status == ACTIVE:
                return ChangeResult(skill.skill_id, v.version, v.status, skill.current, False, [])
            try:
                inspected, decision = self._verify_stored(skill, v)
            except (ArtifactTampered, ArtifactMissing, ArtifactError, KeyRevoked) as e:
                if v.status != QUARANTINED:
                    skill.quarantine(self.actor, v.version, self._quarantine_code(e), e.message, _jsonable(e.details))
                e.details["positions"] = self.save(skill)
                raise
            skill.record_verified(self.actor, v.version, inspected.payload_sha256, decision.value)
            outcome = self._audit(inspected, decision.value)
            skill.record_audit(self.actor, v.version, "enable", outcome.policy_version, outcome.report)
            passed = bool(outcome.report["passed"])
            if not passed and not override:
                positions = self.save(skill)
                raise AuditFailed(
                    f"{skill.skill_id} {v.version} failed its audit; pass --override to enable it anyway",
                    {"skill_id": skill.skill_id, "version": v.version, "positions": positions,
                     "failed_checks": _summary(outcome.report).failed_checks,
                     "quarantine_reasons": outcome.report["quarantine_reasons"]},
                )
            skill.enable(self.actor, v.version, reason, override=override and not passed, audit_passed=passed)
            positions = self.save(skill)
            return ChangeResult(skill.skill_id, v.version, skill.versions[v.version].status, skill.current, True,
                                positions, {"audit": msgspec.to_builtins(_summary(outcome.report)),
                                            "override": override and not passed})

        return self.retrying(attempt)

    def deny_execution(self, skill_id: str, version: str, tool_id: str, reason_code: str) -> list[int]:
        """Record ``skill.execution_denied`` (the runner's gate refused to run a tool)."""
        def attempt() -> list[int]:
            skill = self.skill(skill_id)
            skill.deny_execution(self.actor, version, tool_id, reason_code)
            return self.save(skill)

        return self.retrying(attempt)

    def quarantine_for(self, skill_id: str, version: str, reason_code: str, reason: str,
                       details: dict[str, Any] | None = None) -> ChangeResult:
        """Quarantine with a machine reason (``artifact_tampered``, ``artifact_missing``, ...)."""
        return self._change(skill_id, version,
                            lambda s, v: s.quarantine(self.actor, v, reason_code, reason, _jsonable(details or {})))

    # --- verify and audit installed versions ---------------------------------------------

    def verify(self, skill_id: str, version: str | None) -> VerifyResult:
        """Re-verify a stored version: digest recorded at install, payload hash, signature, trust.

        A failure quarantines the version (``artifact_tampered``, ``artifact_missing`` or
        ``trust_revoked``); success records ``skill.verified``.
        """
        def attempt() -> VerifyResult:
            skill = self.skill(skill_id)
            v = skill.installed(version)
            try:
                inspected, decision = self._verify_stored(skill, v)
            except (ArtifactTampered, ArtifactMissing, ArtifactError, TrustError) as e:
                code = self._quarantine_code(e)
                skill.quarantine(self.actor, v.version, code, e.message, _jsonable(e.details))
                return VerifyResult(skill.skill_id, v.version, False, code, e.message, None,
                                    skill.versions[v.version].status, self.save(skill))
            skill.record_verified(self.actor, v.version, inspected.payload_sha256, decision.value)
            return VerifyResult(skill.skill_id, v.version, True, None, None, decision.value,
                                skill.versions[v.version].status, self.save(skill))

        return self.retrying(attempt)

    def audit_installed(self, skill_id: str, version: str | None, *, quarantine: bool = True) -> AuditRun:
        """Audit a stored version under the current policy and record ``skill.audited`` (trigger
        ``manual``); a failure quarantines it (``audit_failed``) unless ``quarantine`` is false.
        A verification failure is an error (no report), and quarantines like ``verify``."""
        def attempt() -> AuditRun:
            skill = self.skill(skill_id)
            v = skill.installed(version)
            try:
                inspected, decision = self._verify_stored(skill, v)
            except (ArtifactTampered, ArtifactMissing, ArtifactError, TrustError) as e:
                if quarantine:
                    skill.quarantine(self.actor, v.version, self._quarantine_code(e), e.message, _jsonable(e.details))
                    e.details["positions"] = self.save(skill)
                raise
            outcome = self._audit(inspected, decision.value)
            skill.record_audit(self.actor, v.version, "manual", outcome.policy_version, outcome.report)
            quarantined = False
            if not outcome.report["passed"] and quarantine:
                reasons = outcome.report["quarantine_reasons"]
                quarantined = skill.quarantine(self.actor, v.version, AUDIT_FAILED_CODE, "; ".join(reasons),
                                               {"policy_version": outcome.policy_version})
            return AuditRun(outcome.report, outcome.policy_version, quarantined, self.save(skill))

        return self.retrying(attempt)

    def audit_file(self, data: bytes, *, allow_tofu: bool, extra_trust: TrustStore | None = None) -> AuditRun:
        """Read-only audit of an artifact file: nothing is recorded; trust flags apply to this run."""
        inspected = inspect_artifact(data)
        publisher = inspected.manifest.publisher
        store = self.trust_store_for(publisher)
        if extra_trust is not None:
            store = store.merged_with(extra_trust)
        decision = evaluate_trust(store, publisher, inspected.public_key_hex, allow_tofu).decision
        outcome = self._audit(inspected, decision.value)
        return AuditRun(outcome.report, outcome.policy_version, False, [])

    # --- trust --------------------------------------------------------------------------

    def allow(self, publisher: str, key_hex: str, reason: str | None) -> TrustChange:
        store = add_trusted_key(TrustStore(), publisher, key_hex)  # validates (manifest_validation errors)
        pub, keys = next(iter(store.trusted_publishers.items()))
        key = keys[0]
        kid = compute_key_id(bytes.fromhex(key))

        def attempt() -> TrustChange:
            agg = self.load(Publisher, pub)
            changed = agg.allowlist(self.actor, key, kid, reason)
            return TrustChange(pub, key, kid, changed, self.save(agg))

        return self.retrying(attempt)

    def revoke(self, publisher: str, key_hex: str, reason: str | None) -> TrustChange:
        """Revoke a key, then quarantine every installed version signed by it (``trust_revoked``)."""
        store = add_trusted_key(TrustStore(), publisher, key_hex)
        pub, keys = next(iter(store.trusted_publishers.items()))
        key = keys[0]
        kid = compute_key_id(bytes.fromhex(key))

        def attempt() -> TrustChange:
            agg = self.load(Publisher, pub)
            changed = agg.revoke(self.actor, key, kid, reason)
            return TrustChange(pub, key, kid, changed, self.save(agg))

        result = self.retrying(attempt)
        quarantined: list[dict[str, str]] = []
        positions = list(result.positions)
        why = f"publisher {pub} key {kid} was revoked" + (f": {reason}" if reason else "")
        for skill_id in self._skills_signed_by(pub, key):
            def q(skill_id: str = skill_id) -> list[int]:
                skill = self.load(Skill, skill_id)
                for v in skill.installed_versions():
                    if v.key_hex == key and v.publisher == pub and skill.quarantine(
                            self.actor, v.version, TRUST_REVOKED, why, {"publisher": pub, "key_id": kid}):
                        quarantined.append({"skill_id": skill_id, "version": v.version, "reason_code": TRUST_REVOKED})
                return self.save(skill)

            positions += self.retrying(q)
        return msgspec.structs.replace(result, positions=positions, quarantined=quarantined)

    def _skills_signed_by(self, publisher: str, key_hex: str) -> list[str]:
        found: set[str] = set()
        for row in iter_rows(self.app, topics=topics_for_kinds(["skill.artifact_verified"])):
            state = msgspec.json.decode(row.state)
            if state.get("key_hex") == key_hex and state.get("publisher") == publisher:
                found.add(state["stream"].split(":", 1)[1])
        return sorted(found)

    def import_trust(self, store: TrustStore, reason: str | None) -> dict[str, Any]:
        """Allowlist every key of an interchange file; TOFU pins become pins where none exists."""
        positions: list[int] = []
        allowlisted, pinned, conflicts = [], [], []
        for pub, keys in store.trusted_publishers.items():
            for key in keys:
                r = self.allow(pub, key, reason)
                positions += r.positions
                if r.changed:
                    allowlisted.append({"publisher": pub, "key_hex": key, "key_id": r.key_id})
        for pub, key in store.tofu_publishers.items():
            def attempt(pub: str = pub, key: str = key) -> list[int]:
                agg = self.load(Publisher, pub)
                current = agg.trust_store()
                if key in current.revoked.get(pub, ()):
                    conflicts.append({"publisher": pub, "key_hex": key, "reason": "key is revoked"})
                    return []
                existing = current.tofu_publishers.get(pub)
                if existing == key or key in current.trusted_publishers.get(pub, ()):
                    return []
                if existing is not None:
                    conflicts.append({"publisher": pub, "key_hex": key, "reason": "a different key is already pinned"})
                    return []
                agg.pin(self.actor, key, compute_key_id(bytes.fromhex(key)), "", "", "")
                pinned.append({"publisher": pub, "key_hex": key})
                return self.save(agg)

            positions += self.retrying(attempt)
        return {"allowlisted": allowlisted, "pinned": pinned, "conflicts": conflicts, "positions": positions}

    # --- policy -------------------------------------------------------------------------

    def set_policy(self, settings: Sequence[str], reason: str) -> dict[str, Any]:
        def attempt() -> dict[str, Any]:
            agg = self.policy()
            values = apply_settings(agg.values, list(settings))
            changed = agg.change(self.actor, values, reason)
            positions = self.save(agg)
            return {"policy_version": agg.policy_version, "policy": policy_to_dict(agg.values), "changed": changed,
                    "positions": positions}

        return self.retrying(attempt)


def _summary(report: dict[str, Any]) -> AuditSummary:
    return AuditSummary(
        passed=bool(report["passed"]),
        failed_checks=list(dict.fromkeys(c["check_id"] for c in report["checks"] if c["status"] == "fail")),
        warning_checks=list(dict.fromkeys(c["check_id"] for c in report["checks"] if c["status"] == "warn")),
    )


def _jsonable(value: Any) -> Any:
    return msgspec.to_builtins(value, str_keys=True)


# --- checkpoints ------------------------------------------------------------------------

JOURNAL_KEY_FILE = "journal-signing-key.pem"


def journal_key_path(settings: Settings) -> Path:
    return settings.home / JOURNAL_KEY_FILE


def journal_seed(settings: Settings, *, create: bool) -> bytes | None:
    """The local key that signs checkpoints (PKCS#8 PEM, 0600), created on first use."""
    from skill_ledger.adapters.storage.files import atomic_write
    from skill_ledger.domain.signing import parse_signing_key, private_key_pem

    path = journal_key_path(settings)
    if path.exists():
        return parse_signing_key(read_bounded(path, 16 * 1024))
    if not create:
        return None
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    try:
        atomic_write(path, private_key_pem(seed), mode=0o600, exclusive=True)
    except FileExistsError:  # another process created it first: use theirs
        return parse_signing_key(read_bounded(path, 16 * 1024))
    return seed


def record_checkpoint(ledger: Ledger) -> dict[str, Any]:
    """Sign (position, root hash, event count) of the journal as it is now, and record it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from skill_ledger.domain.checkpoints import Checkpoints, checkpoint_message, root_hash

    seed = journal_seed(ledger.settings, create=True)
    assert seed is not None
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    public_hex = sk.public_key().public_bytes_raw().hex()

    def attempt() -> dict[str, Any]:
        hashes = [row.hash or "" for row in iter_rows(ledger.app)]
        position = len(hashes)
        root = root_hash(hashes)
        signature = sk.sign(checkpoint_message(position, root, position)).hex()
        agg = ledger.load(Checkpoints, "checkpoints")
        agg.record(ledger.actor, position=position, root=root, event_count=position,
                   key_id=compute_key_id(bytes.fromhex(public_hex)), public_key_hex=public_hex, signature=signature)
        return {"position": position, "root_hash": root, "event_count": position,
                "key_id": compute_key_id(bytes.fromhex(public_hex)), "positions": ledger.save(agg)}

    result = ledger.retrying(attempt)
    _write_anchor(ledger, result["positions"][0])
    return result


JOURNAL_ANCHOR_FILE = "journal-anchor.json"


def _write_anchor(ledger: Ledger, position: int) -> None:
    """Remember, outside the journal, the newest checkpoint event and its chain hash: nothing
    inside a journal can show that events were cut off its end, this file can."""
    from skill_ledger.adapters.journal.sqlite import chain_hash
    from skill_ledger.adapters.storage.files import atomic_write
    from skill_ledger.domain.text import dumps_pretty

    anchor = {"position": position, "hash": chain_hash(ledger.app, position) or ""}
    atomic_write(ledger.settings.home / JOURNAL_ANCHOR_FILE, dumps_pretty(anchor).encode(), mode=0o600)


def read_anchor(settings: Settings) -> dict[str, Any] | None:
    path = settings.home / JOURNAL_ANCHOR_FILE
    if not path.exists():
        return None
    import json

    try:
        doc = json.loads(read_bounded(path, 4096))
        return {"position": int(doc["position"]), "hash": str(doc["hash"])}
    except (ValueError, KeyError, TypeError, SkillLedgerError):
        return {"position": 0, "hash": "", "unreadable": True}
