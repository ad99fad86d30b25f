"""The report folds' state: what the journal says, up to the event being folded, about each
version of the skill being folded (``skills.py``), each publisher key and each revocation
inside the window (``fold.py``).

Each holds plain facts and references to the few events the report cites about it (a
``CitedEvent`` each), never whole events. Versions are held for one skill at a time; keys and
revocations are kept in the spool (``spool.py``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from .model import CitedEvent, LastAudit

_SCALARS = (str, int, float, bool, type(None))


def text_of(d: dict[str, Any], key: str) -> str | None:
    v = d.get(key)
    return v if isinstance(v, str) else None


def bool_of(d: dict[str, Any], key: str) -> bool | None:
    v = d.get(key)
    return v if isinstance(v, bool) else None


def int_of(d: dict[str, Any], key: str) -> int | None:
    v = d.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def parse_time(value: Any) -> dt.datetime | None:
    """A journal time (ISO 8601); naive times are UTC; anything else is None."""
    if not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def scalar_details(d: Any, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The JSON scalar members of ``d`` (optionally only ``keys``), for a timeline entry."""
    if not isinstance(d, dict):
        return {}
    items = d.items() if keys is None else ((k, d[k]) for k in keys if k in d)
    return {str(k): v for k, v in items if isinstance(v, _SCALARS)}


def secret_details(d: dict[str, Any]) -> dict[str, Any]:
    """A secret event's facts: its scope and key names and whether a value was replaced. Named
    one by one: nothing else of the event is shown, whatever it holds (no value is recorded)."""
    return scalar_details(d, ("scope", "key", "replaced"))


def registry_details(d: dict[str, Any]) -> dict[str, Any]:
    """A registry event's facts; the metadata versions trusted (or vouching for an install) are
    flattened to ``metadata_<role>`` members (role names and versions, both journal data)."""
    details = scalar_details(d, ("name", "url", "root_sha256", "root_version", "skill_id", "target",
                                 "artifact_sha256", "payload_sha256", "downgraded_from", "operation", "code",
                                 "tuf_error", "phase"))
    metadata = d.get("metadata")
    if isinstance(metadata, dict):
        for role in sorted(metadata, key=str)[:8]:  # root, timestamp, snapshot, targets
            if isinstance(metadata[role], _SCALARS):
                details[f"metadata_{role}"] = metadata[role]
    return details


class VersionState:
    """One version of a skill, as the journal says up to the event being folded."""

    __slots__ = ("skill_id", "version", "publisher", "key_id", "key_hex", "trust_decision", "payload_sha256",
                 "artifact_sha256", "name", "display_name", "description", "compat_problem", "installed",
                 "ever_installed", "installed_at", "install_ref", "status", "status_code", "status_reason",
                 "status_ref", "last_audit", "last_audit_ref")

    def __init__(self, skill_id: str, version: str) -> None:
        self.skill_id, self.version = skill_id, version
        self.publisher = self.key_id = self.key_hex = self.trust_decision = ""
        self.payload_sha256 = self.artifact_sha256 = ""
        self.name: str | None = None
        self.display_name: str | None = None
        self.description: str | None = None
        self.compat_problem: str | None = None
        self.installed = self.ever_installed = False
        self.installed_at: str | None = None
        self.install_ref: CitedEvent | None = None
        self.status: str | None = None
        self.status_code: str | None = None
        self.status_reason: str | None = None
        self.status_ref: CitedEvent | None = None
        self.last_audit: LastAudit | None = None
        self.last_audit_ref: CitedEvent | None = None


class KeyAct(msgspec.Struct, frozen=True):
    """An allowlisting, pin or revocation of a key: the event, its reason, and (a pin) the version
    it was first used for."""

    ref: CitedEvent
    reason: str | None = None
    first_skill_id: str | None = None
    first_version: str | None = None


class KeyState(msgspec.Struct):
    """A publisher key as the journal says up to the event being folded (kept in the spool: a
    journal may hold tens of thousands of keys)."""

    publisher: str
    key_hex: str
    key_id: str
    kind: str
    state: str = "active"
    allowlisted: KeyAct | None = None  # the newest act of each sort
    pinned: KeyAct | None = None
    revoked: KeyAct | None = None


class RevocationState(msgspec.Struct, frozen=True):
    """A revocation inside the window (the quarantines linked to it are spooled too)."""

    publisher: str
    key_hex: str
    key_id: str
    ref: CitedEvent
    reason: str | None


class JournalFacts(msgspec.Struct, frozen=True):
    """What other streams decide about a skill's versions, as the second pass needs it: the keys
    revoked at the window end (key id and the revocation in force) and the revocations inside
    the window, in position order. Built by the first pass; sent to a worker process as it is."""

    revoked_keys: list[tuple[str, str, str, CitedEvent | None]]  # (publisher, key_hex, key_id, revocation)
    revocations: list[tuple[str, str, CitedEvent]]  # (publisher, key_hex, revocation) inside the window

    def index(self) -> FactsIndex:
        return FactsIndex(self)


class FactsIndex:
    """:class:`JournalFacts` by key, for lookups."""

    __slots__ = ("revoked", "revocations_by_key")

    def __init__(self, facts: JournalFacts) -> None:
        self.revoked = {(p, k): (key_id, ref) for p, k, key_id, ref in facts.revoked_keys}
        self.revocations_by_key: dict[tuple[str, str], list[CitedEvent]] = {}
        for p, k, ref in facts.revocations:
            self.revocations_by_key.setdefault((p, k), []).append(ref)

    def key_revoked(self, publisher: str, key_hex: str) -> bool:
        return (publisher, key_hex) in self.revoked
