"""Registries in the ledger: add, remove and refresh a TUF registry, and the pieces the
installs and updates from it share (``registry_update``).

The journal, not the local directory, says which registries exist and what they are trusted
for: the ``Registry`` aggregate (``registry:<name>``) holds the pinned root's URL and digest,
the metadata versions last trusted (the floor of the next refresh) and, per skill, the
version installed from it that an update may not go below. The local state under
``<home>/registries/<name>/`` (the pinned root file and python-tuf's metadata cache) is
written before the event that records it and deleted after the event that releases it.

Every refusal of a registry operation (a TUF error, a skill-level rollback, a rejected
artifact) is recorded as ``registry.update_refused`` before the error is raised, with its
stable code, python-tuf's exception name and the phase it happened in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from skill_ledger.adapters.registry.client import (
    Registries,
    RegistryClient,
    TrustedVersions,
    check_name,
    normalize_url,
)
from skill_ledger.domain.errors import (
    ArtifactError,
    IoError,
    RegistryError,
    RegistryKeysMissing,
    SkillLedgerError,
)
from skill_ledger.domain.registry import ROLES, Registry

from .unit_of_work import Ledger


@dataclass(frozen=True)
class Access:
    """How the registries are reached: the clock TUF checks expiry against (default: now, in
    UTC) and the transport (default: ``RegistryFetcher``). Tests inject both in-process; the
    CLI always uses the defaults (there is no environment variable that moves the clock)."""

    clock: Callable[[], datetime] | None = None
    fetcher: Any = None  # a tuf.ngclient.FetcherInterface


class AddResult(msgspec.Struct, frozen=True):
    name: str
    url: str
    root_sha256: str
    root_version: int
    changed: bool  # False: this very pin was recorded already
    positions: list[int]


class RemoveResult(msgspec.Struct, frozen=True):
    name: str
    positions: list[int]


class Refreshed(msgspec.Struct, frozen=True):
    """One registry's refresh: the metadata versions trusted now, or the refusal."""

    name: str
    metadata: dict[str, int] | None
    changed: bool  # a new `registry.metadata_trusted` was recorded
    positions: list[int]
    error: dict[str, Any] | None = None


class RefreshResult(msgspec.Struct, frozen=True):
    registries: list[Refreshed]

    def failure(self) -> dict[str, Any] | None:
        return next((r.error for r in self.registries if r.error is not None), None)


def load_registry(ledger: Ledger, name: str) -> Registry:
    """The ``Registry`` aggregate from the journal (a blank one for a name never added)."""
    return ledger.load(Registry, name)


def registries(ledger: Ledger) -> Registries:
    return Registries(ledger.settings.home / "registries")


def metadata_of(versions: TrustedVersions) -> dict[str, int]:
    return {r: getattr(versions, r) for r in ROLES}


def floor_of(registry: Registry) -> TrustedVersions | None:
    """The last trusted metadata recorded in the journal, as a refresh floor."""
    if registry.trusted is None:
        return None
    return TrustedVersions(**registry.trusted, role_keys=dict(registry.role_keys))


# --- add, remove, list ------------------------------------------------------------------------


def add(ledger: Ledger, name: str, url: str, root_bytes: bytes) -> AddResult:
    """Pin ``root_bytes`` (a self-signed TUF root, checked) for ``name`` at ``url`` and record
    it (``registry.added``). The registry is not contacted. The same pin again records
    nothing (and restores lost local state); another URL or root under an added name is
    refused until it is removed."""
    check_name(name)
    url = normalize_url(url)
    digest = hashlib.sha256(root_bytes).hexdigest()
    load_registry(ledger, name).check_add(url, digest)  # refused before any local change
    # The journal says the name is free (or holds this very pin): local leftovers are replaced.
    pinned = registries(ledger).add(name, url, root_bytes, replace=True)

    def attempt() -> tuple[bool, list[int]]:
        registry = load_registry(ledger, name)
        changed = registry.add(ledger.actor, pinned.url, pinned.root_sha256, pinned.root_version)
        return changed, ledger.save(registry)

    changed, positions = ledger.retrying(attempt)
    return AddResult(name, pinned.url, pinned.root_sha256, pinned.root_version, changed, positions)


