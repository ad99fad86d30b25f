"""``skills doctor``: the health of a home, one line per check (``adapters/doctor.py``)."""

from __future__ import annotations

from pathlib import Path

import click

from skill_ledger.cli.base import global_options, obj
from skill_ledger.cli.errors import AUDIT_FAILED, JOURNAL_INTEGRITY
from skill_ledger.cli.output import emit, to_jsonable

# What a failing check is about -> the exit status (docs/cli.md, "skills doctor").
EXIT_BY_AREA = {"journal": JOURNAL_INTEGRITY, "files": AUDIT_FAILED}


def _human(d: dict) -> None:
    width = max((len(c["id"]) for c in d["checks"]), default=0)
    for c in d["checks"]:
        click.echo(f"{c['status']:<4}  {c['id']:<{width}}  {c['message']}")
        if c["fix"] and c["status"] != "ok":
            click.echo(f"      {'':<{width}}  fix: {c['fix']}")
    s = d["summary"]
    click.echo(f"{s['ok']} ok, {s['warn']} warn, {s['fail']} fail")


@click.command("doctor")
@click.option("--thorough", is_flag=True,
              help="Also recompute every stored artifact's digest, verify every journal event even when a faster "
                   "mode exists, and compare the views with a fresh replay (index verify).")
@click.option("--max-checkpoint-age", default="7d", show_default=True, metavar="DURATION",
              help="Warn when the newest journal checkpoint is older than this: 30s, 15m, 6h, 7d.")
@global_options
def doctor(thorough: bool, max_checkpoint_age: str) -> int:
    """Check a home: permissions, journal integrity, views drift, stored artifacts, cache,
    PostgreSQL reachability, checkpoint age, versions. Each line is ok, warn or fail with
    the command that fixes it. Exit 0 when nothing fails (warnings included), 5 when a
    check about files, permissions, artifacts or the cache fails, 9 when a journal check
    (integrity, drift, reachability, checkpoint anchor) fails."""
    from skill_ledger.adapters.doctor import diagnose
    from skill_ledger.adapters.settings import default_home
    from skill_ledger.domain.schedule import parse_duration

    max_age = parse_duration(max_checkpoint_age)
    context = obj()
    raw_home = Path(context.home).expanduser() if context.home else default_home()
    report = diagnose(context.settings(), raw_home=raw_home, thorough=thorough, max_checkpoint_age_s=max_age)
    emit(context.as_json, to_jsonable(report), _human)
    area = report.summary.failing_area
    return EXIT_BY_AREA[area] if area else 0


COMMANDS = [doctor]
