"""The document's parts, once both passes are done (``engine.py``).

What is left to decide is decided here (the findings about the whole journal, the trust
section's filter, the checkpoint coverage, the cited keys, revocations, policy versions and
journal head), then the spool is sealed and the :class:`~.writers.Document` handed to the
writer reads every big part from it as it is written: findings by severity and kind
(aggregated denials and rejections with their evidence streamed), the posture and timeline
files, the trust, rejection and other entries (marked shown as they go), and last the appendix
of the cited events that are not shown as entries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from .events import decode
from .fold import KIND_INDEX, Context, GlobalFold
from .model import (
    FINDING_KINDS,
    FINDING_RULES,
    SEVERITIES,
    CheckpointCoverage,
    CitedEvent,
    Evidence,
    Filters,
    JournalHead,
    KeyTrust,
    Revocation,
    Scope,
    SeverityCounts,
    Summary,
    TrustAct,
    Window,
)
from .rows import RenderedFinding
from .rules import FindingDraft, checkpoint_missing, journal_failed, tofu_only
from .skillpass import Shown, Totals
from .spool import Spool
from .state import FactsIndex, KeyAct, KeyState, RevocationState
from .writers import Document, StreamedFinding


class DocumentParts:
    """Builds the :class:`Document` of a report whose passes are done."""

    def __init__(self, ctx: Context, journal: GlobalFold, facts: FactsIndex, totals: Totals, shown: Shown,
                 request: Any, end_time: dt.datetime | None, source: Any) -> None:
        self.ctx, self.journal, self.facts, self.totals, self.shown = ctx, journal, facts, totals, shown
        self.spool: Spool = ctx.spool
        self.request, self.end_time, self.source = request, end_time, source

    def document(self, head: JournalHead) -> Document:
        j, spool, verification = self.journal, self.spool, self.request.journal_verification
        wanted = self._trust_publishers()
        if verification.ok is False:
            self.ctx.finding(journal_failed(j.ref_of(j.watched), verification.first_bad_position,
                                            verification.message))
        for draft in tofu_only(spool.keys("kind = 'tofu' AND state = 'active'"), j.allowlisting_publishers):
            if wanted is None or draft.publisher in wanted:
                self.ctx.finding(draft)
        end = min(self.ctx.until, j.last_content_position)
        missing = checkpoint_missing(j.checkpoint, end, j.ref_of(j.last_content))
        if missing is not None:
            self.ctx.finding(missing)
        for k in self._keys(wanted):  # their acts are cited: the appendix shows those outside the window
            for act in (k.allowlisted, k.pinned, k.revoked):
                if act is not None:
                    spool.cite(act.ref)
        for r in self._revocation_states(wanted):
            spool.cite(r.ref)
        for pv in j.policy_versions:
            if pv.position is not None and pv.hash is not None and pv.actor is not None:
                spool.cite(CitedEvent(position=pv.position, hash=pv.hash, kind="policy.changed",
                                      recorded_at=pv.recorded_at or "", stream="policy:audit", actor=pv.actor))
        coverage = self._coverage(end)
        if head.position:  # the head is cited too: the scope names it by position and hash
            for row in self.source.rows(after=head.position - 1, until=head.position):
                spool.cite(self.ctx.ref(decode(row)))
        spool.seal()
        groups, total = self._finding_groups()
        scope = Scope(journal_head=head, window=self._window(), filters=self._filters(),
                      generated_at=self._generated_at(), generated_by=self.request.generated_by,
                      project_version=self.request.project_version, policy_versions=list(j.policy_versions),
                      checkpoint=coverage, journal_verification=verification)
        return Document(
            summary=self._summary(total), scope=scope, finding_groups=groups,
            posture=lambda: spool.chunks("posture"), timelines=lambda: spool.chunks("timelines"),
            keys=(self._key_trust(k) for k in self._keys(wanted)), revocations=self._revocations(wanted),
            trust_events=self._shown((e for _p, e in spool.trust_events(wanted))),
            rejections=self._shown(spool.rejections()), other_events=self._shown(spool.other_events()),
            cited=spool.cited(self.shown))

    def _trust_publishers(self) -> set[str] | None:
        """The publishers whose keys and revocations are shown (None: all)."""
        selection = self.ctx.selection
        if selection.publishers:
            return set(selection.publishers)
        return set(self.totals.trust_publishers) if selection.skills else None

    def _keys(self, wanted: set[str] | None) -> Iterator[KeyState]:
        return (k for k in self.spool.keys() if wanted is None or k.publisher in wanted)

    def _revocation_states(self, wanted: set[str] | None) -> Iterator[RevocationState]:
        return (r for r in self.spool.revocations() if wanted is None or r.publisher in wanted)

    @staticmethod
    def _key_trust(k: KeyState) -> KeyTrust:
        def act(a: KeyAct | None) -> TrustAct | None:
            if a is None:
                return None
            return TrustAct(position=a.ref.position, hash=a.ref.hash, recorded_at=a.ref.recorded_at, actor=a.ref.actor,
                            reason=a.reason, first_skill_id=a.first_skill_id, first_version=a.first_version)

        return KeyTrust(publisher=k.publisher, key_id=k.key_id, key_hex=k.key_hex, kind=k.kind, state=k.state,
                        allowlisted=act(k.allowlisted), pinned=act(k.pinned), revoked=act(k.revoked))

    def _revocations(self, wanted: set[str] | None) -> Iterator[Revocation]:
        for r in self._revocation_states(wanted):
            unenforced = self.spool.unenforced_of(r.publisher, r.key_hex) if self.facts.key_revoked(
                r.publisher, r.key_hex) else []
            yield Revocation(publisher=r.publisher, key_id=r.key_id, key_hex=r.key_hex, position=r.ref.position,
                             hash=r.ref.hash, recorded_at=r.ref.recorded_at, actor=r.ref.actor, reason=r.reason,
                             quarantined=self.spool.revocation_quarantines(r.ref.position),
                             not_quarantined=unenforced)

    def _shown(self, entries: Iterable[Any]) -> Iterator[Any]:
        """Entries as they are written: from then on they are their events' citations."""
        for e in entries:
            self.shown.add(e.position)
            yield e

    def _coverage(self, end: int) -> CheckpointCoverage:
        j, verification = self.journal, self.request.journal_verification
        if j.checkpoint is None:
            return CheckpointCoverage(covering=None, statement="The journal holds no signed checkpoint.")
        cp, ref = j.checkpoint
        if cp.covers_position < end:
            return CheckpointCoverage(covering=None, statement=(
                f"No signed checkpoint covers the window: the newest covers events up to position "
                f"{cp.covers_position}, the window's last event is at position {end}."))
        self.spool.cite(ref)
        checked = {True: "journal verify checked its root hash and signature and found them good",
                   False: "journal verify failed, so this checkpoint is not established either",
                   None: "journal verify was not run, so its root hash and signature are not checked"}[verification.ok]
        return CheckpointCoverage(covering=cp, statement=(
            f"Checkpoint at position {cp.position} ({cp.recorded_at}, key {cp.key_id}) covers events up to position "
            f"{cp.covers_position}, which includes the window's last event at position {end}; {checked}."))

    # --- findings ---------------------------------------------------------------------------------

    def _finding_groups(self) -> tuple[list[tuple[str, int, Iterator[StreamedFinding]]], dict[str, int]]:
        counts = {k: (self.spool.rejection_group_count() if k == "artifact_rejected" else
                      self.spool.denial_group_count() if k == "execution_denied" else
                      self.spool.finding_count(KIND_INDEX[k])) for k in FINDING_KINDS}
        total = {s: sum(n for k, n in counts.items() if FINDING_RULES[k][0] == s) for s in SEVERITIES}
        duplicates = self.spool.duplicate_finding_ids()
        groups = [(s, total[s], self._findings_of(s, duplicates)) for s in SEVERITIES if total[s]]
        return groups, total

    def _findings_of(self, severity: str, duplicates: set[str]) -> Iterator[StreamedFinding]:
        seen: dict[str, int] = {}
        for kind in FINDING_KINDS:
            if FINDING_RULES[kind][0] != severity:
                continue
            if kind == "artifact_rejected":
                yield from self._rejection_findings()
            elif kind == "execution_denied":
                yield from self._denial_findings()
            else:
                for fid, text, finding in self.spool.findings_of(KIND_INDEX[kind]):
                    if fid not in duplicates:
                        yield RenderedFinding(text) if text is not None else StreamedFinding(finding())
                        continue
                    # a damaged journal may make two alike: never two with one id
                    f, n = finding(), seen.get(fid, 0) + 1
                    seen[fid] = n
                    yield StreamedFinding(f if n == 1 else msgspec.structs.replace(f, id=f"{fid}-{n}"))

    def _rejection_findings(self) -> Iterator[StreamedFinding]:
        for first, last, count in self.spool.rejection_groups():
            refs = [CitedEvent(position=x.position, hash=x.hash, kind="artifact.rejected", recorded_at=x.recorded_at,
                               stream=f"intake:{x.artifact_sha256}", actor=x.actor) for x in (first, last)]
            finding = FindingDraft.rejected(first, refs[0]).aggregated(count, refs[1])
            evidence = (_alone(first) if count == 1 else
                        self.spool.rejection_evidence(first.artifact_sha256, first.error_code))
            yield StreamedFinding(finding, evidence)

    def _denial_findings(self) -> Iterator[StreamedFinding]:
        for skill_id, version, tool, code, publisher, first, last, count in self.spool.denial_groups():
            finding = FindingDraft.denied(skill_id, version, publisher, tool, code, first).aggregated(count, last)
            evidence = _alone(first) if count == 1 else self.spool.denial_evidence(skill_id, version, tool, code)
            yield StreamedFinding(finding, evidence)

    # --- scope and summary --------------------------------------------------------------------------

    def _window(self) -> Window:
        j, request = self.journal, self.request
        first = decode(j.window_first) if j.window_first else None
        last = decode(j.window_last) if j.window_last else None
        return Window(
            since_position=request.since, until_position=self.ctx.until, since_requested=request.since_requested,
            until_requested=request.until_requested, first_position=first.position if first else None,
            last_position=last.position if last else None, first_recorded_at=first.recorded_at if first else None,
            last_recorded_at=last.recorded_at if last else None,
            end_time=self.end_time.isoformat() if self.end_time is not None else None, event_count=j.window_count)

    def _filters(self) -> Filters:
        age = self.request.max_audit_age
        return Filters(skills=sorted(set(self.request.skills)), publishers=sorted(set(self.request.publishers)),
                       max_audit_age_seconds=int(age.total_seconds()) if age is not None else None)

    def _generated_at(self) -> str:
        g = self.request.generated_at
        return g if isinstance(g, str) else g.isoformat()

    def _summary(self, findings: dict[str, int]) -> Summary:
        verification, t = self.request.journal_verification, self.totals
        if verification.ok is False:
            verdict = "journal_verification_failed"
        elif verification.ok is None:
            verdict = "journal_not_verified"
        else:
            verdict = "findings" if any(findings.values()) else "clean"
        return Summary(verdict=verdict, findings=SeverityCounts(**findings), skills=t.skills,  # type: ignore[arg-type]
                       versions=t.versions, active_versions=t.active, quarantined_versions=t.quarantined,
                       disabled_versions=t.disabled, events_in_window=self.journal.window_count,
                       timeline_entries=t.timeline_entries)


def _alone(event: Any) -> list[Evidence]:
    """The evidence of a group of one (the spool's query would read just this row)."""
    return [Evidence(position=event.position, hash=event.hash)]
