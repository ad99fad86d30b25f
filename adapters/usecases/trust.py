"""Trust use cases: allowlist a publisher key, revoke one (and quarantine what it signed),
import a trust-store file. The ``Publisher`` aggregate decides; revocation then asks each
``Skill`` signed by the key to quarantine its versions."""

from __future__ import annotations

import msgspec

from skill_ledger.adapters.journal.sqlite import iter_rows
from skill_ledger.domain.errors import ManifestValidationError, UsageError
from skill_ledger.domain.events import topics_for_kinds
from skill_ledger.domain.publisher import PinImport, Publisher
from skill_ledger.domain.signing import key_id as compute_key_id
from skill_ledger.domain.skill import TRUST_REVOKED, Skill
from skill_ledger.domain.text import trim
from skill_ledger.domain.trust import (
    KEY_FORMS,
    TrustStore,
    add_trusted_key,
    is_key_id,
    normal_key_id,
    parse_public_key,
)

from .results import TrustChange, TrustImport
from .unit_of_work import Ledger


def _publisher_key(publisher: str, key_hex: str) -> tuple[str, str, str]:
    """(publisher, key, key id) normalised; a malformed name or key is a ``usage_error`` (exit 2)."""
    try:
        store = add_trusted_key(TrustStore(), publisher, key_hex)
    except ManifestValidationError as e:
        raise UsageError(f"invalid publisher or key: {e.details.get('detail', e.message)} "
                         f"(KEY is {KEY_FORMS})", {"publisher": publisher}) from None
    pub, keys = next(iter(store.trusted_publishers.items()))
    return pub, keys[0], compute_key_id(bytes.fromhex(keys[0]))


MAX_KEY_FILE_BYTES = 16 * 1024


def resolve_key(ledger: Ledger, publisher: str, key: str | None, key_file: str | None) -> str:
    """The public key (hex) an operator named for ``publisher``: the 64-hex key itself, a key id
    (``ed25519:<16 hex>`` as ``skills trust list`` prints it) resolved against the keys the journal
    knows for that publisher (its trust facts and the keys its installed artifacts were signed
    with), or a key file (PEM or OpenSSH public key, raw 32 bytes, hex, base64). Anything else,
    an unknown or ambiguous key id, is a ``usage_error``."""
    if (key is None) == (key_file is None):
        raise UsageError(f"give exactly one KEY: {KEY_FORMS}")
    if key_file is not None:
        from skill_ledger.adapters.storage.files import read_bounded

        def too_large(actual: int, limit: int) -> Exception:
            return UsageError(f"{key_file} is larger than {limit} bytes: not a public key file")

        return parse_public_key(read_bounded(key_file, MAX_KEY_FILE_BYTES, too_large=too_large), key_file)
    text = trim(key or "")
    if not is_key_id(text):
        return _publisher_key(publisher, text)[1]
    wanted = normal_key_id(text)
    pub = _publisher_key(publisher, "0" * 64)[0]  # the name checked alone
    known = {k.key_hex for k in ledger.load(Publisher, pub).keys.values() if k.key_id == wanted}
    if not known:
        known = {hex_ for hex_, kid in _keys_signing_for(ledger, pub).items() if kid == wanted}
    if len(known) == 1:
        return known.pop()
    if not known:
        raise UsageError(f"no key {wanted} is known for publisher {pub}; give the 64-hex public key or "
                         "--key-file FILE", {"publisher": pub, "key_id": wanted})
    raise UsageError(f"key id {wanted} matches {len(known)} keys of {pub}; give the 64-hex public key",
                     {"publisher": pub, "key_id": wanted})


def _keys_signing_for(ledger: Ledger, publisher: str) -> dict[str, str]:
    """{key hex: key id} of every key an artifact of ``publisher`` was verified under (a journal scan)."""
    found: dict[str, str] = {}
    for row in iter_rows(ledger.app, topics=topics_for_kinds(["skill.artifact_verified"])):
        state = msgspec.json.decode(row.state)
        if state.get("publisher") == publisher and state.get("key_hex"):
            found[state["key_hex"]] = state.get("key_id", "")
    return found


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
