"""The report engine's streaming: the document is written from the spool in the exact layout an
in-memory report would have, long timelines and aggregated evidence are written in chunks,
and the engine's memory does not grow with the journal (it holds one skill at a time)."""

from __future__ import annotations

import datetime as dt
import io
import sys
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import msgspec
import pytest

TESTS = Path(__file__).resolve().parents[1]
for p in (str(TESTS), str(TESTS / "projections")):
    if p not in sys.path:
        sys.path.insert(0, p)

from report_synthetic import SqliteJournal, synthetic_events  # noqa: E402

from skill_ledger.projections.report import (  # noqa: E402
    EventsSource,
    JournalVerification,
    Report,
    ReportRequest,
    build_report,
    position_at_time,
    render,
    write_report,
)

GENERATED_AT = "2026-12-01T00:00:00+00:00"
FORMATS = ("json", "markdown", "html")


def request(**kw: Any) -> ReportRequest:
    return ReportRequest(generated_at=GENERATED_AT, generated_by="user:auditor", project_version="0",
                         journal_verification=JournalVerification(ok=True), **kw)


def stream(source: Any, fmt: str, **kw: Any) -> bytes:
    out = io.BytesIO()
    with tempfile.TemporaryDirectory() as d:
        write_report(source, out, fmt, request(**kw), workdir=Path(d))
    return out.getvalue()


def busy_skill(n: int) -> list[dict[str, Any]]:
    """One skill with ``n`` denials of one tool and ``n`` quarantine/enable rounds: a timeline and
    aggregated evidence far longer than a chunk."""
    events = list(synthetic_events(40, skills=2))
    position, version = events[-1]["position"], {}
    for e in events:
        version[e["stream"]] = e["stream_version"]

    def add(kind: str, data: dict[str, Any], principal: str = "agent:bot") -> None:
        nonlocal position
        position += 1
        stream = "skill:acme.skill0"
        version[stream] += 1
        events.append({"position": position, "recorded_at": f"2026-02-01T00:00:00.{position:06d}+00:00",
                       "stream": stream, "stream_version": version[stream], "kind": kind,
                       "actor": {"principal": principal, "host": "h", "command": "run"}, "data": data,
                       "prev_hash": "0" * 64, "hash": f"{position:064x}"})

    for _ in range(n):
        add("skill.execution_denied", {"version": "1.0.0", "tool_id": "acme.echo", "reason_code": "quarantined"})
        add("skill.quarantined", {"version": "1.0.0", "reason_code": "operator", "reason": "again", "details": {}},
            "user:ops")
        add("skill.enabled", {"version": "1.0.0", "override": False, "audit_passed": True, "reason": "fine"},
            "user:ops")
    return events


def test_the_streamed_json_is_the_msgspec_layout_of_the_report() -> None:
    """Written in parts, the JSON is byte for byte what formatting the whole document gives."""
    events = busy_skill(600)
    for kw in ({}, {"since": 50}, {"skills": ["acme.skill0"]}, {"publishers": ["globex"]},
               {"max_audit_age": dt.timedelta(0)}):
        data = stream(EventsSource(events), "json", **kw)
        report = msgspec.json.decode(data, type=Report)
        assert msgspec.json.format(msgspec.json.Encoder(order="deterministic").encode(report), indent=2) + b"\n" \
            == data, kw


def test_long_timelines_and_aggregated_evidence_are_written_whole_in_every_format() -> None:
    """A timeline of 1,800 entries and a finding citing 600 denials come out whole, and the
    streamed document is the one the in-memory writer makes of the same report."""
    events = busy_skill(600)
    report = build_report(iter(events), generated_at=GENERATED_AT, generated_by="user:auditor", project_version="0",
                          journal_verification=JournalVerification(ok=True))
    [timeline] = [t for t in report.timelines if t.skill_id == "acme.skill0"]
    assert len(timeline.entries) > 1800 and [e.position for e in timeline.entries] == sorted(
        e.position for e in timeline.entries)
    [denied] = [f for f in report.findings if f.kind == "execution_denied" and f.skill_id == "acme.skill0"]
    denials = [e["position"] for e in events if e["kind"] == "skill.execution_denied" and
               e["stream"] == "skill:acme.skill0"]
    assert denied.count == len(denials) >= 600 and [e.position for e in denied.evidence] == denials
    lifted = [f for f in report.findings if f.kind == "quarantine_lifted" and f.skill_id == "acme.skill0"]
    assert len(lifted) >= 600 and len({f.id for f in lifted}) == len(lifted)
    for fmt in FORMATS:
        assert stream(EventsSource(events), fmt) == render(report, fmt), fmt