def remove(ledger: Ledger, name: str, reason: str | None) -> RemoveResult:
    """Record ``registry.removed``, then delete the local state. Skills installed from it stay
    installed (``skills remove`` removes them); ``update`` no longer reaches them."""
    check_name(name)

    def attempt() -> list[int]:
        registry = load_registry(ledger, name)
        registry.remove(ledger.actor, reason)
        return ledger.save(registry)

    positions = ledger.retrying(attempt)
    registries(ledger).remove(name)
    return RemoveResult(name, positions)


def active_registries(ledger: Ledger) -> list[Registry]:
    """The registries added and not removed, from the journal (a scan by event kind)."""
    names = sorted(s.split(":", 1)[1] for s in ledger.streams(kinds=["registry.added"]))
    return [r for r in (load_registry(ledger, n) for n in names) if r.active]


def active_registry(ledger: Ledger, name: str) -> Registry:
    """The named registry's aggregate; ``not_found`` when it was never added or was removed."""
    check_name(name)
    registry = load_registry(ledger, name)
    registry.require_active()
    return registry


# --- refresh ----------------------------------------------------------------------------------


def open_client(ledger: Ledger, registry: Registry, access: Access) -> RegistryClient:
    return registries(ledger).open(registry.name, registry.url, root_sha256=registry.root_sha256,
                                   floor=floor_of(registry), clock=access.clock, fetcher=access.fetcher)


def trust(ledger: Ledger, name: str, versions: TrustedVersions, known: Registry | None = None) -> list[int]:
    """Record the metadata a refresh trusted, only when it changed (``registry.metadata_trusted``).
    ``known``: the registry as loaded before the refresh; when it already records these
    versions, the journal is not read again (the idle case)."""
    if known is not None and known.trusts(metadata_of(versions), dict(versions.role_keys)):
        return []

    def attempt() -> list[int]:
        registry = load_registry(ledger, name)
        registry.observe(ledger.actor, metadata_of(versions), dict(versions.role_keys))
        return ledger.save(registry)

    return ledger.retrying(attempt)


def refresh(ledger: Ledger, name: str | None = None, *, access: Access = Access()) -> RefreshResult:
    """Refresh the named registry (default: every active one): the TUF client workflow, the
    journal's floor applied, the trusted versions recorded when they changed. A refusal is
    recorded and reported in the result (the other registries are still refreshed)."""
    chosen = [active_registry(ledger, name)] if name is not None else active_registries(ledger)
    out = []
    for registry in chosen:
        n = registry.name
        try:
            versions = open_client(ledger, registry, access).refresh()
        except SkillLedgerError as e:
            record_refusal(ledger, n, e, operation="refresh", skill_id=None, version=None, phase="metadata")
            out.append(Refreshed(n, None, False, list(e.details.get("positions", [])), error_doc(e)))
            continue
        positions = trust(ledger, n, versions, registry)
        out.append(Refreshed(n, metadata_of(versions), bool(positions), positions))
    return RefreshResult(out)


# --- refusals ---------------------------------------------------------------------------------


def refusable(error: SkillLedgerError) -> bool:
    """A refusal of what a registry served or of what it would install (recorded), as opposed
    to an operator's mistake or our own state failing (only raised)."""
    own_write = isinstance(error, IoError) and error.details.get("operation") == "write"
    if own_write or isinstance(error, RegistryKeysMissing):
        return False
    return isinstance(error, (RegistryError, ArtifactError))


def record_refusal(ledger: Ledger, name: str, error: SkillLedgerError, *, operation: str, skill_id: str | None,
                   version: str | None, phase: str) -> list[int]:
    """Record ``registry.update_refused`` for ``error`` (if it is a refusal); the positions written
    (none for a repeat) also go into the error's details, as for ``artifact.rejected``."""
    if not refusable(error):
        return []
    details = error.details
    tuf_error = details.get("tuf_error") if isinstance(details.get("tuf_error"), str) else None
    detail = details.get("detail") if isinstance(details.get("detail"), str) else error.message

    def attempt() -> list[int]:
        registry = load_registry(ledger, name)
        recorded = registry.refuse(ledger.actor, operation=operation, skill_id=skill_id, version=version,
                                   code=error.code, tuf_error=tuf_error, phase=phase, detail=detail)
        return ledger.save(registry) if recorded else []

    positions = ledger.retrying(attempt)
    earlier = details.get("positions")
    details["positions"] = (earlier if isinstance(earlier, list) else []) + positions
    return positions


def error_doc(error: SkillLedgerError) -> dict[str, Any]:
    return msgspec.to_builtins(error.to_dict(), str_keys=True)  # type: ignore[no-any-return]
