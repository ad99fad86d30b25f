"""The finding rules: what makes an exception a reviewer must look at, and what it cites.

Findings that an event starts (an override, a lifted quarantine, a tamper detection, a
loosened policy) are drafted by the folds when they meet the event inside the window;
denials and rejections are aggregated (one finding per tool or artifact) from the spool
when the document is written; findings about the state at the window end are drafted per
version when a skill's fold ends (stale audits, revoked keys still active) and once for the
journal (TOFU-only publishers, a missing checkpoint, a journal that does not verify). A
draft keeps the events it cites; :meth:`FindingDraft.finish` turns it into the report's
:class:`Finding`, whose id is the kind's tag and the position of its key event, so one
event always yields the same id.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from skill_ledger.domain.policy import POLICY_KEYS, PolicyValues, policy_to_dict

from .model import (
    FINDING_RULES,
    CitedEvent,
    Evidence,
    Finding,
    PolicyChange,
    PolicyVersion,
    Rejection,
    TimelineEntry,
)
from .state import parse_time
from .text import duration

if TYPE_CHECKING:
    from .state import KeyState, VersionState

# Every numeric member of the policy is a limit (bigger lets more through), every boolean an
# ``allow_*`` switch; derived from the policy's own definition so a new member is judged too.
_LIMIT_KEYS = tuple(k for k, v in policy_to_dict(PolicyValues()).items() if type(v) is int)
_SWITCH_KEYS = tuple(k for k, v in policy_to_dict(PolicyValues()).items() if type(v) is bool)


def _who(ref: CitedEvent) -> str:
    a = ref.actor
    account = f", OS user {a.os_user}" if a.os_user else ""
    return f"{a.principal} ({a.command}@{a.host}{account})"


def _t(value: str | None) -> str:
    return value if value else "-"


class FindingDraft:
    """A finding being assembled: its kind, text, subject and the events it cites."""

    __slots__ = ("kind", "key_position", "title", "detail", "skill_id", "version", "publisher", "at", "actor",
                 "count", "changes", "evidence", "last")

    def __init__(self, kind: str, key_position: int, *, title: str, detail: str, evidence: list[CitedEvent | None],
                 skill_id: str | None = None, version: str | None = None, publisher: str | None = None,
                 at: CitedEvent | None = None, changes: list[PolicyChange] | None = None) -> None:
        self.kind, self.key_position, self.title, self.detail = kind, key_position, title, detail
        self.skill_id, self.version, self.publisher = skill_id, version, publisher
        self.at = at.recorded_at if at is not None else None
        self.actor = at.actor.principal if at is not None else None
        self.count = 1
        self.changes = changes or []
        self.evidence = [r for r in evidence if r is not None]
        self.last = at

    def finish(self, cite: Any) -> Finding:
        """The report's finding; ``cite(ref)`` registers a cited event and returns its Evidence."""
        evidence: dict[int, Evidence] = {}
        for ref in self.evidence:
            evidence[ref.position] = cite(ref)
        return self._finding([evidence[p] for p in sorted(evidence)])

    def aggregated(self, count: int, last: CitedEvent) -> Finding:
        """The finding of ``count`` events alike (denials of one tool, rejections of one artifact),
        its evidence left empty: the caller streams it (every one of the events)."""
        self.count, self.last = count, last
        return self._finding([])

    def _finding(self, evidence: list[Evidence]) -> Finding:
        severity, tag = FINDING_RULES[self.kind]
        detail = self.detail
        if self.count > 1 and self.last is not None:
            detail += f" {self.count} events, the last at {self.last.recorded_at} by {self.last.actor.principal}."
        return Finding(
            id=f"F-{tag}-{self.key_position:06d}", kind=self.kind, severity=severity,  # type: ignore[arg-type]
            title=self.title, detail=detail, skill_id=self.skill_id, version=self.version, publisher=self.publisher,
            at=self.at, actor=self.actor, count=self.count, changes=list(self.changes), evidence=evidence)

    # --- drafted by the fold, inside the window ---------------------------------------------

    @classmethod
    def override(cls, v: VersionState, ref: CitedEvent, reason: str | None) -> FindingDraft:
        audit = v.last_audit
        if audit is not None:
            checks = ", ".join(audit.failed_checks) or "no failed check recorded"
            verdict = "passed" if audit.passed else "failed"
            what = f"its last audit ({audit.trigger}, policy v{audit.policy_version}, {audit.at}) {verdict} ({checks})"
        else:
            what = "no audit of it is recorded"
        before = f"{v.status} ({v.status_code or '-'}: {v.status_reason or '-'})" if v.status else "not active"
        return cls("enable_override_after_failed_audit", ref.position,
                   title=f"{v.skill_id} {v.version} enabled with --override after a failed audit",
                   detail=(f"{_who(ref)} enabled {v.skill_id} {v.version} at {ref.recorded_at} with --override; "
                           f"{what}. Status before: {before}. Reason given: {_t(reason)}."),
                   evidence=[v.last_audit_ref, v.status_ref, ref], skill_id=v.skill_id, version=v.version,
                   publisher=v.publisher or None, at=ref)

    @classmethod
    def lifted(cls, v: VersionState, ref: CitedEvent, reason: str | None) -> FindingDraft:
        q = v.status_ref
        since = f" at {q.recorded_at} by {_who(q)}" if q is not None else ""
        audit = v.last_audit
        after = (f" after a passing audit ({audit.trigger}, policy v{audit.policy_version})"
                 if audit is not None and audit.passed else "")
        return cls("quarantine_lifted", ref.position,
                   title=f"Quarantine of {v.skill_id} {v.version} lifted",
                   detail=(f"Quarantined ({v.status_code or '-'}: {v.status_reason or '-'}){since}; enabled at "
                           f"{ref.recorded_at} by {_who(ref)}{after}. Reason given: {_t(reason)}."),
                   evidence=[q, v.last_audit_ref, ref], skill_id=v.skill_id, version=v.version,
                   publisher=v.publisher or None, at=ref)

    @classmethod
    def tampered(cls, v: VersionState, ref: CitedEvent, code: str, reason: str | None) -> FindingDraft:
        what = "tampered with" if code == "artifact_tampered" else "missing"
        return cls("artifact_tampered_or_missing", ref.position,
                   title=f"Stored artifact of {v.skill_id} {v.version} found {what}",
                   detail=(f"Quarantined as {code} at {ref.recorded_at} by {_who(ref)}: {_t(reason)}. "
                           f"Recorded artifact sha256 {v.artifact_sha256 or '-'}."),
                   evidence=[v.install_ref, ref], skill_id=v.skill_id, version=v.version,
                   publisher=v.publisher or None, at=ref)

    @classmethod
    def denied(cls, skill_id: str, version: str, publisher: str | None, tool_id: str | None, code: str | None,
               ref: CitedEvent) -> FindingDraft:
        return cls("execution_denied", ref.position,
                   title=f"Execution of {tool_id or '-'} on {skill_id} {version} denied ({code or '-'})",
                   detail=f"The runner refused to run {tool_id or '-'} of {skill_id} {version} at "
                          f"{ref.recorded_at} for {_who(ref)} (reason code {code or '-'}).",
                   evidence=[ref], skill_id=skill_id, version=version, publisher=publisher or None, at=ref)

    @classmethod
    def rejected(cls, r: Rejection, ref: CitedEvent) -> FindingDraft:
        subject = f" ({r.skill_id or '-'} {r.version or '-'} from {r.publisher or '-'})" if (
            r.skill_id or r.publisher) else ""
        return cls("artifact_rejected", ref.position,
                   title=f"Artifact {r.artifact_sha256[:12]} rejected ({r.error_code})",
                   detail=(f"Artifact sha256 {r.artifact_sha256}{subject} from {r.source or '-'} rejected at "
                           f"{r.recorded_at} for {_who(ref)}: {r.message}"),
                   evidence=[ref], skill_id=r.skill_id, version=r.version, publisher=r.publisher, at=ref)

    @classmethod
    def registry_refused(cls, entry: TimelineEntry, ref: CitedEvent) -> FindingDraft:
        d = entry.details
        subject = f"{d.get('skill_id')} {entry.version or ''}".rstrip() if d.get("skill_id") else "every skill"
        tuf = f" (TUF: {d['tuf_error']})" if d.get("tuf_error") else ""
        return cls("registry_refused", ref.position,
                   title=f"Registry {d.get('name', '-')} refused {d.get('operation', '-')} of {subject} "
                         f"({entry.reason_code})",
                   detail=(f"At {ref.recorded_at}, for {_who(ref)}, the metadata of registry {d.get('name', '-')} did "
                           f"not vouch for {d.get('operation', '-')} of {subject} in phase {d.get('phase', '-')}: "
                           f"{entry.reason_code}{tuf}: {_t(entry.reason)}. A refusal may be an attack the registry "
                           "checks stopped (rollback, freeze, mix-and-match) or a registry that needs attention."),
                   evidence=[ref], skill_id=d.get("skill_id") if isinstance(d.get("skill_id"), str) else None,
                   version=entry.version, at=ref)

    @classmethod
    def policy(cls, pv: PolicyVersion, ref: CitedEvent, changes: list[PolicyChange]) -> FindingDraft:
        shown = "; ".join(f"{c.key}: {_value(c.old)} -> {_value(c.new)} ({c.direction})" for c in changes)
        return cls("policy_loosened", ref.position,
                   title=f"Audit policy loosened (version {pv.version})",
                   detail=f"{_who(ref)} set audit policy version {pv.version} at {ref.recorded_at}: {shown}. "
                          f"Reason given: {_t(pv.reason)}.",
                   evidence=[ref], at=ref, changes=changes)


