"""``skills search TEXT``: full-text search over the installed skills."""

from __future__ import annotations

import click

from skill_ledger.cli.base import global_options, obj
from skill_ledger.cli.output import emit, notice, safe, status_color, table_lines, terminal_width, to_jsonable


@click.command("search")
@click.argument("text", nargs=-1, required=True)
@click.option("--wide", is_flag=True, help="Do not cut long cells to fit the terminal.")
@global_options
def search(text: tuple[str, ...], wide: bool) -> None:
    """Find installed skills by id, name, description, publisher, tool ids and tool descriptions.

    TEXT is SQLite full-text query syntax: words (all must match), "a phrase", prefix*,
    OR, NOT, and column:word for one field (skill_id, name, description, publisher,
    tool_ids, tool_descriptions). Quote words with punctuation: '"acme.echo"'.
    Best matches first; a version that is not installed is never found.
    """
    from skill_ledger.adapters.readmodel.views import open_views
    from skill_ledger.projections.search import search as search_views

    from .read import caught_up

    query = " ".join(text)
    store = open_views(obj().settings(), notify=notice, **caught_up())
    try:
        result = search_views(store.con, query)
    finally:
        store.close()

    def human(d: dict) -> None:
        if not d["results"]:
            click.echo(f"no installed skill matches {safe(repr(d['query']))}")
            return
        rows = [(r["skill_id"], r["version"], "*" if r["current"] else "", r["status"] or "-",
                 ",".join(r["matched"]), " ".join(r["snippet"].split())) for r in d["results"]]
        click.echo("\n".join(table_lines(("skill", "version", "current", "status", "matched", "snippet"), rows,
                                          width=None if wide else terminal_width(), styles={3: status_color},
                                          shrink=(5, 4, 0))))

    emit(obj().as_json, to_jsonable(result), human)


COMMANDS = [search]
