"""Installing and updating skills from a registry.

Both refresh the registry's TUF metadata (the journal's floor applied, the trusted versions
recorded when they changed), pick the target the trusted metadata vouches for, download it
(length and hashes from TUF, capped while streaming; inspected and checked against the
target's custom info) and hand the bytes to the ordinary install path (trust, audit, store,
install) with the source ``registry:<name>:<target path>``. In the install's own transaction
the ``Registry`` records ``registry.target_installed``: which target, vouched for by which
metadata versions. That record is also the skill-level rollback floor: ``update`` never
installs a version below the one installed from the registry before, unless
``--allow-downgrade`` with a reason (recorded on the event).

Nothing is appended when nothing changes: an update whose target is the floor's very version
and payload does not even load the skill (an idle ``update --all`` over a thousand skills reads
one stream and the registry's timestamp). Every refusal is recorded (``registry.update_refused``)
and, for an update, reported per skill while the other skills go on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import msgspec

from skill_ledger.adapters.registry.client import Download, RegistryClient
from skill_ledger.adapters.registry.targets import TargetInfo, check_installed_payload
from skill_ledger.domain.errors import InvalidInput, ManifestValidationError, NotInstalled, SkillLedgerError, UsageError
from skill_ledger.domain.grammars import same_version, semver
from skill_ledger.domain.grammars import skill_id as normal_skill_id
from skill_ledger.domain.registry import DOWNGRADE, UP_TO_DATE, FromRegistry, Registry
from skill_ledger.domain.skill import Skill, SkillVersion

from .install import AlsoRecord, install
from .registry import (
    Access,
    Refreshed,
    active_registries,
    active_registry,
    error_doc,
    load_registry,
    metadata_of,
    open_client,
    record_refusal,
    refusable,
    trust,
)
from .results import InstallResult
from .unit_of_work import Ledger

SOURCE_PREFIX = "registry:"


class RegistryInstallResult(InstallResult, frozen=True):
    """An install's result, plus where it came from and which metadata vouched for it."""

    registry: str = ""
    target: str = ""
    source: str = ""
    metadata: dict[str, int] = {}


class SkillUpdate(msgspec.Struct, frozen=True):
    """What ``update`` did for one skill: ``updated``, ``downgraded``, ``up_to_date``,
    ``skipped`` (``reason``: ``not_installed``, ``installed_from_elsewhere``) or ``refused``
    (``error``: the error document, whose details name the positions recorded)."""

    skill_id: str | None  # None: every skill of a registry whose metadata was refused
    registry: str
    outcome: str
    from_version: str | None = None
    to_version: str | None = None
    status: str | None = None  # the installed version's status (active, or quarantined by its audit)
    reason: str | None = None
    positions: list[int] = []
    error: dict | None = None


class UpdateResult(msgspec.Struct, frozen=True):
    results: list[SkillUpdate]
    registries: list[Refreshed]

    def failure(self) -> dict | None:
        """The first refusal's error document (the command's exit status follows its code)."""
        return next((r.error for r in self.results if r.error is not None), None)


def source_of(name: str, target_path: str) -> str:
    return f"{SOURCE_PREFIX}{name}:{target_path}"


def registry_of_source(source: str) -> str | None:
    """The registry a version was installed from, by its recorded source."""
    if not source.startswith(SOURCE_PREFIX):
        return None
    return source[len(SOURCE_PREFIX):].split(":", 1)[0] or None


class _Refusals:
    """Records a refusal with the phase it happened in, then lets the error go on."""

    def __init__(self, ledger: Ledger, name: str, operation: str, skill_id: str, version: str | None) -> None:
        self.ledger, self.name, self.operation, self.skill_id, self.version = ledger, name, operation, skill_id, version

    @contextlib.contextmanager
    def phase(self, phase: str) -> Iterator[None]:
        try:
            yield
        except SkillLedgerError as e:
            record_refusal(self.ledger, self.name, e, operation=self.operation, skill_id=self.skill_id,
                           version=self.version, phase=phase)
            raise


# --- install --registry -----------------------------------------------------------------------


def install_from_registry(ledger: Ledger, name: str, skill_id: str, version: str | None = None, *,
                          allow_tofu: bool = False, trusted_publishers: Sequence[tuple[str, str]] = (),
                          access: Access = Access()) -> RegistryInstallResult:
    """Install the given version of ``skill_id`` (default: the highest the registry vouches for)
    and make it current, as ``skills install`` does with a file. Without ``version``, a highest
    version below the one installed from this registry before is ``downgrade_refused``; with
    it, the operator's choice is installed (the floor stays). Already installed with this
    payload: nothing is downloaded or appended."""
    registry = active_registry(ledger, name)
    sid = _skill_id(skill_id)
    if version is not None:
        _version(version)
    refusals = _Refusals(ledger, name, "install", sid, version)
    with refusals.phase("metadata"):
        client = open_client(ledger, registry, access)
        versions = client.refresh()
    positions = trust(ledger, name, versions)
    with refusals.phase("listing"):
        target = client.target(sid, version)
        refusals.version = target.version
        load_registry(ledger, name).plan(sid, target.version, target.payload_sha256, explicit=version is not None)
        skill = ledger.load(Skill, sid)
        installed = _installed_as(skill, target)
        if installed is not None:
            check_installed_payload(target, installed.payload_sha256)
    if installed is not None:
        result = _already(sid, installed, skill.current == installed.version)
        return _with_source(result, name, target, metadata_of(versions), positions)
    with refusals.phase("target"):
        download = client.fetch(sid, target.version)
    with refusals.phase("install"):
        result = install(ledger, target.path, data=download.data, source=source_of(name, target.path),
                         allow_tofu=allow_tofu, trusted_publishers=trusted_publishers,
                         also=_record_target(name, download, explicit=version is not None))
    return _with_source(result, name, target, metadata_of(download.versions), positions)


