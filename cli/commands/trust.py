"""``skills trust list|allow|revoke|import|export`` and ``skills policy show|set``."""

from __future__ import annotations

import click

from skill_ledger.cli.base import SubGroup, global_options, obj, reason_option, set_interrupt_state
from skill_ledger.cli.errors import exit_code_for
from skill_ledger.cli.output import emit, notice, safe, table, terminal_width, to_jsonable

from .lifecycle import session


@click.group("trust", cls=SubGroup)
@global_options
def trust() -> None:
    """Publisher keys: allowlist, TOFU pins, revocations."""


WIDE = click.option("--wide", is_flag=True, help="Do not cut long cells to fit the terminal.")


@trust.command("list")
@WIDE
@global_options
def trust_list(wide: bool) -> None:
    """Every publisher key the journal knows, with its kind and state."""
    from skill_ledger.adapters.readmodel.views import open_views
    from skill_ledger.projections.queries import trust_publishers

    from .read import caught_up

    store = open_views(obj().settings(), notify=notice, **caught_up())
    try:
        data = {"publishers": trust_publishers(store.con)}
    finally:
        store.close()

    def human(d: dict) -> None:
        rows = [[p["publisher"], k["key_id"], k["kind"], k["state"], k["since"]] for p in d["publishers"]
                for k in p["keys"]]
        if not rows:
            click.echo("no publisher keys recorded")
        table(["publisher", "key_id", "kind", "state", "since"], rows, width=None if wide else terminal_width(),
              styles={3: lambda s: {"active": "green", "revoked": "red"}.get(s)}, shrink=(4, 0))

    emit(obj().as_json, data, human)


def _render_trust(verb: str):
    def human(d: dict) -> None:
        state = verb if d["changed"] else "no change"
        click.echo(f"{safe(d['publisher'])} {d['key_id']}: {state}")
        for q in d.get("quarantined", []):
            click.echo(f"quarantined {safe(q['skill_id'])} {safe(q['version'])} ({q['reason_code']})")
        if d["positions"]:
            click.echo(f"journal positions: {', '.join(map(str, d['positions']))}")

    return human


KEY_ARGUMENT = click.argument("key", required=False, metavar="KEY")
KEY_FILE = click.option("--key-file", type=click.Path(dir_okay=False), metavar="FILE",
                        help="Read the public key from FILE (PEM or OpenSSH public key, raw 32 bytes, hex, base64) "
                             "instead of KEY.")


def _trust_change(change, publisher: str, key: str | None, key_file: str | None, reason: str):
    from skill_ledger.adapters.usecases.trust import resolve_key

    with session() as ledger:
        return change(ledger, publisher, resolve_key(ledger, publisher, key, key_file), reason)


@trust.command("allow")
@click.argument("publisher")
@KEY_ARGUMENT
@KEY_FILE
@reason_option("trust change")
@global_options
def trust_allow(publisher: str, key: str | None, key_file: str | None, reason: str) -> None:
    """Allowlist a public key of PUBLISHER.

    KEY is the 64-hex Ed25519 public key, or a key id (ed25519:<16 hex>) exactly as `skills trust
    list` prints it, resolved against the keys the journal knows for PUBLISHER; or give --key-file.
    A malformed or unknown key is a usage error (exit 2).
    """
    from skill_ledger.adapters.usecases.trust import allow

    result = _trust_change(allow, publisher, key, key_file, reason)
    emit(obj().as_json, to_jsonable(result), _render_trust("allowlisted"))


@trust.command("revoke")
@click.argument("publisher")
@KEY_ARGUMENT
@KEY_FILE
@reason_option("trust change")
@global_options
def trust_revoke(publisher: str, key: str | None, key_file: str | None, reason: str) -> int:
    """Revoke a key of PUBLISHER; every installed version signed by it is quarantined (trust_revoked).

    KEY is given as for `skills trust allow`. A key never seen before is recorded too (a pre-emptive
    revocation); it must then be given as hex or --key-file.
    """
    from skill_ledger.adapters.usecases.trust import revoke

    set_interrupt_state("a revocation already recorded stands (the key is refused by run, verify and re-audit); "
                        "run the command again to quarantine what the sweep had not reached")
    result = _trust_change(revoke, publisher, key, key_file, reason)
    emit(obj().as_json, to_jsonable(result), _render_trust("revoked"))
    return 0


@trust.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@reason_option("trust change")
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
            click.echo(f"conflict: {safe(c['publisher'])} {c['key_hex']}: {safe(c['reason'])}")

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


def _policy_lines(policy: dict) -> None:
    """The members as ``KEY=VALUE`` lines, exactly the syntax ``policy set`` takes."""
    from skill_ledger.domain.policy import setting_text

    click.echo("\n".join(safe(setting_text(k, v)) for k, v in policy.items()))


@policy.command("show")
@global_options
def policy_show() -> None:
    """The current audit policy and its version, one KEY=VALUE per line in the syntax `policy set` takes."""
    from skill_ledger.adapters.usecases.policy import current_policy
    from skill_ledger.adapters.usecases.unit_of_work import Ledger

    ledger = Ledger(obj().settings())
    try:
        data = to_jsonable(current_policy(ledger))
    finally:
        ledger.close()

    def human(d: dict) -> None:
        click.echo(f"# policy version {d['policy_version']}")
        _policy_lines(d["policy"])

    emit(obj().as_json, data, human)


@policy.command("set")
@click.argument("settings", nargs=-1, required=True, metavar="KEY=VALUE...")
@reason_option("policy change")
@click.option("--reaudit", is_flag=True, help="Re-audit every installed version under the new policy now.")
@global_options
def policy_set(settings: tuple[str, ...], reason: str, reaudit: bool) -> int:
    """Change audit policy members. VALUE is JSON, as `policy show` prints it, checked against the
    member's type and range (a bad value is exit 2), e.g.

    \b
      skills policy set max_exported_functions=64 allow_device_capabilities=false --reason TEXT
      skills policy set 'allowed_import_modules=["skills:host/v1"]' --reason TEXT
      skills policy set vulnerability_feed_path=null --reason TEXT

    A list may also be given bare and comma-separated, a path bare.
    """
    from skill_ledger.adapters.usecases.policy import set_policy

    with session() as ledger:
        result = set_policy(ledger, settings, reason, reaudit=reaudit)

    def human(d: dict) -> None:
        changed = ", ".join(d["changed"]) or "nothing"
        click.echo(f"# policy version {d['policy_version']} (changed: {changed})")
        _policy_lines(d["policy"])
        if "reaudit" in d:
            r = d["reaudit"]
            click.echo(f"re-audited {r['checked']}: {r['passed']} passed, {len(r['quarantined'])} quarantined")

    emit(obj().as_json, to_jsonable(result), human)
    code = result.failure_code()
    return exit_code_for(code) if code else 0


COMMANDS = [trust, policy]
