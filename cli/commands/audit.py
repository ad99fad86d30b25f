"""``skills verify``, ``skills audit`` and ``skills reaudit`` (with ``--watch``)."""

from __future__ import annotations

import click

from skill_ledger.cli.base import SKILL_ID, global_options, obj, set_interrupt_state, skill_id_argument
from skill_ledger.cli.errors import AUDIT_FAILED, exit_code_for
from skill_ledger.cli.output import colored, emit, json_text, notice, progress_bar, safe, to_jsonable

from .lifecycle import VERSION, session


@click.command("verify")
@skill_id_argument()
@VERSION
@global_options
def verify(skill_id: str, version: str | None) -> int:
    """Re-verify a stored artifact against the digests recorded at install, its signature and the
    current trust state. A mismatch quarantines the version and exits 5."""
    from skill_ledger.adapters.usecases.verification import verify as verify_stored

    with session() as ledger:
        result = verify_stored(ledger, skill_id, version)

    def human(d: dict) -> None:
        if d["ok"]:
            click.echo(f"{safe(d['skill_id'])} {safe(d['version'])}: {colored('verified', 'green')} "
                       f"({d['trust_decision']})")
        else:
            click.echo(f"{safe(d['skill_id'])} {safe(d['version'])}: {colored('FAILED', 'red')} ({d['reason_code']}): "
                       f"{safe(d['message'])}; status {safe(d['status'])}")

    emit(obj().as_json, to_jsonable(result), human)
    return 0 if result.ok else AUDIT_FAILED


_MARKERS = {"pass": ("ok  ", "green"), "warn": ("warn", "yellow"), "fail": ("FAIL", "red"), "skipped": ("skip", None)}


def _render_report(d: dict) -> None:
    r = d["report"] if "report" in d else d
    verdict = colored("PASSED", "green") if r["passed"] else colored("FAILED", "red")
    click.echo(f"{safe(r['skill_id'])} {safe(r['version'])} ({safe(r['publisher'])}, {r['trust_decision']}): {verdict}")
    for c in r["checks"]:
        marker, color = _MARKERS[c["status"]]
        click.echo(f"  [{colored(marker, color)}] {c['check_id']}: {safe(c['message'])}")
    if d.get("quarantined"):
        click.echo("the version was quarantined (audit_failed)")


@click.command("audit")
@click.argument("skill_id", required=False, type=SKILL_ID)
@VERSION
@click.option("--artifact", type=click.Path(dir_okay=False), help="Audit a file instead (read-only).")
@click.option("--trusted-publisher", "trusted", multiple=True, metavar="PUB=HEXKEY",
              help="With --artifact: trust this key for this run only.")
@click.option("--allow-tofu", is_flag=True, help="With --artifact: accept an unknown publisher for this run.")
@click.option("--no-quarantine", is_flag=True, help="Record the audit but do not quarantine on failure.")
@global_options
def audit(skill_id: str | None, version: str | None, artifact: str | None, trusted: tuple[str, ...],
          allow_tofu: bool, no_quarantine: bool) -> int:
    """Audit an installed version (recorded; quarantines on failure) or an artifact file (read-only).
    Prints the audit report; exit 0 when it passed, 5 when it did not."""
    from skill_ledger.domain.errors import UsageError

    if bool(skill_id) == bool(artifact):
        raise UsageError("give either SKILL_ID or --artifact FILE")
    if artifact:
        from skill_ledger.adapters.packaging.package import read_artifact, trust_from_flags
        from skill_ledger.adapters.usecases.unit_of_work import Ledger
        from skill_ledger.adapters.usecases.verification import audit_file

        ledger = Ledger(obj().settings())
        try:
            run = audit_file(ledger, read_artifact(artifact), allow_tofu=allow_tofu,
                             extra_trust=trust_from_flags(trusted, None))
        finally:
            ledger.close()
        data = to_jsonable(run.report)
    else:
        from skill_ledger.adapters.usecases.verification import audit_installed

        with session() as ledger:
            run = audit_installed(ledger, skill_id or "", version, quarantine=not no_quarantine)
        data = {**to_jsonable(run.report), "quarantined": run.quarantined, "positions": run.positions}
    emit(obj().as_json, data, _render_report)
    return 0 if run.report.passed else AUDIT_FAILED


@click.command("reaudit")
@click.option("--watch", is_flag=True, help="Repeat every --interval until SIGTERM/SIGINT (a service loop).")
@click.option("--interval", default="6h", show_default=True, metavar="DURATION",
              help="Time between passes with --watch: 30s, 15m, 6h, 1d; 0 disables repetition.")
@click.option("--max-runs", type=click.IntRange(min=1), metavar="N", help="Stop after N passes.")
@click.option("--verify-interval", default="24h", show_default=True, metavar="DURATION",
              help="With --watch: also compare the views with the journal (index verify) in the first pass and "
                   "then at most this often; drift is logged and recorded in the pass; 0 disables.")
