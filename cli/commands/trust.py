"""``skills trust list|allow|revoke|import|export`` and ``skills policy show|set``."""

from __future__ import annotations

import click

from skill_ledger.cli.base import SubGroup, global_options, obj
from skill_ledger.cli.errors import exit_code_for
from skill_ledger.cli.output import emit, kv, notice, table, to_jsonable

from .lifecycle import session


@click.group("trust", cls=SubGroup)
@global_options
def trust() -> None:
    """Publisher keys: allowlist, TOFU pins, revocations."""


@trust.command("list")
@global_options
def trust_list() -> None:
    """Every publisher key the journal knows, with its kind and state."""
    from skill_ledger.adapters.readmodel.views import open_views
    from skill_ledger.projections.queries import trust_publishers

    store = open_views(obj().settings(), notify=notice)
    data = {"publishers": trust_publishers(store.con)}

    def human(d: dict) -> None:
        rows = [[p["publisher"], k["key_id"], k["kind"], k["state"], k["since"]] for p in d["publishers"] for k in p["keys"]]
        if not rows:
            click.echo("no publisher keys recorded")
        table(["publisher", "key_id", "kind", "state", "since"], rows)

    emit(obj().as_json, data, human)


def _render_trust(verb: str):
    def human(d: dict) -> None:
        state = verb if d["changed"] else "no change"
        click.echo(f"{d['publisher']} {d['key_id']}: {state}")
        for q in d.get("quarantined", []):
            click.echo(f"quarantined {q['skill_id']} {q['version']} ({q['reason_code']})")
        if d["positions"]:
            click.echo(f"journal positions: {', '.join(map(str, d['positions']))}")

    return human


@trust.command("allow")
@click.argument("publisher")
@click.argument("hexkey")
@click.option("--reason", required=True, help="Why (recorded on the event).")
@global_options
def trust_allow(publisher: str, hexkey: str, reason: str) -> None:
    """Allowlist PUBLISHER's Ed25519 public key HEXKEY (64 hex characters)."""
    from skill_ledger.adapters.usecases.trust import allow

    with session() as ledger:
        result = allow(ledger, publisher, hexkey, reason)
    emit(obj().as_json, to_jsonable(result), _render_trust("allowlisted"))


@trust.command("revoke")
@click.argument("publisher")
@click.argument("hexkey")
@click.option("--reason", required=True, help="Why (recorded on the event).")
@global_options
def trust_revoke(publisher: str, hexkey: str, reason: str) -> int:
    """Revoke a key; every installed version signed by it is quarantined (trust_revoked)."""
    from skill_ledger.adapters.usecases.trust import revoke

    with session() as ledger:
        result = revoke(ledger, publisher, hexkey, reason)
    emit(obj().as_json, to_jsonable(result), _render_trust("revoked"))
    return 0


@trust.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--reason", default="trust import", show_default=True, help="Recorded on each event.")
@global_options
def trust_import(file: str, reason: str) -> None:
    """Import a trust-store JSON file: allowlisted keys and TOFU pins become journal events."""
    from pathlib import Path

    from skill_ledger.adapters.storage.truststore_file import load_trust_store
    from skill_ledger.domain.errors import FileNotFound

    if not Path(file).exists():
        raise FileNotFound(file)
    from skill_ledger.adapters.usecases.trust import import_trust

    store = load_trust_store(file)
    with session() as ledger:
        result = import_trust(ledger, store, reason)

    def human(d: dict) -> None:
        click.echo(f"allowlisted {len(d['allowlisted'])} key(s), pinned {len(d['pinned'])}, "
                   f"{len(d['conflicts'])} conflict(s)")
        for c in d["conflicts"]:
            click.echo(f"conflict: {c['publisher']} {c['key_hex']}: {c['reason']}")

    emit(obj().as_json, to_jsonable(result), human)


@trust.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the file here (default: stdout).")
@global_options
def trust_export(output: str | None) -> None:
    """Write the active trust state in the trust-store interchange format."""
    from skill_ledger.adapters.readmodel.views import open_views
    from skill_ledger.domain.text import dumps_pretty
    from skill_ledger.projections.exports import trust_store_document
    from skill_ledger.projections.queries import trust_interchange

    store = open_views(obj().settings(), notify=notice)
    trusted, tofu, _revoked = trust_interchange(store.con)
    write_document(dumps_pretty(trust_store_document(trusted, tofu)), output)


def write_document(text: str, output: str | None) -> None:
    if output:
        from skill_ledger.adapters.storage.files import atomic_write

        atomic_write(output, text.encode("utf-8"))
        notice(f"wrote {output}")
    else:
        click.echo(text)


@click.group("policy", cls=SubGroup)
@global_options
def policy() -> None:
    """The audit policy, recorded as events."""


@policy.command("show")
@global_options
def policy_show() -> None:
    """The current audit policy and its version."""
    from skill_ledger.adapters.usecases.policy import current_policy
    from skill_ledger.adapters.usecases.unit_of_work import Ledger

    ledger = Ledger(obj().settings())
    try:
        data = to_jsonable(current_policy(ledger))
    finally:
        ledger.close()

    def human(d: dict) -> None:
        click.echo(f"policy version {d['policy_version']}")
        kv(d["policy"].items())

    emit(obj().as_json, data, human)


@policy.command("set")
@click.argument("settings", nargs=-1, required=True, metavar="KEY=VALUE...")
@click.option("--reason", required=True, help="Why (recorded on the event).")
@click.option("--reaudit", is_flag=True, help="Re-audit every installed version under the new policy now.")
@global_options
def policy_set(settings: tuple[str, ...], reason: str, reaudit: bool) -> int:
    """Change audit policy members, e.g. max_exported_functions=64 allow_device_capabilities=false."""
    from skill_ledger.adapters.usecases.policy import set_policy

    with session() as ledger:
        result = set_policy(ledger, settings, reason, reaudit=reaudit)

    def human(d: dict) -> None:
        changed = ", ".join(d["changed"]) or "nothing"
        click.echo(f"policy version {d['policy_version']} (changed: {changed})")
        kv(d["policy"].items())
        if "reaudit" in d:
            r = d["reaudit"]
            click.echo(f"re-audited {r['checked']}: {r['passed']} passed, {len(r['quarantined'])} quarantined")

    emit(obj().as_json, to_jsonable(result), human)
    code = result.failure_code()
    return exit_code_for(code) if code else 0


COMMANDS = [trust, policy]
