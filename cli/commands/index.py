"""``skills index status|rebuild|verify|export``."""

from __future__ import annotations

import click

from skill_ledger.cli.base import SubGroup, global_options, obj, set_interrupt_state
from skill_ledger.cli.errors import JOURNAL_INTEGRITY
from skill_ledger.cli.output import emit, kv, notice, progress_bar, safe, to_jsonable, views_progress


@click.group("index", cls=SubGroup)
@global_options
def index() -> None:
    """The projections (installed-skills index, trust store, audit history, timeline)."""


@index.command("status")
@global_options
def index_status() -> None:
    """Each projection's position against the journal head (without catching up)."""
    from skill_ledger.adapters.readmodel.verify import views_status

    data = to_jsonable(views_status(obj().settings(), notify=notice))
    emit(obj().as_json, data, lambda d: kv([("journal head", d["head"])] +
                                           [(p["name"], f"{p['position']} ({p['behind']} behind)") for p in d["projections"]]))


@index.command("rebuild")
@global_options
def index_rebuild() -> None:
    """Drop the projections and replay the whole journal into them."""
    from skill_ledger.adapters.readmodel.rebuild import rebuild_home

    set_interrupt_state("the live views are as they were before the rebuild, and its temporary files "
                        "were removed; run it again to rebuild")
    as_json = obj().as_json
    result = rebuild_home(obj().settings(), notify=notice,
                          progress=lambda total: progress_bar(total, "Replaying journal", hidden=as_json))
    emit(obj().as_json, to_jsonable(result),
         lambda d: click.echo(f"replayed {d['replayed']} events; projections at position {d['position']}"))


@index.command("verify")
@global_options
def index_verify() -> int:
    """Replay the journal into a scratch copy and compare it with the live projections (exit 9 on drift)."""
    from skill_ledger.adapters.readmodel.verify import verify_views

    set_interrupt_state("nothing was changed (the scratch replay was removed)")
    report = verify_views(obj().settings(), notify=notice,
                          progress_for=views_progress("Replaying journal to compare", at_least=1))

    def human(d: dict) -> None:
        if d["ok"]:
            click.echo("projections match a fresh replay of the journal")
        for x in d["differences"]:
            click.echo(safe(f"DRIFT in {x['table']} {x['key']}: live={x['live']} replayed={x['replayed']}"))

    emit(obj().as_json, to_jsonable(report), human)
    if not report.ok:
        notice(f"error[projection_drift]: {len(report.differences)} difference(s) between the projections "
               "and the journal")
        return JOURNAL_INTEGRITY
    return 0


@index.command("export")
@click.option("--format", "fmt", type=click.Choice(["palyra"]), default="palyra", show_default=True,
              help="The interchange format.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the file here (default: stdout).")
@global_options
def index_export(fmt: str, output: str | None) -> None:
    """Write the installed-skills index in Palyra's installed-index.json format."""
    import time

    from skill_ledger.adapters.readmodel.views import open_views
    from skill_ledger.adapters.storage.secrets_report import missing_secrets_for
    from skill_ledger.domain.text import dumps_pretty
    from skill_ledger.projections.exports import palyra_installed_index

    from .read import caught_up
    from .trust import write_document

    settings = obj().settings()
    store = open_views(settings, notify=notice, **caught_up())
    try:
        doc = palyra_installed_index(store.con, time.time_ns() // 1_000_000, missing_secrets_for(settings))
    finally:
        store.close()
    write_document(dumps_pretty(doc), output)


COMMANDS = [index]
