"""``skills journal``: the events (NDJSON with --json, CSV with --format csv), ``verify``,
``checkpoint``, the proofs (``prove``, ``consistency``, ``verify-proof``) and evidence bundles
(``export``, ``verify --bundle``). ``docs/transparency-log.md`` describes the formats."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from skill_ledger.cli.base import global_options, obj
from skill_ledger.cli.errors import JOURNAL_INTEGRITY
from skill_ledger.cli.output import emit, json_text, notice, to_jsonable

CSV_COLUMNS = ("position", "recorded_at", "stream", "stream_version", "kind", "principal", "host", "command",
               "summary", "data", "prev_hash", "hash")
WHEN = "POSITION|ISO-8601"


def _summary(e: dict) -> str:
    from skill_ledger.projections.fold import summarize

    return summarize(e["kind"], {**e["data"], "stream": e["stream"]})


def _line(e: dict) -> str:
    return (f"#{e['position']:<6} {e['recorded_at'][:19]}  {e['stream']:<28} {e['kind']:<26} "
            f"{e['actor']['principal']:<14} {_summary(e)}")


def _csv_writer() -> Any:
    import csv

    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    return writer


def _csv_row(e: dict) -> list[Any]:
    a = e["actor"]
    return [e["position"], e["recorded_at"], e["stream"], e["stream_version"], e["kind"], a["principal"], a["host"],
            a["command"], _summary(e), json_text(e["data"], pretty=False), e["prev_hash"], e["hash"]]


def _positions(settings: Any, since: str | None, until: str | None) -> tuple[int | None, int | None]:
    """``--since``/``--until`` as positions: a position as given, a time through the timeline
    (``--since T``: the events recorded at or after T; ``--until T``: at or before T)."""
    if since is None and until is None:
        return None, None
    from skill_ledger.adapters.readmodel.views import open_views
    from skill_ledger.projections.asof import resolve_when

    texts = [t for t in (since, until) if t is not None]
    if all(t.strip().isdigit() for t in texts):
        return (int(since) if since else None), (int(until) if until else None)
    store = open_views(settings, notify=notice)
    try:
        return (None if since is None else resolve_when(store.con, since, "--since", before=True),
                None if until is None else resolve_when(store.con, until, "--until"))
    finally:
        store.close()


@click.group("journal", invoke_without_command=True)
@click.option("--skill", "skill", metavar="ID", help="Only events of this skill's stream.")
@click.option("--kind", "kinds", multiple=True, metavar="KIND", help="Only events of this kind (repeatable).")
@click.option("--since", metavar=WHEN, help="Only events after this position, or recorded at or after this time.")
@click.option("--until", metavar=WHEN, help="Only events up to this position, or recorded at or before this time.")
@click.option("--limit", type=click.IntRange(min=0), metavar="N", help="At most N events.")
@click.option("--format", "fmt", type=click.Choice(["text", "ndjson", "csv"]), default=None,
              help="text (default), ndjson (as --json) or csv (a header row, then one row per event).")
@click.option("--follow", is_flag=True, help="Keep printing new events as they are appended (Ctrl-C to stop).")
@global_options
@click.pass_context
def journal(ctx: click.Context, skill: str | None, kinds: tuple[str, ...], since: str | None, until: str | None,
            limit: int | None, fmt: str | None, follow: bool) -> None:
    """The journal's events, oldest first, in the exported shape: NDJSON with --json (one JSON
    object per line, hashes included), CSV with --format csv. --actor PRINCIPAL shows only the
    events that principal appended."""
    if ctx.invoked_subcommand is not None:
        return
    from skill_ledger.adapters.journal.read import follow as follow_journal
    from skill_ledger.adapters.journal.read import journal_events
    from skill_ledger.adapters.usecases.unit_of_work import Ledger
    from skill_ledger.domain.errors import UsageError

    if obj().as_json and fmt not in (None, "ndjson"):
        raise UsageError(f"--json and --format {fmt} contradict each other")
    fmt = "ndjson" if obj().as_json else (fmt or "text")
    # A filter here (reading appends nothing, so there is no actor to record), but only when given
    # to this command: a root-level --actor (a script's or a wrapper's default principal) or
    # SKILLS_ACTOR must not silently hide events from a listing.
    given_here = ctx.get_parameter_source("actor") == click.core.ParameterSource.COMMANDLINE
    actor = obj().actor if given_here else None
    settings = obj().settings()
    first, last = _positions(settings, since, until)
    writer = _csv_writer() if fmt == "csv" else None

    def out(e: dict) -> bool:
        if actor is not None and e["actor"]["principal"] != actor:
            return False
        if writer is not None:
            writer.writerow(_csv_row(e))
        else:
            click.echo(json_text(e, pretty=False) if fmt == "ndjson" else _line(e))
        return True

    ledger = Ledger(settings)
    try:
        previous, shown = first or 0, 0
        for e in journal_events(ledger, skill=skill, kinds=kinds, since=first, until=last,
                                limit=None if actor is not None else limit):
            if limit is not None and shown >= limit:
                break
            shown += out(e)
            previous = e["position"]
        if follow:
            after = max(previous, ledger.head())
            # Everything appended from here on is printed: a script may start appending now.
            notice(f"following the journal from position {after}")
            try:
                follow_journal(ledger, out, skill=skill, kinds=kinds, after=after)
            except KeyboardInterrupt:
                pass
    finally:
        ledger.close()


# The global options as this listing reads them: --json is NDJSON here, and --actor selects the
# events a principal appended (a read appends nothing, so there is no actor to record).
for _param in journal.params:
    if _param.name == "as_json":
        _param.help = "Machine output: NDJSON on stdout (one exported event per line, hashes included)."
    elif _param.name == "actor":
        _param.help = ("Only the events this principal appended (given after `journal`; a root-level --actor "
                       "and SKILLS_ACTOR do not filter).")


def _key_option(f: Any) -> Any:
    return click.option("--public-key", "public_key", type=click.Path(dir_okay=False), metavar="FILE",
                        help="The journal's public key (a verifier key, a PEM public key, or 32 bytes raw, hex or "
                             "base64); default: the home's checkpoint key.")(f)


def _read_key(path: str | None) -> Any:
    if path is None:
        return None
    from skill_ledger.adapters.journal.verify import read_key_file

    return read_key_file(path)


@journal.command("verify")
@click.option("--since-checkpoint", is_flag=True,
              help="Only the newest checkpoint and the events after it (cost: the events after it).")
@_key_option
@click.option("--anchor", "anchor_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="The newest checkpoint as published (a checkpoint note, or an anchor file); default: the home's "
                   "journal-anchor.json.")
@click.option("--bundle", "bundle", type=click.Path(dir_okay=False, allow_dash=True), metavar="FILE",
              help="Verify an evidence bundle (skills journal export) instead of a journal: no home needed.")
@global_options
def journal_verify(since_checkpoint: bool, public_key: str | None, anchor_file: str | None, bundle: str | None) -> int:
    """Check hash chains, positions, the Merkle tree, checkpoints and the append-only guard
    (exit 9 on damage, or when checkpoints cannot be trusted: no key or no anchor)."""
    key = _read_key(public_key)
    if bundle is not None:
        if since_checkpoint or anchor_file:
            from skill_ledger.domain.errors import UsageError

            raise UsageError("--bundle verifies a bundle on its own: no --since-checkpoint or --anchor")
        return _verify_bundle(bundle, key)
    from skill_ledger.adapters.journal.verify import verify_settings_journal

    anchor = None
    if anchor_file is not None:
        from skill_ledger.adapters.storage.files import read_bounded
        from skill_ledger.adapters.usecases.checkpoints import MAX_ANCHOR_FILE, parse_anchor

        anchor = parse_anchor(read_bounded(Path(anchor_file), MAX_ANCHOR_FILE), source="argument")
    report = verify_settings_journal(obj().settings(), public_key=key, anchor=anchor, since_checkpoint=since_checkpoint)

    def human(d: dict) -> None:
        scope = (f"since the checkpoint at position {d['since']['checkpoint_position']} "
                 f"({d['since']['tree_size']} events): " if d["mode"] == "since_checkpoint" else "")
        if d["ok"]:
            click.echo(f"journal ok: {scope}{d['events']} events in {d['streams']} streams, {d['checkpoints']} "
                       f"checkpoint(s), Merkle root {d['tree_root'][:16]}… over {d['tree_size']} events, "
                       f"append-only guard {'present' if d['guard'] else 'MISSING'}")
            return
        if report.unverifiable:
            click.echo(f"JOURNAL NOT VERIFIABLE: {scope}the checkpoints cannot be trusted")
        else:
            click.echo(f"JOURNAL DAMAGED: {scope}first bad position {d['first_bad_position']}")
        for p in d["problems"]:
            click.echo(f"  position {p['position']}: {p['code']}: {p['message']}")

    emit(obj().as_json, to_jsonable(report), human)
    first = report.first_problem()
    if first is not None:
        if report.unverifiable:
            notice(f"error[journal_unverifiable]: {first.message}")
        else:
            notice(f"error[journal_tampered]: journal integrity failure at position {first.position}: {first.message}")
        return JOURNAL_INTEGRITY
    return 0


def _verify_bundle(path: str, key: Any) -> int:
    from skill_ledger.adapters.journal.bundle import verify_bundle

    if path == "-":
        report = verify_bundle(iter(sys.stdin.buffer.readline, b""), key)
    else:
        from skill_ledger.domain.errors import FileNotFound

        try:
            with open(path, "rb") as f:
                report = verify_bundle(f, key)
        except FileNotFoundError:
            raise FileNotFound(path) from None

    untrusted = [p.code for p in report.problems] == ["key_not_supplied"]

    def human(d: dict) -> None:
        span = f"positions {d['first_position']}..{d['last_position']} ({d['events']} events)"
        if d["ok"]:
            click.echo(f"bundle ok: {span} of {d['origin']}, in its signed checkpoint of {d['tree_size']} events, "
                       f"Merkle root {d['root_hash'][:16]}…")
        else:
            click.echo(f"BUNDLE {'NOT TRUSTED' if untrusted else 'DAMAGED'}: {span}")
            for p in d["problems"]:
                click.echo(f"  position {p['position']}: {p['code']}: {p['message']}")
        for note in d["notes"]:
            click.echo(f"  note: {note}")

    emit(obj().as_json, to_jsonable(report), human)
    if not report.ok:
        first = next(p for p in report.problems if p.position == report.first_bad_position)
        if untrusted:
            notice(f"error[journal_unverifiable]: {first.message}")
        else:
            notice(f"error[journal_tampered]: bundle damaged at position {first.position}: {first.message}")
        return JOURNAL_INTEGRITY
    return 0


@journal.command("checkpoint")
@click.option("--origin", metavar="NAME", help="The journal's name in its checkpoints (first checkpoint only; "
                                               "default: skill-ledger/<hash prefix of the first event>).")
@click.option("--reanchor", is_flag=True, help="Accept the journal's end as it is when journal-anchor.json is lost "
                                               "(after checking it against a published checkpoint).")
@global_options
def journal_checkpoint(origin: str | None, reanchor: bool) -> None:
    """Verify the events since the newest checkpoint, then sign the journal's Merkle tree (size
    and root) as a C2SP checkpoint with <home>/journal-signing-key.pem; record it and write it
    to <home>/journal-anchor.json. Prints the signed note (publish it anywhere)."""
    from skill_ledger.adapters.usecases.checkpoints import record_checkpoint
    from skill_ledger.adapters.usecases.session import ledger_session

    with ledger_session(obj().settings(), notify=notice) as ledger:
        result = record_checkpoint(ledger, origin=origin, reanchor=reanchor)

    def human(d: dict) -> None:
        click.echo(f"checkpoint over {d['tree_size']} events (root {d['root_hash'][:16]}…) recorded at position "
                   f"{d['positions'][0]}; origin {d['origin']}, verifier key {d['verifier_key']}")
        click.echo(d["note"], nl=False)

    emit(obj().as_json, result, human)


@journal.command("prove")
@click.argument("position", type=click.IntRange(min=1))
@click.option("--checkpoint", "size", type=click.IntRange(min=1), metavar="SIZE",
              help="The checkpoint (by its tree size) to prove inclusion in; default: the newest.")
@_key_option
@global_options
def journal_prove(position: int, size: int | None, public_key: str | None) -> None:
    """Print the inclusion proof (RFC 9162) of the event at POSITION in a checkpoint, as a JSON
    document that skills journal verify-proof checks with the public key alone."""
    from skill_ledger.adapters.journal.proofs import prove_inclusion

    doc = _with_ledger(lambda app, key: prove_inclusion(app, position, checkpoint_size=size, key=key), public_key)
    click.echo(json_text(doc, pretty=not obj().as_json))


@journal.command("consistency")
@click.argument("old_size", type=click.IntRange(min=1))
@click.argument("new_size", type=click.IntRange(min=1), required=False)
@_key_option
@global_options
def journal_consistency(old_size: int, new_size: int | None, public_key: str | None) -> None:
    """Print the consistency proof (RFC 9162) that the checkpoint of OLD_SIZE events is a prefix
    of the one of NEW_SIZE (default: the newest), as a JSON document for verify-proof."""
    from skill_ledger.adapters.journal.proofs import prove_consistency

    doc = _with_ledger(lambda app, key: prove_consistency(app, old_size, new_size, key=key), public_key)
    click.echo(json_text(doc, pretty=not obj().as_json))


def _with_ledger(action: Any, public_key: str | None) -> Any:
    from skill_ledger.adapters.usecases.checkpoints import home_public_key
    from skill_ledger.adapters.usecases.unit_of_work import Ledger

    settings = obj().settings()
    key = _read_key(public_key) or home_public_key(settings)
    ledger = Ledger(settings)
    try:
        return action(ledger.app, key)
    finally:
        ledger.close()


@journal.command("verify-proof")
@click.argument("proof", type=click.Path(dir_okay=False, allow_dash=True), default="-", required=False)
@click.option("--public-key", "public_key", type=click.Path(dir_okay=False), metavar="FILE", required=True,
              help="The journal's public key (a verifier key, a PEM public key, or 32 bytes raw, hex or base64).")
@click.option("--checkpoint", "notes", multiple=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="A checkpoint note you hold (repeatable): used instead of the proof's own copy of that size.")
@global_options
def journal_verify_proof(proof: str, public_key: str, notes: tuple[str, ...]) -> None:
    """Check a proof document (from prove or consistency; a file or - for stdin) against the
    journal's public key, with no home or journal. Exit 9 when it does not verify."""
    from skill_ledger.adapters.journal.proofs import verify_proof_document
    from skill_ledger.adapters.storage.files import read_bounded
    from skill_ledger.domain.errors import ProofError
    from skill_ledger.domain.text import loads_strict

    key = _read_key(public_key)
    data = sys.stdin.buffer.read(4 * 1024 * 1024 + 1) if proof == "-" else read_bounded(Path(proof), 4 * 1024 * 1024)
    try:
        doc = loads_strict(data)
    except ValueError as e:
        raise ProofError("document_malformed", f"not a proof document: {e}") from None
    held = [read_bounded(Path(n), 300 * 1024).decode("utf-8", errors="replace") for n in notes]
    result = verify_proof_document(doc, key, held)

    def human(d: dict) -> None:
        if d["kind"] == "inclusion":
            click.echo(f"proof ok: the event at position {d['position']} (hash {d['event_hash'][:16]}…) is in "
                       f"{d['origin']}'s signed checkpoint of {d['tree_size']} events")
        else:
            click.echo(f"proof ok: {d['origin']}'s checkpoint of {d['old_size']} events is a prefix of its "
                       f"checkpoint of {d['new_size']} events")

    emit(obj().as_json, result, human)


