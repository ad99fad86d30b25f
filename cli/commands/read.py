"""Reading the state: ``list``, ``info``, ``check``, ``history``. Projections only, caught up first."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

from skill_ledger.cli.base import global_options, obj, skill_id_argument
from skill_ledger.cli.errors import AUDIT_FAILED
from skill_ledger.cli.output import (
    clip,
    colored,
    echo_csv,
    emit,
    kv,
    notice,
    safe,
    table,
    terminal_width,
    to_jsonable,
    views_progress,
)


@contextlib.contextmanager
def views(as_of: str | None = None) -> Iterator[tuple[object, dict | None]]:
    """The caught-up read model; with ``as_of``, the same connection reading the state as of
    that journal position or time (from the history projection, ``projections.asof``)."""
    from skill_ledger.adapters.readmodel.views import open_views

    store = open_views(obj().settings(), notify=notice, **caught_up())
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


def caught_up() -> dict:
    """``open_views`` keywords for a read: a progress bar over a long catch-up (on a terminal)."""
    return {"progress_for": views_progress()}


def catch_up_first() -> None:
    """Bring the views up to date here, with a progress bar when that takes long, for a command
    whose read happens inside a use case (which then finds them caught up)."""
    from skill_ledger.adapters.readmodel.views import open_views

    open_views(obj().settings(), notify=notice, **caught_up()).close()


WIDE = click.option("--wide", is_flag=True, help="Do not cut long cells to fit the terminal.")
FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table", show_default=True,
                      help="Human output: an aligned table, or CSV (RFC 4180) for spreadsheets and scripts.")
LIST_CSV = ("skill_id", "version", "publisher", "name", "current", "installed", "status", "status_reason_code",
            "status_reason", "trust_decision", "key_id", "eligible", "eligibility_reasons", "last_audit_at",
            "last_audit_trigger", "last_audit_passed", "tool_count", "installed_at", "payload_sha256",
            "artifact_sha256")


def _csv_with_json(fmt: str) -> None:
    if fmt == "csv" and obj().as_json:
        from skill_ledger.domain.errors import UsageError

        raise UsageError("give either --json or --format csv")


@click.command("list")
@click.option("--publisher", help="Only this publisher's skills.")
@click.option("--status", type=click.Choice(["active", "quarantined", "disabled"]), help="Only this status.")
@click.option("--current-only", is_flag=True, help="Only current versions.")
@click.option("--eligible-only", is_flag=True, help="Only versions eligible to run.")
@click.option("--all", "include_removed", is_flag=True, help="Also removed versions (status removed).")
@FORMAT
@WIDE
@AS_OF
@global_options
def list_(publisher: str | None, status: str | None, current_only: bool, eligible_only: bool,
          include_removed: bool, fmt: str, wide: bool, as_of: str | None) -> None:
    """The installed-skills index: one entry per installed version (with --all, removed ones too)."""
    from skill_ledger.cli.output import list_table
    from skill_ledger.projections.queries import list_entries, list_rows

    _csv_with_json(fmt)
    filters = {"publisher": publisher, "status": status, "current_only": current_only, "eligible_only": eligible_only,
               "include_removed": include_removed}
    with views(as_of) as (store, as_of_info):
        if obj().as_json:
            entries = list_entries(store.con, **filters)
            emit(True, {"count": len(entries), "as_of": as_of_info, "entries": entries}, lambda d: None)
            return
        if fmt == "csv":
            echo_csv(LIST_CSV, [_list_csv_row(e) for e in list_entries(store.con, **filters)])
            return
        lines = list_table(list_rows(store.con, **filters), width=None if wide else terminal_width())
    if as_of_info:
        click.echo(f"as of journal position {as_of_info['position']}")
    click.echo("\n".join(lines) if lines else "no skills installed")


def _list_csv_row(e: dict) -> list:
    audit = e["last_audit"] or {}
    flat = {**e, "eligible": e["eligibility"]["eligible"], "eligibility_reasons": e["eligibility"]["reasons"],
            "last_audit_at": audit.get("at"), "last_audit_trigger": audit.get("trigger"),
            "last_audit_passed": audit.get("passed")}
    return [flat.get(c) for c in LIST_CSV]


@click.command("info")
@skill_id_argument()
@click.option("--version", "version", metavar="V", help="The version (default: the current one).")
@WIDE
@AS_OF
@global_options
def info(skill_id: str, version: str | None, wide: bool, as_of: str | None) -> None:
    """Everything the index knows about a version: manifest, tools (with the runner ABI each would
    run under), its modules' imports and exports, grants, bindings, audits."""
    from skill_ledger.adapters.readmodel.readiness import module_summary
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
    summary = module_summary(obj().settings(), data["artifact_sha256"])
    by_tool = {t["tool_id"]: t for t in summary["tools"]}
    for t in data["tools"]:
        found = by_tool.get((t["id"] or "").strip(), {})
        t.update(module_path=found.get("module_path"), abi=found.get("abi"), abi_entry=found.get("entry"),
                 abi_problem=found.get("problem"))
    data["modules"] = summary["modules"]
    data["modules_problem"] = summary["problem"]
    emit(obj().as_json, data, lambda d: _render_info(d, None if wide else terminal_width()))


