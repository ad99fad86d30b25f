"""``skills registry ...`` (a TUF registry: the publisher's side and the operator's), ``skills
update``, and ``skills install --registry`` (called from the install command)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from skill_ledger.cli.base import SubGroup, global_options, obj
from skill_ledger.cli.errors import AUDIT_FAILED, exit_code_for
from skill_ledger.cli.output import emit, kv, notice, table, to_jsonable

ROLES = ("root", "targets", "snapshot", "timestamp")


def session():
    from skill_ledger.adapters.usecases.session import ledger_session

    return ledger_session(obj().settings(), notify=notice)


@click.group("registry", cls=SubGroup)
@global_options
def registry() -> None:
    """TUF registries: publish one (init, publish, refresh-timestamp, rotate-root; no journal
    writes) and use one (add, list, remove, refresh; recorded in the journal)."""


# --- the publisher's side ---------------------------------------------------------------------

KEYS_DIR = click.option("--keys-dir", type=click.Path(file_okay=False), metavar="DIR",
                        help="Where the signing keys are (default: DIR.keys beside the registry; never inside it).")
KEY_FILES = click.option("--key", "keys", multiple=True, type=click.Path(dir_okay=False), metavar="FILE",
                         help="Another signing key file, e.g. an offline root or targets key (repeatable).")
ROLE_KEYS = [
    click.option("--keys", "new_keys", multiple=True, metavar="ROLE=N",
                 help="Give ROLE (root, targets, snapshot, timestamp) N new keys (repeatable)."),
    click.option("--key-file", "key_files", multiple=True, metavar="ROLE=FILE",
                 help="Give ROLE this existing key file, e.g. from `skills keys generate` (repeatable)."),
    click.option("--threshold", "thresholds", multiple=True, metavar="ROLE=N",
                 help="How many of ROLE's keys must sign (default 1; repeatable)."),
]


def role_key_options(f):
    for option in reversed(ROLE_KEYS):
        f = option(f)
    return f


def _pairs(values: Iterable[str], option: str) -> list[tuple[str, str]]:
    from skill_ledger.domain.errors import UsageError

    out = []
    for value in values:
        role, sep, rest = value.partition("=")
        if not sep or role not in ROLES or not rest:
            raise UsageError(f"{option} takes ROLE=VALUE with ROLE one of {', '.join(ROLES)}, not {value!r}",
                             {"option": option, "value": value})
        out.append((role, rest))
    return out


def _count(value: str, option: str) -> int:
    from skill_ledger.domain.errors import UsageError

    if not value.isdigit() or not 1 <= int(value) <= 16:
        raise UsageError(f"{option} takes a number from 1 to 16, not {value!r}", {"option": option, "value": value})
    return int(value)


def role_specs(new_keys: tuple[str, ...], key_files: tuple[str, ...], thresholds: tuple[str, ...]) -> dict[str, Any]:
    """The roles named by --keys / --key-file, each a ``RoleKeys`` with its --threshold."""
    from skill_ledger.adapters.registry.repository import RoleKeys
    from skill_ledger.domain.errors import UsageError

    counts = {r: _count(v, "--keys") for r, v in _pairs(new_keys, "--keys")}
    files: dict[str, list[Path]] = {}
    for role, path in _pairs(key_files, "--key-file"):
        files.setdefault(role, []).append(Path(path))
    both = set(counts) & set(files)
    if both:
        raise UsageError("give a role new keys (--keys) or key files (--key-file), not both: "
                         + ", ".join(sorted(both)))
    limits = {r: _count(v, "--threshold") for r, v in _pairs(thresholds, "--threshold")}
    stray = set(limits) - set(counts) - set(files)
    if stray:
        raise UsageError(f"--threshold for a role given no keys: {', '.join(sorted(stray))} (add --keys or --key-file)")
    return {role: RoleKeys(keys=counts[role] if role in counts else tuple(files[role]), threshold=limits.get(role, 1))
            for role in ROLES if role in counts or role in files}


def _expiry(values: tuple[str, ...]):
    from dataclasses import replace
    from datetime import timedelta

    from skill_ledger.adapters.registry.repository import Expiry
    from skill_ledger.domain.errors import UsageError
    from skill_ledger.domain.schedule import parse_duration

    expiry = Expiry()
    for role, text in _pairs(values, "--expiry"):
        seconds = parse_duration(text)
        if seconds <= 0:
            raise UsageError(f"--expiry {role}= must be longer than 0", {"value": text})
        expiry = replace(expiry, **{role: timedelta(seconds=seconds)})
    return expiry


def _show_versions(d: dict) -> str:
    v = d["versions"]
    return f"root v{v['root']}, targets v{v['targets']}, snapshot v{v['snapshot']}, timestamp v{v['timestamp']}"


@registry.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
@role_key_options
@click.option("--expiry", "expiry", multiple=True, metavar="ROLE=DURATION",
              help="How long ROLE's metadata stays valid once signed (30m, 12h, 7d; defaults: root 365d, "
                   "targets 90d, snapshot 7d, timestamp 1d; repeatable).")
@KEYS_DIR
@global_options
def registry_init(directory: str, new_keys: tuple[str, ...], key_files: tuple[str, ...], thresholds: tuple[str, ...],
                  expiry: tuple[str, ...], keys_dir: str | None) -> None:
    """Create an empty registry in DIRECTORY (served as is by any web server).

    Without key options one new key signs all four roles (a small setup). With --keys or
    --key-file every role gets its own keys (a role left out: one new key). Hand
    metadata/1.root.json to operators: `skills registry add NAME URL --root 1.root.json`.
    """
    from skill_ledger.adapters.registry import repository

    roles = role_specs(new_keys, key_files, thresholds) if new_keys or key_files or thresholds else None
    if roles is not None:
        roles = {r: roles.get(r, repository.RoleKeys()) for r in ROLES}
    result = repository.init(directory, roles=roles, keys_dir=keys_dir, expiry=_expiry(expiry))

    def human(d: dict) -> None:
        kv([("registry", d["directory"]), ("keys", d["keys_dir"] + " (keep it off the web server)"),
            ("root", f"{d['root_path']} (give this file to operators)"), ("root_sha256", d["root_sha256"]),
            ("metadata", _show_versions(d))])

    emit(obj().as_json, to_jsonable(result), human)


@registry.command("publish")
@click.argument("directory", type=click.Path(file_okay=False))
@click.argument("artifacts", nargs=-1, required=True, type=click.Path(dir_okay=False), metavar="ARTIFACT...")
@click.option("--renew", is_flag=True, help="Re-sign the targets metadata with a fresh expiry even if nothing is new.")
@KEY_FILES
@KEYS_DIR
@global_options
def registry_publish(directory: str, artifacts: tuple[str, ...], renew: bool, keys: tuple[str, ...],
                     keys_dir: str | None) -> None:
    """Add .palyra-skill artifacts as targets, all or none (each must inspect; a version already
    published with other bytes is version_conflict). Needs the targets, snapshot and timestamp keys."""
    from skill_ledger.adapters.registry import repository

    result = repository.publish(directory, list(artifacts), keys=keys, keys_dir=keys_dir, renew=renew)

    def human(d: dict) -> None:
        for t in d["targets"]:
            click.echo(f"{t['status']:<10} {t['path']}  ({t['publisher']}, sha256 {t['artifact_sha256'][:16]})")
        click.echo(f"metadata: {_show_versions(d)}")

    emit(obj().as_json, to_jsonable(result), human)


@registry.command("refresh-timestamp")
@click.argument("directory", type=click.Path(file_okay=False))
@KEY_FILES
@KEYS_DIR
@global_options
def registry_refresh_timestamp(directory: str, keys: tuple[str, ...], keys_dir: str | None) -> None:
    """Re-sign the timestamp (and the snapshot when due) with a fresh expiry: run it from a timer
    well within the timestamp period. Lists root and targets when they near expiry."""
    from skill_ledger.adapters.registry import repository

    result = repository.refresh_timestamp(directory, keys=keys, keys_dir=keys_dir)

    def human(d: dict) -> None:
        kv([("renewed", ", ".join(d["renewed"])), ("metadata", _show_versions(d)),
            *((role, f"expires {when}") for role, when in d["expires"].items())])
        if d["expiring_soon"]:
            notice(f"warning: {', '.join(d['expiring_soon'])} expire soon: renew with the offline keys "
                   "(registry publish --renew, registry rotate-root)")

    emit(obj().as_json, to_jsonable(result), human)


@registry.command("rotate-root")
@click.argument("directory", type=click.Path(file_okay=False))
@role_key_options
@KEY_FILES
@KEYS_DIR
@global_options
def registry_rotate_root(directory: str, new_keys: tuple[str, ...], key_files: tuple[str, ...],
                         thresholds: tuple[str, ...], keys: tuple[str, ...], keys_dir: str | None) -> None:
    """A new root version giving the named roles new keys and thresholds (none: only a fresh root
    expiry), signed by the old and the new root keys. Also the recovery from a stolen online key."""
    from skill_ledger.adapters.registry import repository

    result = repository.rotate_root(directory, role_specs(new_keys, key_files, thresholds), keys=keys,
                                    keys_dir=keys_dir)

    def human(d: dict) -> None:
        kv([("root", f"v{d['root_version']} (sha256 {d['root_sha256']})"), ("metadata", _show_versions(d)),
            *((f"{role} keys", ", ".join(paths)) for role, paths in d["new_keys"].items()),
            *((f"{role} revoked", ", ".join(ids)) for role, ids in d["revoked_keyids"].items())])

    emit(obj().as_json, to_jsonable(result), human)


# --- the operator's side ----------------------------------------------------------------------


@registry.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--root", "root", required=True, type=click.Path(dir_okay=False), metavar="ROOT.json",
              help="The registry's initial root metadata (its publisher's metadata/1.root.json), pinned.")
@global_options
def registry_add(name: str, url: str, root: str) -> None:
    """Pin a registry's root and record it (registry.added). URL: https://, http:// (signed but
    not private) or file://. The registry is not contacted until `refresh`, `install` or `update`."""
    from skill_ledger.adapters.registry.client import MAX_ROOT_BYTES
    from skill_ledger.adapters.storage.files import read_bounded
    from skill_ledger.adapters.usecases import registry as usecase
    from skill_ledger.domain.errors import InvalidInput

    def too_large(size: int) -> InvalidInput:
        return InvalidInput(f"{root}: root metadata larger than {MAX_ROOT_BYTES} bytes", {"length": size})

    root_bytes = read_bounded(root, MAX_ROOT_BYTES, too_large=too_large)
    with session() as ledger:
        result = usecase.add(ledger, name, url, root_bytes)

    def human(d: dict) -> None:
        state = "added" if d["changed"] else "already added with this root; nothing to do"
        click.echo(f"registry {d['name']}: {state}")
        kv([("url", d["url"]), ("root", f"v{d['root_version']} sha256 {d['root_sha256']}")])
        if d["url"].startswith("http://"):
            notice("warning: plain http:// keeps TUF's integrity and freshness, not privacy "
                   "(which skills you fetch, and when, are visible on the path)")

    emit(obj().as_json, to_jsonable(result), human)