@journal.command("export")
@click.option("--output", "output", type=click.Path(dir_okay=False, writable=True), metavar="FILE", required=True,
              help="The bundle file to write (replaced atomically).")
@click.option("--since", metavar=WHEN, help="Only events after this position (or recorded at or after this time).")
@click.option("--until", metavar=WHEN, help="Only events up to this position (or time); default: the newest "
                                            "checkpoint.")
@global_options
def journal_export(output: str, since: str | None, until: str | None) -> None:
    """Write an evidence bundle: the events as NDJSON, the checkpoint notes covering them, the
    public key and the Merkle material that lets skills journal verify --bundle (or
    docs/verify_bundle.py) check them with no home."""
    from skill_ledger.adapters.journal.bundle_export import export_bundle
    from skill_ledger.adapters.usecases.checkpoints import home_public_key
    from skill_ledger.adapters.usecases.unit_of_work import Ledger

    settings = obj().settings()
    first, last = _positions(settings, since, until)
    ledger = Ledger(settings)
    try:
        result = export_bundle(ledger.app, Path(output), since=first, until=last, key=home_public_key(settings))
    finally:
        ledger.close()
    emit(obj().as_json, result, lambda d: click.echo(
        f"wrote {d['output']}: positions {d['first_position']}..{d['last_position']} ({d['events']} events) of "
        f"{d['origin']}, against its checkpoint of {d['tree_size']} events"))


COMMANDS = [journal]
