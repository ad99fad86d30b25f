"""``skills report compliance``: verify the journal, then stream the compliance report from it.

The report is built from the journal alone (SQLite or PostgreSQL, through the recorders'
``select_rows``), never from the views. In order:

1. The journal head is fixed: the report covers the events up to it.
2. ``journal verify`` runs (``adapters.journal.verify``, the same checks as the command): a
   report over a journal that does not verify says so at the top, and the caller exits 9.
3. ``--since``/``--until`` given as times are resolved to positions (one more read of the
   journal: times need not grow with positions).
4. The report is written (``projections.report.write_report``) to the output file, through a
   temporary file beside it that replaces it only once complete, or to standard output. Its
   spool lives in a private temporary directory (``$TMPDIR``), about as big as the report. On
   a big journal, ranges of skills are folded in worker processes (``report_workers``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from skill_ledger.adapters.journal.sqlite import (
    ChainedSQLiteRecorder,
    LedgerApplication,
    chain_hash,
    chained,
    iter_rows,
    open_journal,
)
from skill_ledger.adapters.journal.verify import Problem, VerifyReport, verify_settings_journal
from skill_ledger.adapters.settings import Settings
from skill_ledger.adapters.storage.files import fsync_dir
from skill_ledger.domain.errors import IoError, SkillLedgerError, UsageError
from skill_ledger.domain.grammars import ident
from skill_ledger.domain.grammars import skill_id as check_skill_id
from skill_ledger.domain.schedule import parse_duration
from skill_ledger.projections.report import (
    FORMATS,
    EventsSource,
    JournalVerification,
    ReportRequest,
    ReportSource,
    position_at_time,
    write_report,
)
from skill_ledger.projections.report.events import EventRow
from skill_ledger.projections.report.model import JournalHead, Summary, Window

from .report_workers import report_workers

_BATCH = 2000  # rows per query (the recorders' pages)


class ReportOptions(msgspec.Struct, frozen=True, kw_only=True):
    """The command's options, as given (validated by :func:`compliance_report`)."""

    format: str = "html"
    since: str | None = None  # POSITION or ISO-8601
    until: str | None = None
    skills: tuple[str, ...] = ()
    publishers: tuple[str, ...] = ()
    max_audit_age: str | None = None  # DURATION: 30d, 12h, 90m, 3600s
    generated_at: str | None = None  # ISO-8601; default: now


class ReportWritten(msgspec.Struct, frozen=True):
    """The command's result (``--json``): where the report went and what it covers."""

    output: str | None  # the file written; None: standard output
    format: str
    bytes: int
    journal_head: JournalHead
    window: Window
    summary: Summary
    journal_verification: JournalVerification


class JournalSource:
    """The journal as the report reads it, up to a fixed head (``projections.report.ReportSource``)."""

    def __init__(self, app: LedgerApplication, head: int) -> None:
        self.app, self._head = app, head

    def head(self) -> tuple[int, str | None]:
        return self._head, chain_hash(self.app, self._head) if self._head else None

    def rows(self, *, after: int = 0, until: int | None = None, topics: Sequence[str] = ()) -> Iterator[Any]:
        end = self._head if until is None else min(until, self._head)
        return iter_rows(self.app, after=after, until=end, topics=topics, batch=_BATCH)

    def scan(self, *, until: int | None = None) -> Iterator[Any]:
        """``rows(until=until)`` for the report's first pass, which decodes the rows of skill
        streams only to classify a stream by its first row (``projections.report.fold``): on
        SQLite, the state of a ``skill.*`` event past its stream's first version is left out of
        the scan and read only if asked for (92% of a journal's rows, and most of its bytes: the
        first pass over 100k events takes 0.18 s rather than 0.38 s)."""
        end = self._head if until is None else until
        recorder = chained(self.app)
        if not isinstance(recorder, ChainedSQLiteRecorder):
            return self.rows(until=end)
        return _sqlite_scan(recorder, min(end, self._head))

    def stream_rows(self, originator_id: str, *, until: int | None, topics: Sequence[str] = ()) -> Iterator[Any]:
        """One stream's rows. A stream is usually one short page: stop at a short page rather
        than ask again (``iter_rows`` stops at an empty one, a second query per skill)."""
        end = self._head if until is None else min(until, self._head)
        recorder, after = chained(self.app), 0
        if isinstance(recorder, ChainedSQLiteRecorder):
            yield from _sqlite_stream_rows(recorder, originator_id, end, topics)
            return
        while True:
            rows = recorder.select_rows(after, end, topics, [originator_id], _BATCH)
            yield from rows
            if len(rows) < _BATCH:
                return
            after = rows[-1].position