@registry.command("list")
@global_options
def registry_list() -> None:
    """The registries the journal knows, with the metadata versions last trusted."""
    from skill_ledger.adapters.readmodel.views import open_views
    from skill_ledger.projections.queries import registries

    store = open_views(obj().settings(), notify=notice)
    try:
        data = {"registries": registries(store.con)}
    finally:
        store.close()

    def human(d: dict) -> None:
        if not d["registries"]:
            click.echo("no registries (skills registry add NAME URL --root ROOT.json)")
        table(["name", "status", "url", "trusted", "installs", "refusals", "last refusal"],
              [[r["name"], r["status"], r["url"], _trusted_text(r["trusted"]), r["installs"], r["refusals"],
                "-" if r["last_refusal"] is None else f"{r['last_refusal']['code']} ({r['last_refusal']['at'][:19]})"]
               for r in d["registries"]])

    emit(obj().as_json, data, human)


def _trusted_text(t: dict | None) -> str:
    if not t:
        return "-"
    return f"root {t['root']} ts {t['timestamp']} snap {t['snapshot']} targets {t['targets']}"


@registry.command("remove")
@click.argument("name")
@click.option("--reason", required=True, help="Why (recorded on the event).")
@global_options
def registry_remove(name: str, reason: str) -> None:
    """Forget a registry (registry.removed) and delete its local TUF state. Skills installed from
    it stay installed; `update` no longer reaches them."""
    from skill_ledger.adapters.usecases import registry as usecase

    with session() as ledger:
        result = usecase.remove(ledger, name, reason)
    emit(obj().as_json, to_jsonable(result), lambda d: click.echo(f"registry {d['name']}: removed"))