def _value(v: Any) -> str:
    if v is None:
        return "unset"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return str(v)


# --- the audit policy: which change loosens it ---------------------------------------------


def change_direction(key: str, old: Any, new: Any) -> str:
    """``looser``, ``tighter`` or ``unknown`` for a changed member of the audit policy.

    Bigger limits and an ``allow_*`` switched on let more through; a wider import allowlist
    admits more host modules; dropping the vulnerability feed skips its check. A different
    feed, a member of an unexpected type or a member this version does not know cannot be
    judged, and is reported as ``unknown`` (a reviewer looks at it like a loosening).
    """
    if key in _LIMIT_KEYS and _is_int(old) and _is_int(new):
        return "looser" if new > old else "tighter"
    if key in _SWITCH_KEYS and isinstance(old, bool) and isinstance(new, bool):
        return "looser" if new else "tighter"
    if key == "allowed_import_modules" and isinstance(old, list) and isinstance(new, list):
        return "looser" if set(map(str, new)) - set(map(str, old)) else "tighter"
    if key == "vulnerability_feed_path" and _feed(old) != _feed(new):
        if _feed(new) is None:
            return "looser"
        return "tighter" if _feed(old) is None else "unknown"
    return "unknown"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _feed(v: Any) -> Any:
    return (v.strip() or None) if isinstance(v, str) else v


