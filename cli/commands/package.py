"""``skills package build|inspect|verify`` (no journal writes)."""

from __future__ import annotations

import click

from skill_ledger.cli.base import SubGroup, global_options, obj
from skill_ledger.cli.output import emit, kv, safe, table, terminal_width, to_jsonable
from skill_ledger.domain.errors import UsageError


@click.group("package", cls=SubGroup)
@global_options
def package() -> None:
    """Build, inspect and verify .palyra-skill artifacts."""


@package.command("build")
@click.option("--manifest", required=True, type=click.Path(dir_okay=False), help="The skill.toml to package.")
@click.option("--module", "modules", multiple=True, required=True, metavar="[IN_ARTIFACT=]FILE",
              help="A WebAssembly module; lands at modules/<IN_ARTIFACT> (default: the file's base name).")
@click.option("--asset", "assets", multiple=True, metavar="[IN_ARTIFACT=]FILE",
              help="An asset; lands at assets/<IN_ARTIFACT> (default: the file's base name).")
@click.option("--sbom", type=click.Path(dir_okay=False), help="A CycloneDX JSON SBOM (generated when omitted).")
@click.option("--provenance", type=click.Path(dir_okay=False), help="A provenance JSON (generated when omitted).")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="The artifact to write.")
@click.option("--signing-key-file", type=click.Path(dir_okay=False), help="Read the signing key from a file.")
@click.option("--signing-key-stdin", is_flag=True, help="Read the signing key from standard input.")
@click.option("--signing-key-env", metavar="VAR", help="Read the signing key from an environment variable.")
@click.option("--reproducible", is_flag=True,
              help="Fixed timestamps from SOURCE_DATE_EPOCH (0 when unset): identical inputs give identical bytes.")
@global_options
def build(manifest: str, modules: tuple[str, ...], assets: tuple[str, ...], sbom: str | None,
          provenance: str | None, output: str, signing_key_file: str | None, signing_key_stdin: bool,
          signing_key_env: str | None, reproducible: bool) -> None:
    """Build and sign an artifact from a manifest, modules and assets."""
    from skill_ledger.adapters.packaging import package as packaging
    from skill_ledger.adapters.storage import keys

    sources = [s for s in (signing_key_file, signing_key_stdin or None, signing_key_env) if s]
    if len(sources) != 1:
        raise UsageError("give exactly one of --signing-key-file, --signing-key-stdin, --signing-key-env")
    if signing_key_file:
        seed = keys.read_seed_file(signing_key_file)
    elif signing_key_stdin:
        seed = keys.read_seed_stdin()
    else:
        seed = keys.read_seed_env(signing_key_env or "")
    module_specs = [packaging.parse_file_spec(m) for m in modules]
    for spec in module_specs:
        _refuse_text_module(spec.name, spec.path)
    result = packaging.build_package(
        manifest_path=manifest,
        modules=module_specs,
        assets=[packaging.parse_file_spec(a) for a in assets],
        sbom_path=sbom,
        provenance_path=provenance,
        output=output,
        signing_seed=seed,
        signed_at_unix_ms=packaging.signing_time_ms(reproducible),
    )
    data = {
        "artifact": output,
        "artifact_sha256": result.artifact_sha256,
        "payload_sha256": result.payload_sha256,
        "skill_id": result.manifest.skill_id,
        "version": result.manifest.version,
        "publisher": result.manifest.publisher,
        "key_id": result.signature.key_id,
        "entries": result.entries,
    }

    def human(d: dict) -> None:
        kv((k, d[k]) for k in ("artifact", "skill_id", "version", "publisher", "key_id", "artifact_sha256", "payload_sha256"))
        click.echo("entries:")
        for e in d["entries"]:
            click.echo(f"  {safe(e)}")

    emit(obj().as_json, data, human)


TEXT_MODULE_SUFFIXES = (".wat", ".wast")


def _refuse_text_module(name: str, path: str) -> None:
    """A module in the WebAssembly text format (WAT) is a usage error with the way to compile it:
    an artifact carries binary modules only. Known by its name or by its first bytes (a binary
    module starts with ``\\0asm``; text starts with ``(`` or a ``;;`` comment)."""
    import os

    head = b""
    try:
        with open(path, "rb") as f:
            head = f.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        pass  # the build reports a missing or unreadable file itself
    if not (name.endswith(TEXT_MODULE_SUFFIXES) or path.endswith(TEXT_MODULE_SUFFIXES)
            or head.startswith((b"(", b";;", b"(;"))):
        return
    stem = os.path.splitext(os.path.basename(path))[0]
    raise UsageError(
        f"{path} is a WebAssembly text module (WAT); an artifact carries compiled binary modules: compile it first, "
        f"e.g. `wasm-tools parse {path} -o {stem}.wasm` or `wat2wasm {path} -o {stem}.wasm`, and give --module "
        f"{stem}.wasm", {"path": path})


