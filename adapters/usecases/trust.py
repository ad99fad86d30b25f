"""Trust use cases: allowlist a publisher key, revoke one (and quarantine what it signed),
import a trust-store file. The ``Publisher`` aggregate decides; revocation then asks each
``Skill`` signed by the key to quarantine its versions."""

from __future__ import annotations

import msgspec

from skill_ledger.adapters.journal.sqlite import iter_rows
from skill_ledger.domain.events import topics_for_kinds
from skill_ledger.domain.publisher import PinImport, Publisher
from skill_ledger.domain.signing import key_id as compute_key_id
from skill_ledger.domain.skill import TRUST_REVOKED, Skill
from skill_ledger.domain.trust import TrustStore, add_trusted_key

from .results import TrustChange, TrustImport
from .unit_of_work import Ledger


def _publisher_key(publisher: str, key_hex: str) -> tuple[str, str, str]:
    """(publisher, key, key id) normalised; a malformed name or key is a ``manifest_validation`` error."""
    store = add_trusted_key(TrustStore(), publisher, key_hex)
    pub, keys = next(iter(store.trusted_publishers.items()))
    return pub, keys[0], compute_key_id(bytes.fromhex(keys[0]))


def allow(ledger: Ledger, publisher: str, key_hex: str, reason: str | None) -> TrustChange:
    """Allowlist a publisher key; nothing recorded when it already is."""
    pub, key, kid = _publisher_key(publisher, key_hex)

    def attempt() -> TrustChange:
        agg = ledger.load(Publisher, pub)
        changed = agg.allowlist(ledger.actor, key, kid, reason)
        return TrustChange(pub, key, kid, changed, ledger.save(agg))

    return ledger.retrying(attempt)


def revoke(ledger: Ledger, publisher: str, key_hex: str, reason: str | None) -> TrustChange:
    """Revoke a key, then quarantine every installed version signed by it (``trust_revoked``).
    Each skill is its own transaction: a sweep interrupted half-way leaves the others to the
    next ``verify`` or re-audit, which refuse the revoked key as well."""
    pub, key, kid = _publisher_key(publisher, key_hex)

    def attempt() -> TrustChange:
        agg = ledger.load(Publisher, pub)
        changed = agg.revoke(ledger.actor, key, kid, reason)
        return TrustChange(pub, key, kid, changed, ledger.save(agg))

    result = ledger.retrying(attempt)
    quarantined: list[dict[str, str]] = []
    positions = list(result.positions)
    for skill_id in _skills_signed_by(ledger, pub, key):
        def sweep(skill_id: str = skill_id) -> tuple[list[str], list[int]]:
            skill = ledger.load(Skill, skill_id)
            versions = skill.quarantine_signed_by(ledger.actor, pub, key, kid, reason)
            return versions, ledger.save(skill)

        versions, saved = ledger.retrying(sweep)
        quarantined += [{"skill_id": skill_id, "version": v, "reason_code": TRUST_REVOKED} for v in versions]
        positions += saved
    return msgspec.structs.replace(result, positions=positions, quarantined=quarantined)


def _skills_signed_by(ledger: Ledger, publisher: str, key_hex: str) -> list[str]:
    """Skills with a version ever verified under this key (a journal scan, not a projection)."""
    found: set[str] = set()
    for row in iter_rows(ledger.app, topics=topics_for_kinds(["skill.artifact_verified"])):
        state = msgspec.json.decode(row.state)
        if state.get("key_hex") == key_hex and state.get("publisher") == publisher:
            found.add(state["stream"].split(":", 1)[1])
    return sorted(found)


def import_trust(ledger: Ledger, store: TrustStore, reason: str | None) -> TrustImport:
    """Allowlist every key of an interchange file; its TOFU pins become pins where none exists
    (a revoked key or another pinned key is reported as a conflict, not recorded)."""
    positions: list[int] = []
    allowlisted: list[dict[str, str]] = []
    pinned: list[dict[str, str]] = []
    conflicts: list[dict[str, str]] = []
    for pub, keys in store.trusted_publishers.items():
        for key in keys:
            r = allow(ledger, pub, key, reason)
            positions += r.positions
            if r.changed:
                allowlisted.append({"publisher": pub, "key_hex": key, "key_id": r.key_id})
    for pub, key in store.tofu_publishers.items():
        def attempt(pub: str = pub, key: str = key) -> tuple[PinImport, list[int]]:
            agg = ledger.load(Publisher, pub)
            outcome = agg.import_pin(ledger.actor, key, compute_key_id(bytes.fromhex(key)))
            return outcome, ledger.save(agg)

        outcome, saved = ledger.retrying(attempt)
        positions += saved
        if outcome.conflict is not None:
            conflicts.append({"publisher": pub, "key_hex": key, "reason": outcome.conflict})
        elif outcome.pinned:
            pinned.append({"publisher": pub, "key_hex": key})
    return TrustImport(allowlisted, pinned, conflicts, positions)