def policy_changes(old: dict[str, Any], new: dict[str, Any]) -> list[PolicyChange]:
    """The members that differ, in policy order (then unknown members by name)."""
    keys = [k for k in POLICY_KEYS if k in old or k in new]
    keys += sorted((set(old) | set(new)) - set(POLICY_KEYS))
    return [PolicyChange(key=k, old=old.get(k), new=new.get(k), direction=change_direction(k, old.get(k), new.get(k)))
            for k in keys if old.get(k) != new.get(k)]


def revocation_delay(revocation: CitedEvent, quarantine: CitedEvent) -> float | None:
    a, b = parse_time(revocation.recorded_at), parse_time(quarantine.recorded_at)
    return None if a is None or b is None else round((b - a).total_seconds(), 6)


# --- findings about the state at the window end ----------------------------------------------


def journal_failed(watched: CitedEvent | None, first_bad: int | None, message: str) -> FindingDraft:
    where = f"at position {first_bad}" if first_bad else "in the journal store (not at one event)"
    return FindingDraft("journal_verification_failed", first_bad or 0,
                        title="The journal does not verify: this report cannot be relied on",
                        detail=(f"journal verify found a problem {where}: {message or '-'}. Events may have been "
                                "edited, deleted, inserted or reordered; every statement below rests on them."),
                        evidence=[watched])


