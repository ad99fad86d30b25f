"""The report's one pass over the journal: a fold of exported events (``events.md``) in
position order into per-skill, per-version and per-key state.

Memory is bounded by the number of skills, versions and keys, plus what lies inside the
window: before the window an event only updates state (each version keeps references to
the few events its posture cites: install, last audit, last status change); inside it,
the event is also kept as a timeline entry and may start a finding. After the window end
only checkpoints (which may cover the window) and the journal head are read.

The fold never trusts an event's shape: a known kind whose data it cannot use, or a kind
it does not know, is carried in the timeline generically (kind, time, actor, position,
hash) and changes no state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from skill_ledger.domain.eligibility import compat_problem
from skill_ledger.domain.policy import PolicyValues, policy_to_dict

from .model import Actor, Checkpoint, CitedEvent, LastAudit, PolicyVersion, Rejection, TimelineEntry
from .rules import FindingDraft, policy_changes, revocation_delay
from .state import (
    KeyState,
    RevocationState,
    SkillState,
    VersionState,
    bool_of,
    int_of,
    parse_time,
    scalar_details,
    text_of,
)
from .text import summary_line

TAMPER_CODES = ("artifact_tampered", "artifact_missing")


Handler = Callable[[dict[str, Any], dict[str, Any], bool], bool]


class ReportFold:
    """Feed exported events in position order with :meth:`feed`; read the state afterwards."""

    def __init__(self, *, since: int | None, until: int | None, watch_position: int | None = None) -> None:
        self.since, self.until = since, until
        self.watch_position = watch_position  # an event to keep a reference to (journal verify's first bad one)
        self.watched: CitedEvent | None = None
        self.head: tuple[int, str] | None = None
        self.last_position = 0
        self.last_upto_until: dict[str, Any] | None = None  # the newest event at or before the window end
        self.last_content: dict[str, Any] | None = None  # ... of a kind other than journal.checkpoint
        self.window_first: dict[str, Any] | None = None
        self.window_last: dict[str, Any] | None = None
        self.window_count = 0
        self.skills: dict[str, SkillState] = {}
        self.keys: dict[tuple[str, str], KeyState] = {}
        self.allowlisting_publishers: set[str] = set()  # publishers with any key ever allowlisted
        self.revocations: list[RevocationState] = []
        self.revocation_index: dict[tuple[str, str], RevocationState] = {}
        self.policy_values: dict[str, Any] = policy_to_dict(PolicyValues())
        self.policy_versions: list[PolicyVersion] = [PolicyVersion(
            version=0, values=dict(self.policy_values), changed=[], position=None, hash=None, recorded_at=None,
            actor=None, reason=None)]
        # the checkpoint covering the most events (the newest one, as checkpoints are made)
        self.checkpoint: tuple[Checkpoint, CitedEvent] | None = None
        self.trust_events: list[tuple[str, TimelineEntry]] = []  # (publisher, entry)
        self.other_events: list[tuple[str, TimelineEntry]] = []  # (stream, entry)
        self.rejections: list[Rejection] = []
        self.findings: list[FindingDraft] = []
        self.aggregates: dict[tuple[Any, ...], FindingDraft] = {}
        self._actors: dict[tuple[Any, ...], Actor] = {}
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
            "publisher.key_allowlisted": self._allowlisted,
            "publisher.key_pinned": self._pinned,
            "publisher.key_revoked": self._revoked,
            "policy.changed": self._policy_changed,
            "artifact.rejected": self._rejected,
            "journal.checkpoint": self._checkpoint,
        }

    # --- driving -------------------------------------------------------------------------

    def feed(self, e: dict[str, Any]) -> None:
        position = e["position"]
        if not isinstance(position, int) or position <= self.last_position:
            raise ValueError(f"events must come in increasing position order: {position!r} after {self.last_position}")
        self.last_position = position
        self.head = (position, e.get("hash") or "")
        kind = e.get("kind")
        if position == self.watch_position:
            self.watched = self.ref(e)
        if self.until is not None and position > self.until:
            data = e.get("data")
            if kind == "journal.checkpoint" and isinstance(data, dict):  # a later one may cover the window
                self._checkpoint(e, data, False)
            return
        self.last_upto_until = e
        if kind != "journal.checkpoint":
            self.last_content = e
        in_window = self.since is None or position > self.since
        if in_window:
            self.window_count += 1
            if self.window_first is None:
                self.window_first = e
            self.window_last = e
        data = e.get("data")
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None or not isinstance(data, dict) or not handler(e, data, in_window):
            if in_window:
                self._generic(e, data if isinstance(data, dict) else {})

    def ref(self, e: dict[str, Any]) -> CitedEvent:
        return CitedEvent(position=e["position"], hash=str(e.get("hash") or ""), kind=str(e.get("kind") or ""),
                          recorded_at=str(e.get("recorded_at") or ""), stream=str(e.get("stream") or ""),
                          actor=self.actor(e.get("actor")))

    def actor(self, a: Any) -> Actor:
        if not isinstance(a, dict):
            a = {}
        key = (a.get("principal"), a.get("host"), a.get("command"))
        found = self._actors.get(key)
        if found is None:
            if len(self._actors) > 4096:  # distinct actors are few; never let a hostile journal grow this
                self._actors.clear()
            found = self._actors[key] = Actor(principal=str(key[0] or ""), host=str(key[1] or ""),
                                              command=str(key[2] or ""))
        return found

    def entry(self, e: dict[str, Any], data: dict[str, Any], *, version: str | None = None,
              reason: str | None = None, reason_code: str | None = None,
              details: dict[str, Any] | None = None) -> TimelineEntry:
        kind = str(e.get("kind") or "")
        return TimelineEntry(
            position=e["position"], hash=str(e.get("hash") or ""), recorded_at=str(e.get("recorded_at") or ""),
            actor=self.actor(e.get("actor")), kind=kind, version=version, reason=reason, reason_code=reason_code,
            summary=summary_line(kind, data), details=details or {})

    def _skill_of(self, e: dict[str, Any]) -> SkillState | None:
        stream = e.get("stream")
        if not isinstance(stream, str) or not stream.startswith("skill:"):
            return None
        return self.skill(stream[6:])

    def skill(self, skill_id: str) -> SkillState:
        s = self.skills.get(skill_id)
        if s is None:
            s = self.skills[skill_id] = SkillState(skill_id)
        return s

    def _version_of(self, e: dict[str, Any], data: dict[str, Any]) -> tuple[SkillState, VersionState] | None:
        skill = self._skill_of(e)
        version = text_of(data, "version")
        if skill is None or version is None:
            return None
        v = skill.versions.get(version)
        return None if v is None else (skill, v)

    def _timeline(self, skill: SkillState, v: VersionState | None, entry: TimelineEntry) -> None:
        skill.timeline.append((v.publisher if v is not None else None, entry))

    def _generic(self, e: dict[str, Any], data: dict[str, Any]) -> None:
        """An event the fold does not understand: kept in the window as what it is."""
        version, reason, code = text_of(data, "version"), text_of(data, "reason"), text_of(data, "reason_code")
        entry = self.entry(e, data, version=version, reason=reason, reason_code=code)
        skill = self._skill_of(e)
        if skill is None and text_of(data, "skill_id") is not None:
            skill = self.skill(data["skill_id"])
        if skill is not None:
            v = skill.versions.get(version) if version is not None else None
            self._timeline(skill, v, entry)
            return
        stream = str(e.get("stream") or "")
        if stream.startswith("publisher:"):
            self.trust_events.append((stream[10:], entry))
        else:
            self.other_events.append((stream, entry))

    # --- skill streams ---------------------------------------------------------------------

    def _artifact_verified(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        skill, version = self._skill_of(e), text_of(d, "version")
        if skill is None or version is None:
            return False
        v = skill.versions.get(version)
        if v is None or not v.installed:  # as the aggregate does: a new verification starts afresh
            v = skill.versions[version] = VersionState(skill.skill_id, version)
        v.publisher = text_of(d, "publisher") or ""
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
            self._timeline(skill, v, self.entry(e, d, version=version, details=details))
        return True

    def _audited(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        found = self._version_of(e, d)
        trigger, passed, policy_version = text_of(d, "trigger"), bool_of(d, "passed"), int_of(d, "policy_version")
        if found is None or trigger is None or passed is None or policy_version is None:
            return False
        skill, v = found
        checks = d.get("checks") if isinstance(d.get("checks"), list) else []
        failed = sorted({str(c.get("check_id")) for c in checks if isinstance(c, dict) and c.get("status") == "fail"})
        ref = self.ref(e)
        v.last_audit = LastAudit(at=ref.recorded_at, trigger=trigger, passed=passed, policy_version=policy_version,
                                 failed_checks=failed, position=ref.position, hash=ref.hash)
        v.last_audit_ref = ref
        if w:
            reasons = d.get("quarantine_reasons")
            reason = "; ".join(str(r) for r in reasons) if isinstance(reasons, list) and reasons else None
            details = {"trigger": trigger, "passed": passed, "policy_version": policy_version,
                       "failed_checks": failed, "should_quarantine": bool(d.get("should_quarantine"))}
            self._timeline(skill, v, self.entry(e, d, version=v.version, reason=None if passed else reason,
                                                reason_code=None if passed else "audit_failed", details=details))
        return True

    def _installed(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        found = self._version_of(e, d)
        if found is None:
            return False
        skill, v = found
        ref = self.ref(e)
        v.installed = v.ever_installed = True
        v.installed_at, v.install_ref = ref.recorded_at, ref
        v.status = v.status_code = v.status_reason = None
        v.status_ref = None
        if w:
            details = scalar_details(d, ("artifact_sha256", "payload_sha256"))
            self._timeline(skill, v, self.entry(e, d, version=v.version, details=details))
        return True

    def _current_changed(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        skill = self._skill_of(e)
        if skill is None or "to_version" not in d:
            return False
        to_version, from_version = text_of(d, "to_version"), text_of(d, "from_version")
        skill.current = to_version
        if w:
            shown = to_version or from_version
            v = skill.versions.get(shown) if shown is not None else None
            details = {"from_version": from_version, "to_version": to_version, "cause": text_of(d, "cause")}
            self._timeline(skill, v, self.entry(e, d, version=shown, reason=text_of(d, "reason"), details=details))
        return True

    def _set_status(self, e: dict[str, Any], d: dict[str, Any], w: bool, status: str, code: str | None,
                    reason: str | None, details: dict[str, Any] | None = None, ref: CitedEvent | None = None) -> bool:
        found = self._version_of(e, d)
        if found is None:
            return False
        skill, v = found
        ref = ref or self.ref(e)
        v.status, v.status_code, v.status_reason, v.status_ref = status, code, reason, ref
        if w:
            self._timeline(skill, v, self.entry(e, d, version=v.version, reason=reason, reason_code=code,
                                                details=details))
        return True

    def _activated(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        return self._set_status(e, d, w, "active", None, None)

    def _quarantined(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        found = self._version_of(e, d)
        code = text_of(d, "reason_code")
        if found is None or code is None:
            return False
        skill, v = found
        ref = self.ref(e)
        if w:
            if code in TAMPER_CODES:
                self.findings.append(FindingDraft.tampered(v, ref, code, text_of(d, "reason")))
            elif code == "trust_revoked":
                revocation = self.revocation_index.get((v.publisher, v.key_hex))
                if revocation is not None:
                    revocation.quarantined.append(
                        (v.skill_id, v.version, ref, revocation_delay(revocation.ref, ref)))
        return self._set_status(e, d, w, "quarantined", code, text_of(d, "reason"), scalar_details(d.get("details")),
                                ref)

    def _enabled(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        found = self._version_of(e, d)
        override, audit_passed = bool_of(d, "override"), bool_of(d, "audit_passed")
        if found is None or override is None:
            return False
        _skill, v = found
        ref = self.ref(e)
        if w:
            if override or audit_passed is False:
                self.findings.append(FindingDraft.override(v, ref, text_of(d, "reason")))
            elif v.status == "quarantined":
                self.findings.append(FindingDraft.lifted(v, ref, text_of(d, "reason")))
        details = {"override": override, "audit_passed": audit_passed}
        return self._set_status(e, d, w, "active", "override" if override else None, text_of(d, "reason"), details,
                                ref)

    def _disabled(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        return self._set_status(e, d, w, "disabled", "operator", text_of(d, "reason"))

    def _verified(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        found = self._version_of(e, d)
        decision = text_of(d, "trust_decision")
        if found is None or decision is None:
            return False
        skill, v = found
        v.trust_decision = decision
        if w:
            details = scalar_details(d, ("trust_decision", "payload_sha256"))
            self._timeline(skill, v, self.entry(e, d, version=v.version, details=details))
        return True

    def _removed(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        found = self._version_of(e, d)
        if found is None:
            return False
        found[1].installed = False
        return self._set_status(e, d, w, "removed", None, text_of(d, "reason"))

    def _denied(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        skill, version = self._skill_of(e), text_of(d, "version")
        if skill is None or version is None:
            return False
        if w:
            v = skill.versions.get(version)
            tool_id, code = text_of(d, "tool_id"), text_of(d, "reason_code")
            ref = self.ref(e)
            key = ("denied", skill.skill_id, version, tool_id, code)
            draft = self.aggregates.get(key)
            if draft is None:
                draft = self.aggregates[key] = FindingDraft.denied(skill.skill_id, version, v, tool_id, code, ref)
                self.findings.append(draft)
            else:
                draft.add(ref)
            details = {"tool_id": tool_id}
            self._timeline(skill, v, self.entry(e, d, version=version, reason_code=code, details=details))
        return True

    # --- publisher streams -----------------------------------------------------------------

    def _key(self, e: dict[str, Any], d: dict[str, Any], kind: str | None) -> KeyState | None:
        stream, key_hex = e.get("stream"), text_of(d, "key_hex")
        if not isinstance(stream, str) or not stream.startswith("publisher:") or key_hex is None:
            return None
        publisher = stream[10:]
        k = self.keys.get((publisher, key_hex))
        if k is None or kind == "tofu":  # a pin starts the key's record afresh, as the aggregate does
            k = self.keys[(publisher, key_hex)] = KeyState(publisher, key_hex, text_of(d, "key_id") or "",
                                                           kind or "allowlisted")
        return k

    def _trust_entry(self, e: dict[str, Any], d: dict[str, Any], k: KeyState, w: bool) -> None:
        if w:
            details = scalar_details(d, ("key_id", "key_hex", "first_skill_id", "first_version"))
            self.trust_events.append((k.publisher, self.entry(e, d, reason=text_of(d, "reason"), details=details)))

    def _allowlisted(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        k = self._key(e, d, "allowlisted")
        if k is None:
            return False
        k.kind, k.state = "allowlisted", "active"
        k.allowlisted = (self.ref(e), text_of(d, "reason"), {})
        self.allowlisting_publishers.add(k.publisher)
        self._trust_entry(e, d, k, w)
        return True

    def _pinned(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        k = self._key(e, d, "tofu")
        if k is None:
            return False
        k.pinned = (self.ref(e), None, {"first_skill_id": text_of(d, "first_skill_id") or None,
                                        "first_version": text_of(d, "first_version") or None})
        self._trust_entry(e, d, k, w)
        return True

    def _revoked(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        k = self._key(e, d, None)
        if k is None:
            return False
        ref, reason = self.ref(e), text_of(d, "reason")
        k.state = "revoked"
        k.revoked = (ref, reason, {})
        if w:
            r = RevocationState(k.publisher, k.key_hex, k.key_id, ref, reason)
            self.revocations.append(r)
            self.revocation_index[(k.publisher, k.key_hex)] = r
        self._trust_entry(e, d, k, w)
        return True

    # --- the shared streams ------------------------------------------------------------------

    def _policy_changed(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        values = d.get("policy")
        if not isinstance(values, dict):
            return False
        old, self.policy_values = self.policy_values, dict(values)
        ref = self.ref(e)
        version = e.get("stream_version") if isinstance(e.get("stream_version"), int) else 0
        changes = policy_changes(old, values)
        pv = PolicyVersion(version=version, values=dict(values), changed=[c.key for c in changes],
                           position=ref.position, hash=ref.hash, recorded_at=ref.recorded_at, actor=ref.actor,
                           reason=text_of(d, "reason"))
        if w:
            self.policy_versions.append(pv)
            if any(c.direction != "tighter" for c in changes):
                self.findings.append(FindingDraft.policy(pv, ref, changes))
            self.other_events.append((ref.stream, self.entry(e, d, reason=text_of(d, "reason"),
                                                                   details={"policy_version": version})))
        else:
            self.policy_versions = [pv]  # the version in force when the window opens
        return True

    def _rejected(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        digest, code = text_of(d, "artifact_sha256"), text_of(d, "error_code")
        if digest is None or code is None:
            return False
        if w:
            ref = self.ref(e)
            rejection = Rejection(
                position=ref.position, hash=ref.hash, recorded_at=ref.recorded_at, actor=ref.actor,
                artifact_sha256=digest, source=text_of(d, "source") or "", error_code=code,
                message=text_of(d, "message") or "", skill_id=text_of(d, "skill_id"), version=text_of(d, "version"),
                publisher=text_of(d, "publisher"))
            self.rejections.append(rejection)
            key = ("rejected", digest, code)
            draft = self.aggregates.get(key)
            if draft is None:
                draft = self.aggregates[key] = FindingDraft.rejected(rejection, ref)
                self.findings.append(draft)
            else:
                draft.add(ref)
        return True

    def _checkpoint(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        covers, count = int_of(d, "position"), int_of(d, "event_count")
        if covers is None or count is None:
            return False
        ref = self.ref(e)
        if self.checkpoint is None or covers >= self.checkpoint[0].covers_position:
            self.checkpoint = (Checkpoint(
                position=ref.position, hash=ref.hash, recorded_at=ref.recorded_at, actor=ref.actor,
                covers_position=covers, event_count=count, root_hash=text_of(d, "root_hash") or "",
                key_id=text_of(d, "key_id") or ""), ref)
        if w:
            details = {"covers_position": covers, "event_count": count}
            self.other_events.append((ref.stream, self.entry(e, d, details=details)))
        return True

    # --- reading the end state -----------------------------------------------------------------

    def key_revoked(self, publisher: str, key_hex: str) -> bool:
        k = self.keys.get((publisher, key_hex))
        return k is not None and k.state == "revoked"

    @property
    def last_content_position(self) -> int:
        return self.last_content["position"] if self.last_content is not None else 0

    def end_time(self) -> dt.datetime | None:
        e = self.last_upto_until
        return parse_time(e.get("recorded_at")) if e is not None else None

