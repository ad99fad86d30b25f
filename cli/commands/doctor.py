"""``skills doctor``: the health of a home, one line per check (``adapters/doctor.py``)."""

from __future__ import annotations

from pathlib import Path

import click

from skill_ledger.cli.base import global_options, obj
from skill_ledger.cli.output import emit, to_jsonable


def _human(d: dict, *, err: bool = False) -> None:
    width = max((len(c["id"]) for c in d["checks"]), default=0)
    lines = []
    for c in d["checks"]:
        lines.append(f"{c['status']:<4}  {c['id']:<{width}}  {c['message']}")
        if c["fix"] and c["status"] != "ok":
            lines.append(f"      {'':<{width}}  fix: {c['fix']}")
    s = d["summary"]
    lines.append(f"{s['ok']} ok, {s['warn']} warn, {s['fail']} fail")
    click.echo("\n".join(lines), err=err)


@click.command("doctor")
@click.option("--thorough", is_flag=True,
              help="Also recompute every stored artifact's digest, verify every journal event even when a faster "
                   "mode exists, and compare the views with a fresh replay (index verify).")
@click.option("--max-checkpoint-age", default="7d", show_default=True, metavar="DURATION",
              help="Warn when the newest journal checkpoint is older than this: 30s, 15m, 6h, 7d.")
@global_options
def doctor(thorough: bool, max_checkpoint_age: str) -> None:
    """Check a home: permissions, journal integrity, views drift, stored artifacts, cache,
    PostgreSQL reachability, checkpoint age, versions. Each line is ok, warn or fail with
    the command that fixes it. Exit 0 when nothing fails (warnings included), 5 when a
    check about files, permissions, artifacts or the cache fails, 9 when a journal check
    (integrity, drift, reachability, checkpoint anchor) fails. A failing report goes to
    stderr (with --json: the error document's details)."""
    from skill_ledger.adapters.doctor import diagnose, failure
    from skill_ledger.adapters.settings import default_home
    from skill_ledger.domain.schedule import parse_duration

    max_age = parse_duration(max_checkpoint_age)
    context = obj()
    raw_home = Path(context.home).expanduser() if context.home else default_home()
    report = diagnose(context.settings(home_must_be_usable=False), raw_home=raw_home, thorough=thorough, max_checkpoint_age_s=max_age)
    error = failure(report)
    if error is None:
        emit(context.as_json, to_jsonable(report), _human)
        return
    if not context.as_json:
        _human(to_jsonable(report), err=True)
    raise error


COMMANDS = [doctor]
