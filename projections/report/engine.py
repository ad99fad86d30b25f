"""``write_report``: the compliance report of a journal, streamed to a file.

1. The journal head is fixed first: the report covers the events up to it, whatever is
   appended meanwhile.
2. First pass (``fold.py``): every row up to the window end in position order, then the
   checkpoints after it. Skill streams are only registered.
3. Second pass (``skills.py``): each selected skill stream, by skill id, read on its own up to
   the window end; its posture and timeline are rendered into the spool's files at once.
4. The findings about the whole journal (a failed verification, TOFU-only publishers, a
   missing checkpoint), then the document, written in order from the spool (``writers.py``).

Memory holds one skill's versions, the publisher keys, the revocations and the audit policy
versions in force; everything that grows with the window (entries, findings, citations) is in
the spool, plus one bit per position up to the window end (the positions shown as entries, so
the appendix lists only the cited events that are not).

Deterministic: the same journal, window, filters and arguments give the same bytes (every
list has a defined order, times come from the journal; ``generated_at`` is the only other).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import msgspec

from skill_ledger.domain.events import topics_for_kinds

from .events import Row, decode, timestamp_of
from .fold import KIND_INDEX, Context, GlobalFold, Selection
from .model import (
    FINDING_KINDS,
    FINDING_RULES,
    REPORT_VERSION,
    SEVERITIES,
    CheckpointCoverage,
    CitedEvent,
    Filters,
    JournalHead,
    JournalVerification,
    KeyTrust,
    Revocation,
    Scope,
    SeverityCounts,
    Summary,
    TimelineEntry,
    TrustAct,
    VersionPosture,
    Window,
)
from .rules import FindingDraft, checkpoint_missing, journal_failed, tofu_only
from .skills import SkillFold
from .spool import Spool
from .state import parse_time
from .writers import Document, StreamedFinding, Writer, writer_for

_CHUNK = 256  # timeline entries rendered at a time


class ReportSource(Protocol):
    """The journal as the report reads it (``adapters.usecases.reports`` implements it over the
    journal recorders; ``build.EventsSource`` over a list of exported events)."""

    def head(self) -> tuple[int, str | None]:
        """The last position and its chain hash (0 and None: an empty journal)."""

    def rows(self, *, after: int = 0, until: int | None = None, topics: Sequence[str] = ()) -> Iterable[Row]:
        """Every row with ``after < position <= until`` (of these topics, if any), by position."""

    def stream_rows(self, originator_id: str, *, until: int | None,
                    topics: Sequence[str] = ()) -> Iterable[Row]:
        """The rows of one stream up to ``until`` (of these topics, if any), by position."""


@dataclass(frozen=True)
class ReportRequest:
    """What the caller asks for. ``since``/``until``: positions (the window is
    ``since < position <= until``; times are resolved by :func:`position_at_time` first).
    ``window_end_time``: the time the window ends when ``--until`` was a time (default: the time
    of the last event up to the window end); audit staleness is judged at it."""

    generated_at: dt.datetime | str
    generated_by: str
    project_version: str
    journal_verification: JournalVerification
    since: int | None = None
    until: int | None = None
    skills: Sequence[str] = ()
    publishers: Sequence[str] = ()
    max_audit_age: dt.timedelta | None = None
    window_end_time: dt.datetime | None = None
    since_requested: str | None = None
    until_requested: str | None = None


class ReportOutcome(msgspec.Struct, frozen=True):
    """What a written report covers and found (the command's own result)."""

    format: str
    journal_head: JournalHead
    window: Window
    summary: Summary
    journal_verification: JournalVerification


def position_at_time(source: ReportSource, t: dt.datetime, *, inclusive: bool, head: int | None = None) -> int:
    """The last position recorded before ``t`` (``inclusive``: at or before it), 0 if none.

    Times need not grow with positions (several writers, clocks): every event is looked at.
    Costs one read of the journal (only each event's envelope is decoded)."""
    from skill_ledger.projections.times import fixed, fixed_time

    bound = fixed(t)
    found = 0
    for row in source.rows(until=head):
        stamp = timestamp_of(row)
        if stamp is None:
            continue
        at = fixed_time(stamp)
        if at < bound or (inclusive and at == bound):
            found = row.position
    return found


def write_report(source: ReportSource, out: BinaryIO, fmt: str, request: ReportRequest, *,
                 workdir: Path) -> ReportOutcome:
    """Write the report over ``source`` in ``fmt`` to ``out``; ``workdir`` is an empty private
    directory for the spool (about as big as the report)."""
    writer = writer_for(fmt)
    head, head_hash = source.head()
    until = head if request.until is None else min(request.until, head)
    selection = Selection(set(request.skills), set(request.publishers))
    spool = Spool(workdir)
    try:
        run = _Run(source, writer, spool, request, Context(since=request.since, until=until, selection=selection,
                                                           spool=spool), head)
        run.first_pass()
        run.second_pass()
        doc = run.document(JournalHead(position=head, hash=head_hash))
        writer.document(doc, out)
        return ReportOutcome(format=fmt, journal_head=doc.scope.journal_head, window=doc.scope.window,
                             summary=doc.summary, journal_verification=request.journal_verification)
    finally:
        spool.close()


@dataclass
class _Totals:
    skills: int = 0
    versions: int = 0
    statuses: dict[str, int] = field(default_factory=lambda: {"active": 0, "quarantined": 0, "disabled": 0})
    timeline_entries: int = 0
    trust_publishers: set[str] = field(default_factory=set)


class _Sink:
    """A skill's output: posture rows and timeline entries, rendered into the spool's files
    (the timeline opens with the skill's first entry that passes the filters)."""

    def __init__(self, writer: Writer, spool: Spool, shown: bytearray, totals: _Totals) -> None:
        self.writer, self.spool, self.shown, self.totals = writer, spool, shown, totals
        self.skill_id = ""
        self.open = False
        self.pending: list[TimelineEntry] = []

    def start(self, skill_id: str) -> None:
        self.skill_id, self.open = skill_id, False

    def entry(self, entry: TimelineEntry) -> None:
        self.pending.append(entry)
        if len(self.pending) >= _CHUNK:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        if not self.open:
            self.spool.timelines.write(self.writer.timeline_open(self.skill_id))
            self.open = True
        self.spool.timelines.write(self.writer.timeline_entries(self.pending))
        for e in self.pending:
            self.shown[e.position >> 3] |= 1 << (e.position & 7)
        self.totals.timeline_entries += len(self.pending)
        self.pending.clear()

    def posture(self, rows: list[VersionPosture]) -> None:
        self.spool.posture.write(self.writer.posture(rows))
        self.totals.skills += 1
        self.totals.versions += len(rows)
        for p in rows:
            if p.installed and p.status in self.totals.statuses:
                self.totals.statuses[p.status] += 1

    def end(self) -> None:
        self._flush()
        if self.open:
            self.spool.timelines.write(self.writer.timeline_close())


class _Run:
    """One report being made (the steps of the module docstring)."""

    def __init__(self, source: ReportSource, writer: Writer, spool: Spool, request: ReportRequest, ctx: Context,
                 head: int) -> None:
        self.source, self.writer, self.spool, self.request, self.ctx = source, writer, spool, request, ctx
        self.head = head
        self.journal = GlobalFold(ctx, watch_position=request.journal_verification.first_bad_position)
        self.shown = bytearray((ctx.until >> 3) + 1)  # one bit per position shown as an entry
        self.totals = _Totals()
        self.end_time: dt.datetime | None = None

    def first_pass(self) -> None:
        for row in self.source.rows(until=self.ctx.until):
            self.journal.feed(row)
        if self.head > self.ctx.until:
            checkpoints = topics_for_kinds(["journal.checkpoint"])
            for row in self.source.rows(after=self.ctx.until, until=self.head, topics=checkpoints):
                self.journal.feed_checkpoint(row)
        end = self.request.window_end_time
        if end is None and self.journal.last_row is not None:
            end = parse_time(decode(self.journal.last_row).recorded_at)
        if end is not None and end.tzinfo is None:
            end = end.replace(tzinfo=dt.UTC)
        self.end_time = end

    def second_pass(self) -> None:
        selection = self.ctx.selection
        sink = _Sink(self.writer, self.spool, self.shown, self.totals)
        verified = topics_for_kinds(["skill.artifact_verified"])
        for skill_id, oid in self.spool.skills():
            if not selection.skill_wanted(skill_id):
                continue
            if selection.publishers and not self._signs_for(oid, verified):
                continue
            fold = SkillFold(self.ctx, self.journal, skill_id, sink, max_audit_age=self.request.max_audit_age,
                             end_time=self.end_time)
            sink.start(skill_id)
            for row in self.source.stream_rows(oid, until=self.ctx.until):
                fold.feed(row)
            fold.finish()
            sink.end()
            self.totals.trust_publishers |= fold.publishers

    def _signs_for(self, oid: str, verified: list[str]) -> bool:
        """With ``--publisher``: whether a version of the skill is signed for one of them (the
        rule of ``SkillFold._artifact_verified``, which is where versions are made)."""
        for row in self.source.stream_rows(oid, until=self.ctx.until, topics=verified):
            d = decode(row).data
            if isinstance(d.get("version"), str) and d.get("publisher") in self.ctx.selection.publishers:
                return True
        return False

    # --- the document -----------------------------------------------------------------------------

    def _trust_publishers(self) -> set[str] | None:
        selection = self.ctx.selection
        if selection.publishers:
            return set(selection.publishers)
        return self.totals.trust_publishers if selection.skills else None

    def _cite(self, ref: CitedEvent) -> Any:
        return self.spool.cite(ref)

    def document(self, head: JournalHead) -> Document:
        """Everything left to decide, then the document's parts (read from the spool as written)."""
        j, spool, verification = self.journal, self.spool, self.request.journal_verification
        wanted = self._trust_publishers()
        if verification.ok is False:
            self.ctx.finding(journal_failed(j.ref_of(j.watched), verification.first_bad_position,
                                            verification.message))
        for draft in tofu_only(j.keys, j.allowlisting_publishers):
            if wanted is None or draft.publisher in wanted:
                self.ctx.finding(draft)
        end = min(self.ctx.until, j.last_content_position)
        missing = checkpoint_missing(j.checkpoint, end, j.ref_of(j.last_content))
        if missing is not None:
            self.ctx.finding(missing)
        keys = [KeyTrust(publisher=k.publisher, key_id=k.key_id, key_hex=k.key_hex, kind=k.kind, state=k.state,
                         allowlisted=self._act(k.allowlisted), pinned=self._act(k.pinned), revoked=self._act(k.revoked))
                for (publisher, _h), k in sorted(j.keys.items()) if wanted is None or publisher in wanted]
        revocations = [r for r in j.revocations if wanted is None or r.publisher in wanted]
        for r in revocations:
            self._cite(r.ref)
        for pv in j.policy_versions:
            if pv.position is not None and pv.hash is not None and pv.actor is not None:
                self._cite(CitedEvent(position=pv.position, hash=pv.hash, kind="policy.changed",
                                      recorded_at=pv.recorded_at or "", stream="policy:audit", actor=pv.actor))
        coverage = self._coverage(end)
        if head.position:  # the head is cited too: the scope names it by position and hash
            for row in self.source.rows(after=head.position - 1, until=head.position):
                self._cite(self.ctx.ref(decode(row)))
        spool.seal()
        groups, total = self._finding_groups()
        scope = Scope(journal_head=head, window=self._window(), filters=self._filters(),
                      generated_at=self._generated_at(), generated_by=self.request.generated_by,
                      project_version=self.request.project_version, policy_versions=list(j.policy_versions),
                      checkpoint=coverage, journal_verification=verification)
        summary = self._summary(total)
        return Document(
            summary=summary, scope=scope, finding_groups=groups, posture=lambda: _chunks(spool.posture),
            timelines=lambda: _chunks(spool.timelines), keys=keys, revocations=self._revocations(revocations),
            trust_events=self._shown((e for _p, e in spool.trust_events(wanted))),
            rejections=self._shown(spool.rejections()), other_events=self._shown(spool.other_events()),
            cited=(c for c in spool.cited() if not self._is_shown(c.position)))

    def _act(self, x: tuple[CitedEvent, str | None, dict[str, str | None]] | None) -> TrustAct | None:
        if x is None:
            return None
        ref, reason, facts = x
        self._cite(ref)
        return TrustAct(position=ref.position, hash=ref.hash, recorded_at=ref.recorded_at, actor=ref.actor,
                        reason=reason, first_skill_id=facts.get("first_skill_id"),
                        first_version=facts.get("first_version"))

    def _revocations(self, revocations: list[Any]) -> Iterator[Revocation]:
        for r in revocations:
            unenforced = (self.spool.unenforced_of(r.publisher, r.key_hex)
                          if self.journal.key_revoked(r.publisher, r.key_hex) else [])
            yield Revocation(publisher=r.publisher, key_id=r.key_id, key_hex=r.key_hex, position=r.ref.position,
                             hash=r.ref.hash, recorded_at=r.ref.recorded_at, actor=r.ref.actor, reason=r.reason,
                             quarantined=self.spool.revocation_quarantines(r.ref.position),
                             not_quarantined=unenforced)

    def _is_shown(self, position: int) -> bool:
        i = position >> 3
        return i < len(self.shown) and bool(self.shown[i] & (1 << (position & 7)))

    def _shown(self, entries: Iterable[Any]) -> Iterator[Any]:
        """Entries as they are written: from then on they are their events' citations."""
        for e in entries:
            if e.position >> 3 < len(self.shown):
                self.shown[e.position >> 3] |= 1 << (e.position & 7)
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
        self._cite(ref)
        checked = {True: "journal verify checked its root hash and signature and found them good",
                   False: "journal verify failed, so this checkpoint is not established either",
                   None: "journal verify was not run, so its root hash and signature are not checked"}[verification.ok]
        return CheckpointCoverage(covering=cp, statement=(
            f"Checkpoint at position {cp.position} ({cp.recorded_at}, key {cp.key_id}) covers events up to position "
            f"{cp.covers_position}, which includes the window's last event at position {end}; {checked}."))

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
                for f in self.spool.findings_of(KIND_INDEX[kind]):
                    if f.id in duplicates:  # a damaged journal may make two alike: never two with one id
                        n = seen[f.id] = seen.get(f.id, 0) + 1
                        if n > 1:
                            f = msgspec.structs.replace(f, id=f"{f.id}-{n}")
                    yield StreamedFinding(f)

    def _rejection_findings(self) -> Iterator[StreamedFinding]:
        for first, last, count in self.spool.rejection_groups():
            refs = [CitedEvent(position=x.position, hash=x.hash, kind="artifact.rejected", recorded_at=x.recorded_at,
                               stream=f"intake:{x.artifact_sha256}", actor=x.actor) for x in (first, last)]
            finding = FindingDraft.rejected(first, refs[0]).aggregated(count, refs[1])
            yield StreamedFinding(finding, self.spool.rejection_evidence(first.artifact_sha256, first.error_code),
                                  has_evidence=True)

    def _denial_findings(self) -> Iterator[StreamedFinding]:
        for skill_id, version, tool, code, publisher, first, last, count in self.spool.denial_groups():
            finding = FindingDraft.denied(skill_id, version, publisher, tool, code, first).aggregated(count, last)
            yield StreamedFinding(finding, self.spool.denial_evidence(skill_id, version, tool, code),
                                  has_evidence=True)

    def _window(self) -> Window:
        j, request = self.journal, self.request
        first, last = decode(j.window_first) if j.window_first else None, decode(j.window_last) if j.window_last \
            else None
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
                       versions=t.versions, active_versions=t.statuses["active"],
                       quarantined_versions=t.statuses["quarantined"], disabled_versions=t.statuses["disabled"],
                       events_in_window=self.journal.window_count, timeline_entries=t.timeline_entries)


def _chunks(f: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    f.flush()
    f.seek(0)
    while True:
        chunk = f.read(size)
        if not chunk:
            return
        yield chunk


__all__ = ["REPORT_VERSION", "ReportOutcome", "ReportRequest", "ReportSource", "position_at_time", "write_report"]