def _sqlite_stream_rows(recorder: ChainedSQLiteRecorder, originator_id: str, until: int,
                        topics: Sequence[str]) -> Iterator[EventRow]:
    """``select_rows`` of one stream, cut down to what the report reads: one query on the
    stream's index, only the chain hash joined, read in pages. The second pass asks this once
    per skill (2,500 times over 100k events): 1.15 s through ``select_rows`` (its paging
    condition, the chain row's other members, a ``StoredRow`` each), 0.42 s this way."""
    sql = ("SELECT e.rowid, e.originator_version, e.topic, e.state, c.hash FROM stored_events e "
           "LEFT JOIN event_chain c ON c.position = e.rowid WHERE e.originator_id = ? AND e.rowid > 0 AND e.rowid <= ?")
    params: list[Any] = [originator_id, until]
    if topics:
        sql += f" AND e.topic IN ({','.join('?' * len(topics))})"
        params.extend(topics)
    with recorder.datastore.transaction(commit=False) as c:
        c.execute(sql + " ORDER BY e.rowid", params)
        while rows := c.sqlite_cursor.fetchmany(_BATCH):
            for position, version, topic, state, hash_ in rows:
                yield EventRow(position, originator_id, version, topic, state, hash_)


class _ScanRow:
    """A row of :func:`_sqlite_scan`. The state and the chain hash of a skill stream's later
    event are read from the journal when first asked for (the first pass only counts it, unless
    it is one the scope cites); the scan brought those of every other row."""

    __slots__ = ("position", "originator_id", "originator_version", "topic", "_hash", "_state", "_recorder")

    def __init__(self, recorder: ChainedSQLiteRecorder, position: int, originator_id: str, version: int, topic: str,
                 state: bytes | None, hash_: str | None) -> None:
        self.position, self.originator_id, self.originator_version = position, originator_id, version
        self.topic, self._state, self._hash, self._recorder = topic, state, hash_, recorder

    @property
    def state(self) -> bytes:
        if self._state is None:
            self._read()
        return self._state or b""

    @property
    def hash(self) -> str | None:
        if self._state is None:  # a later event of a skill stream: not read yet
            self._read()
        return self._hash

    def _read(self) -> None:
        with self._recorder.datastore.transaction(commit=False) as c:
            c.execute("SELECT e.state, c.hash FROM stored_events e LEFT JOIN event_chain c ON c.position = e.rowid "
                      "WHERE e.rowid = ?", (self.position,))
            found = c.fetchone()
        self._state = found[0] if found is not None and found[0] is not None else b""
        self._hash = found[1] if found is not None else None


