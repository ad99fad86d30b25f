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
from .text import summary_line

TAMPER_CODES = ("artifact_tampered", "artifact_missing")
_SCALARS = (str, int, float, bool, type(None))


def _str(d: dict[str, Any], key: str) -> str | None:
    v = d.get(key)
    return v if isinstance(v, str) else None


def _bool(d: dict[str, Any], key: str) -> bool | None:
    v = d.get(key)
    return v if isinstance(v, bool) else None


def _int(d: dict[str, Any], key: str) -> int | None:
    v = d.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def scalar_details(d: Any, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The JSON scalar members of ``d`` (optionally only ``keys``), for a timeline entry."""
    if not isinstance(d, dict):
        return {}
    items = d.items() if keys is None else ((k, d[k]) for k in keys if k in d)
    return {str(k): v for k, v in items if isinstance(v, _SCALARS)}


class VersionState:
    """One version of a skill, as the journal says up to the event being folded."""

    __slots__ = ("skill_id", "version", "publisher", "key_id", "key_hex", "trust_decision", "payload_sha256",
                 "artifact_sha256", "name", "display_name", "description", "compat_problem", "installed",
                 "ever_installed", "installed_at", "install_ref", "status", "status_code", "status_reason",
                 "status_ref", "last_audit", "last_audit_ref")

    def __init__(self, skill_id: str, version: str) -> None:
        self.skill_id, self.version = skill_id, version
        self.publisher = self.key_id = self.key_hex = self.trust_decision = ""
        self.payload_sha256 = self.artifact_sha256 = ""
        self.name: str | None = None
        self.display_name: str | None = None
        self.description: str | None = None
        self.compat_problem: str | None = None
        self.installed = self.ever_installed = False
        self.installed_at: str | None = None
        self.install_ref: CitedEvent | None = None
        self.status: str | None = None
        self.status_code: str | None = None
        self.status_reason: str | None = None
        self.status_ref: CitedEvent | None = None
        self.last_audit: LastAudit | None = None
        self.last_audit_ref: CitedEvent | None = None


class SkillState:
    __slots__ = ("skill_id", "versions", "current", "timeline")

    def __init__(self, skill_id: str) -> None:
        self.skill_id = skill_id
        self.versions: dict[str, VersionState] = {}
        self.current: str | None = None
        # (publisher of the entry's version or None, entry): the publisher filter reads it
        self.timeline: list[tuple[str | None, TimelineEntry]] = []


class KeyState:
    __slots__ = ("publisher", "key_hex", "key_id", "kind", "state", "allowlisted", "pinned", "revoked")

    def __init__(self, publisher: str, key_hex: str, key_id: str, kind: str) -> None:
        self.publisher, self.key_hex, self.key_id, self.kind = publisher, key_hex, key_id, kind
        self.state = "active"
        # (the event, its reason, extra facts) of the newest act of each sort
        self.allowlisted: tuple[CitedEvent, str | None, dict[str, str | None]] | None = None
        self.pinned: tuple[CitedEvent, str | None, dict[str, str | None]] | None = None
        self.revoked: tuple[CitedEvent, str | None, dict[str, str | None]] | None = None


class RevocationState:
    """A revocation inside the window and the quarantines linked to it so far."""

    __slots__ = ("publisher", "key_hex", "key_id", "ref", "reason", "quarantined")

    def __init__(self, publisher: str, key_hex: str, key_id: str, ref: CitedEvent, reason: str | None) -> None:
        self.publisher, self.key_hex, self.key_id, self.ref, self.reason = publisher, key_hex, key_id, ref, reason
        self.quarantined: list[tuple[str, str, CitedEvent, float]] = []


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
            if kind == "journal.checkpoint":  # a later checkpoint may cover the window
                self._checkpoint(e, e.get("data") or {}, False)
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
        version = _str(data, "version")
        if skill is None or version is None:
            return None
        v = skill.versions.get(version)
        return None if v is None else (skill, v)

    def _timeline(self, skill: SkillState, v: VersionState | None, entry: TimelineEntry) -> None:
        skill.timeline.append((v.publisher if v is not None else None, entry))

    def _generic(self, e: dict[str, Any], data: dict[str, Any]) -> None:
        """An event the fold does not understand: kept in the window as what it is."""
        version, reason, code = _str(data, "version"), _str(data, "reason"), _str(data, "reason_code")
        entry = self.entry(e, data, version=version, reason=reason, reason_code=code)
        skill = self._skill_of(e)
        if skill is None and _str(data, "skill_id") is not None:
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
        skill, version = self._skill_of(e), _str(d, "version")
        if skill is None or version is None:
            return False
        v = skill.versions.get(version)
        if v is None or not v.installed:  # as the aggregate does: a new verification starts afresh
            v = skill.versions[version] = VersionState(skill.skill_id, version)
        v.publisher = _str(d, "publisher") or ""
        v.key_id, v.key_hex = _str(d, "key_id") or "", _str(d, "key_hex") or ""
        v.trust_decision = _str(d, "trust_decision") or ""
        v.payload_sha256, v.artifact_sha256 = _str(d, "payload_sha256") or "", _str(d, "artifact_sha256") or ""
        manifest = d.get("manifest") if isinstance(d.get("manifest"), dict) else {}
        operator = manifest.get("operator") if isinstance(manifest.get("operator"), dict) else {}
        v.name = _str(manifest, "name")
        v.display_name, v.description = _str(operator, "display_name"), _str(operator, "description")
        compat = manifest.get("compat")
        v.compat_problem = compat_problem(compat if isinstance(compat, dict) else None)
        if w:
            details = scalar_details(d, ("publisher", "key_id", "trust_decision", "payload_sha256",
                                         "artifact_sha256", "source"))
            self._timeline(skill, v, self.entry(e, d, version=version, details=details))
        return True

    def _audited(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        found = self._version_of(e, d)
        trigger, passed, policy_version = _str(d, "trigger"), _bool(d, "passed"), _int(d, "policy_version")
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
        to_version, from_version = _str(d, "to_version"), _str(d, "from_version")
        skill.current = to_version
        if w:
            shown = to_version or from_version
            v = skill.versions.get(shown) if shown is not None else None
            details = {"from_version": from_version, "to_version": to_version, "cause": _str(d, "cause")}
            self._timeline(skill, v, self.entry(e, d, version=shown, reason=_str(d, "reason"), details=details))
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
        code = _str(d, "reason_code")
        if found is None or code is None:
            return False
        skill, v = found
        ref = self.ref(e)
        if w:
            if code in TAMPER_CODES:
                self.findings.append(FindingDraft.tampered(v, ref, code, _str(d, "reason")))
            elif code == "trust_revoked":
                revocation = self.revocation_index.get((v.publisher, v.key_hex))
                if revocation is not None:
                    revocation.quarantined.append(
                        (v.skill_id, v.version, ref, revocation_delay(revocation.ref, ref)))
        return self._set_status(e, d, w, "quarantined", code, _str(d, "reason"), scalar_details(d.get("details")),
                                ref)

    def _enabled(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        found = self._version_of(e, d)
        override, audit_passed = _bool(d, "override"), _bool(d, "audit_passed")
        if found is None or override is None:
            return False
        _skill, v = found
        ref = self.ref(e)
        if w:
            if override or audit_passed is False:
                self.findings.append(FindingDraft.override(v, ref, _str(d, "reason")))
            elif v.status == "quarantined":
                self.findings.append(FindingDraft.lifted(v, ref, _str(d, "reason")))
        details = {"override": override, "audit_passed": audit_passed}
        return self._set_status(e, d, w, "active", "override" if override else None, _str(d, "reason"), details,
                                ref)

    def _disabled(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        return self._set_status(e, d, w, "disabled", "operator", _str(d, "reason"))

    def _verified(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        found = self._version_of(e, d)
        decision = _str(d, "trust_decision")
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
        return self._set_status(e, d, w, "removed", None, _str(d, "reason"))

    def _denied(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        skill, version = self._skill_of(e), _str(d, "version")
        if skill is None or version is None:
            return False
        if w:
            v = skill.versions.get(version)
            tool_id, code = _str(d, "tool_id"), _str(d, "reason_code")
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
        stream, key_hex = e.get("stream"), _str(d, "key_hex")
        if not isinstance(stream, str) or not stream.startswith("publisher:") or key_hex is None:
            return None
        publisher = stream[10:]
        k = self.keys.get((publisher, key_hex))
        if k is None or kind == "tofu":  # a pin starts the key's record afresh, as the aggregate does
            k = self.keys[(publisher, key_hex)] = KeyState(publisher, key_hex, _str(d, "key_id") or "",
                                                           kind or "allowlisted")
        return k

    def _trust_entry(self, e: dict[str, Any], d: dict[str, Any], k: KeyState, w: bool) -> None:
        if w:
            details = scalar_details(d, ("key_id", "key_hex", "first_skill_id", "first_version"))
            self.trust_events.append((k.publisher, self.entry(e, d, reason=_str(d, "reason"), details=details)))

    def _allowlisted(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        k = self._key(e, d, "allowlisted")
        if k is None:
            return False
        k.kind, k.state = "allowlisted", "active"
        k.allowlisted = (self.ref(e), _str(d, "reason"), {})
        self.allowlisting_publishers.add(k.publisher)
        self._trust_entry(e, d, k, w)
        return True

    def _pinned(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        k = self._key(e, d, "tofu")
        if k is None:
            return False
        k.pinned = (self.ref(e), None, {"first_skill_id": _str(d, "first_skill_id") or None,
                                        "first_version": _str(d, "first_version") or None})
        self._trust_entry(e, d, k, w)
        return True

    def _revoked(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        k = self._key(e, d, None)
        if k is None:
            return False
        ref, reason = self.ref(e), _str(d, "reason")
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
                           reason=_str(d, "reason"))
        if w:
            self.policy_versions.append(pv)
            if any(c.direction != "tighter" for c in changes):
                self.findings.append(FindingDraft.policy(pv, ref, changes))
            self.other_events.append((ref.stream, self.entry(e, d, reason=_str(d, "reason"),
                                                                   details={"policy_version": version})))
        else:
            self.policy_versions = [pv]  # the version in force when the window opens
        return True

    def _rejected(self, e: dict[str, Any], d: dict[str, Any], w: bool) -> bool:
        digest, code = _str(d, "artifact_sha256"), _str(d, "error_code")
        if digest is None or code is None:
            return False
        if w:
            ref = self.ref(e)
            rejection = Rejection(
                position=ref.position, hash=ref.hash, recorded_at=ref.recorded_at, actor=ref.actor,
                artifact_sha256=digest, source=_str(d, "source") or "", error_code=code,
                message=_str(d, "message") or "", skill_id=_str(d, "skill_id"), version=_str(d, "version"),
                publisher=_str(d, "publisher"))
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
        covers, count = _int(d, "position"), _int(d, "event_count")
        if covers is None or count is None:
            return False
        ref = self.ref(e)
        if self.checkpoint is None or covers >= self.checkpoint[0].covers_position:
            self.checkpoint = (Checkpoint(
                position=ref.position, hash=ref.hash, recorded_at=ref.recorded_at, actor=ref.actor,
                covers_position=covers, event_count=count, root_hash=_str(d, "root_hash") or "",
                key_id=_str(d, "key_id") or ""), ref)
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
        return _parse_time(e.get("recorded_at")) if e is not None else None


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.timezone.utc)