def test_times_resolve_to_positions_whatever_their_order() -> None:
    events = list(synthetic_events(60, skills=3))
    events[20]["recorded_at"] = "2025-06-01T00:00:00+00:00"  # a clock that went back: still looked at
    source = EventsSource(events)
    t = dt.datetime.fromisoformat(events[30]["recorded_at"])
    assert position_at_time(source, t, inclusive=True) == 31
    assert position_at_time(source, t, inclusive=False) == 30
    assert position_at_time(source, dt.datetime(2025, 6, 1, tzinfo=dt.UTC), inclusive=True) == 21
    assert position_at_time(source, dt.datetime(2020, 1, 1, tzinfo=dt.UTC), inclusive=True) == 0
    assert position_at_time(source, dt.datetime(2030, 1, 1, tzinfo=dt.UTC), inclusive=False, head=50) == 50


def _peak(tmp: Path, n: int, fmt: str) -> int:
    journal = SqliteJournal(tmp / f"journal-{n}-{fmt}.db", synthetic_events(n, skills=n // 40))
    sink = io.BytesIO()
    try:
        tracemalloc.start()
        with tempfile.TemporaryDirectory(dir=tmp) as d:
            tracemalloc.reset_peak()
            outcome = write_report(journal, _Discard(), fmt, request(), workdir=Path(d))
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        journal.close()
    assert outcome.window.event_count >= n and outcome.summary.timeline_entries > n // 2
    del sink
    return peak


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["json", "html"])
def test_memory_does_not_grow_with_the_journal(tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    """A whole-journal report over 4x the events (and 4x the skills, versions, findings, entries)
    needs no more Python memory: one skill is folded at a time and everything else is spooled.
    The spool's write batches are made small here so that they are full at both sizes (they are
    a fixed amount of memory, 2,048 rows, that a small journal does not fill)."""
    monkeypatch.setattr("skill_ledger.projections.report.spool._BATCH", 64)
    _peak(tmp_path, 500, fmt)  # compile the templates first: their memory is not the report's
    small, large = _peak(tmp_path, 6_000, fmt), _peak(tmp_path, 24_000, fmt)
    assert large < 10 * 1024 * 1024, large
    assert large < small * 1.15 + 256 * 1024, (small, large)


def _busy_peak(tmp: Path, n: int, fmt: str) -> int:
    journal = SqliteJournal(tmp / f"busy-{n}-{fmt}.db", iter(busy_skill(n)))
    try:
        tracemalloc.start()
        with tempfile.TemporaryDirectory(dir=tmp) as d:
            tracemalloc.reset_peak()
            outcome = write_report(journal, _Discard(), fmt, request(), workdir=Path(d))
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        journal.close()
    assert outcome.summary.timeline_entries >= 3 * n
    return peak


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_memory_does_not_grow_with_one_skills_events(tmp_path: Path, fmt: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """One skill with 4x the denials, quarantines and lifts: its timeline is written in chunks and
    the finding citing every denial has its evidence streamed, not joined into one string."""
    monkeypatch.setattr("skill_ledger.projections.report.spool._BATCH", 64)
    _busy_peak(tmp_path, 100, fmt)  # the templates' compilation is not the report's memory
    small, large = _busy_peak(tmp_path, 1_000, fmt), _busy_peak(tmp_path, 4_000, fmt)
    assert large < small * 1.15 + 256 * 1024, (small, large)


def test_an_empty_journal_and_windows_past_its_head() -> None:
    """Nothing to report is a report too (every format), and a window past the head ends there."""
    for fmt in FORMATS:
        assert stream(EventsSource([]), fmt)
    empty = msgspec.json.decode(stream(EventsSource([]), "json"), type=Report)
    assert (empty.summary.verdict, empty.scope.journal_head.position, empty.scope.window.event_count) == (
        "clean", 0, 0)
    assert empty.findings == [] and empty.posture == [] and empty.cited_events == []
    events = list(synthetic_events(80, skills=4))
    beyond = msgspec.json.decode(stream(EventsSource(events), "json", since=500, until=900), type=Report)
    w = beyond.scope.window
    assert (w.since_position, w.until_position, w.event_count, w.first_position) == (500, 80, 0, None)
    assert beyond.timelines == [] and len(beyond.posture) == 4