def _sqlite_scan(recorder: ChainedSQLiteRecorder, until: int) -> Iterator[_ScanRow]:
    """Every row up to ``until`` by position; see ``JournalSource.scan``. Only the rows whose
    state comes with the scan have their chain hash joined (the join costs a seventh of the
    scan, and most rows are never cited)."""
    later = "e.originator_version > 1 AND e.topic GLOB 'skill.*'"
    sql = (f"SELECT e.rowid, e.originator_id, e.originator_version, e.topic, CASE WHEN {later} THEN NULL "
           f"ELSE e.state END, CASE WHEN {later} THEN NULL ELSE (SELECT c.hash FROM event_chain c "
           "WHERE c.position = e.rowid) END FROM stored_events e WHERE e.rowid > 0 AND e.rowid <= ? ORDER BY e.rowid")
    with recorder.datastore.transaction(commit=False) as c:
        c.execute(sql, (until,))
        while rows := c.sqlite_cursor.fetchmany(_BATCH):
            for position, oid, version, topic, state, hash_ in rows:
                yield _ScanRow(recorder, position, oid, version, topic, state, hash_)


def compliance_report(settings: Settings, options: ReportOptions, *, output: str | None, stdout: BinaryIO,
                      notify: Callable[[str], None] | None = None) -> ReportWritten:
    """Verify the journal and write the report to ``output`` (a path) or ``stdout``. The result's
    ``journal_verification.ok`` is False when the journal does not verify (the report says so).
    On a big journal the second pass runs in several processes (``report_workers``)."""
    from skill_ledger import __version__

    request = _replace(_request(options), generated_by=settings.actor, project_version=__version__)
    with _journal(settings) as app:  # bad options are refused above, before the journal is read
        head = (app.recorder.max_notification_id() or 0) if app is not None else 0
        ahead = _views_ahead(settings, app, head) if app is not None else None
        verification = _verification(verify_settings_journal(settings), ahead)
        source: ReportSource = JournalSource(app, head) if app is not None else EventsSource([])
        request = _replace(_resolve_window(source, options, request, head), journal_verification=verification)
        with tempfile.TemporaryDirectory(prefix="skills-report-") as workdir, _output(output, stdout) as out:
            workers = report_workers(settings) if app is not None else None
            outcome = write_report(source, out, options.format, request, workdir=Path(workdir), workers=workers,
                                   notify=notify)
            written = out.count
    return ReportWritten(output=str(output) if output else None, format=outcome.format, bytes=written,
                         journal_head=outcome.journal_head, window=outcome.window, summary=outcome.summary,
                         journal_verification=outcome.journal_verification)


def _replace(request: ReportRequest, **changes: Any) -> ReportRequest:
    import dataclasses

    return dataclasses.replace(request, **changes)


@contextlib.contextmanager
def _journal(settings: Settings) -> Iterator[LedgerApplication | None]:
    """The journal exactly as it is (nothing created: a report is a read); None when a SQLite
    journal does not exist (an empty journal, as ``journal verify`` sees it)."""
    if settings.journal_is_sqlite and not settings.journal_path.exists():
        yield None
        return
    app = open_journal(settings.journal_url, create=False)
    try:
        yield app
    finally:
        app.close()


def _verification(report: VerifyReport, ahead: Problem | None = None) -> JournalVerification:
    problems = [*report.problems, *([ahead] if ahead is not None else [])]
    if not problems:
        return JournalVerification(ok=True, first_bad_position=None, message="")
    shown = "; ".join(f"position {p.position}: {p.code}: {p.message}" for p in problems[:3])
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    first = report.first_bad_position if report.first_bad_position is not None else (
        ahead.position if ahead is not None and ahead.position else None)
    return JournalVerification(ok=False, first_bad_position=first, message=shown + more)


def _views_ahead(settings: Settings, app: LedgerApplication, head: int) -> Problem | None:
    """Truncation that the journal alone cannot show: this home's views have projected more
    events of this journal than it now holds (the reads refuse such a home with
    ``journal_truncated``; the report, which never opens the views, says so the same way). The
    views are read, never written; views of another journal, or unreadable ones, prove nothing."""
    path = settings.views_path
    if not path.is_file():
        return None
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
            row = con.execute("SELECT min(position) FROM positions").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    projected = row[0] if row and isinstance(row[0], int) else 0
    identity = meta.get("journal") or ""
    if projected <= head or (identity and identity != (chain_hash(app, 1) or "")):
        return None
    return Problem(head + 1, "truncated",
                   f"the views database {path} has projected this journal up to position {projected}, but it ends at "
                   f"position {head}: the journal was truncated or replaced by an older copy")


