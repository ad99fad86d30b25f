"""Trust evaluation and the trust-store interchange format (``artifact-format.md`` §16).

A :class:`TrustStore` is a value. Evaluation never mutates it: it returns the
decision and, for a new TOFU pin, the store the caller should persist. The ledger
adds one rule of its own on top of §16.1: a key that was revoked for a publisher
is never trusted again (``key_revoked``), whatever the allowlist or pin says.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import msgspec

from .errors import (
    KeyRevoked,
    ManifestValidationError,
    SerializationError,
    SkillLedgerError,
    TofuKeyMismatch,
    TrustedPublisherKeyMismatch,
    UntrustedPublisher,
)
from .grammars import ident
from .text import StrictJsonError, ascii_lower, dumps_pretty, is_strict_hex, loads_strict, trim


class TrustDecision(str, enum.Enum):
    ALLOWLISTED = "allowlisted"
    TOFU_PINNED = "tofu_pinned"
    TOFU_NEWLY_PINNED = "tofu_newly_pinned"


class TrustStore(msgspec.Struct, frozen=True):
    """Normalised trust state: publisher -> sorted allowlisted keys; publisher -> pinned key."""

    trusted_publishers: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)
    tofu_publishers: dict[str, str] = msgspec.field(default_factory=dict)
    # publisher -> revoked keys (a ledger addition; not part of the interchange format)
    revoked: dict[str, frozenset[str]] = msgspec.field(default_factory=dict)

    def merged_with(self, other: "TrustStore") -> "TrustStore":
        """Union of two stores; ``other``'s TOFU pins win only where ``self`` has none."""
        trusted = {p: set(k) for p, k in self.trusted_publishers.items()}
        for p, keys in other.trusted_publishers.items():
            trusted.setdefault(p, set()).update(keys)
        tofu = dict(other.tofu_publishers)
        tofu.update(self.tofu_publishers)
        revoked = {p: set(k) for p, k in self.revoked.items()}
        for p, keys in other.revoked.items():
            revoked.setdefault(p, set()).update(keys)
        return TrustStore(
            {p: tuple(sorted(k)) for p, k in sorted(trusted.items())},
            dict(sorted(tofu.items())),
            {p: frozenset(k) for p, k in sorted(revoked.items())},
        )


class TrustEvaluation(msgspec.Struct, frozen=True):
    decision: TrustDecision
    store: TrustStore  # the store after evaluation (with the new pin for tofu_newly_pinned)


def evaluate_trust(store: TrustStore, publisher: str, observed_hex: str, allow_tofu: bool) -> TrustEvaluation:
    """§16.1 in order, after the ledger's revocation rule. ``publisher`` is the raw manifest value."""
    if observed_hex in store.revoked.get(publisher, ()):
        raise KeyRevoked(publisher, _key_id(observed_hex))
    if publisher in store.trusted_publishers:
        if observed_hex in store.trusted_publishers[publisher]:
            return TrustEvaluation(TrustDecision.ALLOWLISTED, store)
        raise TrustedPublisherKeyMismatch(publisher, key_id=_key_id(observed_hex), key_hex=observed_hex,
                                          allowlisted_key_ids=[_key_id(k) for k in store.trusted_publishers[publisher]])
    if publisher in store.tofu_publishers:
        pinned_hex = store.tofu_publishers[publisher]
        if pinned_hex == observed_hex:
            return TrustEvaluation(TrustDecision.TOFU_PINNED, store)
        raise TofuKeyMismatch(publisher, pinned_key_id=_key_id(pinned_hex), key_id=_key_id(observed_hex),
                              key_hex=observed_hex)
    if allow_tofu:
        pinned = dict(store.tofu_publishers)
        pinned[publisher] = observed_hex
        new = TrustStore(store.trusted_publishers, dict(sorted(pinned.items())), store.revoked)
        return TrustEvaluation(TrustDecision.TOFU_NEWLY_PINNED, new)
    raise UntrustedPublisher(publisher, key_id=_key_id(observed_hex), key_hex=observed_hex)


def _key_id(key_hex: str) -> str:
    """The key id (``ed25519:<16 hex>``) of a public key given as hex, for messages."""
    from .signing import key_id  # here: signing imports cryptography, which reading trust state never needs

    try:
        return key_id(bytes.fromhex(key_hex))
    except ValueError:
        return "(malformed key)"


# --- §16.3 normalisation -------------------------------------------------------------


def normalize_key(value: str) -> str:
    n = ascii_lower(trim(value))
    if not is_strict_hex(n):
        raise ManifestValidationError("trusted_key_not_hex", "trusted publisher key must be hex")
    if len(n) != 64:
        raise ManifestValidationError("trusted_key_wrong_length", "trusted publisher key must decode to 32 bytes")
    return n


def normalize(
    trusted_publishers: Mapping[str, list[str] | tuple[str, ...]], tofu_publishers: Mapping[str, str]
) -> TrustStore:
    """All-or-nothing normalisation; every error is ``serialization`` embedding the inner text."""
    trusted: dict[str, set[str]] = {}
    for raw_pub in sorted(trusted_publishers):
        keys = trusted_publishers[raw_pub]
        try:
            pub = ident(raw_pub, "publisher")
        except SkillLedgerError as e:
            raise SerializationError(f"invalid trust-store publisher '{raw_pub}': {e}") from None
        if not keys:
            raise SerializationError(f"trusted publisher '{pub}' must include at least one key")
        normalised = set()
        for k in keys:
            try:
                normalised.add(normalize_key(k))
            except SkillLedgerError as e:
                raise SerializationError(f"invalid trusted key for publisher '{pub}': {e}") from None
        trusted.setdefault(pub, set()).update(normalised)
    tofu: dict[str, str] = {}
    for raw_pub, key in tofu_publishers.items():
        try:
            pub = ident(raw_pub, "publisher")
        except SkillLedgerError as e:
            raise SerializationError(f"invalid trust-store TOFU publisher '{raw_pub}': {e}") from None
        try:
            k = normalize_key(key)
        except SkillLedgerError as e:
            raise SerializationError(f"invalid TOFU key for publisher '{pub}': {e}") from None
        if pub in tofu and tofu[pub] != k:
            raise SerializationError(f"conflicting TOFU keys for publisher '{pub}'")
        tofu[pub] = k
    return TrustStore(
        {p: tuple(sorted(k)) for p, k in sorted(trusted.items())},
        dict(sorted(tofu.items())),
    )


