"""The second pass over a range of skills, in this process or in another one.

``fold_skills`` folds the given skill streams (in skill id order) into a spool: posture rows and
timelines rendered into its files, findings, citations, denials and revocation quarantines into
its tables. It needs only the source, the window, the filters and the first pass's
:class:`~.state.JournalFacts`, so the skills can be split into contiguous ranges of skill ids
folded side by side (:class:`SkillJob`, ``run_skill_job``: a worker process runs one) and the
ranges' spools merged in order (``Spool.absorb``): the document is the same whatever the split.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import msgspec

from skill_ledger.domain.events import topics_for_kinds

from .events import Row, decode
from .fold import Context, Selection
from .model import TimelineEntry, VersionPosture
from .skills import SkillFold
from .spool import Spool
from .state import FactsIndex, JournalFacts
from .writers import Writer, writer_for

CHUNK = 256  # timeline entries rendered at a time


class StreamSource(Protocol):
    def stream_rows(self, originator_id: str, *, until: int | None, topics: Sequence[str] = ()) -> Iterable[Row]: ...


class Totals(msgspec.Struct):
    """What the summary counts, for a range of skills."""

    skills: int = 0
    versions: int = 0
    active: int = 0
    quarantined: int = 0
    disabled: int = 0
    timeline_entries: int = 0
    trust_publishers: list[str] = []  # publishers of the versions folded (the trust filter of --skill)

    def add(self, other: Totals) -> None:
        for name in ("skills", "versions", "active", "quarantined", "disabled", "timeline_entries"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.trust_publishers = sorted(set(self.trust_publishers) | set(other.trust_publishers))


class Shown:
    """One bit per journal position up to the window end: the events shown as entries (from
    then on their own citations, so the appendix leaves them out)."""

    def __init__(self, until: int, bits: bytes | None = None) -> None:
        self.bits = bytearray(bits) if bits is not None else bytearray((until >> 3) + 1)

    def add(self, position: int) -> None:
        i = position >> 3
        if i < len(self.bits):
            self.bits[i] |= 1 << (position & 7)

    def __contains__(self, position: int) -> bool:
        i = position >> 3
        return i < len(self.bits) and bool(self.bits[i] & (1 << (position & 7)))

    def merge(self, other: bytes) -> None:
        n = len(self.bits)
        merged = int.from_bytes(self.bits, "little") | int.from_bytes(other[:n], "little")
        self.bits[:] = merged.to_bytes(n, "little")


class _Sink:
    """A skill's output: posture rows and timeline entries, rendered into the spool's files
    (the timeline opens with the skill's first entry that passes the filters)."""

    def __init__(self, writer: Writer, spool: Spool, shown: Shown, totals: Totals) -> None:
        self.writer, self.spool, self.shown, self.totals = writer, spool, shown, totals
        self.skill_id = ""
        self.open = False
        self.pending: list[TimelineEntry] = []

    def start(self, skill_id: str) -> None:
        self.skill_id, self.open = skill_id, False

    def entry(self, entry: TimelineEntry) -> None:
        self.pending.append(entry)
        if len(self.pending) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        if not self.open:
            self.spool.timelines.write(self.writer.timeline_open(self.skill_id))
            self.open = True
        self.spool.timelines.write(self.writer.timeline_entries(self.pending))
        bits = self.shown.bits
        for e in self.pending:  # Shown.add, inlined: once per entry
            bits[e.position >> 3] |= 1 << (e.position & 7)
        self.totals.timeline_entries += len(self.pending)
        self.pending.clear()

    def posture(self, rows: list[VersionPosture]) -> None:
        self.spool.posture.write(self.writer.posture(rows))
        t = self.totals
        t.skills += 1
        t.versions += len(rows)
        for p in rows:
            if p.installed and p.status in ("active", "quarantined", "disabled"):
                setattr(t, p.status, getattr(t, p.status) + 1)

    def end(self) -> None:
        self._flush()
        if self.open:
            self.spool.timelines.write(self.writer.timeline_close())


def fold_skills(source: StreamSource, ctx: Context, facts: FactsIndex, skills: Iterable[tuple[str, str]],
                writer: Writer, shown: Shown, *, max_audit_age: dt.timedelta | None,
                end_time: dt.datetime | None, before_each: Callable[[], None] | None = None) -> Totals:
    """Fold ``skills`` ((skill id, originator id), by skill id) into ``ctx.spool``. ``before_each``
    runs before every skill (a worker checks that its parent is still there)."""
    totals = Totals()
    publishers: set[str] = set()
    selection = ctx.selection
    sink = _Sink(writer, ctx.spool, shown, totals)
    verified = topics_for_kinds(["skill.artifact_verified"])
    for skill_id, oid in skills:
        if before_each is not None:
            before_each()
        if not selection.skill_wanted(skill_id):
            continue
        if selection.publishers and not _signs_for(source, oid, ctx.until, verified, selection):
            continue
        fold = SkillFold(ctx, facts, skill_id, sink, max_audit_age=max_audit_age, end_time=end_time)
        sink.start(skill_id)
        for row in source.stream_rows(oid, until=ctx.until):
            fold.feed(row)
        sink.end()  # its entries are shown before the posture cites them
        fold.finish()
        publishers |= fold.publishers
    ctx.spool.flush()
    totals.trust_publishers = sorted(publishers)
    return totals


def _signs_for(source: StreamSource, oid: str, until: int, verified: list[str], selection: Selection) -> bool:
    """With ``--publisher``: whether a version of the skill is signed for one of them (the rule
    of ``SkillFold._artifact_verified``, which is where versions are made)."""
    for row in source.stream_rows(oid, until=until, topics=verified):
        d = decode(row).data
        if isinstance(d.get("version"), str) and d.get("publisher") in selection.publishers:
            return True
    return False


# --- a range of skills in another process --------------------------------------------------------


class SkillJob(msgspec.Struct, frozen=True):
    """Everything a worker needs to fold a range of skills (sent as MessagePack)."""

    format: str
    since: int | None
    until: int
    skills_filter: list[str]
    publishers_filter: list[str]
    max_audit_age_seconds: float | None
    end_time: str | None
    facts: JournalFacts
    skills: list[tuple[str, str]]  # (skill id, originator id), by skill id


class SkillJobResult(msgspec.Struct, frozen=True):
    totals: Totals


RESULT_FILE = "result.msgpack"
SHOWN_FILE = "shown"


def run_skill_job(source: StreamSource, job: SkillJob, workdir: Path, *,
                  before_each: Callable[[], None] | None = None) -> SkillJobResult:
    """Fold a job's skills into a spool in ``workdir`` (what the parent then absorbs)."""
    writer = writer_for(job.format)
    spool = Spool(workdir, render_finding=writer.finding_text)
    try:
        ctx = Context(since=job.since, until=job.until, selection=Selection(set(job.skills_filter),
                                                                            set(job.publishers_filter)), spool=spool)
        shown = Shown(job.until)
        age = dt.timedelta(seconds=job.max_audit_age_seconds) if job.max_audit_age_seconds is not None else None
        end = dt.datetime.fromisoformat(job.end_time) if job.end_time else None
        totals = fold_skills(source, ctx, job.facts.index(), job.skills, writer, shown,
                             max_audit_age=age, end_time=end, before_each=before_each)
        spool.commit()
        (workdir / SHOWN_FILE).write_bytes(bytes(shown.bits))
        result = SkillJobResult(totals=totals)
        (workdir / RESULT_FILE).write_bytes(msgspec.msgpack.encode(result))
        return result
    finally:
        spool.close()


def read_job_result(workdir: Path) -> tuple[SkillJobResult, bytes]:
    result = msgspec.msgpack.decode((workdir / RESULT_FILE).read_bytes(), type=SkillJobResult)
    return result, (workdir / SHOWN_FILE).read_bytes()


class SkillWorkers(Protocol):
    """Runs skill jobs in other processes (``adapters.usecases.report_workers``)."""

    count: int
    min_events: int  # skill events from which a second process pays (a fork starts faster)

    def spawn(self, workdir: Path, fmt: str) -> Any:
        """Start a worker for a report in ``fmt`` that gets ready and waits for its job. The result
        has ``run(job)`` (hand it its job), ``wait()`` (raises unless the worker succeeded and
        wrote its result in ``workdir``) and ``kill()`` (also of a worker given no job)."""