def stale_audit(v: VersionState, max_age: dt.timedelta, end: dt.datetime) -> FindingDraft | None:
    """An active version whose last audit is older than ``max_age`` at ``end`` (or that has none)."""
    audit, limit = v.last_audit, duration(max_age.total_seconds())
    if audit is not None:
        at = parse_time(audit.at)
        if at is not None and end - at <= max_age:
            return None
        age = duration((end - at).total_seconds()) if at is not None else "unknown"
        what = (f"Its last audit ({audit.trigger}, policy v{audit.policy_version}, "
                f"{'passed' if audit.passed else 'failed'}) was at {audit.at}, {age} before the window end")
        key = v.last_audit_ref
    else:
        what, key = "No audit of it is recorded", v.install_ref
    return FindingDraft("stale_audit", key.position if key is not None else 0,
                        title=f"{v.skill_id} {v.version} active without an audit newer than {limit}",
                        detail=f"{what} ({end.isoformat()}); the limit is {limit}.",
                        evidence=[key, v.status_ref], skill_id=v.skill_id, version=v.version,
                        publisher=v.publisher or None, at=key)


def revoked_key_active(v: VersionState, key_id: str, revoked: CitedEvent | None) -> FindingDraft:
    """An active version whose signing key (``key_id``, revoked by the event ``revoked``) is
    revoked at the window end."""
    when = f" at {revoked.recorded_at} by {_who(revoked)}" if revoked is not None else ""
    return FindingDraft("revoked_key_active", v.install_ref.position if v.install_ref else 0,
                        title=f"{v.skill_id} {v.version} is active although its signing key was revoked",
                        detail=(f"Key {key_id} of {v.publisher} was revoked{when}; {v.skill_id} {v.version}, "
                                "signed by it, was still active at the window end (the revocation's quarantine "
                                "did not happen or was undone)."),
                        evidence=[revoked, v.install_ref, v.status_ref], skill_id=v.skill_id, version=v.version,
                        publisher=v.publisher or None, at=revoked)


def tofu_only(keys: Iterable[KeyState], allowlisting: set[str]) -> Iterator[FindingDraft]:
    """Publishers with an active TOFU-pinned key, none of whose keys was ever allowlisted.
    ``keys``: the active TOFU keys, by publisher."""
    for publisher, group in itertools.groupby(keys, key=lambda k: k.publisher):
        if publisher in allowlisting:
            continue
        found = sorted((k for k in group if k.pinned is not None), key=lambda k: k.pinned.ref.position)
        if not found:
            continue
        first = found[0].pinned
        ids = ", ".join(k.key_id for k in found)
        yield FindingDraft(
            "tofu_only_publisher", first.ref.position,
            title=f"Publisher {publisher} trusted only by a TOFU pin",
            detail=(f"Key {ids} of {publisher} was pinned on first use (first by {first.first_skill_id or '-'} "
                    f"{first.first_version or '-'} at {first.ref.recorded_at}, {_who(first.ref)}); no key of "
                    f"{publisher} was ever allowlisted up to the window end."),
            evidence=[k.pinned.ref for k in found], publisher=publisher, at=first.ref)


def checkpoint_missing(newest: tuple[Any, CitedEvent] | None, end: int, last: CitedEvent | None
                       ) -> FindingDraft | None:
    """No signed checkpoint covers ``end``, the window's last event other than checkpoints
    (``last`` is that event, ``newest`` the (checkpoint, its event) covering the most)."""
    cp, cp_ref = newest if newest is not None else (None, None)
    if end <= 0 or (cp is not None and cp.covers_position >= end):
        return None
    if cp is None:
        detail = f"The journal holds no signed checkpoint; the window ends at position {end}."
    else:
        detail = (f"The newest checkpoint (position {cp.position}, {cp.recorded_at}) covers events up to "
                  f"position {cp.covers_position}; the window ends at position {end}. Events after a "
                  "checkpoint can be cut off the journal's end without a trace in the journal itself.")
    return FindingDraft("checkpoint_missing", end, title="No signed checkpoint covers the window end",
                        detail=detail, evidence=[last, cp_ref])
