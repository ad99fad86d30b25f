"""``write_report``: the compliance report of a journal, streamed to a file.

1. The journal head is fixed first: the report covers the events up to it, whatever is
   appended meanwhile.
2. First pass (``fold.py``): every row up to the window end in position order, then the
   checkpoints after it. Skill streams are only registered.
3. Second pass (``skills.py``, ``skillpass.py``): each selected skill stream, by skill id, read
   on its own up to the window end; its posture and timeline are rendered into the spool's
   files at once. With workers, contiguous ranges of skill ids (about as many events each) are
   folded side by side in other processes, each into a spool of its own, appended in order.
4. The findings about the whole journal (a failed verification, TOFU-only publishers, a
   missing checkpoint), then the document, written in order from the spool (``document.py``,
   ``writers.py``).

Memory holds one skill's versions, the publisher keys, the revocations and the audit policy
versions in force; everything that grows with the window (entries, findings, citations) is in
the spool, plus one bit per position up to the window end (the positions shown as entries, so
the appendix lists only the cited events that are not).

Deterministic: the same journal, window, filters and arguments give the same bytes (every
list has a defined order, times come from the journal; ``generated_at`` is the only other).
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import msgspec

from skill_ledger.domain.events import topics_for_kinds

from .document import DocumentParts
from .events import Row, decode, timestamp_of
from .fold import Context, GlobalFold, Selection
from .model import REPORT_VERSION, JournalHead, JournalVerification, Summary, Window
from .skillpass import SHOWN_FILE, Shown, SkillJob, SkillWorkers, Totals, fold_skills, read_job_result, run_skill_job
from .spool import Spool
from .state import JournalFacts, parse_time
from .writers import Writer, writer_for

# Below this many skill events, a second process costs more than it saves (a new interpreter;
# a fork starts faster: ``adapters.usecases.report_workers.FORK_MIN_EVENTS``).
SHARDED_MIN_EVENTS = 20_000


class ReportSource(Protocol):
    """The journal as the report reads it (``adapters.usecases.reports`` implements it over the
    journal recorders; ``build.EventsSource`` over a list of exported events). A source may also
    have ``scan(until=...)``: the rows of ``rows(until=...)`` for the first pass, whose states
    may be read only when asked for."""

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


def write_report(source: ReportSource, out: BinaryIO, fmt: str, request: ReportRequest, *, workdir: Path,
                 workers: SkillWorkers | None = None, notify: Callable[[str], None] | None = None,
                 sharded_min_events: int | None = None) -> ReportOutcome:
    """Write the report over ``source`` in ``fmt`` to ``out``. ``workdir``: an empty private
    directory for the spool (about as big as the report). ``workers``: fold ranges of skills in
    other processes when the skill streams hold ``sharded_min_events`` events or more (the
    document is the same; None: the workers' own ``min_events``). ``notify``: one-line notices (a
    failed worker)."""
    writer = writer_for(fmt)
    if sharded_min_events is None:
        sharded_min_events = workers.min_events if workers is not None else SHARDED_MIN_EVENTS
    head, head_hash = source.head()
    until = head if request.until is None else min(request.until, head)
    (workdir / "main").mkdir()
    spool = Spool(workdir / "main", render_finding=writer.finding_text)
    run: _Run | None = None
    try:
        ctx = Context(since=request.since, until=until, selection=Selection(set(request.skills),
                                                                            set(request.publishers)), spool=spool)
        run = _Run(source, writer, request, ctx, head, workdir, notify)
        if workers is not None and until >= sharded_min_events:  # the second pass may need them: start them now
            run.spawn(workers)
        run.first_pass()
        run.second_pass(sharded=ctx.spool.skill_events() >= sharded_min_events)
        parts = DocumentParts(ctx, run.journal, run.facts.index(), run.totals, run.shown, request, run.end_time,
                              source)
        doc = parts.document(JournalHead(position=head, hash=head_hash))
        writer.document(doc, out)
        return ReportOutcome(format=fmt, journal_head=doc.scope.journal_head, window=doc.scope.window,
                             summary=doc.summary, journal_verification=request.journal_verification)
    finally:
        if run is not None:
            run.kill_idle()
        spool.close()


class _Run:
    """The two passes of one report (the steps of the module docstring)."""

    def __init__(self, source: ReportSource, writer: Writer, request: ReportRequest, ctx: Context, head: int,
                 workdir: Path, notify: Callable[[str], None] | None) -> None:
        self.source, self.writer, self.request, self.ctx = source, writer, request, ctx
        self.spool = ctx.spool
        self.head, self.workdir, self.notify = head, workdir, notify
        self.journal = GlobalFold(ctx, watch_position=request.journal_verification.first_bad_position)
        self.shown = Shown(ctx.until)
        self.totals = Totals()
        self.end_time: dt.datetime | None = None
        self.facts = JournalFacts(revoked_keys=[], revocations=[])
        self.idle: list[tuple[Path, Any]] = []  # workers spawned, not yet given a range

    def first_pass(self) -> None:
        # a source may offer a cheaper read for this pass (``scan``: states read only when asked for)
        scan = getattr(self.source, "scan", self.source.rows)
        self.journal.feed_all(scan(until=self.ctx.until))
        if self.head > self.ctx.until:
            checkpoints = topics_for_kinds(["journal.checkpoint"])
            for row in self.source.rows(after=self.ctx.until, until=self.head, topics=checkpoints):
                self.journal.feed_checkpoint(row)
        self.journal.finish()
        end = self.request.window_end_time
        if end is None and self.journal.last_row is not None:
            end = parse_time(decode(self.journal.last_row).recorded_at)
        if end is not None and end.tzinfo is None:
            end = end.replace(tzinfo=dt.UTC)
        self.end_time = end

    def spawn(self, workers: SkillWorkers) -> None:
        """Start the worker processes before the first pass: they get ready (imports, templates,
        the journal) meanwhile, then wait for a range of skills (one fewer than ``workers.count``:
        this process folds the first range)."""
        for i in range(1, workers.count):
            directory = self.workdir / f"range-{i}"
            directory.mkdir()
            self.idle.append((directory, workers.spawn(directory, self.writer.fmt)))

    def kill_idle(self) -> None:
        """Stop the workers given no range (or all of them, when the report failed)."""
        for _directory, worker in self.idle:
            worker.kill()
        self.idle.clear()

    def second_pass(self, *, sharded: bool) -> None:
        """Fold the skills: the first range here, the others in the spawned workers (when the
        journal is big enough), each into its own spool, absorbed in range order."""
        facts = self.facts = self.journal.facts()
        ranges = self.spool.skill_ranges(len(self.idle) + 1 if sharded else 1)
        started: list[tuple[Path, SkillJob, Any]] = []
        try:
            for first, stop in ranges[1:]:
                job = self._job(facts, list(self.spool.skills(first, stop)))
                directory, worker = self.idle.pop(0)
                worker.run(job)
                started.append((directory, job, worker))
            self.kill_idle()
            first, stop = ranges[0]
            self.totals.add(fold_skills(self.source, self.ctx, facts.index(), self.spool.skills(first, stop),
                                        self.writer, self.shown, max_audit_age=self.request.max_audit_age,
                                        end_time=self.end_time))
            for directory, job, worker in started:
                self._absorb(directory, job, worker)
        finally:
            for _directory, _job, worker in started:
                worker.kill()

    def _job(self, facts: JournalFacts, skills: list[tuple[str, str]]) -> SkillJob:
        age = self.request.max_audit_age
        return SkillJob(format=self.writer.fmt, since=self.ctx.since, until=self.ctx.until,
                        skills_filter=sorted(self.ctx.selection.skills),
                        publishers_filter=sorted(self.ctx.selection.publishers),
                        max_audit_age_seconds=age.total_seconds() if age is not None else None,
                        end_time=self.end_time.isoformat() if self.end_time is not None else None, facts=facts,
                        skills=skills)

    def _absorb(self, directory: Path, job: SkillJob, worker: Any) -> None:
        """A range's spool into ours; a range whose worker failed is folded here instead."""
        try:
            worker.wait()
            result, shown = read_job_result(directory)
        except Exception as e:  # noqa: BLE001 - whatever became of the other process: fold its range here
            if self.notify is not None:
                self.notify(f"notice: a report worker failed ({e}); folding its skills in this process")
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            result = run_skill_job(self.source, job, directory)
            shown = (directory / SHOWN_FILE).read_bytes()
        self.totals.add(result.totals)
        self.shown.merge(shown)
        self.spool.absorb(directory, self.writer.joiner)


__all__ = ["REPORT_VERSION", "ReportOutcome", "ReportRequest", "ReportSource", "position_at_time", "write_report"]