@registry.command("refresh")
@click.argument("name", required=False)
@global_options
def registry_refresh(name: str | None) -> int:
    """Refresh NAME's TUF metadata (default: every registry) and record the versions trusted when
    they changed. A refusal is recorded (registry.update_refused) and sets the exit status."""
    from skill_ledger.adapters.usecases import registry as usecase

    with session() as ledger:
        result = usecase.refresh(ledger, name)
    data = to_jsonable(result)

    def human(d: dict) -> None:
        if not d["registries"]:
            click.echo("no registries")
        for r in d["registries"]:
            if r["error"] is None:
                state = "new metadata recorded" if r["changed"] else "unchanged"
                click.echo(f"{r['name']}: {_trusted_text(r['metadata'])} ({state})")
            else:
                click.echo(f"{r['name']}: REFUSED ({r['error']['code']})")

    emit(obj().as_json, data, human)
    return _report_errors((r["name"], None, r["error"]) for r in data["registries"])


def _report_errors(errors: Iterable[tuple[str, str | None, dict | None]]) -> int:
    """One ``error[<code>]`` line per refusal on stderr; the exit status of the first."""
    status = 0
    for name, skill_id, error in errors:
        if error is None:
            continue
        message = error["message"]
        if name not in message:
            message += f" (registry {name})"
        click.echo(f"error[{error['code']}]: {skill_id + ': ' if skill_id else ''}{message}", err=True)
        status = status or exit_code_for(error["code"], error["details"])
    return status