# --- options ---------------------------------------------------------------------------------


def _request(options: ReportOptions) -> ReportRequest:
    if options.format not in FORMATS:
        raise UsageError(f"unknown report format {options.format!r}; expected one of {', '.join(FORMATS)}",
                         {"format": options.format})
    skills, publishers = set(), set()
    for s in options.skills:
        try:
            skills.add(check_skill_id(s))
        except SkillLedgerError:
            raise UsageError(f"invalid skill id {s!r}: skill ids use dot-separated [a-z0-9_-] segments",
                             {"skill_id": s}) from None
    for p in options.publishers:
        try:
            publishers.add(ident(p, "publisher"))
        except SkillLedgerError:
            raise UsageError(f"invalid publisher {p!r}: publishers use [a-z0-9._:-]", {"publisher": p}) from None
    age = None
    if options.max_audit_age is not None:
        age = dt.timedelta(seconds=parse_duration(options.max_audit_age))
    generated_at = _time(options.generated_at, "--generated-at") if options.generated_at else \
        dt.datetime.now(dt.UTC).replace(microsecond=0)
    since, until = _bound(options.since, "--since"), _bound(options.until, "--until")
    if isinstance(since, int) and isinstance(until, int) and since > until:
        raise UsageError(f"--since {since} is after --until {until}: the window would be empty",
                         {"since": since, "until": until})
    return ReportRequest(generated_at=generated_at.isoformat(), generated_by="", project_version="",
                         journal_verification=JournalVerification(ok=None), skills=tuple(sorted(skills)),
                         publishers=tuple(sorted(publishers)), max_audit_age=age,
                         since_requested=options.since, until_requested=options.until)


def _bound(value: str | None, flag: str) -> int | dt.datetime | None:
    """A window bound: a journal position, or an ISO-8601 time (naive means UTC)."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    return _time(text, flag)


def _time(value: str, flag: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{flag} expects a journal position or an ISO-8601 time, got {value!r}",
                         {"value": value}) from None
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def _resolve_window(source: ReportSource, options: ReportOptions, request: ReportRequest,
                    head: int) -> ReportRequest:
    """Positions for the bounds given as times: ``--since T`` starts after the last event
    recorded before T; ``--until T`` ends with the last event recorded at or before T, and the
    window ends at T (audit staleness is judged then)."""
    since, until = _bound(options.since, "--since"), _bound(options.until, "--until")
    end_time = None
    if isinstance(since, dt.datetime):
        since = position_at_time(source, since, inclusive=False, head=head)
    if isinstance(until, dt.datetime):
        end_time = until
        until = position_at_time(source, until, inclusive=True, head=head)
    return _replace(request, since=since, until=until, window_end_time=end_time)


# --- output ---------------------------------------------------------------------------------------


class _Counting:
    """A binary stream that counts what goes through it."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.count = f, 0

    def write(self, data: bytes) -> int:
        self.f.write(data)
        self.count += len(data)
        return len(data)


@contextlib.contextmanager
def _output(path: str | None, stdout: BinaryIO) -> Iterator[Any]:
    """Standard output, or a temporary file beside ``path`` that replaces it once the report is
    complete (a failed report never leaves half a file, nor destroys the previous one)."""
    if path is None:
        yield _Counting(stdout)
        stdout.flush()
        return
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as e:
        raise IoError(f"cannot create {target}: {e.strerror or e}", operation="write") from None
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as f:
            os.fchmod(f.fileno(), 0o644)
            yield _Counting(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        fsync_dir(parent)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise IoError(f"cannot write {target}: {e.strerror or e}", operation="write") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
