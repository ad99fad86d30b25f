"""The ``Publisher`` aggregate: one stream per publisher (``publisher:<name>``) holding the
trust facts about its keys: allowlisted keys, the TOFU pin, revocations.

Trust decisions read this aggregate (the write side), never a projection.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import msgspec

from .events import Actor, LedgerAggregate, LedgerEvent
from .trust import TrustDecision, TrustStore, evaluate_trust

ALLOWLISTED, TOFU = "allowlisted", "tofu"
ACTIVE, REVOKED = "active", "revoked"


class PublisherKey:
    def __init__(self, key_hex: str, key_id: str, kind: str, since: dt.datetime) -> None:
        self.key_hex = key_hex
        self.key_id = key_id
        self.kind = kind
        self.state = ACTIVE
        self.since = since
        self.first_skill_id: str | None = None
        self.first_version: str | None = None


class PinImport(msgspec.Struct, frozen=True):
    """What importing a TOFU pin from a trust-store file did: pinned it, nothing (already pinned or
    allowlisted), or nothing because it conflicts with the journal (``conflict`` says why)."""

    pinned: bool
    conflict: str | None = None


class KeyAllowlisted(LedgerEvent):
    KIND: ClassVar[str] = "publisher.key_allowlisted"
    key_hex: str
    key_id: str
    reason: str | None

    def apply(self, publisher: "Publisher") -> None:
        key = publisher.keys.get(self.key_hex)
        if key is None:
            key = publisher.keys[self.key_hex] = PublisherKey(self.key_hex, self.key_id, ALLOWLISTED, self.timestamp)
        key.kind = ALLOWLISTED
        key.state = ACTIVE
        key.since = self.timestamp


class KeyPinned(LedgerEvent):
    KIND: ClassVar[str] = "publisher.key_pinned"
    key_hex: str
    key_id: str
    first_skill_id: str
    first_version: str
    payload_sha256: str

    def apply(self, publisher: "Publisher") -> None:
        key = PublisherKey(self.key_hex, self.key_id, TOFU, self.timestamp)
        key.first_skill_id = self.first_skill_id
        key.first_version = self.first_version
        publisher.keys[self.key_hex] = key


class KeyRevoked(LedgerEvent):
    KIND: ClassVar[str] = "publisher.key_revoked"
    key_hex: str
    key_id: str
    reason: str | None

    def apply(self, publisher: "Publisher") -> None:
        key = publisher.keys.get(self.key_hex)
        if key is None:
            # Revoking a key never seen before is a legitimate pre-emptive act.
            key = publisher.keys[self.key_hex] = PublisherKey(self.key_hex, self.key_id, ALLOWLISTED, self.timestamp)
        key.state = REVOKED
        key.since = self.timestamp


class Publisher(LedgerAggregate):
    PREFIX: ClassVar[str] = "publisher"

    def __init__(self, id: Any, stream: str) -> None:
        super().__init__(id, stream)
        self.keys: dict[str, PublisherKey] = {}

    @property
    def name(self) -> str:
        return self.key

    def trust_store(self) -> TrustStore:
        """This publisher's part of the trust state, in the shape trust evaluation reads."""
        allowlisted = tuple(sorted(k.key_hex for k in self.keys.values() if k.kind == ALLOWLISTED and k.state == ACTIVE))
        pinned = [k.key_hex for k in self.keys.values() if k.kind == TOFU and k.state == ACTIVE]
        revoked = frozenset(k.key_hex for k in self.keys.values() if k.state == REVOKED)
        return TrustStore(
            {self.name: allowlisted} if allowlisted else {},
            {self.name: pinned[-1]} if pinned else {},
            {self.name: revoked} if revoked else {},
        )

    def is_allowlisted(self, key_hex: str) -> bool:
        k = self.keys.get(key_hex)
        return k is not None and k.kind == ALLOWLISTED and k.state == ACTIVE

    def allowlist(self, actor: Actor, key_hex: str, key_id: str, reason: str | None) -> bool:
        """Record an allowlisted key; ``False`` when it already is (nothing recorded)."""
        if self.is_allowlisted(key_hex):
            return False
        self._record(KeyAllowlisted, actor, key_hex=key_hex, key_id=key_id, reason=reason)
        return True

    def trust_decision(self, key_hex: str, allow_tofu: bool) -> TrustDecision:
        """How this publisher's trust state treats an artifact signed by ``key_hex``; raises the
        ``TrustError`` of a refusal (untrusted, key mismatch, revoked)."""
        return evaluate_trust(self.trust_store(), self.name, key_hex, allow_tofu).decision

    def accept_for_install(self, actor: Actor, key_hex: str, key_id: str, allow_tofu: bool, skill_id: str,
                           version: str, payload_sha256: str) -> TrustDecision:
        """Accept the signing key of an install that goes ahead: pin it when this is trust on first
        use (``tofu_newly_pinned``), naming the first skill version it signed. Raises like
        :meth:`trust_decision`."""
        decision = self.trust_decision(key_hex, allow_tofu)
        if decision is TrustDecision.TOFU_NEWLY_PINNED:
            self.pin(actor, key_hex, key_id, skill_id, version, payload_sha256)
        return decision

    def pin(self, actor: Actor, key_hex: str, key_id: str, first_skill_id: str, first_version: str,
            payload_sha256: str) -> None:
        self._record(KeyPinned, actor, key_hex=key_hex, key_id=key_id, first_skill_id=first_skill_id,
                     first_version=first_version, payload_sha256=payload_sha256)

    def import_pin(self, actor: Actor, key_hex: str, key_id: str) -> PinImport:
        """Pin a key named as this publisher's TOFU key in an imported trust-store file, unless the
        key is revoked or another key is pinned already (a conflict), or it is pinned or allowlisted
        already (nothing to do). An import never moves an existing pin."""
        k = self.keys.get(key_hex)
        if k is not None and k.state == REVOKED:
            return PinImport(False, "key is revoked")
        current = self.trust_store()
        existing = current.tofu_publishers.get(self.name)
        if existing == key_hex or self.is_allowlisted(key_hex):
            return PinImport(False)
        if existing is not None:
            return PinImport(False, "a different key is already pinned")
        self.pin(actor, key_hex, key_id, "", "", "")
        return PinImport(True)

    def revoke(self, actor: Actor, key_hex: str, key_id: str, reason: str | None) -> bool:
        k = self.keys.get(key_hex)
        if k is not None and k.state == REVOKED:
            return False
        self._record(KeyRevoked, actor, key_hex=key_hex, key_id=key_id, reason=reason)
        return True