def _render_info(d: dict, width: int | None) -> None:
    status = d["status"] + (" by --override of a failed audit" if d["status_reason_code"] == "override" else "")
    if d["status_reason"]:
        status += f" ({d['status_reason']})"
    kv([("skill_id", d["skill_id"]), ("version", d["version"]), ("name", d["name"]),
        ("publisher", d["publisher"]), ("status", status),
        ("current", "yes" if d["current"] else "no"), ("trust", f"{d['trust_decision']} ({d['key_id']})"),
        ("eligible", "yes" if d["eligibility"]["eligible"] else "no: " + ", ".join(d["eligibility"]["reasons"])),
        ("installed_at", d["installed_at"]), ("artifact_sha256", d["artifact_sha256"])])
    click.echo("tools:")
    rows = [[t["id"], t["abi"] or "NONE", t["module_path"] or "-",
             t["abi_problem"] if t["abi_problem"] else (t["description"] or "")] for t in d["tools"]]
    table(["  tool", "abi", "module", "description"], [["  " + r[0], *r[1:]] for r in rows], width=width,
          styles={1: lambda s: "red" if s == "NONE" else None}, shrink=(3, 2, 0))
    click.echo("modules:" + (f" not readable: {safe(d['modules_problem'])}" if d["modules_problem"] else ""))
    for m in d["modules"]:
        if not m["valid"]:
            click.echo(f"  {safe(m['path'])}: INVALID: {safe(m['error'])}")
            continue
        click.echo(f"  {safe(m['path'])} ({m['size']} bytes)")
        click.echo(clip("    imports: " + (safe(", ".join(m["imports"])) or "none"), width or 10**9))
        click.echo(clip("    exports: " + (safe(", ".join(m["exports"])) or "none"), width or 10**9))
    g = d["capability_grants"] or {}
    click.echo(safe(f"grants: http_hosts={g.get('http_hosts')} secret_keys={g.get('secret_keys')} "
                    f"storage_prefixes={g.get('storage_prefixes')}"))
    click.echo("audits:")
    for a in d["audits"]:
        result = "passed" if a["passed"] else "FAILED " + ",".join(a["failed_checks"])
        click.echo(safe(f"  #{a['position']} {a['at'][:19]} {a['trigger']:<13} policy v{a['policy_version']} ")
                   + colored(safe(result), "green" if a["passed"] else "red"))


@click.command("check")
@skill_id_argument(required=False)
@click.option("--strict", is_flag=True, help="Exit 5 if any current version is not ready.")
@global_options
def check(skill_id: str | None, strict: bool) -> int:
    """Readiness of current versions: active, eligible, and the stored artifact present with the
    digest recorded at install (hashed unless the file is unchanged since a run verified it).
    Read-only; `skills verify` also checks the payload hash, signature and trust."""
    from skill_ledger.adapters.readmodel.readiness import readiness

    with views() as (store, _):
        results = readiness(obj().settings(), store.con, skill_id)
    data = {"results": results}

    def human(d: dict) -> None:
        if not d["results"]:
            click.echo("no current versions")
        for r in d["results"]:
            verdict = colored("ready", "green") if r["ready"] else colored("NOT READY", "red") + ": " + safe(
                "; ".join(r["reasons"]))
            click.echo(f"{safe(r['skill_id'])} {safe(r['version'])}: {verdict} (checked {', '.join(r['checked'])})")

    emit(obj().as_json, data, human)
    return AUDIT_FAILED if strict and any(not r["ready"] for r in results) else 0


HISTORY_CSV = ("position", "recorded_at", "stream", "kind", "principal", "host", "command", "version", "reason",
               "summary")


@click.command("history")
@skill_id_argument()
@FORMAT
@WIDE
@global_options
def history(skill_id: str, fmt: str, wide: bool) -> None:
    """Every event of a skill (its secrets included) and of its publisher's trust, oldest first."""
    from skill_ledger.adapters.journal.read import skill_history

    _csv_with_json(fmt)
    catch_up_first()
    data = to_jsonable(skill_history(obj().settings(), skill_id, notify=notice))
    if fmt == "csv":
        echo_csv(HISTORY_CSV, [[e["position"], e["recorded_at"], e["stream"], e["kind"], e["actor"]["principal"],
                                e["actor"]["host"], e["actor"]["command"], e["data"].get("version"),
                                e["data"].get("reason"), event_summary(e)] for e in data["events"]])
        return

    def human(d: dict) -> None:
        rows = []
        for e in d["events"]:
            line = event_summary(e)
            reason = e["data"].get("reason")
            if reason and reason not in line:
                line += f"  [reason: {reason}]"
            rows.append([f"#{e['position']}", e["recorded_at"][:19], e["actor"]["principal"], line])
        table(["position", "recorded at", "actor", "event"], rows, width=None if wide else terminal_width(),
              shrink=(3, 2))

    emit(obj().as_json, data, human)


def event_summary(e: dict) -> str:
    """One line for an event: the projections' summary, and the secret events' names."""
    from skill_ledger.domain.secrets import SECRET_KINDS
    from skill_ledger.projections.fold import summarize

    if e["kind"] in SECRET_KINDS:
        d = e["data"]
        verb = "removed" if e["kind"].endswith("removed") else "replaced" if d.get("replaced") else "set"
        return f"secret {d.get('scope')}/{d.get('key')} {verb} (value not recorded)"
    return summarize(e["kind"], {**e["data"], "stream": e["stream"]})


COMMANDS = [list_, info, check, history]
