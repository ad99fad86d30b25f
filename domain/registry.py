"""The ``Registry`` aggregate: one stream per registry an operator added (``registry:<name>``).

It holds what the journal must know to trust a TUF registry and to guard the skills installed
from it:

* the pinned root (URL, the SHA-256 and version of the root given at ``registry add``);
* the metadata versions last trusted (``registry.metadata_trusted``, recorded only when they
  change, so an idle ``update --all`` appends nothing). They are the *floor* of the next
  refresh: trusting less is a rollback even when the local TUF cache was lost;
* per skill, the version installed from this registry that ``update`` may not go below
  (``registry.target_installed``): the highest installed, or the one an operator chose with
  ``--allow-downgrade --reason``. A registry that now vouches for less is refused
  (``downgrade_refused``); the same version with another payload is ``version_conflict``;
* the refused installs and updates (``registry.update_refused``), each with its stable code.
  The same refusal again (same skill, version, code, phase and detail) with nothing else
  recorded in between appends nothing: a timer retrying against a frozen mirror does not grow
  the journal, while the first refusal, and every different one, is on record.

Event members are bounded (``text.event_text``): URLs, details and reasons come from outside.
The trusted metadata versions are nested under ``metadata`` because ``timestamp`` is the
event's own time.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any, ClassVar

import msgspec

from .errors import DowngradeRefused, NotFound, UsageError, VersionConflict
from .events import Actor, LedgerAggregate, LedgerEvent
from .grammars import parse_semver_lenient
from .text import event_text

ROLES = ("root", "timestamp", "snapshot", "targets")

# What a planned install or update from a registry does (``Registry.plan``).
INSTALL, UP_TO_DATE, DOWNGRADE = "install", "up_to_date", "downgrade"
# The phases of a refusal: the top-level metadata, the skill's entry in the trusted listing
# (and the skill-level rollback checks on it), the target download, the ordinary install path.
PHASES = ("metadata", "listing", "target", "install")
OPERATIONS = ("install", "update", "refresh")


class FromRegistry(msgspec.Struct, frozen=True):
    """A skill version installed from the registry: the floor ``update`` may not go below."""

    version: str
    payload_sha256: str
    artifact_sha256: str
    target: str


def _versions(metadata: dict[str, int]) -> dict[str, int]:
    return {r: int(metadata[r]) for r in ROLES}


@functools.lru_cache(maxsize=4096)  # an update compares every skill's floor: few distinct versions
def _semver_key(version: str) -> tuple[int, int, int]:
    return parse_semver_lenient(version) or (0, 0, 0)


def _optional(text: str | None) -> str | None:
    return None if text is None else event_text(text)


# --- events ------------------------------------------------------------------------------


class RegistryAdded(LedgerEvent):
    KIND: ClassVar[str] = "registry.added"
    name: str
    url: str
    root_sha256: str
    root_version: int

    def apply(self, registry: "Registry") -> None:
        registry.active = True
        registry.url = self.url
        registry.root_sha256 = self.root_sha256
        registry.root_version = self.root_version
        # A new pin is a new start for the metadata floor (the local TUF cache starts empty
        # too); the skill-level floors stay: they are about the skills, not the metadata.
        registry.trusted = None
        registry.role_keys = {}
        registry.last_refusal = {}


class RegistryRemoved(LedgerEvent):
    KIND: ClassVar[str] = "registry.removed"
    name: str
    reason: str | None

    def apply(self, registry: "Registry") -> None:
        registry.active = False
        registry.last_refusal = {}


class MetadataTrusted(LedgerEvent):
    KIND: ClassVar[str] = "registry.metadata_trusted"
    name: str
    metadata: dict[str, int]  # root, timestamp, snapshot, targets: the versions trusted now
    role_keys: dict[str, str]  # per role, a fingerprint of its key ids and threshold

    def apply(self, registry: "Registry") -> None:
        registry.trusted = _versions(self.metadata)
        registry.role_keys = dict(self.role_keys)
        registry.last_refusal = {}


class TargetInstalled(LedgerEvent):
    """Saved in the same transaction as the skill's install (or, for an allowed downgrade to a
    version still installed, its rollback): which target of which registry, vouched for by
    which metadata versions."""

    KIND: ClassVar[str] = "registry.target_installed"
    name: str
    skill_id: str
    version: str
    target: str
    artifact_sha256: str
    payload_sha256: str
    metadata: dict[str, int]
    downgraded_from: str | None  # set by `update --allow-downgrade`: the floor given up
    reason: str | None

    def apply(self, registry: "Registry") -> None:
        record = FromRegistry(self.version, self.payload_sha256, self.artifact_sha256, self.target)
        floor = registry.installed.get(self.skill_id)
        if self.downgraded_from is not None or floor is None or _semver_key(self.version) >= _semver_key(floor.version):
            registry.installed[self.skill_id] = record
        registry.last_refusal.pop(self.skill_id, None)
        registry.last_refusal.pop(None, None)


class UpdateRefused(LedgerEvent):
    KIND: ClassVar[str] = "registry.update_refused"
    name: str
    operation: str  # install, update or refresh
    skill_id: str | None  # None: every skill of the registry (its metadata was refused)
    version: str | None
    code: str
    tuf_error: str | None  # python-tuf's exception name, when TUF refused it
    phase: str
    detail: str

    def apply(self, registry: "Registry") -> None:
        registry.last_refusal[self.skill_id] = refusal_key(self.operation, self.version, self.code, self.phase,
                                                           self.detail)


def refusal_key(operation: str, version: str | None, code: str, phase: str, detail: str) -> str:
    canonical = msgspec.json.encode([operation, version, code, phase, detail])
    return hashlib.sha256(canonical).hexdigest()


# --- the aggregate -----------------------------------------------------------------------


class Registry(LedgerAggregate):
    PREFIX: ClassVar[str] = "registry"

    def __init__(self, id: Any, stream: str) -> None:
        super().__init__(id, stream)
        self.active = False
        self.url = ""
        self.root_sha256 = ""
        self.root_version = 0
        self.trusted: dict[str, int] | None = None
        self.role_keys: dict[str, str] = {}
        self.installed: dict[str, FromRegistry] = {}
        self.last_refusal: dict[str | None, str] = {}

    @property
    def name(self) -> str:
        return self.key

    @property
    def known(self) -> bool:
        """Whether the registry was ever added (its stream exists)."""
        return self.version > 0

    def require_active(self) -> None:
        if not self.active:
            state = "was removed" if self.known else "was never added"
            raise NotFound(f"registry '{self.name}' {state} (skills registry add NAME URL --root ROOT.json)",
                           {"registry": self.name})

    # commands ---------------------------------------------------------------------------

    def check_add(self, url: str, root_sha256: str) -> bool:
        """Whether adding this pin has anything to record (``False``: this very pin is recorded
        already). Another URL or root under an active name is refused: remove it first."""
        if not self.active:
            return True
        if (self.url, self.root_sha256) == (url, root_sha256):
            return False
        raise UsageError(f"registry '{self.name}' is already added with another URL or root; remove it first",
                         {"registry": self.name, "url": self.url, "root_sha256": self.root_sha256})

    def add(self, actor: Actor, url: str, root_sha256: str, root_version: int) -> bool:
        """Record the pinned root; ``False`` when this very pin is recorded already (see
        :meth:`check_add`)."""
        if not self.check_add(url, root_sha256):
            return False
        self._record(RegistryAdded, actor, name=self.name, url=event_text(url), root_sha256=root_sha256,
                     root_version=root_version)
        return True

    def remove(self, actor: Actor, reason: str | None) -> None:
        self.require_active()
        self._record(RegistryRemoved, actor, name=self.name, reason=_optional(reason))

    def trusts(self, metadata: dict[str, int], role_keys: dict[str, str]) -> bool:
        """Whether these are the metadata versions and role keys recorded last."""
        return _versions(metadata) == self.trusted and role_keys == self.role_keys

    def observe(self, actor: Actor, metadata: dict[str, int], role_keys: dict[str, str]) -> bool:
        """Record the metadata versions a refresh trusted, only when they differ from the last
        record (so an idle refresh appends nothing)."""
        self.require_active()
        if self.trusts(metadata, role_keys):
            return False
        versions = _versions(metadata)
        self._record(MetadataTrusted, actor, name=self.name, metadata=versions, role_keys=dict(role_keys))
        return True

    def plan(self, skill_id: str, version: str, payload_sha256: str, *, explicit: bool = False,
             allow_downgrade: bool = False) -> str:
        """What installing ``version`` (with ``payload_sha256``) of ``skill_id`` from this registry
        does against the skill-level floor: ``install``; ``up_to_date`` (the floor's very
        version and payload: nothing to do); ``downgrade`` (below the floor, allowed). Below the
        floor is ``downgrade_refused`` unless ``allow_downgrade``, or ``explicit`` (an operator
        named the version: installed as asked, the floor stays). The floor's version with
        another payload is ``version_conflict``."""
        floor = self.installed.get(skill_id)
        if floor is None:
            return INSTALL
        wanted, current = _semver_key(version), _semver_key(floor.version)
        if wanted == current:
            if payload_sha256 == floor.payload_sha256:
                return UP_TO_DATE
            raise VersionConflict(
                f"registry '{self.name}' lists {skill_id} {version} with another payload than the one installed "
                "from it", {"registry": self.name, "skill_id": skill_id, "version": version,
                            "installed_payload_sha256": floor.payload_sha256, "payload_sha256": payload_sha256})
        if wanted > current or explicit:
            return INSTALL
        if allow_downgrade:
            return DOWNGRADE
        raise DowngradeRefused(
            f"registry '{self.name}' vouches for {skill_id} {version}, below {floor.version} installed from it "
            "before (--allow-downgrade --reason TEXT to accept)",
            {"registry": self.name, "skill_id": skill_id, "version": version, "installed_version": floor.version})

    def record_installed(self, actor: Actor, *, skill_id: str, version: str, target: str, artifact_sha256: str,
                         payload_sha256: str, metadata: dict[str, int], downgraded_from: str | None = None,
                         reason: str | None = None) -> None:
        self.require_active()
        self._record(TargetInstalled, actor, name=self.name, skill_id=skill_id, version=version,
                     target=event_text(target), artifact_sha256=artifact_sha256, payload_sha256=payload_sha256,
                     metadata=_versions(metadata), downgraded_from=downgraded_from, reason=_optional(reason))

    def refuse(self, actor: Actor, *, operation: str, skill_id: str | None, version: str | None, code: str,
               tuf_error: str | None, phase: str, detail: str) -> bool:
        """Record a refused install, update or refresh; ``False`` (nothing recorded) when it is
        the very refusal recorded last for this skill, with nothing else recorded since."""
        if operation not in OPERATIONS or phase not in PHASES:
            raise ValueError(f"unknown operation {operation!r} or phase {phase!r}")
        skill_id, version, detail = _optional(skill_id), _optional(version), event_text(detail)
        key = refusal_key(operation, version, code, phase, detail)
        if self.last_refusal.get(skill_id) == key:
            return False
        self._record(UpdateRefused, actor, name=self.name, operation=operation, skill_id=skill_id,
                     version=version, code=event_text(code), tuf_error=_optional(tuf_error), phase=phase,
                     detail=detail)
        return True