def _with_source(result: InstallResult, name: str, target: TargetInfo, metadata: dict[str, int],
                 positions: list[int]) -> RegistryInstallResult:
    fields = msgspec.structs.asdict(result)
    fields["positions"] = positions + result.positions
    return RegistryInstallResult(**fields, registry=name, target=target.path, source=source_of(name, target.path),
                                 metadata=metadata)


def _already(skill_id: str, v: SkillVersion, current: bool) -> InstallResult:
    return InstallResult(skill_id=skill_id, version=v.version, publisher=v.publisher, trust_decision=v.trust_decision,
                         status=v.status or "installed", current=current, payload_sha256=v.payload_sha256,
                         artifact_sha256=v.artifact_sha256, key_id=v.key_id, audit=None, positions=[],
                         already_installed=True)


def _record_target(name: str, download: Download, *, explicit: bool, allow_downgrade: bool = False,
                   reason: str | None = None) -> AlsoRecord:
    """The install's ``also``: in the install's transaction, re-decide against the registry's
    fresh state (a concurrent install may have moved the floor) and record the target."""
    t = download.target

    def also(ledger: Ledger, _skill: Skill) -> list[Registry]:
        registry = load_registry(ledger, name)
        registry.require_active()
        floor = registry.installed.get(t.skill_id)
        decision = registry.plan(t.skill_id, t.version, t.payload_sha256, explicit=explicit,
                                 allow_downgrade=allow_downgrade)
        downgrade = decision == DOWNGRADE
        registry.record_installed(ledger.actor, skill_id=t.skill_id, version=t.version, target=t.path,
                                  artifact_sha256=t.artifact_sha256, payload_sha256=t.payload_sha256,
                                  metadata=metadata_of(download.versions),
                                  downgraded_from=floor.version if downgrade and floor else None,
                                  reason=reason if downgrade else None)
        return [registry]

    return also


# --- update -----------------------------------------------------------------------------------


def update(ledger: Ledger, skill_ids: Sequence[str] = (), *, all_skills: bool = False, allow_downgrade: bool = False,
           reason: str | None = None, access: Access = Access()) -> UpdateResult:
    """Update the named skills (each from the registry its current version came from), or with
    ``all_skills`` every skill installed from every active registry, to the highest version
    its registry vouches for. See the module docstring for what is recorded."""
    if bool(skill_ids) == all_skills:
        raise UsageError("give SKILL_ID... or --all")
    if allow_downgrade and not (reason and reason.strip()):
        raise UsageError("--allow-downgrade needs --reason TEXT (recorded with the downgrade)")
    if reason is not None and not allow_downgrade:
        raise UsageError("--reason is recorded only with --allow-downgrade")
    if skill_ids:
        wanted = [(active_registry(ledger, name), skills) for name, skills in _by_registry(ledger, skill_ids).items()]
    else:
        wanted = [(registry, None) for registry in active_registries(ledger)]
    results: list[SkillUpdate] = []
    refreshed: list[Refreshed] = []
    for registry, skills in wanted:
        done, state = _update_registry(ledger, registry, skills, allow_downgrade, reason, access)
        results += done
        refreshed.append(state)
    return UpdateResult(results, refreshed)


def _by_registry(ledger: Ledger, skill_ids: Sequence[str]) -> dict[str, list[str]]:
    """The registry each named skill's current version came from; an operator's mistake (a skill
    not installed or not from a registry) is refused before anything runs (and so is a removed
    registry, by the caller)."""
    out: dict[str, list[str]] = {}
    for given in dict.fromkeys(skill_ids):
        skill = ledger.skill(given)
        current = skill.installed()
        name = registry_of_source(current.source)
        if name is None:
            raise UsageError(f"{skill.skill_id} {current.version} was not installed from a registry "
                             f"(source {current.source}); use skills install --registry",
                             {"skill_id": skill.skill_id, "source": current.source})
        out.setdefault(name, []).append(skill.skill_id)
    return out


