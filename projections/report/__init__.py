"""The compliance report (``skills report compliance``): built from the journal's exported
events, never from the live views, so a report over a past window is the same whenever it is
made. ``build_report`` folds the events; ``render`` writes JSON, Markdown or HTML. The
document is described in ``docs/compliance-report.md`` and by the JSON Schema
``schema/compliance-report-v1.json`` shipped with this package."""

from .build import build_report
from .model import FINDING_KINDS, FINDING_RULES, REPORT_VERSION, JournalVerification, Report
from .render import FORMATS, render, render_html, render_json, render_markdown
from .schema import SCHEMA_FILE, load_schema

__all__ = [
    "FINDING_KINDS",
    "FINDING_RULES",
    "FORMATS",
    "REPORT_VERSION",
    "SCHEMA_FILE",
    "JournalVerification",
    "Report",
    "build_report",
    "load_schema",
    "render",
    "render_html",
    "render_json",
    "render_markdown",
]
