"""The report's second pass: one skill stream at a time, in skill id order.

For each skill the first pass registered, its stream is read up to the window end and folded
into the state of its versions (what the posture reports); each event inside the window also
becomes a timeline entry, handed to a sink that renders it straight into the spool's
timeline file, and may start a finding. When the stream ends, the skill's posture rows and its
findings about the window end are written, and its versions are forgotten: memory holds one
skill's versions at a time, whatever the size of the journal.

The pass needs from the first one only what other streams decide about a skill
(:class:`~.state.JournalFacts`): which keys are revoked at the window end, and the revocations
inside the window (a ``trust_revoked`` quarantine is linked to the newest revocation of the
version's key before it). So a range of skills can be folded in another process.

Citations: every event of the skill inside the window is shown as a timeline entry (its own
citation) unless ``--publisher`` hides it; only the others are handed to the spool's appendix.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol

from skill_ledger.domain.eligibility import compat_problem, eligibility, is_overridden
from skill_ledger.domain.grammars import parse_semver_lenient

from .events import Event, Row, decode
from .fold import Context
from .model import (
    CitedEvent,
    Evidence,
    LastAudit,
    RevocationQuarantine,
    TimelineEntry,
    UnenforcedVersion,
    VersionPosture,
)
from .rules import FindingDraft, revocation_delay, revoked_key_active, stale_audit
from .state import FactsIndex, VersionState, bool_of, int_of, scalar_details, secret_details, text_of

TAMPER_CODES = ("artifact_tampered", "artifact_missing")


class SkillSink(Protocol):
    """Where a skill's output goes (``engine.py``: rendered into the spool's files)."""

    def entry(self, entry: TimelineEntry) -> None: ...
    def posture(self, rows: list[VersionPosture]) -> None: ...


def version_key(v: VersionState) -> tuple[Any, ...]:
    parsed = parse_semver_lenient(v.version)
    return (parsed is None, parsed or (0, 0, 0), v.version)


Handler = Callable[[Event, dict[str, Any], bool], bool]


class SkillFold:
    """Feed one skill stream's rows in position order with :meth:`feed`, then :meth:`finish`."""

    def __init__(self, ctx: Context, facts: FactsIndex, skill_id: str, sink: SkillSink, *,
                 max_audit_age: dt.timedelta | None, end_time: dt.datetime | None) -> None:
        self.ctx, self.facts, self.skill_id, self.sink = ctx, facts, skill_id, sink
        # without --publisher every event of the skill in the window is an entry: no need to cite it
        self._all_shown = not ctx.selection.publishers
        self.max_audit_age, self.end_time = max_audit_age, end_time
        self.versions: dict[str, VersionState] = {}
        self.current: str | None = None
        self.publishers: set[str] = set()  # of every version (the trust section's filter with --skill)
        self.last_position = 0
        self._handlers: dict[str, Handler] = {
            "skill.artifact_verified": self._artifact_verified,
            "skill.audited": self._audited,
            "skill.installed": self._installed,
            "skill.current_changed": self._current_changed,
            "skill.activated": self._activated,
            "skill.quarantined": self._quarantined,
            "skill.enabled": self._enabled,
            "skill.disabled": self._disabled,
            "skill.verified": self._verified,
            "skill.removed": self._removed,
            "skill.execution_denied": self._denied,
            "skill.secret_set": self._secret,
            "skill.secret_removed": self._secret,
        }

    def feed(self, row: Row) -> None:
        if row.position <= self.last_position:
            raise ValueError(f"events must come in increasing position order: {row.position} after "
                             f"{self.last_position}")
        self.last_position = row.position
        e = decode(row)
        w = self.ctx.in_window(e.position)
        handler = self._handlers.get(e.kind)
        if (handler is None or not handler(e, e.data, w)) and w:
            entry = self.ctx.generic(e)
            self._timeline(self.versions.get(entry.version) if entry.version is not None else None, entry)

    def cite(self, ref: CitedEvent) -> Evidence:
        if self._all_shown and self.ctx.in_window(ref.position):
            return Evidence(position=ref.position, hash=ref.hash)
        return self.ctx.spool.cite(ref)

    def _finding(self, draft: FindingDraft) -> None:
        self.ctx.finding(draft, self.cite)

    def _timeline(self, v: VersionState | None, entry: TimelineEntry) -> None:
        if self.ctx.selection.publisher_in(v.publisher if v is not None else None):
            self.sink.entry(entry)

    def _version(self, d: dict[str, Any]) -> VersionState | None:
        version = text_of(d, "version")
        return self.versions.get(version) if version is not None else None

    # --- the events of a skill stream ----------------------------------------------------------

    def _artifact_verified(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        version = text_of(d, "version")
        if version is None:
            return False
        v = self.versions.get(version)
        if v is None or not v.installed:  # as the aggregate does: a new verification starts afresh
            v = self.versions[version] = VersionState(self.skill_id, version)
        v.publisher = text_of(d, "publisher") or ""
        self.publishers.add(v.publisher)
        v.key_id, v.key_hex = text_of(d, "key_id") or "", text_of(d, "key_hex") or ""
        v.trust_decision = text_of(d, "trust_decision") or ""
        v.payload_sha256, v.artifact_sha256 = text_of(d, "payload_sha256") or "", text_of(d, "artifact_sha256") or ""
        manifest = d.get("manifest") if isinstance(d.get("manifest"), dict) else {}
        operator = manifest.get("operator") if isinstance(manifest.get("operator"), dict) else {}
        v.name = text_of(manifest, "name")
        v.display_name, v.description = text_of(operator, "display_name"), text_of(operator, "description")
        compat = manifest.get("compat")
        v.compat_problem = compat_problem(compat if isinstance(compat, dict) else None)
        if w:
            details = scalar_details(d, ("publisher", "key_id", "trust_decision", "payload_sha256",
                                         "artifact_sha256", "source"))
            self._timeline(v, self.ctx.entry(e, version=version, details=details))
        return True

    def _audited(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        v = self._version(d)
        trigger, passed, policy_version = text_of(d, "trigger"), bool_of(d, "passed"), int_of(d, "policy_version")
        if v is None or trigger is None or passed is None or policy_version is None:
            return False
        checks = d.get("checks") if isinstance(d.get("checks"), list) else []
        failed = sorted({str(c.check_id) for c in checks if c.status == "fail"} if checks and not isinstance(
            checks[0], dict) else {str(c.get("check_id")) for c in checks if isinstance(c, dict)
                                   and c.get("status") == "fail"})
        ref = self.ctx.ref(e)
        v.last_audit = LastAudit(at=ref.recorded_at, trigger=trigger, passed=passed, policy_version=policy_version,
                                 failed_checks=failed, position=ref.position, hash=ref.hash)
        v.last_audit_ref = ref
        if w:
            reasons = d.get("quarantine_reasons")
            reason = "; ".join(str(r) for r in reasons) if isinstance(reasons, list) and reasons else None
            details = {"trigger": trigger, "passed": passed, "policy_version": policy_version,
                       "failed_checks": failed, "should_quarantine": bool(d.get("should_quarantine"))}
            self._timeline(v, self.ctx.entry(e, version=v.version, reason=None if passed else reason,
                                             reason_code=None if passed else "audit_failed", details=details))
        return True

    def _installed(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        v = self._version(d)
        if v is None:
            return False
        ref = self.ctx.ref(e)
        v.installed = v.ever_installed = True
        v.installed_at, v.install_ref = ref.recorded_at, ref
        v.status = v.status_code = v.status_reason = None
        v.status_ref = None
        if w:
            details = scalar_details(d, ("artifact_sha256", "payload_sha256"))
            self._timeline(v, self.ctx.entry(e, version=v.version, details=details))
        return True

    def _current_changed(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        if "to_version" not in d:
            return False
        to_version, from_version = text_of(d, "to_version"), text_of(d, "from_version")
        self.current = to_version
        if w:
            shown = to_version or from_version
            v = self.versions.get(shown) if shown is not None else None
            details = {"from_version": from_version, "to_version": to_version, "cause": text_of(d, "cause")}
            self._timeline(v, self.ctx.entry(e, version=shown, reason=text_of(d, "reason"), details=details))
        return True

    def _set_status(self, e: Event, d: dict[str, Any], w: bool, status: str, code: str | None,
                    reason: str | None, details: dict[str, Any] | None = None, ref: CitedEvent | None = None) -> bool:
        v = self._version(d)
        if v is None:
            return False
        ref = ref or self.ctx.ref(e)
        v.status, v.status_code, v.status_reason, v.status_ref = status, code, reason, ref
        if w:
            self._timeline(v, self.ctx.entry(e, version=v.version, reason=reason, reason_code=code, details=details))
        return True

    def _activated(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        return self._set_status(e, d, w, "active", None, None)

    def _quarantined(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        v, code = self._version(d), text_of(d, "reason_code")
        if v is None or code is None:
            return False
        ref = self.ctx.ref(e)
        if w and self.ctx.selection.publisher_in(v.publisher or None):
            if code in TAMPER_CODES:
                self._finding(FindingDraft.tampered(v, ref, code, text_of(d, "reason")))
            elif code == "trust_revoked":
                self._link_revocation(v, ref)
        return self._set_status(e, d, w, "quarantined", code, text_of(d, "reason"), scalar_details(d.get("details")),
                                ref)

    def _link_revocation(self, v: VersionState, ref: CitedEvent) -> None:
        """A ``trust_revoked`` quarantine belongs to the newest revocation of the version's key
        inside the window before it."""
        revocations = self.facts.revocations_by_key.get((v.publisher, v.key_hex))
        if not revocations:
            return
        i = bisect.bisect_left([r.position for r in revocations], ref.position)
        if i == 0:
            return
        revocation = revocations[i - 1]
        self.ctx.spool.revocation_quarantine(revocation.position, RevocationQuarantine(
            skill_id=v.skill_id, version=v.version, position=ref.position, hash=ref.hash,
            recorded_at=ref.recorded_at, delay_seconds=revocation_delay(revocation, ref)))
        self.cite(ref)

    def _enabled(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        v = self._version(d)
        override, audit_passed = bool_of(d, "override"), bool_of(d, "audit_passed")
        if v is None or override is None:
            return False
        ref = self.ctx.ref(e)
        if w and self.ctx.selection.publisher_in(v.publisher or None):
            if override or audit_passed is False:
                self._finding(FindingDraft.override(v, ref, text_of(d, "reason")))
            elif v.status == "quarantined":
                self._finding(FindingDraft.lifted(v, ref, text_of(d, "reason")))
        details = {"override": override, "audit_passed": audit_passed}
        return self._set_status(e, d, w, "active", "override" if override else None, text_of(d, "reason"), details,
                                ref)

    def _disabled(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        return self._set_status(e, d, w, "disabled", "operator", text_of(d, "reason"))

    def _verified(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        v, decision = self._version(d), text_of(d, "trust_decision")
        if v is None or decision is None:
            return False
        v.trust_decision = decision
        if w:
            details = scalar_details(d, ("trust_decision", "payload_sha256"))
            self._timeline(v, self.ctx.entry(e, version=v.version, details=details))
        return True

    def _removed(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        v = self._version(d)
        if v is None:
            return False
        v.installed = False
        return self._set_status(e, d, w, "removed", None, text_of(d, "reason"))

    def _denied(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        version = text_of(d, "version")
        if version is None:
            return False
        if w:
            v = self.versions.get(version)
            publisher = (v.publisher or None) if v is not None else None
            tool_id, code = text_of(d, "tool_id"), text_of(d, "reason_code")
            if self.ctx.selection.publisher_in(publisher):
                self.ctx.spool.denial(self.skill_id, version, tool_id, code, publisher, self.ctx.ref(e))
            self._timeline(v, self.ctx.entry(e, version=version, reason_code=code, details={"tool_id": tool_id}))
        return True

    def _secret(self, e: Event, d: dict[str, Any], w: bool) -> bool:
        """A secret of the skill's own scope set or removed: its names, never a value (none is
        recorded; ``secret_details`` names the members shown)."""
        if text_of(d, "key") is None:
            return False
        if w:
            self._timeline(None, self.ctx.entry(e, reason=text_of(d, "reason"), details=secret_details(d)))
        return True

    # --- the end of the stream -------------------------------------------------------------------

    def finish(self) -> None:
        """The posture of each version installed up to the window end, the findings about it, and
        the versions a revoked key still signs unquarantined."""
        chosen = [v for v in self.versions.values()
                  if v.ever_installed and self.ctx.selection.publisher_in(v.publisher)]
        chosen.sort(key=version_key)
        rows = [self._posture(v) for v in chosen]
        if rows:
            self.sink.posture(rows)
        for v in chosen:
            revoked = self.facts.revoked.get((v.publisher, v.key_hex))
            if v.installed and revoked and v.status != "quarantined" and (v.publisher, v.key_hex) in \
                    self.facts.revocations_by_key:
                self.ctx.spool.unenforced(v.publisher, v.key_hex, UnenforcedVersion(
                    skill_id=v.skill_id, version=v.version, status=v.status))
            if not v.installed or v.status != "active":
                continue
            if self.max_audit_age is not None and self.end_time is not None:
                stale = stale_audit(v, self.max_audit_age, self.end_time)
                if stale is not None:
                    self._finding(stale)
            if revoked:
                self._finding(revoked_key_active(v, revoked[0], revoked[1]))

    def _posture(self, v: VersionState) -> VersionPosture:
        revoked = self.facts.key_revoked(v.publisher, v.key_hex)
        eligible, reasons = eligibility(installed=v.installed, status=v.status, key_revoked=revoked,
                                        last_audit_passed=v.last_audit.passed if v.last_audit else None,
                                        compat=v.compat_problem, overridden=is_overridden(v.status, v.status_code))
        evidence: dict[int, Evidence] = {}
        for r in (v.install_ref, v.last_audit_ref, v.status_ref):
            if r is not None:
                evidence[r.position] = self.cite(r)
        return VersionPosture(
            skill_id=v.skill_id, version=v.version, publisher=v.publisher, name=v.name, display_name=v.display_name,
            description=v.description, installed=v.installed, status=v.status, current=self.current == v.version,
            eligible=eligible, eligibility_reasons=reasons, trust_decision=v.trust_decision, key_id=v.key_id,
            key_revoked=revoked, payload_sha256=v.payload_sha256, artifact_sha256=v.artifact_sha256,
            installed_at=v.installed_at, last_audit=v.last_audit, status_reason_code=v.status_code,
            status_reason=v.status_reason, evidence=[evidence[p] for p in sorted(evidence)])