# --- update and install --registry ------------------------------------------------------------


@click.command("update")
@click.argument("skill_ids", nargs=-1, metavar="[SKILL_ID]...")
@click.option("--all", "all_skills", is_flag=True, help="Every skill installed from an active registry.")
@click.option("--allow-downgrade", is_flag=True,
              help="Accept a registry that now vouches for a version below the one installed from it.")
@click.option("--reason", help="With --allow-downgrade: why (recorded).")
@global_options
def update(skill_ids: tuple[str, ...], all_skills: bool, allow_downgrade: bool, reason: str | None) -> int:
    """Install the highest version each skill's registry vouches for (TUF-verified, then the
    ordinary install path) and make it current. Up to date: nothing is appended. Exit status:
    that of the first refused skill (3 for a TUF refusal or downgrade_refused), else 5 when a new
    version failed its audit (installed quarantined), else 0."""
    from skill_ledger.adapters.usecases.registry_update import update as update_skills

    with session() as ledger:
        result = update_skills(ledger, skill_ids, all_skills=all_skills, allow_downgrade=allow_downgrade,
                               reason=reason)
    data = to_jsonable(result)

    def human(d: dict) -> None:
        if not d["results"]:
            click.echo("nothing to update (no skill installed from an active registry)")
        for r in d["results"]:
            click.echo(f"{r['skill_id'] or '*'} [{r['registry']}]: {_update_text(r)}")

    emit(obj().as_json, data, human)
    status = _report_errors((r["registry"], r["skill_id"], r["error"]) for r in data["results"])
    if status:
        return status
    return AUDIT_FAILED if any(r["status"] == "quarantined" for r in data["results"]) else 0


def _update_text(r: dict) -> str:
    outcome = r["outcome"]
    if outcome in ("updated", "downgraded"):
        return f"{r['from_version']} -> {r['to_version']} ({outcome}, {r['status']})"
    if outcome == "up_to_date":
        return f"up to date ({r['from_version']})" + (" [already installed]" if r["reason"] else "")
    if outcome == "skipped":
        return f"skipped ({r['reason']})"
    return f"REFUSED ({r['error']['code']})"


def install_from_registry(registry_name: str | None, skill_id: str | None, version: str | None,
                          artifact: str | None, allow_tofu: bool, trusted: tuple[str, ...]) -> int:
    """``skills install --registry NAME --skill-id ID [--version V]`` (the install command's branch)."""
    from skill_ledger.adapters.packaging.package import parse_trusted_publisher
    from skill_ledger.adapters.usecases.registry_update import install_from_registry as install_it
    from skill_ledger.domain.errors import UsageError

    if artifact is not None:
        raise UsageError("give --artifact FILE or --registry NAME --skill-id ID, not both")
    if not registry_name or not skill_id:
        raise UsageError("--registry NAME and --skill-id ID go together (--version V is optional)")
    pairs = [parse_trusted_publisher(t) for t in trusted]
    with session() as ledger:
        result = install_it(ledger, registry_name, skill_id, version, allow_tofu=allow_tofu, trusted_publishers=pairs)
    data = to_jsonable(result)

    def human(d: dict) -> None:
        if d["already_installed"]:
            click.echo(f"{d['skill_id']} {d['version']} is already installed with this payload; nothing to do")
            return
        kv([("skill_id", d["skill_id"]), ("version", d["version"]), ("publisher", d["publisher"]),
            ("trust_decision", d["trust_decision"]), ("status", d["status"]),
            ("current", "yes" if d["current"] else "no"), ("source", d["source"]),
            ("vouched for by", _trusted_text(d["metadata"])), ("artifact_sha256", d["artifact_sha256"]),
            ("audit", "passed" if d["audit"]["passed"] else "FAILED: " + ", ".join(d["audit"]["failed_checks"])),
            ("positions", ", ".join(map(str, d["positions"])))])

    emit(obj().as_json, data, human)
    return AUDIT_FAILED if result.status == "quarantined" else 0


COMMANDS = [registry, update]