def add_trusted_key(store: TrustStore, publisher: str, key_hex: str) -> TrustStore:
    """§16.4: errors are ``manifest_validation`` (not wrapped)."""
    pub = ident(publisher, "publisher")
    key = normalize_key(key_hex)
    trusted = dict(store.trusted_publishers)
    trusted[pub] = tuple(sorted(set(trusted.get(pub, ())) | {key}))
    return TrustStore(dict(sorted(trusted.items())), store.tofu_publishers, store.revoked)


# --- public keys as an operator gives them (``skills trust allow|revoke``) -------------------

KEY_FORMS = "a 64-hex Ed25519 public key, a key id as `skills trust list` prints it, or --key-file FILE"


def parse_public_key(data: bytes, source: str = "the key") -> str:
    """An Ed25519 public key as 64 lowercase hex, from raw 32 bytes, hex, base64, a PEM public key
    (``-----BEGIN PUBLIC KEY-----``) or an OpenSSH public key line (``ssh-ed25519 AAAA...``). A
    private key is refused (the trust store holds public keys; ``skills keys show`` prints the
    public half). Errors are ``usage_error`` and never quote the input."""
    from .errors import UsageError
    from .text import ascii_trim, strict_b64_decode, strict_hex_decode

    if len(data) == 32:
        return data.hex()
    text_bytes = ascii_trim(data)
    try:
        text = trim(text_bytes.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{source} is not an Ed25519 public key (expected {KEY_FORMS})") from None
    for decode in (strict_hex_decode, strict_b64_decode):
        raw = decode(text)
        if raw is not None and len(raw) == 32:
            return raw.hex()
    if "PRIVATE KEY" in text:
        raise UsageError(f"{source} is a private key; give its public key instead "
                         "(`skills keys show --signing-key-file FILE` prints public_key_hex)")
    if text.startswith(("-----BEGIN PUBLIC KEY-----", "ssh-ed25519 ")):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            key = (serialization.load_pem_public_key(text.encode("ascii")) if text.startswith("-----")
                   else serialization.load_ssh_public_key(text.encode("ascii")))
        except (ValueError, TypeError, UnicodeEncodeError):
            key = None
        if isinstance(key, Ed25519PublicKey):
            return key.public_bytes_raw().hex()
    raise UsageError(f"{source} is not an Ed25519 public key (expected {KEY_FORMS})")


def is_key_id(text: str) -> bool:
    """Whether ``text`` has the form of a key id: ``ed25519:`` and 16 hex characters, or the 16 alone."""
    from .constants import KEY_ID_PREFIX

    t = ascii_lower(trim(text)).removeprefix(KEY_ID_PREFIX)
    return len(t) == 16 and is_strict_hex(t)


def normal_key_id(text: str) -> str:
    from .constants import KEY_ID_PREFIX

    return KEY_ID_PREFIX + ascii_lower(trim(text)).removeprefix(KEY_ID_PREFIX)


# --- §16.2 interchange format --------------------------------------------------------


def parse_trust_store(data: bytes, source: str = "<input>") -> TrustStore:
    """Parse and normalise the interchange JSON. Whitespace-only content is an empty store."""
    if not data.strip(b" \t\n\f\r"):
        return TrustStore()
    try:
        obj = loads_strict(data)
    except StrictJsonError as e:
        raise SerializationError(f"failed to parse trust store {source}: {e}") from None
    trusted, tofu = _check_interchange_schema(obj, source)
    return normalize(trusted, tofu)


def _check_interchange_schema(obj: Any, source: str) -> tuple[dict[str, list[str]], dict[str, str]]:
    def fail(why: str) -> SerializationError:
        return SerializationError(f"failed to parse trust store {source}: {why}")

    if not isinstance(obj, dict):
        raise fail("trust store must be a JSON object")
    unknown = sorted(set(obj) - {"trusted_publishers", "tofu_publishers"})
    if unknown:
        raise fail(f"unknown field {unknown[0]!r}")
    trusted = obj.get("trusted_publishers", {})
    tofu = obj.get("tofu_publishers", {})
    if not isinstance(trusted, dict) or not all(
        isinstance(v, list) and all(isinstance(k, str) for k in v) for v in trusted.values()
    ):
        raise fail("trusted_publishers must map publisher names to arrays of hex keys")
    if not isinstance(tofu, dict) or not all(isinstance(v, str) for v in tofu.values()):
        raise fail("tofu_publishers must map publisher names to hex keys")
    return trusted, tofu


def trust_store_to_dict(store: TrustStore) -> dict[str, Any]:
    """Interchange form: ``trusted_publishers`` then ``tofu_publishers``, publishers sorted."""
    return {
        "trusted_publishers": {p: list(store.trusted_publishers[p]) for p in sorted(store.trusted_publishers)},
        "tofu_publishers": {p: store.tofu_publishers[p] for p in sorted(store.tofu_publishers)},
    }


def dump_trust_store(store: TrustStore) -> bytes:
    return dumps_pretty(trust_store_to_dict(store)).encode("utf-8")
