"""``skills keys generate|show``."""

from __future__ import annotations

import click

from skill_ledger.cli.base import SubGroup, global_options, obj
from skill_ledger.cli.output import emit, kv, to_jsonable


@click.group("keys", cls=SubGroup)
@global_options
def keys() -> None:
    """Ed25519 signing keys (PKCS#8 PEM files, mode 0600)."""


def _render_facts(d: dict) -> None:
    kv((k, d[k]) for k in ("key_id", "public_key_hex", "public_key_base64", "path"))


@keys.command("generate")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="Where to write the private key.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@global_options
def generate(output: str, force: bool) -> None:
    """Generate a new Ed25519 signing key and print its public facts."""
    from skill_ledger.adapters.storage.keys import generate_key_file

    facts = generate_key_file(output, force)
    emit(obj().as_json, {**to_jsonable(facts), "path": output}, _render_facts)


@keys.command("show")
@click.option("--signing-key-file", "key_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="A private key file: PKCS#8 PEM, OpenSSH, raw 32 bytes, hex or base64.")
@click.option("--key", "old_key_path", type=click.Path(dir_okay=False), hidden=True)  # the old spelling
@global_options
def show(key_path: str | None, old_key_path: str | None) -> None:
    """Print the public facts (key id, public key) of a signing key file
    (--signing-key-file, the spelling `package build` uses too)."""
    from skill_ledger.adapters.storage.keys import key_facts_from_file
    from skill_ledger.domain.errors import UsageError

    if (key_path is None) == (old_key_path is None):
        raise UsageError("give the signing key file once: --signing-key-file FILE")
    key_path = key_path or old_key_path or ""
    facts = key_facts_from_file(key_path)
    emit(obj().as_json, {**to_jsonable(facts), "path": key_path}, _render_facts)