@package.command("inspect")
@click.option("--artifact", required=True, type=click.Path(dir_okay=False), help="The .palyra-skill file.")
@global_options
def inspect(artifact: str) -> None:
    """Decode an artifact and check integrity and signature (no trust decision)."""
    from skill_ledger.adapters.packaging.package import inspect_package
    from skill_ledger.domain.manifest import manifest_to_json

    r = inspect_package(artifact)
    data = {
        "manifest": manifest_to_json(r.manifest),
        "signature": r.signature.to_dict(),
        "payload_sha256": r.payload_sha256,
        "artifact_sha256": r.artifact_sha256,
        "entries": r.entry_list(),
        "manifest_warnings": to_jsonable(r.manifest_warnings),
    }

    def human(d: dict) -> None:
        m = d["manifest"]
        kv([("skill_id", m["skill_id"]), ("version", m["version"]), ("publisher", m["publisher"]),
            ("name", m["name"]), ("key_id", d["signature"]["key_id"]),
            ("artifact_sha256", d["artifact_sha256"]), ("payload_sha256", d["payload_sha256"]),
            ("signature", "valid (integrity and signature verified; trust not evaluated)")])
        table(["path", "size", "sha256"], [[e["path"], e["size"], e["sha256"]] for e in d["entries"]],
              width=terminal_width())
        for w in d["manifest_warnings"]:
            click.echo(f"warning[{safe(w['code'])}]: {safe(w['message'])}")

    emit(obj().as_json, data, human)


@package.command("verify")
@click.option("--artifact", required=True, type=click.Path(dir_okay=False), help="The .palyra-skill file.")
@click.option("--trusted-publisher", "trusted", multiple=True, metavar="PUB=HEXKEY",
              help="Trust this publisher key for this run (repeatable).")
@click.option("--trust-store", type=click.Path(dir_okay=False), help="A trust-store JSON file to trust for this run.")
@click.option("--allow-tofu", is_flag=True,
              help="Accept an unknown publisher as an install with --allow-tofu would (nothing is pinned: "
                   "reported as would_pin_on_first_use).")
@global_options
def verify(artifact: str, trusted: tuple[str, ...], trust_store: str | None, allow_tofu: bool) -> None:
    """Fully verify an artifact, including the trust decision. Read-only: nothing is recorded or pinned.

    trust_decision is allowlisted, tofu_pinned, or would_pin_on_first_use (with --allow-tofu, for a
    publisher with no key yet: `skills install --allow-tofu` would pin it).
    """
    from skill_ledger.adapters.packaging import package as packaging
    from skill_ledger.domain.trust import TrustDecision

    store = packaging.trust_from_flags(trusted, trust_store, base=_journal_trust())
    v = packaging.verify_package(artifact, store, allow_tofu, packaging.signing_time_ms(False))
    r = v.report
    # read-only: a first-use pin is what an install would do, not something that happened
    decision = WOULD_PIN if r.trust_decision is TrustDecision.TOFU_NEWLY_PINNED else r.trust_decision.value
    data = {
        "accepted": r.accepted,
        "trust_decision": decision,
        "payload_sha256": r.payload_sha256,
        "manifest": r.manifest,
        "manifest_warnings": to_jsonable(r.manifest_warnings),
        "capability_grants": to_jsonable(r.capability_grants),
        "policy_bindings": to_jsonable(r.policy_bindings),
    }

    def human(d: dict) -> None:
        m = d["manifest"]
        kv([("accepted", "yes"), ("trust_decision", d["trust_decision"]), ("skill_id", m["skill_id"]),
            ("version", m["version"]), ("publisher", m["publisher"]), ("payload_sha256", d["payload_sha256"])])
        g = d["capability_grants"]
        click.echo(safe(f"grants: http_hosts={g['http_hosts']} secret_keys={g['secret_keys']} "
                        f"storage_prefixes={g['storage_prefixes']}"))
        for w in d["manifest_warnings"]:
            click.echo(f"warning[{safe(w['code'])}]: {safe(w['message'])}")

    emit(obj().as_json, data, human)


WOULD_PIN = "would_pin_on_first_use"


def _journal_trust():
    """The trust state projected from the journal (empty when this home has no journal)."""
    from skill_ledger.adapters.readmodel.views import journal_trust_store

    from .read import catch_up_first

    settings = obj().settings()
    if not settings.journal_is_sqlite or settings.journal_path.exists():
        catch_up_first()
    return journal_trust_store(settings)