def _update_registry(ledger: Ledger, registry: Registry, skills: list[str] | None, allow_downgrade: bool,
                     reason: str | None, access: Access) -> tuple[list[SkillUpdate], Refreshed]:
    name = registry.name
    try:
        client = open_client(ledger, registry, access)
        versions = client.refresh()
    except SkillLedgerError as e:
        if not refusable(e):
            raise
        named: list[str | None] = list(skills) if skills else [None]
        for sid in named:
            record_refusal(ledger, name, e, operation="update", skill_id=sid, version=None, phase="metadata")
        doc = error_doc(e)
        return ([SkillUpdate(sid, name, "refused", error=doc, positions=list(doc["details"].get("positions", [])))
                 for sid in named], Refreshed(name, None, False, [], doc))
    positions = trust(ledger, name, versions, registry)
    if positions:
        registry = load_registry(ledger, name)
    done = [_update_skill(ledger, client, registry, sid, allow_downgrade, reason)
            for sid in (skills if skills is not None else sorted(registry.installed))]
    return done, Refreshed(name, metadata_of(versions), bool(positions), positions)


def _update_skill(ledger: Ledger, client: RegistryClient, registry: Registry, sid: str, allow_downgrade: bool,
                  reason: str | None) -> SkillUpdate:
    name = registry.name
    floor = registry.installed.get(sid)
    refusals = _Refusals(ledger, name, "update", sid, None)
    base = floor.version if floor else None
    try:
        with refusals.phase("listing"):
            target = client.target(sid)
            refusals.version = target.version
            decision = registry.plan(sid, target.version, target.payload_sha256, allow_downgrade=allow_downgrade)
        if decision == UP_TO_DATE:  # the common case: the skill's stream is not even read
            return SkillUpdate(sid, name, "up_to_date", base, target.version)
        skill = ledger.load(Skill, sid)
        current = skill.versions.get(skill.current) if skill.current else None
        if current is None or not current.installed:
            return SkillUpdate(sid, name, "skipped", base, target.version, reason="not_installed")
        if registry_of_source(current.source) != name:
            return SkillUpdate(sid, name, "skipped", current.version, target.version, reason="installed_from_elsewhere")
        installed = _installed_as(skill, target)
        with refusals.phase("listing"):
            if installed is not None:
                check_installed_payload(target, installed.payload_sha256)
        if installed is not None and decision != DOWNGRADE:
            return SkillUpdate(sid, name, "up_to_date", current.version, target.version, reason="already_installed")
        if installed is not None:
            positions = _downgrade_to_installed(ledger, name, target, client, floor, reason)
            return SkillUpdate(sid, name, "downgraded", current.version, target.version, status=installed.status,
                               positions=positions)
        with refusals.phase("target"):
            download = client.fetch(sid, target.version)
        with refusals.phase("install"):
            result = install(ledger, target.path, data=download.data, source=source_of(name, target.path),
                             also=_record_target(name, download, explicit=False, allow_downgrade=allow_downgrade,
                                                 reason=reason))
    except SkillLedgerError as e:
        if not refusable(e):
            raise
        doc = error_doc(e)
        return SkillUpdate(sid, name, "refused", base, refusals.version, error=doc,
                           positions=list(doc["details"].get("positions", [])))
    outcome = "downgraded" if decision == DOWNGRADE else "updated"
    return SkillUpdate(sid, name, outcome, current.version, result.version, status=result.status,
                       positions=result.positions)


def _downgrade_to_installed(ledger: Ledger, name: str, target: TargetInfo, client: RegistryClient,
                            floor: FromRegistry | None, reason: str | None) -> list[int]:
    """An allowed downgrade to a version still installed: make it current (a rollback with the
    operator's reason) and record the target, in one transaction."""
    metadata = metadata_of(client.versions)

    def attempt() -> list[int]:
        skill = ledger.load(Skill, target.skill_id)
        registry = load_registry(ledger, name)
        registry.plan(target.skill_id, target.version, target.payload_sha256, allow_downgrade=True)
        installed = _installed_as(skill, target)
        if installed is None:  # removed meanwhile
            raise NotInstalled(f"{target.skill_id} {target.version} is no longer installed",
                               {"skill_id": target.skill_id, "version": target.version})
        if skill.current != installed.version:
            skill.rollback(ledger.actor, installed.version, reason)
        registry.record_installed(ledger.actor, skill_id=target.skill_id, version=target.version, target=target.path,
                                  artifact_sha256=target.artifact_sha256, payload_sha256=target.payload_sha256,
                                  metadata=metadata, downgraded_from=floor.version if floor else None, reason=reason)
        return ledger.save(skill, registry)

    return ledger.retrying(attempt)


def _installed_as(skill: Skill, target: TargetInfo) -> SkillVersion | None:
    """The installed version of ``skill`` that is ``target``'s version under SemVer."""
    return next((v for v in skill.installed_versions() if same_version(v.version, target.version)), None)


def _skill_id(value: str) -> str:
    try:
        return normal_skill_id(value)
    except ManifestValidationError as e:
        raise InvalidInput(f"invalid skill id {value!r}: {e.message}", {"skill_id": value}) from None


def _version(value: str) -> None:
    try:
        semver(value, "version")
    except ManifestValidationError as e:
        raise InvalidInput(f"invalid version {value!r}: {e.message}", {"version": value}) from None

