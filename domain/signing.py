"""Payload hash, key ids, the signature envelope and signing-key parsing
(``artifact-format.md`` §8, §9, §10).

The signature is Ed25519 over the ASCII bytes of the 64-character lowercase hex
payload digest. Key material never appears in an error message: errors carry
lengths and step names only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .constants import KEY_ID_PREFIX, PAYLOAD_CONTEXT, SIGNATURE_ALGORITHM, SIGNATURE_ENTRY
from .errors import InvalidSigningKey, SerializationError, SignatureVerificationFailed
from .text import (
    StrictJsonError,
    ascii_trim,
    b64encode,
    dumps_pretty,
    is_exact_int,
    loads_strict,
    strict_b64_decode,
    strict_hex_decode,
    trim,
)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


# --- §8 payload hash -----------------------------------------------------------------


def payload_sha256(entries: Mapping[str, bytes]) -> str:
    """Domain-separated SHA-256 over every entry except ``signature.json``, sorted by path."""
    h = hashlib.sha256(PAYLOAD_CONTEXT)
    for path in sorted(entries):
        if path == SIGNATURE_ENTRY:
            continue
        p = path.encode("utf-8")
        data = entries[path]
        h.update(len(p).to_bytes(8, "big"))
        h.update(p)
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


# --- §9.2 key id ---------------------------------------------------------------------


def key_id(public_key: bytes) -> str:
    return KEY_ID_PREFIX + hashlib.sha256(public_key).digest()[:8].hex()


def public_key_from_seed(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


class PublicKeyFacts(msgspec.Struct, frozen=True):
    key_id: str
    public_key_hex: str
    public_key_base64: str


def public_key_facts(public_key: bytes) -> PublicKeyFacts:
    return PublicKeyFacts(key_id(public_key), public_key.hex(), b64encode(public_key))


# --- §10 signing-key input formats ----------------------------------------------------


def parse_signing_key(secret: bytes) -> bytes:
    """Return the 32-byte Ed25519 seed from raw, hex, base64 or PEM/OpenSSH input.

    Steps 1-7 of §10; PEM (PKCS#8) and OpenSSH private keys are an extension tried
    only for text that starts with ``-----BEGIN``, which can never be 32 bytes,
    hex or base64, so the spec's decisions are unchanged.
    """
    if len(secret) == 32:
        return secret
    t = ascii_trim(secret)
    if len(t) == 32:
        return t
    try:
        text = trim(t.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidSigningKey(len(t)) from None
    raw = strict_hex_decode(text)
    if raw is not None and len(raw) == 32:
        return raw
    raw = strict_b64_decode(text)
    if raw is not None and len(raw) == 32:
        return raw
    if text.startswith("-----BEGIN"):
        return _seed_from_pem(text.encode("ascii", "replace"), len(t))
    raise InvalidSigningKey(len(t))


def _seed_from_pem(pem: bytes, length: int) -> bytes:
    try:
        if b"OPENSSH PRIVATE KEY" in pem:
            key: Any = serialization.load_ssh_private_key(pem, password=None)
        else:
            key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # Encrypted keys land here too (TypeError: password required); never echo the input.
        raise InvalidSigningKey(length) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidSigningKey(length)
    return key.private_bytes_raw()


def private_key_pem(seed: bytes) -> bytes:
    """PKCS#8 PEM, unencrypted (the file itself is protected by its 0600 mode)."""
    return Ed25519PrivateKey.from_private_bytes(seed).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# --- §9.3 signature envelope ---------------------------------------------------------


class SignatureEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    algorithm: str
    publisher: str
    key_id: str
    public_key_base64: str
    payload_sha256: str
    signature_base64: str
    signed_at_unix_ms: int

    def to_json_bytes(self) -> bytes:
        return dumps_pretty(msgspec.structs.asdict(self)).encode("utf-8")

    def to_dict(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


_ENVELOPE_FIELDS = tuple(SignatureEnvelope.__struct_fields__)


def parse_signature_json(data: bytes) -> SignatureEnvelope:
    """Fixed schema: all members required, no unknown or duplicate members, exact types."""
    try:
        obj = loads_strict(data)
    except StrictJsonError as e:
        raise SerializationError(f"invalid signature: {e}") from None
    if not isinstance(obj, dict):
        raise SerializationError("invalid signature: envelope must be a JSON object")
    unknown = sorted(set(obj) - set(_ENVELOPE_FIELDS))
    if unknown:
        raise SerializationError(f"invalid signature: unknown field {unknown[0]!r}")
    for name in _ENVELOPE_FIELDS:
        if name not in obj:
            raise SerializationError(f"invalid signature: missing field {name!r}")
        value = obj[name]
        if name == "signed_at_unix_ms":
            if not is_exact_int(value) or not INT64_MIN <= value <= INT64_MAX:
                raise SerializationError("invalid signature: signed_at_unix_ms must be an int64")
        elif not isinstance(value, str):
            raise SerializationError(f"invalid signature: {name} must be a string")
    return SignatureEnvelope(**obj)


def sign_payload(seed: bytes, payload_hex: str, publisher: str, signed_at_unix_ms: int) -> SignatureEnvelope:
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    pk = sk.public_key().public_bytes_raw()
    sig = sk.sign(payload_hex.encode("ascii"))
    return SignatureEnvelope(
        algorithm=SIGNATURE_ALGORITHM,
        publisher=publisher,
        key_id=key_id(pk),
        public_key_base64=b64encode(pk),
        payload_sha256=payload_hex,
        signature_base64=b64encode(sig),
        signed_at_unix_ms=signed_at_unix_ms,
    )


def verify_signature(envelope: SignatureEnvelope, manifest_publisher: str) -> bytes:
    """§9.4 steps 1-7; returns the 32-byte public key. Every failure is the same kind."""
    if envelope.algorithm != SIGNATURE_ALGORITHM:
        raise SignatureVerificationFailed("unsupported algorithm")
    pk_raw = strict_b64_decode(envelope.public_key_base64)
    if pk_raw is None or len(pk_raw) != 32:
        raise SignatureVerificationFailed("public key is not 32 bytes of canonical base64")
    try:
        pk = Ed25519PublicKey.from_public_bytes(pk_raw)
    except ValueError:
        raise SignatureVerificationFailed("public key is not a valid Ed25519 point") from None
    if envelope.key_id != key_id(pk_raw):
        raise SignatureVerificationFailed("key id does not match the public key")
    sig = strict_b64_decode(envelope.signature_base64)
    if sig is None or len(sig) != 64:
        raise SignatureVerificationFailed("signature is not 64 bytes of canonical base64")
    try:
        pk.verify(sig, envelope.payload_sha256.encode("ascii"))
    except (InvalidSignature, UnicodeEncodeError):
        raise SignatureVerificationFailed("signature does not verify") from None
    if envelope.publisher != manifest_publisher:
        raise SignatureVerificationFailed("signature publisher differs from the manifest publisher")
    return pk_raw
