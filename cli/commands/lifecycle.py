"""Lifecycle commands: install, remove, rollback, quarantine, disable, enable."""

from __future__ import annotations

import click

from skill_ledger.cli.base import global_options, obj, reason_option, set_interrupt_state, skill_id_argument
from skill_ledger.cli.errors import AUDIT_FAILED
from skill_ledger.cli.output import emit, kv, notice, safe, status_color, to_jsonable

REASON = reason_option("state change")
VERSION = click.option("--version", "version", metavar="V", help="The version (default: the current one).")


def session():
    from skill_ledger.adapters.usecases.session import ledger_session

    return ledger_session(obj().settings(), notify=notice)


def _render_change(verb: str):
    from skill_ledger.cli.output import colored

    def human(d: dict) -> None:
        state = "no change" if not d["changed"] else verb
        status = colored(safe(d["status"]), status_color(d["status"] or ""))
        click.echo(f"{safe(d['skill_id'])} {safe(d['version'])}: {state} (status {status}, "
                   f"current {safe(d['current'] or '-')})")
        if d["positions"]:
            click.echo(f"journal positions: {', '.join(map(str, d['positions']))}")

    return human


@click.command("install")
@click.option("--artifact", type=click.Path(dir_okay=False), help="A .palyra-skill file.")
@click.option("--registry", "registry", metavar="NAME",
              help="Install from this registry (skills registry add) instead; needs --skill-id.")
@click.option("--skill-id", "skill_id", metavar="ID", help="With --registry: the skill to install.")
@click.option("--version", "version", metavar="V",
              help="With --registry: this version (default: the highest the registry vouches for).")
@click.option("--allow-tofu", is_flag=True, help="Pin an unknown publisher's key on first use.")
@click.option("--trusted-publisher", "trusted", multiple=True, metavar="PUB=HEXKEY",
              help="Allowlist this publisher key first (recorded as publisher.key_allowlisted).")
@global_options
def install(artifact: str | None, registry: str | None, skill_id: str | None, version: str | None, allow_tofu: bool,
            trusted: tuple[str, ...]) -> int:
    """Verify, audit, store and install an artifact (--artifact FILE, or --registry NAME
    --skill-id ID [--version V]: downloaded and verified with TUF first); make it current.

    Exit 0 when the version is active, 5 when its audit failed and it was installed
    quarantined, 3 when the artifact (or the registry's metadata) was rejected, 4 when its
    publisher is not trusted.
    """
    if registry is not None or skill_id is not None or version is not None:
        from skill_ledger.cli.commands.registry import install_from_registry

        return install_from_registry(registry, skill_id, version, artifact, allow_tofu, trusted)
    if artifact is None:
        raise click.UsageError("give --artifact FILE or --registry NAME --skill-id ID")
    from skill_ledger.adapters.packaging.package import parse_trusted_publisher
    from skill_ledger.adapters.usecases.install import install as install_artifact

    pairs = [parse_trusted_publisher(t) for t in trusted]
    set_interrupt_state("the install is recorded whole or not at all; `skills list` shows which (run it again: "
                        "an install of the same artifact that completed is a no-op)")
    with session() as ledger:
        result = install_artifact(ledger, artifact, allow_tofu=allow_tofu, trusted_publishers=pairs)
    data = to_jsonable(result)

    def human(d: dict) -> None:
        if d["already_installed"]:
            click.echo(f"{safe(d['skill_id'])} {safe(d['version'])} is already installed with this payload; "
                       "nothing to do")
            return
        kv([("skill_id", d["skill_id"]), ("version", d["version"]), ("publisher", d["publisher"]),
            ("trust_decision", d["trust_decision"]), ("status", d["status"]), ("current", "yes" if d["current"] else "no"),
            ("key_id", d["key_id"]), ("artifact_sha256", d["artifact_sha256"]),
            ("audit", "passed" if d["audit"]["passed"] else "FAILED: " + ", ".join(d["audit"]["failed_checks"])),
            ("positions", ", ".join(map(str, d["positions"])))])

    emit(obj().as_json, data, human)
    return AUDIT_FAILED if result.status == "quarantined" else 0


@click.command("remove")
@skill_id_argument()
@VERSION
@REASON
@global_options
def remove(skill_id: str, version: str | None, reason: str) -> None:
    """Remove a version (default: the current one); the highest remaining becomes current.

    The stored artifact is deleted when no installed version references it. History stays.
    """
    from skill_ledger.adapters.usecases import lifecycle

    with session() as ledger:
        result = lifecycle.remove(ledger, skill_id, version, reason)
    emit(obj().as_json, to_jsonable(result), _render_change("removed"))


@click.command("rollback")
@skill_id_argument()
@click.option("--to", "to_version", metavar="VERSION", help="The installed version to make current "
              "(default: the previous current).")
@REASON
@global_options
def rollback(skill_id: str, to_version: str | None, reason: str) -> None:
    """Make an installed earlier version current. The target must be active: a disabled or
    quarantined one is refused (exit 2); `skills enable` it first."""
    from skill_ledger.adapters.usecases import lifecycle

    with session() as ledger:
        result = lifecycle.rollback(ledger, skill_id, to_version, reason)
    emit(obj().as_json, to_jsonable(result), _render_change("rolled back"))


@click.command("quarantine")
@skill_id_argument()
@VERSION
@REASON
@global_options
def quarantine(skill_id: str, version: str | None, reason: str) -> None:
    """Quarantine a version: it cannot run until `skills enable`."""
    from skill_ledger.adapters.usecases import lifecycle

    with session() as ledger:
        result = lifecycle.quarantine(ledger, skill_id, version, reason)
    emit(obj().as_json, to_jsonable(result), _render_change("quarantined"))


@click.command("disable")
@skill_id_argument()
@VERSION
@REASON
@global_options
def disable(skill_id: str, version: str | None, reason: str) -> None:
    """Disable an active version (an operator's pause; `skills enable` undoes it)."""
    from skill_ledger.adapters.usecases import lifecycle

    with session() as ledger:
        result = lifecycle.disable(ledger, skill_id, version, reason)
    emit(obj().as_json, to_jsonable(result), _render_change("disabled"))


@click.command("enable")
@skill_id_argument()
@VERSION
@REASON
@click.option("--override", is_flag=True, help="Enable even if the fresh audit fails (recorded on the event). "
              "Never overrides a verification failure.")
@global_options
def enable(skill_id: str, version: str | None, reason: str, override: bool) -> None:
    """Re-verify and re-audit a quarantined or disabled version, then make it active."""
    from skill_ledger.adapters.usecases import lifecycle

    with session() as ledger:
        result = lifecycle.enable(ledger, skill_id, version, reason, override)
    emit(obj().as_json, to_jsonable(result), _render_change("enabled"))


COMMANDS = [install, remove, rollback, quarantine, disable, enable]
