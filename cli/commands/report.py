"""``skills report compliance``: the compliance report of a period, built from the journal."""

from __future__ import annotations

import click

from skill_ledger.cli.base import SubGroup, global_options, obj
from skill_ledger.cli.errors import JOURNAL_INTEGRITY
from skill_ledger.cli.output import emit, notice, to_jsonable

FORMATS = ("html", "json", "markdown")  # the engine's formats (checked against it by the tests)


@click.group("report", cls=SubGroup)
@global_options
def report() -> None:
    """Reports built from the journal (never from the views)."""


@report.command("compliance")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="html", show_default=True,
              help="The document's form: one self-contained HTML file, JSON (report_version 1), or Markdown.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the report here (replaced only once complete) [default: stdout].")
@click.option("--since", metavar="POSITION|ISO-8601",
              help="The window starts after this position, or with the first event recorded at or after this time.")
@click.option("--until", metavar="POSITION|ISO-8601",
              help="The window ends with this position, or with the last event recorded at or before this time "
                   "[default: the journal head].")
@click.option("--skill", "skills", multiple=True, metavar="ID", help="Only these skills (repeatable).")
@click.option("--publisher", "publishers", multiple=True, metavar="P",
              help="Only versions signed for these publishers (repeatable).")
@click.option("--max-audit-age", metavar="DURATION",
              help="Flag active versions without an audit this recent at the window end (30d, 12h, 90m, 3600s).")
@click.option("--generated-at", metavar="ISO-8601",
              help="The report's 'made at' time (for reproducible, byte-identical runs) [default: now].")
@global_options
def compliance(fmt: str, output: str | None, since: str | None, until: str | None, skills: tuple[str, ...],
               publishers: tuple[str, ...], max_audit_age: str | None, generated_at: str | None) -> int:
    """What skills ran with which trust and audit in a period, and what a reviewer must look at.

    Runs `journal verify` first; every claim cites the journal positions and hashes it rests
    on. Exit 9 (after writing the report, which says so at the top) when the journal does not
    verify. With --json, stdout carries the command's result (where the report went, its
    counts, the journal head it covers), so --output is required.
    """
    import sys

    from skill_ledger.adapters.usecases.reports import ReportOptions, compliance_report
    from skill_ledger.domain.errors import UsageError

    as_json = obj().as_json
    if as_json and output is None:
        raise UsageError("--json prints the command's result, not the report: give --output FILE")
    options = ReportOptions(format=fmt, since=since, until=until, skills=skills, publishers=publishers,
                            max_audit_age=max_audit_age, generated_at=generated_at)
    result = compliance_report(obj().settings(), options, output=output, stdout=sys.stdout.buffer,
                               notify=notice)
    data = to_jsonable(result)
    if output is None:
        notice(_line(data))  # stdout is the report itself
    else:
        emit(as_json, data, lambda d: click.echo(_line(d)))
    v = result.journal_verification
    if v.ok is False:
        where = f" at position {v.first_bad_position}" if v.first_bad_position else ""
        notice(f"error[journal_tampered]: the journal does not verify{where}; the report says so at the top")
        return JOURNAL_INTEGRITY
    return 0


def _line(d: dict) -> str:
    w, s, f = d["window"], d["summary"], d["summary"]["findings"]
    where = d["output"] or "stdout"
    window = f"positions {w['first_position']}..{w['last_position']}" if w["event_count"] else "no event"
    return (f"compliance report ({d['format']}, {d['bytes']} bytes) written to {where}: journal head "
            f"{d['journal_head']['position']}, window {window} ({w['event_count']} events), verdict {s['verdict']}, "
            f"findings {f['high']} high / {f['medium']} medium / {f['low']} low")


COMMANDS = [report]
