"""``build_report``: one pass over the journal's exported events, then the document.

The caller streams every event of the journal in position order (``skills journal --json``
gives exactly this shape), resolves ``--since``/``--until`` times to positions, and runs
``journal verify`` first, handing its result in: the report cannot tell an edited event
from a genuine one, the verification can.

Deterministic: the same events and arguments give the same document (every list has a
defined order, times come from the journal; ``generated_at`` is the only other time).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from skill_ledger.domain.eligibility import eligibility, is_overridden
from skill_ledger.domain.grammars import parse_semver_lenient

from .fold import ReportFold
from .model import (
    FINDING_KINDS,
    REPORT_VERSION,
    SEVERITIES,
    CheckpointCoverage,
    CitedEvent,
    Evidence,
    Filters,
    Finding,
    JournalHead,
    JournalVerification,
    KeyTrust,
    Report,
    Revocation,
    RevocationQuarantine,
    Scope,
    SeverityCounts,
    SkillTimeline,
    Summary,
    TimelineEntry,
    Trust,
    TrustAct,
    UnenforcedVersion,
    VersionPosture,
    Window,
)
from .rules import FindingDraft, end_of_window_findings
from .state import SkillState, VersionState

_KIND_ORDER = {k: i for i, k in enumerate(FINDING_KINDS)}
_GLOBAL_FINDINGS = ("journal_verification_failed", "policy_loosened", "checkpoint_missing")


def build_report(events: Iterable[dict[str, Any]], *, since: int | None = None, until: int | None = None,
                 skills: Iterable[str] = (), publishers: Iterable[str] = (),
                 max_audit_age: dt.timedelta | None = None, generated_at: dt.datetime | str,
                 generated_by: str, project_version: str, journal_verification: JournalVerification,
                 since_requested: str | None = None, until_requested: str | None = None,
                 window_end_time: dt.datetime | None = None) -> Report:
    """The compliance report over ``events`` (exported shape, position order).

    ``since``/``until``: the window is ``since < position <= until`` (either open). Posture is the
    state at the window end (events before the window count); timelines and event-started
    findings only cover the window. ``skills``/``publishers`` narrow the report to those skill ids
    and to the versions signed for those publishers. ``window_end_time``: the time the window
    ends, when the caller resolved ``--until`` from a time (default: the time of the last event
    up to the window end); staleness of audits is judged at it. ``since_requested`` and
    ``until_requested`` echo what the user asked for (a position or a time), for the scope.
    """
    fold = ReportFold(since=since, until=until, watch_position=journal_verification.first_bad_position)
    for e in events:
        fold.feed(e)
    head = fold.head[0] if fold.head else 0
    window_end = head if until is None else min(until, head)
    end_time = window_end_time or fold.end_time()
    if end_time is not None and end_time.tzinfo is None:
        end_time = end_time.replace(tzinfo=dt.UTC)
    drafts = fold.findings + end_of_window_findings(
        fold, max_audit_age=max_audit_age, end_time=end_time, window_end=window_end,
        verification_ok=journal_verification.ok, first_bad=journal_verification.first_bad_position,
        verification_message=journal_verification.message)
    sel = _Selection(fold, set(skills), set(publishers))
    cited: dict[int, CitedEvent] = {}

    def cite(ref: CitedEvent) -> Evidence:
        cited.setdefault(ref.position, ref)
        return Evidence(position=ref.position, hash=ref.hash)

    findings = _findings([d for d in drafts if sel.finding(d)], cite)
    posture = [_posture(fold, s, v, cite) for s, v in sel.versions()]
    timelines = _timelines(fold, sel, cited)
    trust = _trust(fold, sel, cite, cited)
    rejections = [r for r in fold.rejections if sel.attributed(r.skill_id, r.publisher)]
    for r in rejections:
        cited.setdefault(r.position, _cited(r, "intake:" + r.artifact_sha256))
    other = _other_events(fold, sel, cited)
    checkpoint = _checkpoint(fold, window_end, journal_verification, cite)
    scope = Scope(
        journal_head=JournalHead(position=head, hash=fold.head[1] if fold.head else None),
        window=_window(fold, since, window_end, since_requested, until_requested, end_time),
        filters=Filters(skills=sorted(sel.skills), publishers=sorted(sel.publishers),
                        max_audit_age_seconds=int(max_audit_age.total_seconds()) if max_audit_age is not None
                        else None),
        generated_at=generated_at if isinstance(generated_at, str) else generated_at.isoformat(),
        generated_by=generated_by, project_version=project_version, policy_versions=list(fold.policy_versions),
        checkpoint=checkpoint, journal_verification=journal_verification)
    summary = _summary(journal_verification, findings, posture, timelines, fold.window_count)
    return Report(report_version=REPORT_VERSION, summary=summary, scope=scope, findings=findings, posture=posture,
                  timelines=timelines, trust=trust, rejections=rejections, other_events=other,
                  cited_events=[cited[p] for p in sorted(cited)])


class _Selection:
    """The ``--skill``/``--publisher`` filters. A skill is in when its id is selected (or no id
    is) and, with publishers given, one of its versions is signed for one of them; a version,
    entry or finding is in when its skill is and its publisher (when it has one) is selected."""

    def __init__(self, fold: ReportFold, skills: set[str], publishers: set[str]) -> None:
        self.fold, self.skills, self.publishers = fold, skills, publishers
        self.unfiltered = not skills and not publishers
        self.skill_ids = sorted(s for s in fold.skills if self._skill_in(fold.skills[s]))
        if publishers:
            self.trust_publishers: set[str] | None = set(publishers)
        elif skills:
            self.trust_publishers = {v.publisher for s in self.skill_ids for v in fold.skills[s].versions.values()}
        else:
            self.trust_publishers = None

    def _skill_in(self, s: SkillState) -> bool:
        if self.skills and s.skill_id not in self.skills:
            return False
        return not self.publishers or any(v.publisher in self.publishers for v in s.versions.values())

    def publisher_in(self, publisher: str | None) -> bool:
        return not self.publishers or publisher is None or publisher in self.publishers

    def versions(self) -> list[tuple[SkillState, VersionState]]:
        out = []
        for skill_id in self.skill_ids:
            s = self.fold.skills[skill_id]
            chosen = [v for v in s.versions.values() if v.ever_installed and self.publisher_in(v.publisher)]
            out += [(s, v) for v in sorted(chosen, key=_version_key)]
        return out

    def attributed(self, skill_id: str | None, publisher: str | None) -> bool:
        """An event naming (maybe) a skill and a publisher; unattributed ones only when unfiltered."""
        if self.unfiltered:
            return True
        if self.skills and skill_id not in self.skills:
            return False
        return not self.publishers or publisher in self.publishers

    def finding(self, d: FindingDraft) -> bool:
        if self.unfiltered or d.kind in _GLOBAL_FINDINGS:
            return True
        if d.kind == "artifact_rejected":
            return self.attributed(d.skill_id, d.publisher)
        if d.kind == "tofu_only_publisher":
            return self.trust_publishers is None or d.publisher in self.trust_publishers
        return d.skill_id in self.skill_ids and self.publisher_in(d.publisher)


def _version_key(v: VersionState) -> tuple[Any, ...]:
    parsed = parse_semver_lenient(v.version)
    return (parsed is None, parsed or (0, 0, 0), v.version)


def _cited(x: Any, stream: str) -> CitedEvent:
    kind = getattr(x, "kind", "artifact.rejected")
    return CitedEvent(position=x.position, hash=x.hash, kind=kind, recorded_at=x.recorded_at, stream=stream,
                      actor=x.actor)


def _cite_entry(cited: dict[int, CitedEvent], entry: TimelineEntry, stream: str) -> None:
    cited.setdefault(entry.position, _cited(entry, stream))


def _other_events(fold: ReportFold, sel: _Selection, cited: dict[int, CitedEvent]) -> list[TimelineEntry]:
    """Policy changes and checkpoints (they concern every skill), and events of streams the report
    does not know (only in an unfiltered report); the policy versions in force are cited too."""
    out = []
    for stream, entry in fold.other_events:
        if sel.unfiltered or stream.startswith(("policy:", "journal:")):
            _cite_entry(cited, entry, stream)
            out.append(entry)
    for pv in fold.policy_versions:
        if pv.position is not None and pv.hash is not None and pv.actor is not None:
            cited.setdefault(pv.position, CitedEvent(position=pv.position, hash=pv.hash, kind="policy.changed",
                                                     recorded_at=pv.recorded_at or "", stream="policy:audit",
                                                     actor=pv.actor))
    return out


def _findings(drafts: list[FindingDraft], cite: Any) -> list[Finding]:
    findings = [d.finish(cite) for d in drafts]
    findings.sort(key=lambda f: (SEVERITIES.index(f.severity), _KIND_ORDER[f.kind],
                                 f.evidence[0].position if f.evidence else 0, f.id))
    seen: dict[str, int] = {}
    out = []
    for f in findings:  # ids are unique by construction; never let a damaged journal make two alike
        n = seen[f.id] = seen.get(f.id, 0) + 1
        out.append(f if n == 1 else _with_id(f, f"{f.id}-{n}"))
    return out


def _with_id(f: Finding, new_id: str) -> Finding:
    import msgspec

    return msgspec.structs.replace(f, id=new_id)


def _posture(fold: ReportFold, s: SkillState, v: VersionState, cite: Any) -> VersionPosture:
    revoked = fold.key_revoked(v.publisher, v.key_hex)
    eligible, reasons = eligibility(installed=v.installed, status=v.status, key_revoked=revoked,
                                    last_audit_passed=v.last_audit.passed if v.last_audit else None,
                                    compat=v.compat_problem, overridden=is_overridden(v.status, v.status_code))
    refs = [r for r in (v.install_ref, v.last_audit_ref, v.status_ref) if r is not None]
    evidence = {r.position: cite(r) for r in refs}
    return VersionPosture(
        skill_id=s.skill_id, version=v.version, publisher=v.publisher, name=v.name, display_name=v.display_name,
        description=v.description, installed=v.installed, status=v.status, current=s.current == v.version,
        eligible=eligible, eligibility_reasons=reasons, trust_decision=v.trust_decision, key_id=v.key_id,
        key_revoked=revoked, payload_sha256=v.payload_sha256, artifact_sha256=v.artifact_sha256,
        installed_at=v.installed_at, last_audit=v.last_audit, status_reason_code=v.status_code,
        status_reason=v.status_reason, evidence=[evidence[p] for p in sorted(evidence)])


def _timelines(fold: ReportFold, sel: _Selection, cited: dict[int, CitedEvent]) -> list[SkillTimeline]:
    out = []
    for skill_id in sorted(fold.skills):
        s = fold.skills[skill_id]
        if not s.timeline or not (skill_id in sel.skill_ids or (sel.unfiltered and not s.versions)):
            continue
        entries = [e for publisher, e in s.timeline if sel.publisher_in(publisher)]
        for e in entries:
            _cite_entry(cited, e, f"skill:{skill_id}")
        if entries:
            out.append(SkillTimeline(skill_id=skill_id, entries=entries))
    return out


def _act(x: tuple[CitedEvent, str | None, dict[str, str | None]] | None, cite: Any) -> TrustAct | None:
    if x is None:
        return None
    ref, reason, facts = x
    cite(ref)
    return TrustAct(position=ref.position, hash=ref.hash, recorded_at=ref.recorded_at, actor=ref.actor,
                    reason=reason, first_skill_id=facts.get("first_skill_id"), first_version=facts.get("first_version"))


def _trust(fold: ReportFold, sel: _Selection, cite: Any, cited: dict[int, CitedEvent]) -> Trust:
    wanted = sel.trust_publishers
    keys = [KeyTrust(publisher=k.publisher, key_id=k.key_id, key_hex=k.key_hex, kind=k.kind, state=k.state,
                     allowlisted=_act(k.allowlisted, cite), pinned=_act(k.pinned, cite), revoked=_act(k.revoked, cite))
            for (publisher, _h), k in sorted(fold.keys.items()) if wanted is None or publisher in wanted]
    revocations = []
    for r in fold.revocations:
        if wanted is not None and r.publisher not in wanted:
            continue
        cite(r.ref)
        quarantined = []
        for skill_id, version, ref, delay in r.quarantined:
            cite(ref)
            quarantined.append(RevocationQuarantine(skill_id=skill_id, version=version, position=ref.position,
                                                    hash=ref.hash, recorded_at=ref.recorded_at, delay_seconds=delay))
        revocations.append(Revocation(
            publisher=r.publisher, key_id=r.key_id, key_hex=r.key_hex, position=r.ref.position, hash=r.ref.hash,
            recorded_at=r.ref.recorded_at, actor=r.ref.actor, reason=r.reason, quarantined=quarantined,
            not_quarantined=_unenforced(fold, r.publisher, r.key_hex)))
    events = []
    for publisher, entry in fold.trust_events:
        if wanted is None or publisher in wanted:
            _cite_entry(cited, entry, f"publisher:{publisher}")
            events.append(entry)
    return Trust(keys=keys, revocations=revocations, events=events)


def _unenforced(fold: ReportFold, publisher: str, key_hex: str) -> list[UnenforcedVersion]:
    """Installed versions signed by a revoked key that are not quarantined at the window end
    (only what is still revoked then: a key allowlisted again is trusted again)."""
    if not fold.key_revoked(publisher, key_hex):
        return []
    out = []
    for skill_id in sorted(fold.skills):
        for v in sorted(fold.skills[skill_id].versions.values(), key=_version_key):
            if v.installed and v.publisher == publisher and v.key_hex == key_hex and v.status != "quarantined":
                out.append(UnenforcedVersion(skill_id=skill_id, version=v.version, status=v.status))
    return out


def _checkpoint(fold: ReportFold, window_end: int, verification: JournalVerification,
                cite: Any) -> CheckpointCoverage:
    end = min(window_end, fold.last_content_position)
    if fold.checkpoint is None:
        return CheckpointCoverage(covering=None, statement="The journal holds no signed checkpoint.")
    cp, ref = fold.checkpoint
    if cp.covers_position < end:
        return CheckpointCoverage(covering=None, statement=(
            f"No signed checkpoint covers the window: the newest covers events up to position "
            f"{cp.covers_position}, the window's last event is at position {end}."))
    cite(ref)
    checked = {True: "journal verify checked its root hash and signature and found them good",
               False: "journal verify failed, so this checkpoint is not established either",
               None: "journal verify was not run, so its root hash and signature are not checked"}[verification.ok]
    return CheckpointCoverage(covering=cp, statement=(
        f"Checkpoint at position {cp.position} ({cp.recorded_at}, key {cp.key_id}) covers events up to position "
        f"{cp.covers_position}, which includes the window's last event at position {end}; {checked}."))


def _window(fold: ReportFold, since: int | None, window_end: int, since_requested: str | None,
            until_requested: str | None, end_time: dt.datetime | None) -> Window:
    first, last = fold.window_first, fold.window_last
    return Window(
        since_position=since, until_position=window_end, since_requested=since_requested,
        until_requested=until_requested, first_position=first["position"] if first else None,
        last_position=last["position"] if last else None,
        first_recorded_at=str(first.get("recorded_at")) if first else None,
        last_recorded_at=str(last.get("recorded_at")) if last else None,
        end_time=end_time.isoformat() if end_time is not None else None, event_count=fold.window_count)


def _summary(verification: JournalVerification, findings: list[Finding], posture: list[VersionPosture],
             timelines: list[SkillTimeline], events_in_window: int) -> Summary:
    counts = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES}
    if verification.ok is False:
        verdict = "journal_verification_failed"
    elif verification.ok is None:
        verdict = "journal_not_verified"
    else:
        verdict = "findings" if findings else "clean"
    installed = [p for p in posture if p.installed]
    return Summary(
        verdict=verdict, findings=SeverityCounts(**counts),  # type: ignore[arg-type]
        skills=len({p.skill_id for p in posture}), versions=len(posture),
        active_versions=sum(1 for p in installed if p.status == "active"),
        quarantined_versions=sum(1 for p in installed if p.status == "quarantined"),
        disabled_versions=sum(1 for p in installed if p.status == "disabled"),
        events_in_window=events_in_window, timeline_entries=sum(len(t.entries) for t in timelines))