@global_options
def reaudit(watch: bool, interval: str, max_runs: int | None, verify_interval: str) -> int:
    """Verify and audit every installed version; quarantine failures. A passing audit never
    re-activates a quarantined version. Writes nothing for a version whose result is unchanged."""
    import datetime as dt

    from skill_ledger.adapters.audit.reaudit import Reauditor, Stop
    from skill_ledger.adapters.audit.reaudit import watch as watch_loop
    from skill_ledger.domain.schedule import parse_duration

    seconds = parse_duration(interval)
    verify_seconds = parse_duration(verify_interval)
    as_json = obj().as_json

    def data_of(result) -> dict:
        d = to_jsonable(result)
        return {"checked": d["checked"], "passed": d["passed"], "quarantined": d["quarantined"],
                "positions": d["positions"], "skipped_unchanged": d["skipped_unchanged"],
                "duration_ms": d["duration_ms"]}

    if not watch:
        set_interrupt_state("versions already checked keep what this pass recorded for them; run reaudit again "
                            "to check the rest")
        with session() as ledger:
            reauditor = Reauditor(ledger)
            with progress_bar(reauditor.count(), "Re-auditing", hidden=as_json) as update:
                result = reauditor.run_pass(progress=update)
        data = data_of(result)
        data["already_quarantined"] = _already_quarantined(data["quarantined"])
        emit(as_json, data, _render_pass)
        code = result.failure_code()
        return exit_code_for(code) if code else 0

    stop = Stop()
    stop.install()

    def on_pass(n: int, result) -> None:
        d = data_of(result)
        views = result.views_verify
        if views is not None:  # one log line for the comparison with the journal
            notice(f"reaudit: pass {n}: views match the journal" if views.ok else
                   f"reaudit: pass {n}: VIEWS DRIFT: the views differ from the journal ({views.differences} "
                   f"difference(s); first: {views.first}); `skills index verify` shows them, "
                   "`skills index rebuild` rebuilds the views")
        if as_json:
            d["views_verify"] = to_jsonable(views) if views is not None else None
            click.echo(json_text({"pass": n, **d}, pretty=False))
        else:
            now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            q = ", ".join(f"{safe(x['skill_id'])} {safe(x['version'])} ({x['reason_code']})"
                          for x in d["quarantined"]) or "none"
            click.echo(f"{now} reaudit pass {n}: checked {d['checked']}, passed {d['passed']}, "
                       f"quarantined {q}, {d['duration_ms']} ms", err=False)

    def on_wait(_seconds: int) -> None:  # a service log line; tests wait for it before signalling
        notice(f"reaudit: watching; next pass in {interval}")

    with session() as ledger:
        runs = watch_loop(ledger, interval_s=seconds, max_runs=max_runs, on_pass=on_pass, stop=stop,
                          on_wait=on_wait, verify_interval_s=verify_seconds)
    notice(f"reaudit: stopped after {runs} pass(es)")
    return 0


def _already_quarantined(now: list[dict]) -> list[dict]:
    """Installed versions that were quarantined before this pass. They are re-verified and re-audited
    like the others (and count as passed when their audit passes), but a pass never re-activates a
    version (only ``skills enable`` does, after its own verification and audit), so they stay
    quarantined and are not counted as quarantined by this pass: said here, not left to guess."""
    from skill_ledger.adapters.readmodel.views import open_views
    from skill_ledger.projections.queries import list_entries

    this_pass = {(q["skill_id"], q["version"]) for q in now}
    store = open_views(obj().settings(), notify=notice)
    try:
        entries = list_entries(store.con, status="quarantined")
    finally:
        store.close()
    return [{"skill_id": e["skill_id"], "version": e["version"], "reason_code": e["status_reason_code"],
             "reason": e["status_reason"]}
            for e in entries if (e["skill_id"], e["version"]) not in this_pass]


def _render_pass(d: dict) -> None:
    click.echo(f"checked {d['checked']}, passed {d['passed']}, quarantined {len(d['quarantined'])}"
               + (f", already quarantined {len(d['already_quarantined'])}" if d["already_quarantined"] else ""))
    for q in d["quarantined"]:
        click.echo(f"  quarantined {safe(q['skill_id'])} {safe(q['version'])} ({q['reason_code']})")
    for q in d["already_quarantined"]:
        click.echo(f"  still quarantined {safe(q['skill_id'])} {safe(q['version'])} ({safe(q['reason_code'])}): "
                   f"re-audited, but a re-audit never re-activates a version; "
                   f"`skills enable {safe(q['skill_id'])} --version {safe(q['version'])} --reason TEXT` re-verifies "
                   "and re-audits it")


COMMANDS = [verify, audit, reaudit]
