"""Reading the state: ``list``, ``info``, ``check``, ``history``. Projections only, caught up first."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

from skill_ledger.cli.base import global_options, obj
from skill_ledger.cli.errors import AUDIT_FAILED
from skill_ledger.cli.output import emit, kv, notice, to_jsonable


@contextlib.contextmanager
def views(as_of: str | None = None) -> Iterator[tuple[object, dict | None]]:
    """The caught-up read model; with ``as_of``, the same connection reading the state as of
    that journal position or time (from the history projection, ``projections.asof``)."""
    from skill_ledger.adapters.readmodel.views import open_views

    store = open_views(obj().settings(), notify=notice)
    try:
        if as_of is None:
            yield store, None
            return
        from skill_ledger.projections.asof import resolve_when, shadow, unshadow

        position = resolve_when(store.con, as_of, "--as-of", head=store.position())
        shadow(store.con, position)
        try:
            yield store, {"position": position, "requested": as_of}
        finally:
            unshadow(store.con)
    finally:
        store.close()


AS_OF = click.option("--as-of", "as_of", metavar="POSITION|ISO-8601",
                     help="Show the state as it was at a journal position or a time (the last position recorded at or "
                          "before it); a position beyond the head is refused.")


@click.command("list")
@click.option("--publisher", help="Only this publisher's skills.")
@click.option("--status", type=click.Choice(["active", "quarantined", "disabled"]), help="Only this status.")
@click.option("--current-only", is_flag=True, help="Only current versions.")
@click.option("--eligible-only", is_flag=True, help="Only versions eligible to run.")
@AS_OF
@global_options
def list_(publisher: str | None, status: str | None, current_only: bool, eligible_only: bool,
          as_of: str | None) -> None:
    """The installed-skills index: one entry per installed version."""
    from skill_ledger.cli.output import list_table
    from skill_ledger.projections.queries import list_entries, list_rows

    filters = {"publisher": publisher, "status": status, "current_only": current_only, "eligible_only": eligible_only}
    with views(as_of) as (store, as_of_info):
        if obj().as_json:
            entries = list_entries(store.con, **filters)
            emit(True, {"count": len(entries), "as_of": as_of_info, "entries": entries}, lambda d: None)
            return
        lines = list_table(list_rows(store.con, **filters))
    if as_of_info:
        click.echo(f"as of journal position {as_of_info['position']}")
    click.echo("\n".join(lines) if lines else "no skills installed")


@click.command("info")
@click.argument("skill_id")
@click.option("--version", "version", metavar="V", help="The version (default: the current one).")
@AS_OF
@global_options
def info(skill_id: str, version: str | None, as_of: str | None) -> None:
    """Everything the index knows about a version: manifest, tools, grants, bindings, audits."""
    from skill_ledger.domain.errors import NotInstalled
    from skill_ledger.projections.queries import info as info_query
    from skill_ledger.projections.queries import version_row

    with views(as_of) as (store, as_of_info):
        row = version_row(store.con, skill_id, version)
        if row is None:
            raise NotInstalled(f"{skill_id}{' ' + version if version else ''} is not installed",
                               {"skill_id": skill_id, "version": version})
        data = info_query(store.con, row)
    data["as_of"] = as_of_info

    def human(d: dict) -> None:
        kv([("skill_id", d["skill_id"]), ("version", d["version"]), ("name", d["name"]),
            ("publisher", d["publisher"]), ("status", f"{d['status']}"
                                                + (" by --override of a failed audit"
                                                   if d["status_reason_code"] == "override" else "")
                                                + (f" ({d['status_reason']})" if d["status_reason"] else "")),
            ("current", "yes" if d["current"] else "no"), ("trust", f"{d['trust_decision']} ({d['key_id']})"),
            ("eligible", "yes" if d["eligibility"]["eligible"] else "no: " + ", ".join(d["eligibility"]["reasons"])),
            ("installed_at", d["installed_at"]), ("artifact_sha256", d["artifact_sha256"])])
        click.echo("tools:")
        for t in d["tools"]:
            click.echo(f"  {t['id']}  {t['description']}")
        g = d["capability_grants"] or {}
        click.echo(f"grants: http_hosts={g.get('http_hosts')} secret_keys={g.get('secret_keys')} "
                   f"storage_prefixes={g.get('storage_prefixes')}")
        click.echo("audits:")
        for a in d["audits"]:
            click.echo(f"  #{a['position']} {a['at'][:19]} {a['trigger']:<13} policy v{a['policy_version']} "
                       f"{'passed' if a['passed'] else 'FAILED ' + ','.join(a['failed_checks'])}")

    emit(obj().as_json, data, human)


@click.command("check")
@click.argument("skill_id", required=False)
@click.option("--strict", is_flag=True, help="Exit 5 if any current version is not ready.")
@global_options
def check(skill_id: str | None, strict: bool) -> int:
    """Readiness of current versions: active, eligible, artifact present."""
    from skill_ledger.adapters.readmodel.readiness import readiness

    with views() as (store, _):
        results = readiness(obj().settings(), store.con, skill_id)
    data = {"results": results}

    def human(d: dict) -> None:
        if not d["results"]:
            click.echo("no current versions")
        for r in d["results"]:
            click.echo(f"{r['skill_id']} {r['version']}: {'ready' if r['ready'] else 'NOT READY: ' + '; '.join(r['reasons'])}")

    emit(obj().as_json, data, human)
    return AUDIT_FAILED if strict and any(not r["ready"] for r in results) else 0


@click.command("history")
@click.argument("skill_id")
@global_options
def history(skill_id: str) -> None:
    """Every event of a skill and of its publisher's trust, oldest first."""
    from skill_ledger.adapters.journal.read import skill_history

    data = to_jsonable(skill_history(obj().settings(), skill_id, notify=notice))

    def human(d: dict) -> None:
        from skill_ledger.projections.fold import summarize

        for e in d["events"]:
            reason = e["data"].get("reason")
            line = summarize(e["kind"], {**e["data"], "stream": e["stream"]})
            if reason and reason not in line:
                line += f"  [reason: {reason}]"
            click.echo(f"#{e['position']:<6} {e['recorded_at'][:19]}  {e['actor']['principal']:<16} {line}")

    emit(obj().as_json, data, human)


COMMANDS = [list_, info, check, history]
