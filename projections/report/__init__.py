"""The compliance report (``skills report compliance``): built from the journal's events, never
from the live views, so a report over a past window is the same whenever it is made.
``write_report`` streams it from a journal in two passes (``engine.py``) in JSON, Markdown
or HTML; ``build_report`` and ``render`` do the same for a list of exported events in memory.
The document is described in ``docs/compliance-report.md`` and by the JSON Schema
``schema/compliance-report-v1.json`` shipped with this package."""

from .build import EventsSource, build_report, render, render_html, render_json, render_markdown
from .engine import ReportOutcome, ReportRequest, ReportSource, position_at_time, write_report
from .model import FINDING_KINDS, FINDING_RULES, REPORT_VERSION, JournalVerification, Report
from .render import FORMATS
from .schema import SCHEMA_FILE, load_schema

__all__ = [
    "FINDING_KINDS",
    "FINDING_RULES",
    "FORMATS",
    "REPORT_VERSION",
    "SCHEMA_FILE",
    "EventsSource",
    "JournalVerification",
    "Report",
    "ReportOutcome",
    "ReportRequest",
    "ReportSource",
    "build_report",
    "load_schema",
    "position_at_time",
    "render",
    "render_html",
    "render_json",
    "render_markdown",
    "write_report",
]
