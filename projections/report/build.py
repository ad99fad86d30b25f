"""The report of a list of exported events, in memory: for tests, tools and small journals.

``build_report`` runs the same engine as ``skills report compliance`` (``engine.py``) over the
events in the exported shape of ``events.md`` (what ``skills journal --json`` prints), writes
the JSON form and reads it back as a :class:`Report`; ``render`` writes a :class:`Report` in
any form with the same writers. A journal of any size is better served by ``write_report``
over the journal itself, which never holds the report in memory.
"""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from skill_ledger.domain.codec import kind_of_topic
from skill_ledger.domain.events import stream_uuid

from .engine import ReportRequest, write_report
from .events import EventRow
from .model import JournalVerification, Report
from .writers import write_document

_encoder = msgspec.json.Encoder()


class EventsSource:
    """A journal given as exported events (position order): the rows the recorders would
    return for them (the state is the event's data and envelope, as stored)."""

    def __init__(self, events: Iterable[dict[str, Any]]) -> None:
        self._rows: list[EventRow] = []
        last = 0
        for e in events:
            position = e["position"]
            if not isinstance(position, int) or position <= last:
                raise ValueError(f"events must come in increasing position order: {position!r} after {last}")
            last = position
            stream = e.get("stream") if isinstance(e.get("stream"), str) else ""
            data = e.get("data")
            state = {**data, "timestamp": e.get("recorded_at"), "stream": e.get("stream"), "actor": e.get("actor")} \
                if isinstance(data, dict) else data
            version = e.get("stream_version")
            self._rows.append(EventRow(position=position, originator_id=stream_uuid(stream).hex,
                                   originator_version=version if isinstance(version, int) else 0,
                                   topic=f"{e.get('kind')}.v1", state=_encoder.encode(state), hash=e.get("hash")))

    def head(self) -> tuple[int, str | None]:
        return (self._rows[-1].position, self._rows[-1].hash) if self._rows else (0, None)

    def rows(self, *, after: int = 0, until: int | None = None, topics: Sequence[str] = ()) -> Iterator[EventRow]:
        kinds = {kind_of_topic(t) for t in topics}
        for r in self._rows:
            if r.position > after and (until is None or r.position <= until) and (
                    not kinds or kind_of_topic(r.topic) in kinds):
                yield r

    def stream_rows(self, originator_id: str, *, until: int | None, topics: Sequence[str] = ()) -> Iterator[EventRow]:
        return (r for r in self.rows(until=until, topics=topics) if r.originator_id == originator_id)


def build_report(events: Iterable[dict[str, Any]], *, since: int | None = None, until: int | None = None,
                 skills: Iterable[str] = (), publishers: Iterable[str] = (),
                 max_audit_age: dt.timedelta | None = None, generated_at: dt.datetime | str,
                 generated_by: str, project_version: str, journal_verification: JournalVerification,
                 since_requested: str | None = None, until_requested: str | None = None,
                 window_end_time: dt.datetime | None = None) -> Report:
    """The compliance report over ``events`` (exported shape, position order), as a whole."""
    request = ReportRequest(
        generated_at=generated_at, generated_by=generated_by, project_version=project_version,
        journal_verification=journal_verification, since=since, until=until, skills=tuple(skills),
        publishers=tuple(publishers), max_audit_age=max_audit_age, window_end_time=window_end_time,
        since_requested=since_requested, until_requested=until_requested)
    out = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="skills-report-") as workdir:
        write_report(EventsSource(events), out, "json", request, workdir=Path(workdir))
    return msgspec.json.decode(out.getvalue(), type=Report)


def render(report: Report, fmt: str) -> bytes:
    """``report`` in ``fmt`` (``json``, ``markdown`` or ``html``), UTF-8 encoded."""
    out = io.BytesIO()
    write_document(report, fmt, out)
    return out.getvalue()


def render_json(report: Report) -> bytes:
    return render(report, "json")


def render_markdown(report: Report) -> str:
    return render(report, "markdown").decode("utf-8")


def render_html(report: Report) -> str:
    return render(report, "html").decode("utf-8")
