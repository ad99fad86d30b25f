"""``skills journal`` (events, NDJSON with --json), ``journal verify`` and ``journal checkpoint``."""

from __future__ import annotations

import click

from skill_ledger.cli.base import global_options, obj
from skill_ledger.cli.errors import JOURNAL_INTEGRITY
from skill_ledger.cli.output import emit, json_text, notice, to_jsonable


def _line(e: dict) -> str:
    from skill_ledger.projections.fold import summarize

    return (f"#{e['position']:<6} {e['recorded_at'][:19]}  {e['stream']:<28} {e['kind']:<26} "
            f"{e['actor']['principal']:<14} {summarize(e['kind'], {**e['data'], 'stream': e['stream']})}")


@click.group("journal", invoke_without_command=True)
@click.option("--skill", "skill", metavar="ID", help="Only events of this skill's stream.")
@click.option("--kind", "kinds", multiple=True, metavar="KIND", help="Only events of this kind (repeatable).")
@click.option("--since", type=click.IntRange(min=0), metavar="POSITION", help="Only events after this position.")
@click.option("--until", type=click.IntRange(min=0), metavar="POSITION", help="Only events up to this position.")
@click.option("--limit", type=click.IntRange(min=0), metavar="N", help="At most N events.")
@click.option("--follow", is_flag=True, help="Keep printing new events as they are appended (Ctrl-C to stop).")
@global_options
@click.pass_context
def journal(ctx: click.Context, skill: str | None, kinds: tuple[str, ...], since: int | None, until: int | None,
            limit: int | None, follow: bool) -> None:
    """The journal's events, oldest first (NDJSON with --json, one event per line)."""
    if ctx.invoked_subcommand is not None:
        return
    from skill_ledger.adapters.journal.read import follow as follow_journal
    from skill_ledger.adapters.journal.read import journal_events
    from skill_ledger.adapters.usecases.unit_of_work import Ledger

    as_json = obj().as_json

    def out(e: dict) -> None:
        click.echo(json_text(e, pretty=False) if as_json else _line(e))

    ledger = Ledger(obj().settings())
    try:
        last = since or 0
        for e in journal_events(ledger, skill=skill, kinds=kinds, since=since, until=until, limit=limit):
            out(e)
            last = e["position"]
        if follow:
            after = max(last, ledger.head())
            # Everything appended from here on is printed: a script may start appending now.
            notice(f"following the journal from position {after}")
            try:
                follow_journal(ledger, out, skill=skill, kinds=kinds, after=after)
            except KeyboardInterrupt:
                pass
    finally:
        ledger.close()


@journal.command("verify")
@global_options
def journal_verify() -> int:
    """Check hash chains, positions, checkpoints and the append-only guard (exit 9 on damage)."""
    from skill_ledger.adapters.journal.verify import verify_settings_journal

    report = verify_settings_journal(obj().settings())

    def human(d: dict) -> None:
        if d["ok"]:
            click.echo(f"journal ok: {d['events']} events in {d['streams']} streams, {d['checkpoints']} checkpoint(s), "
                       f"append-only guard {'present' if d['guard'] else 'MISSING'}")
            return
        click.echo(f"JOURNAL DAMAGED: first bad position {d['first_bad_position']}")
        for p in d["problems"]:
            click.echo(f"  position {p['position']}: {p['code']}: {p['message']}")

    emit(obj().as_json, to_jsonable(report), human)
    first = report.first_problem()
    if first is not None:
        notice(f"error[journal_tampered]: journal integrity failure at position {first.position}: {first.message}")
        return JOURNAL_INTEGRITY
    return 0


@journal.command("checkpoint")
@global_options
def journal_checkpoint() -> None:
    """Record a signed checkpoint of the journal's head (signed with <home>/journal-signing-key.pem)."""
    from skill_ledger.adapters.usecases.checkpoints import record_checkpoint
    from skill_ledger.adapters.usecases.session import ledger_session

    with ledger_session(obj().settings(), notify=notice) as ledger:
        result = record_checkpoint(ledger)
    emit(obj().as_json, result, lambda d: click.echo(
        f"checkpoint over {d['event_count']} events (root {d['root_hash'][:16]}…) at position {d['positions'][0]}"))


COMMANDS = [journal]
